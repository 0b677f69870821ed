# The subscriber suite of scripts/bench.sh (BENCH_SUITE=subscribers); sourced by it after its set-up, so it uses
# its settings ($seconds, $conns, $out, $pgbench, $roster_bin, $admin_url, $password, $auth, $ticks), its helpers
# (drive, cpu_ticks, rss_mib, to_ms) and lib.sh's. docs/benchmarks.md ("The subscriber suite") describes the method.
#
# One database: Roster migrates it; scripts/bench/subscribers/seed.sql fills it in bulk (BENCH_SUBSCRIBERS
# subscribers, 200 lists, BENCH_SUBSCRIPTIONS subscriptions, the counter triggers on); listmonk_setup.sql adds what
# listmonk's SQL needs. If this runs as root on the local cluster, one Roster serves one request per scenario with
# PostgreSQL's statement log on, and sqlshape.py checks that each pgbench script still runs the statements Roster
# issued (a mismatch is printed, and counted in the exit status). Then a fresh Roster is measured: wrk per scenario,
# pgbench with Roster's SQL and with listmonk's, one-shot requests timed with curl, a walk over every subscriber.
# Last, check.sql recounts every counter; the run exits 1 if one differs.

subs=${BENCH_SUBSCRIBERS:-1000000}
subscriptions=${BENCH_SUBSCRIPTIONS:-5000000}
bulk=${BENCH_BULK:-100000}
[ "$bulk" -le "$subs" ] || bulk=$subs
walk_step=${BENCH_WALK_STEP:-100}
# BENCH_WALK_SECONDS: stop the walk through the API after this long (0, the default: walk every page).
word=${BENCH_WORD:-moreau}
here=scripts/bench/subscribers
# A search or a deep page at 1M subscribers takes seconds under 16 connections on 2 cores: measure it, do not
# count it as an error.
wrk_timeout=60s
sout=$out/subscribers
mkdir -p "$sout"
rm -f "$sout"/*.log "$sout/pgbench-failed"
failures=0

# The seed's fixed lists: 1-4 hold most subscriptions; 11 is a medium public one; 199 and 200 are small.
big=1
medium=11
bulk_list=200
bulk_list_sql=199
deep=$((subs / 500 > 0 ? subs / 500 : 1))

q() { psql "$db_url" -v ON_ERROR_STOP=1 -qAtc "$1"; }
now_s() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
ms_of() { awk -v s="$1" 'BEGIN {printf "%.1f", s * 1000}'; }

# One request with curl: prints "http_code seconds"; the body goes to $sout/last-response.json.
once() {
  curl -s -o "$sout/last-response.json" -w '%{http_code} %{time_total}' --max-time 600 "$@"
}

# The size of one answer, in kB.
kb_of() { curl -s -o /dev/null -w '%{size_download}' -H "Authorization: $auth" "$roster_url$1" | awk '{printf "%.0f", $1 / 1024}'; }

# pgbench: prints "tps latency_ms" (0 and - when nothing completed; the log shows why).
pg_run() {
  local clients=$1
  shift
  local threads=$((clients > 1 ? 2 : 1))
  "$pgbench" -n -c "$clients" -j "$threads" -T "$seconds" "$@" "$db_url" >"$sout/pgbench-last.log" 2>&1 || true
  { echo "### pgbench -c $clients $*"; cat "$sout/pgbench-last.log"; } >>"$sout/pgbench.log"
  if grep -q 'aborted\|error' "$sout/pgbench-last.log"; then
    echo "ERROR: pgbench reported errors ($sout/pgbench.log): $(grep -m1 'aborted\|error' "$sout/pgbench-last.log")" >&2
    # Runs in a command substitution: the failure is counted at the end.
    echo "pgbench -c $clients $*" >>"$sout/pgbench-failed"
  fi
  awk '/^tps/ {tps = $3} /^latency average/ {lat = $4} END {print (tps == "" ? 0 : tps), (lat == "" ? "-" : lat)}' \
    "$sout/pgbench-last.log"
}

# wrk against Roster plus Roster's CPU time over the run: prints "req/s p50 p99 requests errors cpu_us".
measure() {
  local before after result requests
  before=$(cpu_ticks)
  result=$(drive "$@")
  after=$(cpu_ticks)
  requests=$(awk '{print $4}' <<<"$result")
  echo "$result $(awk -v t=$((after - before)) -v hz="$ticks" -v r="$requests" \
    'BEGIN {printf "%.0f", (r > 0 ? t / hz * 1e6 / r : 0)}')"
}

table=$out/subscribers-table.md
fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN {if (v == "-" || v == "") print "-"; else printf "%.*f", d, v}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b}'; }

# row SCENARIO "rps p50 p99 requests errors cpu" "pg_tps pg_ms" "pg1_tps pg1_ms" "lm_tps lm_ms" "lm1_tps lm1_ms" NOTE
# For a one-shot scenario (rps "-"), ratio and ratio_lm compare one request's time with the SQL's, run once.
row() {
  local scenario=$1 roster=$2 pg=${3:-"- -"} pg1=${4:-"- -"} lm=${5:-"- -"} lm1=${6:-"- -"} note=${7:-}
  local rps p50 p99 errors cpu pg_tps pg1_ms lm_tps lm1_ms r r_lm
  read -r rps p50 p99 _ errors cpu <<<"$roster"
  read -r pg_tps _ <<<"$pg"
  read -r _ pg1_ms <<<"$pg1"
  read -r lm_tps _ <<<"$lm"
  read -r _ lm1_ms <<<"$lm1"
  if [ "$rps" = - ]; then
    r=$(ratio "$pg1_ms" "$p50")
    r_lm=$(ratio "$lm1_ms" "$p50")
  else
    r=$(ratio "$rps" "$pg_tps")
    r_lm=$(ratio "$rps" "$lm_tps")
  fi
  [ "${errors:-0}" = 0 ] || [ "$errors" = - ] || note="$note ($errors errors)"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$scenario" "$(fmt "$rps")" "$p50" \
    "$p99" "${cpu:--}" "$(rss_mib)" "$(fmt "$pg_tps")" "$r" "$(fmt "$pg1_ms" 2)" "$(fmt "$lm_tps" 1)" "$r_lm" \
    "$(fmt "$lm1_ms" 2)" "$note" | tee -a "$table"
}

# The page a listing returns, as comma-separated ids (for the statements that follow it in pgbench), and the ids of
# those subscribers' lists.
ids_of() { q "SELECT string_agg(id::text, ',' ORDER BY ord) FROM (SELECT id, row_number() OVER () AS ord FROM ($1) AS page) AS p"; }
lists_of() { q "SELECT string_agg(DISTINCT list_id::text, ',') FROM subscriber_lists WHERE subscriber_id IN ($1)"; }

# Roster's SQL for PUT /api/subscribers/lists adding ids FROM..TO to list TARGET with status confirmed, as it issues
# it: one transaction; the ids checked, then added, 10,000 per statement (store.rs, CHUNK).
bulk_sql() {
  local from=$1 to=$2 target=$3 start end
  echo "BEGIN;"
  for ((start = from; start <= to; start += 10000)); do
    end=$((start + 9999 < to ? start + 9999 : to))
    echo "SELECT \"subscribers\".\"id\" FROM \"subscribers\" WHERE \"subscribers\".\"id\" IN ($(seq -s, "$start" "$end"));"
  done
  echo "SELECT \"lists\".\"id\" FROM \"lists\" WHERE \"lists\".\"id\" IN ($target);"
  for ((start = from; start <= to; start += 10000)); do
    end=$((start + 9999 < to ? start + 9999 : to))
    echo "INSERT INTO \"subscriber_lists\" (\"subscriber_id\", \"list_id\", \"status\", \"created_at\", \"updated_at\") SELECT \"subscribers\".\"id\", \"lists\".\"id\", (CASE WHEN (\"subscribers\".\"status\" = 'blocklisted') THEN 'unsubscribed' ELSE 'confirmed' END), now(), now() FROM \"subscribers\", \"lists\" WHERE \"subscribers\".\"id\" IN ($(seq -s, "$start" "$end")) AND \"lists\".\"id\" IN ($target) ORDER BY \"subscribers\".\"id\" ASC, \"lists\".\"id\" ASC ON CONFLICT (\"subscriber_id\", \"list_id\") DO UPDATE SET \"status\" = \"excluded\".\"status\", \"updated_at\" = \"excluded\".\"updated_at\";"
  done
  echo "COMMIT;"
}
bulk_body() { echo "{\"ids\": [$(seq -s, "$1" "$2")], \"action\": \"add\", \"target_list_ids\": [$3], \"status\": \"confirmed\"}"; }

# The 16 public, active lists the concurrency scenario spreads over, as "id uuid" lines; per_list_scripts writes
# one pgbench script per list from a template (:l1 and :u1 filled in) and sets per_list to their -f options.
spread=
per_list=()
per_list_scripts() {
  local template=$1 prefix=$2 id uuid
  per_list=()
  while read -r id uuid; do
    sed -e "s/:l1/$id/g" -e "s/:u1/$uuid/g" "$here/$template" >"$sout/$prefix-$id.sql"
    per_list+=(-f "$sout/$prefix-$id.sql")
  done <<<"$spread"
}

# --- database -------------------------------------------------------------------------------------------------
db_url=$(create_database "$admin_url" roster_bench_subscribers)
db_name=${db_url%%\?*}
db_name=${db_name##*/}
if ! ROSTER_DATABASE_URL=$db_url "$roster_bin" migrate >"$sout/migrate.log" 2>&1; then
  echo "ERROR: roster migrate failed; its output ($sout/migrate.log):" >&2
  print_log "$sout/migrate.log" >&2
  exit 1
