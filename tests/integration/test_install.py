"""`make install` and `make uninstall` (issue 14 item 3).

The build under test (FORKD_BIN's directory) is installed into a
temporary DESTDIR with the default PREFIX=/usr/local.  The tree must hold
exactly the server, the header, forkd.pc, every example handler under
LIBDIR/forkd, the man pages, the production forkd.ini, the systemd units,
the logrotate and tmpfiles.d files; every path these name must be the
installed one.  The installed forkd then runs with the installed ini,
whose absolute paths are changed only by prefixing DESTDIR (the tmpfiles.d
line made /run/forkd, as at boot): --check passes, it serves on its unix
socket, `forkd status` reads its stats socket, QUIT through its pidfile
stops it.  The README's mine.c is built out of the tree with
`pkg-config --cflags forkd` and served by the installed forkd.  Uninstall
leaves no file behind, keeps an ini the operator changed, and another
PREFIX rewrites every path.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from forkdtest import (FORKD_APPS, FORKD_BIN, REPO, SANITIZER_RE,
                       parse_one, raw, read_text, stop_pid, wait_for)

BUILD = os.path.relpath(os.path.dirname(FORKD_BIN), REPO)
HANDLERS = sorted(n for n in os.listdir(FORKD_APPS) if n.endswith(".so"))
MAN = sorted(n for n in os.listdir(os.path.join(REPO, "man")))


def make(*args, check=True):
    """make in the source tree for the build under test."""
    cmd = ["make", "-s", "--no-print-directory", "-C", REPO,
           "BUILD=" + BUILD] + (["SAN=1"] if BUILD.endswith("asan") else []) \
        + list(args)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    if check and r.returncode != 0:
        raise AssertionError("%s failed:\n%s" % (" ".join(cmd),
                                                 r.stdout.decode()))
    return r.stdout.decode()


def files_under(root):
    """Every non-directory under root, relative, sorted."""
    out = []
    for d, dirs, files in os.walk(root):
        for n in files + [x for x in dirs
                          if os.path.islink(os.path.join(d, x))]:
            out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(out)


def ini_values(text):
    """key -> value of an ini text (the last one of a key; comments off)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in ";#[" or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out[k.strip()] = v.split(" ;")[0].strip()
    return out


