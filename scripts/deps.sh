#!/bin/sh
# Installs what building and testing rocksmq needs on Debian, when missing:
# a C++ compiler and libclang with its headers (RocksDB is compiled from
# source and bound with bindgen), make, pkg-config and OpenSSL's headers
# (librdkafka, the Kafka engine's client, is compiled from source with
# TLS), Debian's nats-server (2.9: one of the two servers the NATS
# engine's tests run on; `scripts/nats-server.sh` installs the other,
# 2.15), Java and Maven (Apache Kafka's broker, fetched from Maven Central
# by scripts/kafka.sh, for the Kafka tests and benchmarks) and the DejaVu
# fonts (the text of the benchmark report's plot).
#
# `deps.sh --check-libclang` only checks libclang: exit status 0 when bindgen
# can use it, else 1 (it cannot parse <stddef.h>), 2 (none found) or 3 (it
# cannot be loaded), with the reason on standard output.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"

# bindgen loads libclang when RocksDB's bindings are built, and libclang
# needs the compiler's own headers (stddef.h, ...) from its resource
# directory: Debian's libclang1-N has the library without them (they are
# in libclang-common-N-dev), and bindgen then fails 15 minutes into the
# first build with "'stddef.h' file not found". So ask the library bindgen would
# load, found as clang-sys finds it, to parse `#include <stddef.h>`
# (scripts/libclang-check.cc); print why not.
libclang_works() {
    if ! command -v c++ >/dev/null 2>&1; then
        echo "no C++ compiler to check libclang with"
        return 1
    fi
    probe="$(mktemp -d)"
    if ! c++ -o "$probe/check" "$here/libclang-check.cc" -ldl >"$probe/log" 2>&1; then
        echo "cannot build the libclang check: $(cat "$probe/log")"
        rm -rf "$probe"
        return 1
    fi
    # In an empty directory: libclang also looks for its headers relative
    # to the current one.
    status=0
    (cd "$probe" && ./check) || status=$?
    rm -rf "$probe"
    return "$status"
}

if [ "${1:-}" = "--check-libclang" ]; then
    status=0
    libclang_works || status=$?
    exit "$status"
fi

updated=""
install() {
    echo "installing: $*" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "$updated" ]; then
        $sudo apt-get update -q
        updated=1
    fi
    $sudo apt-get install -y -q --no-install-recommends "$@"
}

missing=""
command -v c++ >/dev/null 2>&1 || missing="$missing g++"
command -v make >/dev/null 2>&1 || missing="$missing make"
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
[ -e /usr/include/openssl/ssl.h ] || missing="$missing libssl-dev"
command -v nats-server >/dev/null 2>&1 || missing="$missing nats-server"
# Kafka 4 needs Java 17 or later: Debian 12's default is 17, 13's is 21.
command -v java >/dev/null 2>&1 || missing="$missing default-jre-headless"
command -v mvn >/dev/null 2>&1 || missing="$missing maven"
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$missing fonts-dejavu-core"
# shellcheck disable=SC2086
[ -z "$missing" ] || install $missing

# After the compiler: the check compiles a small program.
if ! found="$(libclang_works)"; then
    echo "libclang is not usable by bindgen ($(echo "$found" | paste -sd ';' - | sed 's/;/; /g')): installing libclang-dev" >&2
    install libclang-dev
    if ! found="$(libclang_works)"; then
        echo "deps.sh: libclang is still not usable by bindgen after installing libclang-dev:" >&2
        echo "$found" >&2
        echo "deps.sh: set LIBCLANG_PATH to the directory of a libclang whose headers are installed" >&2
        exit 1
    fi
fi