fi
log "seeding $subs subscribers, 200 lists, $subscriptions subscriptions (scripts/bench/subscribers/seed.sql)" >&2
t0=$(now_s)
psql "$db_url" -v ON_ERROR_STOP=1 -q -v subscribers="$subs" -v subscriptions="$subscriptions" \
  -f "$here/seed.sql" >"$sout/seed.log" 2>&1 || { cat "$sout/seed.log" >&2; exit 1; }
t1=$(now_s)
seeded=$(q "SELECT COUNT(*) FROM subscriber_lists")
seed_line=$(awk -v total="$(secs "$t0" "$t1")" -v subs="$subs" -v rows="$seeded" '
  /Execution Time:/ { exec[++e] = $3 / 1000 }
  /Trigger subscriber_counts_insert:/ { sub(/time=/, "", $3); counter_s = $3 / 1000 }
  /Trigger list_subscriber_counts_insert:/ { sub(/time=/, "", $3); counter_l = $3 / 1000 }
  /Trigger for constraint/ { for (i = 1; i <= NF; i++) if ($i ~ /^time=/) { sub(/time=/, "", $i); fk += $i / 1000 } }
  END { printf "seeded in %.1f s: %d subscribers in %.1f s (counter trigger %.2f s), %d subscriptions in one statement in %.1f s (counter trigger %.2f s, foreign-key checks %.1f s); the rest is the lists and VACUUM ANALYZE",
        total, subs, exec[1], counter_s, rows, exec[2], counter_l, fk }' "$sout/seed.log")
log "$seed_line" >&2
psql "$db_url" -v ON_ERROR_STOP=1 -q -v bulk="$bulk" -f "$here/listmonk_setup.sql" >"$sout/listmonk-setup.log" 2>&1 ||
  { cat "$sout/listmonk-setup.log" >&2; exit 1; }

u_big=$(q "SELECT uuid FROM lists WHERE id = $big")
u_medium=$(q "SELECT uuid FROM lists WHERE id = $medium")
spread=$(q "SELECT id || ' ' || uuid FROM lists WHERE type = 'public' AND status = 'active' ORDER BY id LIMIT 16")
spread_uuids=$(awk '{print $2}' <<<"$spread" | paste -sd,)
body2="{\"email\": \"{email}\", \"list_uuids\": [\"$u_big\", \"$u_medium\"]}"
body1='{"email": "{email}", "list_uuids": ["{uuid}"]}'

# --- Roster's SQL, from PostgreSQL's statement log ---------------------------------------------------------------
capture() {
  local port logfile cluster_port
  read -r _ _ cluster_port _ _ _ logfile < <(pg_lsclusters --no-header 2>/dev/null | sort -k1,1V | tail -n 1) || true
  port=$(sed -E 's|.*:([0-9]+)/.*|\1|' <<<"${db_url%%\?*}")
  if [ "$(id -u)" != 0 ] || [ -z "${logfile:-}" ] || [ ! -r "$logfile" ] || [ "$port" != "${cluster_port:-}" ]; then
    echo "SQL check skipped: needs root and the local cluster's log (to turn on log_statement for the bench database)"
    return 0
  fi
  runuser -u postgres -- psql -p "$port" -qc "ALTER DATABASE \"$db_name\" SET log_statement = 'all'" >/dev/null
  start_roster "$roster_bin" "$sout/roster-capture.log" ROSTER_DATABASE_URL="$db_url" ROSTER_ADMIN_PASSWORD="$password" \
    ROSTER_RATE_LIMIT=0 RUST_LOG=warn || exit 1
  # The pool's connections are open (and their set-up statements logged) before the first request is captured.
  for _ in 1 2 3 4 5 6; do curl -s -o /dev/null -H "Authorization: $auth" "$roster_url/api/lists?per_page=1"; done
  local checked=0 differing=0 name script before status
  local cap_u1 cap_id
  read -r cap_id cap_u1 <<<"$(head -n 1 <<<"$spread")"
  bulk_sql 1 5 "$bulk_list_sql" >"$sout/roster-bulk-capture.sql"
  sed -e "s/:l1/$cap_id/g" -e "s/:u1/$cap_u1/g" "$here/roster_subscribe_one.sql" >"$sout/roster-subscribe-capture.sql"
  while IFS='|' read -r name script method path body; do
    before=$(wc -l <"$logfile")
    local args=(-H "Authorization: $auth" -X "$method")
    [ -z "$body" ] || args+=(-H 'Content-Type: application/json' -d "$body")
    status=$(once "${args[@]}" "$roster_url$path")
    sleep 0.5
    tail -n +"$((before + 1))" "$logfile" | grep -F "@$db_name " | grep -v 'statement: SET ' >"$sout/sql-$name.log" || true
    if [ "${status%% *}" != 200 ]; then
      echo "SQL check $name: HTTP $status"
      differing=$((differing + 1))
    elif [ -n "$script" ]; then
      checked=$((checked + 1))
      if ! python3 "$here/sqlshape.py" "$sout/sql-$name.log" "$script" >"$sout/sql-$name.check" 2>&1; then
        differing=$((differing + 1))
        echo "SQL check $name: Roster's statements differ from $script ($sout/sql-$name.check):"
        sed 's/^/    /' "$sout/sql-$name.check"
      fi
    fi
  done <<EOF
lists|$here/roster_lists.sql|GET|/api/lists?per_page=20|
lists_by_count|$here/roster_lists_by_count.sql|GET|/api/lists?order_by=subscriber_count&per_page=20|
by_list|$here/roster_by_list.sql|GET|/api/subscribers?list_id=$big&per_page=20|
search_first||GET|/api/subscribers?search=$word|
search|$here/roster_search.sql|GET|/api/subscribers?search=$word|
deep_page_first||GET|/api/subscribers?page=$deep&per_page=500|
deep_page|$here/roster_deep_page.sql|GET|/api/subscribers?page=$deep&per_page=500|
subscribe|$here/roster_subscribe.sql|POST|/api/public/subscription|{"email": "capture.two@bench.test", "list_uuids": ["$u_big", "$u_medium"]}
subscribe_one|$sout/roster-subscribe-capture.sql|POST|/api/public/subscription|{"email": "capture.one@bench.test", "list_uuids": ["$cap_u1"]}
bulk|$sout/roster-bulk-capture.sql|PUT|/api/subscribers/lists|$(bulk_body 1 5 "$bulk_list_sql")
walk||GET|/api/subscribers?order_by=updated_at&order=DESC&per_page=500&page=2|
EOF
  stop_roster
  runuser -u postgres -- psql -p "$port" -qc "ALTER DATABASE \"$db_name\" RESET log_statement" >/dev/null
  failures=$((failures + differing))
  echo "SQL check: $checked pgbench scripts compared with Roster's logged statements, $differing differ (logs: $sout/sql-*.log)"
}
capture >"$sout/sql-check.txt"
cat "$sout/sql-check.txt"
sql_check=$(tail -n 1 "$sout/sql-check.txt")

# --- measurements -------------------------------------------------------------------------------------------------
start_roster "$roster_bin" "$sout/roster.log" ROSTER_DATABASE_URL="$db_url" ROSTER_ADMIN_PASSWORD="$password" \
  ROSTER_RATE_LIMIT=0 ROSTER_DB_MAX_CONNECTIONS="$conns" RUST_LOG=warn || exit 1
# Not measured: the pool opens its connections on first demand.
seconds=3 drive 1 GET '/api/lists?per_page=20' >/dev/null

{
  echo "Roster subscriber benchmark, $(date -u +%FT%TZ), $(nproc) cores, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "Roster $(git rev-parse --short HEAD 2>/dev/null || echo '?'), PostgreSQL $(psql "$admin_url" -Atc 'SHOW server_version'), $subs subscribers, $seeded subscriptions, 200 lists; wrk and pgbench: $conns connections, ${seconds}s each; pgbench 1 conn: ${seconds}s"
  echo "$seed_line"
  echo "$sql_check"
  echo
  echo "| scenario | Roster req/s | p50 ms | p99 ms | Roster CPU µs/req | Roster RSS MiB | pgbench TPS (Roster's SQL) | ratio | pgbench ms, 1 conn | listmonk SQL TPS | ratio_lm | listmonk ms, 1 conn | notes |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
} | tee "$table"

log "lists with counts" >&2
page_lists=$(q "SELECT string_agg(id::text, ',') FROM (SELECT id FROM lists ORDER BY created_at DESC, id DESC LIMIT 20) AS p")
row "GET /api/lists?per_page=20" "$(measure 1 GET '/api/lists?per_page=20')" \
  "$(pg_run "$conns" -f "$here/roster_lists.sql" -D page_lists="$page_lists")" \
  "$(pg_run 1 -f "$here/roster_lists.sql" -D page_lists="$page_lists")" \
  "$(pg_run "$conns" -f "$here/listmonk_lists.sql")" "$(pg_run 1 -f "$here/listmonk_lists.sql")" \
  "listmonk: REFRESH MATERIALIZED VIEW + query-lists"
page_lists=$(q "SELECT string_agg(id::text, ',') FROM (SELECT id FROM lists ORDER BY (SELECT COALESCE(SUM(n), 0) FROM list_subscriber_counts c WHERE c.list_id = lists.id) DESC, id DESC LIMIT 20) AS p")
row "GET /api/lists?order_by=subscriber_count" "$(measure 1 GET '/api/lists?order_by=subscriber_count&per_page=20')" \
  "$(pg_run "$conns" -f "$here/roster_lists_by_count.sql" -D page_lists="$page_lists")" \
  "$(pg_run 1 -f "$here/roster_lists_by_count.sql" -D page_lists="$page_lists")" \
  "$(pg_run "$conns" -f "$here/listmonk_lists_by_count.sql")" "$(pg_run 1 -f "$here/listmonk_lists_by_count.sql")" \
  "listmonk sorts only its page"

log "subscribers of a list of $(q "SELECT COUNT(*) FROM subscriber_lists WHERE list_id = $big")" >&2
page_ids=$(ids_of "SELECT id FROM subscribers WHERE id IN (SELECT subscriber_id FROM subscriber_lists WHERE list_id = $big) ORDER BY id DESC LIMIT 20")
page_lists=$(lists_of "$page_ids")
vars=(-D list="$big" -D page_ids="$page_ids" -D page_lists="$page_lists")
row "GET /api/subscribers?list_id=<big>" "$(measure 1 GET "/api/subscribers?list_id=$big&per_page=20")" \
  "$(pg_run "$conns" -f "$here/roster_by_list.sql" "${vars[@]}")" "$(pg_run 1 -f "$here/roster_by_list.sql" "${vars[@]}")" \
  "$(pg_run "$conns" -f "$here/listmonk_by_list.sql" "${vars[@]}")" "$(pg_run 1 -f "$here/listmonk_by_list.sql" "${vars[@]}")" \
  "list $big: $(q "SELECT COUNT(*) FROM subscriber_lists WHERE list_id = $big") subscriptions; total exact; $(kb_of "/api/subscribers?list_id=$big&per_page=20") kB per answer"

log "search" >&2
read -r code first <<<"$(once -H "Authorization: $auth" "$roster_url/api/subscribers?search=$word&per_page=20")"
[ "$code" = 200 ] || { echo "ERROR: search answered $code" >&2; failures=$((failures + 1)); }
matches=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["total"])' "$sout/last-response.json" 2>/dev/null || echo '?')
page_ids=$(ids_of "SELECT id FROM subscribers WHERE email LIKE '%$word%' OR name_folded LIKE '%$word%' ORDER BY id DESC LIMIT 20")
page_lists=$(lists_of "$page_ids")
vars=(-D word="$word" -D page_ids="$page_ids" -D page_lists="$page_lists")
row "GET /api/subscribers?search=$word, first request" "- $(ms_of "$first") - 1 0 -" \
  "" "" "" "" "one request; $matches matches, counted once (repeated requests reuse the total while the subscribers' version holds)"
