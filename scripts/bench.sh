#!/usr/bin/env bash
# Benchmarks Roster against PostgreSQL answering the same SQL directly, in one run on one machine.
#   scripts/bench.sh                           the lists suite: sizes 10000 100000 1000000, 10 s per measurement,
#                                              16 connections
#   BENCH_SUITE=subscribers scripts/bench.sh   the subscriber suite (scripts/bench/subscribers/suite.sh): 1,000,000
#                                              subscribers, 200 lists, 5,000,000 subscriptions
#   BENCH_SUITE=small scripts/bench.sh         small requests, binaries A/B and over each transport, beside pgbench
#                                              of Roster's statements prepared and simple (scripts/bench/small.sh,
#                                              which documents its own BENCH_* variables)
# Environment: BENCH_SUITE (lists, the default, subscribers or small), BENCH_SECONDS, BENCH_CONNECTIONS; for lists
# BENCH_SIZES; for subscribers BENCH_SUBSCRIBERS, BENCH_SUBSCRIPTIONS, BENCH_BULK (ids in the bulk add, 100000),
# BENCH_WALK_STEP (the SQL-only walks time every Nth page, 100), BENCH_WORD (the search, moreau); BENCH_ROSTER_BIN
# (a built binary to measure instead of building the release one).
# Needs PostgreSQL (scripts/pg.sh); installs wrk.
# For each size it creates a database, seeds the lists in bulk (scripts/bench/seed.sql), starts a release build of
# Roster (honours CARGO_TARGET_DIR; if Roster never answers, prints the end of its log and exits 1), and for each
# scenario drives Roster with wrk (keep-alive, fixed concurrency) and PostgreSQL with pgbench running the SQL Roster
# itself issues (scripts/bench/*.sql). It also runs upstream listmonk's SQL for listing and search, measures
# Roster's CPU per request and RSS, and prints one table. Raw output goes to test-output/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/lib.sh
case ${BENCH_SUITE:-lists} in
  lists | subscribers) ;;
  small) exec scripts/bench/small.sh ;;
  *) echo "ERROR: BENCH_SUITE must be lists, subscribers or small, not '$BENCH_SUITE'" >&2; exit 2 ;;
esac

sizes=${BENCH_SIZES:-"10000 100000 1000000"}
seconds=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-16}
out=$root/test-output/bench
mkdir -p "$out"

if ! command -v wrk >/dev/null 2>&1; then
  echo "==> installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
pgbench=$(ls -d /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -n 1)
# BENCH_ROSTER_BIN: a Roster binary to measure instead of building one.
roster_bin=${BENCH_ROSTER_BIN:-$(build_roster --release --quiet)}
admin_url=${ROSTER_TEST_POSTGRES_URL:-$(scripts/pg.sh)}
password=$(random_password)
auth="Basic $(printf 'admin:%s' "$password" | base64 -w0)"
ticks=$(getconf CLK_TCK)

db_url=
trap 'stop_roster; drop_database "$admin_url" "$db_url"' EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$roster_pid/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$roster_pid/status"; }
to_ms() { awk -v us="$1" 'BEGIN {printf "%.2f", us / 1000}'; }

# wrk's own default; a request slower than this counts as an error (the subscriber suite, whose slowest requests
# take seconds under load, raises it).
wrk_timeout=2s

# wrk against Roster: prints "req/s p50_ms p99_ms requests errors".
drive() {
  local n=$1 method=$2 path=$3 body=${4:-}
  local log=$out/wrk.log
  BENCH_N=$n BENCH_METHOD=$method BENCH_PATH=$path BENCH_BODY=$body BENCH_AUTH=$auth \
    wrk -t2 -c"$conns" -d"${seconds}s" --timeout "$wrk_timeout" -s scripts/bench/wrk.lua "$roster_url" >"$log" 2>&1
  cat "$log" >>"$out/wrk-all.log"
  local rps line
  rps=$(awk '/Requests\/sec/ {print $2}' "$log")
  line=$(grep '^BENCH' "$log")
  local p50 p99 requests errors
  p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$line")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$line")
  requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
  errors=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$line")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") $requests $errors"
}

# pgbench on one connection: prints the average latency in ms.
sql_latency() {
  "$pgbench" -n -c 1 -j 1 -T "$seconds" -f "scripts/bench/$1" "$db_url" 2>&1 |
    tee -a "$out/pgbench-all.log" | awk '/^latency average/ {print $4; exit}'
}

# pgbench with a script: prints TPS (without connection time).
sql_tps() {
  local n=$1 script=$2
  shift 2
  "$pgbench" -n -c "$conns" -j 2 -T "$seconds" -D n="$n" "$@" -f "scripts/bench/$script" "$db_url" 2>&1 |
    tee -a "$out/pgbench-all.log" | awk '/^tps/ {print $3; exit}'
}

if [ "${BENCH_SUITE:-lists}" = subscribers ]; then
  source scripts/bench/subscribers/suite.sh
  exit $?
fi

table=$out/table.txt
{
  echo "Roster benchmark, $(date -u +%FT%TZ), $(nproc) cores, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "Roster $(git rev-parse --short HEAD), PostgreSQL $(psql "$admin_url" -Atc 'SHOW server_version'), wrk/pgbench: $conns connections, ${seconds}s each"
  printf '%-9s %-12s %10s %8s %8s %10s %8s %10s %8s\n' lists scenario roster_rps p50_ms p99_ms pg_tps ratio listmonk ratio_lm
} | tee "$table"

