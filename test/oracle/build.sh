#!/bin/sh
# Builds the json-c/glibc oracle used by test/record/json-c-oracle.test.ts into
# <project root>/.cache/oracle/jsonc-oracle, only when it is missing or older than its
# source (or this script), and prints the binary's path on stdout. All other output goes
# to stderr. Installs libjson-c-dev (Debian) only when pkg-config cannot find json-c.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
src="$here/jsonc-oracle.c"
out_dir="$root/.cache/oracle"
out="$out_dir/jsonc-oracle"

if [ ! -x "$out" ] || [ "$src" -nt "$out" ] || [ "$here/build.sh" -nt "$out" ]; then
  if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists json-c; then
    echo "build.sh: installing libjson-c-dev" >&2
    export DEBIAN_FRONTEND=noninteractive
    pkgs="libjson-c-dev pkg-config"
    apt-get install -y --no-install-recommends $pkgs >&2 \
      || { apt-get update >&2 && apt-get install -y --no-install-recommends $pkgs >&2; }
  fi
  mkdir -p "$out_dir"
  tmp="$out.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  # shellcheck disable=SC2046 # pkg-config output is meant to be word-split
  ${CC:-cc} -std=c99 -O2 -Wall -Wextra -Werror \
    $(pkg-config --cflags json-c) -o "$tmp" "$src" $(pkg-config --libs json-c) >&2
  mv -f "$tmp" "$out" # atomic: a concurrent build never sees a half-written binary
  trap - EXIT
fi
echo "$out"
