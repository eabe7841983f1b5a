"""The handler API of app/forkd.h, through a test handler compiled on the fly:
start_response called twice, body framing chosen by the server, HEAD and
204, sendfile, forkd_log, environ iteration, the arena, streamed input, and
a request body the handler did not read."""

import os
import shutil
import tempfile
import unittest

from forkdtest import (Conn, Server, build_testapp, fnv1a32, get, http,
                       parse_responses, raw, raw_closed)

TMP = None
TESTAPP = None


def setUpModule():
    global TMP, TESTAPP
    TMP = tempfile.mkdtemp(prefix="forkd-api-")
    TESTAPP = build_testapp(TMP)


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def stream_body(kib):
    return b"".join(bytes([ord("a") + i % 26]) * 1024 for i in range(kib))


class ApiTest(unittest.TestCase):
    def test_start_response_twice(self):
        with Server(TESTAPP) as s:
            r = get(s.port, "/twice")
            self.assertEqual(r.status, 404)
            self.assertEqual(r.body, b"second\n")
            self.assertIn("x-second", r.headers)
            self.assertNotIn("x-first", r.headers)

    def test_stream_framing_http11(self):
        with Server(TESTAPP) as s, Conn(s.port) as c:
            for kib in (3, 300):
                with self.subTest(kib=kib):
                    c.send(b"GET /stream?n=%d HTTP/1.1\r\nHost: x\r\n\r\n"
                           % kib)
                    r = c.read_response(timeout=5)
                    self.assertEqual(r.status, 200)
                    self.assertTrue("content-length" in r.headers or
                                    "chunked" in r.headers.get(
                                        "transfer-encoding", ""), r.headers)
                    self.assertEqual(r.body, stream_body(kib))
            # Still the same connection.
            c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(c.read_response(timeout=3).body, b"path=/ok\n")

    def test_stream_framing_http10(self):
        with Server(TESTAPP) as s:
            for kib in (3, 300):
                with self.subTest(kib=kib):
                    data, closed = raw_closed(
                        s.port, b"GET /stream?n=%d HTTP/1.0\r\n\r\n" % kib, 5)
                    self.assertTrue(closed)
                    (r,) = parse_responses(data)
                    self.assertNotIn("transfer-encoding", r.headers)
                    self.assertEqual(r.body, stream_body(kib))

    def test_head_on_streamed_body(self):
        with Server(TESTAPP) as s, Conn(s.port) as c:
            c.send(b"HEAD /stream?n=300 HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response(timeout=5, head_request=True)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"")
            c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response(timeout=3)
            self.assertEqual(r.body, b"path=/ok\n")

    def test_204_has_no_body(self):
        with Server(TESTAPP) as s, Conn(s.port) as c:
            c.send(b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 204)
            self.assertNotIn("content-length", r.headers)
            self.assertNotIn("transfer-encoding", r.headers)
            c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(c.read_response(timeout=3).body, b"path=/ok\n")

    def test_sendfile(self):
        data = os.urandom(300000)
        path = os.path.join(TMP, "data.bin")
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(TMP, 0o755)  # workers run as nobody when tests run as root
        os.chmod(path, 0o644)
        with Server(TESTAPP, options={"file": path}) as s:
            r = get(s.port, "/sendfile")
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), len(data) - 3)
            self.assertEqual(r.body, data[3:])

    def test_forkd_log(self):
        with Server(TESTAPP, options={"marker": "mk-4711"},
                    allow=[r"testapp-log mk-4711"]) as s:
            self.assertEqual(get(s.port, "/log?x=1").status, 200)
            line = s.wait_log(r"testapp-log mk-4711", 2)
            self.assertIsNotNone(line, "forkd_log line missing")
            self.assertIn(" warn: ", line)
            self.assertIn("GET", line)
            self.assertIn("/log", line)

    def test_environ_iteration(self):
        with Server(TESTAPP) as s:
            r = http(s.port, "GET", "/environ?a=b",
                     headers={"X-Iter": "one"})
            env = {}
            for line in r.body.decode().splitlines():
                k, _, v = line.partition("=")
                env[k] = v
            self.assertEqual(env.get("REQUEST_METHOD"), "GET")
            self.assertEqual(env.get("PATH_INFO"), "/environ")
            self.assertEqual(env.get("QUERY_STRING"), "a=b")
            self.assertEqual(env.get("HTTP_X_ITER"), "one")
            self.assertEqual(env.get("SERVER_PORT"), str(s.port))
            self.assertEqual(env.get("wsgi.url_scheme"), "http")

    def test_alloc(self):
        with Server(TESTAPP) as s:
            for _ in range(3):
                self.assertEqual(get(s.port, "/alloc").body, b"ok\n")

    def test_read_small_pieces(self):
        data = os.urandom(100000)
        want = b"%d %08x\n" % (len(data), fnv1a32(data))
        with Server(TESTAPP) as s:
            r = http(s.port, "POST", "/read7", body=data)
            self.assertEqual(r.body, want)
            pieces = [data[i:i + 9999] for i in range(0, len(data), 9999)]
            r = http(s.port, "POST", "/read7", body=iter(pieces))
            self.assertEqual(r.body, want)

    def test_unread_body_is_not_a_request(self):
        """A body the handler did not read is discarded (or the connection
        closed); it is never parsed as the next request."""
        smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        real = b"GET /real HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        bodies = {
            "content-length": b"Content-Length: %d\r\n\r\n%s" % (
                len(smuggled), smuggled),
            "chunked": b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n"
                       b"0\r\n\r\n" % (len(smuggled), smuggled),
        }
        with Server(TESTAPP) as s:
            for name, rest in bodies.items():
                with self.subTest(name):
                    data = raw(s.port, b"POST /no-read HTTP/1.1\r\nHost: x\r\n"
                               + rest + real, 3)
                    self.assertNotIn(b"/smuggled", data)
                    rs = parse_responses(data)
                    self.assertGreaterEqual(len(rs), 1)
                    self.assertEqual(rs[0].body, b"did not read the body\n")
                    if len(rs) > 1:
                        self.assertEqual(rs[1].body, b"path=/real\n")
                    self.assertLessEqual(len(rs), 2)


if __name__ == "__main__":
    unittest.main()