for n in $sizes; do
  db_url=$(create_database "$admin_url" "roster_bench_$n")
  if ! ROSTER_DATABASE_URL=$db_url "$roster_bin" migrate >"$out/migrate-$n.log" 2>&1; then
    echo "ERROR: roster migrate failed; its output ($out/migrate-$n.log):" >&2
    print_log "$out/migrate-$n.log" >&2
    exit 1
  fi
  log "seeding $n lists" >&2
  psql "$db_url" -q -v n="$n" -f scripts/bench/seed.sql >/dev/null

  # Fails loudly (the end of Roster's log, exit 1) if Roster never answers.
  start_roster "$roster_bin" "$out/roster-$n.log" ROSTER_DATABASE_URL="$db_url" ROSTER_ADMIN_PASSWORD="$password" \
    ROSTER_RATE_LIMIT=0 ROSTER_DB_MAX_CONNECTIONS="$conns" RUST_LOG=warn || exit 1
  # Not measured: the pool opens its connections (TLS and authentication, tens of ms each) on first demand, which
  # otherwise lands in the first scenario's p99.
  seconds=3 drive "$n" GET '/api/lists/{id}' >/dev/null

  row() {
    local scenario=$1 roster=$2 tps=$3 listmonk=${4:-}
    read -r rps p50 p99 _ errors <<<"$roster"
    local ratio lm_ratio=-
    ratio=$(awk -v a="$rps" -v b="$tps" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
    [ -n "$listmonk" ] && lm_ratio=$(awk -v a="$rps" -v b="$listmonk" 'BEGIN {printf "%.1f", (b > 0 ? a / b : 0)}')
    [ -n "$listmonk" ] && listmonk=$(awk -v b="$listmonk" 'BEGIN {printf "%.1f", b}')
    printf '%-9s %-12s %10.0f %8s %8s %10.0f %8s %10s %8s%s\n' "$n" "$scenario" "$rps" "$p50" "$p99" "$tps" "$ratio" \
      "${listmonk:--}" "$lm_ratio" "$([ "$errors" != 0 ] && echo "  ($errors errors)")" | tee -a "$table"
  }

  row get_one "$(drive "$n" GET '/api/lists/{id}')" "$(sql_tps "$n" get_one.sql)"
  row list "$(drive "$n" GET '/api/lists?per_page=20')" "$(sql_tps "$n" list.sql)" "$(sql_tps "$n" listmonk_list.sql)"
  row list_query "$(drive "$n" GET '/api/lists?per_page=20&query=cobalt')" "$(sql_tps "$n" list_query.sql)" "$(sql_tps "$n" listmonk_query.sql)"
  row list_tag "$(drive "$n" GET '/api/lists?per_page=20&tag=vip')" "$(sql_tps "$n" list_tag.sql)"
  row list_name "$(drive "$n" GET '/api/lists?per_page=20&order_by=name')" "$(sql_tps "$n" list_name.sql)"
  # A deep page: the first request skips n/2 index entries and leaves a mark; the repeated ones start from it.
  deep_first=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: $auth" "$roster_url/api/lists?per_page=20&page=$((n / 40))")
  IFS='|' read -r mark_at mark_id <<<"$(psql "$db_url" -qAt -c "SELECT created_at, id FROM lists ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $((n / 2))")"
  row deep_page "$(drive "$n" GET "/api/lists?per_page=20&page=$((n / 40))")" \
    "$(sql_tps "$n" deep_page.sql -D mark_at="$mark_at" -D mark_id="$mark_id")"
  echo "          deep_page first request: $(awk -v s="$deep_first" 'BEGIN {printf "%.1f", s * 1000}') ms (the repeated ones start at the mark it left)" | tee -a "$table"
  row create "$(drive "$n" POST '/api/lists' '{"name": "Bench list", "tags": ["bench"]}')" "$(sql_tps "$n" create.sql)"
  row update "$(drive "$n" PUT '/api/lists/{id}' '{"description": "benched"}')" "$(sql_tps "$n" update.sql)"

  # CPU per request, from Roster's own CPU time: the fixed cost, and the cost per list row returned. The median of
  # three runs: on two shared cores one run differs from the next by up to ~15%.
  cpu_us() {
    local path=$1 before after result requests runs=()
    for _ in 1 2 3; do
      before=$(cpu_ticks)
      result=$(drive "$n" GET "$path")
      after=$(cpu_ticks)
      requests=$(awk '{print $4}' <<<"$result")
      runs+=("$(awk -v t=$((after - before)) -v hz="$ticks" -v r="$requests" 'BEGIN {printf "%.1f", t / hz * 1e6 / r}')")
    done
    printf '%s\n' "${runs[@]}" | sort -g | sed -n 2p
  }
  one=$(cpu_us '/api/lists/{id}?x=1' )
  c1=$(cpu_us '/api/lists?per_page=1')
  c100=$(cpu_us '/api/lists?per_page=100')
  per_row=$(awk -v a="$c1" -v b="$c100" 'BEGIN {printf "%.1f", (b - a) / 99}')
  fixed=$(awk -v a="$c1" -v r="$per_row" 'BEGIN {printf "%.1f", a - r}')
  echo "$n lists: a total counted on a miss (first request for a filter, or after any change), one connection: search $(sql_latency query_count.sql) ms, tag $(sql_latency tag_count.sql) ms" | tee -a "$table"
  echo "$n lists: Roster CPU per request: get one ${one} us; listing ${fixed} us + ${per_row} us per row returned; RSS after load $(rss_mib) MiB" | tee -a "$table"
  stop_roster
  drop_database "$admin_url" "$db_url"
  db_url=
done

echo
cat "$table"
