//! How subscribers and their subscriptions are written and read back: rows in `subscribers` and
//! `subscriber_lists`, existence checks that name what is missing, and work split into statements of bounded
//! size. Every subscription change goes through here; the counters follow by trigger.

use std::collections::{BTreeSet, HashMap};

use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, JoinType, LockType, OnConflict, Query, SelectStatement,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    IdenStatic, Iterable, Order, QueryFilter, QueryOrder, QuerySelect, QueryTrait, SqlErr,
};

use crate::domain::{
    Attribs, AttribsChange, Email, ListStatus, ListType, Optin, Scope, Subscriber,
    SubscriberChange, SubscriberStatus, Subscription, SubscriptionStatus, ValidationError,
    fold_name, kept_subscription_status, new_subscription_status,
};
use crate::entity::{lists, subscriber_lists, subscribers};
use crate::service::ServiceError;
use crate::service::locks::{lock_rows, lock_subscriptions, locked};
use crate::service::sql::{ByIdStatement, one_of};

/// Ids in one statement's `IN (...)`: far below every backend's limit on bound values.
pub(super) const CHUNK: usize = 10_000;

/// Most missing ids named in a 422 message.
const NAMED_MAX: usize = 20;

/// "unknown list ids: 4, 9" (the first few of them, and how many there are).
fn unknown(what: &str, missing: &[i64]) -> ServiceError {
    let named: Vec<String> = missing.iter().take(NAMED_MAX).map(i64::to_string).collect();
    let more = missing.len().saturating_sub(NAMED_MAX);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    ServiceError::Invalid(ValidationError(format!(
        "unknown {what} ids: {}{tail}; nothing was changed",
        named.join(", ")
    )))
}

