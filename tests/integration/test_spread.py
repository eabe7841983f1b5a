"""New connections are spread evenly over the workers (issue 15 item 2).

Kept-alive connections stay with the worker that accepted them, so which
worker accepts decides the load for as long as they live.  A worker that
accepts a connection while another holds at least two fewer passes it to
that worker's inbox (server/spread.h).  Measured as the issue asks: rounds
of `wrk -c50 -t2 -d2s` against 2 workers, and `ss` one second in counts
the connections each worker holds; each must hold 40-60 % in every round.
Before, the split was luck: 34/16, 32/18, 30/20 among six rounds.

The spread must not break what the listen queue guaranteed: a worker busy
in a request gets no new connection (DESIGN 2), and a connection waiting
in an inbox is never lost, whether its worker is killed, retired (TTOU)
or stopped (QUIT) before it read it.  Those tests stop one worker with
SIGSTOP so that connections wait in its inbox for certain.
"""

import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from forkdtest import Conn, Server, read_text, wait_for

ROUNDS = 5
CONNS = 50
WORKER_GONE = r"warn:.*worker"


def need_wrk():
    if shutil.which("wrk") is None:
        raise unittest.SkipTest("wrk not installed (scripts/deps.sh "
                                "installs it)")


def held(port, pids):
    """{pid: established connections to port that pid holds}, from ss."""
    out = subprocess.run(["ss", "-tnpH", "state", "established",
                          "( sport = :%d )" % port],
                         capture_output=True, text=True, timeout=10).stdout
    counts = dict.fromkeys(pids, 0)
    for m in re.finditer(r"pid=(\d+)", out):
        if int(m.group(1)) in counts:
            counts[int(m.group(1))] += 1
    return counts


def listen_queue(port):
    """Connections waiting in the listen queue of 127.0.0.1:port."""
    out = subprocess.run(["ss", "-ltnH", "( sport = :%d )" % port],
                         capture_output=True, text=True, timeout=10).stdout
    return sum(int(line.split()[1]) for line in out.splitlines())


