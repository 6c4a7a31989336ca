#!/bin/sh
# Builds the C ABI's static library (crate capi/) and copies it into go/lib,
# where the Go package's cgo directives (-L${SRCDIR}/lib) find it: after
# this one step, `go vet ./...` and `go test ./...` in go/ need no
# environment set by hand. Prints the library's path.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rocksmq/target}"
cargo build --release -p rocksmq-capi
mkdir -p go/lib
# Copied, not linked: another build into the shared target directory must
# not change the library under a Go test that is linking it.
cp "$CARGO_TARGET_DIR/release/librocksmq_capi.a" go/lib/librocksmq_capi.a.part
mv go/lib/librocksmq_capi.a.part go/lib/librocksmq_capi.a
echo "$(pwd)/go/lib/librocksmq_capi.a"
