//! `Idempotency-Key`: a request carried out once per caller and key, whatever the retries. A key's row says how
//! far its request got: `running` (claimed by an attempt, identified by its token), `committed` (set by the
//! write's own transaction, just before it commits, so that no write ever happens without its key saying so),
//! `done` with the answer to replay, or `lost` (committed, but the attempt ended without an answer to keep).
//! Everything is in the database, so any instance answers a retry. `idempotency_callers` counts each caller's
//! keys for the cap.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::ServiceError;
use super::sql::now;
use crate::config::IdempotencySettings;
use crate::entity::idempotency_callers as callers;
use crate::entity::idempotency_keys::{self as keys, Column};

const RUNNING: &str = "running";
const COMMITTED: &str = "committed";
const DONE: &str = "done";
const LOST: &str = "lost";

/// Every `CLEANUP_EVERY`th new key an instance claims deletes up to `CLEANUP_BATCH` expired ones: 16 per new key,
/// so the expired never outgrow the live, for one statement in eight claims.
const CLEANUP_EVERY: u64 = 8;
const CLEANUP_BATCH: u64 = 128;

/// One attempt at carrying out a keyed request.
#[derive(Clone, Debug)]
pub struct Claim {
    caller: String,
    key: String,
    token: String,
}

/// An answer as stored, to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub body: Vec<u8>,
}

/// What to do with a keyed request.
#[derive(Debug)]
pub enum Claimed {
    /// Carry it out: nobody has, or an earlier attempt died before writing anything.
    Run(Claim),
    /// It was carried out: its answer.
    Replay(StoredAnswer),
    /// The key was used with a different request.
    Mismatch,
    /// Another attempt is carrying it out, or recording its answer, now.
    InProgress,
    /// It was carried out, but the attempt stopped before recording its answer.
    Lost,
    /// The caller has as many keys kept as it may.
    TooMany,
}

tokio::task_local! {
    /// The claim of the request this task carries out, read by the write's transaction.
    static CLAIM: Claim;
}

/// Runs `work` carrying `claim`: a write transaction it commits marks the key `committed` in itself.
pub async fn carrying<F: Future>(claim: Claim, work: F) -> F::Output {
    CLAIM.scope(claim, work).await
}

/// Whether this task carries out a keyed request.
pub(crate) fn claimed() -> bool {
    CLAIM.try_with(|_| ()).is_ok()
}

/// In a write's transaction, just before it commits: marks the key of the request it carries out (if any)
/// `committed`, so that the write and that mark commit together. Refused when a retry took the key over (this
/// attempt was presumed dead): then the write must not happen, and the transaction is rolled back.
pub(crate) async fn mark_committed(txn: &impl ConnectionTrait) -> Result<(), ServiceError> {
    let Ok(claim) = CLAIM.try_with(Claim::clone) else {
        return Ok(());
    };
    let marked = keys::Entity::update_many()
        .col_expr(Column::State, Expr::value(COMMITTED))
        .filter(claim.this())
        .filter(Column::State.eq(RUNNING))
        .exec(txn)
        .await?;
    if marked.rows_affected == 1 {
        Ok(())
    } else {
        Err(ServiceError::Conflict(
            "a retry with this Idempotency-Key took the request over; this attempt changed nothing"
                .into(),
        ))
    }
}

impl Claim {
    /// A new attempt at `caller`'s `key`, with a token of its own.
    fn new(caller: &str, key: &str) -> Self {
        Self {
            caller: caller.to_owned(),
            key: key.to_owned(),
            token: Uuid::new_v4().to_string(),
        }
    }

    /// The key's row, as long as this attempt holds it.
    fn this(&self) -> Condition {
        Condition::all()
            .add(Column::Caller.eq(self.caller.as_str()))
            .add(Column::Key.eq(self.key.as_str()))
            .add(Column::Token.eq(self.token.as_str()))
    }
}

/// Keys and the answers to their requests.
#[derive(Clone)]
pub struct IdempotencyService {
    db: DatabaseConnection,
    settings: IdempotencySettings,
    /// New keys this instance claimed, to pace the cleanup (per instance: any instance's cleanup serves all).
    claimed: Arc<AtomicU64>,
}

