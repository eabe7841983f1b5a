"""Threads mode (issue 4): W workers x T threads run exactly W x T
handler calls at once, never more; a handler that is not thread-safe is
refused with T > 1; idle keep-alive connections hold no thread."""

import json
import os
import shutil
import tempfile
import threading
import time
import unittest

import signal

from forkdtest import (Conn, Server, compile_so, free_port, get,
                       parse_responses, pid_alive, raw, raw_closed, run_forkd,
                       wait_for)

# Counts the calls in flight across every worker and thread in a shared
# file and keeps the highest count seen; GET /max reports it.
COUNTER_SO = r"""
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "forkd.h"

static long *shared; /* [0] in flight, [1] the most seen */

static int
count_init(const struct forkd_option *o, size_t n, void **state)
{
    const char *path = forkd_option(o, n, "file");
    int fd = path ? open(path, O_RDWR) : -1;
    (void)state;
    if (fd < 0)
        return -1;
    shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return shared == MAP_FAILED ? -1 : 0;
}

static int
count_handle(struct forkd_req *req, void *state)
{
    static const struct forkd_header h[] = {{"Content-Type", "text/plain"}};
    char body[64];
    (void)state;
    if (strcmp(forkd_getenv(req, "PATH_INFO"), "/max") == 0) {
        int n = snprintf(body, sizeof(body), "%ld",
                         __atomic_load_n(&shared[1], __ATOMIC_SEQ_CST));
        forkd_start_response(req, "200 OK", h, 1);
        return forkd_write(req, body, (size_t)n) < 0 ? -1 : 0;
    }
    long now = __atomic_add_fetch(&shared[0], 1, __ATOMIC_SEQ_CST);
    long max = __atomic_load_n(&shared[1], __ATOMIC_SEQ_CST);
    while (now > max && !__atomic_compare_exchange_n(&shared[1], &max, now,
               0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    struct timespec ts = {0, 30 * 1000000L};
    nanosleep(&ts, NULL);
    __atomic_sub_fetch(&shared[0], 1, __ATOMIC_SEQ_CST);
    forkd_start_response(req, "200 OK", h, 1);
    return forkd_write(req, "ok\n", 3) < 0 ? -1 : 0;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .init = count_init,
    .handle = count_handle,
};
"""

UNSAFE_SO = r"""
#include "forkd.h"
static int h(struct forkd_req *r, void *s) { (void)r; (void)s; return -1; }
const struct forkd_app forkd_app = {.api_version = FORKD_API_VERSION,
                                    .handle = h};
"""

TMP = None


def setUpModule():
    global TMP
    TMP = tempfile.mkdtemp(prefix="forkd-threads-")


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def load(port, clients, seconds):
    """clients keep-alive clients, each sending requests for seconds."""
    errors = []
    counts = [0] * clients

    def run(i):
        deadline = time.monotonic() + seconds
        try:
            with Conn(("127.0.0.1", port), timeout=10) as c:
                while time.monotonic() < deadline:
                    c.send(b"GET /work HTTP/1.1\r\nHost: x\r\n\r\n")
                    r = c.read_response(timeout=10)
                    if r.status != 200:
                        errors.append(r.status)
                    counts[i] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 30)
    return sum(counts), errors


