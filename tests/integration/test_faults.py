"""Faults: killed and crashing workers are replaced; TERM, INT and QUIT;
handler errors (500 before the first body byte, a truncated response after);
invalid status and headers from a handler get a 500."""

import os
import shutil
import signal
import tempfile
import threading
import time
import unittest

from forkdtest import (Conn, Server, build_testapp, get, parse_one,
                       parse_responses, pid_alive, raw, raw_closed, wait_for)

WORKER_WARN = r"warn:.*worker"
# Handler failures may be logged at warn/error; a worker dying may not.
HANDLER_ERRORS = r"^(?!.*\bworker\b).*$"

TMP = None
TESTAPP = None


def setUpModule():
    global TMP, TESTAPP
    TMP = tempfile.mkdtemp(prefix="forkd-faults-")
    TESTAPP = build_testapp(TMP)


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


class Timed(threading.Thread):
    """Send raw bytes on a new connection in a thread; .data, .closed."""

    def __init__(self, port, data, timeout=5.0):
        super().__init__(daemon=True)
        self.port, self.req, self.timeout = port, data, timeout
        self.data = b""
        self.closed = None
        self.error = None

    def run(self):
        try:
            self.data, self.closed = raw_closed(self.port, self.req,
                                                self.timeout)
        except Exception as e:
            self.error = e


