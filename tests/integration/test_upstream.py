"""Several forkd hosts behind one nginx (issue 14 item 6), configured by
conf/nginx-upstream.conf.

nginx's upstream module spreads the load over the hosts; forkd's part is
to drain, restart and fail in ways nginx handles.  The test reads the
shipped site file, points its three "server" lines at three forkd
instances bound to 127.0.0.2, 127.0.0.3 and 127.0.0.4 (the loopback is a
/8 on Linux), its listen line at a port of its own and its logs at a
temporary prefix, wraps it in test_nginx's minimal nginx.conf and runs
nginx by pid.  A bounded load of keep-alive clients runs through nginx
while something happens to the hosts; every answer says which host (and
worker pid) served it, and any non-200 answer or connection error that
reaches a client counts as a lost request:

  - a rolling upgrade: USR2 to each host's master in turn, QUIT to the
    old master once the new one is ready, the host serving again from the
    new workers before the next: nothing lost;
  - QUIT to one host: nginx stops sending it requests, including on the
    kept-alive upstream connections forkd closes, the client sees no
    error and the other two hosts serve the rest;
  - SIGKILL of one whole host (master and workers): at most the requests
    in flight on it can fail (nginx sends the GETs among them to another
    host), and every request after the kill reaches the two live hosts.

The rolling upgrade and the QUIT run at a load of one request at a time
per host, so that each worker has idle moments between requests;
test_quit_one_host_at_full_load runs the QUIT at full load (a worker that
ends a request always finds the next one waiting), where the workers once
never saw QUIT (test_signals.QuitTest has the same without nginx).

Each test prints "[upstream] WHAT: lost L of N requests (...)".  nginx
comes from scripts/deps.sh bench; without it the tests are skipped, or
fail when FORKD_REQUIRE_NGINX=1 (test_nginx's rule).
"""

import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest
from http import client as httpclient

from forkdtest import (REPO, Server, children_of, compile_so, kill_pids,
                       pid_alive, read_text, session_pids, stop_pid,
                       wait_for)
import test_nginx
from test_nginx import Nginx

SITE = os.path.join(REPO, "conf", "nginx-upstream.conf")
HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
NAMES = ("h1", "h2", "h3")
# Load client threads: one request in flight per host (nginx's round
# robin gives three consecutive requests to three hosts), two per host,
# and three per worker (full load: with 20 ms requests, a worker that
# ends one finds the next one waiting).
LIGHT, MEDIUM, FULL = 3, 6, 18
REQUEST_MS, FULL_REQUEST_MS = 5, 20  # each request sleeps this long
GRACEFUL_S = 3      # the hosts' graceful_timeout
DRAIN_S = 1.5       # a drain at 5 ms a request must end well within this
STOP_TIMEOUT_RE = r"warn: workers still running after the stop timeout"

# "HOST PID\n": the host named by the [app] option host, and the worker
# that served the request; ?ms=N sleeps first.
UPSTREAM_C = r"""
#include <forkd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
u_init(const struct forkd_option *opts, size_t n, void **state)
{
    const char *v = forkd_option(opts, n, "host");
    char *host = strdup(v != NULL ? v : "?");

    if (host == NULL)
        return -1;
    *state = host;
    return 0;
}

static void
u_fini(void *state)
{
    free(state);
}

static int
u_handle(struct forkd_req *req, void *state)
{
    const char *q = forkd_getenv(req, "QUERY_STRING");
    char body[128], len[16];
    int ms = q != NULL && strncmp(q, "ms=", 3) == 0 ? atoi(q + 3) : 0;
    int n;

    if (ms > 0)
        usleep((useconds_t)ms * 1000);
    n = snprintf(body, sizeof body, "%s %d\n", (const char *)state,
                 (int)getpid());
    snprintf(len, sizeof len, "%d", n);
    struct forkd_header h[] = {{"Content-Type", "text/plain"},
                               {"Content-Length", len}};
    if (forkd_start_response(req, "200 OK", h, 2) != 0)
        return -1;
    return forkd_write(req, body, (size_t)n) < 0 ? -1 : 0;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .init = u_init,
    .handle = u_handle,
    .fini = u_fini,
};
"""

BODY_RE = re.compile(rb"^(h\d) (\d+)\n$")

TMP = None
HANDLER = None


def setUpModule():
    global TMP, HANDLER
    test_nginx.setUpModule()  # skip, or fail with FORKD_REQUIRE_NGINX=1
    TMP = tempfile.mkdtemp(prefix="forkd-upstream-")
    HANDLER = compile_so(TMP, "upstream", UPSTREAM_C)


