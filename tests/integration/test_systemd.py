"""systemd's protocols without systemd (issue 5).

Notify: the test binds an AF_UNIX datagram socket of its own (with
SO_PASSCRED, so that each message comes with its sender's pid, as systemd
sees it), starts forkd with NOTIFY_SOCKET pointing at it and checks
READY=1 + MAINPID after start, RELOADING=1 then READY=1 around a HUP,
STOPPING=1 at TERM, and what an upgrade (USR2, then QUIT to the old
master) tells systemd.

Socket activation: the test creates the listening socket, starts forkd
with it as fd 3 and LISTEN_FDS=1, LISTEN_PID=<forkd's pid> (a small exec
wrapper sets them) and an ini whose bind is another port: the passed
socket is served, the ini's port is not bound.

Also: conf/forkd.service and conf/forkd.socket pass systemd-analyze verify
(when it is installed).
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import forkdtest
from forkdtest import (REPO, children_of, free_port, get, pid_alive, read_text,
                       Server, stop_pid, wait_for)

HELLO = b"Hello, World!\n"


class Notify:
    """A NOTIFY_SOCKET of the test's own.  path: a file path, or None for
    an abstract name ("@...")."""

    def __init__(self, directory, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            name = "forkd-test-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = os.path.join(directory, "notify.sock")
            self.sock.bind(self.address)
        self.messages = []  # (sender pid, text)

    def receive(self, timeout):
        """The next message (pid, text), or None after timeout seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(
                4096, socket.CMSG_SPACE(struct.calcsize("iII")))
        except socket.timeout:
            return None
        pid = None
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", value[:12])[0]
        msg = (pid, data.decode("utf-8", "replace"))
        self.messages.append(msg)
        return msg

    def wait(self, pred, timeout=10.0):
        """Read messages until one satisfies pred(pid, text); return it,
        or None after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            m = self.receive(left)
            if m is not None and pred(*m):
                return m

    def drain(self, secs=0.2):
        out = []
        deadline = time.monotonic() + secs
        while True:
            m = self.receive(deadline - time.monotonic())
            if m is None:
                return out
            out.append(m)

    def close(self):
        self.sock.close()


def with_env(start, **env):
    """Call start() with extra environment variables (inherited by the
    forkd it starts), then restore the environment."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def started(s, **env):
    """Start Server s with extra environment variables, as `with s:`."""
    with_env(s.start, **env)
    try:
        yield s
    except BaseException:
        if not s.__exit__(*sys.exc_info()):
            raise
    else:
        s.__exit__(None, None, None)


class NotifyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="forkd-notify-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, notify, **kw):
        return started(Server("hello", workers=2, **kw),
                       NOTIFY_SOCKET=notify.address)

    def test_ready_reload_stopping(self):
        n = Notify(self.tmp)
        try:
            with self.start(n) as s:
                m = n.wait(lambda pid, t: True, 5)
                self.assertIsNotNone(m, "no message after start")
                self.assertEqual(m, (s.pid, "READY=1\nMAINPID=%d" % s.pid))
                self.assertEqual(get(s.port).body, HELLO)
                for i in range(2):
                    s.signal(signal.SIGHUP)
                    m = n.wait(lambda pid, t: True, 5)
                    self.assertEqual(m, (s.pid, "RELOADING=1"))
                    m = n.wait(lambda pid, t: True, 5)
                    self.assertEqual(m, (s.pid, "READY=1"))
                    self.assertIsNotNone(s.wait_log(r"reload done", 2))
                # A HUP whose reload fails still ends the reload.
                good = read_text(s.ini)
                with open(s.ini, "w") as f:
                    f.write(good + "not an ini line\n")
                s.allow.append(re.compile(r"error: reload failed"))
                s.signal(signal.SIGHUP)
                self.assertEqual(n.wait(lambda pid, t: True, 5),
                                 (s.pid, "RELOADING=1"))
                self.assertEqual(n.wait(lambda pid, t: True, 5),
                                 (s.pid, "READY=1"))
                with open(s.ini, "w") as f:
                    f.write(good)
                s.signal(signal.SIGTERM)
                m = n.wait(lambda pid, t: True, 5)
                self.assertEqual(m, (s.pid, "STOPPING=1"))
                self.assertEqual(s.proc.wait(5), 0)
                self.assertEqual(n.drain(), [], "more messages after stop")
        finally:
            n.close()

    def test_abstract_notify_socket(self):
        n = Notify(self.tmp, abstract=True)
        try:
            with self.start(n) as s:
                self.assertEqual(n.wait(lambda pid, t: True, 5),
                                 (s.pid, "READY=1\nMAINPID=%d" % s.pid))
        finally:
            n.close()

    def test_upgrade_tells_mainpid_and_never_stopping(self):
        """USR2 then QUIT to the old master: the new master says READY=1
        with its MAINPID, and the old one must not say STOPPING=1 - with
        NotifyAccess=all systemd would take it as the whole service
        stopping and kill the new master too."""
        n = Notify(self.tmp)
        try:
            with self.start(n, server={"pidfile": "{dir}/forkd.pid"}) as s:
                new = []
                try:
                    self.upgrade(n, s, new)
                finally:
                    # Not Server's: by pid, before Server checks the
                    # session (the new master is in the old one's).
                    stop_pid(new[0] if new else None)
        finally:
            n.close()

    def upgrade(self, n, s, new):
        self.assertEqual(n.wait(lambda pid, t: True, 5),
                         (s.pid, "READY=1\nMAINPID=%d" % s.pid))
        s.signal(signal.SIGUSR2)
        m = n.wait(lambda pid, t: "MAINPID=" in t, 10)
        self.assertIsNotNone(m, "no MAINPID from a new master\n" +
                             s.describe())
        new.append(m[0])
        self.assertNotEqual(m[0], s.pid)
        self.assertEqual(m[1], "READY=1\nMAINPID=%d" % m[0])
        self.assertIn(m[0], children_of(s.pid))
        s.signal(signal.SIGQUIT)
        self.assertEqual(s.proc.wait(10), 0)
        after = n.drain(0.5)
        self.assertEqual(get(s.port).body, HELLO)
        self.assertNotIn((s.pid, "STOPPING=1"), after,
                         "the old master told systemd STOPPING=1 after "
                         "handing over to pid %d: systemd would stop the "
                         "service" % m[0])
        self.assertEqual(after, [])
        self.assertEqual(read_text(s.path("forkd.pid")).strip(), str(m[0]))
        os.kill(m[0], signal.SIGTERM)
        self.assertEqual(n.wait(lambda pid, t: True, 5),
                         (m[0], "STOPPING=1"))
        self.assertTrue(wait_for(lambda: not pid_alive(m[0]), 5))


class Activated(Server):
    """A forkd started with a listening socket of the test's own as fd 3,
    LISTEN_FDS=1 and LISTEN_PID set (to its own pid, or to listen_pid)."""

    WRAPPER = (
        "import os, sys\n"
        "fd = int(sys.argv[1])\n"
        "if fd != 3:\n"
        "    os.dup2(fd, 3)\n"
        "    os.close(fd)\n"
        "os.set_inheritable(3, True)\n"
        "os.environ['LISTEN_FDS'] = '1'\n"
        "os.environ['LISTEN_PID'] = sys.argv[2] or str(os.getpid())\n"
        "os.execv(sys.argv[3], sys.argv[3:])\n")

    def __init__(self, listener, listen_pid="", **kw):
        super().__init__(**kw)
        self.listener = listener
        self.listen_pid = listen_pid

    def start(self):
        self.port = free_port()  # the ini's bind: not to be used
        with open(self.ini, "w") as f:
            f.write(self._ini_text())
        fd = self.listener.fileno()
        with open(self.stdout_path, "wb") as out, \
                open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", self.WRAPPER, str(fd),
                 self.listen_pid, forkdtest.FORKD_BIN, "-c", self.ini],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                pass_fds=[fd], cwd=self.cwd, start_new_session=True)
        self.pid = self.proc.pid  # exec keeps it
        self.stopped = False
        why = self._wait_ready()
        if why is not None:
            self._kill_all()
            raise AssertionError("forkd did not become ready: %s\n%s" % (
                why, self.describe()))
        return self


def listening_socket():
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    return ls


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return False
    except ConnectionRefusedError:
        return True


