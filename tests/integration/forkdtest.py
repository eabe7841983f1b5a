"""forkdtest: the harness of forkd's integration tests.

Every test gets its own temporary directory and ini file with a free
127.0.0.1 port, starts the real forkd binary (FORKD_BIN) with the example
handlers (FORKD_APPS), waits for its "ready:" line, talks to it with raw
sockets, curl or http.client, and stops it by PID (TERM, then KILL after a
deadline) even when the test failed.  On exit the error log must hold no
warn/error line the test did not declare expected, no process of the
daemon's session may be left behind, and no sanitizer report may appear.

Standard library only; run with /usr/bin/python3.  Environment:
  FORKD_BIN   the forkd executable (default: build/forkd of this tree)
  FORKD_APPS  the directory of hello.so, echo.so, ... (default: build/app)
  FORKD_TEST_KEEP=1  keep the temporary directories for inspection
"""

from http import client as httpclient
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FORKD_BIN = os.path.abspath(
    os.environ.get("FORKD_BIN", os.path.join(REPO, "build", "forkd")))
FORKD_APPS = os.path.abspath(
    os.environ.get("FORKD_APPS", os.path.join(REPO, "build", "app")))
APP_INCLUDE = os.path.join(REPO, "app")
KEEP = os.environ.get("FORKD_TEST_KEEP") == "1"

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

# A line of the error log that a test must declare expected.
WARN_RE = re.compile(r" (warn|error): ")
# Reports of ASan, UBSan and LSan in the daemon's stderr.
SANITIZER_RE = re.compile(r"(ERROR: (Address|Leak|Memory|Thread)Sanitizer|"
                          r"runtime error: |SUMMARY: \w+Sanitizer)")


def app_path(name):
    """The path of an example handler: "hello" -> FORKD_APPS/hello.so."""
    if "/" in name or name.endswith(".so"):
        return name
    return os.path.join(FORKD_APPS, name + ".so")


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind :0, getsockname, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_for(pred, timeout, interval=0.02):
    """Call pred until it returns a true value or timeout seconds pass;
    return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def read_text(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# --- /proc ------------------------------------------------------------------

def proc_stat(pid):
    """(state, ppid, session) of a process, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("latin-1")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may hold spaces.
    fields = data[data.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[3])


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children_of(pid):
    """Live (non-zombie) children of pid."""
    kids = set()
    try:
        # Children are listed per thread that forked them.
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids.update(int(x) for x in f.read().split())
    except OSError:
        for p in all_pids():
            st = proc_stat(p)
            if st is not None and st[1] == pid:
                kids.add(p)
    return sorted(p for p in kids if pid_alive(p))


def session_pids(sid):
    """Live processes of session sid (forkd is started as a session leader,
    so these are the master and everything it forked)."""
    out = []
    for p in all_pids():
        st = proc_stat(p)
        if st is not None and st[2] == sid and st[0] not in ("Z", "X"):
            out.append(p)
    return sorted(out)


