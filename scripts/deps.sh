#!/bin/sh
# Installs what building and testing rocksmq needs on Debian, when missing:
# a C++ compiler and libclang (RocksDB is compiled from source and bound with
# bindgen), Debian's nats-server (2.9: one of the two servers the NATS
# engine's tests run on; `scripts/nats-server.sh` installs the other, 2.15)
# and the DejaVu fonts (the text of the benchmark report's plot).
set -eu

# bindgen loads libclang itself (libclang.so, libclang.so.N or libclang-N.so*),
# never LLVM's C++ library libclang-cpp.so.N, which machines with some LLVM
# packages have without libclang: look for the library bindgen loads, in the
# directories it searches.
has_libclang() {
    for dir in ${LIBCLANG_PATH:-} /usr/local/llvm*/lib* /usr/local/lib* /usr/lib*/*/* /usr/lib*/* /usr/lib*; do
        for lib in "$dir"/libclang.so "$dir"/libclang.so.* "$dir"/libclang-[0-9]*.so*; do
            [ -e "$lib" ] && return 0
        done
    done
    return 1
}

missing=""
command -v c++ >/dev/null 2>&1 || missing="$missing g++"
has_libclang || missing="$missing libclang-dev"
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