def expected_files(prefix="usr/local", etc="etc", units=None):
    units = units or prefix + "/lib/systemd/system"
    files = [prefix + "/sbin/forkd", prefix + "/include/forkd.h",
             prefix + "/share/pkgconfig/forkd.pc",
             etc + "/forkd/forkd.ini", etc + "/forkd/forkd.ini.default",
             etc + "/logrotate.d/forkd", units + "/forkd.service",
             units + "/forkd.socket", prefix + "/lib/tmpfiles.d/forkd.conf"]
    files += [prefix + "/lib/forkd/" + h for h in HANDLERS]
    files += ["%s/share/man/man%s/%s" % (prefix, m.rsplit(".", 1)[1], m)
              for m in MAN]
    return sorted(files)


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="forkd-install-")
        # The workers (nobody) load handlers from inside it.
        os.chmod(cls.tmp, 0o755)
        cls.dest = os.path.join(cls.tmp, "dest")
        make("install", "DESTDIR=" + cls.dest)
        cls.ini_path = os.path.join(cls.dest, "etc/forkd/forkd.ini")
        cls.ini = ini_values(read_text(cls.ini_path))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def d(self, path):
        """An installed absolute path, inside DESTDIR."""
        return self.dest + path

    def test_tree_is_exactly_what_install_promises(self):
        # Less what the servers of the other tests wrote.
        self.assertEqual([f for f in files_under(self.dest)
                          if not f.startswith(("var/log/forkd/", "run/"))],
                         expected_files())
        self.assertTrue(os.access(self.d("/usr/local/sbin/forkd"), os.X_OK))
        self.assertTrue(os.path.isdir(self.d("/var/log/forkd")))
        for h in HANDLERS:
            with open(self.d("/usr/local/lib/forkd/" + h), "rb") as f:
                self.assertEqual(f.read(4), b"\x7fELF", h)

    def test_installed_files_name_installed_paths(self):
        for rel in files_under(self.dest):
            if rel.endswith(".so") or rel.endswith("sbin/forkd"):
                continue
            text = read_text(os.path.join(self.dest, rel))
            self.assertNotIn(REPO, text, rel)
            self.assertNotIn("../build", text, rel)
            self.assertNotRegex(text, r"@[A-Z]+@", rel)
        ini = self.ini
        self.assertEqual(ini["path"], "/usr/local/lib/forkd/hello.so")
        self.assertTrue(os.path.exists(self.d(ini["path"])))
        for key in ("error_log", "access_log"):
            self.assertTrue(os.path.isdir(self.d(os.path.dirname(ini[key]))),
                            key)
        # /run/forkd (socket, stats, pidfile) is tmpfiles.d's to make.
        tmpfiles = read_text(self.d("/usr/local/lib/tmpfiles.d/forkd.conf"))
        self.assertRegex(tmpfiles, r"(?m)^d /run/forkd 0755 root root")
        for key in ("bind", "stats", "pidfile"):
            self.assertTrue(ini[key].replace("unix:", "").startswith(
                "/run/forkd/"), key)
        unit = read_text(self.d("/usr/local/lib/systemd/system/"
                                "forkd.service"))
        start = re.search(r"(?m)^ExecStart=(\S+) -c (\S+)$", unit)
        self.assertEqual(start.groups(), ("/usr/local/sbin/forkd",
                                          "/etc/forkd/forkd.ini"))
        sock = read_text(self.d("/usr/local/lib/systemd/system/"
                                "forkd.socket"))
        self.assertIn("ListenStream=%s\n" % ini["bind"][5:], sock)
        rotate = read_text(self.d("/etc/logrotate.d/forkd"))
        self.assertIn(ini["pidfile"], rotate)
        glob = re.search(r"(?m)^(/\S+)\*\.log \{", rotate).group(1)
        for key in ("error_log", "access_log"):
            self.assertTrue(ini[key].startswith(glob) and
                            ini[key].endswith(".log"), key)

    def installed_ini(self, directory):
        """The installed ini with DESTDIR before each absolute path, and
        /run/forkd made as its tmpfiles.d line says."""
        for line in read_text(self.d("/usr/local/lib/tmpfiles.d/"
                                     "forkd.conf")).splitlines():
            if line.startswith("d "):
                _, path, mode = line.split()[:3]
                os.makedirs(self.d(path), mode=int(mode, 8), exist_ok=True)
        text = re.sub(r"(?m)^(\w+ = (unix:)?)(/)", r"\1" + self.dest + "/",
                      read_text(self.ini_path))
        path = os.path.join(directory, "forkd.ini")
        with open(path, "w") as f:
            f.write(text)
        return path, ini_values(text)

    def start(self, ini, *args):
        p = subprocess.Popen([self.d("/usr/local/sbin/forkd"), "-c", ini] +
                             list(args), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        self.addCleanup(self.stop, p)
        return p

    def stop(self, p):
        stop_pid(p.pid)
        out, err = p.communicate(timeout=10)
        self.assertNotRegex(err.decode(errors="replace"), SANITIZER_RE)

    def serve_and_check(self, ini_file, values, path, want, *args):
        rc = subprocess.run([self.d("/usr/local/sbin/forkd"), "--check",
                             "-c", ini_file] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=30)
        self.assertEqual(rc.returncode, 0, rc.stdout.decode())
        p = self.start(ini_file, *args)
        sock = values["bind"][5:]
        self.assertTrue(wait_for(lambda: os.path.exists(sock) or
                                 p.poll() is not None, 20), sock)
        self.assertIsNone(p.poll(), read_text(values["error_log"]))
        self.assertTrue(wait_for(lambda: "ready:" in
                                 read_text(values["error_log"]), 20),
                        read_text(values["error_log"]))
        r, _ = parse_one(raw(sock, b"GET %s HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n" % path.encode()))
        self.assertEqual((r.status, r.body), (200, want))
        pid = int(read_text(values["pidfile"]))
        self.assertEqual(pid, p.pid)
        return p

    def test_installed_forkd_serves_with_installed_ini(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        ini_file, values = self.installed_ini(d)
        p = self.serve_and_check(ini_file, values, "/",
                                 b"Hello, World!\n")
        st = subprocess.run([self.d("/usr/local/sbin/forkd"), "status",
                             "-c", ini_file], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=20)
        self.assertEqual(st.returncode, 0, st.stdout.decode())
        self.assertIn(b"workers", st.stdout.lower())
        self.assertTrue(wait_for(lambda: "GET / " in
                                 read_text(values["access_log"]), 5))
        os.kill(p.pid, signal.SIGQUIT)
        p.wait(30)
        self.assertEqual(p.returncode, 0, read_text(values["error_log"]))
        self.assertFalse(os.path.exists(values["pidfile"]))

    def test_readme_handler_built_with_pkg_config(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        os.chmod(d, 0o755)
        readme = read_text(os.path.join(REPO, "README.md"))
        src = re.search(r"```c\n(/\* mine\.c:.*?)```", readme, re.S).group(1)
        with open(os.path.join(d, "mine.c"), "w") as f:
            f.write(src)
        env = dict(os.environ, PKG_CONFIG_PATH="",
                   PKG_CONFIG_LIBDIR=self.d("/usr/local/share/pkgconfig"),
                   PKG_CONFIG_SYSROOT_DIR=self.dest)
        cflags = subprocess.run(["pkg-config", "--cflags", "forkd"], env=env,
                                stdout=subprocess.PIPE, check=True,
                                timeout=20).stdout.decode().split()
        self.assertEqual(cflags, ["-I" + self.d("/usr/local/include")])
        version = subprocess.run(["pkg-config", "--modversion", "forkd"],
                                 env=env, stdout=subprocess.PIPE, check=True,
                                 timeout=20).stdout.decode().strip()
        v = subprocess.run([self.d("/usr/local/sbin/forkd"), "-v"],
                           stdout=subprocess.PIPE, timeout=20).stdout.decode()
        self.assertTrue(v.startswith("forkd %s " % version), v)
        # As the README says, with pkg-config instead of -Iapp, in a
        # directory that is not the source tree.
        cc = subprocess.run(
            "cc -shared -fPIC $(pkg-config --cflags forkd) -o mine.so mine.c",
            shell=True, cwd=d, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(cc.returncode, 0, cc.stdout.decode())
        ini_file, values = self.installed_ini(d)
        self.serve_and_check(ini_file, values, "/forkd", b"Hello, forkd!\n",
                             os.path.join(d, "mine.so"))


class UninstallTest(unittest.TestCase):
    def setUp(self):
        self.dest = tempfile.mkdtemp(prefix="forkd-uninstall-")
        self.addCleanup(shutil.rmtree, self.dest, True)

    def test_uninstall_leaves_no_file(self):
        make("install", "DESTDIR=" + self.dest)
        self.assertEqual(files_under(self.dest), expected_files())
        make("uninstall", "DESTDIR=" + self.dest)
        self.assertEqual(files_under(self.dest), [])
        for gone in ("usr/local/lib/forkd", "etc/forkd", "var/log/forkd"):
            self.assertFalse(os.path.exists(os.path.join(self.dest, gone)),
                             gone)

    def test_changed_ini_is_kept_and_never_overwritten(self):
        make("install", "DESTDIR=" + self.dest)
        ini = os.path.join(self.dest, "etc/forkd/forkd.ini")
        with open(ini, "a") as f:
            f.write("greeting = Hi\n")
        make("install", "DESTDIR=" + self.dest)
        self.assertTrue(read_text(ini).endswith("greeting = Hi\n"))
        out = make("uninstall", "DESTDIR=" + self.dest)
        self.assertIn("forkd.ini was changed: kept", out)
        self.assertEqual(files_under(self.dest), ["etc/forkd/forkd.ini"])

    def test_other_prefix_rewrites_every_path(self):
        make("install", "DESTDIR=" + self.dest, "PREFIX=/opt/fk",
             "SYSCONFDIR=/opt/fk/etc", "UNITDIR=/opt/fk/units")
        self.assertEqual(files_under(self.dest), expected_files(
            "opt/fk", "opt/fk/etc", "opt/fk/units"))
        ini = ini_values(read_text(os.path.join(
            self.dest, "opt/fk/etc/forkd/forkd.ini")))
        self.assertEqual(ini["path"], "/opt/fk/lib/forkd/hello.so")
        unit = read_text(os.path.join(self.dest, "opt/fk/units/"
                                      "forkd.service"))
        self.assertIn("ExecStart=/opt/fk/sbin/forkd -c "
                      "/opt/fk/etc/forkd/forkd.ini\n", unit)
        self.assertNotIn("/usr/local", unit)
        pc = read_text(os.path.join(self.dest,
                                    "opt/fk/share/pkgconfig/forkd.pc"))
        self.assertIn("includedir=/opt/fk/include\n", pc)
        self.assertIn("handlerdir=/opt/fk/lib/forkd\n", pc)
        make("uninstall", "DESTDIR=" + self.dest, "PREFIX=/opt/fk",
             "SYSCONFDIR=/opt/fk/etc", "UNITDIR=/opt/fk/units")
        self.assertEqual(files_under(self.dest), [])


if __name__ == "__main__":
    unittest.main()
