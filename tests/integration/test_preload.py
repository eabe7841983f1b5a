"""The template process of handler API 2's preload hook (issue 12, item 6),
through tests/handlers/preload.c, which logs every hook it runs as
"HOOK PID EUID PPID":

- preload runs once, in a process that is neither the master nor root,
  and every worker is forked from it (init gets what preload left) and is
  the master's own child;
- a worker that dies is forked again from the same template (no second
  preload); a template that dies is started again;
- HUP starts a new template that loads the handler file as it is now;
- preload = no starts the workers as before; preload failing stops the
  start (and --check) with one line;
- a template that lies about its workers' pids makes the master kill
  nothing and stop that template;
- a version-1 handler (no preload field) still loads.
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from forkdtest import (children_of, compile_so, get, pid_alive, proc_stat,
                       read_text, run_forkd, Server, stop_pid, wait_for)
from loadclient import Load

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "handlers", "preload.c")
TMP = None


def setUpModule():
    global TMP
    TMP = tempfile.mkdtemp(prefix="forkd-preload-")
    os.chmod(TMP, 0o755)


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def build(directory, name="preload"):
    with open(SOURCE) as f:
        return compile_so(directory, name, f.read())


def hooks(path):
    """[(hook, pid, euid, ppid)] from the handler's log."""
    out = []
    for line in read_text(path).splitlines():
        parts = line.split()
        if len(parts) == 4:
            out.append((parts[0], int(parts[1]), int(parts[2]),
                        int(parts[3])))
    return out


def answer(port):
    """{"tag":..., "preload": pid, "worker": pid} of one request."""
    r = get(port, "/")
    assert r.status == 200, r
    return dict(kv.split("=") for kv in r.body.decode().split())


def ppid(pid):
    return proc_stat(pid)[1]


def workers_of(s):
    """The master's children that are workers (the scoreboard-free way:
    their pids as the responses and the log name them)."""
    return sorted(int(p) for p in re.findall(
        r"worker \d+ started \(pid (\d+)\)", s.log_text())
        if pid_alive(int(p)))


