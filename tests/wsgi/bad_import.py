"""bad_import: raises while it is imported (tests/integration/test_wsgi.py)."""


def _connect():
    raise RuntimeError("no database at import time")


_connect()


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"unreachable\n"]
