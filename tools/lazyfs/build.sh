#!/bin/sh
# build.sh : builds LazyFS once from its unmodified source archive into a private directory
# outside the checkout and prints that directory (its `lazyfs` binary and `libpcache.so`).
# A second run finds the finished build and returns at once.
#   TOOLS_SRC       directory holding lazyfs-0.3.0.tar.gz (default ../shared/tools-src beside
#                   the checkout)
#   JOBCOMPD_CACHE  cache root (default $HOME/.cache/jobcompd); the build goes to
#                   $JOBCOMPD_CACHE/lazyfs/<version>-<first 12 hex of the archive's sha256>
# The archive's sha256 must match the one below. LazyFS's CMake files download toml11 and
# spdlog from GitHub; this script gives them Debian's packages of the same releases instead
# (cmake-deps/), so the build needs no network. A missing archive, a hash mismatch or a failed
# build exits non-zero with the build log's tail. Heavy: run it under `flock /work/.heavy.lock`
# on a shared machine (make conformance does).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "$here/../.." && pwd)
src=${TOOLS_SRC:-$checkout/../shared/tools-src}
cache=${JOBCOMPD_CACHE:-$HOME/.cache/jobcompd}/lazyfs
version=0.3.0
want=b8e4da99c79f527802a60c977bf549749598c656d247c4c7c3cc7326e545a9c4

fail() { echo "lazyfs/build.sh: $*" >&2; exit 1; }
. "$checkout/tools/build-common.sh"

"$checkout/scripts/apt-install.sh" g++ cmake libfuse3-dev fuse3 libtoml11-dev libspdlog-dev >/dev/null \
  || fail "could not install LazyFS's build dependencies"
archive=$src/lazyfs-$version.tar.gz
check_archive "$archive" "$want" "set TOOLS_SRC to the directory holding it"
prefix=$cache/$version-$(echo "$want" | cut -c1-12)
mkdir -p "$cache"
# One builder per prefix; a second caller waits here and then finds it done.
exec 9>"$prefix.lock"
flock 9
if [ ! -f "$prefix/.built" ]; then
  start_build
  mkdir -p "$prefix"
  step unpack tar -xzf "$archive" -C "$work"
  tree=$work/lazyfs-$version
  step configure-libpcache cmake -S "$tree/libs/libpcache" -B "$tree/libs/libpcache/build" \
    -DCMAKE_BUILD_TYPE=Release -DFETCHCONTENT_FULLY_DISCONNECTED=ON \
    -DFETCHCONTENT_SOURCE_DIR_TOML="$here/cmake-deps/toml" \
    -DFETCHCONTENT_SOURCE_DIR_SPDLOG="$here/cmake-deps/spdlog"
  step make-libpcache cmake --build "$tree/libs/libpcache/build" -j"$(nproc)"
  # lazyfs.cpp uses spdlog directly (Debian's formats with the shared libfmt); the rpath finds
  # libpcache.so beside the binary.
  step configure-lazyfs cmake -S "$tree/lazyfs" -B "$tree/lazyfs/build" \
    -DCMAKE_BUILD_TYPE=Release -DLAZYFS_BUILD_TESTS=OFF \
    -DCMAKE_EXE_LINKER_FLAGS="-Wl,--no-as-needed -lspdlog -lfmt -Wl,-rpath,$prefix"
  step make-lazyfs cmake --build "$tree/lazyfs/build" -j"$(nproc)"
  cp "$tree/lazyfs/build/lazyfs" "$prefix/"
  cp -P "$tree"/libs/libpcache/build/libpcache.so* "$prefix/"
  finish_build
fi
exec 9>&-
echo "$prefix"
