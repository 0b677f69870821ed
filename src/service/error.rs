use sea_orm::{DbErr, RuntimeErr, SqlErr, sqlx};

use crate::domain::ValidationError;

/// Why a use case failed. The HTTP layer maps each variant to one status, in one place.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The named resource (`list`, `subscriber`) does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("permission denied")]
    Forbidden,
    /// The write would break a uniqueness rule (a subscriber's e-mail).
    #[error("{0}")]
    Conflict(String),
    /// The caller's condition on the current state (`If-Match`) does not hold; carries the current state's tag.
    #[error("the current state does not match the condition")]
    PreconditionFailed(String),
    /// The request names something it may not, and saying more would tell what exists (answered 400).
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// An API user's credentials or roles changed between authentication and its write (`auth::vouch`): nothing
    /// was written, and a retry is checked against them as they are now.
    #[error("the caller's roles or credentials changed while the write was in flight")]
    GrantsChanged,
    /// The database cannot be reached right now; the request may be retried.
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Anything else: a bug or a broken database. Logged, never shown.
    #[error("database error")]
    Database(#[source] DbErr),
}

/// A caller's condition on the current state of what it writes (`If-Match`): given that state, nothing when it
/// holds, else the state's tag. It is checked inside the write's transaction, after the rows are locked, so no
/// other write can come between the check and the write.
pub type Expect<'a, T> = Option<&'a (dyn Fn(&T) -> Result<(), String> + Send + Sync)>;

/// Checks `expect` (when there is one) against `current`.
pub(crate) fn check<T>(expect: Expect<'_, T>, current: &T) -> Result<(), ServiceError> {
    match expect.map(|holds| holds(current)) {
        Some(Err(tag)) => Err(ServiceError::PreconditionFailed(tag)),
        _ => Ok(()),
    }
}

/// Refuses before looking at the data, so that a caller without access learns nothing about whether what it
/// asked for exists.
pub(crate) fn ensure(allowed: bool) -> Result<(), ServiceError> {
    if allowed {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}

impl From<DbErr> for ServiceError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            ServiceError::Unavailable(err)
        } else if let Some(SqlErr::ForeignKeyConstraintViolation(_)) = err.sql_err() {
            // The lock order (`service::locks`) keeps named rows from vanishing mid-write; should one still,
            // the answer is what the request gets once it is gone, not a 500.
            tracing::warn!(error = %err, "a write named a row deleted meanwhile");
            ServiceError::Invalid(ValidationError(
                "a list or subscriber the request names does not exist; nothing was changed".into(),
            ))
        } else {
            ServiceError::Database(err)
        }
    }
}

impl From<super::totals::CountFailed> for ServiceError {
    /// The count a request waited for failed just now; the request may be retried.
    fn from(_: super::totals::CountFailed) -> Self {
        ServiceError::Unavailable(DbErr::Custom(
            "a concurrent count of the same filter failed".into(),
        ))
    }
}

/// Whether an error means "the database is not reachable or not accepting work", as opposed to a bad statement.
fn is_unavailable(err: &DbErr) -> bool {
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx_err) = runtime else {
        return false;
    };
    match sqlx_err.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Postgres: connection exceptions (08), shutdown (57P), statement timeout (57014), a deadlock or
            // serialization failure (40P01, 40001: the transaction was rolled back whole); SQLite
            // "busy"/"locked" (5, 6) and "interrupted" (9: its statement timeout, `db::limit_work`): all
            // transient.
            code.starts_with("08")
                || code.starts_with("57P")
                || code == "57014"
                || code == "40P01"
                || code == "40001"
                || code == "5"
                || code == "6"
                || code == "9"
        }),
        _ => false,
    }
}
