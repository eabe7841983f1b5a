"""corpus: read the request corpus of tests/corpus/*.txt (format in
tests/corpus/README).  Used by tests/integration/test_corpus.py, which runs
every case against a real forkd, and by tests/fuzz/seed.py, which turns the
cases into the fuzzer's seed corpus.  Standard library only."""

import glob
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))

# The request appended after a case (unless "probe: no"): answered with
# PATH_INFO /__probe if, and only if, the server kept the connection and
# found the exact end of the case's last request.
PROBE = (b"GET /__probe HTTP/1.1\r\nHost: probe.example\r\n"
         b"Connection: close\r\n\r\n")

KEYS = {"ref", "send", "await", "app", "server", "expect", "interim", "then",
        "probe", "within", "methods", "xfail", "noenv", "body",
        "response_body"}
PER_RESPONSE = re.compile(r"^(env|noenv|body|header|response_body)(\d*)"
                          r"(?:\.(.+))?$")
ESCAPE = re.compile(rb"\\(?:x([0-9a-fA-F]{2})|\*(\d+)\{([^}]*)\}|(.))")
SIMPLE = {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0", b"\\": b"\\",
          b"s": b" ", b"#": b"#"}


class CorpusError(Exception):
    pass


def unescape(text, where=""):
    """Bytes of a corpus value: \\r \\n \\t \\0 \\s (space) \\# \\\\ \\xHH,
    and \\*N{text} for text (itself with escapes) repeated N times."""
    raw = text.encode("latin-1")

    def sub(m):
        if m.group(1) is not None:
            return bytes([int(m.group(1), 16)])
        if m.group(2) is not None:
            return unescape(m.group(3).decode("latin-1"), where) * \
                int(m.group(2))
        c = m.group(4)
        if c not in SIMPLE:
            raise CorpusError("%s: unknown escape \\%s" % (
                where, c.decode("latin-1")))
        return SIMPLE[c]
    return ESCAPE.sub(sub, raw)


class Case:
    """One record.  Attributes: name, ref, file, line, steps (a list of
    ("send", bytes) and ("await", status)), app, server (dict), expect (a
    list of sets of statuses), interim, then, probe, within, methods, xfail,
    and per response i (0-based) env[i] (dict), noenv[i] (list), body[i],
    response_body[i], headers[i] (dict)."""

    def __init__(self, name, file, line):
        self.name, self.file, self.line = name, file, line
        self.ref = None
        self.steps = []
        self.app = "echo"
        self.server = {}
        self.expect = None
        self.interim = None
        self.then = None
        self.probe = True
        self.within = None
        self.methods = None
        self.xfail = None
        self.env, self.noenv, self.body = {}, {}, {}
        self.response_body, self.headers = {}, {}

    def where(self):
        return "%s:%d: [%s]" % (os.path.basename(self.file), self.line,
                                self.name)

    def request_bytes(self):
        """Everything the case sends, in order (without the probe)."""
        return b"".join(v for k, v in self.steps if k == "send")

    def is_valid(self):
        """A case whose requests must all be answered with 1xx-3xx."""
        return all(max(s) < 400 for s in self.expect)

    def server_key(self):
        return (self.app, tuple(sorted(self.server.items())))

    def _set(self, key, value):
        w = self.where()
        if key == "ref":
            self.ref = value
        elif key == "send":
            self.steps.append(("send", unescape(value, w)))
        elif key == "await":
            self.steps.append(("await", int(value)))
        elif key == "app":
            self.app = value
        elif key == "server":
            for item in value.split():
                k, _, v = item.partition("=")
                self.server[k] = v
        elif key == "expect":
            self.expect = [set(int(x) for x in alt.split("|"))
                           for alt in value.split()]
        elif key == "interim":
            self.interim = None if value == "any" else value
        elif key == "then":
            if value not in ("probe", "close", "any"):
                raise CorpusError("%s: then: probe, close or any" % w)
            self.then = value
        elif key == "probe":
            self.probe = value not in ("no", "0", "false")
        elif key == "within":
            self.within = float(value)
        elif key == "methods":
            self.methods = value.split()
        elif key == "xfail":
            self.xfail = value
        else:
            m = PER_RESPONSE.match(key)
            if not m:
                raise CorpusError("%s: unknown key %r" % (w, key))
            kind, idx, sub = m.group(1), int(m.group(2) or 1) - 1, m.group(3)
            if kind == "env" and sub:
                self.env.setdefault(idx, {})[sub] = \
                    unescape(value, w).decode("latin-1")
            elif kind == "noenv" and not sub:
                self.noenv.setdefault(idx, []).extend(value.split())
            elif kind == "body" and not sub:
                self.body[idx] = unescape(value, w)
            elif kind == "response_body" and not sub:
                self.response_body[idx] = unescape(value, w)
            elif kind == "header" and sub:
                self.headers.setdefault(idx, {})[sub.lower()] = value
            else:
                raise CorpusError("%s: bad key %r" % (w, key))

    def _finish(self):
        w = self.where()
        if not self.ref:
            raise CorpusError("%s: no ref" % w)
        if not any(k == "send" for k, _ in self.steps):
            raise CorpusError("%s: no send" % w)
        if not self.expect:
            raise CorpusError("%s: no expect" % w)
        if self.then is None:
            self.then = "probe" if self.is_valid() else "close"
        if self.then == "probe" and not self.probe:
            raise CorpusError("%s: then: probe needs the probe" % w)
        for idx in list(self.env) + list(self.noenv) + list(self.body):
            if self.app != "echo":
                raise CorpusError("%s: env/body need app echo" % w)
            if idx >= len(self.expect):
                raise CorpusError("%s: response %d not expected" % (
                    w, idx + 1))


def load(directory=HERE):
    """Every case of directory/*.txt, in file order; names are unique."""
    out = []
    seen = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.txt"))):
        for c in parse_file(path):
            if c.name in seen:
                raise CorpusError("%s: duplicate of %s" % (c.where(),
                                                          seen[c.name]))
            seen[c.name] = c.where()
            out.append(c)
    return out


def parse_file(path):
    """The cases of one corpus file, in order."""
    cases = []
    case = None
    pending = None
    with open(path, encoding="latin-1") as f:
        lines = f.read().split("\n")

    def flush():
        nonlocal pending
        if pending is not None:
            case._set(*pending)
            pending = None

    for n, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        if not stripped:
            if case is not None:
                flush()
            continue
        m = re.match(r"^\[([a-z0-9][a-z0-9-]*)\]$", stripped)
        if m:
            if case is not None:
                flush()
                case._finish()
            case = Case(m.group(1), path, n)
            cases.append(case)
            continue
        if case is None:
            raise CorpusError("%s:%d: text before the first [case]" % (path,
                                                                       n))
        if line[0] in " \t":
            if pending is None:
                raise CorpusError("%s:%d: continuation of nothing" % (path,
                                                                      n))
            # Prose joins with a space, bytes with nothing.
            sep = " " if pending[0] in ("ref", "xfail") else ""
            pending[1] += sep + stripped
            continue
        k, sep, v = line.partition(":")
        k = k.strip()
        if not sep or not (k in KEYS or PER_RESPONSE.match(k)):
            raise CorpusError("%s:%d: expected 'key: value', got %r" % (
                path, n, line))
        flush()
        pending = [k, v.strip()]
    if case is not None:
        flush()
        case._finish()
    return cases
