#!/bin/sh
# Installs the Debian packages jobcompd's build and tests need, only those missing.
#   build:  g++ make python3 (node-gyp), libssl-dev zlib1g-dev (librdkafka with TLS/SASL),
#           libsystemd-dev (sd-notify: Type=notify)
#   tests:  maven + a JRE 17 (the Kafka broker), libjson-c-dev pkg-config (the json-c oracle)
#   bench:  the test packages, plus kcat (the raw producer jobcompd is compared with) and
#           gnuplot-nox (the chart)
# Usage: scripts/system-deps.sh [build|test|bench]   (test includes build, bench includes test)
set -eu
here=$(dirname "$0")
want="g++ make python3 libssl-dev zlib1g-dev libsystemd-dev"
if [ "${1:-build}" = bench ]; then
  want="$want kcat gnuplot-nox"
fi
if [ "${1:-build}" = test ] || [ "${1:-build}" = bench ]; then
  want="$want libjson-c-dev pkg-config"
  # any java >= 17 and mvn already on PATH will do
  command -v java >/dev/null 2>&1 || want="$want default-jre-headless"
  command -v mvn >/dev/null 2>&1 || want="$want maven"
fi
# shellcheck disable=SC2086
exec "$here/apt-install.sh" $want
