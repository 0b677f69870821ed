#!/usr/bin/env bash
# Large JSON answers on PostgreSQL, one run, beside its anchor (COPY ... TO STDOUT of the same rows with their
# subscriptions): a walk of every subscriber by cursor (`after=next`, 500 per page, newest `updated_at` first, one
# keep-alive connection: scripts/bench/subscribers/walk.py), and 16 concurrent 500-subscriber pages with Roster's
# peak RSS above idle. Builds the release binary (honours CARGO_TARGET_DIR) unless BENCH_ROSTER_BIN names one.
#   scripts/bench/walk.sh                  1,000,000 subscribers, 2,000,000 subscriptions
# Environment: BENCH_SUBSCRIBERS, BENCH_SUBSCRIPTIONS, BENCH_CONCURRENT (16). Needs PostgreSQL (scripts/pg.sh).
# Logs go to test-output/bench/.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

subscribers=${BENCH_SUBSCRIBERS:-1000000}
subscriptions=${BENCH_SUBSCRIPTIONS:-2000000}
concurrent=${BENCH_CONCURRENT:-16}
out=test-output/bench
mkdir -p "$out"
roster_bin=${BENCH_ROSTER_BIN:-$(build_roster --release --quiet)}
admin_url=${ROSTER_TEST_POSTGRES_URL:-$(scripts/pg.sh)}
db_url=
trap 'stop_roster; drop_database "$admin_url" "$db_url"' EXIT
db_url=$(create_database "$admin_url" roster_walk)
password=$(random_password)
auth="Basic $(printf 'admin:%s' "$password" | base64 -w0)"

seed_subscribers "$roster_bin" "$db_url" "$subscribers" "$subscriptions" "$out/walk-seed.log"

started=$(date +%s.%N)
psql "$db_url" -q -c "COPY (SELECT s.*, (SELECT json_agg(sl) FROM subscriber_lists sl WHERE sl.subscriber_id = s.id)
  FROM subscribers s ORDER BY s.updated_at DESC, s.id DESC) TO STDOUT" >/dev/null
copy_seconds=$(echo "$(date +%s.%N) - $started" | bc)

start_roster "$roster_bin" "$out/walk-roster.log" ROSTER_DATABASE_URL="$db_url" ROSTER_ADMIN_PASSWORD="$password" \
  ROSTER_RATE_LIMIT=0 RUST_LOG=warn >/dev/null
cpu() { awk '{print $14 + $15}' "/proc/$roster_pid/stat"; }
ticks=$(getconf CLK_TCK)

log "walking every subscriber by cursor, 500 per page"
before=$(cpu)
walk=$(python3 scripts/bench/subscribers/walk.py "$roster_url" "$auth" 500 0 cursor)
cpu_ms_per_page=$(python3 -c 'import json,sys; d = json.loads(sys.argv[1]); print(round((int(sys.argv[2]) - int(sys.argv[3])) / int(sys.argv[4]) * 1000 / d["pages"], 1))' \
  "$walk" "$(cpu)" "$before" "$ticks")
read -r pages rows walk_seconds slowest <<<"$(python3 -c 'import json,sys; d = json.loads(sys.argv[1]); print(d["pages"], d["rows"], d["seconds"], d["slowest_page_ms"])' "$walk")"

log "$concurrent concurrent pages of 500"
idle=$(awk '/VmRSS/ {print $2}' "/proc/$roster_pid/status")
pids=()
started=$(date +%s.%N)
for i in $(seq 1 "$concurrent"); do
  curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: $auth" \
    "$roster_url/api/subscribers?per_page=500&page=$((i * 37))" >"$out/walk-status-$i" &
  pids+=($!)
done
peak=$(peak_rss "${pids[@]}")
wait "${pids[@]}"
pages_seconds=$(echo "$(date +%s.%N) - $started" | bc)
statuses=$(cat "$out"/walk-status-* | sort | uniq -c | awk '{printf "%sx%s ", $2, $1}')
rm -f "$out"/walk-status-*

echo
echo "Large JSON answers over $subscribers subscribers ($subscriptions subscriptions), PostgreSQL, $(nproc) cores"
echo "walk by cursor, 500/page: $pages pages, $rows rows in $walk_seconds s (slowest page $slowest ms; Roster CPU $cpu_ms_per_page ms/page)"
echo "anchor: COPY of the same rows with their subscriptions TO STDOUT: $copy_seconds s"
echo "$concurrent concurrent 500-subscriber pages: $pages_seconds s, peak RSS +$(((peak - idle) / 1024)) MiB over idle $((idle / 1024)) MiB; statuses $statuses"
