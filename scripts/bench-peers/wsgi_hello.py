"""wsgi_hello: the plain WSGI hello of scripts/bench, the Python peer of
app/hello.c, served the same way by every WSGI server of the bench:

    build/forkd -w 2 build/app/wsgi.so -o module=scripts/bench-peers/wsgi_hello.py:app
    gunicorn -w 2 -k sync|gthread --chdir scripts/bench-peers wsgi_hello:app
    uwsgi --plugin python3 --wsgi-file scripts/bench-peers/wsgi_hello.py --callable app ...
    mod_wsgi: WSGIScriptAlias / scripts/bench-peers/wsgi_hello.py, WSGICallableObject app

    GET (any path)   200 "Hello, World!\n", text/plain, with a Content-Length

Standard library only; nothing else: the figure is the server's.
"""

HELLO = b"Hello, World!\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))]


def app(environ, start_response):
    start_response("200 OK", list(HEADERS))
    return [HELLO]
