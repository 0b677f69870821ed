#!/usr/bin/env bash
# Soak test: a release build of Roster (honours CARGO_TARGET_DIR) on PostgreSQL under a mixed workload at a fixed
# rate for a fixed time; reports errors by status, latency percentiles and the server's RSS over time.
#   scripts/soak.sh [SECONDS] [RATE]        defaults: 600 s at 200 requests/s
#   scripts/soak.sh --races [ROUNDS]        the race harness (tests/api/races.rs) on SQLite and PostgreSQL with
#                                           ROUNDS rounds per pair of writes (default 100; CI runs 4)
# Figures go to test-output/soak/. Needs PostgreSQL (ROSTER_TEST_POSTGRES_URL, else scripts/pg.sh starts it) and
# python3. Exits 1 with the end of Roster's log if Roster never answers.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if [ "${1:-}" = --races ]; then
  rounds=${2:-100}
  admin_url=${ROSTER_TEST_POSTGRES_URL:-$(scripts/pg.sh)}
  for backend in sqlite postgres; do
    echo "==> race harness on $backend, $rounds rounds per pair"
    if [ "$backend" = postgres ]; then
      ROSTER_RACE_ROUNDS=$rounds ROSTER_TEST_POSTGRES_URL=$admin_url cargo test --test api races -- --nocapture
    else
      env -u ROSTER_TEST_POSTGRES_URL ROSTER_RACE_ROUNDS=$rounds cargo test --test api races -- --nocapture
    fi
  done
  exit 0
fi

seconds=${1:-600}
rate=${2:-200}
out=test-output/soak
mkdir -p "$out"

roster_bin=$(build_roster --release --quiet)
admin_url=${ROSTER_TEST_POSTGRES_URL:-$(scripts/pg.sh)}
db_url=
trap 'stop_roster; drop_database "$admin_url" "$db_url"' EXIT
db_url=$(create_database "$admin_url" roster_soak)
password=$(random_password)

start_roster "$roster_bin" "$out/roster.log" ROSTER_DATABASE_URL="$db_url" ROSTER_ADMIN_PASSWORD="$password" \
  ROSTER_RATE_LIMIT=0 RUST_LOG=warn || exit 1

echo "Soak: $(date -u +%FT%TZ), $(nproc) cores, $(uname -r); Roster $(git rev-parse --short HEAD) on $(psql "$admin_url" -Atc 'SHOW server_version')"
python3 scripts/soak.py --url "$roster_url" --password="$password" --pid "$roster_pid" \
  --rate "$rate" --seconds "$seconds" --report "$out/report.json" | tee "$out/soak.txt"
