-- upload.lua: wrk script for scripts/bench, a 1 MiB request body on every
-- request (POST, Content-Length framed by wrk.format) on keep-alive
-- connections, for the sink handler and its peers.
wrk.method = "POST"
wrk.body = string.rep("0123456789abcdef", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
