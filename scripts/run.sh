#!/usr/bin/env bash
# `make run`: installs what is missing, builds a release, and serves Hangar on
# http://127.0.0.1:3000 with SQLite (./hangar.db) and the local Docker engine.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
scripts/setup.sh run
export PATH="$REPO_ROOT/node_modules/.bin:$PATH"   # wasm-opt for the release wasm
say "building Hangar (release)"
env -u RUSTFLAGS cargo leptos build --release
export LEPTOS_SITE_ROOT="$REPO_ROOT/target/site"
say "starting Hangar at http://${HANGAR_LISTEN:-127.0.0.1:3000} (Ctrl-C stops it; spaces keep running)"
exec target/release/hangar serve "$@"
