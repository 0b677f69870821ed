#!/usr/bin/env bash
# Proves that the PyPI `listmonk` client (https://pypi.org/project/listmonk/), used unmodified, works against a live
# Roster: login, create_list, create_subscriber, subscriber_by_email, subscriber_by_uuid, add_subscribers_to_lists,
# block_subscriber, delete_subscriber (tests/compat/listmonk_client.py).
#   1. installs the client, pinned with its dependencies (tests/compat/requirements.txt), into a git-ignored
#      virtualenv, test-output/.venv-listmonk-client (reinstalled whenever the requirements change);
#   2. builds Roster (debug; honours CARGO_TARGET_DIR), or uses ROSTER_BIN when that is set;
#   3. for each backend, SQLite always and PostgreSQL when ROSTER_TEST_POSTGRES_URL is set (a URL for a role that
#      may create databases; a fresh database is created and dropped again), starts Roster on a free port with a
#      fresh database, runs the script against it, and stops Roster.
# Roster's logs go to test-output/listmonk-client/roster-<backend>.log. Prints one summary line per backend; exits
# non-zero if anything failed. PYTHON picks the interpreter for the virtualenv (the client needs Python 3.10+).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started_at=$EPOCHREALTIME

source scripts/lib.sh

venv=$root/test-output/.venv-listmonk-client
out=$root/test-output/listmonk-client
requirements=$root/tests/compat/requirements.txt
python=${PYTHON:-python3}
pg_admin_url=${ROSTER_TEST_POSTGRES_URL:-}

for tool in "$python" curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "ERROR: $tool is required but not installed" >&2; exit 1; }
done
if [ -z "${ROSTER_BIN:-}" ] && ! command -v cargo >/dev/null 2>&1; then
  echo "ERROR: cargo is required to build Roster (or set ROSTER_BIN to a built roster)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "ERROR: the listmonk client needs Python 3.10+, $python is $("$python" --version 2>&1)" >&2
  exit 1
fi
if [ -n "$pg_admin_url" ] && ! command -v psql >/dev/null 2>&1; then
  echo "ERROR: ROSTER_TEST_POSTGRES_URL is set but psql is not installed (Debian: apt-get install postgresql-client)" >&2
  exit 1
fi

elapsed() { awk -v from="$1" -v to="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", to - from }'; }

# --- the listmonk client, pinned, in a git-ignored virtualenv ---------------------------------------------------------
# A copy of the requirements it was installed from lives in the virtualenv; any change reinstalls from scratch.
if ! cmp -s "$requirements" "$venv/installed-requirements.txt"; then
  log "installing tests/compat/requirements.txt into ${venv#"$root"/}"
  make_venv "$venv" "$python"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/installed-requirements.txt"
fi
client_version=$("$venv/bin/python" -c 'import listmonk; print(listmonk.__version__)')

# --- Roster -------------------------------------------------------------------------------------------------------------
if [ -n "${ROSTER_BIN:-}" ]; then
  roster_bin=$ROSTER_BIN
  [ -x "$roster_bin" ] || { echo "ERROR: no executable Roster at $roster_bin" >&2; exit 1; }
else
  log "building roster"
  roster_bin=$(build_roster --quiet)
fi

rm -rf "$out"
mkdir -p "$out"
# Scratch space for the SQLite database, and whatever is running or created when the script ends, however it ends.
work=$(mktemp -d)
pg_url=
trap 'stop_roster; drop_database "$pg_admin_url" "$pg_url"; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# One admin password per run, passed to the script in the environment (not on its command line).
ROSTER_ADMIN_USERNAME=admin
ROSTER_ADMIN_PASSWORD=$(random_password)
export ROSTER_ADMIN_USERNAME ROSTER_ADMIN_PASSWORD

summary=()
failed=0

# --- one backend: start Roster, run the script, stop Roster -------------------------------------------------------------
run_backend() {
  local backend=$1 database_url=$2 from=$EPOCHREALTIME status=0 roster_log=$out/roster-$1.log
  log "$backend: starting Roster"
  if ! start_roster "$roster_bin" "$roster_log" ROSTER_DATABASE_URL="$database_url" \
    ROSTER_ADMIN_USERNAME="$ROSTER_ADMIN_USERNAME" ROSTER_ADMIN_PASSWORD="$ROSTER_ADMIN_PASSWORD" \
    ROSTER_RATE_LIMIT=0 ROSTER_LOGIN_FAILURES_PER_MINUTE=0 ROSTER_SHUTDOWN_GRACE=2 NO_COLOR=1; then
    summary+=("$(printf '%-9s FAILED  (Roster did not start)' "$backend")")
    failed=1
    return 0
  fi
  echo "    Roster at $roster_url"
  log "$backend: listmonk client $client_version"
  # A hung request must not hang CI.
  ROSTER_URL=$roster_url timeout 300 "$venv/bin/python" tests/compat/listmonk_client.py || status=$?
  stop_roster
  if [ "$status" = 0 ]; then
    summary+=("$(printf '%-9s passed  (%s)' "$backend" "$(elapsed "$from")")")
  else
    echo "ERROR: $backend: the listmonk client failed against Roster (exit $status); Roster's log ($roster_log):" >&2
    print_log "$roster_log" >&2
    summary+=("$(printf '%-9s FAILED  (exit %s, %s; log: %s)' "$backend" "$status" "$(elapsed "$from")" \
      "${roster_log#"$root"/}")")
    failed=1
  fi
}

mkdir -p "$work/sqlite"
run_backend sqlite "sqlite://$work/sqlite/roster.db?mode=rwc"

if [ -n "$pg_admin_url" ]; then
  pg_url=$(create_database "$pg_admin_url" roster_listmonk_client)
  run_backend postgres "$pg_url"
  drop_database "$pg_admin_url" "$pg_url"
  pg_url=
else
  log "postgres: skipped (set ROSTER_TEST_POSTGRES_URL, e.g. to the output of scripts/pg.sh)"
  summary+=("$(printf '%-9s skipped (ROSTER_TEST_POSTGRES_URL not set)' postgres)")
fi

echo
echo "listmonk client $client_version (PyPI, unmodified) against Roster, in $(elapsed "$started_at"):"
printf '%s\n' "${summary[@]}"
[ "$failed" = 0 ] || echo "listmonk client test FAILED" >&2
exit "$failed"
