"""HUP loads new code (issue 14, item 1): a handler file replaced at the same
path (a new build moved over it, as a deploy does) is what the workers of
the next generation run; a file that became invalid leaves the running
workers serving, with one error line; no request is lost under load while
either happens.  (With a preloading handler: test_preload.py.)
"""

import os
import re
import shutil
import signal
import tempfile
import unittest

from forkdtest import compile_so, get, read_text, Server, wait_for
from loadclient import Load

VERSIONED_C = r"""
#include <forkd.h>
#include <string.h>

static int
h(struct forkd_req *req, void *state)
{
    static const char body[] = VERSION "\n";
    struct forkd_header hs[] = {{"Content-Type", "text/plain"}};

    (void)state;
    if (forkd_start_response(req, "200 OK", hs, 1) != 0)
        return -1;
    return forkd_write(req, body, strlen(body)) > 0 ? 0 : -1;
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .handle = h,
};
"""


def build(version):
    """A fresh build answering version, in a directory of its own."""
    d = tempfile.mkdtemp(prefix="forkd-reload-")
    return compile_so(d, "ver", VERSIONED_C,
                      extra=['-DVERSION="%s"' % version])


def count(s, regex):
    return len(re.findall(regex, s.log_text()))


class ReloadCodeTest(unittest.TestCase):
    def setUp(self):
        self.dirs = []

    def tearDown(self):
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)

    def deploy(self, version, path):
        """Build version and move it over path (rename: atomic)."""
        so = build(version)
        self.dirs.append(os.path.dirname(so))
        os.rename(so, path)

    def version(self, s):
        r = get(s.port, "/")
        self.assertEqual(r.status, 200, r)
        return r.body.decode().strip()

    def load(self, s):
        ok = lambda r: r.status == 200 and r.body in (  # noqa: E731
            b"v1\n", b"v2\n", b"v3\n")
        return Load(s.port, keepalive=3, close=3, duration=40, expect=ok)

    def test_replaced_file_under_load(self):
        s = Server(None, workers=2)
        so = s.path("ver.so")
        self.deploy("v1", so)
        s.app = so
        with s:
            self.assertEqual(self.version(s), "v1")
            load = self.load(s)
            load.start()
            try:
                self.assertTrue(load.wait_requests(100, 5), "no load")
                for n, v in enumerate(("v2", "v3"), 1):
                    self.deploy(v, so)
                    s.signal(signal.SIGHUP)
                    self.assertTrue(wait_for(lambda: count(
                        s, r"notice: reload done") == n, 10), s.describe())
                    self.assertTrue(wait_for(
                        lambda: self.version(s) == v, 5), v)
                    # Only the new build answers once the old workers,
                    # retired when the reload is done, have left.
                    self.assertTrue(wait_for(lambda: {
                        self.version(s) for _ in range(20)} == {v}, 10), v)
                    m = load.total()
                    self.assertTrue(load.wait_requests(m + 100, 5),
                                    "load stalled after HUP %d" % n)
            finally:
                load.stop()
            line = load.report("HUP with a replaced .so, twice", "")
            self.assertEqual(load.lost, [], line + "\n" + load.lost_detail())
            self.assertGreater(load.ok, 200, line)

    def test_invalid_file_keeps_old_workers(self):
        s = Server(None, workers=2, allow=[r"error: reload failed: "])
        so = s.path("ver.so")
        self.deploy("v1", so)
        s.app = so
        with s:
            workers = sorted(s.worker_pids())
            load = self.load(s)
            load.start()
            try:
                self.assertTrue(load.wait_requests(100, 5), "no load")
                # A broken deploy: not a shared object at all.
                broken = s.path("broken.tmp")
                with open(broken, "w") as f:
                    f.write("this is not an ELF file\n")
                os.chmod(broken, 0o755)
                os.rename(broken, so)
                s.signal(signal.SIGHUP)
                self.assertTrue(wait_for(lambda: count(
                    s, r"error: reload failed") == 1, 10), s.describe())
                m = load.total()
                self.assertTrue(load.wait_requests(m + 100, 5),
                                "load stalled after the failed reload")
            finally:
                load.stop()
            line = load.report("HUP with an invalid .so", "")
            self.assertEqual(load.lost, [], line + "\n" + load.lost_detail())
            errors = [x for x in s.log_lines() if " error: " in x]
            self.assertEqual(len(errors), 1, errors)
            self.assertIn(so, errors[0])
            self.assertIn("the running handler stays", errors[0])
            self.assertEqual(self.version(s), "v1")
            self.assertEqual(sorted(s.worker_pids()), workers,
                             "the old workers keep serving")
            # And a good build after it loads.
            self.deploy("v2", so)
            s.signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: self.version(s) == "v2", 10),
                            s.describe())


if __name__ == "__main__":
    unittest.main()
