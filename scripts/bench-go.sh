#!/bin/sh
# The Go benchmarks beside the same workloads from Rust, in one run:
# Criterion's go_peer benchmark (capi/benches/go_peer.rs), then the Go
# benchmarks (go/bench_test.go, 5 runs each), then docs/benchmarks-go.md
# written from both by go/internal/benchreport. About 10 minutes.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rocksmq/target}"
PATH="$("$here/go-deps.sh"):$PATH"
export PATH
"$here/go-lib.sh" >/dev/null
rm -rf "$CARGO_TARGET_DIR/criterion/go_peer"
cargo bench -p rocksmq-capi --bench go_peer
output="$(mktemp)"
trap 'rm -f "$output"' EXIT
(cd go && go test -run '^$' -bench . -benchtime 1s -count 5 . | tee "$output")
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), $(rustc --version | cut -d' ' -f1-2)"
(cd go && go run ./internal/benchreport -go "$output" -criterion "$CARGO_TARGET_DIR/criterion" -out ../docs/benchmarks-go.md -machine "$machine")
