"""bad_syntax: does not compile (tests/integration/test_wsgi.py)."""


def application(environ, start_response)
    return []
