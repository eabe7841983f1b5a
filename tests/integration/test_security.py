"""Issue 11: the desync, privilege and stall holes of an outside review.

One or more regression tests per finding, named test_fN_... after it (and
test_extra_... for the smaller ones the issue lists), each written from
the description of the hole and proved to fail against the code before
the fix (34515fe).  The careless handlers they need are in
tests/handlers/*.c and are compiled here, once per module, into a
directory the workers' user may read.  The privilege tests need a root
master (CI runs as root) and skip otherwise."""

import os
import pwd
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import forkdtest
from forkdtest import (REPO, Conn, Incomplete, Server, compile_so, connect,
                       free_port, get, parse_one, parse_responses, pid_alive,
                       raw, recv_all, run_forkd, wait_for)

HANDLERS = os.path.join(REPO, "tests", "handlers")
# Client errors are logged with the peer's address.
PEER = r"127\.0\.0\.1"
# A handler's misuse of the API is logged as "handler: ...".
HANDLER = r"handler"
IS_ROOT = os.geteuid() == 0

TMP = None
_built = {}


def setUpModule():
    global TMP
    TMP = tempfile.mkdtemp(prefix="forkd-security-")
    # The workers run as nobody when the tests run as root: they (and a
    # server that loads the handler in an unprivileged child) must be
    # able to read the handlers.
    os.chmod(TMP, 0o755)


def tearDownModule():
    if TMP and not forkdtest.KEEP:
        shutil.rmtree(TMP, ignore_errors=True)


def server_include():
    """The server/ headers of the tree FORKD_BIN was built from (ROOT/
    build/forkd -> ROOT/server), so that a handler that needs the
    scoreboard's layout gets the one of the binary under test."""
    root = os.path.dirname(os.path.dirname(forkdtest.FORKD_BIN))
    inc = os.path.join(root, "server")
    if os.path.exists(os.path.join(inc, "scoreboard.h")):
        return inc
    return os.path.join(REPO, "server")


def handler(name, extra=()):
    """tests/handlers/NAME.c compiled into TMP/NAME.so (once)."""
    key = (name, tuple(extra))
    if key not in _built:
        with open(os.path.join(HANDLERS, name + ".c")) as f:
            text = f.read()
        _built[key] = compile_so(TMP, name, text, list(extra))
    return _built[key]


