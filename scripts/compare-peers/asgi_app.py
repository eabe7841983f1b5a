"""asgi_app: the async side of `make compare` (scripts/compare), for uvicorn.

A Starlette app with forkd's endpoints, where every wait is an await on
asyncio.sleep instead of a blocking call:

    GET /                 "Hello, World!\n" (the readiness check)
    GET /resource/<id>    awaits DELAY, answers the JSON string
                          "dummy_result_id_<id>"
    GET /resources        five such downloads gathered (asyncio.gather)
                          within one request: the JSON array of the five
    GET /sleep?ms=N       awaits N ms (default 100)
    GET /cpu?ms=N         N ms of CPU time spent in a loop (default 5), in
                          the event loop's thread: nothing else of this
                          process runs meanwhile (there is no await to give
                          way at), which is what the model says

DELAY is COMPARE_DELAY_MS milliseconds (default 5000).

    COMPARE_DELAY_MS=1000 python3 -m uvicorn --app-dir scripts/compare-peers \
        asgi_app:app

Needs python3-starlette and python3-uvicorn (Debian): run /usr/bin/python3.
"""

import asyncio
import os
import time

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

DELAY = int(os.environ.get("COMPARE_DELAY_MS", "5000")) / 1000.0
N_RESOURCES = 5


def _number(request, key, default):
    try:
        return max(0, int(request.query_params.get(key, default)))
    except ValueError:
        return default


async def _download(rid):
    """One "download": wait DELAY seconds without blocking the loop."""
    await asyncio.sleep(DELAY)
    return "dummy_result_id_%s" % rid


async def hello(request):
    return PlainTextResponse("Hello, World!\n")


async def resource(request):
    return JSONResponse(await _download(request.path_params["rid"]))


async def resources(request):
    results = await asyncio.gather(
        *(_download(i) for i in range(1, N_RESOURCES + 1)))
    return JSONResponse(list(results))


async def sleep(request):
    ms = _number(request, "ms", 100)
    await asyncio.sleep(ms / 1000.0)
    return PlainTextResponse("slept %d ms\n" % ms)


async def cpu(request):
    ms = _number(request, "ms", 5)
    end = time.thread_time() + ms / 1000.0
    rounds = 0
    while time.thread_time() < end:
        rounds += 1
    return PlainTextResponse("%d\n" % rounds)


app = Starlette(routes=[
    Route("/", hello),
    Route("/resource/{rid}", resource),
    Route("/resources", resources),
    Route("/sleep", sleep),
    Route("/cpu", cpu),
])
