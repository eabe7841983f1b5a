"""HTTP/1.1 behaviour: keep-alive, pipelining, HEAD, 100-continue, slow
clients, malformed requests, limits, timeouts, and invariants 1-3 of
DESIGN.md (one request at a time per worker, busy workers take no work,
idle clients hold no worker)."""

import json
import threading
import time
import unittest
from http import client as httpclient

from forkdtest import (Conn, Server, connect, get, parse_responses, raw,
                       raw_closed, recv_all)

GOOD = b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
# Warn lines that name the peer are acceptable for client errors.
PEER = r"127\.0\.0\.1"


def env_of(resp):
    return json.loads(resp.body.decode("utf-8"))


class Timed(threading.Thread):
    """A request on its own connection in a thread; .result, .t_end."""

    def __init__(self, port, path, timeout=5.0):
        super().__init__(daemon=True)
        self.port, self.path, self.timeout = port, path, timeout
        self.result = None
        self.error = None
        self.t_end = None

    def run(self):
        try:
            self.result = get(self.port, self.path, timeout=self.timeout)
        except Exception as e:  # reported by the test
            self.error = e
        self.t_end = time.monotonic()


class KeepAliveTest(unittest.TestCase):
    def test_keepalive_same_socket(self):
        with Server("echo") as s:
            conn = httpclient.HTTPConnection("127.0.0.1", s.port, timeout=5)
            try:
                ports = set()
                socks = set()
                for i in range(4):
                    conn.request("GET", "/k%d" % i)
                    r = conn.getresponse()
                    body = r.read()
                    self.assertEqual(r.status, 200)
                    self.assertNotEqual((r.getheader("Connection") or "")
                                        .lower(), "close")
                    env = json.loads(body)
                    self.assertEqual(env["PATH_INFO"], "/k%d" % i)
                    ports.add(str(env["REMOTE_PORT"]))
                    socks.add(id(conn.sock))
                self.assertEqual(len(ports), 1, "one connection for all")
                self.assertEqual(len(socks), 1)
            finally:
                conn.close()

    def test_http10_closes(self):
        with Server("hello") as s:
            data, closed = raw_closed(s.port, b"GET / HTTP/1.0\r\n\r\n", 3)
            self.assertTrue(closed, "HTTP/1.0 without keep-alive must close")
            (r,) = parse_responses(data)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"Hello, World!\n")
            self.assertNotIn("chunked", r.headers.get("transfer-encoding",
                                                      ""))

    def test_http10_keepalive(self):
        with Server("hello") as s, Conn(s.port) as c:
            for i in range(2):
                c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                r = c.read_response(timeout=3)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"Hello, World!\n")
                self.assertEqual(r.headers.get("connection", "").lower(),
                                 "keep-alive")
            self.assertFalse(c.wait_closed(0.3), "closed a 1.0 keep-alive")

    def test_connection_close(self):
        with Server("hello") as s, Conn(s.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers.get("connection", "").lower(), "close")
            self.assertTrue(c.wait_closed(3), "socket not closed")

    def test_idle_keepalive_timeout(self):
        with Server("hello", server={"keepalive": 1}) as s, Conn(s.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(c.read_response(timeout=3).status, 200)
            t0 = time.monotonic()
            self.assertTrue(c.wait_closed(4), "idle connection kept > 4 s")
            dt = time.monotonic() - t0
            self.assertGreaterEqual(dt, 0.5, "closed before keepalive = 1")
            self.assertEqual(c.buf, b"")

    def test_keepalive_zero_disables(self):
        with Server("hello", server={"keepalive": 0}) as s, Conn(s.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers.get("connection", "").lower(), "close")
            self.assertTrue(c.wait_closed(2))

    def test_body_timeout(self):
        with Server("echo", workers=1, server={"body_timeout": 1},
                    allow=[PEER, r"(?i)timeout|timed out|body"]) as s, \
                Conn(s.port) as c:
            c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                   b"\r\nabc")
            t0 = time.monotonic()
            self.assertTrue(c.wait_closed(4), "stalled body kept > 4 s")
            self.assertGreaterEqual(time.monotonic() - t0, 0.5)
            for r in parse_responses(c.buf):
                self.assertNotEqual(r.status, 200)
            self.assertEqual(get(s.port, "/after").status, 200)

    def test_max_connections(self):
        """Waiting connections are bounded: past max_connections the
        oldest is closed, and requests are still served."""
        with Server("hello", workers=1,
                    server={"max_connections": 3}) as s:
            idle = []
            try:
                for _ in range(6):
                    # A byte of a head: a silent connection is not even
                    # accepted yet (TCP_DEFER_ACCEPT keeps it in the kernel).
                    idle.append(connect(s.port, 3))
                    idle[-1].sendall(b"G")
                    time.sleep(0.05)
                self.assertEqual(get(s.port, "/", timeout=3).status, 200)
                closed = []
                for c in idle:
                    closed.append(recv_all(c, 0.3)[1])
                self.assertTrue(closed[0], "oldest waiting connection open")
                self.assertLessEqual(closed.count(False), 3, closed)
            finally:
                for c in idle:
                    c.close()

    def test_header_timeout(self):
        with Server("hello", server={"header_timeout": 1},
                    allow=[PEER, r"(?i)timeout|timed out"]) as s, \
                Conn(s.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
            t0 = time.monotonic()
            self.assertTrue(c.wait_closed(4), "partial head kept > 4 s")
            self.assertGreaterEqual(time.monotonic() - t0, 0.5)
            if c.buf:
                (r,) = parse_responses(c.buf)
                self.assertEqual(r.status, 408)


class FramingTest(unittest.TestCase):
    def test_pipelining(self):
        with Server("echo") as s, Conn(s.port) as c:
            c.send(b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                   b"hello"
                   b"HEAD /p3 HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /p4?x HTTP/1.1\r\nHost: x\r\n\r\n")
            r1 = c.read_response(timeout=3)
            r2 = c.read_response(timeout=3)
            r3 = c.read_response(timeout=3, head_request=True)
            r4 = c.read_response(timeout=3)
            self.assertEqual([r.status for r in (r1, r2, r3, r4)], [200] * 4)
            self.assertEqual(env_of(r1)["PATH_INFO"], "/p1")
            e2 = env_of(r2)
            self.assertEqual(e2["PATH_INFO"], "/p2")
            self.assertEqual(e2["body"], "hello")
            self.assertEqual(r3.body, b"")
            e4 = env_of(r4)
            self.assertEqual(e4["PATH_INFO"], "/p4")
            self.assertEqual(e4["QUERY_STRING"], "x")
            self.assertEqual(c.buf, b"")

    def test_pipelining_three_in_one_send(self):
        with Server("echo") as s:
            req = b"".join(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                           for i in range(1, 3)) + \
                b"GET /r3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            rs = parse_responses(raw(s.port, req, 3))
            self.assertEqual([env_of(r)["PATH_INFO"] for r in rs],
                             ["/r1", "/r2", "/r3"])

    def test_pipelining_stops_at_connection_close(self):
        with Server("echo") as s:
            data, closed = raw_closed(
                s.port, b"GET /c1 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /c2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                b"GET /c3 HTTP/1.1\r\nHost: x\r\n\r\n", 3)
            self.assertTrue(closed)
            rs = parse_responses(data)
            self.assertEqual([env_of(r)["PATH_INFO"] for r in rs],
                             ["/c1", "/c2"])

    def test_head(self):
        with Server("hello") as s, Conn(s.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            g = c.read_response(timeout=3)
            c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
            h = c.read_response(timeout=3, head_request=True)
            self.assertEqual(h.status, 200)
            self.assertEqual(h.body, b"")
            self.assertEqual(h.headers.get("content-length"), "14")
            hg = dict(g.headers)
            hh = dict(h.headers)
            hg.pop("date", None)
            hh.pop("date", None)
            self.assertEqual(hh, hg)
            # No body bytes were sent after the HEAD response.
            self.assertFalse(c.wait_closed(0.2))
            self.assertEqual(c.buf, b"")
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(c.read_response(timeout=3).body,
                             b"Hello, World!\n")

    def test_100_continue(self):
        with Server("echo") as s, Conn(s.port) as c:
            c.send(b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   b"Expect: 100-continue\r\n\r\n")
            head = c.read_head(timeout=3)
            self.assertTrue(head.startswith(b"HTTP/1.1 100 Continue\r\n"),
                            head)
            c.send(b"hello")
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 200)
            env = env_of(r)
            self.assertEqual(env["body"], "hello")
            self.assertEqual(env["body_length"], 5)

    def test_one_byte_at_a_time(self):
        req = (b"POST /slow/path?q=1 HTTP/1.1\r\nHost: x\r\n"
               b"X-Test: one byte\r\nContent-Length: 3\r\n"
               b"Connection: close\r\n\r\nabc")
        with Server("echo") as s, Conn(s.port) as c:
            for i in range(len(req)):
                c.send(req[i:i + 1])
                time.sleep(0.001)
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 200)
            env = env_of(r)
            self.assertEqual(env["PATH_INFO"], "/slow/path")
            self.assertEqual(env["HTTP_X_TEST"], "one byte")
            self.assertEqual(env["body"], "abc")


MALFORMED = [
    ("garbage request line", b"HELLO THERE\r\n\r\n"),
    ("no HTTP version", b"GET /\r\nHost: x\r\n\r\n"),
    ("header without colon",
     b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
    ("space before colon", b"GET / HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n"),
    ("non-numeric Content-Length",
     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
    ("negative Content-Length",
     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
    ("conflicting Content-Length",
     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
     b"Content-Length: 2\r\n\r\nab"),
    ("Transfer-Encoding and Content-Length",
     b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     b"Content-Length: 5\r\n\r\n0\r\n\r\n"),
    ("missing Host on HTTP/1.1", b"GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n"),
    ("two Host fields", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("bare LF line ends", b"GET / HTTP/1.1\nHost: x\n\n"),
    ("control byte in target", b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n"),
]


class MalformedTest(unittest.TestCase):
    def test_malformed_requests(self):
        with Server("echo", allow=[PEER]) as s:
            for name, req in MALFORMED:
                with self.subTest(name):
                    data, closed = raw_closed(s.port, req + GOOD, 3)
                    rs = parse_responses(data)
                    self.assertTrue(rs, "no response: %r" % data)
                    self.assertEqual(rs[0].status, 400, rs[0])
                    self.assertEqual(len(rs), 1,
                                     "answered the request after a bad one")
                    self.assertTrue(closed, "connection not closed")
            # The workers survived all that.
            self.assertEqual(get(s.port, "/ok").status, 200)


LIMITS = {"limit_request_line": 1024, "limit_request_fields": 10,
          "limit_request_field_size": 512, "limit_request_body": 1000}


class LimitsTest(unittest.TestCase):
    def rejected(self, s, req, status):
        data, closed = raw_closed(s.port, req + GOOD, 3)
        rs = parse_responses(data)
        self.assertTrue(rs, "no response: %r" % data[:300])
        self.assertEqual(rs[0].status, status, rs[0])
        self.assertEqual(len(rs), 1, "answered the request after a bad one")
        self.assertTrue(closed, "connection not closed after %d" % status)

    def accepted(self, s, req):
        data = raw(s.port, req.replace(b"\r\n\r\n", b"\r\nConnection: close"
                                       b"\r\n\r\n", 1), 3)
        rs = parse_responses(data)
        self.assertTrue(rs, "no response")
        self.assertEqual(rs[0].status, 200, rs[0])
        return rs[0]

    def test_request_line(self):
        with Server("echo", server=LIMITS, allow=[PEER]) as s:
            self.accepted(s, b"GET /" + b"a" * 900 + b" HTTP/1.1\r\n"
                          b"Host: x\r\n\r\n")
            self.rejected(s, b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\n"
                          b"Host: x\r\n\r\n", 414)

    def test_header_count(self):
        def req(n):
            return b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
                b"X-H%d: %d\r\n" % (i, i) for i in range(n)) + b"\r\n"
        with Server("echo", server=LIMITS, allow=[PEER]) as s:
            # Host plus 8 fields plus the Connection: close added = 10.
            self.accepted(s, req(8))
            self.rejected(s, req(10), 431)

    def test_header_size(self):
        with Server("echo", server=LIMITS, allow=[PEER]) as s:
            self.accepted(s, b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " +
                          b"a" * 400 + b"\r\n\r\n")
            self.rejected(s, b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " +
                          b"a" * 600 + b"\r\n\r\n", 431)

    def test_body_size(self):
        with Server("echo", server=LIMITS, allow=[PEER]) as s:
            r = self.accepted(s, b"POST / HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 1000\r\n\r\n" + b"b" * 1000)
            self.assertEqual(env_of(r)["body_length"], 1000)
            # Answered at once, without waiting for the body.
            t0 = time.monotonic()
            self.rejected(s, b"POST / HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 1001\r\n\r\n", 413)
            self.assertLess(time.monotonic() - t0, 1.0)

    def test_body_size_chunked(self):
        with Server("echo", server=LIMITS, allow=[PEER]) as s:
            chunk = b"%x\r\n%s\r\n" % (600, b"c" * 600)
            data, closed = raw_closed(
                s.port, b"POST / HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + chunk + chunk +
                b"0\r\n\r\n" + GOOD, 3)
            rs = parse_responses(data)
            self.assertTrue(rs, "no response: %r" % data[:300])
            self.assertEqual(rs[0].status, 413, rs[0])
            self.assertEqual(len(rs), 1)
            self.assertTrue(closed)


class ConcurrencyTest(unittest.TestCase):
    def test_idle_clients_hold_no_worker(self):
        """Invariant 3: with one worker, idle connections, a partial head
        and a parked keep-alive connection do not delay a new request."""
        with Server("hello", workers=1) as s:
            idle = []
            try:
                for _ in range(5):
                    idle.append(connect(s.port, 3))
                partial = connect(s.port, 3)
                idle.append(partial)
                partial.sendall(b"GET /partial HTTP/1.1\r\nHost: x\r\n")
                parked = Conn(s.port)
                parked.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(parked.read_response(timeout=2).status, 200)
                time.sleep(0.1)
                for i in range(3):
                    t0 = time.monotonic()
                    r = get(s.port, "/", timeout=3)
                    self.assertEqual(r.status, 200)
                    self.assertLess(time.monotonic() - t0, 1.0)
                # The waiting ones are served when they complete.
                partial.sendall(b"Connection: close\r\n\r\n")
                data, _ = recv_all(partial, 3)
                self.assertEqual(parse_responses(data)[0].status, 200)
                parked.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(parked.read_response(timeout=2).status, 200)
                parked.close()
            finally:
                for c in idle:
                    c.close()

    def test_one_request_at_a_time_per_worker(self):
        """Invariant 1: one worker serves the second sleep after the first."""
        with Server("sleep", workers=1) as s:
            t0 = time.monotonic()
            a = Timed(s.port, "/?ms=500")
            a.start()
            time.sleep(0.1)
            b = Timed(s.port, "/?ms=100")
            b.start()
            a.join(5)
            b.join(5)
            for t in (a, b):
                self.assertIsNone(t.error)
                self.assertEqual(t.result.status, 200)
            self.assertGreaterEqual(b.t_end, a.t_end - 0.01)
            self.assertGreaterEqual(b.t_end - t0, 0.59)

    def test_two_workers_two_sleeps(self):
        with Server("sleep", workers=2) as s:
            t0 = time.monotonic()
            ts = [Timed(s.port, "/?ms=500") for _ in range(2)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(5)
            dt = time.monotonic() - t0
            for t in ts:
                self.assertIsNone(t.error)
                self.assertEqual(t.result.body, b"slept 500 ms\n")
            self.assertGreaterEqual(dt, 0.5)
            self.assertLess(dt, 0.9, "two workers should sleep in parallel")

    def test_busy_worker_takes_no_connection(self):
        """Invariant 2: while one of two workers is busy, new connections
        all go to the idle one."""
        with Server("sleep", workers=2) as s:
            slow = Timed(s.port, "/?ms=1500")
            slow.start()
            time.sleep(0.2)
            for i in range(4):
                t0 = time.monotonic()
                r = get(s.port, "/?ms=1", timeout=3)
                self.assertEqual(r.status, 200)
                self.assertLess(time.monotonic() - t0, 0.5,
                                "request %d waited for the busy worker" % i)
            slow.join(5)
            self.assertIsNone(slow.error)
            self.assertEqual(slow.result.status, 200)

    def test_keepalive_no_head_of_line_blocking(self):
        """Invariant 2 for kept-alive connections: a request on a connection
        parked in a busy worker is served by the idle worker."""
        with Server("sleep", workers=2) as s:
            conns = []
            try:
                for i in range(6):
                    c = Conn(s.port)
                    conns.append(c)
                    c.send(b"GET /?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(c.read_response(timeout=2).status, 200)
                time.sleep(0.05)
                by_owner = s.by_owner(conns)
                self.assertNotIn(None, by_owner,
                                 "cannot tell which worker holds a parked "
                                 "connection")
                group = max(by_owner.values(), key=len)
                self.assertGreaterEqual(len(group), 2)
                busy, other = group[0], group[1]
                busy.send(b"GET /?ms=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.15)
                t0 = time.monotonic()
                other.send(b"GET /?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n")
                r = other.read_response(timeout=3)
                dt = time.monotonic() - t0
                self.assertEqual(r.status, 200)
                self.assertLess(dt, 0.5, "waited for the busy worker")
                self.assertEqual(busy.read_response(timeout=3).body,
                                 b"slept 1000 ms\n")
            finally:
                for c in conns:
                    c.close()

    def test_keepalive_handoff_twelve_connections(self):
        """Issue 7: 3 sync workers, 12 kept-alive connections that served
        one request each, 2 workers busy with 1-second requests, then one
        request on each of the 12: all answered well under the second."""
        with Server("sleep", workers=3, server={"keepalive": 30}) as s:
            conns = []
            try:
                for _ in range(12):
                    c = Conn(s.port)
                    c.send(b"GET /?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(c.read_response(timeout=3).status, 200)
                    conns.append(c)
                busy = [Conn(s.port) for _ in range(2)]
                conns.extend(busy)
                for b in busy:
                    b.send(b"GET /?ms=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.2)
                t0 = time.monotonic()
                for c in conns[:12]:
                    c.send(b"GET /?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n")
                worst = 0.0
                for c in conns[:12]:
                    r = c.read_response(timeout=3)
                    self.assertEqual(r.status, 200)
                    worst = max(worst, time.monotonic() - t0)
                self.assertLess(worst, 0.5, "a request waited for a busy "
                                "worker while one was idle")
                for b in busy:
                    self.assertEqual(b.read_response(timeout=3).status, 200)
            finally:
                for c in conns:
                    c.close()


if __name__ == "__main__":
    unittest.main()