def split_round(s, pids):
    """One round of wrk -c50 -t2 -d2s: the connections each worker holds
    a second in (sampled again, briefly, until all 50 are there)."""
    wrk = subprocess.Popen(["wrk", "-c%d" % CONNS, "-t2", "-d2s",
                            "http://127.0.0.1:%d/" % s.port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.0)
        deadline = time.monotonic() + 0.5
        counts = held(s.port, pids)
        while sum(counts.values()) < CONNS and time.monotonic() < deadline:
            time.sleep(0.05)
            counts = held(s.port, pids)
        out, _ = wrk.communicate(timeout=10)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    m = re.search(rb"(\d+) requests in", out)
    return [counts[p] for p in pids], int(m.group(1)) if m else 0


def slot_of(pid):
    """The worker slot from the process title ("forkd: worker 1 (gen 1)")."""
    m = re.search(r"worker (\d+)", read_text("/proc/%d/cmdline" % pid))
    return int(m.group(1)) if m else None


class SplitTest(unittest.TestCase):
    def rounds(self, threads):
        need_wrk()
        server = {"threads": threads} if threads > 1 else {}
        with Server("hello", workers=2, server=server) as s:
            pids = sorted(s.wait_workers(2))
            splits = []
            for _ in range(ROUNDS):
                counts, requests = split_round(s, pids)
                splits.append(counts)
                self.assertGreater(requests, 0, "wrk got no answer")
            text = ", ".join("/".join(map(str, c)) for c in splits)
            print("\n[spread] %d workers x %d threads, wrk -c%d, %d rounds: "
                  "%s" % (len(pids), threads, CONNS, ROUNDS, text))
            for counts in splits:
                self.assertEqual(sum(counts), CONNS, "ss: %s" % text)
                for n in counts:
                    self.assertTrue(0.4 * CONNS <= n <= 0.6 * CONNS,
                                    "a round outside 40-60 %%: %s" % text)

    def test_kept_alive_split_even(self):
        self.rounds(1)

    def test_kept_alive_split_even_threads(self):
        self.rounds(4)


def send_requests(port, n, path="/"):
    """n kept-alive connections, each with a request sent."""
    conns = []
    for _ in range(n):
        c = Conn(("127.0.0.1", port))
        c.send(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        conns.append(c)
        time.sleep(0.02)  # accepted one by one
    return conns


def answered(conns, timeout):
    """How many of conns get a 200 within timeout seconds in all."""
    deadline = time.monotonic() + timeout
    n = 0
    for c in conns:
        try:
            r = c.read_response(timeout=max(0.05, deadline -
                                             time.monotonic()))
            n += r.status == 200
        except Exception:  # timed out, reset or incomplete: not answered
            pass
    return n


class BusyWorkerTest(unittest.TestCase):
    def test_busy_worker_gets_no_new_connection(self):
        """DESIGN 2: one worker in a 3 s request; six new connections go
        to the other and are answered at once, though it holds six and
        the busy one one."""
        with Server("sleep", workers=2) as s:
            busy = Conn(("127.0.0.1", s.port))
            busy.send(b"GET /?ms=3000 HTTP/1.1\r\nHost: t\r\n\r\n")
            time.sleep(0.3)
            t0 = time.monotonic()
            conns = send_requests(s.port, 6, "/?ms=1")
            self.assertEqual(answered(conns, 2.0), 6)
            dt = time.monotonic() - t0
            owners = s.by_owner(conns)
            busy_owner = s.owner_of(busy.sock)
            print("\n[spread] 6 new connections beside a 3 s request: "
                  "answered in %.2f s, held by %s" % (
                      dt, sorted(len(v) for v in owners.values())))
            self.assertNotIn(busy_owner, owners)
            self.assertLess(dt, 2.0)
            self.assertEqual(busy.read_response(timeout=5).status, 200)
            for c in conns + [busy]:
                c.close()


class InboxNotLostTest(unittest.TestCase):
    """Connections waiting in the inbox of a worker that cannot read it
    (stopped with SIGSTOP) are all answered once it is killed, retired or
    stopped."""

    def stuck(self, s):
        """Stop the worker of the highest slot and send 6 requests: the
        other accepts them all and passes some to the stopped one's
        inbox, where they wait.  (stopped pid, conns, answered at once)"""
        pids = s.wait_workers(2)
        stopped = max(pids, key=slot_of)
        os.kill(stopped, signal.SIGSTOP)
        conns = send_requests(s.port, 6)
        first = answered(conns, 0.5)
        self.assertLess(first, 6, "no connection waited in the stopped "
                        "worker's inbox")
        return stopped, conns, first

    def setUp(self):
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            c.close()

    def test_killed_worker(self):
        with Server("hello", workers=2, allow=[WORKER_GONE]) as s:
            stopped, self.conns, first = self.stuck(s)
            os.kill(stopped, signal.SIGKILL)
            s.wait_log(r"connections in its inbox passed on", timeout=3)
            self.assertEqual(first + answered(self.conns, 3.0), 6)
            print("\n[spread] SIGKILL of a worker with %d connections in its "
                  "inbox: all answered" % (6 - first))

    def test_retired_worker(self):
        with Server("hello", workers=2, allow=[WORKER_GONE]) as s:
            stopped, self.conns, first = self.stuck(s)
            s.signal(signal.SIGTTOU)  # retires the highest slot: stopped
            time.sleep(0.2)
            os.kill(stopped, signal.SIGCONT)
            self.assertEqual(first + answered(self.conns, 3.0), 6)
            wait_for(lambda: len(s.worker_pids()) == 1, 5)
            self.assertEqual(len(s.worker_pids()), 1)
            print("\n[spread] TTOU retiring a worker with %d connections in "
                  "its inbox: all answered" % (6 - first))

    def test_stopped_server(self):
        with Server("hello", workers=2, allow=[WORKER_GONE]) as s:
            stopped, self.conns, first = self.stuck(s)
            s.signal(signal.SIGQUIT)
            time.sleep(0.2)
            os.kill(stopped, signal.SIGCONT)
            self.assertEqual(first + answered(self.conns, 3.0), 6)
            wait_for(lambda: not s.is_running(), 5)
            self.assertFalse(s.is_running())
            print("\n[spread] QUIT with %d connections in a worker's inbox: "
                  "all answered" % (6 - first))


class OverloadTest(unittest.TestCase):
    """Threads mode under overload: 2 x 4 threads of a 100 ms handler,
    wrk -c400 (each client waits ~1.25 s).  Each worker takes its share of
    the listen queue at once, so the connections are split evenly; a
    signal is seen between two requests (the master knocks in the
    scoreboard), not at the signalfd's turn among 200 ready connections,
    which came after a pass of some 5 s; and a QUIT serves every request
    received before forkd leaves."""

    def test_even_split_and_quick_signal(self):
        need_wrk()
        with Server("sleep", workers=2,
                    server={"threads": 4, "graceful_timeout": 20,
                            "backlog": 1024}) as s:
            pids = sorted(s.wait_workers(2))
            wrk = subprocess.Popen(
                ["wrk", "-c400", "-t2", "-d6s", "--timeout", "20s",
                 "http://127.0.0.1:%d/?ms=100" % s.port],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(2.0)
                counts = [held(s.port, pids)[p] for p in pids]
                os.rename(s.access_log, s.access_log + ".1")
                t0 = time.monotonic()
                s.signal(signal.SIGUSR1)
                wait_for(lambda: os.path.exists(s.access_log) and
                         read_text(s.access_log).count("\n") >= 8, 5)
                dt = time.monotonic() - t0
                lines = read_text(s.access_log).count("\n")
            finally:
                wrk.kill()
                wrk.wait()
            print("\n[spread] 2 x 4 threads, wrk -c400 on a 100 ms handler: "
                  "connections %s; USR1: new access log written after "
                  "%.2f s" % ("/".join(map(str, counts)), dt))
            for n in counts:
                self.assertTrue(160 <= n <= 240, counts)
            self.assertGreaterEqual(lines, 8)
            self.assertLess(dt, 1.5)

    def test_quit_serves_every_request_received(self):
        """100 clients each send one request to 2 x 4 threads of a 500 ms
        handler (6.25 s of work); once the workers hold every connection,
        most with their request waiting in the poller, QUIT: every request
        is answered, then forkd leaves (invariant 5).  Now that a worker
        sees the QUIT at once, closing the waiting connections at once, as
        it did, would lose them."""
        n = 100
        with Server("sleep", workers=2,
                    server={"threads": 4, "graceful_timeout": 20,
                            "backlog": 1024}) as s:
            pids = s.wait_workers(2)
            conns = []
            try:
                for _ in range(n):
                    c = Conn(("127.0.0.1", s.port))
                    c.send(b"GET /?ms=500 HTTP/1.1\r\nHost: t\r\n\r\n")
                    conns.append(c)
                # every connection accepted (one may be on its way
                # between workers, where ss sees no owner)
                ok = wait_for(lambda: listen_queue(s.port) == 0 and sum(
                    held(s.port, pids).values()) >= n - 2, 5)
                counts = held(s.port, pids)
                t0 = time.monotonic()
                s.signal(signal.SIGQUIT)
                got = answered(conns, 15.0)
                rc = s.proc.wait(15)
                dt = time.monotonic() - t0
            finally:
                for c in conns:
                    c.close()
            print("\n[spread] QUIT with %d requests received by 2 x 4 "
                  "threads (held %s): %d answered, forkd left after %.2f s"
                  % (n, "/".join(map(str, counts.values())), got, dt))
            self.assertTrue(ok, "not all accepted: %s" % counts)
            self.assertEqual(got, n)
            self.assertEqual(rc, 0)

if __name__ == "__main__":
    unittest.main()