def socket_inode(local_port, remote_port):
    """The inode of the TCP socket whose local port is local_port and remote
    port is remote_port (the server side of a client connection)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            lport = int(fields[1].rsplit(":", 1)[1], 16)
            rport = int(fields[2].rsplit(":", 1)[1], 16)
            if lport == local_port and rport == remote_port:
                return int(fields[9])
    return None


def pids_holding_inode(pids, inode):
    target = "socket:[%d]" % inode
    out = []
    for pid in pids:
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                    out.append(pid)
                    break
            except OSError:
                continue
    return out


# --- sockets and HTTP ---------------------------------------------------------

def connect(addr, timeout=5.0):
    """A connected socket.  addr: a port on 127.0.0.1, a (host, port) pair
    (IPv6 if host has a colon) or a unix socket path."""
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = addr
    else:
        if isinstance(addr, int):
            addr = ("127.0.0.1", addr)
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        target = addr
    s.settimeout(timeout)
    try:
        s.connect(target)
    except BaseException:
        s.close()
        raise
    return s


def recv_all(sock, timeout):
    """Read until EOF (or a reset) or until timeout seconds pass.
    Returns (data, closed)."""
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), False
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except socket.timeout:
            return b"".join(chunks), False
        except (ConnectionResetError, BrokenPipeError):
            return b"".join(chunks), True
        if not b:
            return b"".join(chunks), True
        chunks.append(b)


def raw(addr, data, timeout=3.0):
    """Send data on a new connection, read until the server closes it or
    timeout seconds pass, and return what was read."""
    with connect(addr, timeout) as s:
        try:
            s.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            pass
        return recv_all(s, timeout)[0]


def raw_closed(addr, data, timeout=3.0):
    """As raw, but return (data, closed): closed is True if the server
    closed the connection within timeout."""
    with connect(addr, timeout) as s:
        try:
            s.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            pass
        return recv_all(s, timeout)


class Response(tuple):
    """(status, headers, body): headers is a dict with lower-case names and
    repeated fields joined with ", "; also .version, .reason, .head (the
    raw head bytes)."""

    def __new__(cls, status, headers, body, version="", reason="", head=b""):
        self = tuple.__new__(cls, (status, headers, body))
        self.version = version
        self.reason = reason
        self.head = head
        return self

    status = property(lambda self: self[0])
    headers = property(lambda self: self[1])
    body = property(lambda self: self[2])

    def __repr__(self):
        return "Response(%r, %r, %r)" % (self[0], self[1], self[2][:200])


class Incomplete(Exception):
    pass


def _parse_chunked(data):
    """(body, consumed) of a chunked body at the start of data."""
    pos = 0
    body = []
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise Incomplete()
        size_text = data[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ValueError("bad chunk size line %r" % data[pos:eol])
        pos = eol + 2
        if size == 0:
            # Trailer fields, then an empty line.
            while True:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    raise Incomplete()
                line = data[pos:eol]
                pos = eol + 2
                if not line:
                    return b"".join(body), pos
        if len(data) < pos + size + 2:
            raise Incomplete()
        body.append(data[pos:pos + size])
        if data[pos + size:pos + size + 2] != b"\r\n":
            raise ValueError("chunk data not followed by CRLF")
        pos += size + 2


def parse_one(data, head_request=False):
    """Parse one response at the start of data.  Returns (Response,
    consumed); raises Incomplete when data ends before the response does and
    ValueError when it is malformed.  A response without Content-Length or
    chunked framing is taken as close-delimited (all of data)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise Incomplete()
    head = data[:end]
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise ValueError("bad status line %r" % lines[0])
    version, status, reason = m.group(1), int(m.group(2)), m.group(3) or ""
    headers = {}
    for line in lines[1:]:
        if ":" not in line:
            raise ValueError("bad header line %r" % line)
        name, value = line.split(":", 1)
        name = name.lower()
        value = value.strip(" \t")
        headers[name] = headers[name] + ", " + value if name in headers \
            else value
    rest = data[end + 4:]
    consumed = end + 4
    if 100 <= status < 200 or status in (204, 304) or head_request:
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body, n = _parse_chunked(rest)
        consumed += n
    elif "content-length" in headers:
        n = int(headers["content-length"])
        if len(rest) < n:
            raise Incomplete()
        body = rest[:n]
        consumed += n
    else:
        body = rest
        consumed += len(rest)
    return Response(status, headers, body, version, reason, head), consumed


def parse_responses(data, methods=None):
    """Every complete response in data, in order, as a list of Response
    (status, headers, body); an incomplete trailing response is left out.
    methods: the request methods in order, so that responses to HEAD are
    read without a body (1xx responses do not consume a method)."""
    out = []
    i = 0
    while data:
        head_request = bool(methods) and i < len(methods) and \
            methods[i].upper() == "HEAD"
        try:
            resp, n = parse_one(data, head_request)
        except Incomplete:
            break
        out.append(resp)
        data = data[n:]
        if resp.status >= 200:
            i += 1
    return out


