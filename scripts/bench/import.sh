#!/usr/bin/env bash
# The subscriber import on PostgreSQL, one run, beside its anchors:
#   - COPY of the same CSV into a bare table (email, name, attributes): the physical limit;
#   - listmonk's import path: its per-row upsert (queries/subscribers.sql, `upsert-subscriber`) through pgbench at
#     its concurrency (one connection, as its importer), in transactions of 1,000 rows, on listmonk's own schema,
#     for as many rows as the file has (so its table grows as Roster's does);
#   - the same per-row upsert on Roster's schema (its search indexes, counters and foreign keys) for BENCH_SECONDS:
#     what a row at a time costs where Roster writes;
#   - the file staged by COPY, then written into Roster's own tables by one INSERT ... SELECT each (subscribers,
#     then their subscriptions): the ceiling of any import that keeps Roster's schema.
# Then Roster: the same file imported onto 2 lists (rows/s, wall time, peak RSS over the idle RSS), and again with
# `overwrite` (every row an update). Checks afterwards that every list's counts equal a recount.
#   BENCH_ROWS=1000000 scripts/bench/import.sh
# Environment: BENCH_ROWS (1,000,000), BENCH_SECONDS (pgbench's run, 20), BENCH_ROSTER_BIN (a built binary instead of
# the release build; honours CARGO_TARGET_DIR). Needs PostgreSQL (scripts/pg.sh). Logs go to test-output/bench/.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

rows=${BENCH_ROWS:-1000000}
seconds=${BENCH_SECONDS:-20}
out=test-output/bench
mkdir -p "$out"
roster_bin=${BENCH_ROSTER_BIN:-$(build_roster --release --quiet)}
pgbench=$(ls -d /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -n 1)
admin_url=${ROSTER_TEST_POSTGRES_URL:-$(scripts/pg.sh)}
db_url=
listmonk_url=
trap 'stop_roster; drop_database "$admin_url" "$db_url"; drop_database "$admin_url" "$listmonk_url"' EXIT
db_url=$(create_database "$admin_url" roster_import)
listmonk_url=$(create_database "$admin_url" listmonk_import)
password=$(random_password)
auth="admin:$password"

csv=$out/import.csv
log "writing $rows rows to $csv"
awk -v n="$rows" 'BEGIN {
  print "email,name,attributes"
  for (i = 0; i < n; i++) printf "user%d@example.com,User %d,\"{\"\"n\"\":%d,\"\"plan\"\":\"\"free\"\"}\"\n", i, i, i
}' >"$csv"
size_mib=$(du -m "$csv" | cut -f1)

seconds_since() { echo "$(date +%s.%N) - $1" | bc; }
per_second() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", n / s}'; }

# --- COPY into a bare table ---------------------------------------------------------------------------------------------
psql "$db_url" -q -c "CREATE TABLE bare (email text, name text, attributes jsonb)"
started=$(date +%s.%N)
psql "$db_url" -q -c "\\copy bare FROM '$csv' WITH (FORMAT csv, HEADER)"
copy_seconds=$(seconds_since "$started")
psql "$db_url" -q -c "DROP TABLE bare"

# per_row NAME URL STATEMENT RUN: pgbench on one connection (listmonk's importer's), 1,000 runs of STATEMENT (with :n
# a random number) per transaction (listmonk commits every 10,000; pgbench's own cost grows with a longer script), for
# RUN (pgbench's -T seconds or -t transactions); prints the rows per second.
per_row() {
  local script=$out/$1_import.sql _
  {
    echo "BEGIN;"
    for _ in $(seq 1 1000); do
      echo "\\set n random(1, 2000000000)"
      echo "$3"
    done
    echo "COMMIT;"
  } >"$script"
  # shellcheck disable=SC2086 # RUN is two words
  "$pgbench" -n -M prepared -c 1 -j 1 $4 -f "$script" "$2" >"$out/import-$1.log" 2>&1
  awk '/^tps/ {printf "%.0f", $3 * 1000; exit}' "$out/import-$1.log"
}

