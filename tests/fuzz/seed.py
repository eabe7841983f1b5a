#!/usr/bin/env python3
"""seed: write the fuzzer's seed corpus (tests/fuzz/corpus).  Inputs are in
fuzz_request.c's format: control byte, for handlers other than echo an ext
byte, piece sizes, then the client's bytes.

From the request corpus (tests/corpus/*.txt), each case gives NAME.whole
(control byte 0x00: the bytes arrive at once) and NAME.bytes (0x01 and
piece size 0x00: one byte per read, head and body); cases of the hello
handler run with the harness's lazy handler (control byte 0xc0/0xc1, ext
0x00: bodies left unread for the drain).  Echo cases also give
NAME.careless: the careless handler reading 7 bytes at a time, the bytes
in pieces of 3 and 5.  The bytes are the case's sends followed by its
probe request, as test_corpus.py sends them.

EXTRA adds NAME.seed inputs for the harness's own handlers and the request
smuggling shapes of issue 11: chunk data holding a request followed by
"\\rX", valid chunked bodies over the limit whose last chunk holds a
request, a handler that starts its response twice.  Run from anywhere:

    python3 tests/fuzz/seed.py [OUTDIR]

OUTDIR (default tests/fuzz/corpus) is emptied of *.whole, *.bytes,
*.careless and *.seed first, so that renamed or removed cases leave nothing
behind."""

import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "corpus"))
import corpus  # noqa: E402

# Inputs longer than this are not useful seeds (the fuzzer's -max_len).
MAX_SEED = 65536

# Ext byte: handler (bits 0-1), limit_request_body (bits 2-3), the rest
# sent at once when a head is complete (bit 4), read size (bits 5-7).
LAZY, CARELESS, TWICE, ECHO = range(4)
LIMIT = {"default": 0, 16: 1, "none": 2, 8192: 3}
READ = {1: 0, 2: 1, 3: 2, 7: 3, 64: 4, 1000: 5, 4096: 6, 65536: 7}


def control(handler=ECHO, limit="default", whole=False, read=4096,
            pieces=(), bits=0):
    """The control bytes: byte 0 (with bits: 0x08 small limits, 0x10 no
    keep-alive, 0x20 trusted peer), the ext byte, the piece cycle."""
    assert len(pieces) <= 7 and all(1 <= p <= 256 for p in pieces)
    ext = handler | LIMIT[limit] << 2 | (0x10 if whole else 0) | \
        READ[read] << 5
    return bytes([0xc0 | bits | len(pieces), ext]) + \
        bytes(p - 1 for p in pieces)


def split_at(offset):
    """Pieces whose first write ends at offset, then 256 at a time."""
    pieces = []
    while offset > 256 and len(pieces) < 5:
        pieces.append(256)
        offset -= 256
    assert 1 <= offset <= 256, "split too far for the cycle"
    return tuple(pieces) + (offset, 256)


def chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


def head(method, target, *fields, version=b"HTTP/1.1"):
    return method + b" " + target + b" " + version + b"\r\n" + \
        b"".join(f + b"\r\n" for f in fields) + b"\r\n"


SMUGGLED = head(b"GET", b"/smuggled", b"Host: x")
CHUNKED = b"Transfer-Encoding: chunked"


