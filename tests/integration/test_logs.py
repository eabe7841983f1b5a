"""The error log (time, pid, level; listening and ready lines) and the access
log (one combined-format line per request with worker pid and duration)."""

import re
import shutil
import subprocess
import time
import unittest

from forkdtest import Server, get, http, raw

LOG_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ forkd\[(\d+)\] "
                    r"(error|warn|notice|info|debug): \S.*$")
ACCESS_RE = re.compile(
    r'^(?P<addr>\S+) - - \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]'
    r' "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r' "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"'
    r' pid=(?P<pid>\d+) tid=(?P<tid>\d+) start=(?P<start>\d+\.\d{6})'
    r' us=(?P<us>\d+)$')


class ErrorLogTest(unittest.TestCase):
    def test_startup_lines(self):
        with Server("hello", workers=2) as s:
            lines = s.log_lines()
            self.assertTrue(lines)
            for line in lines:
                self.assertRegex(line, LOG_RE)
            listening = [l for l in lines if "listening on" in l]
            self.assertEqual(len(listening), 1, lines)
            self.assertIn("listening on http://127.0.0.1:%d" % s.port,
                          listening[0])
            ready = [l for l in lines if "ready:" in l]
            self.assertEqual(len(ready), 1, lines)
            self.assertIn("ready: 2 workers", ready[0])
            self.assertEqual(int(LOG_RE.match(ready[0]).group(1)), s.pid)
            self.assertLess(lines.index(listening[0]), lines.index(ready[0]))

    def test_log_level_error_hides_notices(self):
        # The ready line is a notice: wait for the port instead.
        with Server("hello", server={"log_level": "error"}, ready=None) as s:
            self.assertEqual(get(s.port).status, 200)
            time.sleep(0.1)
            self.assertEqual(s.log_lines(), [])


class AccessLogTest(unittest.TestCase):
    def test_access_lines(self):
        with Server("sleep", workers=2) as s:
            http(s.port, "GET", "/?ms=200", headers={
                "User-Agent": "forkd-test/1", "Referer": "http://ref/"})
            http(s.port, "POST", "/post?ms=1", body=b"abc")
            http(s.port, "HEAD", "/?ms=1")
            lines = s.wait_access(3)
            self.assertEqual(len(lines), 3, lines)
            workers = set(s.worker_pids())
            ms = {}
            for l in lines:
                m = ACCESS_RE.match(l)
                self.assertIsNotNone(m, "bad access line %r" % l)
                self.assertEqual(m.group("addr"), "127.0.0.1")
                self.assertIn(int(m.group("pid")), workers)
                self.assertLess(abs(float(m.group("start")) - time.time()),
                                30)
                # Written after the response: in any order across workers.
                ms[m.group("request")] = m
            self.assertEqual(sorted(ms), ["GET /?ms=200 HTTP/1.1",
                                          "HEAD /?ms=1 HTTP/1.1",
                                          "POST /post?ms=1 HTTP/1.1"])
            g = ms["GET /?ms=200 HTTP/1.1"]
            self.assertEqual(g.group("status"), "200")
            self.assertEqual(g.group("bytes"), "13")
            self.assertEqual(g.group("agent"), "forkd-test/1")
            self.assertEqual(g.group("referer"), "http://ref/")
            self.assertGreaterEqual(int(g.group("us")), 200000)
            self.assertLess(int(g.group("us")), 2000000)
            self.assertEqual(ms["POST /post?ms=1 HTTP/1.1"].group("status"),
                             "200")
            self.assertIn(ms["HEAD /?ms=1 HTTP/1.1"].group("bytes"),
                          ("0", "-"))

    def test_access_line_curl(self):
        curl = shutil.which("curl")
        if curl is None:
            self.skipTest("curl is not installed")
        with Server("hello") as s:
            subprocess.run([curl, "-s", "-o", "/dev/null", "--max-time", "5",
                            "http://127.0.0.1:%d/" % s.port], timeout=10)
            (line,) = s.wait_access(1)
            m = ACCESS_RE.match(line)
            self.assertIsNotNone(m, line)
            self.assertEqual(m.group("request"), "GET / HTTP/1.1")
            self.assertEqual(m.group("status"), "200")
            self.assertEqual(m.group("bytes"), "14")
            self.assertEqual(m.group("referer"), "-")
            self.assertTrue(m.group("agent").startswith("curl/"))

    def test_access_logs_errors(self):
        with Server("hello", allow=[r"127\.0\.0\.1"]) as s:
            get(s.port)
            raw(s.port, b"GET / HTTP/1.1\r\n\r\n", 2)  # no Host: 400
            lines = s.wait_access(2)
            self.assertEqual(len(lines), 2, lines)
            self.assertEqual(len([l for l in lines if '" 400 ' in l]), 1,
                             lines)


if __name__ == "__main__":
    unittest.main()
