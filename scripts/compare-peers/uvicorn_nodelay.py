"""uvicorn_nodelay: uvicorn's command line, with the upstream fix for
Kludex/uvicorn#3149 applied, for scripts/compare's "uvicorn, N processes
(TCP_NODELAY)" rows.

With --workers N, uvicorn (0.17.6 in Debian 12, and later versions while
that issue is open) binds the listening socket itself with proto 0; the
sockets it accepts inherit proto 0, and asyncio sets TCP_NODELAY only on
sockets whose proto is IPPROTO_TCP.  Nagle's algorithm then holds every
response after a keep-alive connection's first until the client's delayed
ACK, about 40 ms.  This wrapper creates that socket with proto IPPROTO_TCP
(the one-line change of the upstream fix), then runs uvicorn unchanged:

    python3 scripts/compare-peers/uvicorn_nodelay.py --workers 2 \
        --app-dir scripts/compare-peers asgi_app:app

Needs python3-uvicorn (Debian): run /usr/bin/python3.
"""

import socket
import sys

import uvicorn.config
from uvicorn.main import main

_bind_socket = uvicorn.config.Config.bind_socket


def bind_socket(self):
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and \
            sock.type == socket.SOCK_STREAM and sock.proto == 0:
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP,
                             fileno=sock.detach())
    return sock


uvicorn.config.Config.bind_socket = bind_socket

if __name__ == "__main__":
    sys.exit(main())
