#!/usr/bin/env bash
# Proves that SDKs generated from openapi.yaml work against a live Roster:
#   1. builds Roster (debug) and generates the Python, TypeScript and Rust clients (scripts/sdk.sh);
#   2. installs what the story programs under tests/sdk/ need (pinned: requirements.txt, package-lock.json,
#      Cargo.lock), type-checks the TypeScript story together with the generated sources and builds the Rust one;
#   3. for each backend, SQLite always and PostgreSQL when ROSTER_TEST_POSTGRES_URL is set (a URL for a role that
#      may create databases; a fresh database is created and dropped again), starts Roster on a free port with a
#      fresh database, waits for /api/health, runs the three stories, and stops Roster.
# Prints one summary line per backend and client; exits non-zero if anything failed. Runs on a clean clone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started_at=$EPOCHREALTIME

venv=$root/sdks/.venv
ts_story=$root/tests/sdk/typescript
rs_story=$root/tests/sdk/rust
target_dir=${CARGO_TARGET_DIR:-$root/target}
pg_admin_url=${ROSTER_TEST_POSTGRES_URL:-}

for tool in cargo python3 java node npm curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "ERROR: $tool is required but not installed" >&2; exit 1; }
done
if [ -n "$pg_admin_url" ] && ! command -v psql >/dev/null 2>&1; then
  echo "ERROR: ROSTER_TEST_POSTGRES_URL is set but psql is not installed (Debian: apt-get install postgresql-client)" >&2
  exit 1
fi

# Scratch space for databases and logs, and whatever is running or created when the script ends, however it ends.
work=$(mktemp -d)
roster_pid=
pg_database=
cleanup() {
  stop_roster
  drop_pg_database
  rm -rf "$work"
}
trap cleanup EXIT

elapsed() { awk -v from="$1" -v to="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", to - from }'; }

echo "==> building roster"
cargo build --bin roster
roster_bin=$target_dir/debug/roster

echo "==> generating the SDKs"
scripts/sdk.sh all

# --- installing the story programs' dependencies, all pinned -------------------------------------------------------
echo "==> python: pinned runtime dependencies, then the generated client (reinstalled: it is regenerated each run)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/sdk/python/requirements.txt
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall ./sdks/python

echo "==> typescript: npm ci, then type-check the story with the generated sources and build the generated package"
(cd "$ts_story" && npm ci --no-audit --no-fund --loglevel=error)
"$ts_story/node_modules/.bin/tsc" --noEmit -p "$ts_story/tsconfig.json"
# The generated package's own build (its package.json runs `tsc`), with the story's pinned TypeScript.
"$ts_story/node_modules/.bin/tsc" -p sdks/typescript/tsconfig.json

echo "==> rust: build the story against the generated crate"
cargo build --locked --quiet --manifest-path "$rs_story/Cargo.toml"
rs_story_bin=$rs_story/target/debug/roster-sdk-story

# --- one backend: start Roster, run every story, stop Roster --------------------------------------------------------
# One admin password per run, passed to the stories in the environment (not on command lines).
ROSTER_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
export ROSTER_ADMIN_PASSWORD

start_roster() {
  local backend=$1 database_url=$2 log=$work/roster-$1.log
  # Port 0: the OS picks a free port, and Roster logs the address it got; no race with other processes.
  ROSTER_RATE_LIMIT=0 ROSTER_LOGIN_FAILURES_PER_MINUTE=0 ROSTER_DATABASE_URL=$database_url ROSTER_ADDRESS=127.0.0.1:0 ROSTER_SHUTDOWN_GRACE=2 \
    "$roster_bin" >"$log" 2>&1 &
  roster_pid=$!
  local address=
  for _ in $(seq 1 100); do
    address=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$log" | head -n 1 | sed 's/^listening on //' || true)
    [ -n "$address" ] && break
    kill -0 "$roster_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$address" ]; then
    echo "ERROR: Roster ($backend) did not start; its log:" >&2
    cat "$log" >&2
    return 1
  fi
  # Ready once /api/health answers 200 (it checks the database).
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null -u "admin:$ROSTER_ADMIN_PASSWORD" "$address/api/health" 2>/dev/null; then
      ROSTER_BASE_URL=$address
      return 0
    fi
    sleep 0.1
  done
  echo "ERROR: Roster ($backend) at $address never answered /api/health with 200; its log:" >&2
  cat "$log" >&2
  return 1
}

stop_roster() {
  [ -n "$roster_pid" ] || return 0
  kill -TERM "$roster_pid" 2>/dev/null || true
  wait "$roster_pid" 2>/dev/null || true
  roster_pid=
}

drop_pg_database() {
  [ -n "$pg_database" ] || return 0
  psql "$pg_admin_url" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS \"$pg_database\" WITH (FORCE)" >/dev/null ||
    echo "WARNING: could not drop the test database $pg_database" >&2
  pg_database=
}

summary=()
failed=0

run_story() {
  local backend=$1 client=$2
  shift 2
  local from=$EPOCHREALTIME status=0
  echo "==> $backend: $client story"
  # A hung request must not hang CI.
  ROSTER_BASE_URL=$ROSTER_BASE_URL timeout 300 "$@" || status=$?
  if [ "$status" = 0 ]; then
    summary+=("$(printf '%-9s %-11s passed  (%s)' "$backend" "$client" "$(elapsed "$from")")")
  else
    summary+=("$(printf '%-9s %-11s FAILED  (exit %s, %s)' "$backend" "$client" "$status" "$(elapsed "$from")")")
    failed=1
  fi
}

run_backend() {
  local backend=$1 database_url=$2
  echo "==> $backend: starting Roster"
  if ! start_roster "$backend" "$database_url"; then
    stop_roster
    summary+=("$(printf '%-9s %-11s FAILED  (Roster did not start)' "$backend" all)")
    failed=1
    return 0
  fi
  echo "    Roster at $ROSTER_BASE_URL"
  run_story "$backend" python "$venv/bin/python" tests/sdk/python/story.py
  run_story "$backend" typescript "$ts_story/node_modules/.bin/tsx" "$ts_story/story.ts"
  run_story "$backend" rust "$rs_story_bin"
  stop_roster
}

mkdir -p "$work/sqlite"
run_backend sqlite "sqlite://$work/sqlite/roster.db?mode=rwc"

if [ -n "$pg_admin_url" ]; then
  pg_database=roster_sdk_test_$$_$RANDOM
  psql "$pg_admin_url" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$pg_database\"" >/dev/null
  # The admin URL with its database replaced by the new one (query parameters such as sslmode are kept).
  pg_base=${pg_admin_url%%\?*}
  pg_query=${pg_admin_url#"$pg_base"}
  run_backend postgres "${pg_base%/*}/$pg_database$pg_query"
  drop_pg_database
else
  echo "==> postgres: skipped (set ROSTER_TEST_POSTGRES_URL, e.g. to the output of scripts/pg.sh)"
  summary+=("$(printf '%-9s %-11s skipped (ROSTER_TEST_POSTGRES_URL not set)' postgres all)")
fi

echo
echo "SDK stories (clients generated by $(grep -m1 -o 'GENERATOR_VERSION=[0-9.]*' scripts/sdk.sh | sed 's/.*=/OpenAPI Generator /')), in $(elapsed "$started_at"):"
printf '%s\n' "${summary[@]}"
exit "$failed"
