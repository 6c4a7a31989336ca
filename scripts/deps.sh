#!/bin/sh
# Installs what building and testing rocksmq needs on Debian, when missing:
# a C++ compiler and libclang (RocksDB is compiled from source and bound with
# bindgen), nats-server (the peer of the NATS comparison benchmarks) and
# the DejaVu fonts (the text of the benchmark report's plot).
set -eu

missing=""
command -v c++ >/dev/null 2>&1 || missing="$missing g++"
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing="$missing libclang-dev"
command -v nats-server >/dev/null 2>&1 || missing="$missing nats-server"
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$missing fonts-dejavu-core"

if [ -n "$missing" ]; then
    echo "installing:$missing" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    # shellcheck disable=SC2086
    $sudo apt-get install -y -q --no-install-recommends $missing
fi
