#!/usr/bin/env bash
# Browser test of Swagger UI: drives headless Chromium (tests/browser/swagger.mjs) against a live Roster.
#
# Installs what is missing (Debian's chromium, the pinned npm packages), builds Roster (debug; honours
# CARGO_TARGET_DIR), then for each backend starts it on a free port with a fresh database, waits for /health, runs
# the test and stops Roster (scripts/lib.sh):
#   - SQLite, always;
#   - PostgreSQL, when ROSTER_TEST_POSTGRES_URL is set (a URL for a role that may create databases, e.g. the one
#     scripts/pg.sh prints): a fresh database is created from it and dropped afterwards.
# Screenshots: test-output/browser/swagger.png (SQLite) and test-output/browser/postgres/swagger.png (the lists'
# Try-it-out), swagger-subscribers.png (POST /api/subscribers) and swagger-import.png (the upload) next to each, one
# screenshot per step under steps/
# and Roster's log next to them. Exits non-zero if any backend fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export DEBIAN_FRONTEND=noninteractive

source scripts/lib.sh

chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
output=$root/test-output/browser
pg_admin_url=${ROSTER_TEST_POSTGRES_URL:-}

# --- what the test needs --------------------------------------------------------------------------------------
if [ ! -x "$chromium" ]; then
  log "installing chromium"
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
command -v node >/dev/null 2>&1 || { echo "ERROR: node (20 or newer) is required" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "ERROR: node 20 or newer is required, found $(node --version)" >&2; exit 1; }
if [ -n "$pg_admin_url" ] && ! command -v psql >/dev/null 2>&1; then
  echo "ERROR: ROSTER_TEST_POSTGRES_URL is set but psql is missing (Debian: apt-get install postgresql-client)" >&2
  exit 1
fi

log "npm ci (tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

log "cargo build"
roster_bin=$(build_roster --color never)

rm -rf "$output"
mkdir -p "$output"
work=$(mktemp -d)
password="browser-$(node -p 'require("node:crypto").randomBytes(12).toString("hex")')"
pg_url=
trap 'stop_roster; drop_database "$pg_admin_url" "$pg_url"; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_backend NAME DATABASE_URL OUTPUT_DIR: starts Roster, runs the browser test, stops Roster. Returns the
# test's status.
run_backend() {
  local name=$1 database_url=$2 dir=$3
  local started status=0
  mkdir -p "$dir"
  log "$name: starting Roster"
  start_roster "$roster_bin" "$dir/roster.log" ROSTER_DATABASE_URL="$database_url" \
    ROSTER_ADMIN_PASSWORD="$password" ROSTER_SHUTDOWN_GRACE=2 || return 1
  log "$name: Roster at $roster_url; browser test"
  started=$(date +%s)
  ROSTER_BASE_URL=$roster_url ROSTER_ADMIN_PASSWORD=$password ROSTER_TEST_OUTPUT=$dir CHROMIUM_PATH=$chromium \
    node --test --test-reporter=spec tests/browser/swagger.mjs || status=$?
  log "$name: browser test took $(($(date +%s) - started))s"
  stop_roster
  if [ "$status" != 0 ]; then
    log "$name: Roster's log: $dir/roster.log"
  fi
  return "$status"
}

results=()
failed=0

mkdir -p "$work/sqlite"
if run_backend SQLite "sqlite://$work/sqlite/roster.db?mode=rwc" "$output"; then
  results+=("SQLite: PASS")
else
  results+=("SQLite: FAIL")
  failed=1
fi
screenshots=("$output/swagger.png")

if [ -n "$pg_admin_url" ]; then
  if pg_url=$(create_database "$pg_admin_url" roster_browser) &&
    run_backend PostgreSQL "$pg_url" "$output/postgres"; then
    results+=("PostgreSQL: PASS")
  else
    results+=("PostgreSQL: FAIL")
    failed=1
  fi
  drop_database "$pg_admin_url" "$pg_url"
  pg_url=
  screenshots+=("$output/postgres/swagger.png")
else
  results+=("PostgreSQL: SKIPPED (set ROSTER_TEST_POSTGRES_URL, e.g. to \$(scripts/pg.sh), to run it)")
fi

echo
printf '%s\n' "${results[@]}"
for shot in "${screenshots[@]}"; do
  if [ -f "$shot" ]; then echo "Screenshot: ${shot#"$root"/}"; else echo "Screenshot: none ($shot was not written)"; fi
done
exit "$failed"
