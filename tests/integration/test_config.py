"""Configuration and command line: bad configurations exit non-zero with one
line `forkd: FILE:LINE: KEY: message`; --check, --version, --help;
command-line overrides; relative paths; unix and IPv6 binds."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from forkdtest import (FORKD_APPS, FORKD_BIN, Server, app_path, compile_so,
                       free_port, get, has_ipv6_loopback, kill_session,
                       parse_responses, raw, read_text, run_forkd,
                       session_pids, wait_for)

ERROR_RE = re.compile(r"^forkd: (.+?):(\d+): ([^:\s]+): (.+)$")

NO_DESCRIPTOR_C = "int not_a_handler(void) { return 1; }\n"

WRONG_VERSION_C = r"""
#include <forkd.h>
static int h(struct forkd_req *req, void *state)
{
    (void)req; (void)state;
    return -1;
}
const struct forkd_app forkd_app = { .api_version = 999, .handle = h };
"""

INIT_FAILS_C = r"""
#include <forkd.h>
static int i(const struct forkd_option *o, size_t n, void **state)
{
    (void)o; (void)n; (void)state;
    forkd_log(NULL, FORKD_LOG_ERROR, "init-fails-marker: no database");
    return -1;
}
static int h(struct forkd_req *req, void *state)
{
    (void)req; (void)state;
    return -1;
}
const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION, .init = i, .handle = h };
"""


class Tmp:
    """A temporary directory removed at the end of the test."""

    def __init__(self, test):
        self.dir = tempfile.mkdtemp(prefix="forkd-cfg-")
        test.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, *names):
        return os.path.join(self.dir, *names)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p


def ini_lines(port, app="hello", extra_server=(), extra_app=()):
    """The lines of a minimal ini; line numbers are index + 1."""
    lines = ["[server]", "bind = 127.0.0.1:%d" % port, "workers = 1"]
    lines += list(extra_server)
    lines += ["", "[app]", "path = %s" % app_path(app)]
    lines += list(extra_app)
    return lines


class BadConfigTest(unittest.TestCase):
    def config_error(self, text, line=None, key=None, args=()):
        """Run forkd on ini text; it must exit non-zero with exactly one
        stderr line `forkd: FILE:LINE: KEY: message`."""
        tmp = Tmp(self)
        ini = tmp.write("forkd.ini", text)
        rc, out, err = run_forkd(["-c", ini] + list(args), timeout=5)
        self.assertNotEqual(rc, 0, "accepted a bad config:\n" + text)
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, "want one stderr line, got:\n" + err)
        m = ERROR_RE.match(lines[0])
        self.assertIsNotNone(m, "not `forkd: FILE:LINE: KEY: message`: %r"
                             % lines[0])
        self.assertIn(os.path.realpath(m.group(1)),
                      (os.path.realpath(ini),), lines[0])
        if line is not None:
            self.assertEqual(int(m.group(2)), line, lines[0])
        if key is not None:
            self.assertEqual(m.group(3), key, lines[0])
        return lines[0]

    def bad(self, lines, line, key, args=()):
        return self.config_error("\n".join(lines) + "\n", line, key, args)

    def test_unknown_user_and_group(self):
        """A user or group that does not exist: its file, line and key."""
        port = free_port()
        line = self.bad(ini_lines(port, extra_server=[
            "user = no-such-user-forkd"]), 4, "user")
        self.assertIn('no user "no-such-user-forkd"', line)
        line = self.bad(ini_lines(port, extra_server=[
            "user = root", "group = no-such-group-forkd"]), 5, "group")
        self.assertIn('no group "no-such-group-forkd"', line)

    def test_unknown_key(self):
        port = free_port()
        lines = ini_lines(port, extra_server=["bogus_key = 1"])
        msg = self.bad(lines, 4, "bogus_key")
        self.assertNotIn("Traceback", msg)

    def test_unknown_section(self):
        port = free_port()
        lines = ini_lines(port) + ["[bogus]", "x = 1"]
        self.config_error("\n".join(lines) + "\n", 8)

    def test_workers_not_a_number(self):
        lines = ini_lines(free_port())
        lines[2] = "workers = x"
        msg = self.bad(lines, 3, "workers")
        self.assertIn('"x"', msg)

    def test_workers_zero(self):
        lines = ini_lines(free_port())
        lines[2] = "workers = 0"
        msg = self.bad(lines, 3, "workers")
        self.assertIn("0", msg)

    def test_bad_values(self):
        cases = [("workers = 5x", "workers"), ("workers = -1", "workers"),
                 ("workers = 99999999999999999999", "workers"),
                 ("threads = 0", "threads"), ("threads = 1025", "threads"), ("keepalive = soon", "keepalive"),
                 ("limit_request_line = -5", "limit_request_line"),
                 ("log_level = loud", "log_level"),
                 ("bind = 127.0.0.1", "bind"), ("bind = 127.0.0.1:99999",
                                                 "bind"),
                 ("bind = [::1:80", "bind"), ("bind = unix:", "bind")]
        for text, key in cases:
            with self.subTest(text):
                lines = ini_lines(free_port(), extra_server=[text])
                self.bad(lines, 4, key)

    def test_long_line(self):
        # 230 characters: over inih's 199.
        long_line = "error_log = /tmp/" + "a" * 213
        self.assertGreater(len(long_line), 199)
        lines = ini_lines(free_port(), extra_server=[long_line])
        self.config_error("\n".join(lines) + "\n", 4)

    def test_long_comment_line(self):
        long_line = "; " + "c" * 250
        lines = ini_lines(free_port(), extra_server=[long_line])
        self.config_error("\n".join(lines) + "\n", 4)

    def test_line_of_199_is_fine(self):
        tmp = Tmp(self)
        line = "; " + "c" * 197
        self.assertEqual(len(line), 199)
        ini = tmp.write("forkd.ini", "\n".join(
            ini_lines(free_port(), extra_server=[line])) + "\n")
        rc, out, err = run_forkd(["--check", "-c", ini])
        self.assertEqual(rc, 0, err)

    def test_missing_config_file(self):
        tmp = Tmp(self)
        missing = tmp.path("nope", "forkd.ini")
        rc, out, err = run_forkd(["-c", missing])
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith("forkd: "), err)
        self.assertIn(missing, err)

    def test_missing_so(self):
        tmp = Tmp(self)
        lines = ini_lines(free_port(), app=tmp.path("missing.so"))
        msg = self.bad(lines, 6, "path")
        self.assertIn("missing.so", msg)

    def test_so_without_descriptor(self):
        tmp = Tmp(self)
        so = compile_so(tmp.dir, "nodesc", NO_DESCRIPTOR_C)
        msg = self.bad(ini_lines(free_port(), app=so), 6, "path")
        self.assertIn("forkd_app", msg)

    def test_so_wrong_api_version(self):
        tmp = Tmp(self)
        so = compile_so(tmp.dir, "v999", WRONG_VERSION_C)
        msg = self.bad(ini_lines(free_port(), app=so), 6, "path")
        self.assertIn("999", msg)

    def test_missing_app_path(self):
        lines = ["[server]", "bind = 127.0.0.1:%d" % free_port(),
                 "workers = 1", "", "[app]", "delay_ms = 5"]
        rc, out, err = run_forkd(["-c", Tmp(self).write("f.ini", "\n".join(
            lines) + "\n")])
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("path", err)

    def test_check_bad_config(self):
        lines = ini_lines(free_port(), extra_server=["workers = x"])
        self.bad(lines, 4, "workers", args=["--check"])

    def test_init_fails(self):
        """A handler whose init fails: the daemon stops with an error,
        logs why, and leaves no process behind."""
        tmp = Tmp(self)
        so = compile_so(tmp.dir, "initfail", INIT_FAILS_C)
        port = free_port()
        log = tmp.path("error.log")
        ini = tmp.write("forkd.ini", "\n".join(
            ini_lines(port, app=so, extra_server=["error_log = " + log])) +
            "\n")
        t0 = time.monotonic()
        rc, out, err = run_forkd(["-c", ini], timeout=10)
        self.assertNotEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn("init-fails-marker: no database", read_text(log) + err)
        # The port is free again.
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

    def test_check_runs_init(self):
        """--check runs the handler's init (as the workers' user, in a
        child): an init that fails is a failed check, with the handler's
        own line and one from forkd naming the handler; nothing binds."""
        tmp = Tmp(self)
        so = compile_so(tmp.dir, "initfail", INIT_FAILS_C)
        port = free_port()
        ini = tmp.write("forkd.ini", "\n".join(ini_lines(port, app=so)) + "\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # --check must not bind
            s.listen(1)
            rc, out, err = run_forkd(["--check", "-c", ini], timeout=10)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("init-fails-marker: no database", err)
        self.assertIn("initfail.so: init failed", err)
        self.assertNotIn("configuration OK", out)

    def test_port_in_use(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            msg = self.bad(ini_lines(port), 2, "bind")
            self.assertIn("127.0.0.1:%d" % port, msg)

    def test_unix_path_in_use(self):
        tmp = Tmp(self)
        path = tmp.path("live.sock")
        with socket.socket(socket.AF_UNIX) as live:
            live.bind(path)
            live.listen(1)
            lines = ini_lines(0)
            lines[1] = "bind = unix:" + path
            msg = self.bad(lines, 2, "bind")
            self.assertIn(path, msg)
            # Our listener still owns the path.
            with socket.socket(socket.AF_UNIX) as c:
                c.connect(path)

    def test_unix_path_is_a_regular_file(self):
        tmp = Tmp(self)
        path = tmp.write("not-a-socket", "precious\n")
        lines = ini_lines(0)
        lines[1] = "bind = unix:" + path
        ini = tmp.write("forkd.ini", "\n".join(lines) + "\n")
        rc, out, err = run_forkd(["-c", ini], timeout=5)
        self.assertNotEqual(rc, 0)
        self.assertEqual(read_text(path), "precious\n")


class CheckLikeStartTest(unittest.TestCase):
    """--check runs every check a start runs short of binding (issue 14,
    item 2), as nginx -t does: users and groups, the log files, the
    pidfile; exit 1 with the start's one-line error, and a pidfile is
    never written by it."""

    def check(self, extra):
        tmp = Tmp(self)
        ini = tmp.write("forkd.ini", "\n".join(
            ini_lines(free_port(), extra_server=extra)) + "\n")
        rc, out, err = run_forkd(["--check", "-c", ini], timeout=10)
        return rc, out, err, tmp

    def test_failures(self):
        for extra, want in [
                (["user = no_such_user_forkd"],
                 r"forkd\.ini:4: user: no user \"no_such_user_forkd\""),
                (["group = no_such_group_forkd"],
                 r"forkd\.ini:4: group: "),
                (["error_log = /nonexistent/forkd/error.log"],
                 r"error_log: cannot open \"/nonexistent/forkd/error.log\""),
                (["access_log = /nonexistent/forkd/access.log"],
                 r"access_log: cannot open \"/nonexistent/forkd/access\.log"),
                (["pidfile = /nonexistent/forkd/forkd.pid"],
                 r"pidfile: /nonexistent/forkd/forkd\.pid: cannot be "
                 r"written: No such file or directory"),
                (["daemon = yes"],
                 r"daemon: a daemon has no standard error")]:
            with self.subTest(extra=extra):
                rc, out, err, _ = self.check(extra)
                self.assertEqual(rc, 1, out + err)
                lines = err.splitlines()
                self.assertEqual(len(lines), 1, lines)
                self.assertRegex(lines[0], want)
                self.assertNotIn("configuration OK", out)

    def test_pidfile_not_written(self):
        tmp = Tmp(self)
        pid = tmp.path("forkd.pid")
        ini = tmp.write("forkd.ini", "\n".join(ini_lines(
            free_port(), extra_server=["pidfile = " + pid])) + "\n")
        rc, out, err = run_forkd(["--check", "-c", ini], timeout=10)
        self.assertEqual(rc, 0, err)
        self.assertIn("configuration OK", out)
        self.assertFalse(os.path.exists(pid))

    def test_check_beside_the_running_forkd(self):
        """The ini of a forkd that runs is checked before a HUP, as nginx
        -t is: its live pidfile is a note, not a failure; a second start
        is still refused."""
        with Server(server={"pidfile": "{dir}/forkd.pid"}) as s:
            rc, out, err = run_forkd(["--check", "-c", s.ini], timeout=10)
            self.assertEqual(rc, 0, err)
            self.assertIn("configuration OK", out)
            self.assertRegex(err, r"note: \S+forkd\.pid names forkd pid "
                             r"%d, which runs: HUP it" % s.pid)
            rc, out, err = run_forkd(["-c", s.ini], timeout=10)
            self.assertEqual(rc, 1)
            self.assertRegex(err, r"pid %d in it is alive: is forkd "
                             r"already running\?" % s.pid)
            self.assertEqual(int(read_text(s.path("forkd.pid"))), s.pid)


class CommandLineTest(unittest.TestCase):
    def test_check_good_config(self):
        tmp = Tmp(self)
        port = free_port()
        ini = tmp.write("forkd.ini", "\n".join(ini_lines(port)) + "\n")
        with socket.socket() as s:
            # Hold the port: --check must not bind, so it still passes.
            s.bind(("127.0.0.1", port))
            s.listen(1)
            rc, out, err = run_forkd(["--check", "-c", ini], timeout=5)
        self.assertEqual(rc, 0, err)
        self.assertIn("127.0.0.1:%d" % port, out + err)
        self.assertIn("hello.so", out + err)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

    def test_option_on_command_line(self):
        """-o KEY=VALUE (repeatable) sets an [app] option and wins over the
        file's; -o path=... is the handler; a malformed -o is one line."""
        tmp = Tmp(self)
        a = tmp.write("a.txt", "from the file\n")
        b = tmp.write("b.txt", "from -o\n")
        os.chmod(tmp.dir, 0o755)
        for p in (a, b):
            os.chmod(p, 0o644)
        s = Server("bigfile", options={"file": a},
                   args=["-o", "file=" + b, "-o", "unused=1"])
        with s:
            self.assertEqual(get(s.port, "/file").body, b"from -o\n")
        rc, out, err = run_forkd(["--check", "-o", "path=" + app_path("hello"),
                                  "-o", "x=1"])
        self.assertEqual(rc, 0, err)
        self.assertIn("hello.so", out)
        self.assertIn("option x = 1", out)
        rc, out, err = run_forkd(["--check", "-o", "novalue",
                                  app_path("hello")])
        self.assertEqual(rc, 1)
        self.assertEqual(err.strip().count("\n"), 0, err)
        self.assertIn("-o", err)

    def test_version(self):
        rc, out, err = run_forkd(["--version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"forkd")
        self.assertRegex(out, r"\d+\.\d+")

    def test_help(self):
        rc, out, err = run_forkd(["--help"])
        self.assertEqual(rc, 0)
        for opt in ("-c", "-b", "-w", "--check", "--version"):
            self.assertIn(opt, out)

    def test_unknown_option(self):
        rc, out, err = run_forkd(["--no-such-option"])
        self.assertNotEqual(rc, 0)
        self.assertTrue(err.strip())

    def test_bind_override(self):
        port2 = free_port()
        with Server("hello", port=None, args=["-b", "127.0.0.1:%d" % port2]) \
                as s:
            self.assertEqual(get(port2).body, b"Hello, World!\n")
            # -b replaces the file's bind.
            with socket.socket() as c:
                c.settimeout(2)
                self.assertNotEqual(c.connect_ex(("127.0.0.1", s.port)), 0)

    def test_workers_override(self):
        with Server("hello", workers=1, args=["-w", "3"]) as s:
            self.assertEqual(len(s.wait_workers(3, 2)), 3)
            self.assertIn("ready: 3 workers", s.log_text())

    def test_app_override(self):
        with Server("hello", args=[app_path("echo")]) as s:
            r = get(s.port, "/override")
            self.assertEqual(r.status, 200)
            self.assertIn(b'"PATH_INFO"', r.body)

    def test_relative_paths(self):
        """[app] path and error_log resolve against the ini's directory,
        not the working directory."""
        ini = ("[server]\nbind = {bind}\nworkers = 1\n"
               "error_log = logs/error.log\naccess_log = logs/access.log\n"
               "\n[app]\npath = lib/hello.so\n")
        s = Server(ini=ini, cwd="/")
        os.mkdir(s.path("lib"))
        os.mkdir(s.path("logs"))
        shutil.copy(app_path("hello"), s.path("lib", "hello.so"))
        s.error_log = s.path("logs", "error.log")
        s.access_log = s.path("logs", "access.log")
        with s:
            self.assertEqual(get(s.port).body, b"Hello, World!\n")
            self.assertEqual(len(s.wait_access(1)), 1)

    def test_unix_bind(self):
        tmp = Tmp(self)
        path = tmp.path("forkd.sock")
        with Server("echo", server={"bind": "unix:" + path}) as s:
            data = raw(path, b"GET /unix?x=1 HTTP/1.1\r\nHost: local\r\n"
                       b"Connection: close\r\n\r\n", 3)
            (r,) = parse_responses(data)
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.body)["PATH_INFO"], "/unix")

    def test_unix_socket_mode_owner_umask_chdir(self):
        """socket_mode and socket_owner set the unix socket's mode and
        group; chdir moves the master; the socket is removed at stop."""
        import grp
        import stat
        tmp = Tmp(self)
        path = tmp.path("mode.sock")
        group = grp.getgrgid(os.getgid()).gr_name
        with Server("hello", server={"bind": "unix:" + path,
                                     "socket_mode": "0600",
                                     "socket_owner": ":" + group,
                                     "umask": "0077",
                                     "chdir": tmp.dir}) as s:
            st = os.stat(path)
            self.assertTrue(stat.S_ISSOCK(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
            self.assertEqual(st.st_gid, os.getgid())
            self.assertEqual(os.readlink("/proc/%d/cwd" % s.pid),
                             os.path.realpath(tmp.dir))
            data = raw(path, b"GET / HTTP/1.1\r\nHost: local\r\n"
                       b"Connection: close\r\n\r\n", 3)
            self.assertEqual(parse_responses(data)[0].status, 200)
        self.assertFalse(os.path.exists(path), "socket file left behind")

    def test_stale_unix_socket_replaced(self):
        tmp = Tmp(self)
        path = tmp.path("stale.sock")
        with socket.socket(socket.AF_UNIX) as old:
            old.bind(path)
        self.assertTrue(os.path.exists(path))
        with Server("hello", server={"bind": "unix:" + path}) as s:
            data = raw(path, b"GET / HTTP/1.1\r\nHost: local\r\n"
                       b"Connection: close\r\n\r\n", 3)
            self.assertEqual(parse_responses(data)[0].body,
                             b"Hello, World!\n")

    def test_ipv6_bind(self):
        if not has_ipv6_loopback():
            self.skipTest("no IPv6 loopback")
        port = free_port("::1")
        with Server("echo", server={"bind": "[::1]:%d" % port}) as s:
            data = raw(("::1", port), b"GET /six HTTP/1.1\r\nHost: x\r\n"
                       b"Connection: close\r\n\r\n", 3)
            (r,) = parse_responses(data)
            self.assertEqual(r.status, 200)
            env = json.loads(r.body)
            self.assertEqual(env["REMOTE_ADDR"], "::1")
            self.assertEqual(str(env["SERVER_PORT"]), str(port))
            self.assertIn("[::1]:%d" % port, s.log_text())

    def test_two_binds(self):
        port2 = free_port()
        with Server("hello", server={"bind": ["127.0.0.1:{port}",
                                              "127.0.0.1:%d" % port2]}) as s:
            self.assertEqual(get(s.port).status, 200)
            self.assertEqual(get(port2).status, 200)
            self.assertIn("127.0.0.1:%d" % port2, s.log_text())

    def test_app_options_reach_init(self):
        with Server("resources", options={"delay_ms": 50}) as s:
            t0 = time.monotonic()
            self.assertEqual(get(s.port, "/resource/1").status, 200)
            self.assertLess(time.monotonic() - t0, 1.0,
                            "delay_ms = 50 not used (default is 5000)")


def proc_ids(pid):
    """(real uid, real gid) of a live process, from /proc/PID/status."""
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("Uid:", "Gid:")):
                ids[line[:3]] = int(line.split()[1])
    return ids["Uid"], ids["Gid"]


@unittest.skipUnless(os.geteuid() == 0, "the master must run as root")
class PrivilegeTest(unittest.TestCase):
    """Issue 5: workers never run as root unless the configuration says so
    (user = root); by default a root master drops them to nobody."""

    def setUp(self):
        import pwd
        try:
            self.nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user nobody")

    def test_workers_drop_to_nobody_by_default(self):
        with Server("hello", workers=2) as s:
            workers = s.wait_workers(2)
            self.assertEqual(len(workers), 2)
            self.assertEqual(proc_ids(s.pid), (0, 0))
            for w in workers:
                self.assertEqual(proc_ids(w), (self.nobody.pw_uid,
                                               self.nobody.pw_gid))
            self.assertEqual(get(s.port, "/").status, 200)
            self.assertTrue(s.wait_log(r"workers run as nobody"))

    def test_user_root_keeps_root(self):
        with Server("hello", workers=1, server={"user": "root"}) as s:
            (w,) = s.wait_workers(1)
            self.assertEqual(proc_ids(w), (0, 0))
            self.assertEqual(get(s.port, "/").status, 200)
            self.assertTrue(s.wait_log(r"workers run as root: user = root"))

    def test_numeric_user_and_group(self):
        """A uid with a passwd entry takes that user's group; a bare uid
        (no entry, as in containers) needs group, which may be a number
        too; without it, one line naming the key."""
        uid = self.nobody.pw_uid
        with Server("hello", workers=1, server={"user": str(uid)}) as s:
            (w,) = s.wait_workers(1)
            self.assertEqual(proc_ids(w), (uid, self.nobody.pw_gid))
            self.assertEqual(get(s.port, "/").status, 200)
        import pwd
        bare = next(u for u in range(4242, 5242)
                    if not any(p.pw_uid == u for p in pwd.getpwall()))
        with Server("hello", workers=1,
                    server={"user": str(bare), "group": str(bare)}) as s:
            (w,) = s.wait_workers(1)
            self.assertEqual(proc_ids(w), (bare, bare))
            self.assertEqual(get(s.port, "/").status, 200)
        tmp = Tmp(self)
        ini = tmp.write("forkd.ini", "\n".join(
            ini_lines(free_port(), extra_server=["user = %d" % bare])) + "\n")
        rc, out, err = run_forkd(["-c", ini], timeout=5)
        self.assertNotEqual(rc, 0)
        self.assertRegex(err, r"^forkd: .*forkd\.ini:\d+: user: uid %d has no "
                         r"passwd entry: set group too$" % bare)

    def test_check_names_the_workers_user(self):
        tmp = Tmp(self)
        ini = tmp.write("forkd.ini", "\n".join(ini_lines(free_port())) + "\n")
        rc, out, err = run_forkd(["--check", "-c", ini], timeout=5)
        self.assertEqual(rc, 0, err)
        self.assertIn("workers run as nobody", out)


if __name__ == "__main__":
    unittest.main()
