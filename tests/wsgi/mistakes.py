"""mistakes: WSGI apps that break PEP 3333's rules or raise, for
tests/integration/test_wsgi.py.  Each path makes one mistake; forkd's wsgi
handler must answer 500 (or, once body bytes are out, close the
connection), log one line naming the mistake (a traceback for an
exception, with the request's method and path) and keep serving.

    /str            returns a str
    /bytes          returns a bytes object (iterating it gives ints)
    /non-iterable   returns 42
    /no-start       returns a body without calling start_response
    /no-start-empty returns [] without calling start_response
    /yield-first    yields body bytes before calling start_response
    /latin          a header value that is not latin-1
    /hop            a hop-by-hop header (Connection)
    /bad-status     the status "OK"
    /twice          start_response twice without exc_info
    /yield-str      yields a str
    /write-str      write() of a str
    /raise          raises before any body
    /raise-late     raises after the first body bytes
    /close-raises   close() raises after a complete body
    /crash          os.abort(), as a crashing C extension would
    /ok, /pid       fine: the worker still serves
"""

import os

TEXT = [("Content-Type", "text/plain")]


def _start(start_response):
    start_response("200 OK", TEXT)


def raise_late(start_response):
    _start(start_response)
    yield b"part 1\n" + b"p" * 65536  # more than forkd buffers: sent
    raise RuntimeError("boom after the body began")


def yield_first(start_response):
    yield b"too early\n"
    _start(start_response)


def yield_str(start_response):
    _start(start_response)
    yield "not bytes"


class CloseRaises:
    def __iter__(self):
        return iter([b"complete\n"])

    def close(self):
        raise KeyError("boom in close")


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/ok":
        _start(start_response)
        return [b"ok\n"]
    if path == "/pid":
        _start(start_response)
        return [b"%d\n" % os.getpid()]
    if path == "/str":
        _start(start_response)
        return "a str, not a list of bytes"
    if path == "/bytes":
        _start(start_response)
        return b"bytes, not a list of bytes"
    if path == "/non-iterable":
        _start(start_response)
        return 42
    if path == "/no-start":
        return [b"no start_response\n"]
    if path == "/no-start-empty":
        return []
    if path == "/yield-first":
        return yield_first(start_response)
    if path == "/latin":
        start_response("200 OK", TEXT + [("X-Euro", "\u20ac")])
        return [b"never\n"]
    if path == "/hop":
        start_response("200 OK", TEXT + [("Connection", "close")])
        return [b"never\n"]
    if path == "/bad-status":
        start_response("OK", TEXT)
        return [b"never\n"]
    if path == "/twice":
        _start(start_response)
        _start(start_response)
        return [b"never\n"]
    if path == "/yield-str":
        return yield_str(start_response)
    if path == "/write-str":
        write = start_response("200 OK", TEXT)
        write("a str")
        return []
    if path == "/raise":
        raise RuntimeError("boom in the app")
    if path == "/raise-late":
        return raise_late(start_response)
    if path == "/crash":
        os.abort()
    if path == "/close-raises":
        _start(start_response)
        return CloseRaises()
    start_response("404 Not Found", TEXT)
    return [b"not found\n"]
