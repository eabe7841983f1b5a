"""An idle forkd costs nothing (issue 15 item 1).

A 4-worker forkd with no traffic is traced with strace -f for 3 s, every
process by pid, after a quiet second and a half (the watchdog of a worker
that served a request watches for a second before it sleeps until the
next one).  Each process may wake at most once a second: the wake-ups
counted are the returns of the calls a process sleeps in (poll,
epoll_wait, futex, nanosleep, clock_nanosleep).  Before, each worker's
watchdog woke every 5 ms (~600 in 3 s).

The watchdog's sleep must not cost its purpose: after the quiet second, a
request on a connection parked in a worker that is busy is still handed
to the idle worker at once.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

from forkdtest import Conn, Server, read_text

SLEEPS = ("poll", "ppoll", "epoll_wait", "epoll_pwait", "futex",
          "nanosleep", "clock_nanosleep", "select", "pselect6")
SECONDS = 3


def wake_ups(path):
    """The sleeping calls begun during an strace -f trace, over all the
    threads of a process: each thread's first call was already under way
    when strace attached (shown as the call or as restart_syscall) and is
    not a wake-up."""
    per_tid = {}
    for line in read_text(path).splitlines():
        m = re.match(r"(\d+)\s+(\w+)\(", line)
        if m is None:
            continue
        calls = per_tid.setdefault(m.group(1), [])
        calls.append(m.group(2))
    n = 0
    for calls in per_tid.values():
        first = calls[0] in SLEEPS or calls[0] == "restart_syscall"
        n += sum(1 for c in calls[1 if first else 0:] if c in SLEEPS)
    return n


class IdleTest(unittest.TestCase):
    def test_idle_server_wakes_once_a_second(self):
        strace = shutil.which("strace")
        self.assertIsNotNone(strace, "strace missing: scripts/deps.sh")
        with Server("hello", workers=4) as s:
            workers = s.wait_workers(4)
            self.assertEqual(len(workers), 4)
            time.sleep(1.5)
            pids = [s.pid] + sorted(workers)
            procs = []
            try:
                for pid in pids:
                    procs.append(subprocess.Popen(
                        [strace, "-f", "-q", "-o", s.path("idle.%d" % pid),
                         "-p", str(pid)], stderr=subprocess.DEVNULL))
                time.sleep(SECONDS)
            finally:
                for p in procs:
                    p.send_signal(signal.SIGINT)
                for p in procs:
                    p.wait(10)
            counts = [wake_ups(s.path("idle.%d" % pid)) for pid in pids]
            sys.stderr.write(
                "\n[idle] wake-ups of an idle 4-worker forkd in %d s: master "
                "%d, workers %s (at most %d each)\n" % (
                    SECONDS, counts[0], counts[1:], SECONDS))
            for pid, n in zip(pids, counts):
                self.assertLessEqual(n, SECONDS, "pid %d:\n%s" % (
                    pid, read_text(s.path("idle.%d" % pid))[-2000:]))

    def test_handoff_after_a_quiet_second(self):
        """The watchdog, asleep after a quiet second, wakes with the next
        request: a request parked behind a busy worker is answered by the
        idle one well before the busy one is done."""
        with Server("sleep", workers=2) as s:
            conns = []
            try:
                for _ in range(6):
                    c = Conn(s.port)
                    conns.append(c)
                    c.send(b"GET /?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(c.read_response(timeout=2).status, 200)
                by_owner = s.by_owner(conns)
                self.assertNotIn(None, by_owner)
                group = max(by_owner.values(), key=len)
                self.assertGreaterEqual(len(group), 2)
                time.sleep(1.5)  # every watchdog asleep
                busy, other = group[0], group[1]
                busy.send(b"GET /?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.2)
                t0 = time.monotonic()
                other.send(b"GET /?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n")
                r = other.read_response(timeout=5)
                dt = time.monotonic() - t0
                self.assertEqual(r.status, 200)
                self.assertLess(dt, 1.0, "waited for the busy worker")
                self.assertEqual(busy.read_response(timeout=5).body,
                                 b"slept 2000 ms\n")
            finally:
                for c in conns:
                    c.close()


if __name__ == "__main__":
    unittest.main()