class PreloadTest(unittest.TestCase):
    def server(self, mode="yes", workers=2, allow=(), **kw):
        s = Server(None, workers=workers, allow=list(allow), server={
            "log_level": "info"}, **kw)
        so = build(s.dir)
        log = s.path("hooks.log")
        with open(log, "w"):
            pass
        os.chmod(log, 0o666)
        s.app = so
        s.options.update({"preload": mode, "log": log, "tag": "v1"})
        return s, so, log

    def test_workers_forked_from_one_template(self):
        s, so, log = self.server()
        with s:
            seen = {answer(s.port)["worker"] for _ in range(20)}
            a = answer(s.port)
            h = hooks(log)
            pre = [x for x in h if x[0] == "preload"]
            self.assertEqual(len(pre), 1, h)
            tpid = pre[0][1]
            self.assertEqual(int(a["preload"]), tpid)
            self.assertNotEqual(tpid, s.pid)
            self.assertEqual(pre[0][3], s.pid, "the template's parent")
            if os.geteuid() == 0:
                nobody = pwd.getpwnam("nobody").pw_uid
                self.assertEqual({x[2] for x in h}, {nobody},
                                 "every hook ran as the workers' user")
            inits = [x for x in h if x[0] == "init-preloaded"]
            self.assertEqual(len(inits), 2, h)
            self.assertEqual(len([x for x in h if x[0] == "prepare"]), 2)
            self.assertEqual(len([x for x in h if x[0] == "parent"]), 2)
            for _, pid, _, _ in inits:
                self.assertEqual(ppid(pid), s.pid,
                                 "a worker is the master's child")
                self.assertTrue(pid_alive(pid))
            self.assertLessEqual({int(p) for p in seen},
                                 {x[1] for x in inits})
            self.assertTrue(s.wait_log(r"info: template \(pid %d\): .* "
                                       r"preloaded" % tpid))
            self.assertEqual(read_text("/proc/%d/cmdline" % tpid).rstrip(
                "\0"), "forkd: template (gen 1)")

    def test_dead_worker_forked_again_without_preload(self):
        s, so, log = self.server(allow=[r"warn: worker \d+ \(pid \d+\) "
                                        r"killed by signal 9"])
        with s:
            first = answer(s.port)
            victim = int(first["worker"])
            os.kill(victim, signal.SIGKILL)
            self.assertTrue(wait_for(lambda: len(
                [x for x in hooks(log) if x[0] == "init-preloaded"]) == 3, 5),
                read_text(log))
            for _ in range(10):
                a = answer(s.port)
                self.assertEqual(a["preload"], first["preload"])
                self.assertNotEqual(int(a["worker"]), victim)
            self.assertEqual(len([x for x in hooks(log)
                                  if x[0] == "preload"]), 1)
            new = [x for x in hooks(log) if x[0] == "init-preloaded"][-1]
            self.assertEqual(ppid(new[1]), s.pid)

    def test_dead_template_started_again(self):
        s, so, log = self.server(allow=[
            r"warn: template \(pid \d+\) killed by signal 9",
            r"warn: worker \d+ \(pid \d+\) killed by signal 9"])
        with s:
            first = answer(s.port)
            os.kill(int(first["preload"]), signal.SIGKILL)
            self.assertTrue(s.wait_log(r"notice: a new template starts when "
                                       r"a worker is next needed", 5))
            # Serving goes on without it; the next worker needs a new one.
            self.assertEqual(answer(s.port)["preload"], first["preload"])
            os.kill(int(first["worker"]), signal.SIGKILL)
            self.assertTrue(wait_for(lambda: len(
                [x for x in hooks(log) if x[0] == "preload"]) == 2, 5),
                read_text(log) + s.describe())
            new_tpl = [x for x in hooks(log) if x[0] == "preload"][1][1]
            # The new template forked the new worker, which serves.
            self.assertTrue(wait_for(lambda: [
                x for x in hooks(log) if x[0] == "init-preloaded" and
                x[1] not in (int(first["worker"]),)][-1:] and any(
                    x[0] == "prepare" and x[1] == new_tpl
                    for x in hooks(log)), 5), read_text(log))
            worker = [x for x in hooks(log) if x[0] == "init-preloaded"][-1][1]
            self.assertTrue(pid_alive(worker))
            self.assertEqual(ppid(worker), s.pid)
            self.assertFalse(pid_alive(int(first["worker"])))

    def test_reaped_template_not_signalled(self):
        """DESIGN 8: once the master reaped a dead template, its pid may
        belong to anyone: the master sends it nothing."""
        strace = shutil.which("strace")
        self.assertIsNotNone(strace, "strace missing: scripts/deps.sh")
        s, so, log = self.server(allow=[
            r"warn: template \(pid \d+\) killed by signal 9"])
        with s:
            tpid = int(answer(s.port)["preload"])
            out = s.path("master.strace")
            p = subprocess.Popen([strace, "-e", "trace=kill", "-o", out,
                                  "-p", str(s.pid)],
                                 stderr=subprocess.DEVNULL)
            try:
                time.sleep(0.5)  # attached
                os.kill(tpid, signal.SIGKILL)
                self.assertTrue(s.wait_log(r"template \(pid %d\) killed by "
                                           r"signal 9" % tpid, 5))
                time.sleep(0.3)
            finally:
                p.send_signal(signal.SIGINT)
                p.wait(10)
            self.assertNotRegex(read_text(out), r"kill\(%d," % tpid)

    def test_hup_starts_new_template_with_new_file(self):
        s, so, log = self.server()
        with s:
            old = answer(s.port)
            tpid = int(old["preload"])
            # A new build moved over the same path, as a deploy does.
            newdir = tempfile.mkdtemp(dir=TMP)
            with open(SOURCE) as f:
                src = f.read().replace('"tag=%s ', '"tag=%s-new ')
            fresh = compile_so(newdir, "preload", src)
            os.rename(fresh, so)
            load = Load(s.port, keepalive=2, close=2, duration=30,
                        expect=lambda r: r.status == 200)
            load.start()
            try:
                self.assertTrue(load.wait_requests(50, 5), "no load")
                s.signal(signal.SIGHUP)
                self.assertTrue(s.wait_log(r"notice: reload done", 10),
                                s.describe())
                n = load.total()
                self.assertTrue(load.wait_requests(n + 100, 10))
            finally:
                load.stop()
            self.assertEqual(load.lost, [], load.lost_detail())
            # The old workers leave once the reload is done.
            self.assertTrue(wait_for(lambda: {answer(s.port)["tag"]
                                              for _ in range(5)} == {"v1-new"},
                                     10))
            a = answer(s.port)
            self.assertEqual(a["tag"], "v1-new")
            self.assertNotEqual(int(a["preload"]), tpid)
            self.assertTrue(wait_for(lambda: not pid_alive(tpid), 5),
                            "the old template is gone")
            self.assertEqual(len([x for x in hooks(log)
                                  if x[0] == "preload"]), 2)

    def test_usr2_then_quit_old_master(self):
        """An upgrade with a preloading handler: the new master starts its
        own template; QUIT to the old one stops the old template too; no
        request lost."""
        s, so, log = self.server()
        s.server_keys["pidfile"] = "{dir}/forkd.pid"
        new = None
        with s:
            pidfile = s.path("forkd.pid")
            old_tpl = int(answer(s.port)["preload"])
            load = Load(s.port, keepalive=2, close=2, duration=30,
                        expect=lambda r: r.status == 200)

            def new_master():
                kids = [p for p in children_of(s.pid)
                        if read_text(pidfile).strip() == str(p)]
                return kids[0] if kids else None
            load.start()
            try:
                self.assertTrue(load.wait_requests(100, 5), "no load")
                s.signal(signal.SIGUSR2)
                new = wait_for(new_master, 10)
                self.assertIsNotNone(new, s.describe())
                self.assertTrue(
                    s.wait_log(r"forkd\[%d\] notice: ready:" % new, 10),
                    s.describe())
                s.signal(signal.SIGQUIT)
                self.assertEqual(s.proc.wait(10), 0)
                n = load.total()
                self.assertTrue(load.wait_requests(n + 100, 5),
                                "no requests served after the old master")
            finally:
                load.stop()
                try:
                    self.assertEqual(load.lost, [], load.lost_detail())
                    self.assertFalse(pid_alive(old_tpl), "old template left")
                    pre = [x for x in hooks(log) if x[0] == "preload"]
                    self.assertEqual(len(pre), 2, pre)
                    self.assertEqual(pre[1][3], new, "the new template is the "
                                     "new master's child")
                    a = answer(s.port)
                    self.assertEqual(int(a["preload"]), pre[1][1])
                    self.assertEqual(ppid(int(a["worker"])), new)
                finally:
                    if new is None:
                        new = new_master()
                    if new is not None:
                        self.assertEqual(stop_pid(new), [])

    def test_preload_no_forks_workers_from_master(self):
        s, so, log = self.server(mode="no")
        with s:
            a = answer(s.port)
            self.assertEqual(a["preload"], "0")
            h = hooks(log)
            self.assertEqual(len([x for x in h if x[0] == "preload"]), 1)
            self.assertEqual(len([x for x in h if x[0] == "init"]), 2)
            self.assertEqual([x for x in h if x[0] in ("prepare", "child")],
                             [])
            self.assertEqual(ppid(int(a["worker"])), s.pid)
            tpid = [x for x in h if x[0] == "preload"][0][1]
            self.assertTrue(wait_for(lambda: not pid_alive(tpid), 5),
                            "the unused template exits")

    def test_preload_failure_stops_start_and_check(self):
        d = tempfile.mkdtemp(dir=TMP)
        so = build(d)
        ini = os.path.join(d, "forkd.ini")
        with open(ini, "w") as f:
            f.write("[server]\nbind = 127.0.0.1:1\n[app]\npath = %s\n"
                    "preload = fail\n" % so)
        rc, out, err = run_forkd(["--check", "-c", ini])
        self.assertEqual(rc, 1, err)
        self.assertIn("preload failed", err)
        s, so2, log = self.server(mode="fail", allow=[
            r"error: .*preload", r"error: the handler could not start",
            r"warn: template \(pid \d+\) exited with status 3"])
        with self.assertRaises(AssertionError) as cm:
            s.start()
        self.assertIn("exited with status 1", str(cm.exception))
        self.assertIn("preload: refusing as asked", str(cm.exception))

    def test_forged_pid_kills_nothing(self):
        victim = subprocess.Popen(["sleep", "60"])
        try:
            s, so, log = self.server(allow=[
                r"error: template \(pid \d+\) sent a message",
                r"warn: template \(pid \d+\) (killed by signal|exited)",
                r"warn: the template died at boot",
                r"error: worker \d+: the template could not fork",
                # It wrote to every socket it has, the workers' hand-off
                # queue too: they drop what is not a hand-off.
                r"warn: handoff: Protocol error"])
            s.options["forge"] = victim.pid
            s.ready = None  # ready may never come: the templates lie
            with s:
                self.assertTrue(s.wait_log(r"sent a message that is not an "
                                           r"answer", 10), s.describe())
                time.sleep(1)
                self.assertIsNone(victim.poll(), "the victim was killed")
                self.assertTrue(pid_alive(s.pid))
        finally:
            victim.kill()
            victim.wait()

    def test_version_1_handler_still_loads(self):
        d = tempfile.mkdtemp(dir=TMP)
        so = compile_so(d, "v1", r"""
/* Without forkd.h, whose descriptor is version 2's. */
#include <stddef.h>
#include <sys/types.h>
struct forkd_req;
struct forkd_header { const char *name, *value; };
int forkd_start_response(struct forkd_req *, const char *,
                         const struct forkd_header *, size_t);
ssize_t forkd_write(struct forkd_req *, const void *, size_t);
static int h(struct forkd_req *r, void *s)
{
    struct forkd_header hs[] = {{"Content-Length", "3"}};
    (void)s;
    forkd_start_response(r, "200 OK", hs, 1);
    return forkd_write(r, "v1\n", 3) == 3 ? 0 : -1;
}
/* A descriptor as handlers built against version 1 have it: it ends
 * after fini, with no preload or atfork. */
struct v1_app { unsigned api_version, flags; void *init;
                int (*handle)(struct forkd_req *, void *); void *fini; };
const struct v1_app forkd_app = { 1, 0, 0, h, 0 };
""")
        with Server(so) as s:
            r = get(s.port, "/")
            self.assertEqual((r.status, r.body), (200, b"v1\n"))
        self.assertNotIn("template", s.log_text())


if __name__ == "__main__":
    unittest.main()
