#!/usr/bin/env bash
# Builds Hangar's local Docker images without a registry (none is reachable here, Debian's
# apt mirrors are): hangar/default:bookworm, the space image, from debootstrap;
# hangar/full:bookworm on top of it, with code-server and a VNC desktop (Debian packages and the
# npm registry, no Docker Hub, no GitHub); hangar/busybox:test, a tiny image for tests; and
# hangar/guard, Hangar's own helper on Swarm nodes: it installs their network rules and makes their
# sized volumes (busybox, and this host's iptables, losetup and e2fsprogs, a few MB). Each is built only when missing (or brought up to date).
# Usage: scripts/images.sh [all|default|full|test|guard]   Mirror override: HANGAR_DEBIAN_MIRROR=URL
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DEFAULT_IMAGE=hangar/default:bookworm
TEST_IMAGE=hangar/busybox:test
FULL_IMAGE=hangar/full:bookworm
# The Swarm runtime runs this exact tag on every node (server/src/runtime/swarm/guard.rs):
# change both together.
GUARD_IMAGE=hangar/guard:2
# Revision of the space images' fix-ups: 2 = `ping` without file capabilities (spaces have no
# raw sockets; ping uses ICMP datagram sockets instead, and a binary that asks for a capability
# the space cannot have does not even start).
SPACE_IMAGE_REVISION=2
# code-server's engines field wants Node 24 exactly; these were verified to build together.
CODE_SERVER_VERSION=4.139.1
NODE_VERSION=24.22.3
NPM_VERSION=11.21.2
# /var/tmp rather than /tmp: a rootfs is ~200 MB and /tmp is often a small tmpfs.
WORK_PARENT=${HANGAR_IMAGES_TMP:-/var/tmp}
LOG=/tmp/hangar-images.log
# git's ssh transport needs openssh-client; debootstrap installs no Recommends, so list it.
PACKAGES=bash,coreutils,procps,git,curl,ca-certificates,openssh-client,openssh-sftp-server,rsync,less,nano,vim-tiny,iproute2,iputils-ping

WORK=
BUILD_CONTAINER=
cleanup() {
  [ -n "$BUILD_CONTAINER" ] && docker rm -f "$BUILD_CONTAINER" >/dev/null 2>&1
  BUILD_CONTAINER=
  [ -n "$WORK" ] && [ -d "$WORK" ] || return 0
  # A failed debootstrap can leave proc/sys/dev mounted inside the rootfs; never let
  # rm reach through them into the host.
  awk -v d="$WORK/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l || true
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so that the EXIT trap also runs when interrupted

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
size_of() { docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }
revision_of() { docker image inspect -f '{{index .Config.Labels "io.hangar.image.revision"}}' "$1" 2>/dev/null; }

# A shell command that rewrites /usr/bin/ping without the file capability Debian's package gives
# it (cap_net_raw): a copy does not carry the extended attribute over.
PING_FIX='p=/usr/bin/ping; [ -f "$p" ] || exit 0; cp "$p" "$p.hangar" && chmod 755 "$p.hangar" && mv -f "$p.hangar" "$p"'

# up_to_date IMAGE — brings an image built before the current revision up to date in place (a
# container of it runs the fix-ups, and is committed under the same name with the same command):
# seconds, not a rebuild.
up_to_date() {
  local image=$1 cmd=$2
  [ "$(revision_of "$image")" = "$SPACE_IMAGE_REVISION" ] && return 0
  say "updating $image to revision $SPACE_IMAGE_REVISION (ping without raw sockets)"
  BUILD_CONTAINER=hangar-image-fix-$$
  # (The images have no entrypoint: the command is replaced, and given back on commit.)
  docker run --name "$BUILD_CONTAINER" --network none "$image" /bin/sh -c "$PING_FIX" >>"$LOG" 2>&1 \
    || die "updating $image failed (log: $LOG)"
  docker commit --change "CMD $cmd" \
    --change "LABEL io.hangar.image.revision=$SPACE_IMAGE_REVISION" "$BUILD_CONTAINER" "$image" >/dev/null
  docker rm -f "$BUILD_CONTAINER" >/dev/null
  BUILD_CONTAINER=
}

# host_mirror SUITE — the first URI the host's apt sources use for SUITE (one-line and
# deb822 formats), so that the build uses the same (possibly local or proxied) mirror.
host_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    case $f in
      *.sources) awk -v s="$1" 'BEGIN { RS = "" } {
          uri = ""; deb = 0; hit = 0; on = 1; n = split($0, l, "\n")
          for (i = 1; i <= n; i++) {
            k = l[i]; sub(/:.*/, "", k); v = l[i]; sub(/^[^:]*:[ \t]*/, "", v); m = split(v, w, /[ \t]+/)
            if (k == "URIs") uri = w[1]
            if (k == "Enabled" && v ~ /^no/) on = 0
            for (j = 1; j <= m; j++) { if (k == "Types" && w[j] == "deb") deb = 1; if (k == "Suites" && w[j] == s) hit = 1 }
          }
          if (uri != "" && deb && hit && on) print uri }' "$f" ;;
      *) awk -v s="$1" '$1 == "deb" { sub(/\[[^]]*\]/, ""); if ($3 == s) print $2 }' "$f" ;;
    esac
  done | sed -n '1s:/*$::p' # sed reads everything: head would SIGPIPE the loop under pipefail
}

