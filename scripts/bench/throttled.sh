#!/usr/bin/env bash
# What a throttled API user's flood costs PostgreSQL: wrk sends BENCH_SECONDS of GET /api/lists with one API user's
# token (16 connections) to a Roster limiting each caller to 1 request/s, so almost every answer is 429; prints the
# answers per second and the CPU time the PostgreSQL backends of the run used, beside BENCH_BASELINE_BIN (an earlier
# build) measured alternately in the same run. Builds the release binary (honours CARGO_TARGET_DIR) unless
# BENCH_ROSTER_BIN names one. Environment: BENCH_SECONDS (10), BENCH_ROUNDS (2). Needs PostgreSQL (scripts/pg.sh)
# and wrk; logs go to test-output/bench/.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-2}
out=test-output/bench
mkdir -p "$out"
command -v wrk >/dev/null || { echo "ERROR: wrk is required (apt-get install wrk)" >&2; exit 1; }
ab_binaries
admin_url=${ROSTER_TEST_POSTGRES_URL:-$(scripts/pg.sh)}
db_url=
trap 'stop_roster; drop_database "$admin_url" "$db_url"' EXIT
password=$(random_password)
ticks=$(getconf CLK_TCK)

# backends_cpu: CPU seconds (user + system) used so far by the backends connected to $db_url but this psql's.
backends_cpu() {
  local pids ticks_used=0 pid
  pids=$(backend_pids "$db_url")
  for pid in $pids; do
    ticks_used=$((ticks_used + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "scale=2; $ticks_used / $ticks" | bc
}

printf '%-9s %-6s %12s %10s %18s\n' binary round 'answers/s' '429 share' 'PostgreSQL CPU s'
for round in $(seq 1 "$rounds"); do
  mapfile -t order < <(round_order "$round")
  for entry in "${order[@]}"; do
    name=${entry%%=*} bin=${entry#*=}
    db_url=$(create_database "$admin_url" roster_throttled)
    ROSTER_DATABASE_URL="$db_url" "$bin" migrate >"$out/throttled-migrate.log" 2>&1
    ROSTER_DATABASE_URL="$db_url" "$bin" roles create flooder --kind user >/dev/null
    token=$(ROSTER_DATABASE_URL="$db_url" "$bin" users create flooder --role flooder --json |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
    [ -n "$token" ] || { echo "ERROR: no token from 'roster users create'" >&2; exit 1; }
    start_roster "$bin" "$out/throttled-$name.log" ROSTER_DATABASE_URL="$db_url" ROSTER_ADMIN_PASSWORD="$password" \
      ROSTER_RATE_LIMIT=1 ROSTER_RATE_LIMIT_BURST=1 ROSTER_DB_MAX_CONNECTIONS=16 RUST_LOG=error >/dev/null
    # Every connection of the pool opened, so the backends are there to be measured from the start.
    seq 1 32 | xargs -P 16 -I{} curl -s -o /dev/null -u "admin:$password" "$roster_url/api/lists"
    cpu_before=$(backends_cpu)
    wrk -t2 -c16 -d"${seconds}s" -H "Authorization: token flooder:$token" \
      -s scripts/bench/status.lua "$roster_url/api/lists" >"$out/throttled-wrk-$name.txt" 2>&1
    cpu_after=$(backends_cpu)
    rate=$(awk '/Requests\/sec/ {print $2}' "$out/throttled-wrk-$name.txt")
    share=$(awk '/^429 share/ {print $3}' "$out/throttled-wrk-$name.txt")
    printf '%-9s %-6s %12s %10s %18s\n' "$name" "$round" "$rate" "$share" "$(echo "$cpu_after - $cpu_before" | bc)"
    stop_roster
    drop_database "$admin_url" "$db_url"
    db_url=
  done
done
