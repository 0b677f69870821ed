//! The import job's row (`import_jobs`, id 1) and its log (`import_log`). Every change to a running job's row is
//! conditional on its `token`, so an attempt that a newer one replaced (its instance looked dead) changes nothing.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockType, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::domain::{IMPORT_LOG_LINES_MAX, ImportMode, ImportState};
use crate::entity::{import_jobs, import_log};
use crate::service::locks::locked;

/// The job row's id: there is one importer, as in listmonk.
pub const JOB: i32 = 1;

fn state(state: ImportState) -> &'static str {
    state.as_str()
}

/// A new job, as its attempt claims the importer.
pub struct NewJob<'a> {
    pub token: &'a str,
    /// The file's name.
    pub name: &'a str,
    pub mode: ImportMode,
    pub caller: &'a str,
    /// The log's first lines.
    pub opening: &'a [String],
}

/// Claims the importer for a new job unless one is running (and alive: its heartbeat is newer than `stale`).
/// Returns whether it was claimed.
pub async fn claim(
    db: &impl ConnectionTrait,
    new: NewJob<'_>,
    now: DateTime<Utc>,
    stale: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let NewJob {
        token,
        name,
        mode,
        caller,
        opening,
    } = new;
    let row = import_jobs::ActiveModel {
        id: Set(JOB),
        token: Set(token.to_owned()),
        name: Set(name.to_owned()),
        mode: Set(mode.as_str().to_owned()),
        status: Set(state(ImportState::Importing).to_owned()),
        total: Set(0),
        imported: Set(0),
        created: Set(0),
        updated: Set(0),
        skipped: Set(0),
        logged: Set(i32::try_from(opening.len()).unwrap_or(IMPORT_LOG_LINES_MAX)),
        caller: Set(caller.to_owned()),
        started_at: Set(now),
        heartbeat_at: Set(now),
        ended_at: Set(None),
    };
    let mut conflict = OnConflict::column(import_jobs::Column::Id);
    conflict
        .update_columns([
            import_jobs::Column::Token,
            import_jobs::Column::Name,
            import_jobs::Column::Mode,
            import_jobs::Column::Status,
            import_jobs::Column::Total,
            import_jobs::Column::Imported,
            import_jobs::Column::Created,
            import_jobs::Column::Updated,
            import_jobs::Column::Skipped,
            import_jobs::Column::Logged,
            import_jobs::Column::Caller,
            import_jobs::Column::StartedAt,
            import_jobs::Column::HeartbeatAt,
            import_jobs::Column::EndedAt,
        ])
        .action_and_where(live(stale).not());
    let claimed = import_jobs::Entity::insert(row)
        .on_conflict(conflict)
        .exec_without_returning(db)
        .await?;
    if claimed == 1 {
        import_log::Entity::delete_many().exec(db).await?;
        append_log(db, 0, opening).await?;
    }
    Ok(claimed == 1)
}

/// The job, if there is one.
pub async fn job(db: &impl ConnectionTrait) -> Result<Option<import_jobs::Model>, DbErr> {
    import_jobs::Entity::find_by_id(JOB).one(db).await
}

/// The log, in order.
pub async fn log(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    let lines = import_log::Entity::find()
        .order_by_asc(import_log::Column::Id)
        .all(db)
        .await?;
    Ok(lines.into_iter().map(|l| l.line).collect())
}

/// Appends lines to the log, numbered after `logged`; returns how many lines it now has.
pub async fn append_log(
    db: &impl ConnectionTrait,
    logged: i32,
    lines: &[String],
) -> Result<i32, DbErr> {
    if lines.is_empty() {
        return Ok(logged);
    }
    let rows =
        lines
            .iter()
            .zip(i64::from(logged) + 1..)
            .map(|(line, id)| import_log::ActiveModel {
                id: Set(id),
                line: Set(line.clone()),
            });
    import_log::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(logged + i32::try_from(lines.len()).unwrap_or(IMPORT_LOG_LINES_MAX))
}

/// The states in which an attempt holds the job.
const HELD: [ImportState; 2] = [ImportState::Importing, ImportState::Stopping];

/// Whether an attempt holds a job in this (stored) state.
pub fn is_held(status: &str) -> bool {
    HELD.iter().any(|held| held.as_str() == status)
}

/// A job an attempt holds whose lease is not over (the SQL form of a job that is not dead).
fn live(stale: DateTime<Utc>) -> sea_orm::sea_query::SimpleExpr {
    import_jobs::Column::Status
        .is_in(HELD.map(state))
        .and(import_jobs::Column::HeartbeatAt.gte(stale))
}

/// The job while the attempt `token` holds it in one of `states`, as an update's filter.
fn held_by(token: &str, states: &[ImportState]) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(import_jobs::Column::Id.eq(JOB))
        .add(import_jobs::Column::Token.eq(token))
        .add(import_jobs::Column::Status.is_in(states.iter().map(|s| state(*s))))
}

/// The running job named by `token`, as an update's filter.
fn running(token: &str) -> sea_orm::Condition {
    held_by(token, &[ImportState::Importing])
}

/// What one batch adds to the job's counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub imported: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
}

