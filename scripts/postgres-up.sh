#!/usr/bin/env bash
# Starts a throw-away PostgreSQL (Debian's) on 127.0.0.1:55432 for the tests, if not running,
# and prints its URL. Idempotent. The data lives in /var/tmp/hangar-test-pg.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PORT=${HANGAR_TEST_PG_PORT:-55432}
DATA=/var/tmp/hangar-test-pg
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

apt_install postgresql
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$bin/pg_ctl" ] || die "PostgreSQL's pg_ctl not found under /usr/lib/postgresql"

as_postgres() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! as_postgres "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"
    is_root && chown postgres:postgres "$DATA"
    as_postgres "$bin/initdb" -D "$DATA" -A trust -U postgres >/tmp/hangar-test-pg-init.log 2>&1 \
      || { tail -20 /tmp/hangar-test-pg-init.log; die "initdb failed"; }
  fi
  # A killed server leaves its pid file; pg_ctl start copes when that pid is not alive.
  as_postgres "$bin/pg_ctl" -D "$DATA" -w -t 30 -l "$DATA/server.log" \
    -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null \
    || { tail -20 "$DATA/server.log" >&2; die "PostgreSQL did not start"; }
fi
echo "$URL"
