#!/usr/bin/env bash
# Conformance run: Schemathesis (pinned) against a live Roster, checked against openapi.yaml with every check and
# every phase (examples, coverage, fuzzing, stateful). Configuration: schemathesis.toml at the repository root.
#
#   scripts/conformance.sh            # SQLite; plus PostgreSQL when ROSTER_TEST_POSTGRES_URL is set
#   ROSTER_TEST_POSTGRES_URL=$(scripts/pg.sh) scripts/conformance.sh
#
# ROSTER_TEST_POSTGRES_URL is a URL for a role that may create databases; the run creates a fresh database from it
# and drops it afterwards. Each backend also starts from an empty SQLite file. Reports (JUnit XML, Schemathesis'
# JSON run report and NDJSON event stream), every failure before deduplication (failures.ndjson, written by the
# hooks), a summary (scripts/conformance_report.py) and Roster's log go to test-output/conformance/<backend>/. Exits non-zero when any backend has a failure. Roster is a debug build
# (scripts/lib.sh; honours CARGO_TARGET_DIR). Environment overrides: CONFORMANCE_BACKENDS ("sqlite postgres" by
# default, the latter only with a URL), CONFORMANCE_MAX_EXAMPLES, CONFORMANCE_SEED, PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

SCHEMATHESIS_VERSION=4.32.5
venv=$root/test-output/.venv
out=$root/test-output/conformance
python=${PYTHON:-python3}

# Hypothesis keeps its caches here instead of ./.hypothesis.
export HYPOTHESIS_STORAGE_DIRECTORY=$root/test-output/.hypothesis
# The credentials Roster is started with, and that schemathesis.toml reads.
export ROSTER_CONFORMANCE_USERNAME=admin
export ROSTER_CONFORMANCE_PASSWORD=conformance-secret

source scripts/lib.sh

