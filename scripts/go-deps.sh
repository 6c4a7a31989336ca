#!/bin/sh
# Installs Go (Debian's golang-go) when the machine has none: the Go
# package's tests and benchmarks need it, and a C compiler for cgo (which
# scripts/deps.sh installs for RocksDB already).
set -eu
if ! command -v go >/dev/null 2>&1; then
    [ -x /usr/local/go/bin/go ] && exit 0
    echo "installing: golang-go" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends golang-go
fi
