"""forkd behind a real nginx (issue 5), configured by conf/nginx.conf.

The test reads the shipped site file, points it at a unix socket and a
port of its own, wraps it in a minimal nginx.conf (daemon off, pid, logs
and temp paths in a temporary prefix) and runs nginx by pid.  Through it:
GETs, keep-alive from the client and to forkd, a 1 MiB upload, the
client's address arriving as REMOTE_ADDR through X-Forwarded-For, and a
worker killed in the middle of a request surfacing as 502 while the next
request succeeds.  The same headers sent straight to forkd's TCP bind
from a peer outside forwarded_allow_ips are ignored.

StockDebianTest installs conf/nginx.conf the way its comment tells a user
to (the cp, ln, rm and nginx -t lines, run as written) on a copy of the
stock Debian /etc/nginx with its default site: then nginx serves forkd on
port 80 (moved to a free port); without the rm, nginx -t refuses with
"duplicate default server".

nginx comes from scripts/deps.sh bench (FORKD_NGINX names another
binary).  Without it the tests are skipped, or fail when
FORKD_REQUIRE_NGINX=1.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

from forkdtest import (REPO, Conn, Server, build_testapp, connect, fnv1a32,
                       free_port, get, has_ipv6_loopback, http, parse_responses, pid_alive,
                       raw, read_text, wait_for)

SITE = os.path.join(REPO, "conf", "nginx.conf")
WORKER_WARN = r"warn: worker \d+ "


def find_nginx():
    """FORKD_NGINX if set, else nginx on PATH or in /usr/sbin."""
    env = os.environ.get("FORKD_NGINX")
    for p in ([env] if env else [shutil.which("nginx"), "/usr/sbin/nginx"]):
        if p and os.access(p, os.X_OK):
            return p
    return None


NGINX = find_nginx()
REQUIRE = os.environ.get("FORKD_REQUIRE_NGINX") == "1"


def setUpModule():
    if NGINX is None:
        if REQUIRE:
            raise AssertionError(
                "FORKD_REQUIRE_NGINX=1 but nginx is not installed: run "
                "scripts/deps.sh bench (Debian package nginx)")
        raise unittest.SkipTest("nginx is not installed (scripts/deps.sh "
                                "bench); FORKD_REQUIRE_NGINX=1 makes this "
                                "a failure")


def site_config(sock, port, logdir):
    """conf/nginx.conf with the test's socket, port and log paths.  Every
    substitution must apply, so that the test runs the shipped file."""
    text = read_text(SITE)
    subs = [
        ("unix:/run/forkd/forkd.sock", "unix:" + sock),
        ("listen 80 default_server;", "listen 127.0.0.1:%d;" % port),
        ("listen [::]:80 default_server;", ""),
        ("/var/log/nginx/forkd.access.log",
         os.path.join(logdir, "site-access.log")),
        ("/var/log/nginx/forkd.error.log",
         os.path.join(logdir, "site-error.log")),
    ]
    for old, new in subs:
        if old not in text:
            raise AssertionError("conf/nginx.conf no longer has %r: update "
                                 "test_nginx.py with it" % old)
        text = text.replace(old, new)
    return text


MAIN_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/site.conf;
}}
"""