row "GET /api/subscribers?search=$word, repeated" "$(measure 1 GET "/api/subscribers?search=$word&per_page=20")" \
  "$(pg_run "$conns" -f "$here/roster_search.sql" "${vars[@]}")" "$(pg_run 1 -f "$here/roster_search.sql" "${vars[@]}")" \
  "$(pg_run "$conns" -f "$here/listmonk_search.sql" "${vars[@]}")" "$(pg_run 1 -f "$here/listmonk_search.sql" "${vars[@]}")" \
  "the page and the version (the total is reused); $(kb_of "/api/subscribers?search=$word&per_page=20") kB per answer"

log "deep page $deep" >&2
offset=$(((deep - 1) * 500))
page_ids=$(ids_of "SELECT id FROM subscribers ORDER BY id DESC LIMIT 500 OFFSET $offset")
page_lists=$(lists_of "${page_ids:-0}")
vars=(-D offset="$offset" -D mark="${page_ids%%,*}" -D page_ids="${page_ids:-0}" -D page_lists="${page_lists:-0}")
read -r code first <<<"$(once -H "Authorization: $auth" "$roster_url/api/subscribers?page=$deep&per_page=500")"
[ "$code" = 200 ] || { echo "ERROR: the deep page answered $code" >&2; failures=$((failures + 1)); }
row "GET /api/subscribers?page=$deep&per_page=500, first request" "- $(ms_of "$first") - 1 0 -" \
  "" "" "" "" "one request: the page's ids skip $offset index entries, then 500 rows are read"
