# Shared helpers for Hangar's set-up scripts: quiet when everything is already there.
# shellcheck shell=bash

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }
on_debian() { [ -r /etc/os-release ] && grep -qiE '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release; }

# apt_install PKG... — installs the Debian packages that are missing.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! is_root || ! on_debian; then
    die "missing packages: ${missing[*]} — install them with your package manager (as root on Debian: apt-get install ${missing[*]})"
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q "${missing[@]}" >/tmp/hangar-apt.log 2>&1; then
    apt-get update -q >>/tmp/hangar-apt.log 2>&1
    apt-get install -y -q "${missing[@]}" >>/tmp/hangar-apt.log 2>&1 || { tail -20 /tmp/hangar-apt.log; die "apt-get install failed (log: /tmp/hangar-apt.log)"; }
  fi
}
