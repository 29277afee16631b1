#!/usr/bin/env bash
# Makes sure a Docker engine answers: starts the local dockerd when it is installed but idle.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

docker info >/dev/null 2>&1 && exit 0
if [ -n "${DOCKER_HOST:-}" ]; then
  die "DOCKER_HOST=$DOCKER_HOST does not answer: start that engine, or unset DOCKER_HOST to use the local one"
fi
command -v dockerd >/dev/null || die "no Docker engine: install one (Debian: apt-get install docker.io) and run this again"
is_root || die "the Docker engine is not running: start it (e.g. 'sudo systemctl start docker') and run this again"

# The pid file, not `pgrep dockerd`, tells whether this engine is starting: the fault drills'
# engine is a dockerd too.
drop_stale_pidfile /var/run/docker.pid dockerd
if [ ! -f /var/run/docker.pid ]; then
  say "starting the Docker engine (log: /var/log/hangar-dockerd.log)"
  nohup dockerd >/var/log/hangar-dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
tail -20 /var/log/hangar-dockerd.log >&2 || true
die "the Docker engine did not come up within 30 s (log above)"
