#!/usr/bin/env bash
# `make run`: installs what is missing, builds a release, and serves Hangar on
# http://127.0.0.1:3000 with SQLite (./hangar.db) and the local Docker engine.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
scripts/setup.sh run
# The templates' images (a few minutes for the default one, about nine for the full one) are
# built beside the Rust build and Hangar's start: a space of a template starts once its image
# is there (until then its start says which image is missing and how to build it).
if ! docker image inspect hangar/default:bookworm >/dev/null 2>&1 \
  || ! docker image inspect hangar/full:bookworm >/dev/null 2>&1; then
  images_log=/tmp/hangar-images-background.log
  say "building the templates' images in the background (log: $images_log)"
  nohup sh -c 'scripts/images.sh default && scripts/images.sh full' >"$images_log" 2>&1 &
else
  # Images of an older revision are brought up to date in place (seconds; nothing if current).
  scripts/images.sh default
  scripts/images.sh full
fi
# Hangar's own helper image for Swarm nodes' network rules (seconds; nothing when present).
scripts/images.sh guard
say "building Hangar (release)"
# Without RUSTFLAGS of ours: the build task sets the flags of each build itself.
env -u RUSTFLAGS cargo xtask build --release
export LEPTOS_SITE_ROOT="$REPO_ROOT/target/site"
say "starting Hangar at http://${HANGAR_LISTEN:-127.0.0.1:3000} (Ctrl-C stops it; spaces keep running)"
exec target/release/hangar serve "$@"
