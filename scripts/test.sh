#!/bin/sh
# Runs the whole test suite: installs what is missing, then the unit,
# integration (fault injection and lock-order stress included) and doc
# tests, the benchmarks in smoke mode (each workload run once, NATS and
# Kafka included), and every example. The NATS engine's tests run twice: on a
# current nats-server (2.15, `scripts/nats-server.sh`), which the
# benchmarks' NATS runs use too, and on Debian's 2.9 (`scripts/deps.sh`).
# Needs no network once installed.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
# One build for the demo, the tests, the benchmarks and CI: RocksDB takes long
# to compile, so every script shares this target directory.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rocksmq/target}"
echo "building the tests in $CARGO_TARGET_DIR: the first build compiles RocksDB from source, about 15 minutes on two cores; later ones take seconds" >&2
"$here/deps.sh"
nats_current="$("$here/nats-server.sh")"
nats_debian="$(command -v nats-server)"
cd "$here/.."
# The integration tests include fault injection (fail points, a simulated
# crash) and the lock-order stress test with parking_lot's deadlock
# detection: both are features, never in a default build; the NATS
# engine's (feature nats: a 3-server cluster) and the Kafka engine's
# (feature kafka: a 3-broker cluster), on nats-server and Kafka processes
# the tests start on 127.0.0.1; the conformance suite runs on all three
# engines. Kafka's broker is fetched from Maven Central once
# (scripts/kafka.sh). The doctests and the examples run on the default
# build, as users get it.
"$here/kafka.sh" >/dev/null
features=fault-injection,deadlock-detection,nats,kafka
echo "== every test, the NATS ones on $("$nats_current" --version)" >&2
ROCKSMQ_NATS_SERVER="$nats_current" cargo test --release --all-targets --features "$features"
echo "== the NATS engine's tests again, on $("$nats_debian" --version)" >&2
ROCKSMQ_NATS_SERVER="$nats_debian" cargo test --release --features "$features" \
    --test conformance --test nats_engine --test nats_cluster --test cli_engines \
    -- --skip kafka_engine --skip every_command_on_kafka
cargo test --release --doc
# The C ABI (capi/: its header, argument decoding and waking), then the Go
# package over it (go/): the static library, go vet, the tests with the race
# detector and with cgo's full pointer checks (the crash test's short run
# included).
cargo test --release -p rocksmq-capi
PATH="$("$here/go-deps.sh"):$PATH"
export PATH
"$here/go-lib.sh" >/dev/null
# -count=1: Go's test cache does not see the Rust library the tests link, so
# a cached result could hide a change to it.
(cd go && go vet ./... && go test -count=1 -race -short ./... && GOEXPERIMENT=cgocheck2 go test -count=1 -short ./...)
for example in examples/*.rs; do
    [ -e "$example" ] || continue
    cargo run --release --quiet --example "$(basename "$example" .rs)"
done
