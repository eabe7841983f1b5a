"""not_callable: `application` is not a callable
(tests/integration/test_wsgi.py)."""

application = 42
