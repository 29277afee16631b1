# Shared helpers for Hangar's set-up scripts: quiet when everything is already there.
# shellcheck shell=bash

CARGO_LEPTOS_VERSION=0.3.11
# Must equal the wasm-bindgen crate version pinned in Cargo.toml / Cargo.lock.
WASM_BINDGEN_VERSION=0.2.108
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

# cargo_install_from_crate NAME VERSION [cargo update args...] — fetches the crate's source
# from crates.io, adjusts its lock file where the reachable index or our rustc needs it, and
# installs it. Built in release without LTO: these tools only orchestrate, and a full LTO
# link takes most of half an hour on two cores.
cargo_install_from_crate() {
  local name=$1 version=$2; shift 2
  local work
  work=$(mktemp -d)
  say "building $name $version from crates.io (once per machine; several minutes)"
  curl -fsSL "https://static.crates.io/crates/$name/$name-$version.crate" | tar -xz -C "$work" \
    || die "cannot download $name $version from crates.io"
  (
    cd "$work/$name-$version" || exit 1
    while [ $# -gt 0 ]; do
      cargo update -q -p "$1" --precise "$2" || exit 1
      shift 2
    done
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
      cargo install -q --locked --path . --root "$HOME/.cargo"
  ) || die "building $name $version failed"
  rm -rf "$work"
}
