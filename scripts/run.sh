#!/usr/bin/env bash
# `make run`: installs what is missing, builds a release, and serves Hangar on
# http://127.0.0.1:3000 with SQLite (./hangar.db) and the local Docker engine.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
scripts/setup.sh run
say "building Hangar (release)"
# Without RUSTFLAGS of ours: the build task sets the flags of each build itself.
env -u RUSTFLAGS cargo xtask build --release
export LEPTOS_SITE_ROOT="$REPO_ROOT/target/site"
say "starting Hangar at http://${HANGAR_LISTEN:-127.0.0.1:3000} (Ctrl-C stops it; spaces keep running)"
exec target/release/hangar serve "$@"
