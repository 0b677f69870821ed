#!/usr/bin/env bash
# Small requests, A/B in one run: several Roster binaries serve at once, each on its own database, and wrk drives
# them in turn, scenario by scenario and round by round (the order alternating), so that a VM whose speed drifts
# during the run affects each binary alike. Beside them, in the same rounds, pgbench runs Roster's own GET-by-id
# statement, prepared (as sqlx runs it) and with the simple protocol, over each transport Roster can use: TCP with TLS (libpq's and sqlx's default, sslmode=prefer, on a
# server with ssl=on), TCP without TLS, and the unix socket. The last rounds serve the newest binary over each
# transport too.
#
#   BENCH_BINARIES="old=/path/to/roster new=/path/to/roster" scripts/bench/small.sh
#
# Environment: BENCH_BINARIES (label=binary ...; default: a release build of this tree, labelled `this`),
# BENCH_ROUNDS (3), BENCH_SECONDS (8), BENCH_CONNECTIONS (16), BENCH_SUBSCRIBERS (20000), BENCH_SUBSCRIPTIONS
# (100000), BENCH_TRANSPORTS (1: also serve the last binary over TCP without TLS and over the unix socket),
# BENCH_PERF (a file: record `perf` on the last binary's GET by id into it, with call graphs).
# Then the newest binary's writes, each with and without what makes it safe to retry or to race: a create with an
# `Idempotency-Key`, an update with `If-Match`; and every binary's create and update by an API user.
# A binary whose schema has no subscribers (before migration 7) gets scripts/bench/seed.sql's 200 lists and only
# the list scenarios. The unix socket needs peer authentication as the OS user postgres (Debian's default
# pg_hba.conf): this runs as root, and starts Roster and pgbench as postgres with runuser for that transport.
# Prints one table: per scenario and binary, req/s, p50 and p99 in ms, and Roster's CPU per request in µs, for each
# round; then the medians. Raw output in test-output/bench/small/.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
source scripts/lib.sh

