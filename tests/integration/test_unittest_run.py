"""scripts/unittest-run, the runner behind make test's python steps (issue
15 item 5): it names each skipped test with its reason, adds the number
skipped to $FORKD_SKIPS, and fails the run when a test was skipped for a
missing tool or package (what scripts/deps.sh installs), but not for a
skip by design.  Each case runs it on a directory of its own holding one
small test module.
"""

import os
import subprocess
import sys
import tempfile
import unittest

from forkdtest import REPO, read_text

RUNNER = os.path.join(REPO, "scripts", "unittest-run")

MODULE = """\
import unittest

class T(unittest.TestCase):
    def test_ok(self):
        self.assertTrue(True)

    def test_skipped(self):
        self.skipTest(%r)
"""


class UnittestRunTest(unittest.TestCase):
    def run_with_skip(self, reason):
        d = tempfile.mkdtemp(prefix="forkd-unittest-run-")
        self.addCleanup(__import__("shutil").rmtree, d, True)
        with open(os.path.join(d, "test_sample.py"), "w") as f:
            f.write(MODULE % reason)
        skips = os.path.join(d, "skips")
        r = subprocess.run([sys.executable, RUNNER, d],
                           env=dict(os.environ, FORKD_SKIPS=skips),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        return r.returncode, r.stdout.decode(), read_text(skips)

    def test_skip_by_design_passes_and_is_counted(self):
        rc, out, skips = self.run_with_skip("the ASan build is checked by "
                                            "LeakSanitizer")
        self.assertEqual(rc, 0, out)
        self.assertIn("skipped: test_sample.T.test_skipped: the ASan build",
                      out)
        self.assertEqual(skips, "1\n")

    def test_skip_for_a_missing_package_fails(self):
        rc, out, skips = self.run_with_skip("nginx is not installed "
                                            "(scripts/deps.sh)")
        self.assertEqual(rc, 1, out)
        self.assertIn("FAILED: test_sample.T.test_skipped was skipped for a "
                      "missing dependency", out)
        self.assertEqual(skips, "1\n")


if __name__ == "__main__":
    unittest.main()
