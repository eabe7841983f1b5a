"""gunicorn_app: the WSGI peer of forkd's example handlers, for scripts/bench.

    gunicorn -w 2 -k sync|gthread [--threads T] --chdir scripts/bench-peers \
        gunicorn_app:app

    GET /             "Hello, World!\n"                     (app/hello.c)
    GET /sleep?ms=N   a blocking sleep of N ms (default 100) (app/sleep.c)
    GET /cpu?us=N     N microseconds of this thread's CPU time (default 1000),
                      spent in a loop: the same time as app/cpu.c's default
                      work, which scripts/bench measures on forkd and passes
                      here (Python cannot do that work in that time)
    POST /upload      reads the whole body in 64 KiB steps and answers its
                      length and CRC-32 (app/sink.c answers FNV-1a; a byte
                      loop in Python would measure Python, not the server)

Standard library only.
"""

import time
import zlib
from urllib.parse import parse_qs

HELLO = b"Hello, World!\n"


def _number(environ, key, default):
    values = parse_qs(environ.get("QUERY_STRING", "")).get(key)
    try:
        return int(values[0]) if values else default
    except ValueError:
        return default


def _reply(start_response, body, status="200 OK"):
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/":
        return _reply(start_response, HELLO)
    if path == "/sleep":
        ms = _number(environ, "ms", 100)
        time.sleep(ms / 1000.0)
        return _reply(start_response, b"slept %d ms\n" % ms)
    if path == "/cpu":
        us = _number(environ, "us", 1000)
        end = time.thread_time() + us / 1e6
        rounds = 0
        while time.thread_time() < end:
            rounds += 1
        return _reply(start_response, b"%d\n" % rounds)
    if path == "/upload":
        stream = environ["wsgi.input"]
        total, crc = 0, 0
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            total += len(chunk)
            crc = zlib.crc32(chunk, crc)
        return _reply(start_response, b"%d %08x\n" % (total, crc))
    return _reply(start_response, b"not found\n", "404 Not Found")