class Nginx:
    """nginx in the foreground of a process of our own, stopped by pid."""

    def __init__(self, directory, sock):
        self.dir = os.path.join(directory, "nginx")
        os.makedirs(self.dir)
        self.port = free_port()
        with open(os.path.join(self.dir, "site.conf"), "w") as f:
            f.write(site_config(sock, self.port, self.dir))
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(MAIN_CONF.format(d=self.dir))
        self.proc = None
        self.extra_args = []

    def start(self):
        args = [NGINX, "-p", self.dir + "/", "-c",
                os.path.join(self.dir, "nginx.conf"),
                "-e", os.path.join(self.dir, "error.log")] + self.extra_args
        r = subprocess.run(args + ["-t"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=20)
        if r.returncode != 0:
            raise AssertionError("nginx -t refuses the configuration:\n" +
                                 r.stdout.decode(errors="replace") +
                                 "--- site.conf\n" +
                                 read_text(os.path.join(self.dir,
                                                        "site.conf")))
        self.out = open(os.path.join(self.dir, "stderr"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out,
                                     start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                return True
            try:
                connect(self.port, 0.5).close()
                return True
            except OSError:
                return False
        wait_for(up, 10)
        if self.proc.poll() is not None:
            raise AssertionError("nginx exited with %d:\n%s" % (
                self.proc.returncode, self.log()))
        return self

    def log(self):
        return (read_text(os.path.join(self.dir, "error.log"))[-4000:] +
                read_text(os.path.join(self.dir, "stderr"))[-2000:])

    def stop(self):
        """QUIT (graceful), TERM, then KILL, by pid; and any worker left."""
        if self.proc is None:
            return
        pid = self.proc.pid
        kids = [p for p in all_children(pid)]
        for sig, wait in ((signal.SIGQUIT, 3), (signal.SIGTERM, 2),
                          (signal.SIGKILL, 2)):
            if self.proc.poll() is not None:
                break
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        for k in kids:
            if pid_alive(k):
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.out.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def all_children(pid):
    from forkdtest import children_of
    return children_of(pid)


def environ_of(resp):
    """testapp's /environ body as a dict."""
    out = {}
    for line in resp.body.decode("latin-1").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def forkd_connections(sock):
    """Open connections accepted on the unix socket sock (the server side,
    listed under its path in /proc/net/unix, state connected)."""
    n = 0
    with open("/proc/net/unix") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]
            if len(fields) >= 8 and fields[7] == sock and \
                    fields[5] == "03":
                n += 1
    return n


class NginxTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = __import__("tempfile").mkdtemp(prefix="forkd-nginx-app-")
        cls.testapp = build_testapp(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def server(self, workers=2, allow=()):
        s = Server(self.testapp, workers=workers, allow=allow, server={
            "bind": ["unix:{dir}/forkd.sock", "127.0.0.1:{port}"],
            "forwarded_allow_ips": "unix"})
        # nginx's workers (nobody when run as root) reach the socket.
        os.chmod(s.dir, 0o755)
        return s

    def test_requests_upload_keepalive_forwarded(self):
        with self.server() as s, Nginx(s.dir, s.path("forkd.sock")) as n:
            try:
                self.check_through(s, n)
            except AssertionError as e:
                raise AssertionError("%s\n--- nginx\n%s\n%s" % (
                    e, n.log(), s.describe())) from e

    def check_through(self, s, n):
        sock = s.path("forkd.sock")
        # GETs.
        for i in range(5):
            r = get(n.port, "/hello-%d" % i)
            self.assertEqual((r.status, r.body),
                             (200, b"path=/hello-%d\n" % i))
        # Keep-alive from the client: 20 requests on one connection...
        with Conn(n.port) as c:
            for i in range(20):
                c.send(b"GET /ka-%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
                r = c.read_response(5)
                self.assertEqual((r.status, r.body), (200, b"path=/ka-%d\n" %
                                                      i))
            self.assertFalse(c.closed)
        # ...and to forkd: the upstream connection stays open, one for
        # those sequential requests, not one per request.
        conns = forkd_connections(sock)
        self.assertGreaterEqual(conns, 1, "no kept-alive upstream "
                                "connection open in forkd")
        self.assertLessEqual(conns, 2)
        # A 1 MiB upload, buffered by nginx, hashed by the handler.
        body = bytes((i * 7 + (i >> 9)) & 0xff for i in range(1 << 20))
        r = http(("127.0.0.1", n.port), "POST", "/read7", body=body,
                 headers={"Content-Type": "application/octet-stream"},
                 timeout=20)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"%d %08x\n" % (len(body), fnv1a32(body)))
        # Over client_max_body_size: 413 from nginx.
        r = http(("127.0.0.1", n.port), "POST", "/read7",
                 body=b"x" * (10 * 1024 * 1024 + 1), timeout=20)
        self.assertEqual(r.status, 413)
        # The client address through X-Forwarded-For: nginx appends its
        # peer (127.0.0.1) to what the client sent; forkd takes the last.
        r = http(("127.0.0.1", n.port), "GET", "/environ",
                 headers={"X-Forwarded-For": "203.0.113.7"})
        env = environ_of(r)
        self.assertEqual(env.get("REMOTE_ADDR"), "127.0.0.1", env)
        self.assertEqual(env.get("HTTP_X_FORWARDED_FOR"),
                         "203.0.113.7, 127.0.0.1", env)
        self.assertEqual(env.get("HTTP_X_FORWARDED_PROTO"), "http", env)
        self.assertEqual(env.get("wsgi.url_scheme"), "http", env)
        self.assertEqual(env.get("HTTP_HOST"), "127.0.0.1", env)
        # Straight to the unix socket (trusted: "unix"): believed.
        req = (b"GET /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"X-Forwarded-For: 198.51.100.9\r\n"
               b"X-Forwarded-Proto: https\r\n\r\n")
        env = environ_of(parse_responses(raw(sock, req))[0])
        self.assertEqual(env.get("REMOTE_ADDR"), "198.51.100.9", env)
        self.assertEqual(env.get("wsgi.url_scheme"), "https", env)
        # Straight to the TCP bind from 127.0.0.1, not in
        # forwarded_allow_ips = unix: ignored.
        env = environ_of(parse_responses(raw(s.port, req))[0])
        self.assertEqual(env.get("REMOTE_ADDR"), "127.0.0.1", env)
        self.assertEqual(env.get("HTTP_X_FORWARDED_FOR"), "198.51.100.9")
        self.assertEqual(env.get("wsgi.url_scheme"), "http", env)

    def test_worker_killed_mid_request_is_502(self):
        """SIGKILL forkd's only worker while nginx waits for a 2 s request
        (GET, then POST): nginx answers 502 at once and does not run the
        request again; the next request succeeds."""
        with self.server(workers=1, allow=[WORKER_WARN]) as s, \
                Nginx(s.dir, s.path("forkd.sock")) as n:
            try:
                for method in ("GET", "POST"):
                    with self.subTest(method):
                        self.kill_mid_request(s, n, method)
            except AssertionError as e:
                raise AssertionError("%s\n--- nginx\n%s\n%s" % (
                    e, n.log(), s.describe())) from e

    def kill_mid_request(self, s, n, method):
        # The slow request goes over a kept-alive upstream connection.
        self.assertEqual(get(n.port, "/warm").status, 200)
        (worker,) = s.wait_workers(1, 3)
        result = {}

        def slow():
            t0 = time.monotonic()
            try:
                result["r"] = http(("127.0.0.1", n.port), method,
                                   "/sleep?ms=2000",
                                   body=b"" if method == "POST" else None,
                                   timeout=10)
            except Exception as e:
                result["r"] = e
            result["t"] = time.monotonic() - t0
        t = threading.Thread(target=slow, daemon=True)
        t.start()
        time.sleep(1.3)
        os.kill(worker, signal.SIGKILL)
        t.join(10)
        r, secs = result.get("r"), result.get("t")
        sys.stderr.write("\n[nginx] %s killed mid-request: nginx answered "
                         "%s after %.2f s\n" % (
                             method, getattr(r, "status", r), secs))
        self.assertFalse(isinstance(r, Exception), r)
        self.assertEqual(r.status, 502, r)
        self.assertLess(secs, 1.9, "502 came late: retried?")
        after = get(n.port, "/after")
        self.assertEqual((after.status, after.body), (200, b"path=/after\n"))
        self.assertEqual(len(s.wait_workers(1, 3, exclude=[worker])), 1)

    def test_idle_upstream_connection_of_dead_worker_no_502(self):
        """A kept-alive upstream connection parked in a worker that died
        is dead; the next request that nginx sends on it is retried on a
        new connection, and the client sees no error."""
        with self.server(workers=1, allow=[WORKER_WARN]) as s, \
                Nginx(s.dir, s.path("forkd.sock")) as n:
            try:
                for i in range(3):
                    self.assertEqual(get(n.port, "/warm").status, 200)
                    self.assertGreaterEqual(
                        forkd_connections(s.path("forkd.sock")), 1)
                    (worker,) = s.wait_workers(1, 3)
                    os.kill(worker, signal.SIGKILL)
                    self.assertEqual(len(s.wait_workers(1, 3,
                                                        exclude=[worker])),
                                     1)
                    r = get(n.port, "/next-%d" % i)
                    self.assertEqual((r.status, r.body),
                                     (200, b"path=/next-%d\n" % i))
            except AssertionError as e:
                raise AssertionError("%s\n--- nginx\n%s\n%s" % (
                    e, n.log(), s.describe())) from e


def install_steps():
    """The shell lines of conf/nginx.conf's "Install on Debian" comment."""
    steps = re.findall(r"(?m)^#   ((?:cp|ln|rm|nginx) .*)$", read_text(SITE))
    if not steps or not steps[-1].startswith("nginx -t"):
        raise AssertionError("conf/nginx.conf's install steps are gone: "
                             "update test_nginx.py with them")
    return steps


class StockNginx(Nginx):
    """Debian's own nginx.conf and sites, copied from /etc/nginx (as the
    package installed them) into directory/etc/nginx, with every absolute
    path of theirs moved into directory and port 80 moved to a free port
    of 127.0.0.1 (and ::1)."""

    def __init__(self, directory, sock):
        self.top = directory
        self.etc = os.path.join(directory, "etc", "nginx")
        self.dir = self.etc
        self.sock = sock
        self.port = free_port()
        self.port6 = free_port("::1") if has_ipv6_loopback() else None
        self.proc = None
        self.extra_args = ["-g", "daemon off;"]
        os.makedirs(os.path.join(directory, "log"))
        shutil.copytree("/etc/nginx", self.etc, symlinks=True)
        for d, _, files in os.walk(self.etc):
            for n in files:
                self.localize(os.path.join(d, n))

    def localize(self, path):
        """Point what path names (a file, or a link) into the copy."""
        if os.path.islink(path):
            target = os.readlink(path)
            if target.startswith("/etc/nginx/"):
                os.unlink(path)
                os.symlink(self.top + target, path)
            return
        text = read_text(path)
        six = ("listen [::1]:%d" % self.port6) if self.port6 else "# listen"
        for old, new in (("/etc/nginx", self.etc),
                         ("/run/nginx.pid", self.top + "/nginx.pid"),
                         ("/var/log/nginx", self.top + "/log"),
                         ("unix:/run/forkd/forkd.sock", "unix:" + self.sock),
                         ("listen 80 ", "listen 127.0.0.1:%d " % self.port),
                         ("listen [::]:80 ", six + " ")):
            text = text.replace(old, new)
        with open(path, "w") as f:
            f.write(text)

    def follow(self, steps):
        """Run the install steps on the copy; the last one (nginx -t and
        a reload) tests the configuration and starts nginx.  Returns the
        output of nginx -t when it fails, else None."""
        for step in steps[:-1]:
            cmd = step.replace("/etc/nginx", self.etc)
            r = subprocess.run(cmd, shell=True, cwd=REPO, timeout=20,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            if r.returncode != 0:
                raise AssertionError("%s: %s" % (step, r.stdout.decode()))
            if step.startswith("cp "):
                self.localize(cmd.split()[-1])
        if steps[-1] != "nginx -t && systemctl reload nginx":
            raise AssertionError("unexpected last step %r" % steps[-1])
        r = subprocess.run([NGINX, "-t", "-c", self.etc + "/nginx.conf",
                            "-e", self.top + "/log/error.log"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=20)
        if r.returncode != 0:
            return r.stdout.decode(errors="replace")
        self.start()
        return None

    def log(self):
        return read_text(os.path.join(self.top, "log", "error.log"))[-4000:]


class StockDebianTest(unittest.TestCase):
    """conf/nginx.conf installed as its comment says, on a copy of the
    stock Debian /etc/nginx: its default site is there to clash with."""

    def setUp(self):
        r = subprocess.run(["dpkg", "--verify", "nginx-common"],
                           stdout=subprocess.PIPE, timeout=30)
        self.assertNotIn(b"/etc/nginx/", r.stdout,
                         "/etc/nginx differs from Debian's package: the "
                         "test needs the stock files")
        self.tmp = __import__("tempfile").mkdtemp(prefix="forkd-stock-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_install_steps_reach_forkd(self):
        with Server("hello", server={"bind": "unix:{dir}/forkd.sock"}) as s:
            os.chmod(s.dir, 0o755)
            n = StockNginx(self.tmp, s.path("forkd.sock"))
            try:
                self.assertIsNone(n.follow(install_steps()))
                self.assertFalse(os.path.exists(
                    n.etc + "/sites-enabled/default"))
                for port in (n.port,) + ((n.port6,) if n.port6 else ()):
                    addr = ("::1", port) if port == n.port6 else port
                    r = get(addr, "/")
                    self.assertEqual((r.status, r.body),
                                     (200, b"Hello, World!\n"))
            except AssertionError as e:
                raise AssertionError("%s\n--- nginx\n%s\n%s" % (
                    e, n.log(), s.describe())) from e
            finally:
                n.stop()

    def test_default_site_left_enabled_fails_loudly(self):
        """Skipping the rm: nginx -t refuses, rather than nginx serving
        its welcome page instead of forkd."""
        n = StockNginx(self.tmp, os.path.join(self.tmp, "forkd.sock"))
        out = n.follow([x for x in install_steps()
                        if not x.startswith("rm ")])
        self.assertIsNotNone(out, "nginx -t accepted two default servers")
        self.assertIn("duplicate default server", out)


if __name__ == "__main__":
    unittest.main()