def sleep_req(ms):
    return (b"GET /?ms=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            % ms)


class WorkerDeathTest(unittest.TestCase):
    def test_kill_idle_worker(self):
        with Server("hello", workers=2, allow=[WORKER_WARN]) as s:
            before = s.wait_workers(2)
            self.assertEqual(len(before), 2)
            victim = before[0]
            os.kill(victim, signal.SIGKILL)
            after = s.wait_workers(2, timeout=2, exclude=[victim])
            self.assertEqual(len(after), 2, "worker not replaced in 2 s")
            self.assertNotIn(victim, after)
            line = s.wait_log(r"warn:.*worker.*\b%d\b" % victim, 2)
            self.assertIsNotNone(line, "death of %d not logged" % victim)
            self.assertRegex(line, r"(?i)signal|SIGKILL|killed|9")
            for _ in range(10):
                self.assertEqual(get(s.port).status, 200)
            self.assertTrue(s.is_running())

    def test_kill_busy_worker(self):
        with Server("sleep", workers=2, allow=[WORKER_WARN]) as s:
            c = Conn(s.port)
            try:
                c.send(b"GET /?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.2)
                busy = s.owner_of(c.sock)
                self.assertIsNotNone(busy, "no process holds the connection")
                self.assertIn(busy, s.worker_pids())
                os.kill(busy, signal.SIGKILL)
                t0 = time.monotonic()
                self.assertTrue(c.wait_closed(2),
                                "client of the killed worker not closed")
                self.assertLess(time.monotonic() - t0, 1.5)
                self.assertEqual(c.buf, b"")
            finally:
                c.close()
            for _ in range(3):
                self.assertEqual(get(s.port, "/?ms=1").status, 200)
            self.assertEqual(len(s.wait_workers(2, 2, exclude=[busy])), 2)

    def test_crashing_handler(self):
        """Invariant 6: a handler that aborts kills only its worker."""
        with Server(TESTAPP, workers=2, allow=[WORKER_WARN]) as s:
            before = s.wait_workers(2)
            data, closed = raw_closed(s.port, b"GET /crash HTTP/1.1\r\n"
                                      b"Host: x\r\n\r\n", 3)
            self.assertTrue(closed)
            self.assertEqual(parse_responses(data), [])
            self.assertIsNotNone(s.wait_log(r"warn:.*worker", 2))
            self.assertEqual(len(s.wait_workers(2, 2)), 2)
            self.assertNotEqual(set(s.worker_pids()), set(before))
            self.assertEqual(get(s.port, "/ok").body, b"path=/ok\n")

    def test_timeout_kills_worker(self):
        with Server("sleep", workers=1, server={"timeout": 1},
                    allow=[WORKER_WARN]) as s:
            (w,) = s.wait_workers(1)
            t0 = time.monotonic()
            data, closed = raw_closed(s.port, sleep_req(4000), 4)
            dt = time.monotonic() - t0
            self.assertTrue(closed)
            self.assertLess(dt, 3.5, "request ran past timeout = 1")
            for r in parse_responses(data):
                self.assertNotEqual(r.status, 200)
            self.assertIsNotNone(s.wait_log(r"warn:.*worker.*\b%d\b" % w, 2))
            self.assertEqual(len(s.wait_workers(1, 2, exclude=[w])), 1)
            self.assertEqual(get(s.port, "/?ms=1").status, 200)


class StopTest(unittest.TestCase):
    def stop_quickly(self, sig):
        with Server("sleep", workers=3) as s:
            self.assertEqual(len(s.wait_workers(3)), 3)
            procs = s.session()
            self.assertGreaterEqual(len(procs), 4)
            t0 = time.monotonic()
            s.signal(sig)
            gone = wait_for(lambda: not any(pid_alive(p) for p in procs) and
                            s.proc.poll() is not None, 5)
            self.assertTrue(gone, "processes left 5 s after signal %d: %s" %
                            (sig, [p for p in procs if pid_alive(p)]))
            self.assertLess(time.monotonic() - t0, 5)

    def test_sigterm(self):
        self.stop_quickly(signal.SIGTERM)

    def test_sigint(self):
        self.stop_quickly(signal.SIGINT)

    def test_sigterm_with_request_in_flight(self):
        with Server("sleep", workers=1) as s:
            t = Timed(s.port, sleep_req(3000), 6)
            t.start()
            time.sleep(0.2)
            procs = s.session()
            t0 = time.monotonic()
            s.signal(signal.SIGTERM)
            self.assertTrue(wait_for(lambda: not any(pid_alive(p)
                                                     for p in procs), 5))
            self.assertLess(time.monotonic() - t0, 2.5,
                            "TERM is the quick stop")
            t.join(6)

    def test_sigquit_graceful(self):
        with Server("sleep", workers=2) as s:
            procs = s.session()
            t = Timed(s.port, sleep_req(1000), 6)
            t0 = time.monotonic()
            t.start()
            time.sleep(0.2)
            s.signal(signal.SIGQUIT)
            t.join(6)
            self.assertIsNone(t.error)
            rs = parse_responses(t.data)
            self.assertTrue(rs, "in-flight request lost: %r" % t.data)
            self.assertEqual(rs[0].status, 200)
            self.assertEqual(rs[0].body, b"slept 1000 ms\n")
            self.assertTrue(wait_for(lambda: not any(pid_alive(p)
                                                     for p in procs), 5),
                            "processes left after QUIT")
            self.assertLess(time.monotonic() - t0, 4)
            self.assertEqual(s.proc.wait(1), 0)

    def test_sigquit_idle(self):
        with Server("hello", workers=2) as s:
            procs = s.session()
            s.signal(signal.SIGQUIT)
            self.assertTrue(wait_for(lambda: not any(pid_alive(p)
                                                     for p in procs), 5))
            self.assertEqual(s.proc.wait(1), 0)


class HandlerErrorTest(unittest.TestCase):
    def server(self):
        return Server(TESTAPP, workers=1, allow=[HANDLER_ERRORS])

    def get_raw(self, s, path, timeout=3):
        return raw_closed(s.port, b"GET %s HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n" % path.encode(),
                          timeout)

    def test_error_before_body_is_500(self):
        with self.server() as s:
            for path in ("/fail-early", "/fail-after-start"):
                with self.subTest(path):
                    data, closed = self.get_raw(s, path)
                    rs = parse_responses(data)
                    self.assertEqual(len(rs), 1, data)
                    self.assertEqual(rs[0].status, 500)
            # The worker lives on.
            self.assertEqual(get(s.port, "/ok").body, b"path=/ok\n")

    def test_error_after_body_truncates(self):
        with self.server() as s:
            data, closed = self.get_raw(s, "/fail-late", 5)
            self.assertTrue(closed)
            end = data.find(b"\r\n\r\n")
            self.assertGreater(end, 0, data[:200])
            r = parse_one(data[:end + 4], head_request=True)[0]
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers.get("content-length"), "1048576")
            body = data[end + 4:]
            self.assertGreater(len(body), 0)
            self.assertLess(len(body), 1048576, "response not truncated")
            self.assertEqual(get(s.port, "/ok").body, b"path=/ok\n")

    def test_error_after_body_chunked_not_terminated(self):
        with self.server() as s:
            data, closed = self.get_raw(s, "/fail-late-chunked", 5)
            self.assertTrue(closed)
            end = data.find(b"\r\n\r\n")
            self.assertGreater(end, 0, data[:200])
            r = parse_one(data[:end + 4], head_request=True)[0]
            self.assertEqual(r.status, 200)
            self.assertIn("chunked", r.headers.get("transfer-encoding", ""))
            # No last chunk: the client must see the truncation.
            self.assertEqual(parse_responses(data), [])
            self.assertFalse(data.endswith(b"0\r\n\r\n"))

    def test_error_keeps_keepalive_sane(self):
        """A 500 on a kept-alive connection leaves it usable or closed,
        never desynchronised."""
        with self.server() as s, Conn(s.port) as c:
            c.send(b"GET /fail-early HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(c.read_response(3).status, 500)
            try:
                c.send(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
                r = c.read_response(3)
            except (EOFError, ConnectionError):
                return
            self.assertEqual(r.body, b"path=/after\n")

    def test_invalid_headers_are_500(self):
        with self.server() as s:
            for path in ("/crlf-header", "/nul-header", "/hop-connection",
                         "/hop-te", "/bad-name", "/bad-status"):
                with self.subTest(path):
                    data, closed = self.get_raw(s, path)
                    rs = parse_responses(data)
                    self.assertEqual(len(rs), 1, data)
                    self.assertEqual(rs[0].status, 500, data)
                    self.assertNotIn(b"X-Injected", data)
                    self.assertNotIn(b"must not be sent", data)
                    self.assertNotIn(b"Bad Name", data)
            self.assertEqual(get(s.port, "/ok").status, 200)


if __name__ == "__main__":
    unittest.main()