class Conn:
    """A client connection read response by response (keep-alive,
    pipelining, 100-continue)."""

    def __init__(self, addr, timeout=5.0):
        self.sock = connect(addr, timeout)
        self.buf = b""
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def local_port(self):
        return self.sock.getsockname()[1]

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            b = b""
        if not b:
            self.closed = True
            raise EOFError("connection closed by server; had %r" % self.buf)
        self.buf += b

    def read_response(self, timeout=5.0, head_request=False):
        """The next response; raises EOFError if the server closes first
        and socket.timeout if none comes within timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                resp, n = parse_one(self.buf, head_request)
                if n == len(self.buf) and not resp.headers.get(
                        "content-length") and "chunked" not in \
                        resp.headers.get("transfer-encoding", "") and \
                        not (100 <= resp.status < 200 or head_request or
                             resp.status in (204, 304)):
                    # Close-delimited: read to the end.
                    raise Incomplete()
                self.buf = self.buf[n:]
                return resp
            except Incomplete:
                try:
                    self._fill(deadline)
                except EOFError:
                    if not self.buf:
                        raise
                    try:
                        resp, n = parse_one(self.buf, head_request)
                    except Incomplete:
                        raise EOFError("connection closed in the middle "
                                       "of a response: %r" % self.buf[:300])
                    self.buf = self.buf[n:]
                    return resp

    def read_head(self, timeout=5.0):
        """Bytes up to and including the next blank line."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        end = self.buf.find(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:end], self.buf[end:]
        return head

    def wait_closed(self, timeout=3.0):
        """Read until the server closes (True) or timeout (False); what was
        read is appended to self.buf."""
        data, closed = recv_all(self.sock, timeout)
        self.buf += data
        self.closed = self.closed or closed
        return closed