def tearDownModule():
    if TMP is not None:
        shutil.rmtree(TMP, ignore_errors=True)


def site_config(ports, listen_port, logdir):
    """conf/nginx-upstream.conf with the test's hosts, port and log
    paths.  Every substitution must apply exactly once, so that the test
    runs the shipped file."""
    text = read_text(SITE)
    subs = [("server 10.0.0.%d:8000 " % (11 + i),
             "server %s:%d " % (HOSTS[i], ports[i])) for i in range(3)]
    subs += [
        ("listen 80 default_server;", "listen 127.0.0.1:%d;" % listen_port),
        ("listen [::]:80 default_server;", ""),
        ("/var/log/nginx/forkd-upstream.access.log",
         os.path.join(logdir, "site-access.log")),
        ("/var/log/nginx/forkd-upstream.error.log",
         os.path.join(logdir, "site-error.log")),
    ]
    for old, new in subs:
        if text.count(old) != 1:
            raise AssertionError("conf/nginx-upstream.conf has %r %d times, "
                                 "not once: update test_upstream.py with "
                                 "it" % (old, text.count(old)))
        text = text.replace(old, new)
    return text


class UpstreamNginx(Nginx):
    """test_nginx's Nginx (started and stopped by pid) running the
    upstream site in front of the hosts listening on ports."""

    def __init__(self, directory, ports):
        # test_nginx's prefix, port, MAIN_CONF and state, then this
        # site in place of conf/nginx.conf's (whose socket is unused).
        super().__init__(directory, os.path.join(directory, "unused.sock"))
        with open(os.path.join(self.dir, "site.conf"), "w") as f:
            f.write(site_config(ports, self.port, self.dir))

    def site_errors(self):
        """The site's error log: nginx's view of each upstream failure."""
        return read_text(os.path.join(self.dir, "site-error.log"))

    def upstream_failures(self, host):
        """What nginx saw go wrong with host, as {kind: count}: "reset"
        or "closed" (a request sent on a connection that broke: nginx
        sent it again elsewhere), "refused" (connect failed), "disabled"
        (max_fails reached)."""
        out = {}
        for line in self.site_errors().splitlines():
            if "upstream: \"http://%s:" % host not in line:
                continue
            for kind, text in (("reset", "reset by peer"),
                               ("closed", "prematurely closed"),
                               ("refused", "refused"),
                               ("disabled", "temporarily disabled")):
                if text in line:
                    out[kind] = out.get(kind, 0) + 1
                    break
            else:
                out["other"] = out.get("other", 0) + 1
        return out

    def log(self):
        return super().log() + "--- site-error.log\n" + \
            self.site_errors()[-6000:]


