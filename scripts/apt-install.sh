#!/bin/sh
# apt-install.sh PACKAGE... : install the Debian packages that are not installed yet, and
# nothing else. `apt-get update` runs only if the first attempt fails (stale lists).
# Exits 0 at once when everything is there.
set -eu
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "apt-install.sh: missing Debian packages:$missing (run as root, or install them)" >&2
  exit 1
fi
echo "apt-install.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2 \
  || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends $missing >&2; }