# --- listmonk's per-row upsert ------------------------------------------------------------------------------------------
psql "$listmonk_url" -q -f scripts/bench/listmonk_import_schema.sql >"$out/import-listmonk-schema.log"
# listmonk's upsert-subscriber with its importer's arguments: lists {1,2}, status unconfirmed, no overwrite.
listmonk_rows_per_second=$(per_row listmonk "$listmonk_url" "WITH sub AS (INSERT INTO subscribers AS s (uuid, email, name, attribs, status) VALUES (gen_random_uuid(), 'user' || :n || '@example.com', 'User ' || :n, '{\"n\": 1, \"plan\": \"free\"}', 'enabled') ON CONFLICT (email) DO UPDATE SET name = (CASE WHEN false THEN 'User ' || :n ELSE s.name END), attribs = (CASE WHEN false THEN '{}'::jsonb ELSE s.attribs END), updated_at = NOW() RETURNING uuid, id, status), subs AS (INSERT INTO subscriber_lists (subscriber_id, list_id, status) SELECT sub.id, listID, CASE WHEN sub.status = 'blocklisted' THEN 'unsubscribed' ELSE 'unconfirmed'::subscription_status END FROM sub, UNNEST(ARRAY[1, 2]::INT[]) AS listID ON CONFLICT (subscriber_id, list_id) DO UPDATE SET updated_at = NOW(), status = CASE WHEN false THEN EXCLUDED.status ELSE subscriber_lists.status END) SELECT uuid, id FROM sub;" "-t $(((rows + 999) / 1000))")

# --- the same per-row upsert on Roster's schema (its indexes, counters and foreign keys), in a database of its own --
per_row_url=$(create_database "$admin_url" roster_import_per_row)
ROSTER_DATABASE_URL="$per_row_url" "$roster_bin" migrate >"$out/import-per-row-migrate.log" 2>&1
psql "$per_row_url" -q -c "INSERT INTO lists (uuid, name, name_folded, type, optin, status, tags, description,
  created_at, updated_at) SELECT gen_random_uuid(), n, n, 'private', 'single', 'active', '[]', '', now(), now()
  FROM (VALUES ('one'), ('two')) v(n)" >>"$out/import-per-row-migrate.log"
per_row_lists=$(psql "$per_row_url" -tA -c "SELECT string_agg(id::text, ',') FROM lists")
per_row_rows_per_second=$(per_row per-row "$per_row_url" "WITH sub AS (INSERT INTO subscribers AS s (uuid, email, name, name_folded, attribs, status, created_at, updated_at) VALUES (gen_random_uuid(), 'user' || :n || '@example.com', 'User ' || :n, 'user ' || :n, '{\"n\": 1, \"plan\": \"free\"}', 'enabled', now(), now()) ON CONFLICT (email) DO UPDATE SET updated_at = now() RETURNING id, status), subs AS (INSERT INTO subscriber_lists (subscriber_id, list_id, status, created_at, updated_at, grants_scope) SELECT sub.id, list_id, CASE WHEN sub.status = 'blocklisted' THEN 'unsubscribed' ELSE 'unconfirmed' END, now(), now(), true FROM sub, UNNEST(ARRAY[$per_row_lists]::BIGINT[]) AS list_id ON CONFLICT (subscriber_id, list_id) DO UPDATE SET updated_at = now()) SELECT id FROM sub;" "-T $seconds")

# --- the file staged by COPY, then one INSERT ... SELECT per table into Roster's schema (in the same database) -------
psql "$per_row_url" -q -c "TRUNCATE subscribers CASCADE" 2>/dev/null
started=$(date +%s.%N)
psql "$per_row_url" -q -v ON_ERROR_STOP=1 >"$out/import-ceiling.log" <<SQL
CREATE TEMPORARY TABLE stage (email text, name text, attributes jsonb);
\\copy stage FROM '$csv' WITH (FORMAT csv, HEADER)
INSERT INTO subscribers (uuid, email, name, name_folded, attribs, status, created_at, updated_at)
  SELECT gen_random_uuid(), lower(email), name, lower(name), attributes, 'enabled', now(), now() FROM stage;
INSERT INTO subscriber_lists (subscriber_id, list_id, status, created_at, updated_at, grants_scope)
  SELECT s.id, l.id, 'unconfirmed', now(), now(), true FROM subscribers s, lists l ORDER BY 1, 2;
SQL
ceiling_seconds=$(seconds_since "$started")
drop_database "$admin_url" "$per_row_url"

# --- Roster -------------------------------------------------------------------------------------------------------------
start_roster "$roster_bin" "$out/import-roster.log" ROSTER_DATABASE_URL="$db_url" ROSTER_ADMIN_PASSWORD="$password" \
  RUST_LOG=warn >/dev/null
for name in one two; do
  curl -sf -u "$auth" -X POST "$roster_url/api/lists" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$name\"}" >/dev/null
done
lists=$(curl -sf -u "$auth" "$roster_url/api/lists?per_page=all&minimal=true" |
  python3 -c 'import json,sys; print(",".join(str(l["id"]) for l in json.load(sys.stdin)["data"]["results"]))')