rounds=${BENCH_ROUNDS:-3}
seconds=${BENCH_SECONDS:-8}
conns=${BENCH_CONNECTIONS:-16}
subs=${BENCH_SUBSCRIBERS:-20000}
subscriptions=${BENCH_SUBSCRIPTIONS:-100000}
transports=${BENCH_TRANSPORTS:-1}
out=$root/test-output/bench/small
mkdir -p "$out"
rm -f "$out"/*.log

command -v wrk >/dev/null 2>&1 || { echo "ERROR: wrk is required (apt-get install wrk)" >&2; exit 1; }
pgbench=$(ls -d /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -n 1)
[ -x "$pgbench" ] || { echo "ERROR: pgbench not found under /usr/lib/postgresql" >&2; exit 1; }
admin_url=${ROSTER_TEST_POSTGRES_URL:-$(scripts/pg.sh)}
socket_dir=${BENCH_SOCKET_DIR:-/var/run/postgresql}
password=$(random_password)
auth="Basic $(printf 'admin:%s' "$password" | base64 -w0)"
ticks=$(getconf CLK_TCK)

read -r -a binaries <<<"${BENCH_BINARIES:-this=$(build_roster --release --quiet)}"
labels=() bins=() urls=() pids=() dbs=() has_subs=()
for entry in "${binaries[@]}"; do
  label=${entry%%=*} bin=${entry#*=}
  [ -x "$bin" ] || { echo "ERROR: $label: no executable $bin" >&2; exit 1; }
  labels+=("$label") bins+=("$bin")
done

cleanup() {
  local pid url
  for pid in "${pids[@]}"; do
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || true
  done
  sleep 1
  for pid in "${pids[@]}"; do
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  done
  for url in "${dbs[@]}"; do drop_database "$admin_url" "$url"; done
}
trap cleanup EXIT

# The pid whose CPU is Roster's: a runuser wrapper's child when there is one.
roster_of() {
  local child
  child=$(pgrep -P "$1" | head -n 1 || true)
  echo "${child:-$1}"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$(roster_of "$1")/stat"; }

# start LABEL BIN DB_URL [runuser]: starts a Roster, records its pid and URL.
start() {
  local label=$1 bin=$2 url=$3 as=${4:-}
  local wrapped=$bin
  if [ -n "$as" ]; then
    wrapped=$out/roster-as-postgres
    printf '#!/bin/sh\nexec runuser -u postgres -- %q "$@"\n' "$bin" >"$wrapped"
    chmod +x "$wrapped"
  fi
  start_roster "$wrapped" "$out/roster-$label.log" ROSTER_DATABASE_URL="$url" ROSTER_ADMIN_PASSWORD="$password" \
    ROSTER_RATE_LIMIT=0 ROSTER_DB_MAX_CONNECTIONS="$conns" ROSTER_DB_MIN_CONNECTIONS="$conns" RUST_LOG=warn
  urls+=("$roster_url") pids+=("$roster_pid")
  roster_pid=
}

n=${#labels[@]}
for i in $(seq 0 $((n - 1))); do
  db=$(create_database "$admin_url" "roster_small_${labels[$i]//[^a-z0-9]/_}")
  dbs+=("$db")
  ROSTER_DATABASE_URL=$db "${bins[$i]}" migrate >"$out/migrate-${labels[$i]}.log" 2>&1 ||
    { echo "ERROR: ${labels[$i]}: roster migrate failed ($out/migrate-${labels[$i]}.log)" >&2; exit 1; }
  if [ "$(psql "$db" -Atc "SELECT to_regclass('subscribers') IS NOT NULL")" = t ]; then
    has_subs+=(1)
    log "seeding ${labels[$i]}: 200 lists, $subs subscribers, $subscriptions subscriptions" >&2
    psql "$db" -q -v subscribers="$subs" -v subscriptions="$subscriptions" \
      -f scripts/bench/subscribers/seed.sql >"$out/seed-${labels[$i]}.log"
  else
    has_subs+=(0)
    log "seeding ${labels[$i]}: 200 lists (its schema has no subscribers)" >&2
    psql "$db" -q -v n=200 -f scripts/bench/seed.sql >"$out/seed-${labels[$i]}.log"
  fi
  start "${labels[$i]}" "${bins[$i]}" "$db"
done
last=$((n - 1))
db_of_last=${dbs[$last]}
db_name=${db_of_last%%\?*}
db_name=${db_name##*/}
# The same database without TLS, and over the unix socket (peer authentication as postgres).
# with_param URL NAME=VALUE: URL with one more query parameter.
with_param() { if [[ $1 == *\?* ]]; then echo "$1&$2"; else echo "$1?$2"; fi; }
notls_url=$(with_param "$db_of_last" sslmode=disable)
socket_url="postgres://postgres@localhost/$db_name?host=$socket_dir"
if [ "$transports" = 1 ]; then
  labels+=("${labels[$last]}+notls" "${labels[$last]}+socket")
  has_subs+=("${has_subs[$last]}" "${has_subs[$last]}")
  start "${labels[$last]}+notls" "${bins[$last]}" "$notls_url"
  start "${labels[$last]}+socket" "${bins[$last]}" "$socket_url" runuser
fi
total=${#labels[@]}

# drive I PATH N: wrk against Roster I; prints "req/s p50_ms p99_ms cpu_us_per_request".
# BENCH_METHOD, BENCH_BODY and BENCH_HEADER pass through to wrk.lua (writes, keyed or conditional).
drive() {
  local i=$1 path=$2 ids=$3 log=$out/wrk.log before after
  before=$(cpu_ticks "${pids[$i]}")
  BENCH_N=$ids BENCH_METHOD=${BENCH_METHOD:-GET} BENCH_PATH=$path BENCH_AUTH=$auth \
    wrk -t2 -c"$conns" -d"${seconds}s" -s scripts/bench/wrk.lua "${urls[$i]}" >"$log" 2>&1
  after=$(cpu_ticks "${pids[$i]}")
  { echo "### ${labels[$i]} $path"; cat "$log"; } >>"$out/wrk-all.log"
  local line rps
  rps=$(awk '/Requests\/sec/ {print $2}' "$log")
  line=$(grep '^BENCH' "$log")
  awk -v rps="$rps" -v line="$line" -v t=$((after - before)) -v hz="$ticks" 'BEGIN {
    m = split(line, f, /[ =]/); for (k = 1; k < m; k += 1) v[f[k]] = f[k + 1]
    if (v["errors"] + 0 > 0) err = " (" v["errors"] " errors)"
    printf "%.0f %.2f %.2f %.0f%s\n", rps, v["p50_us"] / 1000, v["p99_us"] / 1000, t / hz * 1e6 / v["requests"], err
  }'
}

