#!/usr/bin/env bash
# The schema-driven fuzz of the JSON API: starts target/debug/hangar on a temporary SQLite
# database (listening on 127.0.0.1 only, with no Docker engine, so that nothing the fuzzer
# makes up reaches Docker or leaves the machine), then lets Schemathesis try every route of
# /api/v1/openapi.json with valid and invalid bodies, parameters and headers, as a member and
# as an admin (at the same time, each against a Hangar of its own). It fails on any 5xx (but
# the 503s of routes that need the missing engine) and on any answer the document does not
# allow. Budget: HANGAR_FUZZ_SECS per role (default 75).
# Usage: scripts/fuzz-api.sh   (after `cargo xtask build`, as `make test` runs it)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

schemathesis=.tools/venv/bin/schemathesis
[ -x "$schemathesis" ] || die "Schemathesis is missing: run scripts/setup.sh test"
[ -x target/debug/hangar ] || die "target/debug/hangar is missing: run cargo xtask build --tests"
budget=${HANGAR_FUZZ_SECS:-75}
seed=${HANGAR_FUZZ_SEED:-15}

top=$(mktemp -d /tmp/hangar-fuzz.XXXXXX)
finish() {
  for pid in "$top"/*/pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  [ -n "${HANGAR_FUZZ_KEEP:-}" ] || rm -rf "$top"
}
trap finish EXIT

# fuzz ROLE: a Hangar of its own (a role's fuzz cannot disturb the other's: the admin's may
# delete the member), the same things to find in it, then Schemathesis as ROLE. Its output
# goes to $top/ROLE.txt, the server's to $top/ROLE/hangar.log. Exit status: 0 nothing found,
# 1 the fuzz failed, anything else: the setting up failed.
fuzz() {
  local role=$1
  local work="$top/$role"
  mkdir -p "$work"
  local port base admin_password server
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  base="http://127.0.0.1:$port"
  admin_password="fuzz-admin-$(date +%s%N)"
  HANGAR_LISTEN="127.0.0.1:$port" \
  HANGAR_DATABASE_URL="sqlite://$work/hangar.db" \
  HANGAR_ADMIN_PASSWORD="$admin_password" \
  HANGAR_DEFAULT_TEMPLATE=false \
  HANGAR_SSH_LISTEN=127.0.0.1:0 \
  DOCKER_HOST="unix://$work/no-docker.sock" \
  LEPTOS_SITE_ROOT=target/site \
  HANGAR_LOG=warn \
    target/debug/hangar serve >"$work/hangar.log" 2>&1 &
  server=$!
  echo "$server" >"$work/pid"
  for _ in $(seq 1 300); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { echo "hangar did not start" >&2; return 2; }
    sleep 0.1
  done

  # api METHOD PATH [BODY]: a call as whoever signed in last (session cookie), answering the
  # JSON body.
  api() {
    curl -fsS -X "$1" -b "$work/cookies" -c "$work/cookies" -H "Origin: $base" \
      -H 'Content-Type: application/json' ${3:+-d "$3"} "$base$2"
  }
  secret() { python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])'; }

  api POST /api/v1/auth/login "{\"username\": \"admin\", \"password\": \"$admin_password\"}" >/dev/null
  api POST /api/v1/users '{"username": "member", "password": "member-password"}' >/dev/null
  # Something to find: a group with the member in it, and a template only that group may use.
  local group member token
  group=$(api POST /api/v1/groups '{"name": "fuzzers", "compute_units": 2}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
  member=$(api GET /api/v1/users | python3 -c 'import json, sys; print([u["id"] for u in json.load(sys.stdin) if u["username"] == "member"][0])')
  api PUT "/api/v1/groups/$group/members/$member" >/dev/null
  api POST /api/v1/templates "{\"name\": \"box\", \"image\": \"hangar/busybox:test\", \"compute_units\": 1, \"allowed_groups\": [\"$group\"]}" >/dev/null
  if [ "$role" = member ]; then
    rm "$work/cookies"
    api POST /api/v1/auth/login '{"username": "member", "password": "member-password"}' >/dev/null
  fi
  # Every scope: the fuzz reaches the logic of every route, not the scope check alone.
  token=$(api POST /api/v1/me/tokens '{"name": "fuzz", "scopes": ["read", "write", "credentials"]}' | secret)
  rm -f "$work/cookies"

  # Two operations can end the fuzzer's own token (it learns the ids from the lists): revoking
  # it, and an admin's update of their own account with `revoke_tokens`. They are fuzzed last,
  # on their own, so that the rest is fuzzed signed in whatever the time budget reaches.
  local status=0
  local last=(--include-name "DELETE /api/v1/me/tokens/{id}" --include-name "PATCH /api/v1/users/{id}")
  local rest=(--exclude-name "DELETE /api/v1/me/tokens/{id}" --exclude-name "PATCH /api/v1/users/{id}")
  HANGAR_FUZZ_TOKEN=$token "$schemathesis" --config-file scripts/fuzz/schemathesis.toml \
    run "$base/api/v1/openapi.json" --max-time "$budget" --seed "$seed" --no-color \
    "${rest[@]}" >"$top/$role.txt" 2>&1 || status=1
  # Signed out for most of the run, a fuzz tests only the 401 path: that is a failure too.
  scripts/fuzz/signed-in.py "$role" "$top/$role.txt" >"$top/$role.signed-out" || status=1
  HANGAR_FUZZ_TOKEN=$token "$schemathesis" --config-file scripts/fuzz/schemathesis.toml \
    run "$base/api/v1/openapi.json" --max-time 15 --seed "$seed" --no-color \
    "${last[@]}" >>"$top/$role.txt" 2>&1 || status=1
  kill -0 "$server" 2>/dev/null || { echo "hangar died during the fuzz as the $role" >"$top/$role.died"; status=1; }
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  return "$status"
}

# The two roles at once: each is mostly one Python process and one server, on one core.
say "fuzzing the JSON API as the member and as the admin, side by side (${budget} s each)"
declare -A fuzzing
for role in member admin; do
  fuzz "$role" &
  fuzzing[$role]=$!
done

failed=0
for role in member admin; do
  status=0
  wait "${fuzzing[$role]}" || status=$?
  case "$status" in
    0) ;;
    1)
      failed=1
      say "the $role's fuzz:"
      [ -f "$top/$role.died" ] && { cat "$top/$role.died"; cat "$top/$role/hangar.log"; }
      cat "$top/$role.signed-out"
      sed -n '/FAILURES\|ERRORS/,$p' "$top/$role.txt" | head -200
      ;;
    *)
      cat "$top/$role/hangar.log"
      die "setting up the $role's fuzz failed (exit $status): see hangar's log above"
      ;;
  esac
  sed -n '/= WARNINGS =/,$p' "$top/$role.txt"
  grep -i "panicked" "$top/$role/hangar.log" && die "hangar panicked during the $role's fuzz"
done
[ "$failed" = 0 ] || die "the fuzz found answers the API document does not allow (above)"
say "the fuzz found nothing"
