"""What a user copies from the documentation works (issue 15 item 5).

- The README's handler example, mine.c, is compiled with the README's own
  command line (`cc -shared -fPIC -Iapp -o build/app/mine.so mine.c`, in
  a directory that has the tree's app/ and a build/ of its own), started
  with the README's command without an ini (its port changed) and asked
  with curl: it greets as the README says.
- The shipped configuration files pass `forkd --check` as they are:
  conf/forkd.ini (what `make run` serves) and conf/wsgi.ini.
- Every man page is clean under `mandoc -Tlint` (scripts/deps.sh installs
  mandoc).
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from forkdtest import (FORKD_APPS, FORKD_BIN, REPO, free_port, read_text,
                       run_forkd, stop_pid, wait_for)

README = os.path.join(REPO, "README.md")


class ReadmeHandlerTest(unittest.TestCase):
    def test_mine_c_as_printed(self):
        readme = read_text(README)
        src = re.search(r"```c\n(/\* mine\.c:.*?)```", readme, re.S).group(1)
        build = re.search(r"(?m)^cc -shared -fPIC -Iapp -o (build/app/mine\.so)"
                          r" mine\.c$", readme)
        self.assertIsNotNone(build, "the README's build line changed")
        run = re.search(r"(?m)^build/forkd -b 127\.0\.0\.1:8080 -w 4 "
                        r"build/app/mine\.so", readme)
        self.assertIsNotNone(run, "the README's run line changed")
        tmp = tempfile.mkdtemp(prefix="forkd-readme-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        os.symlink(os.path.join(REPO, "app"), os.path.join(tmp, "app"))
        os.makedirs(os.path.join(tmp, "build", "app"))
        os.symlink(FORKD_BIN, os.path.join(tmp, "build", "forkd"))
        with open(os.path.join(tmp, "mine.c"), "w") as f:
            f.write(src)
        cc = subprocess.run(build.group(0), shell=True, cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=60)
        self.assertEqual(cc.returncode, 0, cc.stdout.decode())
        port = free_port()
        cmd = run.group(0).replace("8080", str(port))
        p = subprocess.Popen(cmd, shell=True, cwd=tmp,
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
        self.addCleanup(lambda: (stop_pid(p.pid), p.communicate(timeout=10)))

        def curl(path):
            r = subprocess.run(["curl", "-fsS", "--max-time", "5",
                                "http://127.0.0.1:%d%s" % (port, path)],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=10)
            return r.stdout.decode(errors="replace") if r.returncode == 0 \
                else None
        self.assertTrue(wait_for(lambda: curl("/") is not None or
                                 p.poll() is not None, 15))
        self.assertEqual(curl("/"), "Hello, World!\n")
        self.assertEqual(curl("/forkd"), "Hello, forkd!\n")


class ShippedIniTest(unittest.TestCase):
    def check(self, name):
        rc, out, err = run_forkd(["--check", "-c", os.path.join(
            REPO, "conf", name)], timeout=60)
        self.assertEqual(rc, 0, err)
        self.assertIn("configuration OK", out)
        return out

    def test_forkd_ini(self):
        out = self.check("forkd.ini")
        self.assertIn("hello.so", out)

    def test_wsgi_ini(self):
        if not os.path.exists(os.path.join(FORKD_APPS, "wsgi.so")):
            self.fail("no wsgi.so in %s" % FORKD_APPS)
        self.check("wsgi.ini")


class ManPageTest(unittest.TestCase):
    def test_mandoc_lint(self):
        mandoc = shutil.which("mandoc")
        self.assertIsNotNone(mandoc, "mandoc is not installed: run "
                             "scripts/deps.sh")
        pages = sorted(os.listdir(os.path.join(REPO, "man")))
        self.assertGreaterEqual(len(pages), 4)
        for page in pages:
            r = subprocess.run([mandoc, "-Tlint", "-W", "style",
                                os.path.join(REPO, "man", page)],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            self.assertEqual((r.returncode, r.stdout.decode()), (0, ""),
                             page)


if __name__ == "__main__":
    unittest.main()