/// Locks the lists a write adds or changes subscriptions on (`FOR KEY SHARE`: a concurrent delete of one waits
/// for the write, or has happened and the list is missing) and returns the ids that do not exist.
pub(super) async fn lock_lists(db: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<i64>, DbErr> {
    lock_rows::<lists::Entity>(db, lists::Column::Id, ids, LockType::KeyShare).await
}

/// Locks the subscribers a write changes (`FOR UPDATE`) and returns the ids that do not exist.
pub(super) async fn lock_subscribers(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<Vec<i64>, DbErr> {
    lock_rows::<subscribers::Entity>(db, subscribers::Column::Id, ids, LockType::Update).await
}

/// Refuses (422, naming them) ids of `what` that do not exist.
pub(crate) fn none_missing(what: &str, missing: &[i64]) -> Result<(), ServiceError> {
    match missing {
        [] => Ok(()),
        gone => Err(unknown(what, gone)),
    }
}

/// Locks every subscription of these subscribers, in key order, before a statement that changes or deletes
/// them all (see `service::locks`).
async fn lock_subscriptions_of(db: &impl ConnectionTrait, ids: &[i64]) -> Result<(), DbErr> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    for chunk in sorted.chunks(CHUNK) {
        lock_subscriptions(
            db,
            Condition::all()
                .add(subscriber_lists::Column::SubscriberId.is_in(chunk.iter().copied())),
        )
        .await?;
    }
    Ok(())
}

/// Deletes these subscribers (their subscriptions go by cascade); returns how many there were.
pub(super) async fn delete_subscribers(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<u64, DbErr> {
    lock_subscriptions_of(db, ids).await?;
    let mut deleted = 0;
    for chunk in ids.chunks(CHUNK) {
        deleted += subscribers::Entity::delete_many()
            .filter(subscribers::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(deleted)
}

/// Whether every one of `ids` has a subscription on one of `lists` that grants scope (not one the public form
/// added to an existing subscriber): what a caller with `subscribers:get` may see. The answer is the same
/// whether an id exists or not.
pub(super) async fn all_on_lists(
    db: &impl ConnectionTrait,
    ids: &[i64],
    lists: &Scope,
) -> Result<bool, DbErr> {
    Ok(on_lists(db, ids, lists).await?.len() == ids.len())
}

/// The ones among `ids` that have a subscription granting scope on one of `lists` (what `all_on_lists` asks of
/// each).
pub(super) async fn on_lists(
    db: &impl ConnectionTrait,
    ids: &[i64],
    lists: &Scope,
) -> Result<Vec<i64>, DbErr> {
    let mut found = BTreeSet::new();
    for chunk in ids.chunks(CHUNK) {
        let mut select = Query::select()
            .distinct()
            .column(subscriber_lists::Column::SubscriberId)
            .from(subscriber_lists::Entity)
            .and_where(subscriber_lists::Column::SubscriberId.is_in(chunk.iter().copied()))
            .and_where(subscriber_lists::Column::GrantsScope.eq(true))
            .to_owned();
        if let Scope::Only(allowed) = lists {
            select.and_where(one_of(
                subscriber_lists::Column::ListId,
                allowed,
                db.get_database_backend(),
            ));
        }
        for row in db.query_all(&select).await? {
            found.insert(row.try_get_by_index::<i64>(0)?);
        }
    }
    Ok(ids
        .iter()
        .copied()
        .filter(|id| found.contains(id))
        .collect())
}

/// Whether one of `ids` has a subscription on a list outside `lists`.
pub(super) async fn subscribed_elsewhere(
    db: &impl ConnectionTrait,
    ids: &[i64],
    lists: &BTreeSet<i64>,
) -> Result<bool, DbErr> {
    for chunk in ids.chunks(CHUNK) {
        let select = Query::select()
            .expr(Expr::val(1))
            .from(subscriber_lists::Entity)
            .and_where(subscriber_lists::Column::SubscriberId.is_in(chunk.iter().copied()))
            .and_where(
                one_of(
                    subscriber_lists::Column::ListId,
                    lists,
                    db.get_database_backend(),
                )
                .not(),
            )
            .limit(1)
            .to_owned();
        if db.query_one(&select).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A duplicate e-mail becomes a 409; anything else stays a database error.
pub(super) fn conflict_on_email(err: DbErr) -> ServiceError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            ServiceError::Conflict("a subscriber with this email already exists".into())
        }
        _ => err.into(),
    }
}

/// The subscriptions of each of `ids`, with their lists, limited to the lists in `visible`, ordered by list id.
pub(super) async fn subscriptions_of(
    db: &impl ConnectionTrait,
    ids: &[i64],
    visible: &Scope,
) -> Result<HashMap<i64, Vec<Subscription>>, ServiceError> {
    let mut rows = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let mut select = subscriber_lists::Entity::find()
            .filter(subscriber_lists::Column::SubscriberId.is_in(chunk.iter().copied()));
        if let Scope::Only(allowed) = visible {
            select = select.filter(one_of(
                subscriber_lists::Column::ListId,
                allowed,
                db.get_database_backend(),
            ));
        }
        rows.extend(
            select
                .order_by_asc(subscriber_lists::Column::ListId)
                .all(db)
                .await?,
        );
    }
    let list_ids: BTreeSet<i64> = rows.iter().map(|row| row.list_id).collect();
    let list_ids: Vec<i64> = list_ids.into_iter().collect();
    let mut found = HashMap::new();
    for chunk in list_ids.chunks(CHUNK) {
        for model in lists::Entity::find()
            .filter(lists::Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            found.insert(model.id, std::sync::Arc::new(model.into_domain()?));
        }
    }
    let mut by_subscriber: HashMap<i64, Vec<Subscription>> = HashMap::new();
    for row in rows {
        // A list deleted between the two reads takes its subscriptions with it.
        if let Some(list) = found.get(&row.list_id) {
            by_subscriber
                .entry(row.subscriber_id)
                .or_default()
                .push(subscription(row, list.clone()));
        }
    }
    Ok(by_subscriber)
}

/// A subscription as the domain knows it: the row and the list it is on.
fn subscription(
    row: subscriber_lists::Model,
    list: std::sync::Arc<crate::domain::List>,
) -> Subscription {
    Subscription {
        list,
        status: row.status,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Prefixes of the joined tables' columns in [`one_with_subscriptions`].
const SUBSCRIPTION: &str = "subscription_";
const LIST: &str = "list_";

/// The statement [`one_with_subscriptions`] runs: the subscriber's row once per subscription it has on a list in
/// `visible` (once with nulls when none), with that subscription and its list, ordered by list id.
fn one_with_subscriptions_statement(
    id: i64,
    visible: &Scope,
    backend: sea_orm::DatabaseBackend,
) -> SelectStatement {
    let mut on = Condition::all().add(
        Expr::col((
            subscriber_lists::Entity,
            subscriber_lists::Column::SubscriberId,
        ))
        .equals((subscribers::Entity, subscribers::Column::Id)),
    );
    if let Scope::Only(allowed) = visible {
        // In the join, not the WHERE: a subscriber with no visible subscription is still found.
        on = on.add(one_of(
            (subscriber_lists::Entity, subscriber_lists::Column::ListId),
            allowed,
            backend,
        ));
    }
    let mut select = subscribers::Entity::find_by_id(id).into_query();
    for column in subscriber_lists::Column::iter() {
        select.expr_as(
            Expr::col((subscriber_lists::Entity, column)),
            Alias::new(format!("{SUBSCRIPTION}{}", column.as_str())),
        );
    }
    for column in lists::Column::iter() {
        select.expr_as(
            Expr::col((lists::Entity, column)),
            Alias::new(format!("{LIST}{}", column.as_str())),
        );
    }
    select
        .join(JoinType::LeftJoin, subscriber_lists::Entity, on)
        .join(
            JoinType::LeftJoin,
            lists::Entity,
            Expr::col((lists::Entity, lists::Column::Id))
                .equals((subscriber_lists::Entity, subscriber_lists::Column::ListId)),
        )
        .order_by(
            (subscriber_lists::Entity, subscriber_lists::Column::ListId),
            Order::Asc,
        )
        .to_owned()
}

/// [`one_with_subscriptions_statement`] for callers who see every list (the usual case), built once per backend
/// (the backend only matters to a scope's list of ids).
static OF_EVERY_LIST: ByIdStatement = ByIdStatement::new(|id| {
    one_with_subscriptions_statement(id, &Scope::All, sea_orm::DatabaseBackend::Postgres)
});

/// One subscriber with the subscriptions on lists in `visible` and their lists, in one statement (a GET by id is
/// one round trip; [`subscriptions_of`] reads many subscribers' in two more).
pub(super) async fn one_with_subscriptions(
    db: &impl ConnectionTrait,
    id: i64,
    visible: &Scope,
) -> Result<Option<Subscriber>, ServiceError> {
    let backend = db.get_database_backend();
    let statement = match visible {
        Scope::All => OF_EVERY_LIST.of(backend, id),
        Scope::Only(_) => backend.build(&one_with_subscriptions_statement(id, visible, backend)),
    };
    let rows = db.query_all_raw(statement).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let model = subscribers::Model::from_query_result(first, "")?;
    let mut subscriptions = Vec::with_capacity(rows.len());
    for row in &rows {
        let joined: Option<i64> =
            row.try_get("", &format!("{LIST}{}", lists::Column::Id.as_str()))?;
        if joined.is_none() {
            continue;
        }
        subscriptions.push(subscription(
            subscriber_lists::Model::from_query_result(row, SUBSCRIPTION)?,
            std::sync::Arc::new(lists::Model::from_query_result(row, LIST)?.into_domain()?),
        ));
    }
    to_domain(model, subscriptions).map(Some)
}

/// What a change does to a stored subscriber: the row with only the changed columns set, and the status it ends
/// with.
pub(super) fn changed_row(
    current: &subscribers::Model,
    change: &SubscriberChange,
) -> Result<(subscribers::ActiveModel, SubscriberStatus), ServiceError> {
    let email = match &change.email {
        Some(email) => email.clone(),
        None => Email::parse(&current.email)?,
    };
    let status = change.status.unwrap_or(current.status);
    let attribs = match &change.attribs {
        AttribsChange::Keep => None,
        AttribsChange::Replace(attribs) => Some(attribs.clone()),
        AttribsChange::Merge(with) => {
            Some(Attribs::parse(current.attribs.clone())?.merged(with.clone())?)
        }
    };
    let mut row: subscribers::ActiveModel = current.clone().into();
    if email.as_str() != current.email {
        row.email = Set(email.as_str().to_owned());
    }
    if let Some(name) = change.resolve_name(&email).filter(|n| *n != current.name) {
        row.name_folded = Set(fold_name(&name));
        row.name = Set(name);
    }
    if status != current.status {
        row.status = Set(status);
    }
    if let Some(attribs) = attribs {
        let value = serde_json::Value::Object(attribs.into_inner());
        if value != current.attribs {
            row.attribs = Set(value);
        }
    }
    Ok((row, status))
}

pub(super) fn to_domain(
    model: subscribers::Model,
    lists: Vec<Subscription>,
) -> Result<Subscriber, ServiceError> {
    let serde_json::Value::Object(attribs) = model.attribs else {
        return Err(ServiceError::Database(DbErr::Type(
            "attribs: not a JSON object".into(),
        )));
    };
    Ok(Subscriber {
        id: model.id,
        uuid: model.uuid,
        email: model.email,
        name: model.name,
        attribs,
        status: model.status,
        lists,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

/// Brings one subscriber's subscriptions in line with a write: with `lists`, exactly those (subscriptions on
/// other lists the caller may manage are removed; those on lists it may not manage stay), existing ones kept by
/// listmonk's rules and new ones created; a blocklisted subscriber's subscriptions all become `unsubscribed`.
pub(super) async fn sync_subscriptions(
    db: &impl ConnectionTrait,
    subscriber_id: i64,
    status: SubscriberStatus,
    lists: Option<&[i64]>,
    preconfirm: bool,
    manageable: &Scope,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    let existing: HashMap<i64, SubscriptionStatus> = subscriber_lists::Entity::find()
        .filter(subscriber_lists::Column::SubscriberId.eq(subscriber_id))
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.list_id, row.status))
        .collect();
    let set_status = |list_id: i64, status: SubscriptionStatus| {
        Query::update()
            .table(subscriber_lists::Entity)
            .value(subscriber_lists::Column::Status, status.as_str())
            .value(subscriber_lists::Column::UpdatedAt, now)
            .and_where(subscriber_lists::Column::SubscriberId.eq(subscriber_id))
            .and_where(subscriber_lists::Column::ListId.eq(list_id))
            .to_owned()
    };
    let mut statements = Vec::new();
    if let Some(wanted) = lists {
        let dropped: Vec<i64> = existing
            .keys()
            .copied()
            .filter(|id| !wanted.contains(id) && manageable.allows(*id))
            .collect();
        if !dropped.is_empty() {
            // The dropped lists are not locked by this write, so a delete of one may be cascading: take the rows
            // in key order, as it does.
            let dropped = Condition::all()
                .add(subscriber_lists::Column::SubscriberId.eq(subscriber_id))
                .add(subscriber_lists::Column::ListId.is_in(dropped));
            lock_subscriptions(db, dropped.clone()).await?;
            subscriber_lists::Entity::delete_many()
                .filter(dropped)
                .exec(db)
                .await?;
        }
        let mut new_rows = Vec::new();
        for &list_id in wanted {
            match existing.get(&list_id) {
                Some(&current) => {
                    let kept = kept_subscription_status(current, status, preconfirm);
                    if kept != current {
                        statements.push(set_status(list_id, kept));
                    }
                }
                None => new_rows.push(subscriber_lists::ActiveModel {
                    subscriber_id: Set(subscriber_id),
                    list_id: Set(list_id),
                    status: Set(new_subscription_status(status, preconfirm)),
                    created_at: Set(now),
                    updated_at: Set(now),
                    grants_scope: Set(true),
                }),
            }
        }
        if !new_rows.is_empty() {
            subscriber_lists::Entity::insert_many(new_rows)
                .exec_without_returning(db)
                .await?;
        }
    } else if status == SubscriberStatus::Blocklisted {
        for (&list_id, &current) in &existing {
            if current != SubscriptionStatus::Unsubscribed {
                statements.push(set_status(list_id, SubscriptionStatus::Unsubscribed));
            }
        }
    }
    for statement in statements {
        db.execute(&statement).await?;
    }
    Ok(())
}

/// Marks these subscribers blocklisted and every subscription of theirs `unsubscribed`.
pub(super) async fn blocklist(
    db: &impl ConnectionTrait,
    ids: &[i64],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    lock_subscriptions_of(db, ids).await?;
    for chunk in ids.chunks(CHUNK) {
        subscribers::Entity::update_many()
            .col_expr(
                subscribers::Column::Status,
                Expr::val(SubscriberStatus::Blocklisted.as_str()),
            )
            .col_expr(subscribers::Column::UpdatedAt, Expr::val(now))
            .filter(subscribers::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
        subscriber_lists::Entity::update_many()
            .col_expr(
                subscriber_lists::Column::Status,
                Expr::val(SubscriptionStatus::Unsubscribed.as_str()),
            )
            .col_expr(subscriber_lists::Column::UpdatedAt, Expr::val(now))
            .filter(subscriber_lists::Column::SubscriberId.is_in(chunk.iter().copied()))
            .filter(subscriber_lists::Column::Status.ne(SubscriptionStatus::Unsubscribed.as_str()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// What an add does to a subscription that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Existing {
    /// It keeps its status.
    Keep,
    /// It takes the status new subscriptions get.
    Take,
}

/// Subscribes every one of `ids` to every one of `targets` in one statement per chunk: new subscriptions get
/// `status`, existing ones take it or keep theirs (`existing`); a blocklisted subscriber's are `unsubscribed`
/// whatever was asked.
pub(super) async fn add_memberships(
    db: &impl ConnectionTrait,
    ids: &[i64],
    targets: &[i64],
    status: SubscriptionStatus,
    existing: Existing,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    let wanted = status.as_str();
    let per_statement = (CHUNK / targets.len().max(1)).max(1);
    for chunk in ids.chunks(per_statement) {
        let rows = Query::select()
            .column((subscribers::Entity, subscribers::Column::Id))
            .column((lists::Entity, lists::Column::Id))
            .expr(
                Expr::case(
                    Expr::col((subscribers::Entity, subscribers::Column::Status))
                        .eq(SubscriberStatus::Blocklisted.as_str()),
                    SubscriptionStatus::Unsubscribed.as_str(),
                )
                .finally(wanted),
            )
            .expr(Expr::val(now))
            .expr(Expr::val(now))
            .from(subscribers::Entity)
            .from(lists::Entity)
            .and_where(
                Expr::col((subscribers::Entity, subscribers::Column::Id))
                    .is_in(chunk.iter().copied()),
            )
            .and_where(Expr::col((lists::Entity, lists::Column::Id)).is_in(targets.iter().copied()))
            // Rows are written (and locked) in key order, so concurrent adds cannot deadlock on each other.
            .order_by(
                (subscribers::Entity, subscribers::Column::Id),
                sea_orm::Order::Asc,
            )
            .order_by((lists::Entity, lists::Column::Id), sea_orm::Order::Asc)
            .to_owned();
        let mut conflict = OnConflict::columns([
            subscriber_lists::Column::SubscriberId,
            subscriber_lists::Column::ListId,
        ]);
        // An authenticated add makes a subscription the public form left without scope grant it.
        conflict.value(subscriber_lists::Column::GrantsScope, Expr::val(true));
        if existing == Existing::Take {
            conflict.update_columns([
                subscriber_lists::Column::Status,
                subscriber_lists::Column::UpdatedAt,
            ]);
        } else {
            conflict.action_and_where(
                Expr::col((
                    subscriber_lists::Entity,
                    subscriber_lists::Column::GrantsScope,
                ))
                .eq(false),
            );
        }
        let insert = Query::insert()
            .into_table(subscriber_lists::Entity)
            .columns([
                subscriber_lists::Column::SubscriberId,
                subscriber_lists::Column::ListId,
                subscriber_lists::Column::Status,
                subscriber_lists::Column::CreatedAt,
                subscriber_lists::Column::UpdatedAt,
            ])
            .select_from(rows)
            .map_err(|err| DbErr::Custom(err.to_string()))?
            .on_conflict(conflict)
            .to_owned();
        db.execute(&insert).await?;
    }
    Ok(())
}

/// Removes, or marks `unsubscribed`, the subscriptions of `ids` on `targets` (creating none).
pub(super) async fn end_memberships(
    db: &impl ConnectionTrait,
    ids: &[i64],
    targets: &[i64],
    delete: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    for chunk in ids.chunks(CHUNK) {
        let on = |condition: Condition| {
            condition
                .add(subscriber_lists::Column::SubscriberId.is_in(chunk.iter().copied()))
                .add(subscriber_lists::Column::ListId.is_in(targets.iter().copied()))
        };
        if delete {
            subscriber_lists::Entity::delete_many()
                .filter(on(Condition::all()))
                .exec(db)
                .await?;
        } else {
            subscriber_lists::Entity::update_many()
                .col_expr(
                    subscriber_lists::Column::Status,
                    Expr::val(SubscriptionStatus::Unsubscribed.as_str()),
                )
                .col_expr(subscriber_lists::Column::UpdatedAt, Expr::val(now))
                .filter(on(Condition::all().add(
                    subscriber_lists::Column::Status.ne(SubscriptionStatus::Unsubscribed.as_str()),
                )))
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

/// The public, active lists among these UUIDs, with their opt-in, locked as `lock_lists` does (in id order), so a
/// list made private or deleted meanwhile is either not found or waits for the subscription.
pub(super) async fn lock_open_lists(
    db: &impl ConnectionTrait,
    uuids: &[uuid::Uuid],
) -> Result<Vec<(i64, Optin)>, DbErr> {
    let select = lists::Entity::find()
        .select_only()
        .column(lists::Column::Id)
        .column(lists::Column::Optin)
        .filter(lists::Column::Uuid.is_in(uuids.iter().copied()))
        .filter(lists::Column::ListType.eq(ListType::Public))
        .filter(lists::Column::Status.eq(ListStatus::Active))
        .order_by_asc(lists::Column::Id);
    locked(db, select, LockType::KeyShare)
        .into_tuple()
        .all(db)
        .await
}

/// Attempts at finding-or-creating a subscriber by e-mail while others delete it (each attempt is lost only to a
/// delete committed between two statements; three in a row would take a determined adversary).
const CLAIM_ATTEMPTS: usize = 3;

/// The subscriber with this e-mail, created (enabled, no attributes) when there is none, locked as
/// `lock_subscribers` does: its id and status, and whether it was created now.
pub(super) async fn insert_or_lock(
    db: &impl ConnectionTrait,
    email: &Email,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(i64, SubscriberStatus, bool), ServiceError> {
    for _ in 0..CLAIM_ATTEMPTS {
        let inserted = subscribers::Entity::insert(subscribers::ActiveModel {
            uuid: Set(uuid::Uuid::new_v4()),
            email: Set(email.as_str().to_owned()),
            name_folded: Set(fold_name(name)),
            name: Set(name.to_owned()),
            attribs: Set(serde_json::json!({})),
            status: Set(SubscriberStatus::Enabled),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .on_conflict_do_nothing_on([subscribers::Column::Email])
        .exec_without_returning(db)
        .await?;
        let select = subscribers::Entity::find()
            .select_only()
            .column(subscribers::Column::Id)
            .column(subscribers::Column::Status)
            .filter(subscribers::Column::Email.eq(email.as_str()));
        if let Some((id, status)) = locked(db, select, LockType::Update)
            .into_tuple()
            .one(db)
            .await?
        {
            let created = matches!(inserted, sea_orm::TryInsertResult::Inserted(1));
            return Ok((id, status, created));
        }
    }
    Err(ServiceError::Unavailable(DbErr::Custom(
        "the subscriber was deleted during every attempt to subscribe it".into(),
    )))
}

#[cfg(test)]
mod tests {
    use sea_orm::DatabaseBackend;

    use super::*;

    #[test]
    fn the_statement_built_once_equals_a_fresh_build_for_every_id() {
        for backend in [DatabaseBackend::Postgres, DatabaseBackend::Sqlite] {
            for id in [1, 7, 0, -3, i64::MAX, i64::MIN] {
                assert_eq!(
                    OF_EVERY_LIST.of(backend, id),
                    backend.build(&one_with_subscriptions_statement(id, &Scope::All, backend)),
                    "{backend:?} {id}"
                );
            }
        }
    }
}
