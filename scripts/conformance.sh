#!/usr/bin/env bash
# Conformance run: Schemathesis (pinned) against a live Roster, checked against openapi.yaml with every check and
# every phase (examples, coverage, fuzzing, stateful). Configuration: schemathesis.toml at the repository root.
#
#   scripts/conformance.sh            # SQLite; plus PostgreSQL when ROSTER_TEST_POSTGRES_URL is set
#   ROSTER_TEST_POSTGRES_URL=$(scripts/pg.sh) scripts/conformance.sh
#
# ROSTER_TEST_POSTGRES_URL is a URL for a role that may create databases; the run creates a fresh database from it
# and drops it afterwards. Each backend also starts from an empty SQLite file. Reports (JUnit XML, Schemathesis'
# JSON run report and NDJSON event stream) and Roster's log go to test-output/conformance/<backend>/. Exits non-zero
# when any backend has a failure. Environment overrides: CONFORMANCE_BACKENDS ("sqlite postgres" by default, the
# latter only with a URL), CONFORMANCE_MAX_EXAMPLES, CONFORMANCE_SEED, PYTHON.
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
cargo build --quiet --bin roster
roster_bin=$root/target/debug/roster

rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
roster_pid=
pg_admin_url=
pg_db=

stop_roster() {
  if [ -n "$roster_pid" ]; then
    kill "$roster_pid" 2>/dev/null || true
    wait "$roster_pid" 2>/dev/null || true
    roster_pid=
  fi
}
drop_pg_db() {
  if [ -n "$pg_db" ]; then
    psql "$pg_admin_url" -qc "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" >/dev/null 2>&1 || true
    pg_db=
  fi
}
cleanup() {
  stop_roster
  drop_pg_db
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts Roster on a free port with the given database URL; sets roster_pid and base_url.
start_roster() {
  local database_url=$1 logfile=$2
  # Rate limiting off: fuzzing is a burst of requests, and 429s would only hide the answers under test.
  ROSTER_RATE_LIMIT=0 ROSTER_LOGIN_FAILURES_PER_MINUTE=0 ROSTER_DATABASE_URL=$database_url ROSTER_ADDRESS=127.0.0.1:0 \
    ROSTER_ADMIN_USERNAME=$ROSTER_CONFORMANCE_USERNAME ROSTER_ADMIN_PASSWORD=$ROSTER_CONFORMANCE_PASSWORD \
    ROSTER_LOG_FORMAT=text NO_COLOR=1 RUST_LOG=${RUST_LOG:-info,sqlx=warn,sea_orm=warn} \
    "$roster_bin" >"$logfile" 2>&1 &
  roster_pid=$!
  base_url=
  for _ in $(seq 1 150); do
    if ! kill -0 "$roster_pid" 2>/dev/null; then
      echo "ERROR: Roster exited during start-up; its log:" >&2
      cat "$logfile" >&2
      roster_pid=
      return 1
    fi
    base_url=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$logfile" | head -n 1 | sed 's/^listening on //' || true)
    if [ -n "$base_url" ] && curl -fsS "$base_url/health" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  echo "ERROR: Roster did not answer /health within 30 s; its log:" >&2
  cat "$logfile" >&2
  return 1
}

# Runs Schemathesis against the running Roster; writes reports into $1; returns its exit status. Checks (all but
# the documented exclusions), phases (all four), seed, bounds and credentials come from schemathesis.toml; only
# the base URL and report paths are given here.
run_schemathesis() {
  local dir=$1
  local args=(
    --config-file "$root/schemathesis.toml"
    run "$root/openapi.yaml"
    --url "$base_url"
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
  # database and Schemathesis' cache disabled there, nothing is written outside test-output/.
  "$venv/bin/st" "${args[@]}"
}

declare -A result summary

# Per-phase numbers, stateful link usage and failures, from Schemathesis' NDJSON events and JSON report.
summarize() {
  "$venv/bin/python" - "$@" <<'PY'
import collections, json, sys

directory, status, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
phases = ["examples", "coverage", "fuzzing", "stateful"]
cases = collections.Counter()
operations = collections.defaultdict(set)
outcomes = collections.defaultdict(collections.Counter)
links = collections.defaultdict(collections.Counter)
with open(f"{directory}/events.ndjson") as events:
    for line in events:
        event = json.loads(line)
        scenario = event.get("ScenarioFinished")
        if not scenario:
            continue
        phase, recorder = scenario["phase"], scenario.get("recorder") or {}
        outcomes[phase][scenario["status"]] += 1
        if phase != "stateful" and recorder.get("label"):
            operations[phase].add(recorder["label"])
        for case in recorder.get("cases", {}).values():
            cases[phase] += 1
            if phase == "stateful":
                value = case["value"]
                operations[phase].add(f"{value['method']} {value['path']}")
                transition = case.get("transition")
                if transition:
                    unresolved = any(
                        isinstance(parameter.get("value"), dict) and parameter["value"].get("$unresolvable")
                        for location in transition.get("parameters", {}).values()
                        for parameter in location.values()
                    )
                    name = transition["id"] + (" (inferred)" if transition.get("is_inferred") else " (openapi.yaml)")
                    links[name]["applied"] += 1
                    links[name]["unresolvable"] += unresolved
with open(f"{directory}/report.json") as file:
    report = json.load(file)

lines = [f"{report['schemathesis_version']} seed {report['seed']}: "
         f"{report['test_cases']['generated']} test cases, {report['test_cases']['unique_failures']} unique failures, "
         f"{seconds}s, exit {status}"]
for phase in phases:
    state = report["phases"].get(phase, {}).get("status", "not run")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(outcomes[phase].items()))
    unit = "scenarios" if phase == "stateful" else "operations"
    lines.append(f"  {phase:<9} {state:<8} {len(operations[phase])} operations, {cases[phase]} test cases; "
                 f"{unit}: {counts or 'none'}")
for name, count in sorted(links.items()):
    lines.append(f"    link {name}: applied {count['applied']}x"
                 + (f", {count['unresolvable']}x unresolvable" if count["unresolvable"] else ""))
if report.get("filtered"):
    lines.append(f"  {report['filtered']} failures dropped by scripts/schemathesis_hooks.py (see that file)")
for failure in report.get("failures", []):
    lines.append(f"  FAIL {failure['code']} {failure['title']} x{failure['count']}: {', '.join(failure['operations'])}")
for error in report.get("errors", []):
    lines.append(f"  ERROR {json.dumps(error)[:300]}")
warned = {name: labels for name, labels in report.get("warnings", {}).items() if labels}
for name, labels in warned.items():
    lines.append(f"  WARNING {name}: {', '.join(map(str, labels))}")
text = "\n".join(lines)
print(text)
with open(f"{directory}/summary.txt", "w") as file:
    file.write(text + "\n")
PY
}

run_backend() {
  local backend=$1 database_url=$2
  local dir=$out/$backend started status
  mkdir -p "$dir"
  log "$backend: starting Roster"
  start_roster "$database_url" "$dir/roster.log" || { result[$backend]=ERROR; summary[$backend]="Roster did not start"; return 0; }
  log "$backend: schemathesis against $base_url (reports in ${dir#"$root"/})"
  started=$SECONDS
  set +e
  run_schemathesis "$dir" 2>&1 | tee "$dir/schemathesis.txt"
  status=${PIPESTATUS[0]}
  set -e
  stop_roster
  # What Roster answered, from its request log: a 5xx or a logged error fails the backend even if no check did.
  local statuses
  statuses=$(grep -oE 'response status=[0-9]{3}' "$dir/roster.log" | sed 's/.*=//' | sort | uniq -c |
    awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}' || true)
  if grep -qE 'response status=5[0-9]{2}|panicked| ERROR ' "$dir/roster.log"; then
    echo "ERROR: Roster answered 5xx or logged an error during the $backend run; see ${dir#"$root"/}/roster.log" >&2
    [ "$status" != 0 ] || status=1
  fi
  if [ -s "$dir/events.ndjson" ] && [ -s "$dir/report.json" ]; then
    summary[$backend]=$(summarize "$dir" "$status" "$((SECONDS - started))") || summary[$backend]="(no summary)"
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
      pg_admin_url=${ROSTER_TEST_POSTGRES_URL:?ROSTER_TEST_POSTGRES_URL must be set for the postgres backend}
      pg_db=roster_conformance_$$_$(date +%s)
      log "postgres: creating database $pg_db"
      psql "$pg_admin_url" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$pg_db\"" >/dev/null
      # The same server and credentials, with the new database as the path (query string kept).
      if [[ $pg_admin_url =~ ^([a-z]+://[^/?]+)(/[^?]*)?(\?.*)?$ ]]; then
        pg_url="${BASH_REMATCH[1]}/$pg_db${BASH_REMATCH[3]}"
      else
        echo "ERROR: cannot read ROSTER_TEST_POSTGRES_URL as postgres://USER:PASSWORD@HOST:PORT/DB" >&2
        exit 2
      fi
      run_backend postgres "$pg_url"
      drop_pg_db
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