class Load:
    """clients threads, each with one http.client keep-alive connection to
    nginx, sending GETs until stop(), max_requests in all or duration
    seconds, whichever comes first.  self.records holds one
    (start, end, client, host, pid, error) per request: host and pid from
    the body of a 200 answer, else error says what the client saw (a
    status and body, or an exception) and host is None."""

    def __init__(self, port, clients, path="/",
                 max_requests=50000, duration=25.0, timeout=10.0):
        self.port = port
        self.path = path
        self.max_requests = max_requests
        self.duration = duration
        self.timeout = timeout
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.started = 0
        self.records = []
        self.busy = [False] * clients   # a request in flight
        self.threads = [threading.Thread(target=self._run, args=(i,),
                                         daemon=True)
                        for i in range(clients)]
        self.t0 = None
        self.t1 = None

    def start(self):
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        """Stop the clients and wait for them (each finishes the request
        it is in, bounded by the request timeout)."""
        self.stop_event.set()
        deadline = time.monotonic() + self.timeout + 2.0
        for t in self.threads:
            if t.ident is not None:
                t.join(max(0.0, deadline - time.monotonic()))
        if self.t1 is None:
            self.t1 = time.monotonic()
        alive = [t.name for t in self.threads if t.is_alive()]
        if alive:
            raise AssertionError("load clients still running: %s" % alive)

    def count(self):
        with self.lock:
            return len(self.records)

    def wait_requests(self, n, timeout):
        """Wait until at least n more requests than now completed."""
        goal = self.count() + n
        return wait_for(lambda: self.count() >= goal, timeout, 0.01)

    def in_flight(self):
        with self.lock:
            return sum(self.busy)

    def served_since(self, t, host, pids):
        """True once a request begun at t or later was served by host
        from one of pids."""
        with self.lock:
            return any(r[0] >= t and r[3] == host and r[4] in pids
                       for r in self.records)

    def _take(self):
        with self.lock:
            if self.started >= self.max_requests:
                return False
            self.started += 1
            return True

    def _run(self, i):
        deadline = self.t0 + self.duration
        conn = None
        while not self.stop_event.is_set() and \
                time.monotonic() < deadline and self._take():
            if conn is None:
                conn = httpclient.HTTPConnection("127.0.0.1", self.port,
                                                 timeout=self.timeout)
            with self.lock:
                self.busy[i] = True
            t0 = time.monotonic()
            host = pid = err = None
            try:
                conn.request("GET", self.path)
                r = conn.getresponse()
                body = r.read()
                m = BODY_RE.match(body)
                if r.status == 200 and m:
                    host, pid = m.group(1).decode(), int(m.group(2))
                else:
                    err = "%d %r" % (r.status, body[:120])
            except Exception as e:
                err = "%s: %s" % (type(e).__name__, e)
            if err is not None:
                conn.close()
                conn = None
            with self.lock:
                self.busy[i] = False
                self.records.append((t0, time.monotonic(), i, host, pid, err))
        if conn is not None:
            conn.close()

    # -- results

    def lost(self):
        return [r for r in self.records if r[5] is not None]

    def per_host(self, since=None, until=None):
        """{host: requests served} of the requests begun in
        [since, until)."""
        out = {}
        for t0, _, _, host, _, err in self.records:
            if err is None and (since is None or t0 >= since) and \
                    (until is None or t0 < until):
                out[host] = out.get(host, 0) + 1
        return out

    def slowest(self, since):
        """The longest request begun at since or later, in seconds."""
        return max([t1 - t0 for t0, t1, _, _, _, err in self.records
                    if t0 >= since] or [0.0])

    def lost_detail(self, limit=10):
        lost = self.lost()
        out = ["  +%.3fs..+%.3fs client %d: %s" % (
            t0 - self.t0, t1 - self.t0, i, err)
            for t0, t1, i, _, _, err in lost[:limit]]
        if len(lost) > limit:
            out.append("  ... %d more" % (len(lost) - limit))
        return "\n".join(out)

    def report(self, name, extra):
        """Print and return "NAME: lost L of N requests (EXTRA)"."""
        line = "%s: lost %d of %d requests (%s; %d clients, %.1f s)" % (
            name, len(self.lost()), len(self.records), extra,
            len(self.threads), (self.t1 or time.monotonic()) - self.t0)
        sys.stderr.write("\n[upstream] " + line + "\n")
        sys.stderr.flush()
        return line


def per_host_text(counts):
    return " ".join("%s %d" % (h, counts.get(h, 0)) for h in NAMES)


def failures_text(counts):
    return ", ".join("%d %s" % (n, kind) for kind, n in
                     sorted(counts.items())) or "none"


def stop_timeout_kills(s):
    """The master's "still running after the stop timeout" lines."""
    return [line for line in s.log_lines()
            if re.search(STOP_TIMEOUT_RE, line)]