def http(addr, method="GET", path="/", headers=None, body=None, timeout=5.0):
    """One request with http.client on a new connection; returns Response."""
    if isinstance(addr, int):
        addr = ("127.0.0.1", addr)
    conn = httpclient.HTTPConnection(addr[0], addr[1], timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        hdrs = {}
        for name, value in r.getheaders():
            name = name.lower()
            hdrs[name] = hdrs[name] + ", " + value if name in hdrs else value
        return Response(r.status, hdrs, data, "HTTP/%d.%d" % divmod(
            r.version, 10), r.reason)
    finally:
        conn.close()


def get(addr, path="/", timeout=5.0):
    return http(addr, "GET", path, timeout=timeout)


def fnv1a32(data):
    h = 0x811c9dc5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xffffffff
    return h


# --- the binary ------------------------------------------------------------

def require_binary():
    if not os.access(FORKD_BIN, os.X_OK):
        raise AssertionError("FORKD_BIN %s is not an executable; build it "
                             "with make" % FORKD_BIN)


def kill_pids(pids):
    """SIGKILL each of pids that is still there; return pids."""
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def kill_session(sid):
    """SIGKILL every live process of session sid; return their pids."""
    return kill_pids(session_pids(sid))


def stop_pid(pid, timeout=5.0):
    """SIGTERM pid, SIGKILL it after timeout; also the processes it forked
    (found through /proc as its children).  Returns the pids killed with
    SIGKILL."""
    if pid is None or not pid_alive(pid):
        return []
    kids = children_of(pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return []
    killed = []
    if not wait_for(lambda: not pid_alive(pid), timeout):
        killed.append(pid)
    if not wait_for(lambda: not any(pid_alive(k) for k in kids), 2.0):
        killed += [k for k in kids if pid_alive(k)]
    return kill_pids(killed)


def run_forkd(args, timeout=5.0, cwd=None, env=None):
    """Run forkd to completion (bad configurations, --check, --version).
    Returns (exit code, stdout, stderr) as text.  If it is still running
    after timeout seconds, it and its session are killed and AssertionError
    is raised."""
    require_binary()
    p = subprocess.Popen([FORKD_BIN] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=cwd, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        kill_session(p.pid)
        raise AssertionError(
            "forkd %s still running after %.1f s (killed)\nstdout: %s\n"
            "stderr: %s" % (" ".join(args), timeout,
                            out.decode(errors="replace"),
                            err.decode(errors="replace")))
    left = wait_for(lambda: not session_pids(p.pid), 2.0) or \
        session_pids(p.pid)
    if left is not True and left:
        kill_session(p.pid)
        raise AssertionError("forkd %s exited %d but left processes %s "
                             "behind" % (" ".join(args), p.returncode, left))
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    if SANITIZER_RE.search(err):
        raise AssertionError("sanitizer report from forkd %s:\n%s" % (
            " ".join(args), err[:4000]))
    return p.returncode, out, err


def compile_so(directory, name, source, extra=()):
    """Compile C source into directory/name.so against app/forkd.h."""
    src = os.path.join(directory, name + ".c")
    out = os.path.join(directory, name + ".so")
    with open(src, "w") as f:
        f.write(source)
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise AssertionError("no C compiler to build test handlers")
    r = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall",
                        "-I" + APP_INCLUDE, "-o", out, src] + list(extra),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    if r.returncode != 0:
        raise AssertionError("cc %s failed:\n%s" % (src, r.stdout.decode(
            errors="replace")))
    # Workers load the handler after dropping to their user (nobody under
    # a root master): mkdtemp's 0700 directory would keep them out.
    os.chmod(directory, 0o755)
    os.chmod(out, 0o755)
    return out


# --- the server --------------------------------------------------------------

def _ini_value(v):
    if v is True:
        return "1"
    if v is False:
        return "0"
    return str(v)


class Server:
    """A running forkd, as a context manager.

    Server(app="echo", server={"workers": 1, "keepalive": 1},
           options={"delay_ms": 300}, allow=[r"warn:.*worker"])
    writes DIR/forkd.ini with bind = 127.0.0.1:PORT, error_log and
    access_log in DIR, [app] path from FORKD_APPS, the [server] keys given
    (a list value repeats the key; None omits it; strings may use {port}
    and {dir}) and the [app] options.  ini="..." instead gives the whole
    file as a template with {port}, {dir}, {apps}, {bind}, {error_log},
    {access_log}.  args: extra command-line arguments (after -c FILE).
    allow: regexes for warn/error log lines the test expects.
    ready: the text of the error-log line that means ready; None: ready
    when 127.0.0.1:PORT accepts a connection.
    """

    def __init__(self, app="hello", server=None, options=None, ini=None,
                 allow=(), args=(), cwd=None, workers=2, port=None,
                 ready_timeout=READY_TIMEOUT, check_log=True,
                 ready="ready:"):
        require_binary()
        self.app = app
        self.server_keys = dict(server or {})
        self.options = dict(options or {})
        self.ini_template = ini
        self.allow = [re.compile(a) for a in allow]
        self.args = list(args)
        self.workers = workers
        self.auto_port = port is None
        self.port = port
        self.ready_timeout = ready_timeout
        self.check_log = check_log
        self.ready = ready
        self.dir = tempfile.mkdtemp(prefix="forkd-test-")
        os.chmod(self.dir, 0o755)  # workers load handlers from here too
        self.cwd = cwd or self.dir
        self.ini = os.path.join(self.dir, "forkd.ini")
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.stdout_path = os.path.join(self.dir, "stdout")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.proc = None
        self.pid = None
        self.problems = []
        self.stopped = False
        self.known_pids = set()

    # -- files

    def path(self, *names):
        return os.path.join(self.dir, *names)

    def _ini_text(self):
        fmt = dict(port=self.port, dir=self.dir, apps=FORKD_APPS,
                   bind="127.0.0.1:%s" % self.port,
                   error_log=self.error_log, access_log=self.access_log)
        if self.ini_template is not None:
            return self.ini_template.format(**fmt)
        keys = {"bind": "127.0.0.1:{port}", "workers": self.workers,
                "error_log": self.error_log, "access_log": self.access_log}
        keys.update(self.server_keys)
        lines = ["[server]"]
        for k, v in keys.items():
            if v is None:
                continue
            for item in (v if isinstance(v, (list, tuple)) else [v]):
                lines.append("%s = %s" % (k, _ini_value(item).format(**fmt)))
        lines.append("")
        lines.append("[app]")
        if self.app is not None:
            lines.append("path = %s" % app_path(self.app))
        for k, v in self.options.items():
            lines.append("%s = %s" % (k, _ini_value(v).format(**fmt)))
        return "\n".join(lines) + "\n"

    def log_text(self):
        return read_text(self.error_log)

    def log_lines(self):
        return self.log_text().splitlines()

    def access_lines(self):
        return read_text(self.access_log).splitlines()

    def stderr_text(self):
        return read_text(self.stderr_path)

    def stdout_text(self):
        return read_text(self.stdout_path)

    def describe(self):
        return ("--- forkd.ini\n%s--- error.log\n%s--- stderr\n%s"
                "--- processes\n%s---" % (
                    read_text(self.ini), self.log_text()[-6000:],
                    self.stderr_text()[-6000:], self.process_states()))

    def process_states(self):
        """What the master and its children are doing (state, kernel wait
        channel, stack when readable): for failures that look like a hang."""
        out = []
        pids = [self.pid] + children_of(self.pid) if self.pid else []
        for p in pids:
            fields = [read_text("/proc/%d/stat" % p).strip()[:200],
                      "wchan=" + read_text("/proc/%d/wchan" % p).strip()]
            stack = read_text("/proc/%d/stack" % p).strip()
            if stack:
                fields.append("stack:\n  " + stack.replace("\n", "\n  "))
            out.append("pid %d: %s" % (p, " ".join(fields)))
        return "\n".join(out) + "\n" if out else "(none)\n"

    def wait_log(self, regex, timeout=2.0):
        """The first error-log line matching regex, waiting up to timeout."""
        r = re.compile(regex)

        def find():
            for line in self.log_lines():
                if r.search(line):
                    return line
            return None
        return wait_for(find, timeout)

    def wait_access(self, count, timeout=2.0):
        """The access log once it has at least count lines (or as it is
        after timeout)."""
        wait_for(lambda: len(self.access_lines()) >= count, timeout)
        return self.access_lines()

    # -- processes

    def start(self):
        for attempt in (0, 1):
            if self.auto_port:
                self.port = free_port()
            for p in (self.error_log, self.stdout_path, self.stderr_path):
                if os.path.exists(p):
                    os.unlink(p)
            with open(self.ini, "w") as f:
                f.write(self._ini_text())
            with open(self.stdout_path, "wb") as out, \
                    open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(
                    [FORKD_BIN, "-c", self.ini] + self.args,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    cwd=self.cwd, start_new_session=True)
            self.pid = self.proc.pid
            self.stopped = False
            why = self._wait_ready()
            if why is None:
                self.known_pids.update(self.worker_pids())
                return self
            text = self.log_text() + self.stderr_text()
            self._kill_all()
            if attempt == 0 and self.auto_port and re.search(
                    r"(?i)in use|EADDRINUSE", text):
                continue
            msg = "forkd did not become ready: %s\n%s" % (why,
                                                          self.describe())
            self._cleanup_dir()
            raise AssertionError(msg)

    def _wait_ready(self):
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.ready is not None and self.ready in self.log_text():
                return None
            if self.ready is None:
                with socket.socket() as c:
                    c.settimeout(1)
                    if c.connect_ex(("127.0.0.1", self.port)) == 0:
                        return None
            rc = self.proc.poll()
            if rc is not None:
                return "exited with status %d" % rc
            if time.monotonic() >= deadline:
                return "not ready after %.0f s" % self.ready_timeout
            time.sleep(0.02)

    def _kill_all(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        kill_session(self.pid)
        self.stopped = True

    def worker_pids(self):
        """The live worker processes (children of the master)."""
        if self.pid is None:
            return []
        return children_of(self.pid)

    def wait_workers(self, n, timeout=2.0, exclude=()):
        """Wait until there are n workers, none of them in exclude; return
        the worker pids then (or at the timeout)."""
        def ok():
            w = self.worker_pids()
            return len(w) == n and not set(w) & set(exclude)
        wait_for(ok, timeout)
        return self.worker_pids()

    def session(self):
        """Live processes of the daemon's session (master and workers)."""
        return session_pids(self.pid) if self.pid else []

    def owner_of(self, sock):
        """The forkd process holding the server side of client socket sock
        (a TCP connection to this server), or None."""
        inode = socket_inode(self.port, sock.getsockname()[1])
        if inode is None:
            return None
        owners = pids_holding_inode(self.session(), inode)
        return owners[0] if len(owners) == 1 else None

    def by_owner(self, conns, timeout=2.0):
        """{worker pid: [conns it holds]}, asked again while a connection
        is in flight between workers (a handoff on a loaded machine);
        None as a key if one stays unknown after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            owners = {}
            for c in conns:
                owners.setdefault(self.owner_of(c.sock), []).append(c)
            if None not in owners or time.monotonic() >= deadline:
                return owners
            time.sleep(0.05)

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM the master, SIGKILL after timeout seconds; then make sure
        nothing of its session is left (SIGKILL by pid).  Returns the exit
        status of the master."""
        if self.proc is None:
            return None
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.problems.append(
                    "master %d still running %.0f s after SIGTERM; killed" %
                    (self.pid, timeout))
                self.proc.kill()
                self.proc.wait()
        if not wait_for(lambda: not self.session(), 2.0):
            left = kill_session(self.pid)
            if left:
                self.problems.append("processes left after the master "
                                     "exited (killed): %s" % left)
        return self.proc.returncode

    def unexpected_log_lines(self):
        out = []
        for line in self.log_lines():
            if WARN_RE.search(line) and not any(a.search(line)
                                                for a in self.allow):
                out.append(line)
        return out

    def _cleanup_dir(self):
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop()
        finally:
            problems = list(self.problems)
            if self.check_log:
                bad = self.unexpected_log_lines()
                if bad:
                    problems.append("unexpected warn/error lines in the "
                                    "error log:\n  " + "\n  ".join(bad))
            san = SANITIZER_RE.search(self.stderr_text() + self.log_text())
            if san:
                problems.append("sanitizer report in forkd's output")
            report = ""
            if problems:
                report = "\n".join(problems) + "\n" + self.describe()
            self._cleanup_dir()
        if problems:
            if exc_type is None:
                raise AssertionError(report)
            sys.stderr.write("\n[forkdtest] also: " + report + "\n")
        return False


# --- a handler for API and fault tests ------------------------------------------

TESTAPP_C = r"""
#include <forkd.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct st {
    char file[512];
    char marker[128];
};

static int
t_init(const struct forkd_option *opts, size_t n, void **state)
{
    const char *v;
    struct st *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -1;
    if ((v = forkd_option(opts, n, "fail_init")) != NULL) {
        forkd_log(NULL, FORKD_LOG_ERROR, "testapp init refused: %s", v);
        free(s);
        return -1;
    }
    if ((v = forkd_option(opts, n, "file")) != NULL)
        snprintf(s->file, sizeof s->file, "%s", v);
    if ((v = forkd_option(opts, n, "marker")) != NULL)
        snprintf(s->marker, sizeof s->marker, "%s", v);
    *state = s;
    return 0;
}

static void
t_fini(void *state)
{
    free(state);
}

static int
text(struct forkd_req *req, const char *status, const char *body)
{
    struct forkd_header h[] = {{"Content-Type", "text/plain"}};
    if (forkd_start_response(req, status, h, 1) != 0)
        return -1;
    return forkd_write(req, body, strlen(body)) < 0 ? -1 : 0;
}

static char big[65536];

static int
t_handle(struct forkd_req *req, void *state)
{
    struct st *s = state;
    const char *p = forkd_getenv(req, "PATH_INFO");
    const char *q = forkd_getenv(req, "QUERY_STRING");
    char line[1024];
    if (p == NULL)
        p = "";
    memset(big, 'x', sizeof big);

    if (strcmp(p, "/fail-early") == 0)
        return -1;
    if (strcmp(p, "/fail-after-start") == 0) {
        struct forkd_header h[] = {{"Content-Type", "text/plain"}};
        forkd_start_response(req, "200 OK", h, 1);
        return -1;
    }
    if (strcmp(p, "/fail-late") == 0 || strcmp(p, "/fail-late-chunked") == 0) {
        struct forkd_header h[] = {{"Content-Type", "text/plain"},
                                   {"Content-Length", "1048576"}};
        size_t nh = strcmp(p, "/fail-late") == 0 ? 2 : 1;
        if (forkd_start_response(req, "200 OK", h, nh) != 0)
            return -1;
        for (int i = 0; i < 4; i++)
            if (forkd_write(req, big, sizeof big) < 0)
                return -1;
        return -1;
    }
    if (strcmp(p, "/crlf-header") == 0 || strcmp(p, "/hop-connection") == 0 ||
        strcmp(p, "/hop-te") == 0 || strcmp(p, "/bad-name") == 0 ||
        strcmp(p, "/bad-status") == 0 || strcmp(p, "/nul-header") == 0) {
        const char *status = "200 OK";
        struct forkd_header h = {"X-Ok", "1"};
        if (strcmp(p, "/crlf-header") == 0)
            h.value = "a\r\nX-Injected: 1";
        else if (strcmp(p, "/hop-connection") == 0)
            h.name = "Connection", h.value = "keep-alive";
        else if (strcmp(p, "/hop-te") == 0)
            h.name = "Transfer-Encoding", h.value = "chunked";
        else if (strcmp(p, "/bad-name") == 0)
            h.name = "Bad Name";
        else if (strcmp(p, "/nul-header") == 0)
            h.value = "a\nX-Injected: 1";
        else
            status = "200 OK\r\nX-Injected: 1";
        /* Ignore the result on purpose: the server must still answer 500. */
        (void)forkd_start_response(req, status, &h, 1);
        (void)forkd_write(req, "must not be sent\n", 17);
        return 0;
    }
    if (strcmp(p, "/twice") == 0) {
        struct forkd_header h1[] = {{"X-First", "1"}};
        struct forkd_header h2[] = {{"X-Second", "1"},
                                    {"Content-Type", "text/plain"}};
        if (forkd_start_response(req, "200 OK", h1, 1) != 0)
            return -1;
        if (forkd_start_response(req, "404 Not Found", h2, 2) != 0)
            return -1;
        return forkd_write(req, "second\n", 7) < 0 ? -1 : 0;
    }
    if (strcmp(p, "/stream") == 0) {
        /* No Content-Length: the server frames it.  ?n=KiB */
        int n = q && strncmp(q, "n=", 2) == 0 ? atoi(q + 2) : 3;
        struct forkd_header h[] = {{"Content-Type", "text/plain"}};
        if (forkd_start_response(req, "200 OK", h, 1) != 0)
            return -1;
        for (int i = 0; i < n; i++) {
            char piece[1024];
            memset(piece, 'a' + i % 26, sizeof piece);
            if (forkd_write(req, piece, sizeof piece) < 0)
                return -1;
        }
        return 0;
    }
    if (strcmp(p, "/empty") == 0) {
        struct forkd_header h[] = {{"X-Empty", "1"}};
        return forkd_start_response(req, "204 No Content", h, 1);
    }
    if (strcmp(p, "/sendfile") == 0) {
        struct stat sb;
        char cl[32];
        int fd = open(s->file, O_RDONLY);
        if (fd < 0 || fstat(fd, &sb) != 0)
            return -1;
        snprintf(cl, sizeof cl, "%lld", (long long)sb.st_size - 3);
        struct forkd_header h[] = {{"Content-Type", "application/octet-stream"},
                                   {"Content-Length", cl}};
        if (forkd_start_response(req, "200 OK", h, 2) != 0 ||
            forkd_sendfile(req, fd, 3, (size_t)sb.st_size - 3) < 0) {
            close(fd);
            return -1;
        }
        close(fd);
        return 0;
    }
    if (strcmp(p, "/log") == 0) {
        forkd_log(req, FORKD_LOG_WARN, "testapp-log %s", s->marker);
        return text(req, "200 OK", "logged\n");
    }
    if (strcmp(p, "/environ") == 0) {
        size_t it = 0;
        const char *name, *value;
        struct forkd_header h[] = {{"Content-Type", "text/plain"}};
        if (forkd_start_response(req, "200 OK", h, 1) != 0)
            return -1;
        while (forkd_environ_next(req, &it, &name, &value)) {
            snprintf(line, sizeof line, "%s=%s\n", name, value);
            if (forkd_write(req, line, strlen(line)) < 0)
                return -1;
        }
        return 0;
    }
    if (strcmp(p, "/alloc") == 0) {
        char *a = forkd_alloc(req, 100000);
        char *b = forkd_alloc(req, 3);
        if (a == NULL || b == NULL)
            return -1;
        memset(a, 'z', 100000);
        memcpy(b, "ok\n", 3);
        struct forkd_header h[] = {{"Content-Type", "text/plain"}};
        if (forkd_start_response(req, "200 OK", h, 1) != 0)
            return -1;
        return forkd_write(req, b, 3) < 0 ? -1 : 0;
    }
    if (strcmp(p, "/read7") == 0) {
        /* Read the body in small pieces: count and FNV-1a. */
        unsigned h = 2166136261u;
        long long total = 0;
        char buf[7];
        ssize_t r;
        while ((r = forkd_read(req, buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < r; i++)
                h = (h ^ (unsigned char)buf[i]) * 16777619u;
            total += r;
        }
        if (r < 0)
            return -1;
        snprintf(line, sizeof line, "%lld %08x\n", total, h);
        return text(req, "200 OK", line);
    }
    if (strcmp(p, "/no-read") == 0)
        return text(req, "200 OK", "did not read the body\n");
    if (strcmp(p, "/crash") == 0)
        abort();
    if (strcmp(p, "/pid") == 0) {
        snprintf(line, sizeof line, "%d\n", (int)getpid());
        return text(req, "200 OK", line);
    }
    if (strcmp(p, "/sleep") == 0) {
        int ms = q && strncmp(q, "ms=", 3) == 0 ? atoi(q + 3) : 100;
        usleep((useconds_t)ms * 1000);
        return text(req, "200 OK", "slept\n");
    }
    snprintf(line, sizeof line, "path=%s\n", p);
    return text(req, "200 OK", line);
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .init = t_init,
    .handle = t_handle,
    .fini = t_fini,
};
"""


def build_testapp(directory):
    """Compile the API/fault test handler into directory/testapp.so."""
    return compile_so(directory, "testapp", TESTAPP_C)
