#!/bin/sh
# Installs the Debian packages jobcompd's build and tests need, only those missing.
#   build:  g++ make python3 (node-gyp), libssl-dev zlib1g-dev (librdkafka with TLS/SASL)
#   tests:  maven + a JRE 17 (the Kafka broker), libjson-c-dev pkg-config (the json-c oracle)
# Usage: scripts/system-deps.sh [build|test]   (test includes build)
set -eu
want="g++ make python3 libssl-dev zlib1g-dev"
if [ "${1:-build}" = test ]; then
  want="$want maven default-jre-headless libjson-c-dev pkg-config"
fi

missing=""
for p in $want; do
  # default-jre-headless is satisfied by any java >= 17 already on PATH
  if [ "$p" = default-jre-headless ] && command -v java >/dev/null 2>&1; then continue; fi
  if [ "$p" = maven ] && command -v mvn >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "system-deps.sh: missing Debian packages:$missing (run as root, or install them)" >&2
  exit 1
fi
echo "system-deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2 \
  || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends $missing >&2; }
