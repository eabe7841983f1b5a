"""flask_app: the WSGI side of `make compare` (scripts/compare), for gunicorn.

The same endpoints as forkd's example handlers, blocking as they block:

    GET /                 "Hello, World!\n" (the readiness check)
    GET /resource/<id>    sleeps DELAY, answers the JSON string
                          "dummy_result_id_<id>"              (app/resources.c)
    GET /resources        five such downloads at once, in five threads of its
                          own, within one request: the JSON array of the five
    GET /sleep?ms=N       a blocking sleep of N ms (default 100)  (app/sleep.c)
    GET /cpu?ms=N         N ms of this thread's CPU time, spent in a loop
                          (default 5): as long as app/cpu.c's work that
                          scripts/compare calibrates to the same time (Python
                          doing the same rounds would measure Python)

DELAY is COMPARE_DELAY_MS milliseconds (default 5000), forkd's delay_ms.

    COMPARE_DELAY_MS=1000 gunicorn -w 1 -k sync \
        --chdir scripts/compare-peers flask_app:app

Needs python3-flask (Debian): run it under /usr/bin/python3's gunicorn.
"""

import concurrent.futures
import json
import os
import time

from flask import Flask, Response, request

DELAY = int(os.environ.get("COMPARE_DELAY_MS", "5000")) / 1000.0
N_RESOURCES = 5

app = Flask(__name__)


def _number(key, default):
    try:
        return max(0, int(request.args.get(key, default)))
    except ValueError:
        return default


def _download(rid):
    """One "download": block the calling thread DELAY seconds."""
    time.sleep(DELAY)
    return "dummy_result_id_%s" % rid


def _json(value):
    return Response(json.dumps(value, separators=(",", ":")),
                    mimetype="application/json")


@app.route("/")
def hello():
    return Response("Hello, World!\n", mimetype="text/plain")


@app.route("/resource/<rid>")
def resource(rid):
    return _json(_download(rid))


@app.route("/resources")
def resources():
    with concurrent.futures.ThreadPoolExecutor(N_RESOURCES) as pool:
        results = list(pool.map(_download, range(1, N_RESOURCES + 1)))
    return _json(results)


@app.route("/sleep")
def sleep():
    ms = _number("ms", 100)
    time.sleep(ms / 1000.0)
    return Response("slept %d ms\n" % ms, mimetype="text/plain")


@app.route("/cpu")
def cpu():
    ms = _number("ms", 5)
    end = time.thread_time() + ms / 1000.0
    rounds = 0
    while time.thread_time() < end:
        rounds += 1
    return Response("%d\n" % rounds, mimetype="text/plain")
