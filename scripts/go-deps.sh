#!/bin/sh
# Prints the directory of a Go toolchain recent enough for go/go.mod
# (Go 1.23 or later), installing one when the machine has none: Debian's
# golang-go, and when that is older (Debian 12 ships 1.19), the Go
# command's own toolchain module (golang.org/toolchain) fetched by that go
# through the Go module proxy. Callers put the directory first on PATH.
set -eu
need=23
toolchain=1.26.8

minor() { "$1" env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9][0-9]*\).*/\1/p'; }

recent() {
    m="$(minor "$1")"
    [ -n "$m" ] && [ "$m" -ge "$need" ]
}

if [ -z "${ROCKSMQ_GO_DEPS_FETCH:-}" ]; then
    for go in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go/bin/go; do
        if [ -n "$go" ] && [ -x "$go" ] && recent "$go"; then
            dirname "$go"
            exit 0
        fi
    done
fi

go="$(command -v go 2>/dev/null || true)"
[ -n "$go" ] || { [ -x /usr/lib/go/bin/go ] && go=/usr/lib/go/bin/go; } || true
if [ -z "$go" ]; then
    echo "installing: golang-go" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q >&2
    $sudo apt-get install -y -q --no-install-recommends golang-go >&2
    go="$(command -v go)"
fi
if [ -z "${ROCKSMQ_GO_DEPS_FETCH:-}" ] && recent "$go"; then
    dirname "$go"
    exit 0
fi

arch="$("$go" env GOARCH)"
echo "fetching Go $toolchain (golang.org/toolchain) through the Go module proxy" >&2
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
dir="$(cd "$scratch" && "$go" mod init toolchain-fetch >/dev/null 2>&1 &&
    GOFLAGS=-mod=mod "$go" mod download -json "golang.org/toolchain@v0.0.1-go$toolchain.linux-$arch" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
[ -f "$dir/bin/go" ] || { echo "go-deps: no go in the toolchain module ($dir)" >&2; exit 1; }
# The module cache keeps files read-only and not executable: a copy with
# its programs executable, as the go command itself makes of a toolchain.
home="${HOME:-/root}/.cache/rocksmq/go$toolchain"
if [ ! -x "$home/bin/go" ]; then
    rm -rf "$home.part"
    mkdir -p "$(dirname "$home")"
    cp -R "$dir" "$home.part"
    chmod -R u+w "$home.part"
    chmod +x "$home.part"/bin/* "$home.part"/pkg/tool/*/*
    rm -rf "$home"
    mv "$home.part" "$home"
fi
echo "$home/bin"
