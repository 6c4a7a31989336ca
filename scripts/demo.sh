#!/bin/sh
# Runs the demo: installs what is missing, builds rocksmq (the first build
# compiles RocksDB: about fifteen minutes on two cores) and runs `rocksmq demo`,
# which keeps its store in ./rdb_data. Extra arguments go to the demo.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
"$here/deps.sh"
cd "$here/.."
# One build for the demo, the tests, the benchmarks and CI: RocksDB takes long
# to compile, so every script shares this target directory.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rocksmq/target}"
exec cargo run --release --quiet -- demo "$@"