def req(path, method="GET", headers=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: x"] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_all(data):
    """Every response in data, each framed by its head (Content-Length or
    chunked; never close-delimited), covering every byte: raises
    AssertionError naming the first byte that is not part of a framed
    response."""
    out = []
    rest = data
    for _ in range(64):
        if not rest:
            return out
        if not rest.startswith(b"HTTP/1.1 "):
            raise AssertionError(
                "%d stray bytes after %d framed response(s): %r..." % (
                    len(rest), len(out), rest[:60]))
        try:
            resp, n = parse_one(rest)
        except Incomplete:
            raise AssertionError("a response cut short after %d framed "
                                 "one(s): %r..." % (len(out), rest[:200]))
        h = resp.headers
        if not ("content-length" in h or "chunked" in h.get(
                "transfer-encoding", "") or resp.status in (204, 304)):
            raise AssertionError("response not framed: %r" % resp.head)
        out.append(resp)
        rest = rest[n:]
    raise AssertionError("more than 64 responses")


def proc_cpu_s(pid):
    """User + system CPU seconds of process pid (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    fields = data[data.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].split()
    return None


def nofile_soft(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


def count_lines(path, regex, limit=10 ** 7):
    """Lines of path matching regex, at most limit (read line by line:
    the file may be huge)."""
    r = re.compile(regex.encode())
    n = 0
    try:
        with open(path, "rb") as f:
            for line in f:
                if r.search(line):
                    n += 1
                    if n >= limit:
                        break
    except OSError:
        pass
    return n


class NoFile:
    """Run forkd with RLIMIT_NOFILE soft/hard: FORKD_BIN becomes a small
    wrapper that sets the limits and execs the real binary (same pid)."""

    def __init__(self, soft, hard):
        self.soft, self.hard = soft, hard
        self.path = os.path.join(TMP, "forkd-nofile-%d-%d" % (soft, hard))

    def __enter__(self):
        self.real = forkdtest.FORKD_BIN
        with open(self.path, "w") as f:
            f.write("#!%s\nimport os, resource, sys\n"
                    "resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d))\n"
                    "os.execv(%r, [%r] + sys.argv[1:])\n" % (
                        sys.executable, self.soft, self.hard, self.real,
                        self.real))
        os.chmod(self.path, 0o755)
        forkdtest.FORKD_BIN = self.path
        return self

    def __exit__(self, *exc):
        forkdtest.FORKD_BIN = self.real
        return False


def nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        raise unittest.SkipTest("no user nobody")


# --- F1: a failed body, then the connection is reused ------------------------

class BodyErrorTest(unittest.TestCase):
    """Finding 1: once the request body failed, the connection is never
    reused whatever the handler answers, and every later forkd_read
    returns -1.  careless_read ignores the -1 and answers 200."""

    def check_one_answer(self, data, closed):
        self.assertNotIn(b"/smuggled", data,
                         "the request inside the body was served")
        rs = parse_responses(data)
        self.assertEqual(len(rs), 1, "one response expected: %r" % data)
        self.assertTrue(closed, "the connection stayed open after a "
                        "failed body: %r" % data)
        r = rs[0]
        self.assertIn("close", r.headers.get("connection", "").lower(),
                      "no Connection: close: %r" % r.head)
        if r.status == 200:
            self.assertTrue(r.body.startswith(b"path=/first "), r.body)
            self.assertIn(b"again=-1", r.body,
                          "forkd_read after the failure: %r" % r.body)

    def test_f1_malformed_chunk_end_no_reuse(self):
        inner = req("/smuggled")
        data = b"0\r\n\r\n" + inner
        head = req("/first", "POST", ["Transfer-Encoding: chunked"])
        with Server(handler("careless_read"), workers=1,
                    allow=[PEER, HANDLER]) as s:
            with Conn(s.port) as c:
                c.send(head + b"%x\r\n" % len(data))
                time.sleep(0.2)
                # The chunk data, then "\rX" where its CRLF belongs.
                c.send(data + b"\rX")
                got, closed = recv_all(c.sock, 3)
            self.check_one_answer(got, closed)

    def test_f1_over_limit_chunked_body_no_reuse(self):
        inner = req("/smuggled")
        body = (b"1000\r\n" + b"a" * 4096 + b"\r\n" +
                b"1000\r\n" + b"b" * 4096 + b"\r\n" +
                b"%x\r\n" % len(inner) + inner + b"\r\n" +
                b"0\r\n\r\n")
        head = req("/first", "POST", ["Transfer-Encoding: chunked"])
        with Server(handler("careless_read"), workers=1,
                    server={"limit_request_body": 8192},
                    allow=[PEER, HANDLER]) as s:
            with Conn(s.port) as c:
                c.send(head + body)
                got, closed = recv_all(c.sock, 3)
            self.check_one_answer(got, closed)


# --- F2: Content-Length after a second start_response ----------------------

class RestartResponseTest(unittest.TestCase):
    """Finding 2: the bytes on the wire always match the framing in the
    head, or the connection is closed."""

    def test_f2_restart_with_shorter_length_keeps_framing(self):
        with Server(handler("restart_len"), workers=1,
                    allow=[HANDLER]) as s:
            with Conn(s.port) as c:
                c.send(req("/restart") + req("/second"))
                data, closed = recv_all(c.sock, 3)
            rs = parse_all(data)
            self.assertTrue(rs, "no response: %r" % data[:200])
            if len(rs) == 1:
                self.assertTrue(closed, "one response, then neither the "
                                "second nor a close")
            else:
                self.assertEqual(len(rs), 2, rs)
                self.assertEqual(rs[1].body, b"ok /second\n")
            self.assertNotEqual(rs[0].status, 200,
                                "1000 bytes past Content-Length: 10 were "
                                "accepted: %r" % (rs[0],))

    def test_f2_restart_as_500_sends_new_body(self):
        with Server(handler("restart_len"), workers=1,
                    allow=[HANDLER]) as s:
            with Conn(s.port) as c:
                c.send(req("/oops"))
                r = c.read_response(3)
            self.assertEqual(r.status, 500)
            self.assertEqual(r.body, b"oops\n")
            self.assertEqual(r.headers.get("content-length"), "5")


# --- F3: the master trusts the shared scoreboard -----------------------------

@unittest.skipUnless(IS_ROOT, "needs a root master")
class ScoreboardTrustTest(unittest.TestCase):
    """Finding 3: a handler running as nobody writes the scoreboard; the
    root master must still signal only its own children."""

    def forge(self, mode):
        nobody()
        so = handler("sb_forge", ["-I" + server_include()])
        victim = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL)

        def end_victim():
            victim.kill()
            victim.wait()
        self.addCleanup(end_victim)
        # What a server that notices the forgery logs is its business.
        s = Server(so, workers=1, server={"timeout": 2}, allow=[r"."])
        with s:
            (w,) = s.wait_workers(1)
            self.assertEqual(proc_status(w, "Uid")[0],
                             str(pwd.getpwnam("nobody").pw_uid))
            r = get(s.port, "/forge?pid=%d&mode=%s" % (victim.pid, mode))
            self.assertEqual(r.status, 200)
            time.sleep(4)
            self.assertTrue(pid_alive(victim.pid),
                            "the master killed pid %d (forged: %r)" % (
                                victim.pid, r.body))
            s.signal(signal.SIGTERM)
            try:
                s.proc.wait(6)
            except subprocess.TimeoutExpired:
                self.fail("the master did not exit within 6 s of SIGTERM "
                          "(forged: %r)" % r.body)
            self.assertTrue(pid_alive(victim.pid),
                            "the master signalled pid %d at stop (forged: "
                            "%r)" % (victim.pid, r.body))

    def test_f3_forged_slot_kills_nothing(self):
        self.forge("last")

    def test_f3_forged_own_pid_kills_nothing(self):
        self.forge("own")


# --- F4: workers are not dumpable --------------------------------------------

@unittest.skipUnless(IS_ROOT, "needs a root master")
class DumpableTest(unittest.TestCase):
    """Finding 4: a worker that dropped to nobody stays non-dumpable: its
    /proc/PID files are root's and another nobody process cannot open its
    memory."""

    def check(self, threads):
        pw = nobody()
        with Server("hello", workers=1, server={"threads": threads}) as s:
            (w,) = s.wait_workers(1)
            self.assertEqual(get(s.port, "/").status, 200)
            self.assertEqual(proc_status(w, "Uid")[0], str(pw.pw_uid))
            # The per-process files, not /proc/PID itself: since Linux
            # 4.11 a directory keeps the task's euid whatever dumpable is.
            for name in ("environ", "mem"):
                path = "/proc/%d/%s" % (w, name)
                self.assertEqual(os.stat(path).st_uid, 0, "worker %d is "
                                 "dumpable: %s belongs to its user" % (
                                     w, path))

            def drop():
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
            code = ("import os, sys\n"
                    "try:\n"
                    "    os.close(os.open('/proc/%d/mem', os.O_RDWR))\n"
                    "except OSError:\n"
                    "    sys.exit(3)\n" % w)
            p = subprocess.run([sys.executable, "-c", code],
                               preexec_fn=drop, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=10)
            self.assertEqual(p.returncode, 3, "a nobody process opened "
                             "/proc/%d/mem (rc %d: %r)" % (
                                 w, p.returncode, p.stdout))

    def test_f4_worker_not_dumpable(self):
        self.check(1)

    def test_f4_worker_not_dumpable_threads(self):
        self.check(4)


# --- F5: draining an unread body ---------------------------------------------

class Dribbler(threading.Thread):
    """POST with Content-Length: 65536 and a few bytes; after the response,
    one more body byte every 0.8 s until the server closes the connection,
    stop is set or MAX_S pass.  .resp, .t_resp, .t_closed."""

    MAX_S = 15.0

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.resp = self.t_resp = self.t_closed = self.error = None
        self.conn = None

    def run(self):
        try:
            self.conn = c = Conn(self.port)
            c.send(req("/", "POST", ["Content-Length: 65536"], b"abcd"))
            self.resp = c.read_response(8)
            self.t_resp = time.monotonic()
            end = self.t_resp + self.MAX_S
            while not self.stop.is_set() and time.monotonic() < end:
                try:
                    c.sock.send(b"x")
                except OSError:
                    self.t_closed = time.monotonic()
                    return
                c.sock.settimeout(0.8)
                try:
                    b = c.sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    b = b""
                if not b:
                    self.t_closed = time.monotonic()
                    return
        except Exception as e:  # reported by the test
            self.error = e


class DrainTest(unittest.TestCase):
    """Finding 5: a body the handler left unread is drained with a total
    deadline and never on a handler thread: clients dribbling it hold no
    thread, delay nobody and are closed."""

    def stall(self, threads, timeout):
        with Server("hello", workers=1,
                    server={"threads": threads, "timeout": timeout},
                    allow=[PEER]) as s:
            (w,) = s.wait_workers(1)
            stop = threading.Event()
            ds = [Dribbler(s.port, stop) for _ in range(2)]
            try:
                for i, d in enumerate(ds):
                    d.start()
                    wait_for(lambda: d.resp is not None or
                             d.error is not None or not d.is_alive(), 3)
                    self.assertIsNone(d.error)
                    self.assertIsNotNone(d.resp, "POST %d not answered "
                                         "within 3 s" % (i + 1))
                    self.assertEqual(d.resp.status, 200)
                time.sleep(1.0)
                t0 = time.monotonic()
                try:
                    r = get(s.port, "/", timeout=2)
                except socket.timeout:
                    self.fail("a GET waited more than 2 s while two "
                              "clients dribbled bodies nobody reads")
                dt = time.monotonic() - t0
                self.assertEqual(r.status, 200)
                self.assertLess(dt, 2)
                for i, d in enumerate(ds):
                    left = d.t_resp + 10.5 - time.monotonic()
                    wait_for(lambda: d.t_closed is not None or
                             not d.is_alive(), max(left, 0))
                    self.assertIsNotNone(
                        d.t_closed, "dribbling client %d not closed 10 s "
                        "after its response" % (i + 1))
                    self.assertLessEqual(d.t_closed - d.t_resp, 10.5)
                self.assertEqual(s.worker_pids(), [w],
                                 "the worker was replaced")
            finally:
                stop.set()
                for d in ds:
                    d.join(3)
                    if d.conn is not None:
                        d.conn.close()

    def test_f5_drain_does_not_hold_threads(self):
        self.stall(2, 30)

    def test_f5_drain_does_not_hold_sync_worker(self):
        self.stall(1, 30)

    def test_f5_drain_ends_without_timeout(self):
        self.stall(2, 0)

    def test_f5_request_after_drained_body_handed_off(self):
        """The drain moved to the poller must not cost DESIGN 2: a
        kept-alive connection still draining while its worker is busy
        has its next request (after the body) passed to an idle worker,
        not held until the busy one is done."""
        so = forkdtest.build_testapp(TMP)
        with Server(so, workers=2) as s:
            s.wait_workers(2)
            # Two connections on the same worker: X and Y.
            conns, by_pid = [], {}
            try:
                for _ in range(40):
                    c = Conn(s.port)
                    conns.append(c)
                    c.send(b"GET /pid HTTP/1.1\r\nHost: a\r\n\r\n")
                    pid = c.read_response().body.strip()
                    by_pid.setdefault(pid, []).append(c)
                    if len(by_pid[pid]) == 2:
                        break
                pair = [v for v in by_pid.values() if len(v) == 2]
                self.assertTrue(pair, "no two connections on one worker")
                x, y = pair[0]
                # X: a body the handler does not read, 10 of 100 bytes.
                x.send(b"POST /no-read HTTP/1.1\r\nHost: a\r\n"
                       b"Content-Length: 100\r\n\r\n" + b"b" * 10)
                self.assertEqual(x.read_response().status, 200)
                # Y keeps X's worker busy for 3 s.
                y.send(b"GET /sleep?ms=3000 HTTP/1.1\r\nHost: a\r\n\r\n")
                time.sleep(0.3)
                t0 = time.monotonic()
                x.send(b"b" * 90 + b"GET /pid HTTP/1.1\r\nHost: a\r\n\r\n")
                r = x.read_response(timeout=5)
                dt = time.monotonic() - t0
                self.assertEqual(r.status, 200)
                self.assertLess(dt, 1.5, "the request after the drained "
                                "body waited for the busy worker")
                self.assertEqual(y.read_response(timeout=5).status, 200)
            finally:
                for c in conns:
                    c.close()


# --- F6: accept at the descriptor limit --------------------------------------

class DescriptorLimitTest(unittest.TestCase):
    """Finding 6: at EMFILE the worker backs off instead of spinning on
    accept4 and logging each failure; RLIMIT_NOFILE is raised to what
    max_connections needs, or forkd refuses to start saying why."""

    def test_f6_accept_backs_off_at_emfile(self):
        with NoFile(4096, 4096), Server(handler("fdhog"), workers=1,
                                        allow=[r"accept|open files"]) as s:
            (w,) = s.wait_workers(1)
            with Conn(s.port) as a:
                a.send(req("/hog"))
                r = a.read_response(10)
                self.assertEqual(r.status, 200)
                self.assertIn(b"EMFILE", r.body)
                b = connect(s.port)
                try:
                    b.sendall(req("/b", headers=["Connection: close"]))
                    time.sleep(0.1)
                    cpu0 = proc_cpu_s(w)
                    time.sleep(2)
                    cpu = proc_cpu_s(w) - cpu0
                    lines = count_lines(s.error_log, r"accept|open files")
                    a.send(req("/free"))
                    r = a.read_response(5)
                    self.assertEqual(r.body, b"freed\n")
                    t0 = time.monotonic()
                    data, closed = recv_all(b, 3)
                    dt = time.monotonic() - t0
                finally:
                    b.close()
            self.assertLess(cpu, 0.5, "the worker burnt %.2f s of CPU in "
                            "2 s at EMFILE" % cpu)
            self.assertLess(lines, 20, "%d accept failures logged in 2 s" %
                            lines)
            rs = parse_responses(data)
            self.assertEqual([x.status for x in rs], [200],
                             "the waiting client got %r" % data[:200])
            self.assertLess(dt, 3)

    def test_f6_raises_nofile_soft_limit(self):
        if not IS_ROOT and \
                resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 20000:
            self.skipTest("the hard limit is below 20000")
        with NoFile(256, 20000), Server("hello", workers=1,
                                        server={"max_connections": 2000},
                                        allow=[r"max_connections|open "
                                               r"files|NOFILE"]) as s:
            (w,) = s.wait_workers(1)
            self.assertEqual(get(s.port, "/").status, 200)
            soft = nofile_soft(w)
            self.assertGreaterEqual(soft, 2000, "worker's soft "
                                    "RLIMIT_NOFILE is %s" % soft)

    def test_f6_refuses_max_connections_over_hard_limit(self):
        d = tempfile.mkdtemp(prefix="forkd-test-")
        try:
            ini = os.path.join(d, "forkd.ini")
            with open(ini, "w") as f:
                f.write("[server]\nbind = 127.0.0.1:%d\nworkers = 1\n"
                        "max_connections = 2000\nerror_log = %s\n\n"
                        "[app]\npath = %s\n" % (
                            free_port(), os.path.join(d, "error.log"),
                            forkdtest.app_path("hello")))
            with NoFile(512, 512):
                rc, out, err = run_forkd(["-c", ini], timeout=5)
            self.assertNotEqual(rc, 0)
            lines = [x for x in err.splitlines() if "max_connections" in x]
            self.assertEqual(len(lines), 1, "stderr: %r" % err)
        finally:
            shutil.rmtree(d, ignore_errors=True)


# --- F7: blocking writes while holding the worker lock -----------------------

def tcp_queues(local_port, remote_port):
    """(tx_queue, rx_queue) of the TCP socket local_port -> remote_port
    (the server's side of a client connection), or (0, 0)."""
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == local_port and \
                    int(fields[2].rsplit(":", 1)[1], 16) == remote_port:
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    return 0, 0


class RefusalLockTest(unittest.TestCase):
    """Finding 7: a refusal (400 for a bad pipelined request) to a client
    that does not read must not block the worker's other connections:
    no write that can block while the worker lock is held."""

    BAD = b"BAD\r\n\r\n"
    MSS = 536  # small segments: the send buffer then fills predictably

    def tiny_client(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, self.MSS)
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        return s

    @staticmethod
    def reset(sock):
        """Close with RST: a server write blocked on it ends at once."""
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
        sock.close()

    def in_flight(self, s, sock):
        """Response bytes between the server and the client that does not
        read, once they stop growing (bounded): the client's unread ones
        plus the server's unsent ones."""
        import fcntl
        import termios
        prev, stable = None, 0
        for _ in range(80):
            time.sleep(0.05)
            inq = struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD,
                                                 b"\0\0\0\0"))[0]
            tx, rx = tcp_queues(s.port, sock.getsockname()[1])
            cur = (inq + tx, rx)
            stable = stable + 1 if cur == prev else 0
            prev = cur
            if stable >= 2:
                break
        return prev[0]

    def probe(self, s):
        """Seconds a GET on a new connection takes (at most 1.5 s), or
        None if it gets no answer within 1.5 s."""
        t0 = time.monotonic()
        try:
            r = get(s.port, "/", timeout=1.5)
        except socket.timeout:
            return None
        self.assertEqual(r.status, 200)
        return time.monotonic() - t0

    def test_f7_refusal_with_full_send_buffer(self):
        """fillsnd leaves the socket's send buffer full right after its
        answer; the pipelined bad request's refusal then has no room."""
        with Server(handler("fillsnd"), workers=1,
                    server={"threads": 2, "send_timeout": 5},
                    allow=[PEER]) as s:
            c = self.tiny_client(s.port)
            try:
                c.sendall(req("/fill") + self.BAD)
                time.sleep(0.3)
                dt = self.probe(s)
            finally:
                self.reset(c)
            self.assertIsNotNone(dt, "a new connection waited more than "
                                 "1.5 s while a refusal could not be sent")

    def test_f7_pipelined_refusal_tiny_window(self):
        """The finding as found: K pipelined GETs and a bad request from a
        client with a tiny window that never reads.  K is measured: as
        many hello responses as the connection holds (a first client
        pipelines more than fit and the bytes in flight are counted),
        so that the handlers' answers still fit and the refusal does
        not; K and K - 1 are tried."""
        with Server("hello", workers=1,
                    server={"threads": 2, "send_timeout": 5},
                    allow=[PEER]) as s:
            data = raw(s.port, req("/") + req("/", headers=[
                "Connection: close"]))
            rlen = parse_one(data)[1]  # bytes of one kept-alive response
            one = len(req("/"))
            n = 600
            for _ in range(3):
                c = self.tiny_client(s.port)
                try:
                    c.sendall(req("/") * n)
                    fit = self.in_flight(s, c)
                finally:
                    self.reset(c)
                if fit < n * rlen:
                    break
                n *= 4
            self.assertLess(fit, n * rlen, "%d responses all fit" % n)
            k = fit // rlen
            tried = []
            for kk in (k, k - 1):
                time.sleep(0.2)
                c = self.tiny_client(s.port)
                try:
                    c.sendall(req("/") * kk + self.BAD)
                    self.in_flight(s, c)
                    dt = self.probe(s)
                finally:
                    self.reset(c)
                tried.append((kk, dt))
                if dt is None:
                    break
            self.assertTrue(all(dt is not None for _, dt in tried),
                            "a new connection waited more than 1.5 s "
                            "while a refusal could not be sent (K, "
                            "seconds): %r; %d bytes fit, %d per response, "
                            "%d per request" % (tried, fit, rlen, one))