class ThreadsTest(unittest.TestCase):
    def concurrency(self, workers, threads):
        so = compile_so(TMP, "count", COUNTER_SO)
        counter = os.path.join(TMP, "count-%dx%d" % (workers, threads))
        with open(counter, "wb") as f:
            f.write(b"\0" * 4096)
        # Workers run as nobody when the tests run as root: they map the
        # counter read-write.
        os.chmod(TMP, 0o755)
        os.chmod(counter, 0o666)
        with Server(so, workers=workers, server={"threads": threads},
                    options={"file": counter}) as s:
            served, errors = load(s.port, 4 * workers * threads, 1.5)
            self.assertEqual(errors, [])
            self.assertGreater(served, 4 * workers * threads)
            status, _, body = get(s.port, "/max")
            self.assertEqual(status, 200)
            self.assertEqual(int(body), workers * threads,
                             "calls at once under 4 x W x T clients")

    def test_concurrency_is_exactly_w_times_t_1x4(self):
        self.concurrency(1, 4)

    def test_concurrency_is_exactly_w_times_t_2x3(self):
        self.concurrency(2, 3)

    def test_sync_worker_runs_one_call_at_a_time(self):
        self.concurrency(2, 1)

    def test_unsafe_handler_refused_with_threads(self):
        so = compile_so(TMP, "unsafe", UNSAFE_SO)
        ini = os.path.join(TMP, "unsafe.ini")
        with open(ini, "w") as f:
            f.write("[server]\nbind = 127.0.0.1:%d\nthreads = 2\n"
                    "[app]\npath = %s\n" % (free_port(), so))
        rc, out, err = run_forkd(["-c", ini])
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("FORKD_APP_THREADSAFE", err)
        self.assertIn("%s:5: path:" % ini, err)
        rc, out, err = run_forkd(["-c", ini, "--check"])
        self.assertNotEqual(rc, 0)
        # the same handler is fine without threads
        rc, out, err = run_forkd(["-c", ini, "--check", "-t", "1"])
        self.assertEqual(rc, 0, err)

    def test_environ_says_multithread(self):
        with Server("echo", workers=1, server={"threads": 2}) as s:
            status, _, body = get(s.port, "/")
            env = json.loads(body)
            self.assertEqual(env["wsgi.multithread"], "true")
            self.assertEqual(env["wsgi.multiprocess"], "false")
        with Server("echo", workers=2) as s:
            env = json.loads(get(s.port, "/")[2])
            self.assertEqual(env["wsgi.multithread"], "false")
            self.assertEqual(env["wsgi.multiprocess"], "true")

    def test_idle_keepalive_connections_hold_no_thread(self):
        with Server("sleep", workers=1, server={"threads": 3,
                                                "keepalive": 30}) as s:
            idle = []
            try:
                for _ in range(10):
                    c = Conn(("127.0.0.1", s.port))
                    c.send(b"GET /?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(c.read_response(timeout=5).status, 200)
                    idle.append(c)
                results = []

                def one():
                    results.append(raw(("127.0.0.1", s.port),
                                       b"GET /?ms=500 HTTP/1.1\r\nHost: x\r\n"
                                       b"Connection: close\r\n\r\n", 5))

                t0 = time.monotonic()
                ts = [threading.Thread(target=one) for _ in range(3)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(10)
                dt = time.monotonic() - t0
                self.assertEqual(len(results), 3)
                for r in results:
                    self.assertTrue(r.startswith(b"HTTP/1.1 200"), r[:80])
                self.assertLess(dt, 0.9, "three 500 ms requests on 1x3 with "
                                "10 idle keep-alive connections")
            finally:
                for c in idle:
                    c.close()


    def test_stuck_thread_kills_its_worker(self):
        """A thread over timeout is found by the master: its worker is
        replaced, and the other thread's request was cut with it."""
        with Server("sleep", workers=1, server={"threads": 2, "timeout": 1},
                    allow=[r"warn:.*worker"]) as s:
            (w,) = s.wait_workers(1)
            t0 = time.monotonic()
            data, closed = raw_closed(
                s.port, b"GET /?ms=4000 HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n", 4)
            self.assertTrue(closed)
            self.assertLess(time.monotonic() - t0, 3.5)
            self.assertEqual(parse_responses(data), [])
            self.assertIsNotNone(s.wait_log(r"warn:.*killed: GET /\?ms=4000",
                                            2))
            self.assertEqual(len(s.wait_workers(1, 2, exclude=[w])), 1)
            self.assertEqual(get(s.port, "/?ms=1").status, 200)

    def test_quit_lets_every_thread_finish(self):
        with Server("sleep", workers=1, server={"threads": 3}) as s:
            out = []

            def one():
                out.append(raw(("127.0.0.1", s.port),
                               b"GET /?ms=800 HTTP/1.1\r\nHost: x\r\n"
                               b"Connection: close\r\n\r\n", 5))

            ts = [threading.Thread(target=one) for _ in range(3)]
            for t in ts:
                t.start()
            time.sleep(0.3)
            procs = s.session()
            s.signal(signal.SIGQUIT)
            for t in ts:
                t.join(6)
            self.assertEqual(len(out), 3)
            for r in out:
                self.assertTrue(r.startswith(b"HTTP/1.1 200"), r[:60])
            self.assertTrue(wait_for(lambda: not any(pid_alive(p)
                                                     for p in procs), 5))
            self.assertEqual(s.proc.wait(1), 0)


if __name__ == "__main__":
    unittest.main()
