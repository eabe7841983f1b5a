"""The request corpus of tests/corpus (format in tests/corpus/README), run
against a real forkd with the echo handler: every case twice, its bytes
sent in one write and split into one-byte writes (TCP_NODELAY, one send()
per byte, a short pause between bytes over the first CORPUS_PACED bytes).

One test class per server configuration (app and [server] settings of the
cases); each case becomes test_<name>_whole and test_<name>_bytes.  A case
with "xfail:" is a known server bug and runs as an expected failure
(FORKD_CORPUS_STRICT=1 runs them as plain tests)."""

import json
import os
import re
import socket
import sys
import time
import unittest

from forkdtest import Incomplete, Server, connect, parse_one, parse_responses

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "corpus"))
import corpus  # noqa: E402  (tests/corpus/corpus.py)

# One-byte writes: every byte of the first CORPUS_SPLIT bytes of a send
# separately, with a pause of CORPUS_PAUSE s after each of the first
# CORPUS_PACED; the rest of a long send goes in one write.
CORPUS_SPLIT = 16384
CORPUS_PACED = 1024
CORPUS_PAUSE = 0.0002
READ_TIMEOUT = 4.0
# Client errors are logged with the peer; nothing else may warn.
PEER = r"127\.0\.0\.1"
# FORKD_CORPUS_STRICT=1: run the xfail cases as plain tests (to see how
# they fail, or that a fix made them pass).
STRICT = os.environ.get("FORKD_CORPUS_STRICT") == "1"

CASES = corpus.load()


def send_bytes(sock, data, bytewise):
    """Send data; False if the server closed the connection meanwhile."""
    try:
        if not bytewise:
            sock.sendall(data)
            return True
        head, tail = data[:CORPUS_SPLIT], data[CORPUS_SPLIT:]
        for i in range(len(head)):
            sock.send(head[i:i + 1])
            if i < CORPUS_PACED:
                time.sleep(CORPUS_PAUSE)
        if tail:
            sock.sendall(tail)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def read_until(sock, buf, pred, timeout):
    """Read into buf (a bytearray) until pred(buf) or EOF or timeout.
    Returns (closed, time of the first byte read or None)."""
    deadline = time.monotonic() + timeout
    first = None
    while not pred(buf):
        left = deadline - time.monotonic()
        if left <= 0:
            return False, first
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except socket.timeout:
            return False, first
        except (ConnectionResetError, BrokenPipeError):
            return True, first
        if not b:
            return True, first
        if first is None:
            first = time.monotonic()
        buf += b
    return False, first


def has_status(status):
    def pred(buf):
        return any(r.status == status for r in parse_responses(bytes(buf)))
    return pred


def exchange(port, case, bytewise):
    """Run the case's steps on a new connection.  Returns (data, closed,
    delay): all bytes read, whether the server closed, and the seconds
    from the last byte sent to the first byte of a final response."""
    buf = bytearray()
    sock = connect(port, READ_TIMEOUT)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        steps = list(case.steps)
        if case.probe:
            steps.append(("send", corpus.PROBE))
        open_ = True
        t_sent = time.monotonic()
        for kind, value in steps:
            if kind == "send" and open_:
                open_ = send_bytes(sock, value, bytewise)
                t_sent = time.monotonic()
            elif kind == "await":
                read_until(sock, buf, has_status(value), READ_TIMEOUT)
        n_before = len(buf)
        closed, first = read_until(sock, buf, lambda b: False, READ_TIMEOUT)
        if n_before and any(r.status >= 200 for r in parse_responses(
                bytes(buf[:n_before]))):
            first = t_sent  # a final response came before the last send
        delay = None if first is None else max(0.0, first - t_sent)
        return bytes(buf), closed, delay
    finally:
        sock.close()


def split_responses(data, methods):
    """(responses, rest): parse_responses, and the bytes after the last
    complete response (which must be none)."""
    out = []
    i = 0
    while data:
        head = bool(methods) and i < len(methods) and methods[i] == "HEAD"
        try:
            resp, n = parse_one(data, head)
        except Incomplete:
            break
        out.append(resp)
        data = data[n:]
        if resp.status >= 200:
            i += 1
    return out, data


def echo_env(tc, resp, what):
    try:
        return json.loads(resp.body.decode("latin-1"))
    except ValueError:
        tc.fail("%s: not the echo handler's JSON: %r" % (what,
                                                         resp.body[:300]))


