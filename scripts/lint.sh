#!/usr/bin/env bash
# Formatting and clippy for the server side, the wasm target and the build task.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
cargo fmt --all -- --check
RUSTFLAGS="--cfg erase_components" cargo clippy -p app -p server -p migrations --all-targets -- -D warnings
env -u RUSTFLAGS cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
env -u RUSTFLAGS cargo clippy -p xtask --all-targets -- -D warnings
