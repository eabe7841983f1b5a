"""The README's "Deploy" section, run command by command (issue 14 item 7).

Every line of the section's sh blocks is run, in order, as the README
prints it, on a tree that stands for the machine it names ("# on ADDR",
else the one host, 10.0.0.10, that also runs nginx): each absolute path
the section names (/etc/forkd, /etc/nginx, /etc/systemd, /usr/local,
/run/forkd, /var/log/forkd) is moved into that machine's temporary root,
`make install` gets that root as DESTDIR, port 80 of 127.0.0.1 becomes a
free port, /etc/nginx starts as a copy of Debian's stock one
(test_nginx.StockNginx), and the hosts 10.0.0.10-14 become 127.0.0.1-5
(port 8000: a free port of each).  A block "on A, B and C" runs on each,
with A's address changed to each one's.

There is no systemd here (it is not PID 1), so `systemctl` is played by
the test from the installed unit files, as systemd would read them:
forkd.socket's ListenStream becomes a socket passed as fd 3 with
LISTEN_FDS/LISTEN_PID; forkd.service's ExecStart runs with NOTIFY_SOCKET
set to a socket of the test's, and MAINPID follows what forkd tells it;
`reload` runs ExecReload and waits for READY=1 after RELOADING=1 (Type=
notify); `kill -s SIG --kill-whom=main` signals MAINPID; `reload nginx`
starts (then HUPs) the nginx of the stock copy.  Each command must exit
0; the curls must show the hello handler, then mine.c after the roll-out
and after the binary upgrade, with the old master gone.
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from forkdtest import (REPO, SANITIZER_RE, free_port, get, pid_alive,
                       read_text, stop_pid, wait_for)
from test_install import make
from test_nginx import NGINX, REQUIRE, StockNginx
from test_systemd import Activated, Notify

MOVED = ("/etc/forkd", "/etc/nginx", "/etc/systemd", "/usr/local",
         "/run/forkd", "/var/log/forkd")
NGINX_HOST = "10.0.0.10"


def deploy_blocks():
    """The sh blocks of the README's Deploy section (up to the next ##)."""
    readme = read_text(os.path.join(REPO, "README.md"))
    m = re.search(r"(?ms)^## Deploy\n(.*?)^## ", readme)
    if m is None:
        raise AssertionError("README.md has no Deploy section")
    return re.findall(r"```sh\n(.*?)```", m.group(1), re.S)


def segments(blocks):
    """[(addresses, lines)]: the commands, and the hosts they run on."""
    out = []
    for b in blocks:
        hosts, lines = [NGINX_HOST], []
        for x in b.splitlines():
            x = x.strip()
            if x.startswith("# on "):
                if lines:
                    out.append((hosts, lines))
                hosts, lines = re.findall(r"10\.0\.0\.\d+", x), []
            elif x and not x.startswith("#"):
                lines.append(x)
        if lines:
            out.append((hosts, lines))
    return out


class Addresses:
    """The hosts of the README on 127.0.0.0/8, each with a free port
    standing for its port 8000."""

    def __init__(self):
        self.ports = {}

    def local(self, addr):
        return "127.0.0.%d" % (int(addr.rsplit(".", 1)[1]) - 9)

    def map(self, text):
        def port(m):
            host = self.local(m.group(1))
            if host not in self.ports:
                self.ports[host] = free_port(host)
            return "%s:%d" % (host, self.ports[host])
        text = re.sub(r"\b(10\.0\.0\.\d+):8000\b", port, text)
        return re.sub(r"\b10\.0\.0\.(\d+)\b",
                      lambda m: self.local(m.group(0)), text)


def unit_values(text):
    """key -> [values] of a systemd unit file."""
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


