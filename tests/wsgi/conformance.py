"""conformance: the WSGI apps of tests/integration/test_wsgi.py.

`application` runs every path but /raw/... under the standard library's
wsgiref.validate.validator, so that a PEP 3333 violation by forkd's wsgi
handler (or by these apps) raises AssertionError: its traceback lands in
forkd's error log, or, for the validator's "garbage collected without
being closed" check, in forkd's stderr.  The validator's warnings are
made errors too.  /raw/... paths run unwrapped: the validator hides the
result's type, so the list and file_wrapper fast paths need them.

    GET  /hello              a one-element list
    GET  /environ            the environ as JSON (types of the non-str)
    GET  /raw/environ        the same, unvalidated (the validator wraps
                             wsgi.input and wsgi.errors)
    GET  /stream?n=N         a generator of N pieces, no Content-Length
    GET  /write              the write callable, then a returned piece
    GET  /exc_info           start_response again with exc_info, in time
    GET  /exc_info_late      ... after a body byte: re-raised, truncated
    GET  /close?marker=PATH  an iterable whose close() creates PATH
    GET  /file?path=PATH     wsgi.file_wrapper, iterated (validated)
    POST /upload             read(65536) to the end: length and sha256
    POST /readline           readline(), readline(4), then iteration
    POST /readlines?hint=N   readlines(N), then read(-1) of the rest
    GET  /errors             lines to wsgi.errors
    GET  /slow-stream?marker=PATH  200 pieces of 64 KiB; close() marks
    GET  /sleep?s=S          time.sleep(S)
    GET  /pid                the worker's pid
    GET  /big?mb=N           N MiB in 64 KiB pieces
    GET  /raw/one?n=N        [b"x" * N], unvalidated (Content-Length)
    GET  /raw/sendfile?path=PATH[&skip=N][&length=N]  file_wrapper of a
                             regular file, unvalidated (sendfile)
    GET  /raw/bytesio?n=N    file_wrapper of a BytesIO (no fileno)
    POST /raw/read-all       read(0), then read() with no size (which the
                             validator forbids): length and sha256
"""

import atexit
import hashlib
import io
import json
import os
import sys
import time
import urllib.parse
import warnings
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)

# Graceful worker exit runs Py_FinalizeEx, hence atexit: the QUIT test
# looks for this file (FORKD_WSGI_ATEXIT names it).
if os.environ.get("FORKD_WSGI_ATEXIT"):
    atexit.register(lambda: open(os.environ["FORKD_WSGI_ATEXIT"] + "." +
                                 str(os.getpid()), "w").close())

TEXT = [("Content-Type", "text/plain")]


def _query(environ):
    return dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))


def _json(start_response, value):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(value, sort_keys=True).encode()]


def hello(environ, start_response):
    start_response("200 OK", TEXT)
    return [b"Hello, World!\n"]


def environ_json(environ, start_response):
    out = {}
    for k, v in environ.items():
        if isinstance(v, str):
            out[k] = v
        elif isinstance(v, (bool, tuple)):
            out[k] = [type(v).__name__, list(v) if isinstance(v, tuple)
                      else v]
        else:
            out[k] = ["type", type(v).__name__]
    return _json(start_response, out)


def stream(environ, start_response):
    n = int(_query(environ).get("n", "5"))
    start_response("200 OK", TEXT)
    for i in range(n):
        yield b"piece %d\n" % i


def write(environ, start_response):
    w = start_response("200 OK", TEXT)
    w(b"written 1\n")
    w(b"")
    w(b"written 2\n")
    return [b"returned\n"]


def exc_info(environ, start_response):
    start_response("200 OK", TEXT)
    try:
        raise ValueError("caught before the body")
    except ValueError:
        start_response("500 Oops", TEXT, sys.exc_info())
    return [b"recovered\n"]


def exc_info_late(environ, start_response):
    start_response("200 OK", TEXT)
    yield b"part 1\n" + b"p" * 65536  # more than forkd buffers: sent
    try:
        raise ValueError("late failure after the body began")
    except ValueError:
        # PEP 3333: the headers are out, so this re-raises.
        start_response("500 Oops", TEXT, sys.exc_info())
    yield b"never sent\n"


