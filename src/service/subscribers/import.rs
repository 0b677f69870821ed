//! One batch of an import, written set-based inside the caller's write transaction: a few statements per batch
//! (lock the existing subscribers, insert the new ones, overwrite, subscribe or blocklist), never one per row.
//! Rows apply as if one after the other in file order: a repeated e-mail is an existing subscriber by the time
//! its later row comes.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{LockType, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::store::{CHUNK, Existing, add_memberships, blocklist, lock_lists, none_missing};
use crate::domain::{ImportMode, ImportOptions, ImportRow, SubscriberStatus, fold_name};
use crate::entity::subscribers;
use crate::service::ServiceError;
use crate::service::locks::locked;
use crate::service::sql::is_postgres;

/// Rows in one `INSERT`: 8 values each, far below every backend's limit on bound values.
const INSERT_ROWS: usize = 1000;

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Rows applied (every row of the batch).
    pub imported: u64,
    /// New subscribers.
    pub created: u64,
    /// Rows that overwrote an existing subscriber's name and attributes.
    pub updated: u64,
}

/// On PostgreSQL a batch's rows go to the database as one JSON parameter per statement, read by
/// `jsonb_to_recordset`: thousands of bound values per statement cost more to send and plan than the rows cost to
/// write. The SQL text is fixed; only values are bound.
const PG_LOCK_BY_EMAIL: &str = "SELECT email, id, status FROM subscribers \
     WHERE email IN (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY id FOR UPDATE";
const PG_INSERT: &str = "INSERT INTO subscribers \
     (uuid, email, name, name_folded, attribs, status, created_at, updated_at) \
     SELECT r.uuid, r.email, r.name, r.name_folded, r.attribs, $2, $3, $3 \
     FROM jsonb_to_recordset($1::jsonb) AS r(uuid uuid, email text, name text, name_folded text, attribs jsonb) \
     ON CONFLICT (email) DO NOTHING RETURNING email, id";
/// Rows of existing subscribers (locked), by e-mail in id order, so the updates lock nothing new.
const PG_OVERWRITE: &str = "UPDATE subscribers AS s \
     SET name = r.name, name_folded = r.name_folded, attribs = r.attribs, updated_at = $2 \
     FROM jsonb_to_recordset($1::jsonb) AS r(email text, name text, name_folded text, attribs jsonb) \
     WHERE s.email = r.email";

fn pg(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

/// A row as `jsonb_to_recordset` reads it.
#[derive(serde::Serialize)]
struct Record<'a> {
    uuid: Uuid,
    email: &'a str,
    name: &'a str,
    name_folded: String,
    attribs: &'a serde_json::Map<String, serde_json::Value>,
}

/// The rows as `jsonb_to_recordset` reads them: JSON text written straight from the rows (no JSON tree beside them).
fn recordset(rows: &[&ImportRow]) -> Result<sea_orm::Value, ServiceError> {
    let records: Vec<Record> = rows
        .iter()
        .map(|row| Record {
            uuid: Uuid::new_v4(),
            email: row.email.as_str(),
            name: &row.name,
            name_folded: fold_name(&row.name),
            attribs: row.attribs.as_map(),
        })
        .collect();
    let text = serde_json::to_string(&records)
        .map_err(|err| ServiceError::Database(DbErr::Custom(err.to_string())))?;
    Ok(text.into())
}