row "GET /api/subscribers?page=$deep&per_page=500" "$(measure 1 GET "/api/subscribers?page=$deep&per_page=500")" \
  "$(pg_run "$conns" -f "$here/roster_deep_page.sql" "${vars[@]}")" "$(pg_run 1 -f "$here/roster_deep_page.sql" "${vars[@]}")" \
  "$(pg_run "$conns" -f "$here/listmonk_deep_page.sql" "${vars[@]}")" "$(pg_run 1 -f "$here/listmonk_deep_page.sql" "${vars[@]}")" \
  "repeated: starts at the row the first request left as a mark (listmonk: OFFSET $offset); $(kb_of "/api/subscribers?page=$deep&per_page=500") kB per answer"

log "public subscriptions" >&2
run=$(date +%s%N)
vars=(-D run="$run" -D u1="$u_big" -D u2="$u_medium" -D l1="$big" -D l2="$medium")
row "POST /api/public/subscription, 2 lists" "$(BENCH_RUN=r${run}a measure 1 POST /api/public/subscription "$body2")" \
  "$(pg_run "$conns" -f "$here/roster_subscribe.sql" "${vars[@]}" -D run="${run}a")" \
  "$(pg_run 1 -f "$here/roster_subscribe.sql" "${vars[@]}" -D run="${run}b")" \
  "$(pg_run "$conns" -f "$here/listmonk_subscribe.sql" "${vars[@]}" -D run="${run}c")" \
  "$(pg_run 1 -f "$here/listmonk_subscribe.sql" "${vars[@]}" -D run="${run}d")" \
  "new e-mails on lists $big and $medium"
