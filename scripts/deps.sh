#!/bin/sh
# deps.sh: install the Debian packages that build, test and bench forkd need.
# Idempotent and quiet when everything is present; apt-get as root, sudo
# otherwise.  Usage: scripts/deps.sh [build|test|bench|all]  (default: test)
set -eu

build="gcc make pkg-config libhttp-parser-dev libinih-dev check python3-dev"
test="$build curl wrk python3 dpkg-dev debhelper lintian mandoc systemd gcovr python3-matplotlib valgrind clang libclang-rt-14-dev clang-format nginx gunicorn python3-flask python3-uvicorn python3-starlette strace python3-django prometheus"
bench="$test wrk strace gunicorn python3-flask python3-uvicorn python3-starlette uwsgi-core uwsgi-plugin-python3 apache2-bin libapache2-mod-wsgi-py3 apache2-utils libcap-dev libpcre3-dev libssl-dev uuid-dev zlib1g-dev"

case "${1:-test}" in
build) want=$build ;;
test) want=$test ;;
bench | all) want=$bench ;;
*) echo "usage: $0 [build|test|bench|all]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
else
    sudo="sudo"
fi
echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has empty package lists; update once, quietly.
$sudo apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