/// Log lines the batches may write: the rest of the log's bound is kept for the job's last words.
pub const BATCH_LOG_LINES_MAX: i32 = IMPORT_LOG_LINES_MAX - 2;

/// Adds a batch's progress and log lines to the running job, last in the batch's transaction (the job's row is
/// the last lock a batch takes: see `service::locks`). Batches written side by side queue on that row only for
/// each other's commit, and each takes the log's next free lines. Returns how many lines found no room, or `None`,
/// changing nothing, when the job is no longer this attempt's or no longer running (a stop): the batch must then
/// roll back.
pub async fn advance(
    db: &impl ConnectionTrait,
    token: &str,
    progress: Progress,
    lines: &[String],
    now: DateTime<Utc>,
) -> Result<Option<u64>, DbErr> {
    let select = import_jobs::Entity::find()
        .select_only()
        .column(import_jobs::Column::Logged)
        .filter(running(token));
    let Some(logged) = locked(db, select, LockType::Update)
        .into_tuple::<i32>()
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let room = usize::try_from(BATCH_LOG_LINES_MAX - logged).unwrap_or(0);
    let fit = &lines[..lines.len().min(room)];
    let logged = append_log(db, logged, fit).await?;
    let add = |column: import_jobs::Column, n: u64| {
        Expr::col(column).add(i64::try_from(n).unwrap_or(i64::MAX))
    };
    import_jobs::Entity::update_many()
        .col_expr(
            import_jobs::Column::Imported,
            add(import_jobs::Column::Imported, progress.imported),
        )
        .col_expr(
            import_jobs::Column::Created,
            add(import_jobs::Column::Created, progress.created),
        )
        .col_expr(
            import_jobs::Column::Updated,
            add(import_jobs::Column::Updated, progress.updated),
        )
        .col_expr(
            import_jobs::Column::Skipped,
            add(import_jobs::Column::Skipped, progress.skipped),
        )
        .col_expr(import_jobs::Column::Logged, Expr::val(logged))
        .col_expr(import_jobs::Column::HeartbeatAt, Expr::val(now))
        .filter(running(token))
        .exec(db)
        .await?;
    Ok(Some((lines.len() - fit.len()) as u64))
}

/// Sets the number of rows the file has; false when the job is no longer running under `token`.
pub async fn set_total(db: &impl ConnectionTrait, token: &str, total: u64) -> Result<bool, DbErr> {
    let updated = import_jobs::Entity::update_many()
        .col_expr(
            import_jobs::Column::Total,
            Expr::val(i64::try_from(total).unwrap_or(i64::MAX)),
        )
        .filter(running(token))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Renews the job's heartbeat while this attempt runs it (`importing`, or `stopping` while it winds down).
/// Returns whether it should go on: false once it is stopping, ended, or another attempt's.
pub async fn beat(
    db: &impl ConnectionTrait,
    token: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let renewed = import_jobs::Entity::update_many()
        .col_expr(import_jobs::Column::HeartbeatAt, Expr::val(now))
        .filter(held_by(token, &HELD))
        .exec(db)
        .await?;
    if renewed.rows_affected == 0 {
        return Ok(false);
    }
    Ok(job(db)
        .await?
        .is_some_and(|job| job.status == state(ImportState::Importing)))
}

/// Asks the running job to stop (it stops at its next batch or heartbeat); nothing when none is running.
pub async fn request_stop(db: &impl ConnectionTrait, stale: DateTime<Utc>) -> Result<(), DbErr> {
    import_jobs::Entity::update_many()
        .col_expr(
            import_jobs::Column::Status,
            Expr::val(state(ImportState::Stopping)),
        )
        .filter(import_jobs::Column::Id.eq(JOB))
        .filter(import_jobs::Column::Status.eq(state(ImportState::Importing)))
        .filter(import_jobs::Column::HeartbeatAt.gte(stale))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends the job of `token` (running or stopping) as `state`. False when it is no longer this attempt's.
pub async fn end(
    db: &impl ConnectionTrait,
    token: &str,
    state_now: ImportState,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let updated = import_jobs::Entity::update_many()
        .col_expr(import_jobs::Column::Status, Expr::val(state(state_now)))
        .col_expr(import_jobs::Column::EndedAt, Expr::val(Some(now)))
        .col_expr(import_jobs::Column::HeartbeatAt, Expr::val(now))
        .filter(held_by(token, &HELD))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Forgets the ended job read as `token` in `status` (listmonk's `DELETE` of a finished import): nothing when it
/// changed since, or runs (and is alive).
pub async fn clear(
    db: &impl ConnectionTrait,
    token: &str,
    status: &str,
    stale: DateTime<Utc>,
) -> Result<(), DbErr> {
    let deleted = import_jobs::Entity::delete_many()
        .filter(import_jobs::Column::Id.eq(JOB))
        .filter(import_jobs::Column::Token.eq(token))
        .filter(import_jobs::Column::Status.eq(status))
        .filter(live(stale).not())
        .exec(db)
        .await?;
    if deleted.rows_affected == 1 {
        import_log::Entity::delete_many().exec(db).await?;
    }
    Ok(())
}
