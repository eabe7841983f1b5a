"""Daemon mode (issue 5): forkd -D (or daemon = yes) returns 0 once the
detached daemon serves; the daemon leads a new session with its standard
streams on /dev/null and its pid in the pidfile; a second forkd on the
same pidfile refuses; TERM removes the pidfile.

The daemon is not a child of the test: every process is found through
the pidfile and /proc and stopped by pid (TERM, then KILL), also when the
test fails.
"""

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from forkdtest import (FORKD_APPS, FORKD_BIN, KEEP, SANITIZER_RE, WARN_RE,
                       free_port, get, kill_session, pid_alive, proc_stat,
                       read_text, require_binary, session_pids, wait_for)

HELLO = b"Hello, World!\n"


def stop_session(sid, timeout=5.0):
    """TERM the session leader sid, then KILL whatever of its session is
    left after timeout.  Returns the pids that needed SIGKILL."""
    if sid is None:
        return []
    if pid_alive(sid):
        try:
            os.kill(sid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    wait_for(lambda: not session_pids(sid), timeout)
    return kill_session(sid)


class DaemonTest(unittest.TestCase):
    def setUp(self):
        require_binary()
        self.dir = tempfile.mkdtemp(prefix="forkd-daemon-")
        self.port = free_port()
        self.pidfile = os.path.join(self.dir, "run", "forkd.pid")
        os.mkdir(os.path.dirname(self.pidfile))
        self.error_log = os.path.join(self.dir, "error.log")
        self.ini = os.path.join(self.dir, "forkd.ini")
        self.daemon_pid = None
        # A daemon has no stderr: sanitizer reports go to files.
        self.env = dict(os.environ)
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            opts = self.env.get(var, "")
            self.env[var] = (opts + ":" if opts else "") + \
                "log_path=" + os.path.join(self.dir, "san")
        with open(self.ini, "w") as f:
            f.write("[server]\n"
                    "bind = 127.0.0.1:%d\n"
                    "workers = 2\n"
                    "error_log = %s\n"
                    "pidfile = %s\n"
                    "\n[app]\npath = %s\n" % (
                        self.port, self.error_log, self.pidfile,
                        os.path.join(FORKD_APPS, "hello.so")))

    def tearDown(self):
        left = stop_session(self.daemon_pid)
        problems = []
        if left:
            problems.append("processes of the daemon's session needed "
                            "SIGKILL: %s" % left)
        log = read_text(self.error_log)
        bad = [line for line in log.splitlines() if WARN_RE.search(line)]
        if bad:
            problems.append("warn/error lines in the error log:\n  " +
                            "\n  ".join(bad))
        san = [read_text(os.path.join(self.dir, f))
               for f in os.listdir(self.dir) if f.startswith("san")]
        if any(SANITIZER_RE.search(t) for t in san):
            problems.append("sanitizer report:\n" + "\n".join(san)[:4000])
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            raise AssertionError("\n".join(problems) + "\n--- error.log\n" +
                                 log[-4000:])

    def run_forkd(self, args, timeout=10.0):
        """Run forkd ARGS in a session of its own, its output to files;
        (status, stdout, stderr).  If it does not return, it and its
        session are killed."""
        out_path = os.path.join(self.dir, "out")
        err_path = os.path.join(self.dir, "err")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            p = subprocess.Popen([FORKD_BIN] + args,
                                 stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=err, env=self.env, cwd=self.dir,
                                 start_new_session=True)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            stop_session(p.pid, 0.5)
            self.fail("forkd %s did not return within %.0f s\n%s" % (
                " ".join(args), timeout, read_text(self.error_log)))
        return p.returncode, read_text(out_path), read_text(err_path)

    def start_daemon(self, args):
        t0 = time.monotonic()
        rc, out, err = self.run_forkd(args)
        dt = time.monotonic() - t0
        pid_text = read_text(self.pidfile).strip()
        if pid_text.isdigit():
            self.daemon_pid = int(pid_text)
        self.assertEqual(rc, 0, "forkd %s exited %d\nstderr: %s\n%s" % (
            " ".join(args), rc, err, read_text(self.error_log)))
        self.assertEqual((out, err), ("", ""))
        self.assertIsNotNone(self.daemon_pid, "no pid in the pidfile")
        # forkd returned only once the daemon serves.
        self.assertIn("ready:", read_text(self.error_log))
        return dt

    def check_daemon(self):
        pid = self.daemon_pid
        self.assertTrue(pid_alive(pid))
        self.assertEqual(os.getsid(pid), pid, "the daemon is not a "
                         "session leader")
        self.assertNotEqual(os.getsid(pid), os.getsid(0))
        for fd in (0, 1, 2):
            self.assertEqual(os.readlink("/proc/%d/fd/%d" % (pid, fd)),
                             "/dev/null", "fd %d of the daemon" % fd)
        self.assertTrue(s_line(self.error_log, r"forkd\[%d\] notice: "
                               r"ready:" % pid), "the ready line is not "
                        "the daemon's")
        self.assertEqual(get(self.port).body, HELLO)
        workers = [p for p in session_pids(pid) if p != pid]
        self.assertEqual(len(workers), 2, workers)
        for w in workers:
            self.assertEqual(proc_stat(w)[1], pid)
        # The workers' standard streams: test_output_pipe_closed.

    def test_daemon_key(self):
        text = read_text(self.ini).replace("[server]\n",
                                           "[server]\ndaemon = yes\n")
        with open(self.ini, "w") as f:
            f.write(text)
        self.start_daemon(["-c", self.ini])
        self.check_daemon()
        self.stop_and_check()

    def test_dash_d_second_refused_term_removes_pidfile(self):
        self.start_daemon(["-D", "-c", self.ini])
        self.check_daemon()
        pid = self.daemon_pid
        # A second forkd on the same pidfile (another port) refuses.
        ini2 = os.path.join(self.dir, "second.ini")
        with open(ini2, "w") as f:
            f.write(read_text(self.ini).replace(
                "127.0.0.1:%d" % self.port, "127.0.0.1:%d" % free_port()))
        rc, out, err = self.run_forkd(["-D", "-c", ini2])
        self.assertEqual(rc, 1, err)
        self.assertEqual(out, "")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r"^forkd: %s: pidfile: %s: pid %d in it "
                         r"is alive" % (re.escape(ini2),
                                        re.escape(self.pidfile), pid))
        self.assertEqual(read_text(self.pidfile).strip(), str(pid))
        self.assertTrue(pid_alive(pid))
        self.assertEqual(get(self.port).body, HELLO)
        self.stop_and_check()

    def test_output_pipe_closed(self):
        """forkd -D run with its output captured ($(forkd -D), ssh, a
        deployment tool) returns and its pipe reaches EOF: nothing of the
        daemon keeps the caller's stdout or stderr open."""
        r, w = os.pipe()
        try:
            p = subprocess.Popen([FORKD_BIN, "-D", "-c", self.ini],
                                 stdin=subprocess.DEVNULL, stdout=w,
                                 stderr=w, env=self.env, cwd=self.dir,
                                 start_new_session=True)
            os.close(w)
            w = -1
            try:
                rc = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                stop_session(p.pid, 0.5)
                raise
            self.daemon_pid = int(read_text(self.pidfile).strip() or 0) \
                or None
            self.assertEqual(rc, 0)
            ready, _, _ = select.select([r], [], [], 2.0)
            holders = pipe_holders(r)
            self.assertTrue(ready and os.read(r, 4096) == b"",
                            "forkd -D returned but its output pipe is "
                            "still open, held by %s (daemon pid %s)" % (
                                holders, self.daemon_pid))
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)

    def test_stale_pidfile_is_replaced(self):
        """A pidfile naming a dead process does not stop a new start."""
        with open(self.pidfile, "w") as f:
            f.write("%d\n" % dead_pid())
        self.start_daemon(["-D", "-c", self.ini])
        self.check_daemon()
        self.stop_and_check()

    def stop_and_check(self):
        pid = self.daemon_pid
        procs = session_pids(pid)
        os.kill(pid, signal.SIGTERM)
        gone = wait_for(lambda: not any(pid_alive(p) for p in procs), 5)
        self.assertTrue(gone, "left 5 s after TERM: %s" %
                        [p for p in procs if pid_alive(p)])
        self.assertFalse(os.path.exists(self.pidfile),
                         "TERM did not remove the pidfile")
        self.assertEqual(os.listdir(os.path.dirname(self.pidfile)), [])
        self.assertIn("forkd[%d] notice: stopped" % pid,
                      read_text(self.error_log))


def pipe_holders(fd):
    """The pids (other than ours) holding the pipe of fd open."""
    target = os.readlink("/proc/self/fd/%d" % fd)
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            for f in os.listdir("/proc/%s/fd" % d):
                if os.readlink("/proc/%s/fd/%s" % (d, f)) == target:
                    out.append(int(d))
                    break
        except OSError:
            continue
    return out


def s_line(path, regex):
    r = re.compile(regex)
    return any(r.search(line) for line in read_text(path).splitlines())


def dead_pid():
    """A pid that no process has now."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


if __name__ == "__main__":
    unittest.main()
