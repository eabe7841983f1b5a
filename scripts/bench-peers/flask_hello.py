"""flask_hello: the Flask hello of scripts/bench: the smallest Flask app,
served the same way by every WSGI server of the bench (see wsgi_hello.py for
the command lines; the callable is app).

    GET /   200 "Hello, World!\n", text/plain, with a Content-Length

Needs python3-flask (Debian): every server runs /usr/bin/python3's.
"""

from flask import Flask, Response

app = Flask(__name__)
HELLO = b"Hello, World!\n"


@app.route("/")
def hello():
    return Response(HELLO, mimetype="text/plain")