one=$(BENCH_RUN=r${run}e BENCH_UUIDS=$u_big measure 1 POST /api/public/subscription "$body1")
one_pg=$(pg_run "$conns" -f "$here/roster_subscribe_one.sql" -D run="${run}f" -D u1="$u_big" -D l1="$big")
one_lm=$(pg_run "$conns" -f "$here/listmonk_subscribe_one.sql" -D run="${run}g" -D u1="$u_big")
many=$(BENCH_RUN=r${run}h BENCH_UUIDS=$spread_uuids measure 1 POST /api/public/subscription "$body1")
per_list_scripts roster_subscribe_one.sql roster-subscribe
many_pg=$(pg_run "$conns" "${per_list[@]}" -D run="${run}i")
per_list_scripts listmonk_subscribe_one.sql listmonk-subscribe
many_lm=$(pg_run "$conns" "${per_list[@]}" -D run="${run}j")
row "POST /api/public/subscription, $conns clients, 1 list" "$one" "$one_pg" "" "$one_lm" "" "list $big"
row "POST /api/public/subscription, $conns clients, 16 lists" "$many" "$many_pg" "" "$many_lm" "" \
  "1 list ÷ 16 lists, req/s: Roster $(ratio "${one%% *}" "${many%% *}"), Roster's SQL $(ratio "${one_pg%% *}" "${many_pg%% *}"), listmonk's SQL $(ratio "${one_lm%% *}" "${many_lm%% *}")"