# import PARAMS: prints "seconds peak_rss_mib_over_idle imported created updated status".
import() {
  local params=$1 idle peak started state job
  idle=$(awk '/VmRSS/ {print $2}' "/proc/$roster_pid/status")
  peak=$idle
  started=$(date +%s.%N)
  curl -sf -u "$auth" -X POST "$roster_url/api/import/subscribers" -F "params=$params" -F "file=@$csv" >/dev/null
  while :; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$roster_pid/status")
    [ "$rss" -gt "$peak" ] && peak=$rss
    job=$(curl -sf -u "$auth" "$roster_url/api/import/subscribers")
    state=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["status"])' <<<"$job")
    case $state in finished | failed) break ;; esac
    sleep 0.1
  done
  local took
  took=$(seconds_since "$started")
  python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(sys.argv[1], sys.argv[2], d["imported"], d["created"], d["updated"], d["status"])' \
    "$took" "$(awk -v p="$peak" -v i="$idle" 'BEGIN {printf "%.1f", (p - i) / 1024}')" <<<"$job"
}

log "importing $rows rows onto lists $lists"
read -r first_s first_rss first_imported first_created _ first_status < <(import "{\"lists\":[$lists]}")
log "importing them again with overwrite"
read -r second_s second_rss second_imported _ second_updated second_status < <(import "{\"lists\":[$lists],\"overwrite\":true}")

# Every list's counts against a recount.
mismatches=$(psql "$db_url" -tA -c "SELECT COUNT(*) FROM (
  SELECT list_id, status, SUM(c) c, SUM(r) r FROM (
    SELECT list_id, status::text, SUM(n) c, 0 r FROM list_subscriber_counts GROUP BY 1, 2
    UNION ALL SELECT list_id, status::text, 0, COUNT(*) FROM subscriber_lists GROUP BY 1, 2) x
  GROUP BY 1, 2 HAVING SUM(c) <> SUM(r)) m")
subscriptions=$(psql "$db_url" -tA -c "SELECT COUNT(*) FROM subscriber_lists")

first_rate=$(per_second "$first_imported" "$first_s")
second_rate=$(per_second "$second_imported" "$second_s")
copy_rate=$(per_second "$rows" "$copy_seconds")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo
echo "Import of $rows rows (${size_mib} MiB CSV) onto 2 lists, PostgreSQL; one run, same machine"
printf '%-44s %12s %10s %14s %s\n' "path" "rows/s" "seconds" "peak RSS +MiB" "notes"
printf '%-44s %12s %10.1f %14s %s\n' "COPY into a bare table (the limit)" "$copy_rate" "$copy_seconds" "-" "no indexes, no lists"
printf '%-44s %12s %10s %14s %s\n' "listmonk per-row upsert (pgbench, 1 conn)" "$listmonk_rows_per_second" "-" "-" \
  "$rows rows, 1,000 per transaction, listmonk's schema"
printf '%-44s %12s %10s %14s %s\n' "the same per-row upsert, Roster's schema" "$per_row_rows_per_second" "-" "-" \
  "${seconds}s run from an empty table, 1,000 rows per transaction"
printf '%-44s %12s %10.1f %14s %s\n' "COPY + INSERT ... SELECT, Roster's schema" "$(per_second "$rows" "$ceiling_seconds")" \
  "$ceiling_seconds" "-" "one statement per table, one connection: the schema's ceiling, x$(ratio "$(per_second "$rows" "$ceiling_seconds")" "$copy_rate") COPY"
printf '%-44s %12s %10.1f %14s %s\n' "Roster import (new subscribers)" "$first_rate" "$first_s" "$first_rss" \
  "$first_status: $first_created created; x$(ratio "$first_rate" "$listmonk_rows_per_second") listmonk, x$(ratio "$first_rate" "$per_row_rows_per_second") per-row, x$(ratio "$first_rate" "$copy_rate") COPY"
printf '%-44s %12s %10.1f %14s %s\n' "Roster import again, overwrite (all updates)" "$second_rate" "$second_s" "$second_rss" \
  "$second_status: $second_updated updated; x$(ratio "$second_rate" "$listmonk_rows_per_second") listmonk, x$(ratio "$second_rate" "$per_row_rows_per_second") per-row, x$(ratio "$second_rate" "$copy_rate") COPY"
echo "subscriptions afterwards: $subscriptions; lists whose counts differ from a recount: $mismatches"
[ "$mismatches" = 0 ] && [ "$first_status" = finished ] && [ "$second_status" = finished ]