# --- F8: forkd_sendfile on a pipe and a socket -------------------------------

class SendfilePipeTest(unittest.TestCase):
    """Finding 8: forkd_sendfile reads a pipe or a socket in order (it
    has no offset) instead of failing after the head promised a
    length."""

    PATTERN = bytes(i * 7 % 251 for i in range(5000))

    def fetch(self, path):
        with Server(handler("sendpipe"), workers=1,
                    allow=[HANDLER]) as s:
            with Conn(s.port) as c:
                c.send(req(path))
                try:
                    r = c.read_response(3)
                except EOFError as e:
                    r = e
            if isinstance(r, EOFError):
                self.fail("forkd_sendfile from %s: %s" % (path, r))
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), 5000)
            self.assertEqual(r.body, self.PATTERN)

    def test_f8_sendfile_from_pipe(self):
        self.fetch("/pipe")

    def test_f8_sendfile_from_socket(self):
        self.fetch("/socket")


# --- F9: chunk framing and limit_request_head --------------------------------

# limit_request_head may not be less than these two.
HEAD_4K = {"limit_request_head": 4096, "limit_request_line": 2048,
           "limit_request_field_size": 2048}


class ChunkFramingTest(unittest.TestCase):
    """Finding 9: the size lines of a chunked body are not charged to
    limit_request_head; extensions and trailers still are bounded."""

    def post_chunked(self, s, chunks):
        head = req("/", "POST", ["Transfer-Encoding: chunked"])
        with Conn(s.port, timeout=10) as c:
            c.send(head + chunks)
            return c.read_response(10)

    def test_f9_many_small_chunks(self):
        body = bytes(97 + i % 26 for i in range(7000))
        chunks = b"".join(b"1\r\n" + body[i:i + 1] + b"\r\n"
                          for i in range(7000)) + b"0\r\n\r\n"
        with Server("echo", workers=1) as s:
            r = self.post_chunked(s, chunks)
            self.assertEqual(r.status, 200, r.body[:200])
            self.assertIn(b'"body_length":7000', r.body)
            self.assertIn(b'"body":"' + body + b'"', r.body)

    def test_f9_extensions_over_head_limit(self):
        chunks = b"".join(b"1;e=" + b"x" * 500 + b"\r\nz\r\n"
                          for _ in range(10)) + b"0\r\n\r\n"
        with Server("echo", workers=1, server=HEAD_4K,
                    allow=[PEER]) as s:
            r = self.post_chunked(s, chunks)
            self.assertEqual(r.status, 400, r.body[:200])

    def test_f9_trailers_over_head_limit(self):
        trailers = b"".join(b"X-T%d: " % i + b"y" * 500 + b"\r\n"
                            for i in range(10))
        chunks = b"1\r\nz\r\n0\r\n" + trailers + b"\r\n"
        with Server("echo", workers=1, server=HEAD_4K,
                    allow=[PEER]) as s:
            r = self.post_chunked(s, chunks)
            self.assertEqual(r.status, 400, r.body[:200])


