#!/bin/sh
# Runs the comparison benchmarks and writes the report: installs what is
# missing (the plot's font; nats-server 2.15, the NATS peer, by
# `scripts/nats-server.sh`), then `cargo bench --bench compare`, which
# measures rocksmq, NATS JetStream and the raw RocksDB ceiling in one run
# (about 19 minutes on two cores) and at its end writes
# docs/benchmarks.md and docs/benchmarks.png. Extra arguments go to Criterion
# (with a filter the report is not written).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
"$here/deps.sh"
ROCKSMQ_NATS_SERVER="$("$here/nats-server.sh")"
export ROCKSMQ_NATS_SERVER
cd "$here/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rocksmq/target}"
exec cargo bench --bench compare -- "$@"
