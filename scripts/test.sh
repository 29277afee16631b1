#!/usr/bin/env bash
# `make test`: installs what is missing, then runs every test: unit, integration (real
# server, real SQLite, real Docker) and end-to-end (real Chromium).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
scripts/setup.sh test
say "building the site and the server"
# Without RUSTFLAGS of ours: the build task sets them itself, and for the wasm it must keep the
# target's flags from .cargo/config.toml (no reference types), which an outer RUSTFLAGS hides.
# --tests: the server side is built as `cargo test` below builds it (same features, same
# flag), so that the tests compile nothing more; target/debug/hangar is the e2e tests' server.
env -u RUSTFLAGS cargo xtask build --tests

# The flag the build task built the server side with: any other value rebuilds everything.
export RUSTFLAGS="--cfg erase_components"

# PostgreSQL for the tests that run on it too (two server processes on one database).
HANGAR_TEST_POSTGRES_URL=$(scripts/postgres-up.sh)
export HANGAR_TEST_POSTGRES_URL

say "unit and integration tests"
# Only the server-side crates: building `frontend` for the host would switch on app's
# `hydrate` beside `ssr`.
cargo test -p app -p server -p migrations

say "Swarm runtime tests (a three-node Docker-in-Docker swarm: scripts/swarm-up.sh)"
# A test binary of its own, left out of the plain `cargo test` above: it needs the swarm,
# which its tests start (about 25 s the first time) and which is removed afterwards.
# The same three packages as above: with `-p server` alone, cargo resolves app's features
# differently and rebuilds app and server (80-97 s) for this one binary.
swarm_status=0
cargo test -p app -p server -p migrations --test swarm || swarm_status=$?

# Every bench of server/benches, built as the tests are (debug, the same three packages: no
# rebuild) and run once with a few iterations and small payloads (HANGAR_BENCH_QUICK=1), so
# that a bench that no longer runs fails here; its figures mean nothing. While the swarm is
# up: swarm_start runs on it.
bench_status=0
if [ "$swarm_status" = 0 ]; then
  say "every bench once, quick (HANGAR_BENCH_QUICK=1)"
  # `--bench '*'`: the bench targets only (`--benches` would run the unit tests again).
  HANGAR_BENCH_QUICK=1 cargo test -p app -p server -p migrations --bench '*' || bench_status=$?
fi
scripts/swarm-up.sh down
[ "$swarm_status" = 0 ] || die "the Swarm runtime tests failed (above)"
[ "$bench_status" = 0 ] || die "a bench failed in its quick run (above)"

say "schema-driven fuzz of the JSON API"
scripts/fuzz-api.sh

say "end-to-end tests in Chromium"
node --test --test-concurrency=1 end2end/tests/
