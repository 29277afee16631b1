#!/usr/bin/env bash
# Starts (if it does not answer yet) a Docker engine of the fault drills' own, beside the
# machine's: the drills stop and restart it, which would stop every container of the
# machine's engine. Its data lives in /var/lib/hangar-drill-docker; its default bridge is an
# interface of its own, hangar-drill0 (with `--bridge none` dockerd deletes docker0, the
# machine engine's bridge, at start), and it leaves the host's iptables alone (the drills need
# no outside network). Loads the test image from the main engine. Prints the engine's
# DOCKER_HOST. Idempotent.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SOCKET=/var/run/hangar-drill-docker.sock
PIDFILE=/var/run/hangar-drill-docker.pid
HOST=unix://$SOCKET
LOG=/var/log/hangar-drill-dockerd.log
BRIDGE=hangar-drill0
# An address outside Docker's default pools. No `--default-address-pool` either: with one set,
# dockerd deletes docker0 at start too. Networks the drills' engine makes avoid the machine
# engine's subnets because Docker skips subnets the host already routes.
BRIDGE_ADDRESS=10.213.255.1/24
TEST_IMAGE=hangar/busybox:test

engine() { DOCKER_HOST=$HOST docker "$@"; }

if ! engine info >/dev/null 2>&1; then
  is_root || die "the drills' Docker engine needs root to start"
  command -v dockerd >/dev/null || die "no dockerd: install docker.io and run this again"
  drop_stale_pidfile "$PIDFILE" dockerd "$PIDFILE"
  if [ ! -f "$PIDFILE" ]; then
    mkdir -p /var/lib/hangar-drill-docker /var/run/hangar-drill-docker
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
      ip link add "$BRIDGE" type bridge
    fi
    ip addr show dev "$BRIDGE" | grep -q "${BRIDGE_ADDRESS%/*}" \
      || { ip addr flush dev "$BRIDGE"; ip addr add "$BRIDGE_ADDRESS" dev "$BRIDGE"; }
    ip link set "$BRIDGE" up
    nohup dockerd --data-root /var/lib/hangar-drill-docker \
      --exec-root /var/run/hangar-drill-docker --pidfile "$PIDFILE" --host "$HOST" \
      --bridge "$BRIDGE" --iptables=false --ip-masq=false >"$LOG" 2>&1 &
  fi
  for _ in $(seq 1 60); do
    engine info >/dev/null 2>&1 && break
    sleep 0.5
  done
  engine info >/dev/null 2>&1 || { tail -20 "$LOG" >&2; die "the drills' Docker engine did not come up within 30 s"; }
fi
if ! engine image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
  docker image inspect "$TEST_IMAGE" >/dev/null 2>&1 || "$REPO_ROOT/scripts/images.sh" test
  docker save "$TEST_IMAGE" | engine load >/dev/null
fi
echo "$HOST"
