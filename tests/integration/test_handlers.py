"""The example handlers: hello, echo, sleep, cpu, resources, sink; curl."""

import email.utils
import json
import os
import re
import shutil
import subprocess
import time
import unittest

from forkdtest import Conn, Server, fnv1a32, get, http, parse_responses, raw

DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
                     r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                     r"\d{4} \d\d:\d\d:\d\d GMT$")


def echo_env(resp):
    """The environ JSON object of an echo response."""
    return json.loads(resp.body.decode("utf-8"))


def echo_body(env):
    """The request body echo saw, as bytes (\\u00XX escapes are bytes)."""
    return env["body"].encode("latin-1")


class HelloTest(unittest.TestCase):
    def test_hello(self):
        with Server("hello") as s:
            r = get(s.port)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"Hello, World!\n")
            self.assertTrue(r.headers.get("content-type", "")
                            .startswith("text/plain"), r.headers)
            self.assertEqual(r.headers.get("content-length"), "14")
            self.assertIn("server", r.headers)
            self.assertTrue(r.headers["server"].strip())
            date = r.headers.get("date", "")
            self.assertRegex(date, DATE_RE)
            when = email.utils.parsedate_to_datetime(date).timestamp()
            self.assertLess(abs(when - time.time()), 5, date)

    def test_hello_status_line(self):
        with Server("hello") as s:
            data = raw(s.port, b"GET / HTTP/1.1\r\nHost: x\r\n"
                       b"Connection: close\r\n\r\n")
            self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data)
            (r,) = parse_responses(data)
            self.assertEqual(r.body, b"Hello, World!\n")

    def test_curl(self):
        curl = shutil.which("curl")
        if curl is None:
            self.skipTest("curl is not installed")
        with Server("hello") as s:
            p = subprocess.run([curl, "-s", "--max-time", "5",
                                "http://127.0.0.1:%d/" % s.port],
                               stdout=subprocess.PIPE, timeout=10)
            self.assertEqual(p.returncode, 0)
            self.assertEqual(p.stdout, b"Hello, World!\n")
            # Two URLs: curl reuses the connection (keep-alive).
            p = subprocess.run([curl, "-s", "--max-time", "5", "-o",
                                "/dev/null", "-o", "/dev/null", "-w",
                                "%{http_code} %{num_connects}\n",
                                "http://127.0.0.1:%d/a" % s.port,
                                "http://127.0.0.1:%d/b" % s.port],
                               stdout=subprocess.PIPE, timeout=10)
            self.assertEqual(p.stdout.decode().split("\n")[:2],
                             ["200 1", "200 0"])


