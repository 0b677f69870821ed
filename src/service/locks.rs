//! The one lock order of every write (see `docs/architecture.md`, "Writes under concurrency"). On PostgreSQL's
//! READ COMMITTED a write transaction takes, in this order and each in ascending key order:
//!
//! 1. its **shard** (`begin_write`): the counters and versions are kept in 16 shards, one per backend pid modulo
//!    16, whose rows the triggers lock at the end of each statement. Two transactions of one shard would lock
//!    them after different row locks and could deadlock; taking the shard first makes them queue instead (they
//!    already queued at their first statement's trigger, so this costs no concurrency).
//! 2. the **caller's** API user and roles, `FOR SHARE` (`auth::vouch`), checked unchanged since authentication:
//!    `roster roles grant/revoke` and the user commands change them `FOR UPDATE`, each one row and before any
//!    list, so a revoke waits for the writes it would have refused and later writes see it;
//! 3. the **lists** it names: `FOR KEY SHARE` to add or change subscriptions on them (a concurrent delete of the
//!    list waits, or has happened and the list is reported missing), `FOR NO KEY UPDATE` to change one, `FOR
//!    UPDATE` to delete them;
//! 4. the **subscribers** it names, `FOR UPDATE`: every write to a subscriber or its subscriptions holds it, so
//!    a blocklist and an added subscription cannot both read the other's old state (write skew);
//! 5. **subscriptions** that a delete cascade or a statement on lists it did not lock would touch, `FOR UPDATE`
//!    in `(subscriber_id, list_id)` order (`lock_subscriptions`);
//! 6. last, the **`Idempotency-Key`** of the request it carries out, if any (`commit`): other statements on that
//!    row take no other lock, so waiting for it closes no cycle.
//!
//! SQLite serialises writers on its one writing connection, so the locks are PostgreSQL-only and the same calls
//! there only check existence.

use std::collections::BTreeSet;

use sea_orm::sea_query::{Alias, Expr, LockType, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, SqliteTransactionMode,
    Statement, TransactionOptions, TransactionTrait,
};

use super::ServiceError;
use super::auth::vouch;
use super::idempotency::mark_committed;
use super::sql::is_postgres;
use crate::domain::Principal;
use crate::entity::subscriber_lists;

/// Shards of the counters and versions on PostgreSQL (migrations 5 to 8).
const SHARDS: i32 = 16;

/// The advisory-lock namespace of the shards ("Rost").
const SHARD_LOCKS: i32 = 0x526f_7374;

/// Ids in one locking statement: far below every backend's limit on bound values.
const CHUNK: usize = 10_000;

/// Begins a write transaction for `who` holding the session's shard (step 1 of the lock order), then `who`'s
/// credentials and roles, checked unchanged since authentication (step 2).
pub async fn begin_write(
    db: &DatabaseConnection,
    who: &Principal,
) -> Result<DatabaseTransaction, ServiceError> {
    let txn = begin_unauthenticated_write(db).await?;
    vouch(&txn, who).await?;
    Ok(txn)
}

/// Begins a write that no caller's grants authorise (the public subscription form) holding the session's shard.
pub async fn begin_unauthenticated_write(
    db: &DatabaseConnection,
) -> Result<DatabaseTransaction, DbErr> {
    let txn = begin(db).await?;
    if is_postgres(&txn) {
        txn.execute_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!("SELECT pg_advisory_xact_lock({SHARD_LOCKS}, pg_backend_pid() % {SHARDS})"),
        ))
        .await?;
    }
    Ok(txn)
}

/// Begins a write for `who` that changes no counted rows (no shard): `who` is checked as in [`begin_write`].
pub async fn begin_as(
    db: &DatabaseConnection,
    who: &Principal,
) -> Result<DatabaseTransaction, ServiceError> {
    let txn = begin(db).await?;
    vouch(&txn, who).await?;
    Ok(txn)
}

/// `BEGIN`, and on SQLite `BEGIN IMMEDIATE`: the write lock is taken at once (waiting as for any write), so what
/// the transaction reads is current when it writes. A deferred transaction that read (the caller's roles, the
/// rows it changes) before another process (the `roster` commands) wrote would fail with "database is locked" at
/// its first write instead.
async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Commits a write, marking the `Idempotency-Key` of the request it carries out (if any) in the same
/// transaction (step 6).
pub async fn commit(txn: DatabaseTransaction) -> Result<(), ServiceError> {
    mark_committed(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// `select` taking `lock` on the rows it reads: on PostgreSQL; SQLite, whose writers are serialised, has no row
/// locks (see the module's notes).
pub fn locked<S: QuerySelect>(db: &impl ConnectionTrait, select: S, lock: LockType) -> S {
    if is_postgres(db) {
        select.lock(lock)
    } else {
        select
    }
}

/// Locks the rows of `E` with these ids in ascending id order (on PostgreSQL, with `lock`) and returns the ids
/// that have no row.
pub async fn lock_rows<E: EntityTrait>(
    db: &impl ConnectionTrait,
    id: E::Column,
    ids: &[i64],
    lock: LockType,
) -> Result<Vec<i64>, DbErr> {
    let wanted: BTreeSet<i64> = ids.iter().copied().collect();
    let wanted: Vec<i64> = wanted.into_iter().collect();
    let mut found = BTreeSet::new();
    for chunk in wanted.chunks(CHUNK) {
        let select = E::find()
            .select_only()
            .column(id)
            .filter(id.is_in(chunk.iter().copied()))
            .order_by_asc(id);
        let rows: Vec<i64> = locked(db, select, lock).into_tuple().all(db).await?;
        found.extend(rows);
    }
    Ok(ids
        .iter()
        .copied()
        .filter(|id| !found.contains(id))
        .collect())
}

/// Locks the subscriptions matching `condition` in `(subscriber_id, list_id)` order (step 5), without reading
/// them back: before a delete whose cascade, or an update whose statement, would otherwise lock them in an order
/// of its own.
pub async fn lock_subscriptions(
    db: &impl ConnectionTrait,
    condition: Condition,
) -> Result<(), DbErr> {
    if !is_postgres(db) {
        return Ok(());
    }
    let rows: SelectStatement = subscriber_lists::Entity::find()
        .select_only()
        .column(subscriber_lists::Column::SubscriberId)
        .filter(condition)
        .order_by_asc(subscriber_lists::Column::SubscriberId)
        .order_by_asc(subscriber_lists::Column::ListId)
        .lock(LockType::Update)
        .into_query();
    let count = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(rows, Alias::new("locked"))
        .to_owned();
    db.query_one(&count).await?;
    Ok(())
}