class Machine:
    """The temporary root, and systemd and nginx as the test plays them."""

    def __init__(self, tmp, addresses, nginx):
        os.makedirs(tmp)
        self.addresses = addresses
        self.root = os.path.join(tmp, "root")
        os.makedirs(self.root)
        self.work = os.path.join(tmp, "work")
        os.makedirs(self.work)
        os.symlink(os.path.join(REPO, "conf"), os.path.join(self.work,
                                                            "conf"))
        self.env = dict(os.environ, PKG_CONFIG_PATH="",
                        PKG_CONFIG_LIBDIR=self.root +
                        "/usr/local/share/pkgconfig",
                        PKG_CONFIG_SYSROOT_DIR=self.root,
                        PATH=self.root + "/usr/local/sbin:" +
                        os.environ.get("PATH", "/usr/bin:/bin"))
        # Debian's /etc/nginx, as the nginx package left it.
        self.nginx = StockNginx(self.root, self.root +
                                "/run/forkd/forkd.sock") if nginx else None
        self.notify = Notify(tmp)
        self.listener = None
        self.mainpid = None
        self.masters = set()
        self.procs = []
        self.stopped = False
        self.journal = os.path.join(tmp, "journal")
        self.outputs = []

    def moved(self, text):
        """text with the machine's paths moved into the root."""
        pat = r"(?<![\w.-])(%s)(?=[/\s|)'\"]|$)" % "|".join(
            re.escape(p) for p in MOVED)
        text = self.addresses.map(re.sub(pat, lambda m: self.root +
                                         m.group(1), text))
        if self.nginx is None:
            return text
        return text.replace("http://127.0.0.1/", "http://127.0.0.1:%d/"
                            % self.nginx.port)

    def run(self, line):
        if line == "make install":
            make("install", "DESTDIR=" + self.root)
            self.after_install()
        elif line.startswith("systemctl "):
            self.systemctl(shlex.split(line)[1:])
        elif line == "nginx -t && systemctl reload nginx":
            self.nginx_reload()
        else:
            self.shell(line)

    def shell(self, line):
        r = subprocess.run(self.moved(line), shell=True, cwd=self.work,
                           env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout.decode(errors="replace")
        self.outputs.append((line, out))
        if r.returncode != 0:
            raise AssertionError("%s: exit %d\n%s" % (line, r.returncode,
                                                       out))
        if line.startswith("cp conf/nginx"):
            path = self.moved(line.split()[-1])
            self.nginx.localize(path)
            text = self.addresses.map(read_text(path))
            with open(path, "w") as f:
                f.write(text)

    def after_install(self):
        """What boot does for the installed files: tmpfiles.d's
        directories; and the ini's own paths moved into the root."""
        conf = self.root + "/usr/local/lib/tmpfiles.d/forkd.conf"
        for line in read_text(conf).splitlines():
            if line.startswith("d "):
                os.makedirs(self.moved(line.split()[1]), exist_ok=True)
        ini = self.root + "/etc/forkd/forkd.ini"
        text = read_text(ini)
        if self.root not in text:
            with open(ini, "w") as f:
                f.write(re.sub(r"(?m)^(\w+ = (unix:)?)(/)",
                               r"\1" + self.root + "/", text))

    def unit(self, name):
        return unit_values(read_text(self.root + "/usr/local/lib/systemd/"
                                     "system/" + name))

    def systemctl(self, args):
        if args == ["daemon-reload"]:
            for name in ("forkd.socket", "forkd.service"):
                self.unit(name)
        elif args[:2] == ["enable", "--now"]:
            for name in args[2:]:
                getattr(self, "start_" + name.split(".")[1])(name)
        elif args == ["reload", "forkd"]:
            self.reload_forkd()
        elif args[:2] == ["kill", "-s"] and args[3:] == [
                "--kill-whom=main", "forkd"]:
            os.kill(self.mainpid, getattr(signal, "SIG" + args[2]))
            if args[2] == "USR2":
                m = self.notify.wait(lambda pid, text: "READY=1" in text and
                                     pid != self.mainpid, 20)
                assert m is not None, "no READY=1 from a new master"
                self.follow_mainpid()
        else:
            raise AssertionError("systemctl %s: not played by this test"
                                 % " ".join(args))

    def listen_streams(self, u, name):
        """ListenStream after the drop-ins of /etc/systemd/system/NAME.d
        (an empty value resets the list, as in systemd)."""
        streams = list(u.get("ListenStream", []))
        d = self.root + "/etc/systemd/system/%s.d" % name
        for conf in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            for v in unit_values(read_text(os.path.join(d, conf))).get(
                    "ListenStream", []):
                streams = streams + [v] if v else []
        assert len(streams) == 1, streams
        return self.moved(streams[0])

    def start_socket(self, name):
        u = self.unit(name)
        where = self.listen_streams(u, name)
        if where.startswith("/"):
            os.makedirs(os.path.dirname(where), exist_ok=True)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if os.path.exists(where):
                os.unlink(where)
            s.bind(where)
            shutil.chown(where, u["SocketUser"][0], u["SocketGroup"][0])
            os.chmod(where, int(u["SocketMode"][0], 8))
        else:
            host, port = where.rsplit(":", 1)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, int(port)))
        s.listen(int(u["Backlog"][0]))
        self.listener = s

    def start_service(self, name):
        u = self.unit(name)
        argv = shlex.split(self.moved(u["ExecStart"][0]))
        assert u["Type"] == ["notify"], u["Type"]
        fd = self.listener.fileno()
        env = dict(self.env, NOTIFY_SOCKET=self.notify.address)
        # systemd's journal: forkd's standard output and error.
        with open(self.journal, "ab") as out:
            p = subprocess.Popen([sys.executable, "-c", Activated.WRAPPER,
                                  str(fd), ""] + argv,
                                 stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=out, env=env, pass_fds=[fd],
                                 start_new_session=True)
        self.procs.append(p)
        self.mainpid = p.pid
        self.masters.add(p.pid)
        m = self.notify.wait(lambda pid, text: "READY=1" in text, 20)
        assert m is not None, "forkd.service never sent READY=1"
        self.follow_mainpid()

    def follow_mainpid(self):
        for pid, text in self.notify.messages:
            for v in re.findall(r"(?m)^MAINPID=(\d+)$", text):
                self.mainpid = int(v)
                self.masters.add(self.mainpid)

    def reload_forkd(self):
        cmd = self.unit("forkd.service")["ExecReload"][0]
        before = len(self.notify.messages)
        r = subprocess.run(cmd.replace("$MAINPID", str(self.mainpid)),
                           shell=True, timeout=20)
        assert r.returncode == 0, cmd

        def ready():
            msgs = [t for _, t in self.notify.messages[before:]]
            return any("RELOADING=1" in t for t in msgs) and \
                "READY=1" in msgs[-1]
        deadline = time.monotonic() + 20
        while not ready():
            assert time.monotonic() < deadline, "reload: no READY=1"
            self.notify.receive(0.2)

    def nginx_reload(self):
        """nginx -t, then systemd's reload of nginx: a start the first
        time (Debian's nginx runs from its install on)."""
        if self.nginx.proc is None:
            out = self.nginx.follow(["nginx -t && systemctl reload nginx"])
            assert out is None, out
            return
        r = subprocess.run([NGINX, "-t", "-c", self.nginx.etc +
                            "/nginx.conf", "-e", self.root + "/log/error.log"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=20)
        assert r.returncode == 0, r.stdout.decode(errors="replace")
        os.kill(self.nginx.proc.pid, signal.SIGHUP)

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        if self.nginx is not None and self.nginx.proc is not None:
            self.nginx.stop()
        for pid in self.masters:
            if pid_alive(pid):
                os.kill(pid, signal.SIGQUIT)
        for pid in self.masters:
            if not wait_for(lambda: not pid_alive(pid), 10):
                stop_pid(pid)
        for p in self.procs:
            p.wait(10)
        if self.listener is not None:
            self.listener.close()
        self.notify.close()


def setUpModule():
    if NGINX is None and not REQUIRE:
        raise unittest.SkipTest("nginx is not installed (scripts/deps.sh)")


class DeployTest(unittest.TestCase):
    def machine(self, addr):
        if addr not in self.machines:
            m = Machine(os.path.join(self.tmp, "host" + addr.split(".")[3]),
                        self.addresses,
                        nginx=addr == NGINX_HOST)
            self.addCleanup(m.stop)
            with open(os.path.join(m.work, "mine.c"), "w") as f:
                f.write(self.mine)
            self.machines[addr] = m
        return self.machines[addr]

    def test_readme_deploy_section(self):
        self.tmp = tempfile.mkdtemp(prefix="forkd-deploy-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addresses = Addresses()
        self.machines = {}
        readme = read_text(os.path.join(REPO, "README.md"))
        self.mine = re.search(r"```c\n(/\* mine\.c:.*?)```", readme,
                              re.S).group(1)
        main = self.machine(NGINX_HOST)
        first_master = None
        count = 0
        for hosts, lines in segments(deploy_blocks()):
            for addr in hosts:
                m = self.machine(addr)
                for line in lines:
                    line = line.replace(hosts[0], addr)
                    count += 1
                    try:
                        m.run(line)
                    except AssertionError as e:
                        raise AssertionError(
                            "README Deploy, on %s: %r failed: %s\n%s\n%s" % (
                                addr, line, e,
                                main.nginx.log(), read_text(
                                    m.root + "/var/log/forkd/error.log")
                                [-3000:])) from e
                    if first_master is None and main.mainpid is not None:
                        first_master = main.mainpid
        self.assertIn("make install", segments(deploy_blocks())[0][1])
        curls = [out for line, out in main.outputs if line.startswith("curl")]
        self.assertEqual(curls, ["Hello, World!\n", "Hello, World!\n",
                                 "Hello, forkd!\n", "Hello, forkd!\n",
                                 "Hello, World!\n"])
        self.assertNotEqual(main.mainpid, first_master, "USR2 made no new "
                            "master")
        self.assertTrue(wait_for(lambda: not pid_alive(first_master), 10),
                        "the old master is still there")
        status = [out for line, out in main.outputs
                  if line.startswith("forkd status")]
        self.assertTrue(status and "workers" in status[0].lower(), status)
        self.check_hosts(main)
        for m in self.machines.values():
            m.stop()
            self.assertNotRegex(read_text(m.journal), SANITIZER_RE)
        print("\n[deploy] %d README commands run on %d machines" % (
            count, len(self.machines)), file=sys.stderr)

    def check_hosts(self, main):
        """nginx spreads requests over every forkd host, the added one
        too; the one-host forkd gets none any more."""
        hosts = [a for a in self.machines if a != NGINX_HOST]
        self.assertEqual(sorted(hosts), ["10.0.0.11", "10.0.0.12",
                                         "10.0.0.13", "10.0.0.14"])

        def served(addr):
            return len(read_text(self.machines[addr].root +
                                 "/var/log/forkd/access.log").splitlines())
        before = {a: served(a) for a in self.machines}
        # nginx's reload is asynchronous (systemctl reload nginx returns
        # before the old workers, which know three hosts, have left):
        # requests go on until each host has served some, for 10 s at most.
        deadline = time.monotonic() + 10
        i = 0
        while True:
            r = get(main.nginx.port, "/n%d" % i)
            self.assertEqual((r.status, r.body), (200, b"Hello, World!\n"))
            i += 1
            if i % 20 == 0:
                time.sleep(0.2)  # access lines are written every 100 ms
                if all(served(a) > before[a] for a in hosts) or \
                        time.monotonic() > deadline:
                    break
        after = {a: served(a) for a in self.machines}
        for a in hosts:
            self.assertGreater(after[a], before[a], "%s served nothing of "
                               "%d requests: %r -> %r" % (a, i, before,
                                                           after))
        self.assertEqual(served(NGINX_HOST), before[NGINX_HOST])


if __name__ == "__main__":
    unittest.main()
