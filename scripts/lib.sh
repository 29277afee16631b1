# Shared helpers for Hangar's set-up scripts: quiet when everything is already there.
# shellcheck shell=bash

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }
# drop_stale_pidfile FILE PROGRAM [MARK] — removes the pid file FILE unless the process it names
# is PROGRAM (with MARK on its command line, when given). A killed daemon leaves its pid file
# behind, its pid can then belong to another process (a kernel thread, say), and a daemon
# refuses to start while its pid file names a live process.
drop_stale_pidfile() {
  local file=$1 program=$2 mark=${3:-} pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file" 2>/dev/null || true)
  if [[ "$pid" =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$program" ] \
    && { [ -z "$mark" ] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$mark"; }; then
    return 0
  fi
  rm -f "$file"
}
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
