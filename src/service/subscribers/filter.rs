//! Which subscribers a listing selects, which a caller may see, how they are ordered and how their total is
//! counted.

use sea_orm::sea_query::{Expr, LikeExpr, Query, SelectStatement};
use sea_orm::{ColumnTrait, Condition, DatabaseBackend};

use crate::domain::{
    Direction, Scope, SortKey, SortValue, SubscriberFilter, SubscriberOrderBy, SubscriberScope,
};
use crate::entity::{
    list_subscriber_counts, subscriber_changes, subscriber_counts, subscriber_lists, subscribers,
};
use crate::service::sql::{self, LIKE_ESCAPE, contains_pattern};
use crate::service::totals::Weigh;

impl Weigh for SubscriberFilter {
    fn weight(&self) -> usize {
        // Each string's bytes and its `String` header; the translated `query` is at most a few times its text.
        let texts: usize = self
            .words
            .iter()
            .map(|s| s.len() + std::mem::size_of::<String>())
            .sum();
        let ids = self.list_ids.as_ref().map_or(0, |ids| ids.len() * 8);
        texts + ids + 4 * self.query.len() + std::mem::size_of::<SubscriberFilter>()
    }
}

/// Which subscriptions `subscribed` counts.
#[derive(Clone, Copy, PartialEq)]
enum Counting {
    /// Every subscription: what a `list_id` filter selects.
    Every,
    /// Those that put their subscriber in the scope of the list's readers (`grants_scope`).
    Scope,
}

/// The ids of subscribers with a subscription on one of `lists` (any list for `Scope::All`), optionally only
/// subscriptions in one state.
fn subscribed(
    lists: &Scope,
    status: Option<&str>,
    counting: Counting,
    backend: DatabaseBackend,
) -> SelectStatement {
    let mut select = Query::select()
        .column(subscriber_lists::Column::SubscriberId)
        .from(subscriber_lists::Entity)
        .to_owned();
    if counting == Counting::Scope {
        select.and_where(subscriber_lists::Column::GrantsScope.eq(true));
    }
    if let Scope::Only(ids) = lists {
        select.and_where(sql::one_of(subscriber_lists::Column::ListId, ids, backend));
    }
    if let Some(status) = status {
        select.and_where(subscriber_lists::Column::Status.eq(status));
    }
    select
}

/// Restricts a condition to the subscribers in `scope` (the caller is known to see some).
pub(super) fn within(
    condition: Condition,
    scope: &SubscriberScope,
    backend: DatabaseBackend,
) -> Condition {
    match scope {
        SubscriberScope::OnLists(lists) => condition.add(
            subscribers::Column::Id.in_subquery(subscribed(lists, None, Counting::Scope, backend)),
        ),
        SubscriberScope::Everyone | SubscriberScope::Nobody => condition,
    }
}

/// The condition of a filter, before any restriction to what the caller may see.
pub(super) fn matching(filter: &SubscriberFilter, backend: DatabaseBackend) -> Condition {
    let mut cond = Condition::all();
    for word in &filter.words {
        if word.contains('\0') {
            // No stored text holds a NUL (and PostgreSQL refuses one): nothing can match.
            return cond.add(subscribers::Column::Id.is_in(Vec::<i64>::new()));
        }
        let pattern = || LikeExpr::new(contains_pattern(word)).escape(LIKE_ESCAPE);
        cond = cond.add(
            Condition::any()
                .add(subscribers::Column::Email.like(pattern()))
                .add(subscribers::Column::NameFolded.like(pattern())),
        );
    }
    if let Some(ids) = &filter.list_ids {
        let status = filter.subscription_status.map(|s| s.as_str());
        cond = cond.add(subscribers::Column::Id.in_subquery(subscribed(
            &Scope::Only(ids.iter().copied().collect()),
            status,
            Counting::Every,
            backend,
        )));
    }
    if let Some(status) = filter.status {
        cond = cond.add(subscribers::Column::Status.eq(status));
    }
    if let Some(predicate) = &filter.expression {
        cond = cond
            .add(super::expression::condition(predicate, backend))
            .add(Expr::cust(super::expression::NOT_CACHED));
    }
    cond
}

