#!/bin/sh
# Runs the comparison benchmarks and writes the report: installs what is
# missing (the plot's font; nats-server 2.15, the NATS peer, by
# `scripts/nats-server.sh`), then `cargo bench --bench compare`, which
# measures rocksmq and its peers in one run — NATS JetStream, Kafka (a
# broker the harness starts from the jars `scripts/kafka.sh` fetches), raw
# RocksDB (with and without its blob files), fjall and walrus — and at its end
# writes docs/benchmarks.md, docs/benchmarks.png and
# docs/benchmarks-producers.png.
#
#   sh scripts/bench.sh                       every peer (about 20 minutes)
#   sh scripts/bench.sh --peers nats,fjall    only these peers beside rocksmq
#   sh scripts/bench.sh 'produce_single/.*/128B'   a Criterion filter: the
#                                             report is not written
#
# Peers: nats, kafka, rocksdb, blobdb, fjall, walrus (ROCKSMQ_BENCH_PEERS
# says the same); a peer left out starts no server. Other arguments go to
# Criterion.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
case "${1:-}" in
--peers)
    [ $# -ge 2 ] || { echo "bench.sh: --peers needs a list, e.g. --peers nats,fjall" >&2; exit 2; }
    ROCKSMQ_BENCH_PEERS="$2"
    export ROCKSMQ_BENCH_PEERS
    shift 2
    ;;
--peers=*)
    ROCKSMQ_BENCH_PEERS="${1#--peers=}"
    export ROCKSMQ_BENCH_PEERS
    shift
    ;;
esac
"$here/deps.sh"
ROCKSMQ_NATS_SERVER="$("$here/nats-server.sh")"
export ROCKSMQ_NATS_SERVER
cd "$here/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rocksmq/target}"
exec cargo bench --bench compare -- "$@"