log "PUT /api/subscribers/lists: $bulk subscribers to list $bulk_list" >&2
bulk_body 1 "$bulk" "$bulk_list" >"$sout/bulk-body.json"
before=$(cpu_ticks)
read -r code took <<<"$(once -H "Authorization: $auth" -X PUT -H 'Content-Type: application/json' \
  --data-binary @"$sout/bulk-body.json" "$roster_url/api/subscribers/lists")"
after=$(cpu_ticks)
[ "$code" = 200 ] || { echo "ERROR: the bulk add answered $code: $(head -c 300 "$sout/last-response.json")" >&2; failures=$((failures + 1)); }
counted=$(q "SELECT COALESCE(SUM(n), 0) FROM list_subscriber_counts WHERE list_id = $bulk_list")
recounted=$(q "SELECT COUNT(*) FROM subscriber_lists WHERE list_id = $bulk_list")
[ "$counted" = "$recounted" ] || failures=$((failures + 1))
bulk_sql 1 "$bulk" "$bulk_list_sql" >"$sout/roster-bulk.sql"
t0=$(now_s)
psql "$db_url" -v ON_ERROR_STOP=1 -q -f "$sout/roster-bulk.sql" >"$sout/roster-bulk.log" 2>&1 || { cat "$sout/roster-bulk.log" >&2; failures=$((failures + 1)); }
t1=$(now_s)
psql "$db_url" -v ON_ERROR_STOP=1 -q -v bulk="$bulk" -v target="$bulk_list_sql" -f "$here/listmonk_bulk.sql" \
  >"$sout/listmonk-bulk.log" 2>&1 || { cat "$sout/listmonk-bulk.log" >&2; failures=$((failures + 1)); }
