//! How a list is stored: its row in `lists` and its tags, kept twice on purpose (the `tags` JSON column keeps the
//! client's order for reading; `list_tags` indexes them for filtering). Every write of tags goes through here, so
//! the two never disagree.

use sea_orm::sea_query::LockType;
use sea_orm::sea_query::{
    Alias, Asterisk, CommonTableExpression, Expr, Query, UnionType, WithClause, WithQuery,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};

use crate::domain::{ListPatch, fold};
use crate::entity::{list_tags, lists, subscriber_lists};
use crate::service::locks::{lock_subscriptions, locked};

/// Ids in one statement's `IN (...)`: far below every backend's limit on bound values.
const CHUNK: usize = 10_000;

fn tag_rows(list_id: i64, tags: &[String]) -> Vec<list_tags::ActiveModel> {
    tags.iter()
        .map(|tag| list_tags::ActiveModel {
            list_id: Set(list_id),
            tag: Set(tag.clone()),
        })
        .collect()
}

pub(super) async fn insert_tags<C: ConnectionTrait>(
    conn: &C,
    list_id: i64,
    tags: &[String],
) -> Result<(), DbErr> {
    if !tags.is_empty() {
        list_tags::Entity::insert_many(tag_rows(list_id, tags))
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// `WITH created AS (INSERT INTO lists … RETURNING *), tagged AS (INSERT INTO list_tags SELECT created.id, $tag
/// FROM created UNION ALL …) SELECT * FROM created`: a new list and its tag rows in one Postgres statement.
pub(super) fn insert_with_tags(
    list: lists::ActiveModel,
    tags: &[String],
) -> Result<WithQuery, DbErr> {
    let created = Alias::new("created");
    let mut insert = lists::Entity::insert(list).into_query();
    insert.returning_all();
    let mut with = WithClause::new();
    with.cte(
        CommonTableExpression::new()
            .query(insert)
            .table_name(created.clone())
            .to_owned(),
    );
    let mut rows = tags.iter().map(|tag| {
        Query::select()
            .column((created.clone(), lists::Column::Id))
            .expr(Expr::val(tag.as_str()))
            .from(created.clone())
            .to_owned()
    });
    if let Some(mut first) = rows.next() {
        first.unions(rows.map(|row| (UnionType::All, row)));
        let mut tagged = Query::insert();
        tagged
            .into_table(list_tags::Entity)
            .columns([list_tags::Column::ListId, list_tags::Column::Tag]);
        tagged
            .select_from(first)
            .map_err(|err| DbErr::Custom(err.to_string()))?;
        with.cte(
            CommonTableExpression::new()
                .query(tagged)
                .table_name(Alias::new("tagged"))
                .to_owned(),
        );
    }
    Ok(with.query(Query::select().column(Asterisk).from(created).to_owned()))
}

/// Replaces a list's tag rows with `tags`.
pub(super) async fn replace_tags<C: ConnectionTrait>(
    conn: &C,
    list_id: i64,
    tags: &[String],
) -> Result<(), DbErr> {
    list_tags::Entity::delete_many()
        .filter(list_tags::Column::ListId.eq(list_id))
        .exec(conn)
        .await?;
    insert_tags(conn, list_id, tags).await
}

/// What a patch changes in a stored list: the row with only the changed columns set, and the new tags if they
/// changed. `None` when nothing changes (then `updated_at` does not move either).
pub(super) fn changes(
    current: &lists::Model,
    patch: ListPatch,
) -> Option<(lists::ActiveModel, Option<Vec<String>>)> {
    let mut row: lists::ActiveModel = current.clone().into();
    let mut changed = false;
    if let Some(name) = patch.name.filter(|name| name.as_str() != current.name) {
        row.name_folded = Set(fold(name.as_str()));
        row.name = Set(name.into_inner());
        changed = true;
    }
    if let Some(list_type) = patch.list_type.filter(|v| *v != current.list_type) {
        row.list_type = Set(list_type);
        changed = true;
    }
    if let Some(optin) = patch.optin.filter(|v| *v != current.optin) {
        row.optin = Set(optin);
        changed = true;
    }
    if let Some(status) = patch.status.filter(|v| *v != current.status) {
        row.status = Set(status);
        changed = true;
    }
    if let Some(description) = patch
        .description
        .map(|d| d.into_inner())
        .filter(|d| *d != current.description)
    {
        row.description = Set(description);
        changed = true;
    }
    let tags = patch
        .tags
        .map(|t| t.into_inner())
        .filter(|tags| serde_json::json!(tags) != current.tags);
    if let Some(tags) = &tags {
        row.tags = Set(serde_json::json!(tags));
        changed = true;
    }
    changed.then_some((row, tags))
}

/// Deletes the lists matching `condition` (their subscriptions and tags go by cascade) and returns how many went.
/// The lists are locked first, then their subscriptions in key order, as `service::locks` orders every write.
pub(super) async fn delete_lists(
    db: &impl ConnectionTrait,
    condition: Condition,
) -> Result<u64, DbErr> {
    let select = lists::Entity::find()
        .select_only()
        .column(lists::Column::Id)
        .filter(condition.clone())
        .order_by_asc(lists::Column::Id);
    let ids: Vec<i64> = locked(db, select, LockType::Update)
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    // One statement, so that every subscription of every list is locked in one order however many lists go.
    let selected = Query::select()
        .column(lists::Column::Id)
        .from(lists::Entity)
        .cond_where(condition)
        .to_owned();
    lock_subscriptions(
        db,
        Condition::all().add(subscriber_lists::Column::ListId.in_subquery(selected)),
    )
    .await?;
    let mut deleted = 0;
    for chunk in ids.chunks(CHUNK) {
        deleted += lists::Entity::delete_many()
            .filter(lists::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(deleted)
}
