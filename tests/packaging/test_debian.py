"""The Debian package (issue 14 item 4).

The working tree's files (git ls-files --cached --others
--exclude-standard, so new files not yet committed count; build/ left out)
are copied into a temporary forkd-VERSION directory, where
`dpkg-buildpackage -us -uc -b` must build forkd and forkd-dev, with the
unit tests in dh_auto_test.  lintian must report no error on the .changes
(its warnings are counted and printed).  The two .debs must hold exactly
the files each should: the server, every example handler and wsgi.so, the
systemd units where bookworm's debhelper wants them, the tmpfiles.d and
logrotate files, /etc/forkd/forkd.ini as a conffile, /var/log/forkd
(its logs removed on purge) and the man pages in forkd; forkd.h, forkd.pc
and forkd.h(3) in forkd-dev.  Both are of debian/changelog's version,
which the packaged forkd prints with -v, and its maintainer.  forkd-dev's
forkd.pc, read from the extracted package, builds a handler that the
packaged forkd accepts (--check).  Nothing is skipped: without
dpkg-buildpackage or lintian the test fails and says to run
scripts/deps.sh.

Standard library only; run with /usr/bin/python3, from scripts/test.sh:
  python3 -m unittest discover -s tests/packaging -t tests/packaging
FORKD_TEST_KEEP=1 keeps the temporary directory for inspection.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
KEEP = os.environ.get("FORKD_TEST_KEEP") == "1"

# About 30 s here (2 cores): the build with the unit tests, then lintian.
BUILD_TIMEOUT = 600
LINTIAN_TIMEOUT = 300
TOOLS = ["git", "dpkg-buildpackage", "dpkg-deb", "dh", "lintian", "cc",
         "pkg-config"]

# Variables a developer's shell or `make test` may hold that would change
# what debian/rules builds (SAN=1 would even make it an ASan build): the
# package is built as a buildd builds it.
SCRUB_ENV = ["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "SAN",
             "BUILD", "DEVELOPER", "CC", "CFLAGS", "CPPFLAGS", "LDFLAGS",
             "LDLIBS", "PREFIX", "DESTDIR", "SBINDIR", "LIBDIR", "UNITDIR"]

# A handler built against the packaged header only (<forkd.h>, found
# through forkd.pc).
MINE_C = r"""#include <forkd.h>

static int
mine_handle(struct forkd_req *req, void *state)
{
    (void)state;
    if (forkd_start_response(req, "200 OK", NULL, 0) == -1)
        return -1;
    return forkd_write(req, "mine\n", 5);
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .handle = mine_handle,
};
"""


def changelog_head():
    """(version, maintainer) of debian/changelog's first entry."""
    with open(os.path.join(REPO, "debian", "changelog")) as f:
        text = f.read()
    version = re.match(r"forkd \(([^)]+)\)", text)
    maint = re.search(r"^ -- (.+?>)  ", text, re.M)
    if not version or not maint:
        raise AssertionError("debian/changelog: no version or no trailer")
    return version.group(1), maint.group(1)


def tree_files():
    """The working tree's files as git sees them, build/ left out."""
    r = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached",
                        "--others", "--exclude-standard"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if r.returncode != 0:
        raise AssertionError("git ls-files failed: " + r.stderr.decode())
    names = [n for n in r.stdout.decode().split("\0") if n]
    # A file deleted but not yet `git rm`ed is still in the index.
    return sorted(n for n in names if not n.startswith("build/")
                  and os.path.lexists(os.path.join(REPO, n)))


def copy_tree(dest):
    """Copies tree_files() into dest, keeping modes and symlinks."""
    for name in tree_files():
        src = os.path.join(REPO, name)
        dst = os.path.join(dest, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def run(cmd, timeout, **kw):
    """cmd's CompletedProcess, stdout and stderr together, as text."""
    return subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout,
                          universal_newlines=True, **kw)


def deb_contents(deb):
    """path -> mode string ('-rw-r--r--', 'drwxr-x---') of every entry of
    deb, paths without the leading './' (directories end with '/')."""
    r = run(["dpkg-deb", "-c", deb], 60)
    if r.returncode != 0:
        raise AssertionError("dpkg-deb -c %s: %s" % (deb, r.stdout))
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split(None, 5)
        path = parts[5].split(" -> ")[0]
        if path.startswith("./"):
            path = path[2:]
        if path:
            out[path] = (parts[0], parts[1])
    return out


def deb_field(deb, field):
    r = run(["dpkg-deb", "-f", deb, field], 60)
    if r.returncode != 0:
        raise AssertionError("dpkg-deb -f %s %s: %s" % (deb, field, r.stdout))
    return r.stdout.strip()


class DebianPackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise AssertionError(
                "%s not found: run scripts/deps.sh (it installs dpkg-dev, "
                "debhelper and lintian)" % ", ".join(missing))
        cls.version, cls.maintainer = changelog_head()
        r = run(["dpkg", "--print-architecture"], 60)
        cls.arch = r.stdout.strip()

        cls.tmp = tempfile.mkdtemp(prefix="forkd-debian-")
        if KEEP:
            print("\nFORKD_TEST_KEEP: %s" % cls.tmp, file=sys.stderr)
        else:
            cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.src = os.path.join(cls.tmp, "forkd-" + cls.version)
        copy_tree(cls.src)

        env = {k: v for k, v in os.environ.items() if k not in SCRUB_ENV}
        env["LC_ALL"] = "C.UTF-8"
        try:
            r = run(["dpkg-buildpackage", "-us", "-uc", "-b"], BUILD_TIMEOUT,
                    cwd=cls.src, env=env)
        except subprocess.TimeoutExpired:
            raise AssertionError("dpkg-buildpackage: still running after "
                                 "%d s" % BUILD_TIMEOUT)
        if r.returncode != 0:
            tail = "\n".join(r.stdout.splitlines()[-60:])
            hint = ""
            if "Unmet build dependencies" in r.stdout:
                hint = "\n(run scripts/deps.sh)"
            raise AssertionError("dpkg-buildpackage -us -uc -b failed "
                                 "(exit %d):\n%s%s" % (r.returncode, tail,
                                                       hint))
        cls.build_log = r.stdout

        v = cls.version
        cls.changes = os.path.join(cls.tmp, "forkd_%s_%s.changes"
                                   % (v, cls.arch))
        cls.deb = os.path.join(cls.tmp, "forkd_%s_%s.deb" % (v, cls.arch))
        cls.dev = os.path.join(cls.tmp, "forkd-dev_%s_all.deb" % v)
        for f in (cls.changes, cls.deb, cls.dev):
            if not os.path.isfile(f):
                raise AssertionError("dpkg-buildpackage made no %s; the "
                                     "parent directory holds: %s"
                                     % (os.path.basename(f),
                                        sorted(os.listdir(cls.tmp))))
        # Both packages unpacked into one tree, as on a machine that has
        # both installed.
        cls.root = os.path.join(cls.tmp, "root")
        for deb in (cls.deb, cls.dev):
            r = run(["dpkg-deb", "-x", deb, cls.root], 60)
            if r.returncode != 0:
                raise AssertionError("dpkg-deb -x %s: %s" % (deb, r.stdout))

    def test_build_ran_unit_tests(self):
        # dh_auto_test ran `make unit`: check's summary line per suite.
        self.assertRegex(self.build_log, r"100%: Checks: \d+, Failures: 0")

    def test_lintian_reports_no_error(self):
        try:
            r = run(["lintian", "--fail-on", "error", self.changes],
                    LINTIAN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail("lintian: still running after %d s" % LINTIAN_TIMEOUT)
        errors = [ln for ln in r.stdout.splitlines() if ln.startswith("E: ")]
        warnings = [ln for ln in r.stdout.splitlines()
                    if ln.startswith("W: ")]
        print("\nlintian: %d errors, %d warnings" % (len(errors),
                                                     len(warnings)),
              file=sys.stderr)
        for line in errors + warnings:
            print("  " + line, file=sys.stderr)
        self.assertEqual(errors, [])
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_forkd_files(self):
        handlers = sorted(n[:-2] + ".so" for n in
                          os.listdir(os.path.join(REPO, "app"))
                          if n.endswith(".c")) + ["wsgi.so"]
        want = ["etc/forkd/forkd.ini", "etc/logrotate.d/forkd",
                "lib/systemd/system/forkd.service",
                "lib/systemd/system/forkd.socket",
                "usr/lib/tmpfiles.d/forkd.conf", "usr/sbin/forkd",
                "usr/share/doc/forkd/changelog.gz",
                "usr/share/doc/forkd/copyright",
                "usr/share/lintian/overrides/forkd",
                "usr/share/man/man5/forkd.ini.5.gz",
                "usr/share/man/man8/forkd-wsgi.8.gz",
                "usr/share/man/man8/forkd.8.gz"]
        want += ["usr/lib/forkd/" + h for h in handlers]
        got = deb_contents(self.deb)
        files = sorted(p for p in got if not p.endswith("/"))
        self.assertEqual(files, sorted(want))
        for p, (mode, owner) in got.items():
            self.assertEqual(owner, "root/root", p)
        self.assertEqual(got["usr/sbin/forkd"][0], "-rwxr-xr-x")
        for h in handlers:
            self.assertEqual(got["usr/lib/forkd/" + h][0], "-rw-r--r--", h)
        # The Makefile's 0750, kept from dh_fixperms (debian/rules).
        self.assertEqual(got.get("var/log/forkd/", ("absent",))[0],
                         "drwxr-x---")

    def test_forkd_dev_files(self):
        got = deb_contents(self.dev)
        files = sorted(p for p in got if not p.endswith("/"))
        self.assertEqual(files, sorted([
            "usr/include/forkd.h", "usr/share/doc/forkd-dev/changelog.gz",
            "usr/share/doc/forkd-dev/copyright",
            "usr/share/man/man3/forkd.h.3.gz",
            "usr/share/pkgconfig/forkd.pc"]))
        with open(os.path.join(REPO, "app", "forkd.h"), "rb") as f:
            header = f.read()
        with open(os.path.join(self.root, "usr/include/forkd.h"), "rb") as f:
            self.assertEqual(f.read(), header)

    def test_control_fields(self):
        for deb, pkg, arch in ((self.deb, "forkd", self.arch),
                               (self.dev, "forkd-dev", "all")):
            self.assertEqual(deb_field(deb, "Package"), pkg)
            self.assertEqual(deb_field(deb, "Version"), self.version)
            self.assertEqual(deb_field(deb, "Architecture"), arch)
            self.assertEqual(deb_field(deb, "Maintainer"), self.maintainer)
            self.assertNotEqual(deb_field(deb, "Description"), "")
        # ${shlibs:Depends} was filled in from the libraries forkd and
        # wsgi.so link.
        depends = deb_field(self.deb, "Depends")
        for lib in ("libc6", "libhttp-parser", "libinih", "libpython3"):
            self.assertIn(lib, depends)

    def test_packaged_forkd_prints_the_version(self):
        r = run([os.path.join(self.root, "usr/sbin/forkd"), "-v"], 30)
        self.assertEqual(r.returncode, 0, r.stdout)
        m = re.match(r"forkd (\S+)", r.stdout)
        self.assertTrue(m, r.stdout)
        self.assertEqual(m.group(1), self.version)

    def test_ini_is_a_conffile(self):
        r = run(["dpkg-deb", "-I", self.deb, "conffiles"], 60)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("/etc/forkd/forkd.ini", r.stdout.split())
        # The Makefile's forkd.ini.default is not shipped (dpkg keeps the
        # packaged copy), and the ini names the packaged handler.
        with open(os.path.join(self.root, "etc/forkd/forkd.ini")) as f:
            ini = f.read()
        self.assertRegex(ini, r"(?m)^path = /usr/lib/forkd/hello\.so$")

    def test_units_name_the_packaged_server(self):
        with open(os.path.join(self.root,
                               "lib/systemd/system/forkd.service")) as f:
            unit = f.read()
        self.assertRegex(unit, r"(?m)^ExecStart=/usr/sbin/forkd "
                               r"-c /etc/forkd/forkd.ini$")
        r = run(["dpkg-deb", "-I", self.deb, "postinst"], 60)
        self.assertEqual(r.returncode, 0, r.stdout)
        for unit in ("forkd.socket", "forkd.service"):
            self.assertIn("deb-systemd-helper enable '%s'" % unit, r.stdout)

    def test_purge_removes_the_logs(self):
        # Read, not run: its debhelper part would purge the host's systemd
        # state of the units.
        r = run(["dpkg-deb", "-I", self.deb, "postrm"], 60)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn('if [ "$1" = purge ]; then\n'
                      '    logs="${DPKG_ROOT:-}/var/log/forkd"\n'
                      '    rm -f "$logs"/*.log "$logs"/*.log.*\n', r.stdout)
        self.assertIn("deb-systemd-helper purge 'forkd.service'", r.stdout)

    def test_pkgconfig_builds_a_handler(self):
        env = dict(os.environ,
                   PKG_CONFIG_LIBDIR=os.path.join(self.root,
                                                  "usr/share/pkgconfig"),
                   PKG_CONFIG_SYSROOT_DIR=self.root)
        r = run(["pkg-config", "--modversion", "forkd"], 30, env=env)
        self.assertEqual(r.stdout.strip(), self.version, r.stdout)
        r = run(["pkg-config", "--cflags", "forkd"], 30, env=env)
        self.assertEqual(r.returncode, 0, r.stdout)
        cflags = r.stdout.split()
        self.assertEqual(cflags, ["-I" + self.root + "/usr/include"])

        # Run as root, --check loads the handler as the workers' user
        # (nobody), which must reach it through mkdtemp's 0700.
        work = os.path.join(self.tmp, "mine")
        os.mkdir(work)
        os.chmod(self.tmp, 0o755)
        with open(os.path.join(work, "mine.c"), "w") as f:
            f.write(MINE_C)
        so = os.path.join(work, "mine.so")
        r = run(["cc", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"]
                + cflags + ["-o", so, os.path.join(work, "mine.c")], 60)
        self.assertEqual(r.returncode, 0, r.stdout)
        # The packaged server takes it: same handler API as the header.
        r = run([os.path.join(self.root, "usr/sbin/forkd"), "--check",
                 "-b", "127.0.0.1:0", so], 30)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("configuration OK", r.stdout)


if __name__ == "__main__":
    unittest.main()