class Closing:
    """An iterable whose close() leaves a file behind."""

    def __init__(self, marker, pieces, size):
        self.marker = marker
        self.pieces = pieces
        self.size = size

    def __iter__(self):
        for i in range(self.pieces):
            if self.size > 100:
                time.sleep(0.005)
            yield (b"%d" % (i % 10)) * self.size

    def close(self):
        if self.marker:
            with open(self.marker, "w") as f:
                f.write("closed\n")


def close(environ, start_response):
    start_response("200 OK", TEXT)
    return Closing(_query(environ).get("marker"), 3, 4)


def slow_stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Closing(_query(environ).get("marker"), 200, 65536)


def file(environ, start_response):
    path = _query(environ)["path"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](open(path, "rb"), 4096)


def upload(environ, start_response):
    h = hashlib.sha256()
    n = 0
    while True:
        data = environ["wsgi.input"].read(65536)
        if not data:
            break
        h.update(data)
        n += len(data)
    return _json(start_response, {"length": n, "sha256": h.hexdigest()})


def readline(environ, start_response):
    inp = environ["wsgi.input"]
    lines = [inp.readline(), inp.readline(4)]
    lines += list(inp)
    return _json(start_response, [x.decode("latin-1") for x in lines])


def readlines(environ, start_response):
    inp = environ["wsgi.input"]
    hint = int(_query(environ).get("hint", "1"))
    lines = inp.readlines(hint)
    rest = inp.read(1 << 30)
    return _json(start_response, {
        "lines": [x.decode("latin-1") for x in lines],
        "rest": rest.decode("latin-1")})


def errors(environ, start_response):
    err = environ["wsgi.errors"]
    err.write("wsgi-errors-marker one\n")
    err.writelines(["wsgi-errors-marker ", "two\n"])
    err.write("wsgi-errors-marker partial")
    err.flush()
    start_response("200 OK", TEXT)
    return [b"logged\n"]


def sleep(environ, start_response):
    time.sleep(float(_query(environ).get("s", "1")))
    start_response("200 OK", TEXT)
    return [b"slept\n"]


def pid(environ, start_response):
    start_response("200 OK", TEXT)
    return [b"%d\n" % os.getpid()]


def big(environ, start_response):
    mb = int(_query(environ).get("mb", "8"))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    piece = b"b" * 65536
    return (piece for _ in range(mb * 16))


ROUTES = {
    "/hello": hello, "/environ": environ_json, "/stream": stream,
    "/write": write, "/exc_info": exc_info, "/exc_info_late": exc_info_late,
    "/close": close, "/slow-stream": slow_stream, "/file": file,
    "/upload": upload, "/readline": readline, "/readlines": readlines,
    "/errors": errors, "/sleep": sleep, "/pid": pid, "/big": big,
}


def not_found(environ, start_response):
    start_response("404 Not Found", TEXT)
    return [b"not found\n"]


@validator
def validated(environ, start_response):
    app = ROUTES.get(environ["PATH_INFO"], not_found)
    return app(environ, start_response)


def raw_one(environ, start_response):
    start_response("200 OK", TEXT)
    return [b"x" * int(_query(environ).get("n", "100000"))]


def raw_sendfile(environ, start_response):
    q = _query(environ)
    f = open(q["path"], "rb")
    if "skip" in q:
        f.read(int(q["skip"]))  # buffered: tell() is ahead of the fd's
    headers = [("Content-Type", "application/octet-stream")]
    if "length" in q:
        headers.append(("Content-Length", q["length"]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f)


def raw_bytesio(environ, start_response):
    n = int(_query(environ).get("n", "10000"))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    data = bytes(i % 251 for i in range(n))
    return environ["wsgi.file_wrapper"](io.BytesIO(data), 1000)


def raw_read_all(environ, start_response):
    inp = environ["wsgi.input"]
    assert inp.read(0) == b"" and inp.readline(0) == b""
    data = inp.read()
    assert inp.read() == b"" and inp.readline() == b""
    return _json(start_response, {"length": len(data),
                                  "sha256": hashlib.sha256(data).hexdigest()})


RAW = {"/raw/environ": environ_json, "/raw/read-all": raw_read_all, "/raw/one": raw_one, "/raw/sendfile": raw_sendfile,
       "/raw/bytesio": raw_bytesio}


def application(environ, start_response):
    raw = RAW.get(environ["PATH_INFO"])
    if raw is not None:
        return raw(environ, start_response)
    return validated(environ, start_response)
