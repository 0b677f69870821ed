#!/usr/bin/env bash
# What many distinct `query` shapes cost PostgreSQL: sends BENCH_SHAPES subscriber queries, each of a shape of its
# own (a different number of comparisons), 16 at a time, to a Roster with a pool of 16, then prints the private
# memory of the PostgreSQL backends serving it, before and after, beside the same figures for BENCH_BASELINE_BIN
# (e.g. an earlier commit's build) measured alternately in the same run. Builds the release binary (honours
# CARGO_TARGET_DIR) unless BENCH_ROSTER_BIN names one. Environment: BENCH_SHAPES (2000), BENCH_ROUNDS (2). Needs
# PostgreSQL (scripts/pg.sh); logs go to test-output/bench/.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

shapes=${BENCH_SHAPES:-2000}
rounds=${BENCH_ROUNDS:-2}
out=test-output/bench
mkdir -p "$out"
ab_binaries
admin_url=${ROSTER_TEST_POSTGRES_URL:-$(scripts/pg.sh)}
db_url=
trap 'stop_roster; drop_database "$admin_url" "$db_url"' EXIT
password=$(random_password)

# backends_mib: the private memory (Private_Clean + Private_Dirty) of the backends connected to $db_url but this
# psql's, summed, in MiB, and how many there are.
backends_mib() {
  local pids kb=0 n=0 pid
  pids=$(backend_pids "$db_url")
  for pid in $pids; do
    kb=$((kb + $(awk '/^Private_(Clean|Dirty)/ {s += $2} END {print s + 0}' "/proc/$pid/smaps_rollup")))
    n=$((n + 1))
  done
  echo "$((kb / 1024)) $n"
}

# query I: the I-th shape, ~1,000 to 1,750 characters (the bound is 2,000): 40 to 79 comparisons joined by OR,
# each `>` or `<` by a pattern of I's, so that no two of the first 2,560 are the same statement.
query() {
  local i=$1 n j op parts=()
  n=$((40 + i % 40))
  for j in $(seq 1 "$n"); do
    op='>'
    [ $(((i / 40 >> (j % 6)) & 1)) = 1 ] && op='<'
    parts+=("subscribers.id $op $((j % 10))")
  done
  local IFS='|'
  sed 's/|/ OR /g' <<<"${parts[*]}"
}
export -f query

printf '%-9s %-6s %8s %12s %12s %10s\n' binary round shapes 'before MiB' 'after MiB' backends
for round in $(seq 1 "$rounds"); do
  mapfile -t order < <(round_order "$round")
  for entry in "${order[@]}"; do
    name=${entry%%=*} bin=${entry#*=}
    db_url=$(create_database "$admin_url" roster_shapes)
    ROSTER_DATABASE_URL="$db_url" "$bin" migrate >"$out/shapes-migrate.log" 2>&1
    start_roster "$bin" "$out/shapes-$name.log" ROSTER_DATABASE_URL="$db_url" ROSTER_ADMIN_PASSWORD="$password" \
      ROSTER_RATE_LIMIT=0 ROSTER_DB_MAX_CONNECTIONS=16 RUST_LOG=warn >/dev/null
    curl -sf -o /dev/null -u "admin:$password" -H 'Content-Type: application/json' \
      -d '{"email":"shape@example.com","name":"Shape"}' "$roster_url/api/subscribers"
    # Every connection opened and used once, so "before" has all 16 backends.
    seq 1 64 | xargs -P 16 -I{} curl -s -o /dev/null -u "admin:$password" "$roster_url/api/subscribers?per_page=1"
    read -r before _ < <(backends_mib)
    seq 1 "$shapes" | URL=$roster_url PASSWORD=$password xargs -P 16 -I{} bash -c \
      'curl -s -o /dev/null -w "%{http_code}\n" -u "admin:$PASSWORD" -G --data-urlencode "query=$(query {})" "$URL/api/subscribers"' \
      | sort | uniq -c >"$out/shapes-statuses.txt"
    read -r after backends < <(backends_mib)
    printf '%-9s %-6s %8s %12s %12s %10s   (%s)\n' "$name" "$round" "$shapes" "$before" "$after" "$backends" \
      "$(tr -s ' \n' ' ' <"$out/shapes-statuses.txt")"
    stop_roster
    drop_database "$admin_url" "$db_url"
    db_url=
  done
done