class ActivationTest(unittest.TestCase):
    def test_listen_fds_replace_binds(self):
        ls = listening_socket()
        port = ls.getsockname()[1]
        try:
            with Activated(ls, app="hello", workers=2) as s:
                for i in range(10):
                    r = get(port, "/x%d" % i)
                    self.assertEqual((r.status, r.body), (200, HELLO))
                self.assertTrue(refused(s.port), "the ini's bind %d is "
                                "listening too" % s.port)
                self.assertIn("listening on", s.log_text())
                self.assertNotIn(":%d" % s.port, s.log_text())
        finally:
            ls.close()

    def test_listen_pid_of_another_process_is_ignored(self):
        """LISTEN_FDS meant for another process (LISTEN_PID not ours):
        forkd binds its ini's address and leaves fd 3 alone."""
        ls = listening_socket()
        try:
            with Activated(ls, listen_pid="1", app="hello", workers=1) as s:
                self.assertEqual(get(s.port).body, HELLO)
        finally:
            ls.close()

    def test_upgrade_keeps_the_passed_socket(self):
        """USR2 with socket activation: the new master must serve the
        socket systemd passed (it holds it open across restarts), not
        fall back to the ini's bind."""
        ls = listening_socket()
        port = ls.getsockname()[1]
        try:
            with Activated(ls, app="hello", workers=2,
                           server={"pidfile": "{dir}/forkd.pid"}) as s:
                new = []
                try:
                    self.upgrade(s, port, new)
                finally:
                    stop_pid(new[0] if new else None)
        finally:
            ls.close()

    def upgrade(self, s, port, new):
        self.assertEqual(get(port).body, HELLO)
        s.signal(signal.SIGUSR2)
        found = wait_for(lambda: [p for p in children_of(s.pid) if
                                  read_text(s.path("forkd.pid")).strip() ==
                                  str(p)], 10)
        self.assertTrue(found, "no new master\n" + s.describe())
        new.append(found[0])
        self.assertTrue(s.wait_log(r"forkd\[%d\] notice: ready:" %
                                   found[0], 10), s.describe())
        s.signal(signal.SIGQUIT)
        self.assertEqual(s.proc.wait(10), 0)
        try:
            r = get(port, "/after-upgrade", timeout=3)
        except OSError as e:
            r = e
        self.assertFalse(isinstance(r, Exception),
                         "the passed socket is not served after the "
                         "upgrade (%r)\n%s" % (r, s.describe()))
        self.assertEqual(r.body, HELLO)
        self.assertTrue(refused(s.port), "the new master bound the ini's "
                        "address %d" % s.port)


class UnitFilesTest(unittest.TestCase):
    def test_units_verify(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze is not installed")
        d = tempfile.mkdtemp(prefix="forkd-units-")
        try:
            svc = read_text(os.path.join(REPO, "conf", "forkd.service"))
            self.assertIn("ExecStart=/usr/local/sbin/forkd ", svc)
            # verify checks that the command exists.
            svc = svc.replace("/usr/local/sbin/forkd", forkdtest.FORKD_BIN)
            with open(os.path.join(d, "forkd.service"), "w") as f:
                f.write(svc)
            shutil.copy(os.path.join(REPO, "conf", "forkd.socket"), d)
            r = subprocess.run(
                [tool, "verify", "--man=no", os.path.join(d, "forkd.socket"),
                 os.path.join(d, "forkd.service")],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=30)
            out = r.stdout.decode(errors="replace")
            self.assertEqual((r.returncode, out), (0, ""))
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_service_keys(self):
        svc = read_text(os.path.join(REPO, "conf", "forkd.service"))
        keys = {}
        for line in svc.splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                keys.setdefault(k.strip(), v.strip())
        self.assertEqual(keys["Type"], "notify")
        self.assertEqual(keys["NotifyAccess"], "all")
        self.assertEqual(keys["ExecReload"], "/bin/kill -HUP $MAINPID")
        self.assertEqual(keys["KillSignal"], "SIGQUIT")
        sock = read_text(os.path.join(REPO, "conf", "forkd.socket"))
        self.assertIn("ListenStream=/run/forkd/forkd.sock", sock)
        rot = read_text(os.path.join(REPO, "conf", "forkd.logrotate"))
        self.assertIn("kill -USR1", rot)


if __name__ == "__main__":
    unittest.main()
