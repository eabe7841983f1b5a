#!/bin/sh
# test.sh: run every test of `make test` and end with one summary line.
# Unit suites and integration tests run against build/ and again against the
# ASan/UBSan build in build/asan/.  Exit status is non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
pass=0
fail=0
failed=""
# scripts/unittest-run appends each run's count of skipped tests here.
FORKD_SKIPS=$(mktemp)
export FORKD_SKIPS
trap 'rm -f "$FORKD_SKIPS"' EXIT

step() { # name command...
    name=$1
    shift
    if "$@"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        failed="$failed $name"
        echo "FAILED: $name" >&2
    fi
}

for b in build build/asan; do
    for t in "$b"/tests/test_*; do
        [ -x "$t" ] || continue
        step "$t" env CK_FORK=yes "$t"
    done
    step "integration($b)" env FORKD_BIN="$b/forkd" FORKD_APPS="$b/app" \
        timeout 900 "$PYTHON" scripts/unittest-run tests/integration
done

step debian "$PYTHON" scripts/unittest-run tests/packaging

# The fuzzer's regressions and seeds, once each, under ASan and UBSan.
step fuzz-replay make --no-print-directory fuzz-replay

skipped=$(awk '{ n += $1 } END { print n + 0 }' "$FORKD_SKIPS")
if [ "$fail" -eq 0 ]; then
    echo "make test: all $pass steps passed (unit, integration, fuzz replay; plain and ASan/UBSan; the Debian package); $skipped tests skipped (each named above with its reason)"
else
    echo "make test: $fail of $((pass + fail)) steps FAILED:$failed; $skipped tests skipped"
    exit 1
fi
