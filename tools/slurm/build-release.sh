#!/bin/sh
# build-release.sh VERSION... : builds each Slurm release once from its unmodified source
# archive into a private prefix outside the checkout and prints that prefix (one line per
# version). A second run finds the finished prefix and returns at once.
#   SLURM_SRC       directory holding slurm-<version>.tar.gz (default ../shared/slurm-src
#                   beside the checkout)
#   JOBCOMPD_CACHE  cache root (default $HOME/.cache/jobcompd); prefixes are
#                   $JOBCOMPD_CACHE/slurm/<version>-<first 12 hex of the archive's sha256>
# The archive's sha256 must match tools/slurm/releases.tsv. A missing archive, a hash
# mismatch or a failed build exits non-zero with the build log's tail; nothing is skipped.
# Heavy: run it under `flock /work/.heavy.lock` on a shared machine (make conformance does).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "$here/../.." && pwd)
src=${SLURM_SRC:-$checkout/../shared/slurm-src}
cache=${JOBCOMPD_CACHE:-$HOME/.cache/jobcompd}/slurm
[ $# -gt 0 ] || { echo "usage: $0 VERSION..." >&2; exit 64; }

fail() { echo "build-release.sh: $*" >&2; exit 1; }
. "$checkout/tools/build-common.sh"

"$checkout/scripts/apt-install.sh" build-essential pkg-config munge libmunge-dev \
  libjson-c-dev librdkafka-dev libcurl4-openssl-dev libyaml-dev >/dev/null \
  || fail "could not install Slurm's build dependencies"
mkdir -p "$cache"

for version in "$@"; do
  want=$(awk -v v="$version" '$1 == v { print $2 }' "$here/releases.tsv")
  [ -n "$want" ] || fail "$version is not in $here/releases.tsv"
  archive=$src/slurm-$version.tar.gz
  check_archive "$archive" "$want" "set SLURM_SRC to the directory holding it"
  prefix=$cache/$version-$(echo "$want" | cut -c1-12)
  # One builder per prefix; a second caller waits here and then finds it done.
  exec 9>"$prefix.lock"
  flock 9
  if [ ! -f "$prefix/.built" ]; then
    start_build
    step_context="$version: "
    step unpack tar -xzf "$archive" -C "$work"
    cd "$work/slurm-$version"
    step configure ./configure --prefix="$prefix" --sysconfdir="$prefix/etc" \
      --with-munge --with-json --with-rdkafka --with-libcurl --with-yaml \
      --disable-debug --without-pmix
    step make make -j"$(nproc)"
    step install make install
    cd /
    for plugin in jobcomp_kafka jobcomp_elasticsearch jobcomp_script serializer_json; do
      [ -f "$prefix/lib/slurm/$plugin.so" ] || { tail -n 40 "$log" >&2; fail "$version: $plugin.so was not built (full log: $log)"; }
    done
    finish_build
  fi
  exec 9>&-
  echo "$prefix"
done
