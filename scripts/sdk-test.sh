#!/usr/bin/env bash
# Proves that SDKs generated from openapi.yaml work against a live Roster:
#   1. builds Roster (debug) and generates the Python, TypeScript and Rust clients (scripts/sdk.sh);
#   2. installs what the story programs under tests/sdk/ need (pinned: requirements.txt, package-lock.json,
#      Cargo.lock), type-checks the TypeScript story together with the generated sources and builds the Rust one;
#   3. for each backend, SQLite always and PostgreSQL when ROSTER_TEST_POSTGRES_URL is set (a URL for a role that
#      may create databases; a fresh database is created and dropped again), starts Roster on a free port with a
#      fresh database, waits for /health, runs the three stories, and stops Roster.
# Prints one summary line per backend and client; exits non-zero if anything failed. Runs on a clean clone. Both
# cargo builds (Roster, the Rust story) honour CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started_at=$EPOCHREALTIME

source scripts/lib.sh

venv=$root/sdks/.venv
ts_story=$root/tests/sdk/typescript
rs_story=$root/tests/sdk/rust
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
pg_url=
trap 'stop_roster; drop_database "$pg_admin_url" "$pg_url"; rm -rf "$work"' EXIT

elapsed() { awk -v from="$1" -v to="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", to - from }'; }

log "building roster"
roster_bin=$(build_roster)

log "generating the SDKs"
scripts/sdk.sh all

# --- installing the story programs' dependencies, all pinned -------------------------------------------------------
log "python: pinned runtime dependencies, then the generated client (reinstalled: it is regenerated each run)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/sdk/python/requirements.txt
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall ./sdks/python

log "typescript: npm ci, then type-check the story with the generated sources and build the generated package"
(cd "$ts_story" && npm ci --no-audit --no-fund --loglevel=error)
"$ts_story/node_modules/.bin/tsc" --noEmit -p "$ts_story/tsconfig.json"
# The generated package's own build (its package.json runs `tsc`), with the story's pinned TypeScript.
"$ts_story/node_modules/.bin/tsc" -p sdks/typescript/tsconfig.json

log "rust: build the story against the generated crate"
cargo build --locked --quiet --manifest-path "$rs_story/Cargo.toml"
# Where cargo put it: tests/sdk/rust/target, or CARGO_TARGET_DIR when that is set.
rs_story_bin=$(target_dir "$rs_story/Cargo.toml")/debug/roster-sdk-story
[ -x "$rs_story_bin" ] || { echo "ERROR: the Rust story built, but there is no executable $rs_story_bin" >&2; exit 1; }

# --- one backend: start Roster, run every story, stop Roster --------------------------------------------------------
# One admin password per run, passed to the stories in the environment (not on command lines).
ROSTER_ADMIN_PASSWORD=$(random_password)
export ROSTER_ADMIN_PASSWORD

summary=()
failed=0

run_story() {
  local backend=$1 client=$2
  shift 2
  local from=$EPOCHREALTIME status=0
  echo "==> $backend: $client story"
  # A hung request must not hang CI.
  ROSTER_BASE_URL=$roster_url timeout 300 "$@" || status=$?
  if [ "$status" = 0 ]; then
    summary+=("$(printf '%-9s %-11s passed  (%s)' "$backend" "$client" "$(elapsed "$from")")")
  else
    summary+=("$(printf '%-9s %-11s FAILED  (exit %s, %s)' "$backend" "$client" "$status" "$(elapsed "$from")")")
    failed=1
  fi
}

run_backend() {
  local backend=$1 database_url=$2
  log "$backend: starting Roster"
  if ! start_roster "$roster_bin" "$work/roster-$backend.log" ROSTER_DATABASE_URL="$database_url" \
    ROSTER_RATE_LIMIT=0 ROSTER_LOGIN_FAILURES_PER_MINUTE=0 ROSTER_SHUTDOWN_GRACE=2; then
    summary+=("$(printf '%-9s %-11s FAILED  (Roster did not start)' "$backend" all)")
    failed=1
    return 0
  fi
  echo "    Roster at $roster_url"
  run_story "$backend" python "$venv/bin/python" tests/sdk/python/story.py
  run_story "$backend" typescript "$ts_story/node_modules/.bin/tsx" "$ts_story/story.ts"
  run_story "$backend" rust "$rs_story_bin"
  stop_roster
}

mkdir -p "$work/sqlite"
run_backend sqlite "sqlite://$work/sqlite/roster.db?mode=rwc"

if [ -n "$pg_admin_url" ]; then
  pg_url=$(create_database "$pg_admin_url" roster_sdk_test)
  run_backend postgres "$pg_url"
  drop_database "$pg_admin_url" "$pg_url"
  pg_url=
else
  log "postgres: skipped (set ROSTER_TEST_POSTGRES_URL, e.g. to the output of scripts/pg.sh)"
  summary+=("$(printf '%-9s %-11s skipped (ROSTER_TEST_POSTGRES_URL not set)' postgres all)")
fi

echo
echo "SDK stories (clients generated by $(grep -m1 -o 'GENERATOR_VERSION=[0-9.]*' scripts/sdk.sh | sed 's/.*=/OpenAPI Generator /')), in $(elapsed "$started_at"):"
printf '%s\n' "${summary[@]}"
exit "$failed"
