"""The stats endpoint (issue 13): stats = ADDR serves /metrics (Prometheus)
and /status (JSON, and the screen of forkd status) from the master:
counters that count what was sent and survive a worker's death and a HUP,
the listen queue of TCP and unix listeners, a slow client that cannot
stall the master, promtool's check and a real Prometheus scraping it.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from forkdtest import (FORKD_BIN, Server, free_port, get, pid_alive,
                       read_text, run_forkd, stop_pid, wait_for)

METRIC_RE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')


def stats_get(addr, path, timeout=5.0):
    """(status, body) of GET path from the stats endpoint at addr."""
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX)
        target = addr[5:]
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.socket()
        target = (host, int(port))
    with s:
        s.settimeout(timeout)
        s.connect(target)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def metrics(addr):
    """{(name, labels): value} of /metrics."""
    status, text = stats_get(addr, "/metrics")
    assert status == 200, status
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = METRIC_RE.match(line)
        assert m, line
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def quiet_get(port, path, timeout):
    """get, for a background thread: a request cut off when the server
    stops is expected."""
    try:
        get(port, path, timeout=timeout)
    except OSError:
        pass


def stats_server(**kw):
    """A Server with stats on a loopback port of its own."""
    addr = "127.0.0.1:%d" % free_port()
    server = dict(kw.pop("server", {}))
    server["stats"] = addr
    s = Server(kw.pop("app", "hello"), server=server, **kw)
    s.stats = addr
    return s


class MetricsTest(unittest.TestCase):
    def test_requests_and_histogram(self):
        with stats_server(workers=2) as s:
            for _ in range(50):
                self.assertEqual(get(s.port, "/").status, 200)
            get(s.port, "/nope")  # hello answers 200 anything: still 2xx
            m = metrics(s.stats)
            self.assertEqual(m[("forkd_requests_total", '{code="2xx"}')], 51)
            self.assertEqual(m[("forkd_requests_total", '{code="5xx"}')], 0)
            count = m[("forkd_request_duration_seconds_count", "")]
            self.assertEqual(count, 51)
            buckets = sorted(
                (float(k[1][5:-2]) if "Inf" not in k[1] else float("inf"), v)
                for k, v in m.items()
                if k[0] == "forkd_request_duration_seconds_bucket")
            self.assertEqual(len(buckets), 19)
            self.assertEqual(buckets[-1][1], 51)
            self.assertEqual([v for _, v in buckets],
                             sorted(v for _, v in buckets), "cumulative")
            self.assertEqual(m[("forkd_workers", '{state="serving"}')], 2)
            self.assertEqual(m[("forkd_generation", "")], 1)
            self.assertGreater(m[("forkd_response_body_bytes_total", "")], 0)
            self.assertEqual(len([k for k in m if k[0] ==
                                  "forkd_worker_resident_bytes"]), 2)

    def test_counters_survive_death_and_hup(self):
        with stats_server(workers=2, allow=[
                r"warn: worker \d+ \(pid \d+\) killed by signal 9"]) as s:
            for _ in range(40):
                get(s.port, "/")
            # A worker counts a response just after its last byte went
            # out: give it that instant before killing it.
            time.sleep(0.3)
            for pid in s.worker_pids():
                os.kill(pid, signal.SIGKILL)
            s.wait_workers(2, 5, exclude=s.known_pids)
            m = metrics(s.stats)
            self.assertEqual(m[("forkd_requests_total", '{code="2xx"}')], 40)
            self.assertEqual(m[("forkd_worker_restarts_total",
                                '{reason="crash"}')], 2)
            s.signal(signal.SIGHUP)
            self.assertTrue(s.wait_log(r"reload done", 10))
            for _ in range(10):
                get(s.port, "/")
            m = metrics(s.stats)
            self.assertEqual(m[("forkd_requests_total", '{code="2xx"}')], 50)
            self.assertEqual(m[("forkd_generation", "")], 2)
            self.assertTrue(wait_for(lambda: metrics(s.stats)[(
                "forkd_worker_restarts_total", '{reason="reload"}')] == 2, 5))

    def test_promtool_accepts_it(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool missing: scripts/deps.sh")
        with stats_server(workers=2, server={"threads": 2}) as s:
            for _ in range(5):
                get(s.port, "/")
            status, text = stats_get(s.stats, "/metrics")
            r = subprocess.run([promtool, "check", "metrics"],
                               input=text.encode(), capture_output=True,
                               timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class QueueTest(unittest.TestCase):
    """Every worker busy in a 3 s request: N more connections wait in the
    listen queue, and the stats say N."""

    def fill(self, s, connect, n):
        busy = threading.Thread(target=quiet_get,
                                args=(s.port, "/?ms=3000", 10))
        busy.start()
        self.addCleanup(busy.join, 10)
        time.sleep(0.3)
        socks = []
        for _ in range(n):
            socks.append(connect())
        for c in socks:
            self.addCleanup(c.close)
        return socks

    def queue_of(self, s):
        status, text = stats_get(s.stats, "/status")
        self.assertEqual(status, 200)
        return json.loads(text)["listeners"]

    def test_tcp_queue(self):
        with stats_server(app="sleep", workers=1) as s:
            self.fill(s, lambda: socket.create_connection(
                ("127.0.0.1", s.port)), 5)
            self.assertTrue(wait_for(
                lambda: self.queue_of(s)[0]["queue"] == 5, 2),
                self.queue_of(s))
            q = self.queue_of(s)[0]
            self.assertGreaterEqual(q["peak"], 5)
            self.assertEqual(q["limit"], 2048)
            m = metrics(s.stats)
            key = ('{listener="http://127.0.0.1:%d"}' % s.port)
            self.assertEqual(m[("forkd_listen_queue_length", key)], 5)

    def test_unix_queue(self):
        d = tempfile.mkdtemp(prefix="forkd-stats-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "app.sock")
        s = stats_server(app="sleep", workers=1, server={
            "bind": ["127.0.0.1:{port}", "unix:" + path]})

        def unix():
            c = socket.socket(socket.AF_UNIX)
            c.connect(path)
            return c
        with s:
            self.fill(s, unix, 4)
            self.assertTrue(wait_for(lambda: [
                x["queue"] for x in self.queue_of(s)] == [0, 4], 2),
                self.queue_of(s))

    def test_overflow_counted(self):
        with stats_server(app="sleep", workers=1,
                          server={"backlog": 1}) as s:
            # Linux counts overflows for the whole host.
            before = metrics(s.stats)[("forkd_host_listen_overflows_total",
                                       "")]
            socks = []
            busy = threading.Thread(target=quiet_get,
                                    args=(s.port, "/?ms=3000", 10))
            busy.start()
            self.addCleanup(busy.join, 10)
            time.sleep(0.3)
            for _ in range(8):
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", s.port))
                socks.append(c)
            for c in socks:
                self.addCleanup(c.close)
            self.assertTrue(wait_for(lambda: metrics(s.stats)[
                ("forkd_host_listen_overflows_total", "")] > before, 3),
                metrics(s.stats))


class EndpointTest(unittest.TestCase):
    def test_slow_client_does_not_stall_the_master(self):
        with stats_server(workers=2, allow=[
                r"warn: worker \d+ \(pid \d+\) killed by signal 9"]) as s:
            host, port = s.stats.rsplit(":", 1)
            # Every client slot, each with half a request and no more.
            stuck = [socket.create_connection((host, int(port)))
                     for _ in range(8)]
            for c in stuck:
                self.addCleanup(c.close)
                c.sendall(b"GET /metr")
            time.sleep(0.3)
            t0 = time.monotonic()
            victim = s.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            self.assertTrue(len(s.wait_workers(2, 2, exclude=[victim])) == 2,
                            "the master did not replace a worker")
            # The stuck ones are dropped after 2 s; then it answers.
            status, _ = stats_get(s.stats, "/metrics", timeout=6)
            self.assertEqual(status, 200)
            took = time.monotonic() - t0
            self.assertGreater(took, 1.5, "answered with every slot taken?")
            self.assertLess(took, 5)
            for c in stuck:
                c.settimeout(1)
                self.assertEqual(c.recv(10), b"", "not closed")

    def test_not_found_and_method(self):
        with stats_server() as s:
            self.assertEqual(stats_get(s.stats, "/")[0], 404)
            host, port = s.stats.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=5) as c:
                c.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(c.recv(4096).startswith(
                    b"HTTP/1.1 405 Method Not Allowed\r\n"))

    def test_refuses_non_loopback(self):
        d = tempfile.mkdtemp(prefix="forkd-stats-")
        self.addCleanup(shutil.rmtree, d, True)
        ini = os.path.join(d, "f.ini")
        with open(ini, "w") as f:
            f.write("[server]\nstats = 0.0.0.0:9100\n[app]\npath = x.so\n")
        rc, out, err = run_forkd(["-c", ini])
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"f\.ini:2: stats: \"0\.0\.0\.0:9100\": want "
                         r"unix:PATH or a loopback HOST:PORT")


class IdleTest(unittest.TestCase):
    """The endpoint costs an idle worker nothing: it lives in the master,
    and the workers' counters are plain stores on the request path.  Each
    idle worker's system calls over 2 s, with stats on and off, stay
    within 10 % of each other (both are the epoll timeout's, once a
    second, after the watchdog's first quiet second: test_idle.py)."""

    def calls(self, s):
        strace = shutil.which("strace")
        self.assertIsNotNone(strace, "strace missing: scripts/deps.sh")
        worker = s.worker_pids()[0]
        time.sleep(1.5)  # past the watchdog's quiet second
        out = s.path("strace.%d" % worker)
        p = subprocess.Popen([strace, "-c", "-f", "-o", out, "-p",
                              str(worker)], stderr=subprocess.DEVNULL)
        time.sleep(2)
        p.send_signal(signal.SIGINT)
        p.wait(10)
        m = re.search(r"^100\.00\s+\S+\s+\S+\s+(\d+)", read_text(out), re.M)
        self.assertIsNotNone(m, read_text(out))
        return int(m.group(1))

    def test_no_wakeups_from_stats(self):
        with stats_server(workers=1) as s:
            # Scrapes going on meanwhile, as Prometheus would.
            stop = threading.Event()

            def scrape():
                while not stop.is_set():
                    stats_get(s.stats, "/metrics")
                    time.sleep(0.2)
            t = threading.Thread(target=scrape)
            t.start()
            try:
                on = self.calls(s)
            finally:
                stop.set()
                t.join(5)
        with Server("hello", workers=1) as s:
            off = self.calls(s)
        print("\n[idle] worker system calls in 2 s: %d with stats on and "
              "scraped, %d with stats off" % (on, off), file=sys.stderr)
        self.assertLessEqual(on, off * 1.1 + 10, (on, off))


class StatusCommandTest(unittest.TestCase):
    def test_screen_and_json(self):
        with stats_server(workers=2, server={"threads": 2}) as s:
            for _ in range(3):
                get(s.port, "/")
            r = subprocess.run([FORKD_BIN, "status", "-c", s.ini],
                               capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            out = r.stdout.decode()
            self.assertRegex(out, r"forkd: up \d+h\d\dm\d\ds, generation 1; "
                             r"workers 2 serving of 2 wanted")
            self.assertIn("listen queue http://127.0.0.1:%d: 0 now" % s.port,
                          out)
            self.assertIn("requests: 3 (2xx 3,", out)
            rows = [x for x in out.splitlines()
                    if re.match(r"^\s+\d+\s+\d+\s+1 serving", x)]
            self.assertEqual(len(rows), 2, out)
            r = subprocess.run([FORKD_BIN, "status", "-c", s.ini, "--json"],
                               capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            doc = json.loads(r.stdout)
            self.assertEqual(doc["requests"], 3)
            self.assertEqual(len(doc["workers"]), 2)
            self.assertEqual(len(doc["workers"][0]["threads"]), 2)
            addr = s.stats
        r = subprocess.run([FORKD_BIN, "status", "--stats", addr],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r"^forkd status: no forkd answers on "
                         r"127\.0\.0\.1:\d+: Connection refused$")

    def test_busy_thread_shown(self):
        with stats_server(app="sleep", workers=1) as s:
            t = threading.Thread(target=quiet_get,
                                 args=(s.port, "/slow?ms=1500", 10))
            t.start()
            self.addCleanup(t.join, 10)
            time.sleep(0.4)
            r = subprocess.run([FORKD_BIN, "status", "--stats", s.stats],
                               capture_output=True, timeout=10)
            self.assertRegex(r.stdout.decode(),
                             r"busy +\d+ ms  GET /slow\?ms=1500 \(127\.0\.0\.1\)")


class PrometheusTest(unittest.TestCase):
    """A real Prometheus scrapes forkd every second; what it stored grew by
    the requests sent."""

    def query(self, port, q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            port, urllib.parse.urlencode({"query": q}))
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.loads(r.read())
        res = doc["data"]["result"]
        return float(res[0]["value"][1]) if res else None

    def test_scraped(self):
        prom = shutil.which("prometheus")
        self.assertIsNotNone(prom, "prometheus missing: scripts/deps.sh")
        d = tempfile.mkdtemp(prefix="forkd-prom-")
        self.addCleanup(shutil.rmtree, d, True)
        with stats_server(workers=2) as s:
            conf = os.path.join(d, "prometheus.yml")
            with open(conf, "w") as f:
                f.write("global:\n  scrape_interval: 1s\n"
                        "scrape_configs:\n  - job_name: forkd\n"
                        "    static_configs:\n      - targets: ['%s']\n"
                        % s.stats)
            web = free_port()
            log = open(os.path.join(d, "log"), "wb")
            p = subprocess.Popen(
                [prom, "--config.file", conf, "--storage.tsdb.path",
                 os.path.join(d, "data"), "--web.listen-address",
                 "127.0.0.1:%d" % web], stdout=log, stderr=log,
                start_new_session=True)
            try:
                q = 'sum(forkd_requests_total{job="forkd"})'
                self.assertTrue(wait_for(lambda: self.try_query(web, q)
                                         is not None, 30),
                                read_text(os.path.join(d, "log"))[-3000:])
                before = self.try_query(web, q)
                hb = self.try_query(
                    web, "forkd_request_duration_seconds_count")
                for _ in range(100):
                    get(s.port, "/")
                self.assertTrue(wait_for(
                    lambda: self.try_query(web, q) == before + 100, 15),
                    (before, self.try_query(web, q)))
                after = self.try_query(web, q)
                self.assertEqual(self.try_query(
                    web, "forkd_request_duration_seconds_count"), hb + 100)
                print("\n[prometheus] %s: %g before, %g after 100 requests; "
                      "forkd_request_duration_seconds_count: %g -> %g" % (
                          q, before, after, hb, hb + 100), file=sys.stderr)
            finally:
                stop_pid(p.pid)
                p.wait(10)
                log.close()

    def try_query(self, port, q):
        try:
            return self.query(port, q)
        except OSError:
            return None


if __name__ == "__main__":
    unittest.main()
