"""A worker's whole life under valgrind: start, serve every kind of request
the examples know (keep-alive, pipelined, chunked upload, refused), stop
gracefully with QUIT, and leak nothing.  Runs against the plain build only:
the ASan build has LeakSanitizer instead, and valgrind cannot run it."""

import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from forkdtest import (FORKD_BIN, Conn, app_path, free_port, raw, wait_for,
                       read_text)

VALGRIND = shutil.which("valgrind")
IS_ASAN = "asan" in FORKD_BIN


@unittest.skipIf(IS_ASAN, "the ASan build is checked by LeakSanitizer")
class ValgrindTest(unittest.TestCase):
    def test_worker_life_cycle_leaks_nothing(self):
        self.assertIsNotNone(VALGRIND, "valgrind is installed by deps.sh")
        tmp = tempfile.mkdtemp(prefix="forkd-vg-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port = free_port()
        ini = os.path.join(tmp, "forkd.ini")
        err_log = os.path.join(tmp, "error.log")
        with open(ini, "w") as f:
            f.write("[server]\nbind = 127.0.0.1:%d\nworkers = 1\n"
                    "error_log = %s\naccess_log = %s\n[app]\npath = %s\n"
                    % (port, err_log, os.path.join(tmp, "access.log"),
                       app_path("echo")))
        cmd = [VALGRIND, "--trace-children=yes", "--leak-check=full",
               "--show-leak-kinds=definite,indirect,possible",
               "--errors-for-leak-kinds=definite,indirect,possible",
               "--error-exitcode=99", "--child-silent-after-fork=no",
               "--log-file=" + os.path.join(tmp, "vg.%p"),
               FORKD_BIN, "-c", ini]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            self.assertTrue(
                wait_for(lambda: "ready:" in read_text(err_log), 60),
                "not ready under valgrind:\n" + read_text(err_log))
            addr = ("127.0.0.1", port)
            c = Conn(addr)
            for i in range(3):
                c.send(b"GET /k%d?x=1 HTTP/1.1\r\nHost: a\r\n\r\n" % i)
                self.assertEqual(c.read_response(timeout=20).status, 200)
            c.send(b"POST /up HTTP/1.1\r\nHost: a\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n0\r\n\r\n"
                   b"GET /p HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-A: 2\r\n\r\n")
            self.assertEqual(c.read_response(timeout=20).status, 200)
            self.assertEqual(c.read_response(timeout=20).status, 200)
            c.close()
            out = raw(addr, b"GET / HTTP/1.1\r\n\r\n", timeout=20)
            self.assertTrue(out.startswith(b"HTTP/1.1 400"), out)
            idle = Conn(addr)  # parked when the worker stops
            idle.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            self.assertEqual(idle.read_response(timeout=20).status, 200)
            os.kill(proc.pid, signal.SIGQUIT)
            self.assertEqual(proc.wait(timeout=60), 0)
            idle.close()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        logs = glob.glob(os.path.join(tmp, "vg.*"))
        self.assertGreaterEqual(len(logs), 2, "master and worker logs")
        for path in logs:
            text = read_text(path)
            summary = re.search(r"ERROR SUMMARY: (\d+) errors", text)
            self.assertIsNotNone(summary, path + ":\n" + text[-2000:])
            self.assertEqual(summary.group(1), "0", path + ":\n" + text)
            for kind in ("definitely", "indirectly", "possibly"):
                m = re.search(kind + r" lost: ([\d,]+) bytes", text)
                if m:
                    self.assertEqual(m.group(1), "0", path + ":\n" + text)


if __name__ == "__main__":
    unittest.main()
