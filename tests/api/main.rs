//! Integration tests: the real application on port 0, one fresh database per test, on SQLite by default and on
//! Postgres when `ROSTER_TEST_POSTGRES_URL` names a server (see `scripts/test.sh`).

mod auth;
mod binary;
mod concurrency;
mod conditions;
mod connections;
mod coverage;
mod create;
mod delete;
mod errors;
mod export;
mod fairness;
mod faults;
mod get;
mod helpers;
mod hostile;
mod idempotency;
mod imports;
mod operations;
mod permissions;
mod pool;
mod properties;
mod query;
mod races;
mod revocation;
mod seeds;
mod spec;
mod subscriber_permissions;
mod subscribers;
mod update;