class UpstreamTest(unittest.TestCase):
    def host(self, i, allow=()):
        """Host NAMES[i]: forkd on HOSTS[i] with its own pidfile, trusting
        X-Forwarded-* from nginx (which connects from 127.0.0.1)."""
        return Server(HANDLER, workers=2, allow=allow,
                      options={"host": NAMES[i]},
                      server={"bind": "%s:{port}" % HOSTS[i],
                              "pidfile": "{dir}/forkd.pid",
                              "forwarded_allow_ips": "127.0.0.1",
                              "keepalive": 5,
                              "graceful_timeout": GRACEFUL_S})

    @contextlib.contextmanager
    def cluster(self, clients, allow=(), new_masters=(), ms=REQUEST_MS):
        """Three hosts, nginx in front of them and a started load of
        clients threads that reached every host; all stopped by pid at
        the end, also on failure, the masters that the test started with
        USR2 and put in new_masters first (Server would find them in its
        session, kill them and complain).  A failure inside comes back
        with nginx's and the hosts' logs."""
        with contextlib.ExitStack() as stack:
            hosts = [stack.enter_context(self.host(i, allow))
                     for i in range(3)]
            nginx = stack.enter_context(
                UpstreamNginx(hosts[0].dir, [h.port for h in hosts]))
            load = Load(nginx.port, clients, path="/?ms=%d" % ms)
            try:
                load.start()
                self.assertTrue(load.wait_requests(150, 10),
                                "no load through nginx:\n" +
                                load.lost_detail())
                got = load.per_host()
                self.assertEqual(sorted(got), list(NAMES),
                                 "the load did not reach every host: %s" %
                                 got)
                yield hosts, nginx, load
            except AssertionError as e:
                raise AssertionError("%s\n--- nginx\n%s\n%s" % (
                    e, nginx.log(), "\n".join(
                        "--- host %s\n%s" % (NAMES[i], h.describe())
                        for i, h in enumerate(hosts)))) from e
            finally:
                load.stop_event.set()
                try:
                    load.stop()
                finally:
                    for pid in new_masters:
                        stop_pid(pid)

    # -- rolling upgrade

    def upgrade(self, s, name, load, new_masters):
        """USR2 to host s's master, QUIT to it once the new master is
        ready; returns how long the old master took to leave.  The new
        master goes into new_masters as soon as it is known."""
        pidfile = s.path("forkd.pid")
        oldbin = pidfile + ".oldbin"
        self.assertEqual(read_text(pidfile).strip(), str(s.pid))

        def new_master():
            kids = [p for p in children_of(s.pid)
                    if read_text(pidfile).strip() == str(p)]
            return kids[0] if kids else None
        s.signal(signal.SIGUSR2)
        new = wait_for(new_master, 10)
        self.assertIsNotNone(new, "%s: no new master wrote the pidfile" %
                             name)
        new_masters.append(new)
        self.assertEqual(read_text(oldbin).strip(), str(s.pid))
        self.assertTrue(s.wait_log(r"forkd\[%d\] notice: ready:" % new, 10),
                        "%s: the new master did not become ready" % name)
        self.assertTrue(load.wait_requests(50, 5), "load stalled after "
                        "USR2 to %s" % name)
        t_quit = time.monotonic()
        s.signal(signal.SIGQUIT)
        try:
            rc = s.proc.wait(GRACEFUL_S + 5)
        except Exception:
            self.fail("%s: old master still running %d s after QUIT" % (
                name, GRACEFUL_S + 5))
        drain = time.monotonic() - t_quit
        self.assertEqual(rc, 0)
        self.assertFalse(os.path.exists(oldbin), "%s: PIDFILE.oldbin left "
                         "after the old master exited" % name)
        self.assertEqual(read_text(pidfile).strip(), str(new))
        return drain

    def check_serves_again(self, name, new, load):
        """The host answers nginx again, from the new master's workers."""
        t = time.monotonic()
        workers = set(children_of(new))
        self.assertEqual(len(workers), 2, "%s: new master's workers: %s" %
                         (name, sorted(workers)))
        self.assertTrue(wait_for(lambda: load.served_since(t, name, workers),
                                 5, 0.01),
                        "%s: nginx got no answer from the new workers %s" %
                        (name, sorted(workers)))

    def test_rolling_upgrade(self):
        """USR2 to each host's master in turn: a new master starts on the
        same sockets (the pidfile moves to PIDFILE.oldbin); once it is
        ready, QUIT to the old one, whose workers give their kept-alive
        connections to the new workers; the next host only once this one
        serves from its new workers.  No request is lost."""
        new_masters = []
        with self.cluster(LIGHT, new_masters=new_masters) as \
                (hosts, nginx, load):
            drains = []
            for i, s in enumerate(hosts):
                drains.append(self.upgrade(s, NAMES[i], load, new_masters))
                self.check_serves_again(NAMES[i], new_masters[i], load)
            self.assertTrue(load.wait_requests(100, 5),
                            "no load after the upgrades")
            load.stop()
            line = load.report(
                "rolling upgrade of 3 hosts",
                "per host: %s; old masters left %s s after QUIT; nginx "
                "saw %s" % (
                    per_host_text(load.per_host()),
                    "/".join("%.2f" % d for d in drains),
                    "; ".join("%s: %s" % (NAMES[i], failures_text(
                        nginx.upstream_failures(HOSTS[i])))
                        for i in range(3))))
            self.assertEqual(load.lost(), [],
                             line + "\n" + load.lost_detail())
            self.assertLess(max(drains), DRAIN_S, line)
            for i, new in enumerate(new_masters):
                self.assertTrue(pid_alive(new), "%s's new master is gone" %
                                NAMES[i])
                self.assertEqual(stop_pid(new), [],
                                 "%s's new master needed SIGKILL" % NAMES[i])

    # -- QUIT

    def quit_host(self, hosts, nginx, load, name):
        """QUIT to host hosts[1] ("h2"); returns (t_quit, t_exit, line)
        once its master exited and 300 more requests went through."""
        s = hosts[1]
        t_quit = time.monotonic()
        s.signal(signal.SIGQUIT)
        try:
            rc = s.proc.wait(GRACEFUL_S + 5)
        except Exception:
            self.fail("h2 still running %d s after QUIT" % (GRACEFUL_S + 5))
        t_exit = time.monotonic()
        self.assertEqual(rc, 0)
        self.assertTrue(load.wait_requests(300, 10), "no load after h2 left")
        load.stop()
        during = load.per_host(t_quit, t_exit)
        line = load.report(name, (
            "h2 drained in %.2f s, serving %d of the requests begun "
            "meanwhile; after it left: %s; slowest request after the QUIT "
            "%.3f s; nginx saw on h2: %s" % (
                t_exit - t_quit, during.get("h2", 0),
                per_host_text(load.per_host(t_exit)),
                load.slowest(t_quit),
                failures_text(nginx.upstream_failures(HOSTS[1])))))
        return t_quit, t_exit, line

    def test_quit_one_host(self):
        """QUIT to h2's master: its workers finish what they run, close
        their idle kept-alive connections (nginx sends a GET that meets
        one closing to another host) and exit; nginx then finds h2's port
        refusing and sends everything to h1 and h3.  No client sees an
        error."""
        with self.cluster(LIGHT) as (hosts, nginx, load):
            t_quit, t_exit, line = self.quit_host(hosts, nginx, load,
                                                  "QUIT of one host")
            self.assertEqual(load.lost(), [],
                             line + "\n" + load.lost_detail())
            self.assertLess(t_exit - t_quit, DRAIN_S, line)
            after = load.per_host(t_exit)
            self.assertNotIn("h2", after, line)
            self.assertGreater(after.get("h1", 0), 50, line)
            self.assertGreater(after.get("h3", 0), 50, line)

    # -- SIGKILL

    def test_sigkill_one_host(self):
        """SIGKILL h2's master and workers at once: the requests running
        on it fail in nginx, which sends those GETs to h1 or h3 (they
        began well within proxy_next_upstream_timeout); every request
        begun after the kill is served by h1 or h3."""
        with self.cluster(MEDIUM) as (hosts, nginx, load):
            s = hosts[1]
            pids = session_pids(s.pid)
            self.assertEqual(len(pids), 3, pids)  # master + 2 workers
            in_flight = load.in_flight()
            t_kill = time.monotonic()
            kill_pids(pids)
            self.assertTrue(wait_for(
                lambda: not any(pid_alive(p) for p in pids), 5),
                "h2 still alive after SIGKILL")
            self.assertTrue(load.wait_requests(300, 10),
                            "no load after the kill")
            load.stop()
            lost = load.lost()
            after = load.per_host(t_kill)
            failed = nginx.upstream_failures(HOSTS[1])
            line = load.report("SIGKILL of one host", (
                "in flight at the kill: %d client requests, %d of them "
                "sent on to h2 and sent again by nginx; after it: %s; "
                "nginx saw on h2: %s" % (
                    in_flight, failed.get("reset", 0) +
                    failed.get("closed", 0), per_host_text(after),
                    failures_text(failed))))
            self.assertLessEqual(len(lost), in_flight,
                                 line + "\n" + load.lost_detail())
            self.assertEqual([r for r in lost if r[0] >= t_kill], [],
                             "requests begun after the kill failed\n" +
                             line + "\n" + load.lost_detail())
            self.assertNotIn("h2", after, line)
            self.assertGreater(after.get("h1", 0), 50, line)
            self.assertGreater(after.get("h3", 0), 50, line)

    # -- at full load

    def test_quit_one_host_at_full_load(self):
        """QUIT to a host whose workers are never idle: it drains in
        milliseconds, as when idle.  (Until the workers read QUIT from a
        signalfd in their epoll set, they learnt of it only when
        epoll_pwait would block, which at full load it never did: they
        served until graceful_timeout and were killed with requests in
        flight.)"""
        with self.cluster(FULL, allow=[STOP_TIMEOUT_RE],
                          ms=FULL_REQUEST_MS) as (hosts, nginx, load):
            t_quit, t_exit, line = self.quit_host(
                hosts, nginx, load, "QUIT of one host at full load")
            self.assertEqual(load.lost(), [],
                             line + "\n" + load.lost_detail())
            self.assertEqual(stop_timeout_kills(hosts[1]), [], line)
            self.assertLess(t_exit - t_quit, DRAIN_S, line)


if __name__ == "__main__":
    unittest.main()