def extra():
    """(name, control bytes, client bytes) of the hand-made seeds."""
    out = []
    probe = corpus.PROBE

    # Issue 11, finding 1: chunk data "0\r\n\r\nGET /smuggled ..." followed
    # by "\rX" instead of CRLF, the "\rX" in a second write.
    first = head(b"POST", b"/first", b"Host: x", CHUNKED)
    data = b"0\r\n\r\n" + SMUGGLED
    body = b"%x\r\n" % len(data) + data
    msg = first + body + b"\rX" + probe
    split = split_at(len(first) + len(body))
    for name, ctl in (
            ("careless-cr-x", control(CARELESS, pieces=split)),
            ("careless-cr-x-read1", control(CARELESS, read=1, pieces=split)),
            ("careless-cr-x-whole", control(CARELESS, whole=True)),
            ("echo-cr-x", control(ECHO, pieces=split)),
            ("lazy-cr-x", control(LAZY, pieces=split)),
            ("twice-cr-x", control(TWICE, read=64, pieces=split))):
        out.append((name, ctl, msg))
    # The same with a CR but no LF, and with an LF alone.
    for name, tail in (("careless-cr-only", b"\r"), ("careless-lf-only",
                                                      b"\n")):
        out.append((name, control(CARELESS, read=7, pieces=split),
                    first + body + tail + SMUGGLED + probe))

    # Issue 11, finding 1: a valid chunked body over limit_request_body
    # whose last chunk holds a request.
    for limit, sizes in ((16, (16,)), (8192, (4096, 4096))):
        body = b"".join(chunk(b"x" * n) for n in sizes) + chunk(SMUGGLED) + \
            b"0\r\n\r\n"
        for read in (1000, 4096, 65536):
            out.append(("careless-over-%d-read%d" % (limit, read),
                        control(CARELESS, limit=limit, read=read),
                        first + body + probe))
        out.append(("careless-over-%d-bytes" % limit,
                    control(CARELESS, limit=limit, read=7, pieces=(1,)),
                    first + body + probe))
        out.append(("lazy-over-%d" % limit, control(LAZY, limit=limit),
                    first + body + probe))
        out.append(("echo-over-%d" % limit, control(ECHO, limit=limit),
                    first + body + probe))
    # Content-Length over the limit, and a body cut short by EOF.
    post = head(b"POST", b"/cl", b"Host: x", b"Content-Length: 20")
    out.append(("careless-cl-over-16", control(CARELESS, limit=16),
                post + b"x" * 20 + probe))
    out.append(("careless-cl-short", control(CARELESS, pieces=(3,)),
                post + b"abc"))
    # Malformed chunk lines, each followed by a request.
    for name, body in (("size-junk", b"5x\r\nhello\r\n0\r\n\r\n"),
                       ("size-bws", b"5 \r\nhello\r\n0\r\n\r\n"),
                       ("size-lf", b"5\nhello\r\n0\r\n\r\n"),
                       ("data-long", b"3\r\nhello\r\n0\r\n\r\n"),
                       ("ext-lf", b"5;a=b\nhello\r\n0\r\n\r\n"),
                       ("trailer-fold", b"0\r\nA: b\r\n c\r\n\r\n"),
                       ("no-last-crlf", b"0\r\n")):
        out.append(("careless-" + name, control(CARELESS, read=3, pieces=(2,)),
                    first + body + SMUGGLED + probe))
    # Valid bodies, kept alive, then pipelined requests.
    valid = (b"5;ext=\"q;x\"\r\nhello\r\n0005\r\nworld\r\n0\r\n"
             b"Trailer-A: 1\r\n\r\n")
    two = first + valid + head(b"POST", b"/cl", b"Host: x",
                               b"Content-Length: 5") + b"12345" + probe
    for name, ctl in (
            ("careless-pipelined", control(CARELESS, read=2)),
            ("careless-pipelined-bytes", control(CARELESS, pieces=(1,))),
            ("careless-pipelined-split", control(CARELESS, read=3,
                                                 pieces=(5, 3, 7))),
            ("lazy-pipelined-bytes", control(LAZY, pieces=(1,))),
            ("lazy-pipelined-split", control(LAZY, pieces=(9, 2))),
            ("echo-pipelined-bytes", control(ECHO, pieces=(1,))),
            ("echo-pipelined-whole", control(ECHO, whole=True,
                                             pieces=(4,)))):
        out.append((name, ctl, two))
    out.append(("careless-empty-lines", control(CARELESS),
                first + valid + b"\r\n\r\n" + probe))

    # Issue 11, finding 2: start_response twice (PATH_INFO
    # /L1/W1/L2/W2/STATUS/STEP).
    for target in (b"/16000/16000/10/1000", b"/-/20000/10/5",
                   b"/5/3/100/100", b"/10/10/10/10", b"/x/16384/16385/16385",
                   b"/x/16385/5/5", b"/5/5/5/5/204", b"/5/5/5/5/304",
                   b"/10/20/10/20", b"/x/100/x/70000/200/1000",
                   b"/x/16000/x/17000/404/3000", b"/0/0/0/0",
                   b"/100/100/5/5/201/1"):
        name = "twice" + target.decode().replace("-", "n").replace("/", "-")
        out.append((name, control(TWICE),
                    head(b"GET", target, b"Host: x") + probe))
    out.append(("twice-head", control(TWICE),
                head(b"HEAD", b"/100/100/5/5", b"Host: x") + probe))
    out.append(("twice-http10", control(TWICE),
                head(b"GET", b"/x/10/x/20000", version=b"HTTP/1.0") +
                probe))
    out.append(("twice-http10-keep", control(TWICE),
                head(b"GET", b"/x/10/x/20000", b"Connection: keep-alive",
                     version=b"HTTP/1.0") + probe))
    out.append(("twice-body-read", control(TWICE, read=7, pieces=(3,)),
                head(b"POST", b"/16000/16000/10/10", b"Host: x", CHUNKED) +
                valid + probe))
    out.append(("twice-body-unread", control(TWICE, pieces=(3,)),
                head(b"POST", b"/5/5/9/9", b"Host: x", CHUNKED) + valid +
                probe))
    out.append(("twice-expect", control(TWICE, read=64),
                head(b"POST", b"/5/5/9/9", b"Host: x",
                     b"Expect: 100-continue", b"Content-Length: 3") +
                b"abc" + probe))
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    for suffix in ("whole", "bytes", "careless", "seed"):
        for old in glob.glob(os.path.join(out, "*." + suffix)):
            os.unlink(old)
    n = 0

    def write(name, data):
        nonlocal n
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        n += 1

    for case in corpus.load():
        data = case.request_bytes()
        if case.probe:
            data += corpus.PROBE
        if len(data) + 4 > MAX_SEED:
            continue
        if case.app == "hello":
            # The harness's lazy handler leaves bodies unread, as hello.
            write(case.name + ".whole", bytes([0xc0, 0]) + data)
            write(case.name + ".bytes", bytes([0xc1, 0, 0]) + data)
            continue
        write(case.name + ".whole", bytes([0]) + data)
        write(case.name + ".bytes", bytes([1, 0]) + data)
        write(case.name + ".careless",
              control(CARELESS, read=7, pieces=(3, 5)) + data)
    for name, ctl, data in extra():
        assert len(ctl) + len(data) <= MAX_SEED
        write(name + ".seed", ctl + data)
    print("seed: %d inputs in %s" % (n, out))


if __name__ == "__main__":
    main()
