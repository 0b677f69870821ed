# Shared by the scripts: `source scripts/lib.sh` from the repository root. Functions only; sourcing defines them and
# the globals below, and changes nothing else. Every function is safe under `set -euo pipefail`.
#
#   log MSG...                          prints "==> MSG"
#   make_venv DIR [PYTHON]              a fresh virtualenv in DIR
#   target_dir [MANIFEST]               cargo's target directory, absolute (honours CARGO_TARGET_DIR)
#   build_roster [--release] [ARGS...]  cargo build --bin roster; prints the binary's path
#   free_port                           prints a TCP port of 127.0.0.1 that nothing listens on
#   random_password                     prints 24 random letters and digits
#   start_roster [--fd-limit N] BIN LOG [NAME=VALUE...]
#                                       starts Roster on a free port, waits for GET /health -> 200;
#                                       sets roster_pid and roster_url; prints LOG and returns 1 if it never answers
#   stop_roster                         stops the Roster start_roster started (no-op if none)
#   print_log FILE                      FILE, or its start and end when it is long
#   url_with_database URL NAME          URL with its database (the path) replaced by NAME
#   create_database ADMIN_URL PREFIX    creates PREFIX_<pid>_<random>; prints its URL
#   drop_database ADMIN_URL URL         drops the database URL names (no-op when URL is empty)
#
# A script that starts Roster or creates a database cleans up however it ends, e.g.:
#   trap 'stop_roster; drop_database "$admin_url" "$pg_url"; rm -rf "$work"' EXIT

roster_pid=
roster_url=
# How long start_roster waits for GET /health to answer 200 (a script may change it after sourcing).
roster_start_seconds=60

log() { printf '==> %s\n' "$*"; }

# random_password: 24 random letters and digits (~143 bits). Letters and digits only, so that it is one argument
# however a tool parses it: a base64 password once began with `-` and argparse took it for an option.
random_password() {
  local password
  password=$(head -c 256 /dev/urandom | tr -dc 'A-Za-z0-9')
  printf '%s\n' "${password:0:24}"
}

# make_venv DIR [PYTHON]: a fresh virtualenv in DIR. A minimal Debian has no python3, and Debian's python3 ships
# venv separately: as root with apt-get, installs them; otherwise fails loudly.
make_venv() {
  local venv=$1 python=${2:-python3}
  rm -rf "$venv"
  if command -v "$python" >/dev/null 2>&1 && "$python" -m venv "$venv" >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    rm -rf "$venv"
    "$python" -m venv "$venv"
  else
    echo "ERROR: '$python -m venv' failed; install Python 3.10+ with venv (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
}

# target_dir [MANIFEST]: the absolute target directory of the cargo project of MANIFEST (default: the one in the
# current directory), as cargo itself resolves it: CARGO_TARGET_DIR (relative to the current directory),
# build.target-dir from a .cargo/config.toml, else target/ next to the workspace root.
target_dir() {
  local args=(--format-version 1 --no-deps) json
  [ -z "${1:-}" ] || args+=(--manifest-path "$1")
  json=$(cargo metadata "${args[@]}") || return 1
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p' <<<"$json"
}

# build_roster [--release] [CARGO_BUILD_ARGS...]: builds the roster binary (cargo's progress goes to stderr) and
# prints its path, e.g. `roster_bin=$(build_roster --release --quiet)`.
build_roster() {
  local profile=debug arg bin
  for arg in "$@"; do [ "$arg" != --release ] || profile=release; done
  cargo build "$@" --bin roster >&2 || return 1
  bin=$(target_dir)/$profile/roster || return 1
  [ -x "$bin" ] || { echo "ERROR: cargo built Roster, but there is no executable $bin" >&2; return 1; }
  echo "$bin"
}

# ab_binaries: the binaries an A/B benchmark alternates, as label=path words in the array `binaries`: `new=` the
# binary BENCH_ROSTER_BIN names (by default a release build of this tree, also left in `roster_bin`), and
# `baseline=` BENCH_BASELINE_BIN when set (e.g. an earlier commit's build).
ab_binaries() {
  roster_bin=${BENCH_ROSTER_BIN:-$(build_roster --release --quiet)} || return 1
  binaries=("new=$roster_bin")
  [ -z "${BENCH_BASELINE_BIN:-}" ] || binaries+=("baseline=$BENCH_BASELINE_BIN")
}

