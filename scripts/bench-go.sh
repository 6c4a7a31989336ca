#!/bin/sh
# The Go benchmarks beside the same workloads from Rust, in one run of
# ROUNDS rounds (3 by default), each Criterion's go_peer benchmark
# (capi/benches/go_peer.rs) then the Go benchmarks (go/bench_test.go):
# pairing a Go round with the Rust round just before it keeps the
# machine's drift out of the ratios. Then docs/benchmarks-go.md is written
# from all of it by go/internal/benchreport. About 12 minutes.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rocksmq/target}"
PATH="$("$here/go-deps.sh"):$PATH"
export PATH
"$here/go-lib.sh" >/dev/null
rounds="${ROUNDS:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo bench -p rocksmq-capi --bench go_peer --no-run
dirs=""
round=1
while [ "$round" -le "$rounds" ]; do
    rm -rf "$CARGO_TARGET_DIR/criterion/go_peer"
    cargo bench -p rocksmq-capi --bench go_peer
    cp -R "$CARGO_TARGET_DIR/criterion" "$work/criterion-$round"
    dirs="$dirs${dirs:+,}$work/criterion-$round"
    echo "=== ROUND $round" >> "$work/go.txt"
    (cd go && go test -run '^$' -bench . -benchtime 1s -count 1 . | tee -a "$work/go.txt")
    round=$((round + 1))
done
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), $(rustc --version | cut -d' ' -f1-2)"
(cd go && go run ./internal/benchreport -go "$work/go.txt" -criterion "$dirs" -out ../docs/benchmarks-go.md -machine "$machine")