impl IdempotencyService {
    pub fn new(db: DatabaseConnection, settings: IdempotencySettings) -> Self {
        Self {
            db,
            settings,
            claimed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// What to do with a request `caller` sent with `key`, whose fingerprint is `fingerprint`.
    pub async fn claim(
        &self,
        caller: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Claimed, ServiceError> {
        // Each pass either decides or lost a race that changed the row; three lost races in a row are answered as
        // a request in progress.
        for _ in 0..3 {
            let now = now();
            // A new key is the usual case: count it and insert it, and read the row only when it exists.
            let reserved = self.reserve(caller).await?;
            if reserved {
                if let Some(claim) = self.insert(caller, key, fingerprint).await? {
                    self.clean_up().await;
                    return Ok(Claimed::Run(claim));
                }
                self.give_back(&self.db, caller, 1).await?;
            }
            let found = keys::Entity::find_by_id((caller.to_owned(), key.to_owned()))
                .one(&self.db)
                .await?;
            let Some(row) = found else {
                if !reserved {
                    return Ok(Claimed::TooMany);
                }
                // Deleted since the insert found it: try again.
                continue;
            };
            let stale = |since: chrono::DateTime<chrono::Utc>| {
                now.signed_duration_since(since)
                    .to_std()
                    .unwrap_or_default()
                    >= self.settings.lease
            };
            if row.expires_at <= now {
                // Expired: as if it had never been, for this request whatever it is.
                match self
                    .take_over(&row, fingerprint, Column::ExpiresAt.lte(now))
                    .await?
                {
                    Some(claim) => {
                        self.clean_up().await;
                        return Ok(Claimed::Run(claim));
                    }
                    None => continue,
                }
            }
            if row.fingerprint != fingerprint {
                return Ok(Claimed::Mismatch);
            }
            return Ok(match row.state.as_str() {
                DONE => Claimed::Replay(StoredAnswer {
                    status: row
                        .status
                        .and_then(|s| u16::try_from(s).ok())
                        .unwrap_or(500),
                    content_type: row.content_type,
                    etag: row.etag,
                    body: row.body.unwrap_or_default(),
                }),
                // An attempt that wrote nothing for longer than any request may run has died: a retry takes over.
                RUNNING if stale(row.claimed_at) => {
                    match self
                        .take_over(&row, fingerprint, Column::State.eq(RUNNING))
                        .await?
                    {
                        Some(claim) => Claimed::Run(claim),
                        None => continue,
                    }
                }
                COMMITTED if stale(row.claimed_at) => Claimed::Lost,
                LOST => Claimed::Lost,
                _ => Claimed::InProgress,
            });
        }
        Ok(Claimed::InProgress)
    }

    /// Counts one more key for `caller`, unless it has as many as it may (then `false`): one conditional upsert
    /// of the caller's row, so concurrent requests cannot pass the cap together.
    async fn reserve(&self, caller: &str) -> Result<bool, ServiceError> {
        let cap = i64::try_from(self.settings.keys_per_caller).unwrap_or(i64::MAX);
        let live = (callers::Entity, callers::Column::Live);
        let upsert = Query::insert()
            .into_table(callers::Entity)
            .columns([callers::Column::Caller, callers::Column::Live])
            .values_panic([caller.into(), 1i64.into()])
            .on_conflict(
                OnConflict::column(callers::Column::Caller)
                    .value(callers::Column::Live, Expr::col(live).add(1))
                    .action_and_where(Expr::col(live).lt(cap))
                    .to_owned(),
            )
            .to_owned();
        let counted = self.db.execute(&upsert).await?;
        Ok(counted.rows_affected() == 1)
    }

    /// Counts `n` fewer keys for `caller` (in `db`: the transaction that deleted them, so the two agree).
    async fn give_back(
        &self,
        db: &impl ConnectionTrait,
        caller: &str,
        n: i64,
    ) -> Result<(), ServiceError> {
        callers::Entity::update_many()
            .col_expr(
                callers::Column::Live,
                Expr::col(callers::Column::Live).sub(n),
            )
            .filter(callers::Column::Caller.eq(caller))
            .exec(db)
            .await?;
        Ok(())
    }

    fn expiry(&self, from: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        let ttl = chrono::Duration::from_std(self.settings.ttl).unwrap_or(chrono::Duration::MAX);
        from.checked_add_signed(ttl)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
    }

    /// A new key's row, unless another request inserted it first.
    async fn insert(
        &self,
        caller: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Option<Claim>, ServiceError> {
        let now = now();
        let claim = Claim::new(caller, key);
        let row = keys::ActiveModel {
            caller: Set(claim.caller.clone()),
            key: Set(claim.key.clone()),
            fingerprint: Set(fingerprint.to_owned()),
            token: Set(claim.token.clone()),
            state: Set(RUNNING.to_owned()),
            status: Set(None),
            content_type: Set(None),
            etag: Set(None),
            body: Set(None),
            claimed_at: Set(now),
            expires_at: Set(self.expiry(now)),
        };
        let inserted = keys::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([Column::Caller, Column::Key])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok((inserted == 1).then_some(claim))
    }

    /// Takes `row` over for a new attempt, if it is still as read and `still` holds.
    async fn take_over(
        &self,
        row: &keys::Model,
        fingerprint: &str,
        still: sea_orm::sea_query::SimpleExpr,
    ) -> Result<Option<Claim>, ServiceError> {
        let now = now();
        let claim = Claim::new(&row.caller, &row.key);
        let taken = keys::Entity::update_many()
            .col_expr(Column::Token, Expr::value(claim.token.as_str()))
            .col_expr(Column::Fingerprint, Expr::value(fingerprint))
            .col_expr(Column::State, Expr::value(RUNNING))
            .col_expr(Column::Status, Expr::value(Option::<i32>::None))
            .col_expr(Column::ContentType, Expr::value(Option::<String>::None))
            .col_expr(Column::Etag, Expr::value(Option::<String>::None))
            .col_expr(Column::Body, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(Column::ClaimedAt, Expr::value(now))
            .col_expr(Column::ExpiresAt, Expr::value(self.expiry(now)))
            .filter(Column::Caller.eq(row.caller.as_str()))
            .filter(Column::Key.eq(row.key.as_str()))
            .filter(Column::Token.eq(row.token.as_str()))
            .filter(still)
            .exec(&self.db)
            .await?;
        Ok((taken.rows_affected == 1).then_some(claim))
    }

    /// Now and then, deletes expired keys, oldest first, and counts them off their callers. A failure is logged: it
    /// costs the claim nothing, and the next one cleans up instead.
    async fn clean_up(&self) {
        if !self
            .claimed
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(CLEANUP_EVERY)
        {
            return;
        }
        if let Err(err) = self.try_clean_up().await {
            tracing::warn!(error = %err, "cleaning up expired idempotency keys failed");
        }
    }

    async fn try_clean_up(&self) -> Result<(), ServiceError> {
        let now = now();
        let expired: Vec<(String, String)> = keys::Entity::find()
            .select_only()
            .column(Column::Caller)
            .column(Column::Key)
            .filter(Column::ExpiresAt.lte(now))
            .order_by_asc(Column::ExpiresAt)
            .limit(CLEANUP_BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut by_caller: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (caller, key) in expired {
            by_caller.entry(caller).or_default().push(key);
        }
        for (caller, keys_of) in by_caller {
            let txn = self.db.begin().await?;
            let deleted = keys::Entity::delete_many()
                .filter(Column::Caller.eq(caller.as_str()))
                .filter(Column::Key.is_in(keys_of))
                .filter(Column::ExpiresAt.lte(now))
                .exec(&txn)
                .await?;
            let deleted = i64::try_from(deleted.rows_affected).unwrap_or(i64::MAX);
            self.give_back(&txn, &caller, deleted).await?;
            txn.commit().await?;
        }
        Ok(())
    }

    /// Ends `claim`'s attempt with `answer`. `keep` says whether the answer is final for this request (a 429, a
    /// 503 or a 5xx is not: the request may succeed when retried). An answer that is not final releases the key
    /// for a retry, unless the write committed: then the answer to give is lost, and the key says so.
    pub async fn finish(
        &self,
        claim: &Claim,
        answer: StoredAnswer,
        keep: bool,
    ) -> Result<(), ServiceError> {
        if !keep {
            let txn = self.db.begin().await?;
            let released = keys::Entity::delete_many()
                .filter(claim.this())
                .filter(Column::State.eq(RUNNING))
                .exec(&txn)
                .await?;
            if released.rows_affected == 1 {
                self.give_back(&txn, &claim.caller, 1).await?;
                txn.commit().await?;
                return Ok(());
            }
            drop(txn);
            keys::Entity::update_many()
                .col_expr(Column::State, Expr::value(LOST))
                .filter(claim.this())
                .exec(&self.db)
                .await?;
            return Ok(());
        }
        keys::Entity::update_many()
            .col_expr(Column::State, Expr::value(DONE))
            .col_expr(Column::Status, Expr::value(i32::from(answer.status)))
            .col_expr(Column::ContentType, Expr::value(answer.content_type))
            .col_expr(Column::Etag, Expr::value(answer.etag))
            .col_expr(Column::Body, Expr::value(answer.body))
            .filter(claim.this())
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