# round_order ROUND: the entries of `binaries`, one per line, reversed in even rounds so that neither always goes
# first (read them with `mapfile -t order < <(round_order "$round")`).
round_order() {
  local i
  if [ $(($1 % 2)) = 0 ]; then
    for ((i = ${#binaries[@]} - 1; i >= 0; i--)); do echo "${binaries[$i]}"; done
  else
    printf '%s\n' "${binaries[@]}"
  fi
}

# backend_pids DB_URL: the pids of the PostgreSQL backends connected to DB_URL's database, but the one asking.
backend_pids() {
  psql "$1" -Atc "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
}

# free_port: a port of 127.0.0.1 that was free a moment ago (the OS picks it; a race with another process taking
# it before Roster does is possible but unlikely, and start_roster then fails loudly).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_roster [--fd-limit N] BIN LOG [NAME=VALUE...]: runs BIN (serving) in the background on a free port of
# 127.0.0.1, with the NAME=VALUE pairs added to its environment and its output in LOG, and waits until GET /health
# answers 200. Sets roster_pid (Roster's own pid, even with --fd-limit) and roster_url (http://127.0.0.1:PORT).
# If Roster exits or does not answer within roster_start_seconds, prints LOG (print_log), stops it and returns 1
# (under `set -e`, a plain call then ends the script).
start_roster() {
  local fd_limit=
  if [ "${1:-}" = --fd-limit ]; then fd_limit=$2; shift 2; fi
  local bin=$1 log=$2 port deadline
  shift 2
  port=$(free_port) || return 1
  roster_url=http://127.0.0.1:$port
  (
    [ -z "$fd_limit" ] || ulimit -n "$fd_limit"
    exec env ROSTER_ADDRESS="127.0.0.1:$port" "$@" "$bin"
  ) >"$log" 2>&1 &
  roster_pid=$!
  deadline=$((SECONDS + roster_start_seconds))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$roster_pid" 2>/dev/null; then
      wait "$roster_pid" 2>/dev/null || true
      roster_pid=
      echo "ERROR: Roster exited during start-up; its log ($log):" >&2
      print_log "$log" >&2
      return 1
    fi
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$roster_url/health" || true)" = 200 ]; then
      return 0
    fi
    sleep 0.2
  done
  echo "ERROR: Roster did not answer GET $roster_url/health with 200 in $roster_start_seconds s; its log ($log):" >&2
  print_log "$log" >&2
  stop_roster
  return 1
}

# print_log FILE: FILE, or when it is long its first 20 lines (where a start-up error is, before any backtrace) and
# its last 40.
print_log() {
  local lines
  [ -f "$1" ] || { echo "(no $1)"; return 0; }
  lines=$(wc -l <"$1")
  if [ "$lines" -le 60 ]; then
    cat "$1"
  else
    head -n 20 "$1"
    echo "[... $((lines - 60)) lines ...]"
    tail -n 40 "$1"
  fi
}

# seed_subscribers BIN DB_URL SUBSCRIBERS SUBSCRIPTIONS LOG: migrates the database with Roster BIN, then seeds it
# with scripts/bench/subscribers/seed.sql (its output to LOG).
seed_subscribers() {
  log "migrating and seeding $3 subscribers, $4 subscriptions"
  ROSTER_DATABASE_URL="$2" "$1" migrate >"$5" 2>&1
  psql "$2" -q -v subscribers="$3" -v subscriptions="$4" -f scripts/bench/subscribers/seed.sql >>"$5"
}

# peak_rss PID...: samples the RSS of the Roster start_roster started every 10 ms until these processes have all
# ended; prints the highest, in kB.
peak_rss() {
  local peak=0 rss running=1 pid
  while [ "$running" = 1 ]; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$roster_pid/status")
    [ "$rss" -gt "$peak" ] && peak=$rss
    sleep 0.01
    running=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && running=1; done
  done
  echo "$peak"
}

# stop_roster: SIGTERM to the Roster start_roster started, SIGKILL if it is still running 10 s later.
stop_roster() {
  [ -n "$roster_pid" ] || return 0
  local _
  kill -TERM "$roster_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$roster_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$roster_pid" 2>/dev/null || true
  wait "$roster_pid" 2>/dev/null || true
  roster_pid=
}

# url_with_database URL NAME: URL (postgres://USER:PASSWORD@HOST:PORT/DB?PARAMS) with DB replaced by NAME; the
# server, the credentials and the query string (sslmode=...) are kept.
url_with_database() {
  local url=$1 name=$2
  if [[ $url =~ ^([a-z]+://[^/?]+)(/[^?]*)?(\?.*)?$ ]]; then
    echo "${BASH_REMATCH[1]}/$name${BASH_REMATCH[3]}"
  else
    echo "ERROR: cannot read '$url' as postgres://USER:PASSWORD@HOST:PORT/DATABASE" >&2
    return 1
  fi
}

# create_database ADMIN_URL PREFIX: creates the database PREFIX_<pid>_<random> with ADMIN_URL (a role that may
# create databases) and prints its URL. Drop it with drop_database, from the script's EXIT trap.
create_database() {
  local admin_url=$1 name=$2_$$_$RANDOM url
  command -v psql >/dev/null 2>&1 ||
    { echo "ERROR: psql is required for PostgreSQL (Debian: apt-get install postgresql-client)" >&2; return 1; }
  url=$(url_with_database "$admin_url" "$name") || return 1
  psql "$admin_url" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$name\"" >/dev/null || return 1
  echo "$url"
}

# drop_database ADMIN_URL URL: drops the database named in URL (made by create_database), even if still connected
# to; does nothing when URL is empty, and only warns when it fails.
drop_database() {
  local admin_url=$1 name=${2%%\?*}
  [ -n "$name" ] || return 0
  name=${name##*/}
  psql "$admin_url" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null ||
    echo "WARNING: could not drop the database $name" >&2
}
