#!/usr/bin/env bash
# Soak test: a release build of Roster on PostgreSQL under a mixed workload at a fixed rate for a fixed time;
# reports errors by status, latency percentiles and the server's RSS over time.
#   scripts/soak.sh [SECONDS] [RATE]        defaults: 600 s at 200 requests/s
# Figures go to test-output/soak/. Needs PostgreSQL (scripts/pg.sh starts it) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
rate=${2:-200}
out=test-output/soak
mkdir -p "$out"

cargo build --release --quiet
admin_url=${ROSTER_TEST_POSTGRES_URL:-$(scripts/pg.sh)}
db=roster_soak_$$
psql "$admin_url" -qc "CREATE DATABASE $db"
db_url=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path='/$db').geturl())" "$admin_url")
password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

ROSTER_DATABASE_URL=$db_url ROSTER_ADDRESS=127.0.0.1:$port ROSTER_ADMIN_PASSWORD=$password \
  ROSTER_RATE_LIMIT=0 RUST_LOG=warn ./target/release/roster >"$out/roster.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.1
done

echo "Soak: $(date -u +%FT%TZ), $(nproc) cores, $(uname -r); Roster $(git rev-parse --short HEAD) on $(psql "$admin_url" -Atc 'SHOW server_version')"
python3 scripts/soak.py --url "http://127.0.0.1:$port" --password "$password" --pid "$pid" \
  --rate "$rate" --seconds "$seconds" --report "$out/report.json" | tee "$out/soak.txt"
