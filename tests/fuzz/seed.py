#!/usr/bin/env python3
"""seed: write the fuzzer's seed corpus (tests/fuzz/corpus) from the request
corpus (tests/corpus/*.txt).  Each case gives two inputs in
fuzz_request.c's format: NAME.whole (control byte 0x00: the bytes arrive at
once) and NAME.bytes (control byte 0x01 and piece size 0x00: one byte per
read while the head arrives); cases of the hello handler set bits 6-7 of
the control byte (0xc0: the harness's handler that leaves bodies unread).  The bytes are the case's sends followed by
its probe request, as test_corpus.py sends them.  Run from anywhere:

    python3 tests/fuzz/seed.py [OUTDIR]

OUTDIR (default tests/fuzz/corpus) is emptied of *.whole and *.bytes
first, so that renamed or removed cases leave nothing behind."""

import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "corpus"))
import corpus  # noqa: E402

# Inputs longer than this are not useful seeds (the fuzzer's -max_len).
MAX_SEED = 65536


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    for old in glob.glob(os.path.join(out, "*.whole")) + \
            glob.glob(os.path.join(out, "*.bytes")):
        os.unlink(old)
    n = 0
    for case in corpus.load():
        data = case.request_bytes()
        if case.probe:
            data += corpus.PROBE
        if len(data) + 2 > MAX_SEED:
            continue
        # Cases for the hello handler (bodies left unread) run with
        # fuzz_request's lazy handler (bits 6-7 of the control byte).
        lazy = 0xc0 if case.app == "hello" else 0
        for suffix, ctl in (("whole", bytes([lazy])),
                            ("bytes", bytes([lazy | 1, 0]))):
            with open(os.path.join(out, "%s.%s" % (case.name, suffix)),
                      "wb") as f:
                f.write(ctl + data)
            n += 1
    print("seed: %d inputs in %s" % (n, out))


if __name__ == "__main__":
    main()
