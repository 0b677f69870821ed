#!/usr/bin/env bash
# Runs every test:
#   1. unit tests, the contract test and the API suite on SQLite;
#   2. the unit tests and the API suite on PostgreSQL;
#   3. the contract suite against a live Roster on both backends: openapi.yaml through two validators and three
#      linters (scripts/lint-spec.sh), generated
#      SDKs (Python, TypeScript, Rust) running a story, the PyPI `listmonk` client unmodified, Schemathesis (all
#      checks, all phases), Swagger UI in
#      headless Chromium; that vendor/ is the published sqlx plus its patch (scripts/check-vendor.sh); then
#      scripts/abuse.sh --small (slow, silent and hostile clients against a live Roster).
# `scripts/test.sh --fast` stops after step 2.
# PostgreSQL: ROSTER_TEST_POSTGRES_URL if set, else a local server started by scripts/pg.sh. When PostgreSQL is not
# installed the Postgres runs are skipped with a loud warning, except under CI=true, where that is a failure.
set -euo pipefail # a failing `step | tee log` ends the script
cd "$(dirname "$0")/.."

fast=false
[ "${1:-}" = --fast ] && fast=true

passed() { grep -E '^test result:' "$1" | awk '{sum += $4} END {print sum + 0}'; }
# api_passed LOG: tests passed by the API suite (tests/api) in a cargo test log.
api_passed() { awk '/Running tests\/api\/main.rs/ {on=1} on && /^test result:/ {print $4; exit}' "$1"; }
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
summary=()

echo "==> unit tests, contract test and API suite on SQLite"
cargo test --workspace --color never 2>&1 | tee "$log/sqlite"
summary+=("SQLite: $(api_passed "$log/sqlite") API tests passed ($(passed "$log/sqlite") tests in all, with unit and contract tests)")

pg_url=${ROSTER_TEST_POSTGRES_URL:-}
if [ -z "$pg_url" ]; then
  set +e
  pg_url=$(scripts/pg.sh)
  status=$?
  set -e
  if [ "$status" != 0 ]; then
    pg_url=
    if [ "${CI:-}" = true ]; then
      echo "ERROR: PostgreSQL is required under CI=true but could not be started (scripts/pg.sh exit $status)" >&2
      exit 1
    fi
    cat >&2 <<'WARN'

################################################################################
#  WARNING: PostgreSQL is not available, so the Postgres runs are SKIPPED.     #
#  Install it (Debian: apt-get install postgresql) to test both backends.      #
################################################################################

WARN
    summary+=("Postgres: SKIPPED (PostgreSQL not installed)")
  fi
fi

if [ -n "$pg_url" ]; then
  # Leftover test databases are housekeeping, not a test result: a drop that keeps failing warns. It can fail for a
  # moment because PostgreSQL refuses to let a role without pg_signal_backend end an autovacuum worker busy in the
  # database (scripts/pg.sh grants it; a server given by ROSTER_TEST_POSTGRES_URL may not), so it is retried first.
  drop_test_databases() {
    local db attempt
    for db in $(psql "$pg_url" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'roster\_test\_%'"); do
      for attempt in 1 2 3 4 5; do
        psql "$pg_url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>"$log/drop" && break
        [ "$attempt" = 5 ] && echo "WARNING: left the test database $db behind: $(cat "$log/drop")" >&2
        sleep 1
      done
    done
  }
  drop_test_databases
  # On every way out, a failed run's included: under errexit and pipefail a failing `cargo test | tee` ends the
  # script at once, and a CI machine that keeps its cluster between runs filled its disk with their databases.
  trap 'drop_test_databases; rm -rf "$log"' EXIT
  echo "==> unit tests and API suite on PostgreSQL"
  # --lib too: the query translator's unit test runs its cases on both backends when it is given a server.
  ROSTER_TEST_POSTGRES_URL=$pg_url cargo test --lib --test api --color never 2>&1 | tee "$log/postgres"
  drop_test_databases
  summary+=("Postgres: $(api_passed "$log/postgres") API tests passed ($(passed "$log/postgres") tests in all, with unit tests)")
  export ROSTER_TEST_POSTGRES_URL=$pg_url
fi

if [ "$fast" = false ]; then
  echo "==> vendor/: the published sqlx crates plus one patch"
  scripts/check-vendor.sh
  summary+=("vendor/: sqlx-core and sqlx-postgres as published plus vendor/release-without-ping.patch")
  echo "==> openapi.yaml validity"
  scripts/sdk.sh validate
  summary+=("openapi.yaml: valid (openapi-spec-validator, openapi-generator-cli validate)")
  echo "==> openapi.yaml linters"
  scripts/lint-spec.sh
  summary+=("openapi.yaml: clean (Spectral spectral:oas, Redocly recommended, Spectral OWASP with documented exceptions)")
  echo "==> generated SDKs against a live Roster"
  scripts/sdk-test.sh 2>&1 | tee "$log/sdk"
  summary+=("SDK stories: $(grep -cE '^(sqlite|postgres) +(python|typescript|rust) +passed' "$log/sdk") passed (3 clients x backends)")
  echo "==> the PyPI listmonk client, unmodified, against a live Roster"
  scripts/listmonk-client-test.sh 2>&1 | tee "$log/listmonk-client"
  summary+=("listmonk client: $(grep -cE '^(sqlite|postgres) +passed' "$log/listmonk-client") backends passed")
  echo "==> Schemathesis"
  scripts/conformance.sh 2>&1 | tee "$log/conformance"
  summary+=("Schemathesis: $(grep -E '^(sqlite|postgres) PASS' "$log/conformance" | sed 's/: .*seed [0-9]*: / /' | paste -sd ';' -)")
  echo "==> Swagger UI in headless Chromium"
  scripts/browser-test.sh 2>&1 | tee "$log/browser"
  summary+=("Swagger UI: $(grep -cE ': PASS$' "$log/browser") browser runs passed (screenshots in test-output/browser/)")
  echo "==> abuse run (scripts/abuse.sh --small)"
  scripts/abuse.sh --small 2>&1 | tee "$log/abuse"
  summary+=("Abuse run: PASS, $(grep -E '^normal client' "$log/abuse")")
fi

echo
printf '%s\n' "${summary[@]}"
