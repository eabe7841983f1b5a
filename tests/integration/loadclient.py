"""loadclient: a bounded HTTP load of the fault tests' own, counting what
was lost while a test breaks things (signals, kills, reloads, upgrades).

Load(addr, keepalive=K, close=C, path="/") runs K keep-alive client
threads (each reuses one connection) and C connection-per-request client
threads (each request on a new connection with "Connection: close") until
stop() or until its own time and request bounds are reached.  A request is
lost when no complete, expected response arrives for it: a refused
connection, a reset or close before the whole response, a timeout, a
wrong status or body.

A keep-alive connection that the server closes (or resets) with not one
byte of a response, after it had served at least one request on it, is
the race every HTTP/1.1 client must handle (RFC 9112 9.3.1: retry an
idempotent request on a new connection).  It is counted apart, in
idle_closes, and the request is retried once on a new connection; tests
that promise "clients see no close" assert that it stays 0.

Standard library only.
"""

import socket
import sys
import threading
import time

from forkdtest import Conn


def _expect_default(resp):
    return resp.status == 200


class Load:
    def __init__(self, addr, keepalive=0, close=0, path="/", expect=None,
                 duration=30.0, max_requests=100000, timeout=5.0,
                 host="x", pause=0.0, paths=None):
        """addr: a port on 127.0.0.1, (host, port) or a unix socket path.
        expect(resp) -> bool: the response is the right one (default:
        status 200).  duration, max_requests: hard bounds on the whole run
        (the load stops by itself at the first reached).  timeout: per
        request.  pause: seconds each client waits between requests.
        paths: a list of paths the clients cycle through instead of path."""
        self.addr = addr
        self.paths = list(paths) if paths else [path]
        self.expect = expect or _expect_default
        self.duration = duration
        self.max_requests = max_requests
        self.timeout = timeout
        self.host = host
        self.pause = pause
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.started = 0       # requests begun (bounded by max_requests)
        self.sent = 0          # requests done (lost + ok)
        self.ok = 0
        self.lost = []         # (monotonic time, client, path, why)
        self.idle_closes = 0   # kept-alive connections closed between requests
        self.connections = 0
        self.threads = []
        self.t0 = None
        self.t1 = None
        for i in range(keepalive):
            self.threads.append(threading.Thread(
                target=self._run, args=("ka%d" % i, True), daemon=True))
        for i in range(close):
            self.threads.append(threading.Thread(
                target=self._run, args=("cl%d" % i, False), daemon=True))

    # -- control

    def start(self):
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout=None):
        """Stop the clients and wait for them (each finishes the request it
        is in, bounded by the request timeout)."""
        self.stop_event.set()
        deadline = time.monotonic() + (timeout if timeout is not None
                                       else self.timeout + 2.0)
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.t1 = time.monotonic()
        alive = [t.name for t in self.threads if t.is_alive()]
        if alive:
            raise AssertionError("load clients still running: %s" % alive)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def wait_requests(self, n, timeout):
        """Wait until at least n requests completed (ok or lost)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.sent >= n:
                    return True
            time.sleep(0.01)
        return False

    def total(self):
        with self.lock:
            return self.sent

    # -- reporting

    def summary(self, name):
        """One line: NAME: lost N of M requests (...)."""
        secs = (self.t1 or time.monotonic()) - (self.t0 or time.monotonic())
        return ("%s: lost %d of %d requests (%d connections, %d idle "
                "keep-alive closes retried, %.1f s)" % (
                    name, len(self.lost), self.sent, self.connections,
                    self.idle_closes, secs))

    def report(self, name, extra=""):
        line = self.summary(name) + (("; " + extra) if extra else "")
        sys.stderr.write("\n[lost] " + line + "\n")
        sys.stderr.flush()
        return line

    def lost_detail(self, limit=10):
        out = []
        for t, client, path, why in self.lost[:limit]:
            out.append("  +%.3fs %s %s: %s" % (t - self.t0, client, path,
                                                why))
        if len(self.lost) > limit:
            out.append("  ... %d more" % (len(self.lost) - limit))
        return "\n".join(out)

    # -- the clients

    def _request_bytes(self, path, keepalive):
        return ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
            path, self.host,
            "" if keepalive else "Connection: close\r\n")).encode()

    def _record(self, client, path, err):
        with self.lock:
            self.sent += 1
            if err is None:
                self.ok += 1
            else:
                self.lost.append((time.monotonic(), client, path, err))

    def _more(self):
        """Reserve the next request within the bounds, or False."""
        if self.stop_event.is_set():
            return False
        if time.monotonic() - self.t0 >= self.duration:
            return False
        with self.lock:
            if self.started >= self.max_requests:
                return False
            self.started += 1
            return True

    def _connect(self):
        c = Conn(self.addr, self.timeout)
        with self.lock:
            self.connections += 1
        return c

    def _exchange(self, conn, path, keepalive):
        """Send one request on conn and read its response.  Returns the
        Response; raises EOFError, OSError or socket.timeout when none
        comes."""
        conn.send(self._request_bytes(path, keepalive))
        return conn.read_response(self.timeout)

    def _run(self, client, keepalive):
        conn = None
        served_on_conn = 0
        i = 0
        try:
            while self._more():
                path = self.paths[i % len(self.paths)]
                i += 1
                err = None
                retried = False
                while True:
                    try:
                        if conn is None:
                            conn = self._connect()
                            served_on_conn = 0
                        resp = self._exchange(conn, path, keepalive)
                        if not self.expect(resp):
                            err = "unexpected response %r" % (resp,)
                        break
                    except (EOFError, ConnectionError, socket.timeout,
                            OSError, ValueError) as e:
                        idle = (keepalive and served_on_conn > 0 and
                                conn is not None and conn.buf == b"" and
                                not isinstance(e, socket.timeout) and
                                not retried)
                        if conn is not None:
                            conn.close()
                        conn = None
                        if idle:
                            # The server closed a kept-alive connection
                            # before answering anything: retry once.
                            with self.lock:
                                self.idle_closes += 1
                            retried = True
                            continue
                        err = "%s: %s" % (type(e).__name__, e)
                        break
                self._record(client, path, err)
                if conn is not None:
                    served_on_conn += 1
                    if not keepalive or err is not None or \
                            resp.headers.get("connection", "").lower() == \
                            "close":
                        conn.close()
                        conn = None
                if err is not None:
                    time.sleep(0.005)  # not a tight loop on a dead server
                if self.pause:
                    time.sleep(self.pause)
        finally:
            if conn is not None:
                conn.close()
