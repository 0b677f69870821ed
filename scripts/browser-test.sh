#!/usr/bin/env bash
# Browser test of Swagger UI: drives headless Chromium (tests/browser/swagger.mjs) against a live Roster.
#
# Installs what is missing (Debian's chromium, the pinned npm packages), builds Roster (debug), then for each
# backend starts it on a free port with a fresh database, waits for /health, runs the test and stops Roster:
#   - SQLite, always;
#   - PostgreSQL, when ROSTER_TEST_POSTGRES_URL is set (a URL for a role that may create databases, e.g. the one
#     scripts/pg.sh prints): a fresh database is created from it and dropped afterwards.
# Screenshots: test-output/browser/swagger.png (SQLite) and test-output/browser/postgres/swagger.png, with one
# screenshot per step under steps/ and Roster's log next to them. Exits non-zero if any backend fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export DEBIAN_FRONTEND=noninteractive

chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
output=$root/test-output/browser
pg_admin_url=${ROSTER_TEST_POSTGRES_URL:-}

# --- what the test needs --------------------------------------------------------------------------------------
if [ ! -x "$chromium" ]; then
  echo "==> installing chromium"
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

echo "==> npm ci (tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

echo "==> cargo build"
cargo build --color never
roster=$root/target/debug/roster

rm -rf "$output"
mkdir -p "$output"
work=$(mktemp -d)
password="browser-$(node -p 'require("node:crypto").randomBytes(12).toString("hex")')"
roster_pid=
pg_db=

stop_roster() {
  if [ -n "$roster_pid" ] && kill -0 "$roster_pid" 2>/dev/null; then
    kill -TERM "$roster_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$roster_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$roster_pid" 2>/dev/null || true
    wait "$roster_pid" 2>/dev/null || true
  fi
  roster_pid=
}
drop_pg_db() {
  if [ -n "$pg_db" ]; then
    psql "$pg_admin_url" -qc "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" >/dev/null || true
  fi
  pg_db=
}
cleanup() {
  stop_roster
  drop_pg_db
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}
http_ok() {
  node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$1"
}

# run_backend NAME DATABASE_URL OUTPUT_DIR: starts Roster, runs the browser test, stops Roster. Returns the
# test's status.
run_backend() {
  local name=$1 database_url=$2 dir=$3
  local port base log started status=0
  mkdir -p "$dir"
  port=$(free_port)
  base="http://127.0.0.1:$port"
  log="$dir/roster.log"
  echo "==> $name: starting Roster on $base"
  ROSTER_DATABASE_URL=$database_url ROSTER_ADDRESS=127.0.0.1:$port ROSTER_ADMIN_PASSWORD=$password \
    ROSTER_SHUTDOWN_GRACE=2 "$roster" >"$log" 2>&1 &
  roster_pid=$!
  for _ in $(seq 1 300); do
    http_ok "$base/health" && break
    kill -0 "$roster_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! http_ok "$base/health"; then
    echo "ERROR: $name: Roster did not answer $base/health; its log ($log):" >&2
    tail -n 30 "$log" >&2
    stop_roster
    return 1
  fi

  echo "==> $name: browser test"
  started=$(date +%s)
  ROSTER_BASE_URL=$base ROSTER_ADMIN_PASSWORD=$password ROSTER_TEST_OUTPUT=$dir CHROMIUM_PATH=$chromium \
    node --test --test-reporter=spec tests/browser/swagger.mjs || status=$?
  echo "==> $name: browser test took $(($(date +%s) - started))s"
  stop_roster
  if [ "$status" != 0 ]; then
    echo "==> $name: Roster's log: $log"
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
  pg_db="roster_browser_$$_$(date +%s)"
  pg_url=$(node -e 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.href)' \
    "$pg_admin_url" "$pg_db")
  if psql "$pg_admin_url" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$pg_db\"" >/dev/null &&
    run_backend PostgreSQL "$pg_url" "$output/postgres"; then
    results+=("PostgreSQL: PASS")
  else
    results+=("PostgreSQL: FAIL")
    failed=1
  fi
  drop_pg_db
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
