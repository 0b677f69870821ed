use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{
    Alias, Asterisk, CommonTableExpression, Expr, ExprTrait, LikeExpr, Query, SelectStatement,
    UnionType, WithClause, WithQuery,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, DbErr, EntityTrait, FromQueryResult, Order, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, TransactionTrait,
};
use uuid::Uuid;

use super::ServiceError;
use super::totals::{TotalsCache, Weigh};
use crate::domain::{
    Access, DeleteSelector, Direction, List, ListFilter, ListPage, ListPatch, ListQuery,
    ListStatus, ListType, NewList, OrderBy, Principal, PublicList, Scope, fold,
};
use crate::entity::{list_counts, list_tags, lists};

/// The lists use cases. Cheap to clone: the connection is a pool handle and the totals cache is shared.
#[derive(Clone)]
pub struct ListService {
    db: DatabaseConnection,
    totals: Arc<TotalsCache<ListFilter>>,
}

impl Weigh for ListFilter {
    fn weight(&self) -> usize {
        // Each string's bytes and its `String` header.
        self.words
            .iter()
            .chain(&self.tags)
            .map(|s| s.len() + std::mem::size_of::<String>())
            .sum::<usize>()
            + std::mem::size_of::<ListFilter>()
    }
}

/// Timestamps are stored in UTC at microsecond precision on every backend, so that they read back exactly as
/// written and sort correctly even where the database keeps them as text (SQLite).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Refuses before looking at the data, so that a caller without access learns nothing about whether a list
/// exists.
fn ensure(allowed: bool) -> Result<(), ServiceError> {
    if allowed {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}

/// Restricts a condition to the lists in `scope`, inside the database query.
fn within(condition: Condition, scope: Scope) -> Condition {
    match scope {
        Scope::All => condition,
        Scope::Only(ids) => condition.add(lists::Column::Id.is_in(ids)),
    }
}

/// Not a backslash: its meaning in string literals differs between backends.
const LIKE_ESCAPE: char = '!';

/// `LIKE` pattern for a literal substring: `%`, `_` and the escape character itself lose their meaning.
fn contains_pattern(word: &str) -> String {
    let mut pattern = String::with_capacity(word.len() + 2);
    pattern.push('%');
    for c in word.chars() {
        if matches!(c, '%' | '_' | LIKE_ESCAPE) {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn matching(filter: &ListFilter) -> Condition {
    let mut cond = Condition::all();
    if filter.matches_nothing {
        // Also keeps such words away from Postgres, which refuses NUL characters in text.
        return cond.add(lists::Column::Id.is_in(Vec::<i64>::new()));
    }
    for word in &filter.words {
        cond = cond.add(
            lists::Column::NameFolded
                .like(LikeExpr::new(contains_pattern(word)).escape(LIKE_ESCAPE)),
        );
    }
    if let Some(status) = filter.status {
        cond = cond.add(lists::Column::Status.eq(status.as_str()));
    }
    if let Some(list_type) = filter.list_type {
        cond = cond.add(lists::Column::ListType.eq(list_type.as_str()));
    }
    if let Some(optin) = filter.optin {
        cond = cond.add(lists::Column::Optin.eq(optin.as_str()));
    }
    if !filter.tags.is_empty() {
        cond = cond.add(lists::Column::Id.in_subquery(carrying_all(&filter.tags)));
    }
    cond
}

/// The ids of the lists carrying every one of `tags` (distinct, as filters are): one subquery however many tags,
/// so the statement's size and its planning time do not grow with the filter.
fn carrying_all(tags: &[String]) -> SelectStatement {
    let mut select = Query::select()
        .column(list_tags::Column::ListId)
        .from(list_tags::Entity)
        .to_owned();
    if let [tag] = tags {
        select.and_where(list_tags::Column::Tag.eq(tag.as_str()));
    } else {
        select
            .and_where(list_tags::Column::Tag.is_in(tags.iter().map(String::as_str)))
            .group_by_col(list_tags::Column::ListId)
            // A list carries a tag at most once, so counting its matching rows counts distinct tags.
            .and_having(ExprTrait::eq(Expr::cust("COUNT(*)"), tags.len() as i64));
    }
    select
}

/// The alias of a listing's page inside its statement.
const PAGE: &str = "page";

/// What a listing's statement reads besides the page.
enum Alongside {
    Total,
    Version,
}

/// The number of lists with the filter's status, type and opt-in, from the counts the database keeps, without
/// counting rows.
fn counters_total(filter: &ListFilter) -> SelectStatement {
    let mut select = Query::select()
        .expr(Expr::cust("CAST(COALESCE(SUM(n), 0) AS BIGINT)"))
        .from(list_counts::Entity)
        .to_owned();
    if let Some(status) = filter.status {
        select.and_where(list_counts::Column::Status.eq(status.as_str()));
    }
    if let Some(list_type) = filter.list_type {
        select.and_where(list_counts::Column::ListType.eq(list_type.as_str()));
    }
    if let Some(optin) = filter.optin {
        select.and_where(list_counts::Column::Optin.eq(optin.as_str()));
    }
    select
}

/// The lists' version: grows with every change to any list (see migration 6).
fn lists_version() -> SelectStatement {
    Query::select()
        .expr(Expr::cust("CAST(COALESCE(SUM(changes), 0) AS BIGINT)"))
        .from(list_counts::Entity)
        .to_owned()
}

/// `(SELECT ...)` as a value in another statement.
fn scalar_subquery(select: SelectStatement) -> Expr {
    Expr::SubQuery(None, Box::new(select.into()))
}

fn count_rows(condition: &Condition) -> SelectStatement {
    Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(lists::Entity)
        .cond_where(condition.clone())
        .to_owned()
}

/// `SELECT COUNT(*)` of the lists matching an unscoped filter. A filter on tags alone is counted in `list_tags`
/// (an index-only scan): every tag row belongs to an existing list, and a list carries a tag at most once.
fn count_matches(filter: &ListFilter, condition: &Condition) -> SelectStatement {
    let tags_only = filter.words.is_empty()
        && filter.status.is_none()
        && filter.list_type.is_none()
        && filter.optin.is_none()
        && !filter.tags.is_empty();
    if !tags_only {
        return count_rows(condition);
    }
    Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(carrying_all(&filter.tags), "carrying_all")
        .to_owned()
}

fn order_column(order_by: OrderBy) -> Option<lists::Column> {
    match order_by {
        OrderBy::Id => None,
        OrderBy::Name => Some(lists::Column::NameFolded),
        OrderBy::Status => Some(lists::Column::Status),
        OrderBy::CreatedAt => Some(lists::Column::CreatedAt),
        OrderBy::UpdatedAt => Some(lists::Column::UpdatedAt),
        // Roster keeps no subscribers, so every count is 0 and the order falls to the tie-breaker.
        OrderBy::SubscriberCount => None,
    }
}

fn to_domain(model: lists::Model) -> Result<List, ServiceError> {
    let corrupt = |what: String| ServiceError::Database(DbErr::Type(what));
    Ok(List {
        id: model.id,
        uuid: model.uuid,
        list_type: model.list_type.parse().map_err(corrupt)?,
        optin: model.optin.parse().map_err(corrupt)?,
        status: model.status.parse().map_err(corrupt)?,
        tags: serde_json::from_value(model.tags).map_err(|err| corrupt(format!("tags: {err}")))?,
        name: model.name,
        description: model.description,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

fn tag_rows(list_id: i64, tags: &[String]) -> Vec<list_tags::ActiveModel> {
    tags.iter()
        .map(|tag| list_tags::ActiveModel {
            list_id: Set(list_id),
            tag: Set(tag.clone()),
        })
        .collect()
}

async fn insert_tags<C: sea_orm::ConnectionTrait>(
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
fn insert_with_tags(list: lists::ActiveModel, tags: &[String]) -> Result<WithQuery, DbErr> {
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

impl ListService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            totals: Arc::default(),
        }
    }

    /// One page of the lists matching the query, ordered over the whole result, with the total match count.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn query(
        &self,
        who: &Principal,
        query: &ListQuery,
    ) -> Result<ListPage, ServiceError> {
        let scope = who.scope(Access::Get);
        let unscoped = scope == Scope::All;
        let filter = &query.filter;
        let counted = unscoped
            && filter.words.is_empty()
            && filter.tags.is_empty()
            && !filter.matches_nothing;
        let condition = within(matching(filter), scope);
        // The page and one number read in the same statement, so a listing costs one round trip: the total itself
        // when it is cheap (counters, or a scope of granted lists), else the lists' version to look the total up.
        let (alongside, extra) = if counted {
            (Alongside::Total, counters_total(filter))
        } else if unscoped && !filter.matches_nothing {
            (Alongside::Version, lists_version())
        } else {
            // Lists granted one by one: few, and permission changes do not change the lists' version.
            (Alongside::Total, count_rows(&condition))
        };
        let order = match query.direction {
            Direction::Asc => Order::Asc,
            Direction::Desc => Order::Desc,
        };
        let mut select = lists::Entity::find().filter(condition.clone());
        let mut outer = Query::select();
        for column in order_column(query.order_by)
            .into_iter()
            .chain([lists::Column::Id])
        {
            select = select.order_by(column, order.clone());
            outer.order_by((PAGE, column), order.clone());
        }
        if let Some(per_page) = query.pagination.per_page {
            select = select.limit(per_page).offset(query.pagination.offset());
        }
        // The extra value is added around the page, not next to its columns, so rows skipped by OFFSET are not
        // projected with it.
        let page = outer
            .column((PAGE, Asterisk))
            .expr_as(scalar_subquery(extra.clone()), "alongside")
            .from_subquery(select.into_query(), PAGE)
            .to_owned();
        let rows = self.db.query_all(&page).await?;
        let page_read = Instant::now();
        let read = match rows.first() {
            Some(row) => row.try_get::<i64>("", "alongside")?,
            // No row to carry it (a page past the end, or no match).
            None => self.scalar(extra).await?.unwrap_or(0),
        };
        let total = match alongside {
            Alongside::Total => u64::try_from(read).unwrap_or(0),
            Alongside::Version => self.total_at(filter, &condition, read, page_read).await?,
        };
        let results = rows
            .iter()
            .map(|row| to_domain(lists::Model::from_query_result(row, "")?))
            .collect::<Result<_, _>>()?;
        Ok(ListPage { results, total })
    }

    /// The number of lists matching a search or tag filter, to serve with a page read at `version`: reused from
    /// the cache when it may be (see [`TotalsCache`]), otherwise counted in the same snapshot as the version it is
    /// stored with.
    async fn total_at(
        &self,
        filter: &ListFilter,
        condition: &Condition,
        version: i64,
        page_read: Instant,
    ) -> Result<u64, ServiceError> {
        let count = async {
            let counted = Query::select()
                .expr_as(scalar_subquery(lists_version()), "version")
                .expr_as(scalar_subquery(count_matches(filter, condition)), "total")
                .to_owned();
            let row = self
                .db
                .query_one(&counted)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("count".into()))?;
            let version: i64 = row.try_get("", "version")?;
            let total = u64::try_from(row.try_get::<i64>("", "total")?).unwrap_or(0);
            Ok::<_, ServiceError>((version, total))
        };
        self.totals.total(filter, version, page_read, count).await
    }

    async fn scalar(&self, select: SelectStatement) -> Result<Option<i64>, ServiceError> {
        let row = self.db.query_one(&select).await?;
        Ok(row.map(|row| row.try_get_by_index(0)).transpose()?)
    }

    #[tracing::instrument(skip_all, fields(list.id = id), err(level = "debug"))]
    pub async fn get(&self, who: &Principal, id: i64) -> Result<List, ServiceError> {
        ensure(who.scope(Access::Get).allows(id))?;
        let model = lists::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(ServiceError::NotFound)?;
        to_domain(model)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn create(&self, who: &Principal, new: NewList) -> Result<List, ServiceError> {
        ensure(who.may_create())?;
        let now = now();
        let name = new.name.into_inner();
        let tags = new.tags.into_inner();
        let list = lists::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            name_folded: Set(fold(&name)),
            name: Set(name),
            list_type: Set(new.list_type.as_str().to_owned()),
            optin: Set(new.optin.as_str().to_owned()),
            status: Set(new.status.as_str().to_owned()),
            tags: Set(serde_json::json!(tags)),
            description: Set(new.description.into_inner()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let model = if self.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            // One statement writes the list and its tag rows: atomic without a transaction, and one round trip
            // instead of four (BEGIN, two INSERTs, COMMIT).
            let row = self
                .db
                .query_one(&insert_with_tags(list, &tags)?)
                .await?
                .ok_or(DbErr::RecordNotInserted)?;
            lists::Model::from_query_result(&row, "")?
        } else {
            // SQLite has no INSERT inside WITH; a local transaction costs no round trips there.
            let txn = self.db.begin().await?;
            let model = list.insert(&txn).await?;
            insert_tags(&txn, model.id, &tags).await?;
            txn.commit().await?;
            model
        };
        to_domain(model)
    }

    /// Sets the fields the patch carries. Only columns whose value changes are written, so concurrent updates of
    /// different fields never undo each other, and `updated_at` moves only when something changed.
    #[tracing::instrument(skip_all, fields(list.id = id), err(level = "debug"))]
    pub async fn update(
        &self,
        who: &Principal,
        id: i64,
        patch: ListPatch,
    ) -> Result<List, ServiceError> {
        // The answer is the list itself, so updating needs `get` as well: `manage` alone must not read a list
        // (a `PUT` of `{}` would otherwise show what `GET` refuses).
        ensure(who.scope(Access::Manage).allows(id) && who.scope(Access::Get).allows(id))?;
        let txn = self.db.begin().await?;
        let mut select = lists::Entity::find_by_id(id);
        if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            // Serialises concurrent updates of one list, so each sees the previous one's result. (SQLite
            // serialises writers by itself.)
            select = select.lock_exclusive();
        }
        let current = select.one(&txn).await?.ok_or(ServiceError::NotFound)?;
        let mut row: lists::ActiveModel = current.clone().into();
        let mut changed = false;
        let mut set = |column: lists::Column, old: &str, new: Option<&str>| {
            if let Some(new) = new.filter(|new| *new != old) {
                row.set(column, new.to_owned().into());
                changed = true;
            }
        };
        if let Some(name) = &patch.name {
            set(lists::Column::Name, &current.name, Some(name.as_str()));
            set(
                lists::Column::NameFolded,
                &current.name_folded,
                Some(&fold(name.as_str())),
            );
        }
        set(
            lists::Column::ListType,
            &current.list_type,
            patch.list_type.map(|v| v.as_str()),
        );
        set(
            lists::Column::Optin,
            &current.optin,
            patch.optin.map(|v| v.as_str()),
        );
        set(
            lists::Column::Status,
            &current.status,
            patch.status.map(|v| v.as_str()),
        );
        let description = patch.description.map(|d| d.into_inner());
        set(
            lists::Column::Description,
            &current.description,
            description.as_deref(),
        );
        let new_tags = patch
            .tags
            .map(|t| t.into_inner())
            .filter(|tags| serde_json::json!(tags) != current.tags);
        if let Some(tags) = &new_tags {
            row.tags = Set(serde_json::json!(tags));
            changed = true;
        }
        if !changed {
            return to_domain(current);
        }
        row.updated_at = Set(now());
        let model = row.update(&txn).await.map_err(|err| match err {
            // Deleted by someone else since we read it.
            DbErr::RecordNotUpdated => ServiceError::NotFound,
            other => other.into(),
        })?;
        if let Some(tags) = &new_tags {
            list_tags::Entity::delete_many()
                .filter(list_tags::Column::ListId.eq(id))
                .exec(&txn)
                .await?;
            insert_tags(&txn, id, tags).await?;
        }
        txn.commit().await?;
        to_domain(model)
    }

    #[tracing::instrument(skip_all, fields(list.id = id), err(level = "debug"))]
    pub async fn delete(&self, who: &Principal, id: i64) -> Result<(), ServiceError> {
        ensure(who.scope(Access::Manage).allows(id))?;
        let result = lists::Entity::delete_by_id(id).exec(&self.db).await?;
        if result.rows_affected == 0 {
            return Err(ServiceError::NotFound);
        }
        Ok(())
    }

    /// Deletes every selected list in one statement (so all or none), returning how many went. Ids the caller may
    /// not manage refuse the whole call; lists matched by a filter that the caller may not manage are skipped.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn delete_many(
        &self,
        who: &Principal,
        selector: &DeleteSelector,
    ) -> Result<u64, ServiceError> {
        let scope = who.scope(Access::Manage);
        let condition = match selector {
            DeleteSelector::Ids(ids) => {
                ensure(ids.iter().all(|id| scope.allows(*id)))?;
                Condition::all().add(lists::Column::Id.is_in(ids.clone()))
            }
            DeleteSelector::Matching(filter) => within(matching(filter), scope),
        };
        let result = lists::Entity::delete_many()
            .filter(condition)
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Public, active lists, oldest first: what a subscription form may offer.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn public_lists(&self) -> Result<Vec<PublicList>, ServiceError> {
        let rows: Vec<(Uuid, String)> = lists::Entity::find()
            .select_only()
            .column(lists::Column::Uuid)
            .column(lists::Column::Name)
            .filter(lists::Column::ListType.eq(ListType::Public.as_str()))
            .filter(lists::Column::Status.eq(ListStatus::Active.as_str()))
            .order_by_asc(lists::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(uuid, name)| PublicList { uuid, name })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_treat_wildcards_and_the_escape_as_literals() {
        assert_eq!(contains_pattern("50%_off!"), "%50!%!_off!!%");
        assert_eq!(contains_pattern("plain"), "%plain%");
    }
}