/// Locks the subscribers with these e-mails (`FOR UPDATE`, in id order: step 4 of `service::locks`) and returns
/// their ids and statuses by e-mail.
async fn lock_by_email(
    txn: &DatabaseTransaction,
    emails: &[&str],
) -> Result<HashMap<String, (i64, SubscriberStatus)>, ServiceError> {
    let mut found = HashMap::with_capacity(emails.len());
    if is_postgres(txn) {
        let rows = txn
            .query_all_raw(pg(PG_LOCK_BY_EMAIL, vec![serde_json::json!(emails).into()]))
            .await?;
        for row in rows {
            let status: String = row.try_get_by_index(2)?;
            let status = status
                .parse()
                .map_err(|err: String| ServiceError::Database(DbErr::Custom(err)))?;
            found.insert(row.try_get_by_index(0)?, (row.try_get_by_index(1)?, status));
        }
        return Ok(found);
    }
    for chunk in emails.chunks(CHUNK) {
        let select = subscribers::Entity::find()
            .select_only()
            .column(subscribers::Column::Email)
            .column(subscribers::Column::Id)
            .column(subscribers::Column::Status)
            .filter(subscribers::Column::Email.is_in(chunk.iter().copied()))
            .order_by_asc(subscribers::Column::Id);
        let rows: Vec<(String, i64, SubscriberStatus)> = locked(txn, select, LockType::Update)
            .into_tuple()
            .all(txn)
            .await?;
        found.extend(
            rows.into_iter()
                .map(|(email, id, status)| (email, (id, status))),
        );
    }
    Ok(found)
}