build_default() {
  if have_image "$DEFAULT_IMAGE"; then up_to_date "$DEFAULT_IMAGE" '["/bin/bash"]'; return 0; fi
  is_root || die "building $DEFAULT_IMAGE needs root (debootstrap creates device nodes and chroots): run 'sudo $0 default'"
  apt_install debootstrap
  local mirror security start=$SECONDS root
  mirror=${HANGAR_DEBIAN_MIRROR:-$(host_mirror bookworm)}
  mirror=${mirror:-http://deb.debian.org/debian}
  security=$(host_mirror bookworm-security)
  security=${security:-http://deb.debian.org/debian-security}
  say "building $DEFAULT_IMAGE with debootstrap from $mirror (a few minutes; log: $LOG)"
  WORK=$(mktemp -d "$WORK_PARENT/hangar-image.XXXXXX")
  root=$WORK/rootfs
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$root" "$mirror" >"$LOG" 2>&1 \
    || { tail -20 "$LOG" >&2; die "debootstrap failed (log: $LOG)"; }
  # debootstrap installs the release as of its point release only; spaces are long-lived
  # and reachable from the network, so pull in security and stable updates now.
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
  { chroot "$root" apt-get update -q && DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -y -q upgrade; } >>"$LOG" 2>&1 \
    || { tail -20 "$LOG" >&2; die "updating the image's packages failed (log: $LOG)"; }
  # debootstrap copied the host's resolv.conf and hostname in; Docker bind-mounts its own
  # over both (and /etc/hosts) at run time, so ship neutral ones rather than host details.
  : >"$root/etc/resolv.conf"
  echo hangar >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
  chroot "$root" /bin/sh -c "$PING_FIX"
  # Package lists and downloaded .debs are a third of the size and stale by the first use.
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
    "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/debootstrap
  # --numeric-owner: ids must be the rootfs's own, not mapped through the host's names.
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" -c . \
    | docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
      --change 'LABEL io.hangar.image=default' \
      --change "LABEL io.hangar.image.revision=$SPACE_IMAGE_REVISION" - "$DEFAULT_IMAGE" >/dev/null
  cleanup; WORK=
  say "built $DEFAULT_IMAGE in $((SECONDS - start)) s ($(size_of "$DEFAULT_IMAGE"))"
}

# busybox_root — a new $WORK/rootfs holding busybox-static's binary with every applet at its
# usual place (bin/sh, usr/bin/env, ...) so that scripts' #! lines work; prints its path.
busybox_root() {
  local root bb
  # Take the binary by package, not by path: the dynamic 'busybox' package owns the same path.
  bb=$(dpkg -L busybox-static | grep -m1 '/bin/busybox$') || die "busybox-static ships no /bin/busybox"
  root=$WORK/rootfs
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,run,tmp}
  install -m 755 "$bb" "$root/bin/busybox"
  "$bb" --list-full | while read -r applet; do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done
  echo "$root"
}

build_test() {
  have_image "$TEST_IMAGE" && return 0
  apt_install busybox-static
  local start=$SECONDS root
  WORK=$(mktemp -d "$WORK_PARENT/hangar-image.XXXXXX")
  root=$(busybox_root)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"; chmod 700 "$root/root"
  # Owner forced to root so that the image is the same whoever builds it.
  tar --numeric-owner --owner=0 --group=0 -C "$root" -c . \
    | docker import --change 'CMD ["/bin/sh"]' --change 'LABEL io.hangar.image=test' - "$TEST_IMAGE" >/dev/null
  cleanup; WORK=
  say "built $TEST_IMAGE in $((SECONDS - start)) s ($(size_of "$TEST_IMAGE"))"
}

# The guard: busybox (a shell, ip, awk) and iptables with both its back ends (nf_tables and
# legacy: the helper uses the one the node's own rules are in) and its extensions; losetup and
# e2fsprogs' mke2fs and debugfs for the nodes' sized volumes; with exactly the libraries they load,
# copied from this host's Debian packages. It runs on Swarm nodes with nothing of their file system
# but what each task needs; no template's image is ever used for it. Tag 2 added the disk tools.
build_guard() {
  have_image "$GUARD_IMAGE" && return 0
  apt_install busybox-static iptables mount e2fsprogs
  local start=$SECONDS root binaries disk_tools
  WORK=$(mktemp -d "$WORK_PARENT/hangar-image.XXXXXX")
  root=$(busybox_root)
  # The two multi-call binaries, their iptables names, and the extensions (libxt_*.so).
  dpkg -L iptables | grep -E '/sbin/(xtables-(nft|legacy)-multi|iptables-(nft|legacy)(-save)?)$|/xtables/lib[^/]+\.so$' \
    | while read -r f; do rm -f "$root$f"; (cd / && cp -a --parents "${f#/}" "$root"); done
  binaries=$(dpkg -L iptables | grep -E '/sbin/xtables-(nft|legacy)-multi$|/xtables/lib[^/]+\.so$')
  # The disk tools replace busybox's applets of the same names (mkfs.ext4 is mke2fs by its name).
  disk_tools="$(dpkg -L mount | grep -m1 '/sbin/losetup$') $(dpkg -L e2fsprogs | grep -E '/sbin/(mke2fs|debugfs)$' | tr '\n' ' ')"
  for f in $disk_tools; do rm -f "$root$f"; (cd / && cp -a --parents "${f#/}" "$root"); done
  ln -sf mke2fs "$root/sbin/mkfs.ext4"
  (cd / && cp -a --parents etc/mke2fs.conf "$root")
  binaries="$binaries $disk_tools"
  # shellcheck disable=SC2086 # one word per file
  ldd $binaries 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && NF == 2 { print $1 }' | sort -u \
    | while read -r lib; do (cd / && cp -L --parents "${lib#/}" "$root"); done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -c . \
    | docker import --change 'CMD ["/bin/sh"]' --change 'LABEL io.hangar.image=guard' - "$GUARD_IMAGE" >/dev/null
  cleanup; WORK=
  docker run --rm --network none "$GUARD_IMAGE" iptables-nft -V >/dev/null 2>&1 \
    || { docker image rm "$GUARD_IMAGE" >/dev/null 2>&1; die "$GUARD_IMAGE does not run iptables (a library is missing?)"; }
  docker run --rm --network none "$GUARD_IMAGE" sh -c "/sbin/losetup --version && /sbin/mkfs.ext4 -V && /sbin/debugfs -V" >>"$LOG" 2>&1 \
    || { docker image rm "$GUARD_IMAGE" >/dev/null 2>&1; die "$GUARD_IMAGE does not run losetup, mkfs.ext4 or debugfs (a library is missing?)"; }
  say "built $GUARD_IMAGE in $((SECONDS - start)) s ($(size_of "$GUARD_IMAGE"))"
}

# The full image: the default one plus code-server and a desktop, made by running
# scripts/images/full-setup.sh in a container of the default image and committing it. HTTPS
# from inside a container may need the host's CA certificates (a TLS-inspecting proxy): the
# host's bundle is mounted for the build only, so it never becomes part of the image.
build_full() {
  if have_image "$FULL_IMAGE"; then up_to_date "$FULL_IMAGE" '["/bin/bash"]'; return 0; fi
  build_default
  local start=$SECONDS bundle=/etc/ssl/certs/ca-certificates.crt
  [ -r "$bundle" ] || die "no CA bundle at $bundle (install ca-certificates)"
  say "building $FULL_IMAGE: code-server $CODE_SERVER_VERSION and a VNC desktop (a few minutes; log: $LOG)"
  WORK=$(mktemp -d "$WORK_PARENT/hangar-image.XXXXXX")
  cp "$bundle" "$WORK/ca.pem"
  cp "$REPO_ROOT/scripts/images/full-setup.sh" "$WORK/setup.sh"
  chmod -R a+rX "$WORK"
  BUILD_CONTAINER=hangar-image-build-$$
  # The host's network: the default bridge may be missing (a dockerd started without one).
  docker run --name "$BUILD_CONTAINER" --network host -v "$WORK:/run/hangar-build:ro" \
    -e HANGAR_BUILD_CA=/run/hangar-build/ca.pem -e NODE_VERSION="$NODE_VERSION" \
    -e NPM_VERSION="$NPM_VERSION" -e CODE_SERVER_VERSION="$CODE_SERVER_VERSION" \
    "$DEFAULT_IMAGE" bash /run/hangar-build/setup.sh >"$LOG" 2>&1 \
    || { tail -30 "$LOG" >&2; die "building $FULL_IMAGE failed (log: $LOG)"; }
  # The bind mount is not part of a commit; the image keeps the default one's command.
  docker commit --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
    --change 'LABEL io.hangar.image=full' \
    --change "LABEL io.hangar.image.revision=$SPACE_IMAGE_REVISION" "$BUILD_CONTAINER" "$FULL_IMAGE" >/dev/null
  cleanup; WORK=
  say "built $FULL_IMAGE in $((SECONDS - start)) s ($(size_of "$FULL_IMAGE"))"
}

case ${1:-all} in
  all | default | full | test | guard) ;;
  *) die "usage: $0 [all|default|full|test|guard]" ;;
esac
"$REPO_ROOT/scripts/docker-up.sh" # quiet when the engine already answers
case ${1:-all} in
  all) build_test; build_guard; build_default; build_full ;;
  default) build_default ;;
  full) build_full ;;
  test) build_test ;;
  guard) build_guard ;;
esac