# pgbench of Roster's GET-by-id statement over a transport, in a protocol (prepared: sqlx's, one Bind/Execute per
# statement once prepared on the connection; simple: parsed and planned every time): prints TPS.
pg_tps() {
  local transport=$1 protocol=$2 url
  case $transport in
    tls) url=$(with_param "$db_of_last" sslmode=require) ;;
    notls) url=$notls_url ;;
    socket) url="postgres://postgres@/$db_name?host=$socket_dir" ;;
  esac
  local run=("$pgbench" -n -M "$protocol" -c "$conns" -j 2 -T "$seconds" -D n=200 -f scripts/bench/get_one.sql "$url")
  [ "$transport" = socket ] && run=(runuser -u postgres -- "${run[@]}")
  "${run[@]}" >"$out/pgbench.log" 2>&1 || { cat "$out/pgbench.log" >&2; return 1; }
  cat "$out/pgbench.log" >>"$out/pgbench-all.log"
  awk '/^tps/ {printf "%.0f\n", $3; exit}' "$out/pgbench.log"
}

scenarios=(get_one list_page subscriber_one subscriber_page)
declare -A paths=(
  [get_one]='/api/lists/{id}' [list_page]='/api/lists?per_page=20'
  [subscriber_one]='/api/subscribers/{id}' [subscriber_page]='/api/subscribers?per_page=20'
)
declare -A ids=([get_one]=200 [list_page]=1 [subscriber_one]=$subs [subscriber_page]=1)
declare -A needs_subs=([get_one]=0 [list_page]=0 [subscriber_one]=1 [subscriber_page]=1)

table=$out/table.txt
{
  echo "Small requests, $(date -u +%FT%TZ), $(nproc) cores, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs)"
  echo "PostgreSQL $(psql "$admin_url" -Atc 'SHOW server_version'), ssl=$(psql "$admin_url" -Atc 'SHOW ssl'); wrk -t2 -c$conns, pgbench -c$conns -j2, ${seconds}s each, $rounds rounds"
  printf '%-5s %-16s %-22s %9s %8s %8s %8s\n' round scenario binary req/s p50_ms p99_ms cpu_us
} | tee "$table"

# Warm every pool and cache, unmeasured.
for i in $(seq 0 $((total - 1))); do
  seconds=2 drive "$i" '/api/lists/{id}' 200 >/dev/null
done

results=$out/results.txt
: >"$results"
for round in $(seq 1 "$rounds"); do
  for scenario in "${scenarios[@]}"; do
    order=$(seq 0 $((total - 1)))
    # Alternate who goes first, round by round.
    [ $((round % 2)) = 0 ] && order=$(seq $((total - 1)) -1 0)
    for i in $order; do
      [ "${needs_subs[$scenario]}" = 1 ] && [ "${has_subs[$i]}" = 0 ] && continue
      case ${labels[$i]} in *+*) [ "$scenario" = get_one ] || continue ;; esac
      result=$(drive "$i" "${paths[$scenario]}" "${ids[$scenario]}")
      printf '%-5s %-16s %-22s %9s %8s %8s %8s %s\n' "$round" "$scenario" "${labels[$i]}" $result | tee -a "$table"
      echo "$scenario ${labels[$i]} $result" >>"$results"
    done
    if [ "$scenario" = get_one ]; then
      for transport in tls notls socket; do
        for protocol in prepared simple; do
          tps=$(pg_tps "$transport" "$protocol")
          printf '%-5s %-16s %-22s %9s\n' "$round" "$scenario" "pgbench $transport $protocol" "$tps" | tee -a "$table"
          echo "$scenario pgbench_${transport}_$protocol $tps 0 0 0" >>"$results"
        done
      done
    fi
  done
done

