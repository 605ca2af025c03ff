#!/bin/sh
# Installs the Debian packages jobcompd's build and tests need, only those missing.
#   build:  g++ make python3 (node-gyp), patch (native/node-rdkafka/apply.sh), libc6-dev (the static libc
#           native/Makefile links the hook with), libsystemd-dev (sd-notify: Type=notify), and what
#           librdkafka's configure looks for, so that every build has the same features
#           (test/producer/librdkafka-features.test.ts): libssl-dev (TLS, SCRAM), zlib1g-dev
#           (gzip), libzstd-dev (zstd), libsasl2-dev (GSSAPI/Kerberos), libcurl4-openssl-dev
#           (OAUTHBEARER OIDC). Node.js 24 itself comes from scripts/node.sh.
#   kafka:  maven + a JRE 17 (the Kafka broker of the demo and the tests), and nothing else
#   tests:  the kafka packages, libjson-c-dev pkg-config (the json-c oracle), prometheus
#           (promtool and a real Prometheus for the shipped alert rules and dashboard),
#           kcat (a librdkafka 2.0 producer against the Kafka listener)
#   bench:  the test packages, plus gnuplot-nox (the chart); kcat is also the raw producer
#           jobcompd is compared with; rsyslog, rsyslog-relp (imrelp) and rsyslog-kafka
#           (omkafka) are the durable peer (bench/rsyslog-peer.ts), run as an unprivileged
#           foreground process with its own config, never as the system's service
# Usage: scripts/system-deps.sh [build|kafka|test|bench]
#   (test includes build and kafka, bench includes test)
set -eu
here=$(dirname "$0")
mode=${1:-build}
want=""
if [ "$mode" != kafka ]; then
  want="g++ make python3 patch libc6-dev libssl-dev zlib1g-dev libzstd-dev libsasl2-dev libcurl4-openssl-dev libsystemd-dev"
fi
if [ "$mode" = bench ]; then
  want="$want gnuplot-nox rsyslog rsyslog-relp rsyslog-kafka"
fi
if [ "$mode" = test ] || [ "$mode" = bench ]; then
  want="$want libjson-c-dev pkg-config prometheus kcat"
fi
if [ "$mode" != build ]; then
  # any java >= 17 and mvn already on PATH will do
  command -v java >/dev/null 2>&1 || want="$want default-jre-headless"
  command -v mvn >/dev/null 2>&1 || want="$want maven"
fi
# shellcheck disable=SC2086
exec "$here/apt-install.sh" $want