# --- The smaller ones --------------------------------------------------------

class ExtraTest(unittest.TestCase):
    def test_extra_a_pidfile_temp_not_followed(self):
        """The pidfile's temporary file must not follow a symlink planted
        at its predictable name ("PIDFILE.PID.tmp")."""
        s = Server("hello", workers=1,
                   server={"pidfile": "{dir}/forkd.pid"})
        victim = s.path("victim")
        with open(victim, "w") as f:
            f.write("victim\n")
        try:
            with open("/proc/sys/kernel/ns_last_pid") as f:
                last = int(f.read())
            with open("/proc/sys/kernel/pid_max") as f:
                pid_max = int(f.read())
        except OSError:
            s._cleanup_dir()
            self.skipTest("no /proc/sys/kernel/ns_last_pid")
        planted = set()
        for n in range(last + 1, last + 301):
            pid = n if n < pid_max else n - pid_max + 300  # pids wrap
            os.symlink(victim, s.path("forkd.pid.%d.tmp" % pid))
            planted.add(pid)
        with s:
            if s.pid not in planted:
                self.skipTest("the master's pid %d is not among the %d "
                              "planted" % (s.pid, len(planted)))
            with open(victim) as f:
                self.assertEqual(f.read(), "victim\n",
                                 "the pidfile went through a symlink")
            pidfile = s.path("forkd.pid")
            self.assertFalse(os.path.islink(pidfile))
            with open(pidfile) as f:
                self.assertEqual(f.read().strip(), str(s.pid))

    def test_extra_b_204_without_content_length(self):
        with Server(handler("len204"), workers=1) as s:
            with Conn(s.port) as c:
                c.send(req("/204") + req("/next"))
                r = c.read_response(3)
                self.assertEqual(r.status, 204)
                self.assertNotIn("content-length", r.headers,
                                 "204 with %r" % r.head)
                r = c.read_response(3)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"ok /next\n")

    def test_extra_c_max_requests_jitter_overflow(self):
        big = 4294967295
        with Server("hello", workers=1, ready_timeout=5,
                    server={"max_requests": big,
                            "max_requests_jitter": big}) as s:
            (w,) = s.wait_workers(1)
            for _ in range(20):
                self.assertEqual(get(s.port, "/").status, 200)
            self.assertEqual(s.worker_pids(), [w])
        # max_requests + jitter must not wrap to a small limit either.
        with Server("hello", workers=1,
                    server={"max_requests": big,
                            "max_requests_jitter": 1000}) as s:
            (w,) = s.wait_workers(1)
            with Conn(s.port) as c:
                for _ in range(11):
                    c.send(req("/") * 100)
                    for _ in range(100):
                        self.assertEqual(c.read_response(3).status, 200)
            self.assertEqual(s.worker_pids(), [w], "worker recycled")
            self.assertIsNone(s.wait_log(r"recycl", 0))

    @unittest.skipUnless(IS_ROOT, "needs a root master")
    def test_extra_d_handler_constructor_not_root(self):
        """The handler .so's constructors never run as root in the
        master: with workers as nobody, nothing records euid 0."""
        nobody()
        record = os.path.join(TMP, "ctor-euid.txt")
        with open(record, "w"):
            pass
        os.chmod(record, 0o666)
        so = handler("ctor_euid", ['-DCTOR_EUID_FILE="%s"' % record])
        with Server(so, workers=1) as s:
            self.assertEqual(get(s.port, "/").status, 200)
        with open(record) as f:
            euids = f.read().split()
        self.assertTrue(euids, "the constructor never ran")
        self.assertNotIn("0", euids, "a constructor ran as root (euids "
                         "recorded: %s)" % euids)


if __name__ == "__main__":
    unittest.main()