t2=$(now_s)
row "PUT /api/subscribers/lists, $bulk ids, 1 request" \
  "- $(ms_of "$took") - 1 0 $(((after - before) * 1000000 / ticks))" "" "- $(ms_of "$(secs "$t0" "$t1")")" "" \
  "- $(ms_of "$(secs "$t1" "$t2")")" \
  "list $bulk_list: counters $counted, recount $recounted$([ "$counted" = "$recounted" ] && echo ' (exact)' || echo ' (WRONG)'); SQL run once with psql; Roster CPU is per request"

total_now=$(q "SELECT COUNT(*) FROM subscribers")
psql "$db_url" -v ON_ERROR_STOP=1 -q -v total="$total_now" -v per_page=500 -v step="$walk_step" -f "$here/walk_sql.sql" \
  >"$sout/walk-sql.log" 2>&1 || { cat "$sout/walk-sql.log" >&2; failures=$((failures + 1)); }
walk_sql_line=$(grep '^WALK' "$sout/walk-sql.log" || echo "WALK roster_pages=0 roster_s=0 listmonk_pages=0 listmonk_s=0")
all_pages=$(((total_now + 499) / 500))
estimate() { awk -v line="$walk_sql_line" -v key="$1" -v pages="$all_pages" 'BEGIN {
  n = split(line, kv, " "); for (i = 1; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
  k = v[key "_pages"]; printf "%.1f", (k > 0 ? v[key "_s"] / k * pages : 0) }'; }
# walk MODE LABEL: one walk through the API (walk.py), as a table row.
walk() {
  local mode=$1 label=$2 walk pages walk_s first_ms last_ms slowest_ms partial_note=
  log "walking every subscriber, 500 per page, by updated_at ($mode)" >&2
  before=$(cpu_ticks)
  walk=$(python3 "$here/walk.py" "$roster_url" "$auth" 500 "${BENCH_WALK_SECONDS:-0}" "$mode") || { echo "ERROR: the walk failed: $walk" >&2; failures=$((failures + 1)); }
  after=$(cpu_ticks)
  echo "$walk" >"$sout/walk-$mode.json"
  read -r pages walk_s first_ms last_ms slowest_ms <<<"$(python3 -c 'import json,sys; d = json.loads(sys.argv[1]); print(d.get("pages", 0), d.get("seconds", 0), d.get("first_page_ms", "-"), d.get("last_page_ms", "-"), d.get("slowest_page_ms", "-"))' "$walk" 2>/dev/null || echo "0 0 - - -")"
  if python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1]).get("partial") else 1)' "$walk" 2>/dev/null; then
    partial_note="STOPPED after BENCH_WALK_SECONDS=${BENCH_WALK_SECONDS}: "
  fi
  row "walk all $total_now by updated_at DESC, 500/page, $label" \
    "- $(awk -v s="$walk_s" -v p="$pages" 'BEGIN {printf "%.1f", (p > 0 ? s * 1000 / p : 0)}') $slowest_ms $pages 0 $(awk -v t=$((after - before)) -v hz="$ticks" -v p="$pages" 'BEGIN {printf "%.0f", (p > 0 ? t / hz * 1e6 / p : 0)}')" \
    "" "" "" "" \
    "$partial_note$pages of $all_pages pages in $walk_s s (first page $first_ms ms, last $last_ms ms); p50 column = mean ms/page, p99 = slowest${3:-}"
}
walk page "page=1,2,3… (the PyPI client)" "; the same OFFSET walk in SQL, every ${walk_step}th page scaled: Roster's plain statements $(estimate roster) s, listmonk's $(estimate listmonk) s"
walk cursor "after=next"

