#!/usr/bin/env bash
# Runs the whole test suite: unit tests, then the integration suite on SQLite and on PostgreSQL.
# PostgreSQL: ROSTER_TEST_POSTGRES_URL if set, else a local server started by scripts/pg.sh. When PostgreSQL is
# not installed the Postgres run is skipped with a loud warning, except under CI=true, where that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

passed() { grep -E '^test result:' "$1" | awk '{sum += $4} END {print sum + 0}'; }
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

echo "==> unit tests and integration tests on SQLite"
cargo test --workspace --color never 2>&1 | tee "$log/sqlite"
[ "${PIPESTATUS[0]}" = 0 ] || exit 1
sqlite_integration=$(awk '/Running tests\/api\/main.rs/ {on=1} on && /^test result:/ {print $4; exit}' "$log/sqlite")
all_sqlite=$(passed "$log/sqlite")

pg_url=${ROSTER_TEST_POSTGRES_URL:-}
if [ -z "$pg_url" ]; then
  set +e
  pg_url=$(scripts/pg.sh)
  status=$?
  set -e
  if [ "$status" != 0 ]; then
    if [ "${CI:-}" = true ]; then
      echo "ERROR: PostgreSQL is required under CI=true but could not be started (scripts/pg.sh exit $status)" >&2
      exit 1
    fi
    cat >&2 <<'WARN'

################################################################################
#  WARNING: PostgreSQL is not available, so the Postgres run was SKIPPED.      #
#  Install it (Debian: apt-get install postgresql) to test both backends.      #
################################################################################

WARN
    echo "SQLite: $sqlite_integration integration tests passed ($all_sqlite tests in all); Postgres: SKIPPED"
    exit 0
  fi
fi

drop_test_databases() {
  psql "$pg_url" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'roster\_test\_%'" 2>/dev/null |
    while read -r db; do psql "$pg_url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null; done
}
drop_test_databases

echo "==> integration tests on PostgreSQL"
ROSTER_TEST_POSTGRES_URL=$pg_url cargo test --test api --color never 2>&1 | tee "$log/postgres"
pg_status=${PIPESTATUS[0]}
drop_test_databases
[ "$pg_status" = 0 ] || exit 1
postgres_integration=$(passed "$log/postgres")

echo
echo "SQLite: $sqlite_integration integration tests passed ($all_sqlite tests in all, with unit tests)"
echo "Postgres: $postgres_integration integration tests passed"
