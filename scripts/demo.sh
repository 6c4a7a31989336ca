#!/bin/sh
# Runs the demo: installs what is missing, builds rocksmq (the first build
# compiles RocksDB: about fifteen minutes on two cores) and runs `rocksmq demo`,
# which keeps its store in ./rdb_data. Extra arguments go to the demo.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
# One build for the demo, the tests, the benchmarks and CI: RocksDB takes long
# to compile, so every script shares this target directory.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rocksmq/target}"
echo "building rocksmq in $CARGO_TARGET_DIR: the first build compiles RocksDB from source, about 15 minutes on two cores; later ones take seconds" >&2
"$here/deps.sh"
cd "$here/.."
# Cargo's progress stays visible: a bar on a terminal, a line per crate in a log.
cargo build --release --bin rocksmq
exec cargo run --release --quiet --bin rocksmq -- demo "$@"