rss_now=$(rss_mib)
rss_peak=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$roster_pid/status")
stop_roster

log "checking the counters against a recount" >&2
psql "$db_url" -v ON_ERROR_STOP=1 -q -f "$here/check.sql" >"$sout/check.log" 2>&1 || cat "$sout/check.log" >&2
check_line=$(grep '^CHECK' "$sout/check.log" || echo "CHECK failed to run")
[[ $check_line == "CHECK mismatches=0 "* ]] || { failures=$((failures + 1)); cat "$sout/check.log" >&2; }
[ ! -f "$sout/pgbench-failed" ] || failures=$((failures + $(wc -l <"$sout/pgbench-failed")))
{
  echo
  echo "Roster RSS after the load: $rss_now MiB (peak $rss_peak MiB). Counters vs recount at the end: $check_line."
  echo "GET /api/lists?page=25000 on 1,000,000 lists is the lists suite's deep_page at that size (BENCH_SIZES=1000000 scripts/bench.sh)."
  echo "Raw output: $sout/ (wrk: $out/wrk-all.log)."
} | tee -a "$table"
drop_database "$admin_url" "$db_url"
db_url=

echo
cat "$table"
if [ "$failures" -gt 0 ]; then
  echo "FAILED: $failures problem(s) above (counters, HTTP answers or SQL drift)." >&2
  exit 1
fi
exit 0
