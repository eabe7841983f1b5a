"""The error log (time, pid, level; listening and ready lines) and the access
log (one combined-format line per request with worker pid and duration)."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from forkdtest import (FORKD_BIN, Server, app_path, free_port, get, http,
                       raw, read_text, run_forkd, stop_pid, wait_for)

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


class JournalTest(unittest.TestCase):
    """With stderr the journal's stream (JOURNAL_STREAM names its device
    and inode), each error-log line starts with its syslog priority, <3>
    for error to <7> for debug, so that journalctl -p filters on it."""

    def run_forkd(self, journal):
        d = tempfile.mkdtemp(prefix="forkd-journal-")
        self.addCleanup(shutil.rmtree, d, True)
        err = os.path.join(d, "stderr")
        with open(err, "wb") as f:
            st = os.fstat(f.fileno())
            env = dict(os.environ)
            env["JOURNAL_STREAM"] = "%d:%d" % (
                st.st_dev, st.st_ino + (0 if journal else 1))
            port = free_port()
            p = subprocess.Popen(
                [FORKD_BIN, "-w", "1", "-b", "127.0.0.1:%d" % port,
                 app_path("hello"), "-o", "x=1"], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=f, env=env,
                start_new_session=True)
        try:
            self.assertTrue(wait_for(lambda: "ready:" in read_text(err), 10),
                            read_text(err))
            raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        finally:
            self.assertEqual(stop_pid(p.pid), [])
            p.wait(5)
        return read_text(err).splitlines()

    def test_priorities_on_the_journal(self):
        lines = self.run_forkd(True)
        prio = {"error": "3", "warn": "4", "notice": "5", "info": "6",
                "debug": "7"}
        self.assertTrue(lines)
        for line in lines:
            m = re.match(r"^<(\d)>(.*)$", line)
            self.assertIsNotNone(m, line)
            self.assertRegex(m.group(2), LOG_RE)
            self.assertEqual(m.group(1), prio[LOG_RE.match(
                m.group(2)).group(2)], line)
        self.assertTrue(any(x.startswith("<5>") for x in lines), lines)

    def test_no_priorities_elsewhere(self):
        for line in self.run_forkd(False):
            self.assertRegex(line, LOG_RE)


class TitleTest(unittest.TestCase):
    """ps shows what each process is, as unicorn and gunicorn do."""

    def title(self, pid):
        return read_text("/proc/%d/cmdline" % pid).rstrip("\0")

    def test_master_and_workers(self):
        with Server("hello", workers=2) as s:
            self.assertEqual(self.title(s.pid), "forkd: master -c " + s.ini)
            titles = sorted(self.title(p) for p in s.worker_pids())
            self.assertEqual(titles, ["forkd: worker 0 (gen 1)",
                                      "forkd: worker 1 (gen 1)"])
            # The name stays forkd: pgrep -x forkd finds them all.
            self.assertEqual(read_text("/proc/%d/comm" % s.pid).strip(),
                             "forkd")
            s.signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: sorted(
                self.title(p) for p in s.worker_pids()) == [
                    "forkd: worker 2 (gen 2)", "forkd: worker 3 (gen 2)"],
                10), [self.title(p) for p in s.worker_pids()])
            self.assertEqual(self.title(s.pid), "forkd: master -c " + s.ini)
            self.assertEqual(get(s.port, "/").status, 200)


class AccessFormatTest(unittest.TestCase):
    """access_log_format = combined (Apache's and nginx's) and json (one
    object per line, with a request id: a trusted proxy's X-Request-Id,
    else one forkd makes, which the handler sees as forkd.request_id)."""

    COMBINED_RE = re.compile(
        r'^\S+ - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
        r'"[^"]*" \d{3} \d+ "[^"]*" "[^"]*"$')

    def test_combined(self):
        with Server("hello", server={"access_log_format": "combined"}) as s:
            http(s.port, "GET", "/a?b=1", headers={"User-Agent": "t/1",
                                                  "Referer": "http://r/"})
            line = s.wait_access(1)[0]
            self.assertRegex(line, self.COMBINED_RE)
            self.assertIn('"GET /a?b=1 HTTP/1.1" 200 14 "http://r/" "t/1"',
                          line)

    def lines(self, s, n):
        return [json.loads(x) for x in s.wait_access(n)]

    def test_json(self):
        # One worker: the lines come in the order of the requests.
        with Server("echo", server={"access_log_format": "json"},
                    workers=1) as s:
            r = http(s.port, "GET", "/p%20q?x=1&y=%22", headers={
                "User-Agent": "caf\xe9", "X-Request-Id": "from-nginx.1"})
            self.assertEqual(r.status, 200)
            env = json.loads(r.body)
            self.assertEqual(env["forkd.request_id"], "from-nginx.1")
            r2 = http(s.port, "POST", "/", body=b"abc")
            id2 = json.loads(r2.body)["forkd.request_id"]
            self.assertRegex(id2, r"^[0-9a-f]{32}$")
            raw(s.port, b"BAD\x01 / HTTP/1.1\r\n\r\n")
            a, b, c = self.lines(s, 3)
            for x in (a, b, c):
                self.assertEqual(set(x), {
                    "time", "remote", "method", "path", "query", "protocol",
                    "status", "bytes", "duration_us", "pid", "tid",
                    "user_agent", "referer", "request_id"})
                self.assertRegex(x["time"],
                                 r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
                self.assertEqual(x["remote"], "127.0.0.1")
            self.assertEqual((a["method"], a["path"], a["query"],
                              a["protocol"], a["status"]),
                             ("GET", "/p%20q", "x=1&y=%22", "HTTP/1.1", 200))
            self.assertEqual(a["user_agent"], "caf\u00e9")
            self.assertIsNone(a["referer"])
            self.assertEqual(a["request_id"], "from-nginx.1")
            self.assertEqual(a["bytes"], len(r.body))
            self.assertIsInstance(a["duration_us"], int)
            self.assertEqual(b["request_id"], id2)
            self.assertEqual((c["status"], c["method"]), (400, None))
            self.assertRegex(c["request_id"], r"^[0-9a-f]{32}$")
            self.assertNotEqual(c["request_id"], id2)

    def test_untrusted_or_bad_request_id_is_replaced(self):
        with Server("echo", server={"access_log_format": "json",
                                    "forwarded_allow_ips": ""}) as s:
            r = http(s.port, "GET", "/", headers={"X-Request-Id": "mine"})
            got = json.loads(r.body)["forkd.request_id"]
            self.assertRegex(got, r"^[0-9a-f]{32}$")
        with Server("echo", server={"access_log_format": "json"}) as s:
            for bad in ("a b", "x" * 65, "\xe9"):
                r = http(s.port, "GET", "/", headers={"X-Request-Id": bad})
                got = json.loads(r.body)["forkd.request_id"]
                self.assertRegex(got, r"^[0-9a-f]{32}$", bad)

    def test_bad_format_refused(self):
        d = tempfile.mkdtemp(prefix="forkd-fmt-")
        self.addCleanup(shutil.rmtree, d, True)
        ini = os.path.join(d, "f.ini")
        with open(ini, "w") as f:
            f.write("[server]\nbind = 127.0.0.1:%d\naccess_log_format = "
                    "xml\n[app]\npath = %s\n" % (free_port(),
                                                  app_path("hello")))
        rc, out, err = run_forkd(["-c", ini])
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"f\.ini:3: access_log_format: expected one of "
                         r"forkd, combined, json, got \"xml\"")


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