/// The total of a listing read from the counters, when the filter and scope allow it: no filter but the
/// subscriber status (for a caller who sees everyone), or one list and optionally a subscription status (for a
/// caller who sees that list's subscribers).
pub(super) fn counters_total(
    filter: &SubscriberFilter,
    scope: &SubscriberScope,
) -> Option<SelectStatement> {
    if !filter.words.is_empty() || filter.expression.is_some() {
        return None;
    }
    let mut select = Query::select()
        .expr(Expr::cust("CAST(COALESCE(SUM(n), 0) AS BIGINT)"))
        .to_owned();
    match (&filter.list_ids, scope) {
        (None, SubscriberScope::Everyone) => {
            select.from(subscriber_counts::Entity);
            if let Some(status) = filter.status {
                select.and_where(subscriber_counts::Column::Status.eq(status.as_str()));
            }
            Some(select)
        }
        (Some(ids), _) if ids.len() == 1 && filter.status.is_none() => {
            let list = ids[0];
            // A scope of lists counts only the subscriptions that grant it, which the counters do not tell.
            if *scope != SubscriberScope::Everyone {
                return None;
            }
            select
                .from(list_subscriber_counts::Entity)
                .and_where(list_subscriber_counts::Column::ListId.eq(list));
            if let Some(status) = filter.subscription_status {
                select.and_where(list_subscriber_counts::Column::Status.eq(status.as_str()));
            }
            Some(select)
        }
        _ => None,
    }
}

pub(super) fn count_rows(condition: &Condition) -> SelectStatement {
    Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(subscribers::Entity)
        .cond_where(condition.clone())
        .to_owned()
}

/// The columns a listing is ordered by: the ordering's own (if any), then `id`, the final tie-breaker.
pub(super) fn sort_columns(
    order_by: SubscriberOrderBy,
) -> impl Iterator<Item = subscribers::Column> {
    order_column(order_by)
        .into_iter()
        .chain([subscribers::Column::Id])
}

pub(super) fn order_column(order_by: SubscriberOrderBy) -> Option<subscribers::Column> {
    match order_by {
        SubscriberOrderBy::Id => None,
        SubscriberOrderBy::Email => Some(subscribers::Column::Email),
        SubscriberOrderBy::Name => Some(subscribers::Column::NameFolded),
        SubscriberOrderBy::Status => Some(subscribers::Column::Status),
        SubscriberOrderBy::CreatedAt => Some(subscribers::Column::CreatedAt),
        SubscriberOrderBy::UpdatedAt => Some(subscribers::Column::UpdatedAt),
    }
}

/// The subscribers' version: grows with every change to subscribers or subscriptions (see migration 8).
pub(super) fn subscribers_version() -> SelectStatement {
    Query::select()
        .expr(Expr::cust("CAST(COALESCE(SUM(n), 0) AS BIGINT)"))
        .from(subscriber_changes::Entity)
        .to_owned()
}

/// Where `model` sits in an ordering by `order_by`.
pub(super) fn sort_key(model: &subscribers::Model, order_by: SubscriberOrderBy) -> SortKey {
    let value = match order_by {
        SubscriberOrderBy::Id => SortValue::None,
        SubscriberOrderBy::Email => SortValue::Text(model.email.clone()),
        SubscriberOrderBy::Name => SortValue::Text(model.name_folded.clone()),
        SubscriberOrderBy::Status => SortValue::Text(model.status.as_str().to_owned()),
        SubscriberOrderBy::CreatedAt => SortValue::Time(model.created_at),
        SubscriberOrderBy::UpdatedAt => SortValue::Time(model.updated_at),
    };
    SortKey {
        value,
        id: model.id,
    }
}

/// The rows at or after `key` (`inclusive`), or strictly after it, in the ordering by `order_by` and
/// `direction`.
pub(super) fn from_key(
    order_by: SubscriberOrderBy,
    direction: Direction,
    key: &SortKey,
    inclusive: bool,
) -> Condition {
    Condition::all().add(sql::from_key(
        subscribers::Entity,
        order_column(order_by),
        subscribers::Column::Id,
        direction,
        key,
        inclusive,
    ))
}