# What a retry key and a condition cost: the newest binary's writes with and without them, alternating per round.
# A create with a fresh `Idempotency-Key` per request (claim, mark in the write's transaction, answer kept), and
# an update with `If-Match: *` (the current list read and tagged inside the transaction).
writes=(create create_keyed update update_if_match)
declare -A write_method=([create]=POST [create_keyed]=POST [update]=PUT [update_if_match]=PUT)
declare -A write_path=([create]=/api/lists [create_keyed]=/api/lists [update]='/api/lists/{id}' [update_if_match]='/api/lists/{id}')
declare -A write_header=([create]= [create_keyed]='Idempotency-Key: bench-{key}' [update]= [update_if_match]='If-Match: *')
newest=$((n - 1))
for round in $(seq 1 "$rounds"); do
  order=("${writes[@]}")
  [ $((round % 2)) = 0 ] && order=(create_keyed create update_if_match update)
  for scenario in "${order[@]}"; do
    result=$(BENCH_METHOD=${write_method[$scenario]} BENCH_BODY='{"name": "bench {email}"}' \
      BENCH_HEADER=${write_header[$scenario]} BENCH_RUN=r$round drive "$newest" "${write_path[$scenario]}" 200)
    printf '%-5s %-16s %-22s %9s %8s %8s %8s %s\n' "$round" "$scenario" "${labels[$newest]}" $result | tee -a "$table"
    echo "$scenario ${labels[$newest]} $result" >>"$results"
  done
done

# An API user's writes on every binary (since stop 29 each checks the user and its roles inside its transaction,
# and a create is a transaction instead of one statement): a create and an update by a user whose role may manage
# and read every list, binaries alternating per round.
declare -A user_auth=()
for i in $(seq 0 $((n - 1))); do
  ROSTER_DATABASE_URL=${dbs[$i]} "${bins[$i]}" roles create writers --kind user >/dev/null
  ROSTER_DATABASE_URL=${dbs[$i]} "${bins[$i]}" roles grant writers lists:manage_all >/dev/null
  ROSTER_DATABASE_URL=${dbs[$i]} "${bins[$i]}" roles grant writers lists:get_all >/dev/null
  token=$(ROSTER_DATABASE_URL=${dbs[$i]} "${bins[$i]}" users create writer --role writers --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
  user_auth[$i]="token writer:$token"
done
for round in $(seq 1 "$rounds"); do
  order=$(seq 0 $((n - 1)))
  [ $((round % 2)) = 0 ] && order=$(seq $((n - 1)) -1 0)
  for scenario in create update; do
    for i in $order; do
      result=$(auth=${user_auth[$i]} BENCH_METHOD=${write_method[$scenario]} BENCH_BODY='{"name": "user {email}"}' \
        BENCH_RUN=u$round drive "$i" "${write_path[$scenario]}" 200)
      printf '%-5s %-16s %-22s %9s %8s %8s %8s %s\n' "$round" "user_$scenario" "${labels[$i]}" $result | tee -a "$table"
      echo "user_$scenario ${labels[$i]} $result" >>"$results"
    done
  done
done

if [ -n "${BENCH_PERF:-}" ]; then
  command -v perf >/dev/null 2>&1 || { echo "ERROR: perf is required for BENCH_PERF (apt-get install linux-perf)" >&2; exit 1; }
  log "perf on ${labels[$last]}: GET /api/lists/{id} for ${seconds}s" >&2
  perf record -F 999 -g -o "$BENCH_PERF" -p "$(roster_of "${pids[$last]}")" -- sleep "$seconds" >/dev/null 2>&1 &
  perf_pid=$!
  drive "$last" '/api/lists/{id}' 200 >/dev/null
  wait "$perf_pid"
fi

{
  echo
  echo "medians over $rounds rounds (req/s, p50 ms, p99 ms, CPU µs per request):"
  awk '{key = $1 " " $2; order[key] = order[key] ? order[key] : ++n; names[order[key]] = key
        for (k = 3; k <= 6; k += 1) v[key, k, ++c[key, k]] = $k}
       END {
         for (o = 1; o <= n; o += 1) {
           key = names[o]; line = sprintf("%-38s", key)
           for (k = 3; k <= 6; k += 1) {
             m = c[key, k]; delete a
             for (j = 1; j <= m; j += 1) a[j] = v[key, k, j] + 0
             # insertion sort: m is small
             for (x = 2; x <= m; x += 1) { t = a[x]; for (y = x - 1; y >= 1 && a[y] > t; y -= 1) a[y + 1] = a[y]; a[y + 1] = t }
             line = line sprintf(" %9s", (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2)
           }
           print line
         }
       }' "$results"
} | tee -a "$table"
