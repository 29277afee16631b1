#!/usr/bin/env bash
# Installs what building, running and testing Hangar need, and starts the Docker engine.
# Idempotent and quiet when everything is already there. Usage: scripts/setup.sh [run|test]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
purpose=${1:-run}
cd "$REPO_ROOT"

command -v cargo >/dev/null || die "Rust is not installed: get it from https://rustup.rs and run this again"
command -v curl >/dev/null || apt_install curl

# Debian packages: the Docker engine (when none answers), image building, the browser for tests,
# what sized volumes (losetup, mkfs.ext4, debugfs) and the spaces' network rules (iptables) need;
# iproute2 for the network tests' namespaces.
packages=(ca-certificates debootstrap busybox-static gzip util-linux e2fsprogs iptables iproute2)
command -v node >/dev/null || packages+=(nodejs npm)
# The SSH tests drive the OpenSSH client (ssh, scp, sftp, ssh-keygen, ssh-agent) and rsync;
# setsid is util-linux's (always there). dropbear-bin is the tests' SSH git remote: its binaries
# only (no service is started; Debian's `dropbear` package would start one).
[ "$purpose" = test ] && packages+=(chromium postgresql openssh-client rsync dropbear-bin)
if ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null; then
  packages+=(docker.io)
fi
apt_install "${packages[@]}"

# nginx, the peer the proxy bench measures Hangar's port proxy against (the bench starts it on a
# loopback port of its own). Debian's package starts a web server on port 80 as it installs:
# a policy-rc.d, there only during the install, keeps it from doing so.
if [ "$purpose" = test ] && [ ! -x /usr/sbin/nginx ]; then
  if is_root && [ ! -e /usr/sbin/policy-rc.d ]; then
    (
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      apt_install nginx
    )
  else
    apt_install nginx
  fi
fi

# The toolchain of rust-toolchain.toml, with its wasm target.
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target list --installed | grep -q '^wasm32-unknown-unknown$' \
  || { say "adding the wasm32 target"; rustup target add wasm32-unknown-unknown; }

# No build tool is compiled from source: `cargo xtask build` (xtask/) builds the site and the
# server, with wasm-bindgen linked in as a library and wasm-opt from npm (below).

# npm packages: xterm.js for the site, binaryen's wasm-opt for release builds, Playwright.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
# xterm.js is served from the site; the build copies public/ into it.
mkdir -p public/xterm
for file in node_modules/@xterm/xterm/lib/xterm.mjs node_modules/@xterm/xterm/css/xterm.css \
  node_modules/@xterm/addon-fit/lib/addon-fit.mjs; do
  cmp -s "$file" "public/xterm/$(basename "$file")" || cp "$file" public/xterm/
done

# Schemathesis, the schema-driven fuzzer of the JSON API (scripts/fuzz-api.sh), from PyPI into
# a virtual environment of its own under the ignored .tools/.
schemathesis_version=4.32.5
if [ "$purpose" = test ] \
  && ! .tools/venv/bin/schemathesis --version 2>/dev/null | grep -qF "$schemathesis_version"; then
  command -v python3 >/dev/null || apt_install python3
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  say "installing Schemathesis $schemathesis_version"
  python3 -m venv .tools/venv
  .tools/venv/bin/pip install -q --disable-pip-version-check "schemathesis==$schemathesis_version"
fi

# oidc-provider-mock, a real OpenID provider that the sign-in tests run on 127.0.0.1 (through
# scripts/oidc-provider.py, which sets users' claims and a client's audience), into the same
# virtual environment.
oidc_provider_version=0.3.4
if [ "$purpose" = test ] && ! .tools/venv/bin/python -c \
  "import importlib.metadata as m, sys; sys.exit(m.version('oidc-provider-mock') != '$oidc_provider_version')" 2>/dev/null; then
  [ -x .tools/venv/bin/pip ] || python3 -m venv .tools/venv
  say "installing oidc-provider-mock $oidc_provider_version"
  .tools/venv/bin/pip install -q --disable-pip-version-check "oidc-provider-mock==$oidc_provider_version"
fi

# aiosmtpd, a real SMTP server that the notification tests run on 127.0.0.1 to receive the
# emails Hangar sends, into the same virtual environment.
aiosmtpd_version=1.4.6
if [ "$purpose" = test ] && ! .tools/venv/bin/python -c \
  "import importlib.metadata as m, sys; sys.exit(m.version('aiosmtpd') != '$aiosmtpd_version')" 2>/dev/null; then
  [ -x .tools/venv/bin/pip ] || python3 -m venv .tools/venv
  say "installing aiosmtpd $aiosmtpd_version"
  .tools/venv/bin/pip install -q --disable-pip-version-check "aiosmtpd==$aiosmtpd_version"
fi

# noVNC's viewer, from Debian's novnc package (its files only: the package would pull in
# websockify and more), is served by the site at /novnc/: desktops of spaces open in it,
# through Hangar's own WebSocket bridge to the space's VNC server.
if [ ! -f public/novnc/vnc.html ]; then
  on_debian || die "noVNC's viewer comes from Debian's novnc package: put its /usr/share/novnc in public/novnc"
  say "adding noVNC's viewer (Debian's novnc package) to the site"
  novnc_tmp=$(mktemp -d)
  download_novnc() { (cd "$novnc_tmp" && apt-get download -q novnc >/dev/null 2>&1); }
  download_novnc || { is_root && apt-get update -q >/dev/null 2>&1 && download_novnc; } \
    || die "cannot download Debian's novnc package (apt-get download novnc)"
  dpkg-deb -x "$novnc_tmp"/novnc_*.deb "$novnc_tmp/root"
  mkdir -p public/novnc
  cp -r "$novnc_tmp/root/usr/share/novnc/"{app,core,vendor,vnc.html} public/novnc/
  rm -rf "$novnc_tmp"
fi

scripts/docker-up.sh
# Space images, built locally (no registry is needed): the tiny busybox image of the tests, the
# Debian image of the default template (the SSH tests need its sftp-server, rsync and perl) and
# the full one (code-server, a desktop), which the browser tests open. `make run` builds the
# two templates' images in the background instead (scripts/run.sh): Hangar serves meanwhile.
if [ "$purpose" = test ]; then
  scripts/images.sh all
fi
