"""The sync baseline experiment, quick form: `scripts/experiment --quick`
against FORKD_BIN / FORKD_APPS.  Three requests at once to /resource/1..3
(1 s each) at 1 x 1, 3 x 1 and 1 x 3, and one /resources at 1 x 1: every
row within 5 % of its prediction, a timeline picture drawn, and README.md
left alone (only a complete run writes its figures)."""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

import forkdtest

SCRIPT = os.path.join(forkdtest.REPO, "scripts", "experiment")
README = os.path.join(forkdtest.REPO, "README.md")
PYTHON = "/usr/bin/python3"


def readme_digest():
    with open(README, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def has_matplotlib():
    r = subprocess.run([PYTHON, "-c", "import matplotlib"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def png_problem(path):
    """None if path is a well-formed PNG (signature, IHDR first, IEND last,
    every chunk's CRC right), else what is wrong."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return "no PNG signature"
    pos, names = 8, []
    while pos < len(data):
        if pos + 12 > len(data):
            return "truncated chunk at %d" % pos
        length, name = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc, = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if len(body) != length or zlib.crc32(name + body) != crc:
            return "bad chunk %r at %d" % (name, pos)
        names.append(name)
        pos += 12 + length
    if not names or names[0] != b"IHDR" or names[-1] != b"IEND":
        return "chunks %r" % names[:3]
    width, height = struct.unpack(">II", data[16:24])
    if not (100 <= width <= 4000 and 50 <= height <= 4000):
        return "odd size %dx%d" % (width, height)
    return None


class TestExperimentQuick(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        forkdtest.require_binary()
        cls.out = tempfile.mkdtemp(prefix="forkd-experiment-")
        cls.readme = readme_digest()
        env = dict(os.environ, FORKD_BIN=forkdtest.FORKD_BIN,
                   FORKD_APPS=forkdtest.FORKD_APPS)
        try:
            cls.proc = subprocess.run(
                [PYTHON, SCRIPT, "--quick", "--out", cls.out], env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=120)
        except subprocess.TimeoutExpired as e:
            shutil.rmtree(cls.out, ignore_errors=True)
            raise AssertionError("scripts/experiment --quick still running "
                                 "after 120 s:\n%s" % (e.output or b"")
                                 .decode(errors="replace"))
        cls.output = cls.proc.stdout.decode("utf-8", "replace")
        try:
            with open(os.path.join(cls.out, "results.json")) as f:
                cls.results = json.load(f)
        except (OSError, ValueError):
            cls.results = None

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("FORKD_TEST_KEEP") != "1":
            shutil.rmtree(cls.out, ignore_errors=True)

    def test_exit_status(self):
        self.assertEqual(self.proc.returncode, 0, self.output)

    def test_every_row_within_5_percent(self):
        self.assertIsNotNone(self.results, "no results.json:\n" + self.output)
        rows = {r["name"]: r for r in self.results["wall"]}
        self.assertEqual(sorted(rows), ["1x1", "1x3", "3x1", "resources"],
                         self.output)
        expect = {"1x1": 3.0, "3x1": 1.0, "1x3": 1.0, "resources": 1.0}
        for name, predicted in expect.items():
            r = rows[name]
            self.assertAlmostEqual(r["predicted_s"], predicted, msg=name)
            self.assertIsNotNone(r["measured_s"], "%s: %s\n%s" % (
                name, r.get("failure"), self.output))
            off = abs(r["measured_s"] - predicted) / predicted
            self.assertLessEqual(off, 0.05, "%s: %.3f s for %.1f s\n%s" % (
                name, r["measured_s"], predicted, self.output))
            self.assertTrue(r["ok"], name)
        self.assertTrue(self.results["ok"])

    def test_readme_untouched(self):
        self.assertEqual(readme_digest(), self.readme,
                         "a --quick run must not rewrite README.md")
        self.assertIn("experiment: README.md left alone: a --quick run",
                      self.output)

    def test_results_md(self):
        with open(os.path.join(self.out, "results.md")) as f:
            md = f.read()
        self.assertIn("| 1 × 1 | 3 × `/resource/N` | 3 s |", md)
        self.assertIn("| 1 × 3 | 3 × `/resource/N` | 1 s |", md)

    def test_timeline_png(self):
        if not has_matplotlib():
            self.skipTest("python3-matplotlib is not installed "
                          "(scripts/deps.sh bench)")
        for name in ("1x1", "3x1", "1x3", "resources"):
            png = os.path.join(self.out, "row-%s.png" % name)
            self.assertTrue(os.path.exists(png), "%s missing\n%s" % (
                png, self.output))
            self.assertIsNone(png_problem(png), png)
        # The 1 x 1 row's access log: one lane, never two at once.
        rows = {r["name"]: r for r in self.results["wall"]}
        self.assertEqual(rows["1x1"]["max_at_once"], 1)
        self.assertEqual(rows["3x1"]["max_at_once"], 3)


if __name__ == "__main__":
    unittest.main()