# --- Schemathesis, pinned, in a git-ignored virtualenv ---------------------------------------------------------------
if [ "$("$venv/bin/st" --version 2>/dev/null || true)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  log "installing schemathesis==$SCHEMATHESIS_VERSION into $venv"
  make_venv "$venv" "$python"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
st_version=$("$venv/bin/st" --version)

# --- Roster -------------------------------------------------------------------------------------------------------------
log "cargo build"
roster_bin=$(build_roster --quiet)

rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
pg_admin_url=${ROSTER_TEST_POSTGRES_URL:-}
pg_url=
trap 'stop_roster; drop_database "$pg_admin_url" "$pg_url"; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# Runs Schemathesis against the running Roster; writes reports into $1; returns its exit status. Checks (all but
# the documented exclusions), phases (all four), seed, bounds and credentials come from schemathesis.toml; only
# the base URL and report paths are given here.
run_schemathesis() {
  local dir=$1
  local args=(
    --config-file "$root/schemathesis.toml"
    run "$root/openapi.yaml"
    --url "$roster_url"
    --no-color
    --report junit,json,ndjson
    --report-dir "$dir"
    --report-junit-path "$dir/junit.xml"
    --report-json-path "$dir/report.json"
    --report-ndjson-path "$dir/events.ndjson"
  )
  [ -n "${CONFORMANCE_SEED:-}" ] && args+=(--seed "$CONFORMANCE_SEED")
  [ -n "${CONFORMANCE_MAX_EXAMPLES:-}" ] && args+=(--max-examples "$CONFORMANCE_MAX_EXAMPLES")
  # From the repository root (schemathesis.toml names the hooks file relative to it). With Hypothesis' example
  # database and Schemathesis' cache disabled there, nothing is written outside test-output/. The hooks log every
  # failure a check reports, before Schemathesis keeps one per check, operation and status, to failures.ndjson.
  rm -f "$dir/failures.ndjson"
  ROSTER_CONFORMANCE_FAILURE_LOG="$dir/failures.ndjson" "$venv/bin/st" "${args[@]}"
}

declare -A result summary

run_backend() {
  local backend=$1 database_url=$2
  local dir=$out/$backend started status
  mkdir -p "$dir"
  log "$backend: starting Roster"
  # Rate limiting off: fuzzing is a burst of requests, and 429s would only hide the answers under test.
  if ! start_roster "$roster_bin" "$dir/roster.log" ROSTER_DATABASE_URL="$database_url" \
    ROSTER_RATE_LIMIT=0 ROSTER_LOGIN_FAILURES_PER_MINUTE=0 \
    ROSTER_ADMIN_USERNAME="$ROSTER_CONFORMANCE_USERNAME" ROSTER_ADMIN_PASSWORD="$ROSTER_CONFORMANCE_PASSWORD" \
    ROSTER_LOG_FORMAT=text NO_COLOR=1 RUST_LOG="${RUST_LOG:-info,sqlx=warn,sea_orm=warn}"; then
    result[$backend]=ERROR
    summary[$backend]="Roster did not start"
    return 0
  fi
  log "$backend: schemathesis against $roster_url (reports in ${dir#"$root"/})"
  started=$SECONDS
  set +e
  run_schemathesis "$dir" 2>&1 | tee "$dir/schemathesis.txt"
  status=${PIPESTATUS[0]}
  set -e
  stop_roster
  # What Roster answered, from its request log: a 5xx or a logged error fails the backend even if no check did.
  local statuses
  statuses=$(grep -oE 'request done status=[0-9]{3}' "$dir/roster.log" | sed 's/.*=//' | sort | uniq -c |
    awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}' || true)
  if grep -qE 'request done status=5[0-9]{2}|panicked| ERROR ' "$dir/roster.log"; then
    echo "ERROR: Roster answered 5xx or logged an error during the $backend run; see ${dir#"$root"/}/roster.log" >&2
    [ "$status" != 0 ] || status=1
  fi
  if [ -s "$dir/events.ndjson" ] && [ -s "$dir/report.json" ]; then
    summary[$backend]=$("$venv/bin/python" scripts/conformance_report.py "$dir" "$status" "$((SECONDS - started))") ||
      summary[$backend]="(no summary)"
    summary[$backend]+=$'\n'"  Roster answered: ${statuses:-nothing}"
  else
    summary[$backend]="Schemathesis wrote no report (exit $status); see ${dir#"$root"/}/schemathesis.txt"
  fi
  if [ "$status" = 0 ]; then result[$backend]=PASS; else result[$backend]=FAIL; fi
}

backends=${CONFORMANCE_BACKENDS:-sqlite${ROSTER_TEST_POSTGRES_URL:+ postgres}}
for backend in $backends; do
  case $backend in
    sqlite)
      mkdir -p "$work/sqlite"
      run_backend sqlite "sqlite://$work/sqlite/roster.db?mode=rwc"
      ;;
    postgres)
      : "${pg_admin_url:?ROSTER_TEST_POSTGRES_URL must be set for the postgres backend}"
      pg_url=$(create_database "$pg_admin_url" roster_conformance)
      pg_db=${pg_url%%\?*}
      log "postgres: created database ${pg_db##*/}"
      run_backend postgres "$pg_url"
      drop_database "$pg_admin_url" "$pg_url"
      pg_url=
      ;;
    *)
      echo "ERROR: unknown backend '$backend' (sqlite, postgres)" >&2
      exit 2
      ;;
  esac
done

echo
echo "Conformance summary ($st_version; reports in test-output/conformance/)"
status=0
for backend in $backends; do
  printf '%s %s: %s\n\n' "$backend" "${result[$backend]}" "${summary[$backend]}"
  [ "${result[$backend]}" = PASS ] || status=1
done
[ -n "${ROSTER_TEST_POSTGRES_URL:-}" ] || echo "  postgres SKIPPED (set ROSTER_TEST_POSTGRES_URL, e.g. to the URL scripts/pg.sh prints)"
exit "$status"