class EchoTest(unittest.TestCase):
    def test_get_environ(self):
        with Server("echo") as s, Conn(s.port) as c:
            c.send(b"GET /a%20b/%2541?x=1&y=%20z HTTP/1.1\r\n"
                   b"Host: example.test:8080\r\n"
                   b"X-Multi: a\r\n"
                   b"User-Agent: forkd-test\r\n"
                   b"x-multi: b\r\n"
                   b"X-Space:   padded   \r\n"
                   b"Connection: close\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers.get("content-type", "")
                            .startswith("application/json"), r.headers)
            env = echo_env(r)
            self.assertEqual(env["REQUEST_METHOD"], "GET")
            self.assertEqual(env["SCRIPT_NAME"], "")
            # Decoded once: %2541 is "%41", not "A".
            self.assertEqual(env["PATH_INFO"], "/a b/%41")
            self.assertEqual(env["QUERY_STRING"], "x=1&y=%20z")
            self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.1")
            self.assertEqual(env["HTTP_HOST"], "example.test:8080")
            self.assertEqual(env["HTTP_X_MULTI"], "a, b")
            self.assertEqual(env["HTTP_X_SPACE"], "padded")
            self.assertEqual(env["HTTP_USER_AGENT"], "forkd-test")
            self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
            self.assertEqual(str(env["REMOTE_PORT"]), str(c.local_port()))
            self.assertEqual(str(env["SERVER_PORT"]), str(s.port))
            self.assertIn("SERVER_NAME", env)
            for k in ("CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_CONTENT_LENGTH",
                      "HTTP_CONTENT_TYPE"):
                self.assertNotIn(k, env)
            self.assertEqual(env["body"], "")
            self.assertEqual(env["body_length"], 0)

    def test_post_content_length(self):
        body = b"a=1&b=\x00\xff\n\"\\"
        with Server("echo") as s:
            r = http(s.port, "POST", "/post?q=1", body=body, headers={
                "Content-Type": "application/x-www-form-urlencoded"})
            self.assertEqual(r.status, 200)
            env = echo_env(r)
            self.assertEqual(env["REQUEST_METHOD"], "POST")
            self.assertEqual(env["PATH_INFO"], "/post")
            self.assertEqual(env["QUERY_STRING"], "q=1")
            self.assertEqual(str(env["CONTENT_LENGTH"]), str(len(body)))
            self.assertEqual(env["CONTENT_TYPE"],
                             "application/x-www-form-urlencoded")
            self.assertNotIn("HTTP_CONTENT_LENGTH", env)
            self.assertNotIn("HTTP_CONTENT_TYPE", env)
            self.assertEqual(echo_body(env), body)
            self.assertEqual(env["body_length"], len(body))

    def test_chunked_upload(self):
        with Server("echo") as s, Conn(s.port) as c:
            c.send(b"POST /up HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n"
                   b"Content-Type: text/plain\r\n\r\n"
                   b"5\r\nhello\r\n"
                   b"6;ext=1\r\n worl\x01\r\n"
                   b"A\r\n0123456789\r\n"
                   b"0\r\nX-Trailer: t\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            env = echo_env(r)
            self.assertEqual(echo_body(env), b"hello worl\x010123456789")
            self.assertEqual(env["body_length"], 21)
            self.assertEqual(env["CONTENT_TYPE"], "text/plain")
            self.assertNotIn("CONTENT_LENGTH", env)
            # The connection is still usable after a chunked body.
            c.send(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            self.assertEqual(echo_env(r)["PATH_INFO"], "/next")

    def test_chunked_upload_slow(self):
        """A chunked body sent in pieces, with pauses."""
        with Server("echo") as s, Conn(s.port) as c:
            c.send(b"PUT /slow HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
            for piece in (b"3\r\n", b"abc", b"\r\n", b"2\r\nde\r\n",
                          b"0\r\n", b"\r\n"):
                time.sleep(0.02)
                c.send(piece)
            r = c.read_response()
            env = echo_env(r)
            self.assertEqual(env["REQUEST_METHOD"], "PUT")
            self.assertEqual(echo_body(env), b"abcde")
            self.assertEqual(env["body_length"], 5)


class SleepTest(unittest.TestCase):
    def test_sleep_200ms(self):
        with Server("sleep") as s:
            t0 = time.monotonic()
            r = get(s.port, "/?ms=200")
            dt = time.monotonic() - t0
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"slept 200 ms\n")
            self.assertGreaterEqual(dt, 0.2)
            self.assertLess(dt, 1.5)

    def test_sleep_default(self):
        with Server("sleep") as s:
            t0 = time.monotonic()
            r = get(s.port, "/")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"slept 100 ms\n")
            self.assertGreaterEqual(time.monotonic() - t0, 0.1)


class CpuTest(unittest.TestCase):
    def test_cpu(self):
        with Server("cpu") as s:
            r = get(s.port, "/?n=1000")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.body.strip())
            r2 = get(s.port, "/?n=1000")
            self.assertEqual(r2.body, r.body, "same n, same result")
            t0 = time.monotonic()
            r = get(s.port, "/")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.body.strip())
            self.assertLess(time.monotonic() - t0, 1.0,
                            "default is sized to about 1 ms")


class ResourcesTest(unittest.TestCase):
    def test_resource(self):
        with Server("resources", options={"delay_ms": 300}) as s:
            t0 = time.monotonic()
            r = get(s.port, "/resource/7")
            dt = time.monotonic() - t0
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.body), "dummy_result_id_7")
            self.assertEqual(r.body.strip(), b'"dummy_result_id_7"')
            self.assertGreaterEqual(dt, 0.3)
            self.assertLess(dt, 1.2)

    def test_resources_concurrent(self):
        with Server("resources", options={"delay_ms": 300}) as s:
            t0 = time.monotonic()
            r = get(s.port, "/resources")
            dt = time.monotonic() - t0
            self.assertEqual(r.status, 200)
            items = json.loads(r.body)
            self.assertIsInstance(items, list)
            self.assertEqual(len(items), 5)
            for it in items:
                self.assertRegex(it, r"^dummy_result_id_\w+$")
            self.assertEqual(len(set(items)), 5)
            # Five 300 ms downloads at once: about 0.3 s, not 1.5 s.
            self.assertGreaterEqual(dt, 0.3)
            self.assertLess(dt, 1.0)


class SinkTest(unittest.TestCase):
    def check(self, r, data):
        self.assertEqual(r.status, 200)
        # "<length> <FNV-1a 32 in hex>\n"
        self.assertEqual(r.body.decode("utf-8", "replace"),
                         "%d %08x\n" % (len(data), fnv1a32(data)))

    def test_sink_1mib(self):
        data = os.urandom(1 << 20)
        with Server("sink") as s:
            self.check(http(s.port, "POST", "/", body=data, headers={
                "Content-Type": "application/octet-stream"}, timeout=10),
                data)

    def test_sink_1mib_chunked(self):
        data = os.urandom(1 << 20)
        pieces = [data[i:i + 50000] for i in range(0, len(data), 50000)]
        with Server("sink") as s:
            # http.client sends an iterable body chunked.
            r = http(s.port, "POST", "/", body=iter(pieces), timeout=10)
            self.check(r, data)


if __name__ == "__main__":
    unittest.main()
