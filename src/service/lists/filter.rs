//! Which lists a listing or a bulk delete selects, how they are ordered, and how their total is counted.

use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, Query, SelectStatement};
use sea_orm::{ColumnTrait, Condition, DatabaseBackend};

use crate::domain::{ListFilter, OrderBy, Scope};
use crate::entity::{list_counts, list_tags, lists};
use crate::service::sql::{LIKE_ESCAPE, contains_pattern};
use crate::service::totals::Weigh;

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

/// Restricts a condition to the lists in `scope`, inside the database query.
pub(super) fn within(condition: Condition, scope: Scope, backend: DatabaseBackend) -> Condition {
    match scope {
        Scope::All => condition,
        Scope::Only(ids) => condition.add(crate::service::sql::one_of(
            (lists::Entity, lists::Column::Id),
            &ids,
            backend,
        )),
    }
}

/// The condition of a filter, before any restriction to what the caller may see.
pub(super) fn matching(filter: &ListFilter) -> Condition {
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
        cond = cond.add(lists::Column::Status.eq(status));
    }
    if let Some(list_type) = filter.list_type {
        cond = cond.add(lists::Column::ListType.eq(list_type));
    }
    if let Some(optin) = filter.optin {
        cond = cond.add(lists::Column::Optin.eq(optin));
    }
    if !filter.tags.is_empty() {
        cond = cond.add(lists::Column::Id.in_subquery(carrying_all(&filter.tags)));
    }
    cond
}

/// The ids of the lists carrying every one of `tags` (distinct, as filters are): one subquery however many tags,
/// so the statement's size and its planning time do not grow with the filter.
pub(super) fn carrying_all(tags: &[String]) -> SelectStatement {
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

/// The number of lists with the filter's status, type and opt-in, from the counts the database keeps, without
/// counting rows.
pub(super) fn counters_total(filter: &ListFilter) -> SelectStatement {
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
pub(super) fn lists_version() -> SelectStatement {
    Query::select()
        .expr(Expr::cust("CAST(COALESCE(SUM(changes), 0) AS BIGINT)"))
        .from(list_counts::Entity)
        .to_owned()
}

pub(super) fn count_rows(condition: &Condition) -> SelectStatement {
    Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(lists::Entity)
        .cond_where(condition.clone())
        .to_owned()
}

/// `SELECT COUNT(*)` of the lists matching an unscoped filter. A filter on tags alone is counted in `list_tags`
/// (an index-only scan): every tag row belongs to an existing list, and a list carries a tag at most once.
pub(super) fn count_matches(filter: &ListFilter, condition: &Condition) -> SelectStatement {
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

pub(super) fn order_column(order_by: OrderBy) -> Option<lists::Column> {
    match order_by {
        OrderBy::Id => None,
        OrderBy::Name => Some(lists::Column::NameFolded),
        OrderBy::Status => Some(lists::Column::Status),
        OrderBy::CreatedAt => Some(lists::Column::CreatedAt),
        OrderBy::UpdatedAt => Some(lists::Column::UpdatedAt),
        // Not a column: the listing orders by the counters (`counts::total_of_list`).
        OrderBy::SubscriberCount => None,
    }
}
