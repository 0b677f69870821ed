#!/usr/bin/env bash
# Abuse run: a debug build of Roster on SQLite, with its connection, timeout, stream and login limits set and only
# 256 descriptors, attacked in turn with slow readers, idle and trickling sockets, an HTTP/2 stream flood, invented
# methods, failed logins, searches over planted long names, an API user's flood of expensive queries, whole
# listings (per_page=all) of a large table and uploads whose cost is in their shape, while a normal client polls it
# (scripts/abuse.py). Prints per-phase RSS,
# descriptors and figures; exits non-zero when a promise is broken.
#
#   scripts/abuse.sh            # the counts below, for a run by hand
#   scripts/abuse.sh --small    # CI's counts: well under 3 minutes once built
#
# Counts (defaults / --small): ABUSE_SLOW_READERS 300/80, ABUSE_IDLE 300/120, ABUSE_H2_STREAMS 400/100,
# ABUSE_METHODS 20000/2000, ABUSE_LOGINS 2000/300, ABUSE_PLANTED 1500/300 (sign-ups with 2,000-character names),
# ABUSE_FLOOD_SECONDS 10/5, ABUSE_ROWS 200000/50000 (subscribers added for the whole listings). ROSTER_BIN runs that binary instead of building one (the build
# honours CARGO_TARGET_DIR); PYTHON picks the interpreter for the virtualenv. The report goes to
# test-output/abuse/report.txt, Roster's log to test-output/abuse/roster.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

case ${1:-} in
  --small) small=1 ;;
  "") small= ;;
  *) echo "usage: scripts/abuse.sh [--small]" >&2; exit 2 ;;
esac
if [ -n "$small" ]; then
  slow_readers=${ABUSE_SLOW_READERS:-80} idle=${ABUSE_IDLE:-120} h2_streams=${ABUSE_H2_STREAMS:-100}
  methods=${ABUSE_METHODS:-2000} logins=${ABUSE_LOGINS:-300} planted=${ABUSE_PLANTED:-300}
  flood_seconds=${ABUSE_FLOOD_SECONDS:-5} rows=${ABUSE_ROWS:-50000}
else
  slow_readers=${ABUSE_SLOW_READERS:-300} idle=${ABUSE_IDLE:-300} h2_streams=${ABUSE_H2_STREAMS:-400}
  methods=${ABUSE_METHODS:-20000} logins=${ABUSE_LOGINS:-2000} planted=${ABUSE_PLANTED:-1500}
  flood_seconds=${ABUSE_FLOOD_SECONDS:-10} rows=${ABUSE_ROWS:-200000}
fi

# The limits Roster runs with; abuse.py is told the ones its expectations depend on.
max_connections=64
header_timeout=2
idle_timeout=5
http2_max_streams=32
login_burst=10
login_per_minute=5
# Every statement stops here (the flood's expensive queries among them).
statement_timeout=3

H2_VERSION=4.4.1
venv=$root/test-output/.venv-abuse
out=$root/test-output/abuse
python=${PYTHON:-python3}

source scripts/lib.sh

# --- h2, pinned, in a git-ignored virtualenv --------------------------------------------------------------------------
if [ "$("$venv/bin/python" -c 'import h2; print(h2.__version__)' 2>/dev/null || true)" != "$H2_VERSION" ]; then
  log "installing h2==$H2_VERSION into ${venv#"$root"/}"
  make_venv "$venv" "$python"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "h2==$H2_VERSION"
fi

# --- Roster -------------------------------------------------------------------------------------------------------------
if [ -n "${ROSTER_BIN:-}" ]; then
  roster_bin=$ROSTER_BIN
  [ -x "$roster_bin" ] || { echo "ERROR: no executable Roster at $roster_bin" >&2; exit 1; }
else
  log "cargo build"
  roster_bin=$(build_roster --quiet)
fi

rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
trap 'stop_roster; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

password=$(random_password)

# Only 256 descriptors (start_roster lowers the limit in a subshell that then execs Roster, so roster_pid is
# Roster's own pid, which abuse.py watches).
log "starting Roster"
start_roster --fd-limit 256 "$roster_bin" "$out/roster.log" \
  ROSTER_DATABASE_URL="sqlite://$work/roster.db?mode=rwc" ROSTER_ADMIN_PASSWORD="$password" \
  ROSTER_LOG_FORMAT=text NO_COLOR=1 RUST_LOG="${RUST_LOG:-warn}" \
  ROSTER_MAX_CONNECTIONS=$max_connections ROSTER_HEADER_READ_TIMEOUT=$header_timeout \
  ROSTER_IDLE_TIMEOUT=$idle_timeout ROSTER_HTTP2_MAX_STREAMS=$http2_max_streams \
  ROSTER_LOGIN_FAILURE_BURST=$login_burst ROSTER_LOGIN_FAILURES_PER_MINUTE=$login_per_minute \
  ROSTER_RATE_LIMIT=100 ROSTER_RATE_LIMIT_BURST=200 ROSTER_DB_STATEMENT_TIMEOUT=$statement_timeout
log "Roster (pid $roster_pid) at $roster_url"

# The flood's caller: an API user that may read every subscriber, a different caller from the normal client.
db_url="sqlite://$work/roster.db?mode=rwc"
ROSTER_DATABASE_URL=$db_url "$roster_bin" roles create attackers --kind user >/dev/null
ROSTER_DATABASE_URL=$db_url "$roster_bin" roles grant attackers subscribers:get_all >/dev/null
attacker_token=$(ROSTER_DATABASE_URL=$db_url "$roster_bin" users create attacker --role attackers --json |
  "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])')

log "abuse run: $slow_readers slow readers, $idle idle sockets, $h2_streams h2 streams, $methods invented methods," \
  "$logins failed logins, $planted planted names, a ${flood_seconds} s flood of expensive queries"
set +e
"$venv/bin/python" "$root/scripts/abuse.py" --url "$roster_url" --password="$password" --pid "$roster_pid" \
  --log "$out/roster.log" --report "$out/report.txt" \
  --slow-readers "$slow_readers" --idle "$idle" --h2-streams "$h2_streams" --methods "$methods" --logins "$logins" \
  --max-connections "$max_connections" --header-timeout "$header_timeout" \
  --login-burst "$login_burst" --login-per-minute "$login_per_minute" \
  --attacker-token "$attacker_token" --planted "$planted" --flood-seconds "$flood_seconds" \
  --rows "$rows" --sqlite-db "$work/roster.db"
status=$?
set -e
if [ "$status" != 0 ]; then
  echo "Abuse run FAILED (report: test-output/abuse/report.txt, Roster's log: test-output/abuse/roster.log)" >&2
fi
exit "$status"
