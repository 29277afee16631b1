#!/bin/sh
# Git servers for the tests of spaces made from a repository (run as root, as the tests are).
# They must be where a space can reach them without weakening Hangar's guards: spaces reach
# neither the host's addresses nor their neighbours, but do reach the rest of the world through
# the host's routing. So they run in a network namespace of their own, behind a veth pair on
# 10.254.N.0/30: their address, 10.254.N.2, is not the host's.
#   - `git daemon` (anonymous, read-only): git://10.254.N.2/ serves ROOT/public;
#   - `git http-backend` behind basic auth (test-git-http.py): http://10.254.N.2:8080/ serves
#     ROOT/private to the user `hangar-test` with the token `hangar-test-token` only;
#   - an SSH remote (Debian's dropbear): root@10.254.N.2:secret.git, a copy of project.git in
#     ROOT/ssh, for the keys listed in ROOT/ssh/.ssh/authorized_keys only (none at first; the
#     tests add them), no passwords. The server sees ROOT/ssh as root's home: it is mounted
#     over /root in the mount namespace `ip netns exec` gives it, never on the host.
#
#   test-git-server.sh up N ROOT   makes the fixture repositories in ROOT, starts the servers,
#                                  prints their base URLs, one a line (git://…/, http://…/,
#                                  root@…: for the SSH remote)
#   test-git-server.sh down N ROOT stops them and removes the namespace (ROOT is the caller's)
#
# The repositories: public/project.git (branch `main` with README.md, branch `feature` adding
# FEATURE.md), public/dotfiles.git (an install.sh writing ~/dotfiles-installed, and a
# .hangarrc) and private/secret.git (a copy of project.git).
set -eu

cmd=$1
n=$2
root=$3
ns="hgt-git$n"
outside="hgtg$n"
inside="hgtG$n"
address="10.254.$n.2"
here=$(cd "$(dirname "$0")" && pwd)

commit() {
  git -C "$1" -c user.name=test -c user.email=test@example.org commit -q -m "$2"
}

case "$cmd" in
up)
  mkdir -p "$root/work" "$root/public" "$root/private"
  git init -q -b main "$root/work/project"
  echo "# project" >"$root/work/project/README.md"
  git -C "$root/work/project" add README.md
  commit "$root/work/project" "first"
  git -C "$root/work/project" checkout -q -b feature
  echo "feature" >"$root/work/project/FEATURE.md"
  git -C "$root/work/project" add FEATURE.md
  commit "$root/work/project" "feature"
  git -C "$root/work/project" checkout -q main
  git clone -q --bare "$root/work/project" "$root/public/project.git"
  git clone -q --bare "$root/work/project" "$root/private/secret.git"
  git init -q -b main "$root/work/dotfiles"
  printf '#!/bin/sh\necho "dotfiles from $(pwd)" >"$HOME/dotfiles-installed"\necho installed the dotfiles\n' \
    >"$root/work/dotfiles/install.sh"
  chmod +x "$root/work/dotfiles/install.sh"
  echo "alias ll='ls -l'" >"$root/work/dotfiles/.hangarrc"
  git -C "$root/work/dotfiles" add install.sh .hangarrc
  commit "$root/work/dotfiles" "dotfiles"
  git clone -q --bare "$root/work/dotfiles" "$root/public/dotfiles.git"
  mkdir -p "$root/ssh/.ssh"
  chmod 700 "$root/ssh" "$root/ssh/.ssh"
  : >"$root/ssh/.ssh/authorized_keys"
  chmod 600 "$root/ssh/.ssh/authorized_keys"
  git clone -q --bare "$root/work/project" "$root/ssh/secret.git"
  dropbearkey -t ed25519 -f "$root/ssh_host_key" >/dev/null 2>&1

  ip netns add "$ns"
  ip link add "$outside" type veth peer name "$inside"
  ip link set "$inside" netns "$ns"
  ip addr add "10.254.$n.1/30" dev "$outside"
  ip link set "$outside" up
  ip netns exec "$ns" ip addr add "$address/30" dev "$inside"
  ip netns exec "$ns" ip link set "$inside" up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" git daemon --export-all --base-path="$root/public" --listen="$address" \
    --reuseaddr --detach --pid-file="$root/daemon.pid"
  ip netns exec "$ns" python3 "$here/test-git-http.py" "$root/private" "$address" 8080 \
    hangar-test hangar-test-token </dev/null >"$root/http.log" 2>&1 &
  echo $! >"$root/http.pid"
  ip netns exec "$ns" sh -c 'mount --bind "$1/ssh" /root && exec dropbear -F -E -s -j -k -p "$2:22" -r "$1/ssh_host_key" -P "$1/dropbear.pid"' \
    _ "$root" "$address" </dev/null >"$root/ssh.log" 2>&1 &
  echo $! >"$root/ssh.pid"
  i=0
  until git ls-remote "git://$address/project.git" >/dev/null 2>&1 &&
    git ls-remote "http://hangar-test:hangar-test-token@$address:8080/secret.git" >/dev/null 2>&1 &&
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/22"' _ "$address" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
      echo "the git servers did not answer" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "git://$address/"
  echo "http://$address:8080/"
  echo "root@$address:"
  ;;
down)
  for pid in "$root/daemon.pid" "$root/http.pid" "$root/ssh.pid"; do
    if [ -f "$pid" ]; then kill "$(cat "$pid")" 2>/dev/null || true; fi
  done
  ip link del "$outside" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  ;;
*)
  echo "usage: $0 up|down N ROOT" >&2
  exit 2
  ;;
esac