fn row_model(
    row: &ImportRow,
    status: SubscriberStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> subscribers::ActiveModel {
    subscribers::ActiveModel {
        uuid: Set(Uuid::new_v4()),
        email: Set(row.email.as_str().to_owned()),
        name_folded: Set(fold_name(&row.name)),
        name: Set(row.name.clone()),
        attribs: Set(serde_json::Value::Object(row.attribs.clone().into_inner())),
        status: Set(status),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// Inserts the new rows (`ON CONFLICT DO NOTHING`: one a concurrent write inserted first is left out) and returns
/// the inserted ones' ids by e-mail.
async fn insert_fresh(
    txn: &DatabaseTransaction,
    fresh: &[&ImportRow],
    status: SubscriberStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<HashMap<String, (i64, SubscriberStatus)>, ServiceError> {
    if fresh.is_empty() {
        return Ok(HashMap::new());
    }
    if is_postgres(txn) {
        let rows = txn
            .query_all_raw(pg(
                PG_INSERT,
                vec![recordset(fresh)?, status.as_str().into(), now.into()],
            ))
            .await?;
        let mut inserted = HashMap::with_capacity(rows.len());
        for row in rows {
            inserted.insert(
                row.try_get_by_index::<String>(0)?,
                (row.try_get_by_index::<i64>(1)?, status),
            );
        }
        return Ok(inserted);
    }
    // SQLite: one writer, so no other write inserts meanwhile; the ids are read back.
    for chunk in fresh.chunks(INSERT_ROWS) {
        let models = chunk.iter().map(|row| row_model(row, status, now));
        subscribers::Entity::insert_many(models)
            .on_conflict_do_nothing_on([subscribers::Column::Email])
            .exec_without_returning(txn)
            .await?;
    }
    let emails: Vec<&str> = fresh.iter().map(|r| r.email.as_str()).collect();
    lock_by_email(txn, &emails).await
}

/// Gives the existing subscribers of `old` (locked) their rows' name and attributes.
async fn overwrite(
    txn: &DatabaseTransaction,
    old: &[&ImportRow],
    existing: &HashMap<String, (i64, SubscriberStatus)>,
    status: SubscriberStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ServiceError> {
    if old.is_empty() {
        return Ok(());
    }
    if is_postgres(txn) {
        // In id order, the order their locks were taken in.
        let mut by_id = old.to_vec();
        by_id.sort_by_key(|r| existing.get(r.email.as_str()).map(|(id, _)| *id));
        txn.execute_raw(pg(PG_OVERWRITE, vec![recordset(&by_id)?, now.into()]))
            .await?;
        return Ok(());
    }
    for chunk in old.chunks(INSERT_ROWS) {
        // Every row conflicts on its e-mail (it exists, and is locked): only the updated columns are written.
        let models = chunk.iter().map(|row| row_model(row, status, now));
        subscribers::Entity::insert_many(models)
            .on_conflict(
                OnConflict::column(subscribers::Column::Email)
                    .update_columns([
                        subscribers::Column::Name,
                        subscribers::Column::NameFolded,
                        subscribers::Column::Attribs,
                        subscribers::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// What writing a batch came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub counts: BatchCounts,
    /// E-mails of the batch that a concurrent write inserted between the batch's lock and its insert. Their
    /// rows are left out (not counted): locking them now would take a subscriber's lock out of id order (step 4 of
    /// `service::locks`), so the caller writes them as a batch of their own next, where they are existing
    /// subscribers, locked in order.
    pub late: Vec<String>,
}

/// Writes `rows` as `options` say, in `txn` (a write transaction from `locks::begin_write`). Refuses, changing
/// nothing, when a target list no longer exists.
pub async fn import_batch(
    txn: &DatabaseTransaction,
    rows: &[ImportRow],
    options: &ImportOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Written, ServiceError> {
    none_missing("list", &lock_lists(txn, &options.lists).await?)?;
    // One row per e-mail, in file order; with overwrite the last row of an e-mail gives its fields.
    let mut unique: Vec<&ImportRow> = Vec::with_capacity(rows.len());
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut repeats = 0u64;
    for row in rows {
        match at.get(row.email.as_str()) {
            Some(&i) => {
                repeats += 1;
                if options.overwrite_userinfo {
                    unique[i] = row;
                }
            }
            None => {
                at.insert(row.email.as_str(), unique.len());
                unique.push(row);
            }
        }
    }
    let emails: Vec<&str> = unique.iter().map(|r| r.email.as_str()).collect();
    let existing = lock_by_email(txn, &emails).await?;
    let status = match options.mode {
        ImportMode::Subscribe => SubscriberStatus::Enabled,
        ImportMode::Blocklist => SubscriberStatus::Blocklisted,
    };
    // In e-mail order, so two imports inserting the same new e-mails wait on each other in one order.
    let mut fresh: Vec<&ImportRow> = unique
        .iter()
        .copied()
        .filter(|r| !existing.contains_key(r.email.as_str()))
        .collect();
    fresh.sort_by(|a, b| a.email.as_str().cmp(b.email.as_str()));
    let inserted = insert_fresh(txn, &fresh, status, now).await?;
    let late: HashSet<&str> = fresh
        .iter()
        .map(|row| row.email.as_str())
        .filter(|email| !inserted.contains_key(*email))
        .collect();
    let late_rows = rows
        .iter()
        .filter(|row| late.contains(row.email.as_str()))
        .count() as u64;
    // The rows after the first of each e-mail, but for the late ones.
    let repeats = repeats - (late_rows - late.len() as u64);
    let mut updated = 0;
    if options.overwrite_userinfo {
        let old: Vec<&ImportRow> = unique
            .iter()
            .copied()
            .filter(|r| existing.contains_key(r.email.as_str()))
            .collect();
        overwrite(txn, &old, &existing, status, now).await?;
        updated = existing.len() as u64 + repeats;
    }
    let mut ids: Vec<i64> = existing
        .values()
        .chain(inserted.values())
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    match options.mode {
        ImportMode::Subscribe => {
            let take = if options.overwrite_status {
                Existing::Take
            } else {
                Existing::Keep
            };
            add_memberships(txn, &ids, &options.lists, options.status, take, now).await?;
        }
        ImportMode::Blocklist => {
            // The new rows were inserted blocklisted, with no subscriptions.
            let mut to_blocklist: Vec<i64> = existing
                .values()
                .filter(|(_, s)| *s != SubscriberStatus::Blocklisted)
                .map(|(id, _)| *id)
                .collect();
            to_blocklist.sort_unstable();
            blocklist(txn, &to_blocklist, now).await?;
        }
    }
    Ok(Written {
        counts: BatchCounts {
            imported: rows.len() as u64 - late_rows,
            created: inserted.len() as u64,
            updated,
        },
        late: late.into_iter().map(str::to_owned).collect(),
    })
}
