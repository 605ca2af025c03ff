#!/bin/sh
# Installs the Debian 12 packages of a single-node Slurm 22.05 test cluster, only those
# missing. Starts nothing: tools/slurm/cluster.ts runs the daemons itself. (Without systemd
# the postinst's "invoke-rc.d: policy-rc.d denied execution of start" is expected; on a
# systemd host the units need /etc/slurm/slurm.conf, which we never write, and
# munge.service uses /run/munge, which the harness does not.)
# Usage: tools/slurm/install.sh        (exit 0 at once when everything is installed)
set -eu
exec "$(dirname "$0")/../../scripts/apt-install.sh" \
  slurmctld slurmd slurm-client munge slurm-wlm-basic-plugins slurm-wlm-elasticsearch-plugin
