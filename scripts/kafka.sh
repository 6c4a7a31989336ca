#!/bin/sh
# Fetches Apache Kafka's broker, its published jars and their runtime
# dependencies, from Maven Central with Maven (scripts/kafka/pom.xml) into
# a cache outside the clone, once, and prints the directory of the jars.
# The tests and benchmarks start brokers from there themselves
# (benches/support/kafka_server.rs): `java -cp '<dir>/*' kafka.Kafka`.
#
#   ROCKSMQ_KAFKA_VERSION  the version (default 4.4.0)
#   ROCKSMQ_KAFKA_HOME     the cache (default $HOME/.cache/rocksmq/kafka-<version>)
#
# Needs java (17 or later) and mvn: `sh scripts/deps.sh` installs them.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
version="${ROCKSMQ_KAFKA_VERSION:-4.4.0}"
home="${ROCKSMQ_KAFKA_HOME:-$HOME/.cache/rocksmq/kafka-$version}"
if [ ! -e "$home/complete" ]; then
    for tool in java mvn; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "kafka.sh: $tool is missing: run sh scripts/deps.sh" >&2
            exit 1
        fi
    done
    echo "fetching Apache Kafka $version from Maven Central into $home (once)" >&2
    mkdir -p "$(dirname "$home")"
    partial="$(mktemp -d "$home.partial.XXXXXX")"
    if ! mvn -B -q -f "$here/kafka/pom.xml" -Dkafka.version="$version" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$partial/libs" >&2; then
        rm -rf "$partial"
        echo "kafka.sh: Maven could not fetch Kafka $version" >&2
        exit 1
    fi
    # Whole or not at all: a half-fetched cache is never taken for one.
    rm -rf "$home"
    mv "$partial" "$home"
    echo "$version" > "$home/complete"
fi
echo "$home/libs"
