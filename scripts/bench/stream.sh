#!/usr/bin/env bash
# Memory and speed of GET /api/subscribers?per_page=all (or a large numbered page, or the CSV export) on PostgreSQL,
# one run, beside its anchor: COPY ... TO STDOUT of the same rows. Builds the release binary (honours CARGO_TARGET_DIR) unless BENCH_ROSTER_BIN names one;
# BENCH_BASELINE_BIN names a second binary (e.g. an earlier commit's) measured alternately with it, so the A/B
# figures come from the same minutes of this machine.
#   scripts/bench/stream.sh                  300,000 subscribers, 600,000 subscriptions, 2 rounds
# Environment: BENCH_SUBSCRIBERS, BENCH_SUBSCRIPTIONS, BENCH_ROUNDS, BENCH_CONCURRENT (requests at once in the
# second measurement, 4), BENCH_PER_PAGE (`all`, the default, or a number: one page that large), BENCH_EXPORT (1:
# measure GET /api/subscribers/export instead, beside COPY of the same columns as CSV), BENCH_LIST_DESCRIPTION
# (characters of every list's description, 0: with few subscribers on many lists, what a page's repeated lists
# cost). Needs
# PostgreSQL (scripts/pg.sh). Prints one table; the logs go to test-output/bench/.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

subscribers=${BENCH_SUBSCRIBERS:-300000}
subscriptions=${BENCH_SUBSCRIPTIONS:-600000}
rounds=${BENCH_ROUNDS:-2}
concurrent=${BENCH_CONCURRENT:-4}
per_page=${BENCH_PER_PAGE:-all}
export_csv=${BENCH_EXPORT:-0}
path="/api/subscribers?per_page=$per_page"
[ "$export_csv" = 1 ] && path=/api/subscribers/export
out=test-output/bench
mkdir -p "$out"
ab_binaries
admin_url=${ROSTER_TEST_POSTGRES_URL:-$(scripts/pg.sh)}
db_url=
trap 'stop_roster; drop_database "$admin_url" "$db_url"' EXIT
db_url=$(create_database "$admin_url" roster_stream)
password=$(random_password)

seed_subscribers "$roster_bin" "$db_url" "$subscribers" "$subscriptions" "$out/stream-seed.log"
description=${BENCH_LIST_DESCRIPTION:-0}
[ "$description" -gt 0 ] && psql "$db_url" -q -c "UPDATE lists SET description = repeat('d', $description)"

# The anchor: the rows and their subscriptions as PostgreSQL itself writes them out (for the export, its columns
# as CSV, in its order).
copy_started=$(date +%s.%N)
if [ "$export_csv" = 1 ]; then
  psql "$db_url" -q -c "COPY (SELECT s.uuid, s.email, s.name, s.attribs, s.status, s.created_at, s.updated_at,
    (SELECT json_object_agg(sl.list_id, sl.status) FROM subscriber_lists sl WHERE sl.subscriber_id = s.id)
    FROM subscribers s ORDER BY s.id) TO STDOUT WITH (FORMAT csv, HEADER)" >/dev/null
else
  psql "$db_url" -q -c "COPY (SELECT s.*, (SELECT json_agg(sl) FROM subscriber_lists sl WHERE sl.subscriber_id = s.id)
    FROM subscribers s ORDER BY s.created_at DESC, s.id DESC) TO STDOUT" >/dev/null
fi
copy_seconds=$(echo "$(date +%s.%N) - $copy_started" | bc)

# measure N: N concurrent GETs of $path; prints "seconds peak_rss_mib bytes_each statuses".
measure() {
  local n=$1 idle peak started i pids=()
  rm -f "$out"/stream-body-* "$out"/stream-status-*
  idle=$(awk '/VmRSS/ {print $2}' "/proc/$roster_pid/status")
  started=$(date +%s.%N)
  for i in $(seq 1 "$n"); do
    curl -s -o "$out/stream-body-$i" -w '%{http_code}\n' -u "admin:$password" \
      "$roster_url$path" >"$out/stream-status-$i" &
    pids+=($!)
  done
  peak=$(peak_rss "${pids[@]}")
  wait "${pids[@]}"
  printf '%.1f %d %d %s\n' "$(echo "$(date +%s.%N) - $started" | bc)" $(((peak - idle) / 1024)) \
    "$(stat -c %s "$out/stream-body-1")" "$(cat "$out"/stream-status-* | sort | uniq -c | awk '{printf "%sx%s ", $2, $1}')"
}

echo
echo "GET $path over $subscribers subscribers ($subscriptions subscriptions; lists' descriptions $description characters), $(nproc) cores, $(date -u +%FT%TZ)"
printf '%-10s %-6s %-28s %-28s\n' binary round "1 request: s / +RSS MiB" "$concurrent at once: s / +RSS MiB"
for round in $(seq 1 "$rounds"); do
  mapfile -t order < <(round_order "$round")
  for entry in "${order[@]}"; do
    name=${entry%%=*} bin=${entry#*=}
    start_roster "$bin" "$out/stream-$name.log" ROSTER_DATABASE_URL="$db_url" ROSTER_ADMIN_PASSWORD="$password" \
      ROSTER_RATE_LIMIT=0 ROSTER_REQUEST_TIMEOUT=300 ROSTER_DB_STATEMENT_TIMEOUT=240 RUST_LOG=warn >/dev/null
    read -r s1 m1 bytes st1 < <(measure 1)
    read -r s4 m4 _ st4 < <(measure "$concurrent")
    printf '%-10s %-6s %-28s %-28s %s bytes; statuses %s / %s\n' "$name" "$round" "$s1 s / +$m1" "$s4 s / +$m4" \
      "$bytes" "$st1" "$st4"
    stop_roster
  done
done
rm -f "$out"/stream-body-* "$out"/stream-status-*
echo "anchor: COPY of the same rows with their subscriptions TO STDOUT: ${copy_seconds} s"