def check(tc, case, data, closed, delay):
    """Compare what forkd answered with the case's expectations."""
    what = "%s (%s)\nreceived: %r" % (case.where(), case.ref, data[:1500])
    methods = None
    if case.methods:
        methods = case.methods + ["GET"]
    try:
        rs, rest = split_responses(data, methods)
    except ValueError as e:
        tc.fail("malformed response stream (%s): %s" % (e, what))
    tc.assertEqual(rest, b"", "bytes after the last response: " + what)
    interim = [r for r in rs if 100 <= r.status < 200]
    final = [r for r in rs if r.status >= 200]
    n = len(case.expect)
    if case.interim == "100":
        tc.assertTrue(interim and interim[0].status == 100,
                      "no 100 Continue: " + what)
        tc.assertLess(data.find(b"HTTP/1.1 100 "), data.find(b"HTTP/1.1 2"),
                      "100 Continue after the final response: " + what)
    elif case.interim == "none":
        tc.assertEqual(interim, [], "unexpected 1xx: " + what)
    tc.assertGreaterEqual(len(final), n, "too few responses: " + what)
    for i, (r, allowed) in enumerate(zip(final, case.expect)):
        tc.assertIn(r.status, allowed, "response %d: %s" % (i + 1, what))
        if r.status >= 400:
            tc.assertEqual(r.headers.get("connection", "").lower(), "close",
                           "error response %d without Connection: close: %s"
                           % (i + 1, what))
        for name, value in case.headers.get(i, {}).items():
            tc.assertEqual(r.headers.get(name), value,
                           "response %d header %s: %s" % (i + 1, name, what))
        if i in case.response_body:
            tc.assertEqual(r.body, case.response_body[i],
                           "response %d body: %s" % (i + 1, what))
        if i in case.env or i in case.noenv or i in case.body:
            env = echo_env(tc, r, what)
            for name, value in case.env.get(i, {}).items():
                tc.assertIn(name, env, "response %d: %s not in the environ: "
                            "%s" % (i + 1, name, what))
                tc.assertEqual(env[name], value, "response %d: %s: %s" % (
                    i + 1, name, what))
            for name in case.noenv.get(i, []):
                tc.assertNotIn(name, env, "response %d: %s in the environ: "
                               "%s" % (i + 1, name, what))
            if i in case.body:
                tc.assertEqual(env["body"],
                               case.body[i].decode("latin-1"),
                               "response %d: body: %s" % (i + 1, what))
    extra = final[n:]
    probe_answered = len(extra) == 1 and extra[0].status == 200 and (
        case.app != "echo" or echo_env(tc, extra[0], what).get(
            "PATH_INFO") == "/__probe")
    if case.then == "probe":
        tc.assertTrue(probe_answered, "the request after the case was not "
                      "answered as the next one: " + what)
    elif case.then == "close":
        tc.assertEqual(extra, [], "answered bytes after the case: " + what)
    else:
        tc.assertTrue(extra == [] or probe_answered,
                      "unexpected responses after the case: " + what)
    if case.probe:
        # The probe asks to close; after an error the server closes.
        tc.assertTrue(closed, "connection left open: " + what)
    if case.within is not None:
        tc.assertIsNotNone(delay, "no response: " + what)
        tc.assertLess(delay, case.within, "answered after %.2f s: %s" % (
            delay, what))


def make_test(case, bytewise):
    def test(self):
        data, closed, delay = exchange(self.server.port, case, bytewise)
        check(self, case, data, closed, delay)
    test.__doc__ = "%s %s: %s" % (case.name, "one-byte writes" if bytewise
                                  else "one write", case.ref)
    if case.xfail and not STRICT:
        test = unittest.expectedFailure(test)
    return test


class CorpusBase(unittest.TestCase):
    app = "echo"
    settings = {}

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.app, server=dict(cls.settings), allow=[PEER])
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)


def _make_classes():
    groups = {}
    for case in CASES:
        groups.setdefault(case.server_key(), []).append(case)
    for n, ((app, settings), cases) in enumerate(sorted(groups.items())):
        label = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(
            [app] + ["%s_%s" % kv for kv in settings]))
        attrs = {"app": app, "settings": dict(settings)}
        for case in cases:
            base = "test_" + case.name.replace("-", "_")
            attrs[base + "_whole"] = make_test(case, False)
            attrs[base + "_bytes"] = make_test(case, True)
        name = "Corpus_%s" % label
        globals()[name] = type(name, (CorpusBase,), attrs)


_make_classes()


class CorpusFileTest(unittest.TestCase):
    def test_every_case_names_its_rule(self):
        self.assertGreater(len(CASES), 0)
        for c in CASES:
            self.assertTrue(re.search(r"RFC \d+|smuggl|spoof|forkd|vector|"
                                      r"issue \d", c.ref),
                            "%s: ref names no RFC or vector" % c.where())


def load_tests(loader, tests, pattern):
    # CorpusBase itself has no tests and no server.
    suite = unittest.TestSuite()
    for name, obj in sorted(globals().items()):
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase) \
                and obj is not CorpusBase:
            suite.addTests(loader.loadTestsFromTestCase(obj))
    return suite


if __name__ == "__main__":
    unittest.main()
