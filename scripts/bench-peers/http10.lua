-- http10.lua: wrk script for scripts/bench, connection per request with
-- HTTP/1.0: every request is "GET PATH HTTP/1.0" with no header at all, so
-- the server closes the connection after each response and wrk reconnects.
-- (uWSGI's --http11-socket ignores "Connection: close"; it honours 1.0.)
local req

init = function(args)
   req = "GET " .. wrk.path .. " HTTP/1.0\r\n\r\n"
end

request = function()
   return req
end
