#!/usr/bin/env bash
# The schema-driven fuzz of the JSON API: starts target/debug/hangar on a temporary SQLite
# database (listening on 127.0.0.1 only, with no Docker engine, so that nothing the fuzzer
# makes up reaches Docker or leaves the machine), then lets Schemathesis try every route of
# /api/v1/openapi.json with valid and invalid bodies, parameters and headers, as a member and
# as an admin. It fails on any 5xx (but the 503s of routes that need the missing engine) and
# on any answer the document does not allow. Budget: HANGAR_FUZZ_SECS per role (default 75).
# Usage: scripts/fuzz-api.sh   (after `cargo xtask build`, as `make test` runs it)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

schemathesis=.tools/venv/bin/schemathesis
[ -x "$schemathesis" ] || die "Schemathesis is missing: run scripts/setup.sh test"
[ -x target/debug/hangar ] || die "target/debug/hangar is missing: run cargo xtask build --tests"
budget=${HANGAR_FUZZ_SECS:-75}
seed=${HANGAR_FUZZ_SEED:-15}

work=$(mktemp -d /tmp/hangar-fuzz.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
admin_password="fuzz-admin-$(date +%s%N)"
HANGAR_LISTEN="127.0.0.1:$port" \
HANGAR_DATABASE_URL="sqlite://$work/hangar.db" \
HANGAR_ADMIN_PASSWORD="$admin_password" \
HANGAR_DEFAULT_TEMPLATE=false \
DOCKER_HOST="unix://$work/no-docker.sock" \
LEPTOS_SITE_ROOT=target/site \
HANGAR_LOG=warn \
  target/debug/hangar serve >"$work/hangar.log" 2>&1 &
server=$!
finish() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap finish EXIT

for _ in $(seq 1 300); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/hangar.log"; die "hangar did not start"; }
  sleep 0.1
done

# api METHOD PATH [BODY]: a call as the admin (session cookie), answering the JSON body.
api() {
  curl -fsS -X "$1" -b "$work/cookies" -c "$work/cookies" -H "Origin: $base" \
    -H 'Content-Type: application/json' ${3:+-d "$3"} "$base$2"
}
secret() { python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])'; }

api POST /api/v1/auth/login "{\"username\": \"admin\", \"password\": \"$admin_password\"}" >/dev/null
api POST /api/v1/users '{"username": "member", "password": "member-password"}' >/dev/null
# Something to find: a group with the member in it, and a template only that group may use.
group=$(api POST /api/v1/groups '{"name": "fuzzers", "compute_units": 2}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
member=$(api GET /api/v1/users | python3 -c 'import json, sys; print([u["id"] for u in json.load(sys.stdin) if u["username"] == "member"][0])')
api PUT "/api/v1/groups/$group/members/$member" >/dev/null
api POST /api/v1/templates "{\"name\": \"box\", \"image\": \"hangar/busybox:test\", \"compute_units\": 1, \"allowed_groups\": [\"$group\"]}" >/dev/null
admin_token=$(api POST /api/v1/me/tokens '{"name": "fuzz"}' | secret)
rm "$work/cookies"
api POST /api/v1/auth/login '{"username": "member", "password": "member-password"}' >/dev/null
member_token=$(api POST /api/v1/me/tokens '{"name": "fuzz"}' | secret)

failed=0
for role in member admin; do
  token_var="${role}_token"
  say "fuzzing the JSON API as the $role (${budget} s)"
  if ! HANGAR_FUZZ_TOKEN=${!token_var} "$schemathesis" --config-file scripts/fuzz/schemathesis.toml \
      run "$base/api/v1/openapi.json" --max-time "$budget" --seed "$seed" --no-color \
      >"$work/$role.txt" 2>&1; then
    failed=1
    sed -n '/FAILURES\|ERRORS/,$p' "$work/$role.txt" | head -200
  fi
  sed -n '/= WARNINGS =/,$p' "$work/$role.txt"
done
kill -0 "$server" 2>/dev/null || { cat "$work/hangar.log"; die "hangar died during the fuzz"; }
grep -i "panicked" "$work/hangar.log" && die "hangar panicked during the fuzz"
[ "$failed" = 0 ] || die "the fuzz found answers the API document does not allow (above)"
say "the fuzz found nothing"
