#!/usr/bin/env bash
# Starts (or finds) a local PostgreSQL from Debian's packages and prints a URL for a role that may create
# databases. Idempotent. Environment overrides: ROSTER_PG_USER, ROSTER_PG_PASSWORD, ROSTER_PG_READY_WAIT (seconds).
# Exit status 3 means PostgreSQL is not installed (apt-get install postgresql).
set -euo pipefail

user=${ROSTER_PG_USER:-roster}
password=${ROSTER_PG_PASSWORD:-roster}

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
  exit 3
fi

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"
  else sudo -n -u postgres -- "$@"
  fi
}

# The newest installed cluster; create one if the package left none.
read -r version cluster port status _ < <(pg_lsclusters --no-header | sort -k1,1V | tail -n 1 || true)
if [ -z "${version:-}" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  as_postgres pg_createcluster "$version" main >&2
  read -r version cluster port status _ < <(pg_lsclusters --no-header | sort -k1,1V | tail -n 1)
fi
# A server that was killed (a machine's processes end with the session that started them) recovers on its next
# start: fsync of the whole data directory, WAL replay and a checkpoint, which took over a minute here. pg_ctl's
# default wait is 60 s and its give-up leaves the server starting, so wait longer and then ask pg_isready.
ready_wait=${ROSTER_PG_READY_WAIT:-600}
if [ "$status" != online ]; then
  if [ "$(id -u)" = 0 ]; then pg_ctlcluster "$version" "$cluster" start -- -t "$ready_wait" >&2
  else as_postgres pg_ctlcluster "$version" "$cluster" start -- -t "$ready_wait" >&2
  fi
fi
for _ in $(seq 1 "$((ready_wait * 2))"); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$port" ||
  { echo "PostgreSQL on port $port did not become ready in ${ready_wait} s" >&2; exit 1; }

as_postgres psql -q -p "$port" -v ON_ERROR_STOP=1 -v user="$user" -v password="$password" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'password') \gexec
-- DROP DATABASE ... WITH (FORCE) must also end autovacuum workers busy in the database; without this role it fails
-- with "must be a member of the role whose process is being terminated".
SELECT format('GRANT pg_signal_backend TO %I', :'user') \gexec
SQL

echo "postgres://$user:$password@127.0.0.1:$port/postgres"
