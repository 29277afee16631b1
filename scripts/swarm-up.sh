#!/usr/bin/env bash
# Starts (if not running) a Docker Swarm of N Docker-in-Docker nodes on this machine, for the
# Swarm runtime's tests: node image hangar/swarm-node:bookworm (the Debian base plus Debian's
# docker.io), containers hangar-swarm-node1..N on the network hangar-swarm, each engine
# listening on tcp://<node ip>:2375 inside that network only. `--privileged` is refused on these
# machines, explicit capabilities work (see docs/swarm.md). The test image and Hangar's guard image
# (the helper that installs each node's network rules and makes its sized volumes) are loaded
# into every node. Each node may use loop devices (/dev/loop-control and block major 7), as a
# real node's engine can, for the spaces' sized volumes. The engines
# run with --no-new-privileges: Docker before 25 cannot set it per Swarm service (see the
# docs/swarm.md). Prints the manager's DOCKER_HOST. Usage: scripts/swarm-up.sh [N] | scripts/swarm-up.sh down
set -euo pipefail
source "$(dirname "$0")/lib.sh"

NETWORK=hangar-swarm
IMAGE=hangar/swarm-node:bookworm
TEST_IMAGE=hangar/busybox:test
GUARD_IMAGE=hangar/guard:2
LABEL=io.hangar.swarm-test=true

node() { echo "hangar-swarm-node$1"; }
in_node() { local n=$1; shift; docker exec "$(node "$n")" "$@"; }
ip_of() { docker inspect -f "{{(index .NetworkSettings.Networks \"$NETWORK\").IPAddress}}" "$(node "$1")"; }

# Loop devices outlive the node containers that attached them: detached first (a node's own /dev
# holds only the ones Hangar's helper made there).
detach_loops() { docker exec "$1" sh -c 'losetup -D' >/dev/null 2>&1 || true; }

if [ "${1:-}" = down ]; then
  for c in $(docker ps -q --filter "label=$LABEL"); do detach_loops "$c"; done
  for c in $(docker ps -aq --filter "label=$LABEL"); do docker rm -f -v "$c" >/dev/null; done
  for v in $(docker volume ls -q --filter "label=$LABEL"); do docker volume rm "$v" >/dev/null; done
  docker network rm "$NETWORK" >/dev/null 2>&1 || true
  exit 0
fi
NODES=${1:-3}

"$REPO_ROOT/scripts/docker-up.sh"
"$REPO_ROOT/scripts/images.sh" default
"$REPO_ROOT/scripts/images.sh" test
"$REPO_ROOT/scripts/images.sh" guard
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "building $IMAGE (Debian's docker.io in the Debian base; once per machine)"
  context=$(mktemp -d)
  cat >"$context/Dockerfile" <<'DOCKERFILE'
FROM hangar/default:bookworm
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io iptables \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
DOCKERFILE
  DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$context" >/dev/null
  rm -rf "$context"
fi
docker network inspect "$NETWORK" >/dev/null 2>&1 \
  || docker network create --label "$LABEL" "$NETWORK" >/dev/null

for n in $(seq 1 "$NODES"); do
  name=$(node "$n")
  # A node made before nodes had loop devices is made again (its engine's state is on its volume).
  devices=$(docker inspect -f '{{range .HostConfig.Devices}}{{.PathOnHost}} {{end}}' "$name" 2>/dev/null || true)
  if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ] || [[ $devices != *loop-control* ]]; then
    [[ -n $devices ]] && detach_loops "$name"
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker volume create --label "$LABEL" "$name-docker" >/dev/null
    # Two CPUs a node, so that what a node can reserve is known to the tests.
    docker run -d --name "$name" --hostname "$name" --network "$NETWORK" --label "$LABEL" \
      --cpus 2 \
      --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW --cap-add MKNOD \
      --cap-add SYS_PTRACE --cap-add SYS_MODULE \
      --device /dev/loop-control --device-cgroup-rule 'b 7:* rwm' \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      --tmpfs /run --tmpfs /tmp -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
      -v "$name-docker:/var/lib/docker" \
      "$IMAGE" dockerd --host=unix:///var/run/docker.sock --host=tcp://0.0.0.0:2375 \
      --no-new-privileges --cgroup-parent="/$name" >/dev/null
  fi
done
for n in $(seq 1 "$NODES"); do
  for _ in $(seq 1 60); do in_node "$n" docker info >/dev/null 2>&1 && break; sleep 0.5; done
  in_node "$n" docker info >/dev/null 2>&1 || die "the engine in $(node "$n") did not start"
  for image in "$TEST_IMAGE" "$GUARD_IMAGE"; do
    in_node "$n" docker image inspect "$image" >/dev/null 2>&1 \
      || docker save "$image" | docker exec -i "$(node "$n")" docker load >/dev/null
  done
done
manager_ip=$(ip_of 1)
if [ "$(in_node 1 docker info -f '{{.Swarm.LocalNodeState}}')" != active ]; then
  in_node 1 docker swarm init --advertise-addr "$manager_ip" >/dev/null
fi
token=$(in_node 1 docker swarm join-token -q worker)
for n in $(seq 2 "$NODES"); do
  if [ "$(in_node "$n" docker info -f '{{.Swarm.LocalNodeState}}')" != active ]; then
    in_node "$n" docker swarm join --token "$token" "$manager_ip:2377" >/dev/null
  fi
done
# Where each node's engine answers, for exec and archive calls to the node a space runs on.
for n in $(seq 1 "$NODES"); do
  id=$(in_node "$n" docker info -f '{{.Swarm.NodeID}}')
  in_node 1 docker node update --label-add "io.hangar.engine=tcp://$(ip_of "$n"):2375" "$id" >/dev/null
done
echo "tcp://$manager_ip:2375"
