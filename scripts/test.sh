#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run them.
# Debian's chromium (browser tests), curl, redis-server (the hub's tests
# start their own), nginx (tests/test_proxy.py) and openssl (a test
# certificate for HTTP/2 over TLS) are installed when missing (needs root, as
# on CI); the Python side goes into ./.venv, with the peers pinned by
# tests/constraints.txt (their behaviour is what the comparison tests assert).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ((${#missing[@]})); then
    sudo_=""
    [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]" -c tests/constraints.txt
exec .venv/bin/python -m pytest "$@"
