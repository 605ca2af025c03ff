#!/bin/sh
# Applies batched-delivery-reports.patch to the installed node-rdkafka, once, and rebuilds
# its addon (node-rdkafka's own objects, about 15 s; librdkafka is not rebuilt). Run by the
# Makefile right after npm install; docs/development.md "node-rdkafka's delivery reports".
#
# The patch only adds code: with the delivery callback's `batch_reports` property set
# (src/producer/batched-reports.ts), each flush of delivery reports on the event loop hands
# JavaScript the opaques of the successful ones as one array, instead of one call and one
# object per report: 1.5 of the 8.6 µs of CPU a drained record cost the daemon
# (docs/benchmarks.md). Without the property node-rdkafka behaves as released.
#
#   native/node-rdkafka/apply.sh [node_modules/node-rdkafka]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pkg=${1:-node_modules/node-rdkafka}
patch_file=$here/batched-delivery-reports.patch
# the version the patch was written for (package-lock.json pins it)
expected=v3.6.1
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkg/package.json" | head -n 1)
if [ "$version" != "$expected" ]; then
  echo "native/node-rdkafka/apply.sh: node-rdkafka is $version, the patch is for $expected: update the patch with package-lock.json" >&2
  exit 1
fi
if patch -d "$pkg" -p1 -R -s -f --dry-run < "$patch_file" >/dev/null 2>&1; then
  : # applied before
elif patch -d "$pkg" -p1 -s -f --dry-run < "$patch_file" >/dev/null 2>&1; then
  patch -d "$pkg" -p1 -s -f < "$patch_file"
else
  echo "native/node-rdkafka/apply.sh: $pkg holds neither node-rdkafka's own sources nor this patch (an older version of it?): rm -rf $pkg; make deps" >&2
  exit 1
fi
# node-gyp's Makefile from npm install: recompiles what changed (node-rdkafka's own objects,
# not librdkafka) and relinks the addon. Its compiler warnings are node-rdkafka's; they are
# shown only when the build fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! make -s -C "$pkg/build" BUILDTYPE=Release >"$log" 2>&1; then
  cat "$log" >&2
  echo "native/node-rdkafka/apply.sh: rebuilding node-rdkafka failed" >&2
  exit 1
fi
