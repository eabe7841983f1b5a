"""Sync against async, quick form (issue 8): `scripts/compare --quick`
against FORKD_BIN / FORKD_APPS and one peer (uvicorn, or gunicorn when
uvicorn is missing).  Scenario 1: three requests at once to /resource/1..3,
1 s each, on forkd 1 x 1 (3 s), 3 x 1 and 1 x 3 (1 s), on the same shapes of
"forkd + Flask (wsgi)" (wsgi.so running scripts/compare-peers/flask_app.py,
issue 12) and on the peer (uvicorn: 1 s; gunicorn sync, 1 worker: 3 s);
scenario 2: one /resources (five waits inside) on forkd 1 x 1, forkd +
Flask 1 x 1 and the peer (1 s).  Every row within 10 % of the model, in
about 20 s; the report and the timelines written, and README.md left alone.

The peers are Debian packages (python3-uvicorn python3-starlette, or
gunicorn python3-flask; scripts/deps.sh installs them): without either the
test fails and says so.  The forkd + Flask rows are expected when
python3-flask is importable by /usr/bin/python3 (wsgi.so is built by make).
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import forkdtest
from test_experiment import has_matplotlib, png_problem

SCRIPT = os.path.join(forkdtest.REPO, "scripts", "compare")
README = os.path.join(forkdtest.REPO, "README.md")
PYTHON = "/usr/bin/python3"
TIMEOUT = 90
# Under ASan, the forkd + Flask workers end (QUIT: Py_FinalizeEx, then exit)
# with blocks that libpython3 (tests/wsgi/lsan.supp says why) and libcrypto
# allocated and nobody frees; the libcrypto ones come with Flask's imports
# (werkzeug or jinja2 alone leave them; `import hashlib` does not).  Leaks
# of forkd and of wsgi.so itself are still reported.
LSAN_SUPP = os.path.join(forkdtest.REPO, "tests", "wsgi", "lsan.supp")
LSAN_EXTRA = "leak:libcrypto.so\n"


def importable(*modules):
    code = "import " + ", ".join(modules)
    r = subprocess.run([PYTHON, "-c", code], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return r.returncode == 0


def digest(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


class TestCompareQuick(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        forkdtest.require_binary()
        if importable("uvicorn", "starlette"):
            cls.peer = "uvicorn-1"
        elif importable("gunicorn", "flask"):
            cls.peer = "gunicorn-sync-1"
        else:
            raise AssertionError(
                "test_compare needs a peer server importable by %s: "
                "python3-uvicorn and python3-starlette (or gunicorn and "
                "python3-flask). Install them with scripts/deps.sh bench, or "
                "apt-get install python3-uvicorn python3-starlette gunicorn "
                "python3-flask" % PYTHON)
        cls.wsgi = importable("flask")
        cls.out = tempfile.mkdtemp(prefix="forkd-compare-")
        cls.readme = digest(README)
        env = dict(os.environ, FORKD_BIN=forkdtest.FORKD_BIN,
                   FORKD_APPS=forkdtest.FORKD_APPS)
        supp = os.path.join(cls.out, "lsan.supp")
        with open(LSAN_SUPP) as f, open(supp, "w") as g:
            g.write(f.read() + LSAN_EXTRA)
        env["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % supp \
            + (":" + env["LSAN_OPTIONS"] if env.get("LSAN_OPTIONS") else "")
        try:
            cls.proc = subprocess.run(
                [PYTHON, SCRIPT, "--quick", "--out", cls.out], env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=TIMEOUT)
        except subprocess.TimeoutExpired as e:
            shutil.rmtree(cls.out, ignore_errors=True)
            raise AssertionError("scripts/compare --quick still running "
                                 "after %d s:\n%s" % (TIMEOUT, (
                                     e.output or b"").decode(
                                         errors="replace")))
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

    def rows(self):
        self.assertIsNotNone(self.results, "no results.json:\n" + self.output)
        return {(r["scenario"], r["server"]): r for r in self.results["wall"]}

    def test_exit_status(self):
        self.assertEqual(self.proc.returncode, 0, self.output)

    def test_rows_within_10_percent_of_the_model(self):
        rows = self.rows()
        peer_s1 = 3.0 if self.peer.startswith("gunicorn") else 1.0
        expect = {
            (1, "forkd-1x1"): 3.0, (1, "forkd-3x1"): 1.0,
            (1, "forkd-1x3"): 1.0, (1, self.peer): peer_s1,
            (2, "forkd-1x1"): 1.0, (2, self.peer): 1.0,
        }
        if self.wsgi:
            expect.update({
                (1, "forkd-wsgi-1x1"): 3.0, (1, "forkd-wsgi-3x1"): 1.0,
                (1, "forkd-wsgi-1x3"): 1.0, (2, "forkd-wsgi-1x1"): 1.0,
            })
        self.assertEqual(sorted(rows), sorted(expect), self.output)
        for key, predicted in expect.items():
            r = rows[key]
            self.assertAlmostEqual(r["predicted_s"], predicted, msg=key)
            self.assertIsNotNone(r["measured_s"], "%s: %s\n%s" % (
                key, r.get("failure"), self.output))
            off = abs(r["measured_s"] - predicted) / predicted
            self.assertLessEqual(off, 0.10, "%s: %.3f s for %.1f s\n%s" % (
                key, r["measured_s"], predicted, self.output))
            self.assertTrue(r["ok"], key)
        self.assertTrue(self.results["ok"])

    def test_each_request_ends_when_the_model_says(self):
        """1 x 1 (forkd's C handler or Flask on wsgi.so) serves the three
        one after the other (ends at 1, 2, 3 s); the peer and the other
        shapes end all three at about 1 s."""
        for key, r in self.rows().items():
            if key[0] != 1:
                continue
            self.assertEqual(len(r["transfers"]), 3, key)
            why = "%s: ends %s, model %s" % (key, r["measured_ends"],
                                              r["predicted_ends"])
            # Nothing ends before the model allows (each request sleeps
            # 1 s behind the ones it waits for); a loaded machine may only
            # add, so the upper bound is generous (a 1 x 1 row ending at
            # 2.28 s for 2 s was seen under load).
            for got, want in zip(r["measured_ends"], r["predicted_ends"]):
                self.assertGreater(got, want - 0.05, why)
                self.assertLess(got, want * 1.25 + 0.25, why)
            # Served one after the other exactly when the model says so.
            ends = sorted(r["measured_ends"])
            serial = sorted(r["predicted_ends"])[-1] > 2.5
            for a, b in zip(ends, ends[1:]):
                if serial:
                    self.assertGreater(b - a, 0.9, why)
                else:
                    self.assertLess(b - a, 0.5, why)

    def test_report(self):
        with open(os.path.join(self.out, "report.md")) as f:
            md = f.read()
        self.assertIn("| forkd | 1 × 1 | 3 × `/resource/N` | 3 s |", md)
        self.assertIn("| forkd | 1 × 3 | 3 × `/resource/N` | 1 s |", md)
        self.assertIn("1 × `/resources` (five waits inside)", md)
        if self.wsgi:
            self.assertIn("| forkd + Flask (wsgi) | 1 × 1 | 3 × "
                          "`/resource/N` | 3 s |", md)
            self.assertIn("| forkd + Flask (wsgi) | 3 × 1 | 3 × "
                          "`/resource/N` | 1 s |", md)
            self.assertIn("module = scripts/compare-peers/flask_app.py:app",
                          md)
        self.assertIn("uvicorn" if self.peer.startswith("uvicorn")
                      else "gunicorn sync", md)
        self.assertIn("curl -sS --no-progress-meter --parallel", md)
        self.assertIn("%d cores" % self.results["cores"], md)

    def test_timelines(self):
        if not has_matplotlib():
            self.skipTest("python3-matplotlib is not installed "
                          "(scripts/deps.sh test)")
        keys = ["forkd-1x1", "forkd-3x1", "forkd-1x3", self.peer]
        if self.wsgi:
            keys += ["forkd-wsgi-1x1", "forkd-wsgi-3x1", "forkd-wsgi-1x3"]
        names = ["scenario1.png"] + ["scenario1-%s.png" % k for k in keys]
        for name in names:
            png = os.path.join(self.out, name)
            self.assertTrue(os.path.exists(png), "%s missing\n%s" % (
                png, self.output))
            self.assertIsNone(png_problem(png), png)

    def test_every_server_stopped(self):
        """No process of the run is left: every master and worker it
        started (forkd's, forkd + Flask's and the peer's) is gone."""
        pids = self.results["pids"]
        self.assertGreaterEqual(len(pids), 4 + 4 + (6 if self.wsgi else 0),
                                pids)
        left = []
        for pid in pids:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(
                        errors="replace")
            except OSError:
                continue
            if any(w in cmd for w in ("forkd", "uvicorn", "gunicorn",
                                      "multiprocessing")):
                left.append("%d %s" % (pid, cmd))
        self.assertEqual(left, [], "processes of the run still alive")

    def test_no_sanitizer_report(self):
        """Under ASan (make test's second round) no server of the run
        reported a leak or a memory error."""
        self.assertIsNotNone(self.results, "no results.json:\n" + self.output)
        san = {k: [p for p in probs if "sanitizer" in p]
               for k, probs in self.results["problems"].items()}
        self.assertEqual({k: v for k, v in san.items() if v}, {},
                         "the runs' stderr files are kept with "
                         "FORKD_TEST_KEEP=1")

    def test_readme_untouched(self):
        self.assertEqual(digest(README), self.readme,
                         "a --quick run must not rewrite README.md")
        self.assertIn("compare: README.md left alone: a --quick run",
                      self.output)


if __name__ == "__main__":
    unittest.main()
