#!/usr/bin/env bash
# Puts the runtime jars of the Apache Kafka broker into
# <projectRoot>/.cache/kafka-<version>/libs, resolved by Maven from
# tools/kafka/pom.xml (the only place that names the Kafka version).
#
# Idempotent: a stamp file records the hash of the pom the jars came from, so
# a second run returns at once and editing the pom triggers a fresh fetch.
# Safe to run concurrently (flock). Prints the libs directory on success.
set -euo pipefail

die() {
  echo "fetch.sh: error: $*" >&2
  exit 1
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pom="$here/pom.xml"

[[ -f "$pom" ]] || die "missing $pom"
version="$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$pom" | head -n 1)"
[[ -n "$version" ]] || die "cannot read <kafka.version> from $pom"

dest="$root/.cache/kafka-$version"
libs="$dest/libs"
stamp="$dest/.fetched"
pom_hash="$(sha256sum "$pom" | cut -d ' ' -f 1)"

is_complete() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$pom_hash" && -f "$libs/kafka_2.13-$version.jar" ]]
}

if is_complete; then
  echo "$libs"
  exit 0
fi

command -v java >/dev/null || die "java not found on PATH (Kafka $version needs Java 17+)"
command -v mvn >/dev/null || die "mvn not found on PATH (apt-get install maven)"

mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9
# Another process may have finished the fetch while we waited for the lock.
if is_complete; then
  echo "$libs"
  exit 0
fi

tmp="$dest/libs.tmp.$$"
log="$dest/fetch.log"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT

echo "fetch.sh: resolving Apache Kafka $version with Maven (log: $log)" >&2
if ! mvn -q -B -ntp -Dstyle.color=never \
  -f "$pom" \
  -Dmaven.repo.local="$root/.cache/m2" \
  dependency:copy-dependencies \
  -DincludeScope=runtime \
  -DoutputDirectory="$tmp" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "maven could not resolve the Kafka $version broker classpath (full log: $log)"
fi
[[ -f "$tmp/kafka_2.13-$version.jar" ]] || die "maven finished but kafka_2.13-$version.jar is not in $tmp"

# The class-data archive broker.ts keeps next to the jars describes the old ones.
rm -rf "$libs" "$dest/broker-classes.jsa"
mv "$tmp" "$libs"
echo "$pom_hash" >"$stamp"
echo "fetch.sh: $(find "$libs" -name '*.jar' | wc -l) jars in $libs" >&2
echo "$libs"
