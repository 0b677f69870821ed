//! Each list's subscriptions by status, read from `list_subscriber_counts`: exact counters kept by triggers in
//! the same transaction as every change to `subscriber_lists` (migration 7), so reading them costs a few rows
//! per list however many subscribers it has.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DbErr};

use crate::domain::{List, SubscriberCounts, SubscriptionStatus};
use crate::entity::{list_subscriber_counts as counts, lists};

/// Rows of one statement's `IN (...)`: far below every backend's limit on bound values.
const CHUNK: usize = 10_000;

/// The subscriptions of each of `ids` by status (lists without any get an empty count).
/// Sets the subscriber counts of `found`.
pub(crate) async fn fill(db: &impl ConnectionTrait, found: &mut [List]) -> Result<(), DbErr> {
    let ids: Vec<i64> = found.iter().map(|list| list.id).collect();
    let mut counted = of_lists(db, &ids).await?;
    for list in found {
        list.subscribers = counted.remove(&list.id);
    }
    Ok(())
}

async fn of_lists(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<HashMap<i64, SubscriberCounts>, DbErr> {
    let mut found: HashMap<i64, SubscriberCounts> = ids
        .iter()
        .map(|&id| (id, SubscriberCounts::default()))
        .collect();
    for chunk in ids.chunks(CHUNK) {
        let select = Query::select()
            .column(counts::Column::ListId)
            .column(counts::Column::Status)
            // SUM of a BIGINT is NUMERIC on PostgreSQL.
            .expr_as(Expr::cust("CAST(SUM(n) AS BIGINT)"), "n")
            .from(counts::Entity)
            .and_where(Expr::col(counts::Column::ListId).is_in(chunk.iter().copied()))
            .group_by_col(counts::Column::ListId)
            .group_by_col(counts::Column::Status)
            .to_owned();
        for row in db.query_all(&select).await? {
            let list: i64 = row.try_get("", "list_id")?;
            let status: String = row.try_get("", "status")?;
            let n: i64 = row.try_get("", "n")?;
            let status: SubscriptionStatus = status.parse().map_err(DbErr::Type)?;
            if n > 0
                && let Some(entry) = found.get_mut(&list)
            {
                entry.0.push((status, u64::try_from(n).unwrap_or(0)));
            }
        }
    }
    for entry in found.values_mut() {
        entry
            .0
            .sort_by_key(|(status, _)| SubscriptionStatus::ALL.iter().position(|s| s == status));
    }
    Ok(found)
}

/// A list's subscriptions of every status, as a value in a statement over `lists` (for ordering by it).
pub(crate) fn total_of_list() -> SelectStatement {
    Query::select()
        .expr(Expr::cust(
            "CAST(COALESCE(SUM(list_subscriber_counts.n), 0) AS BIGINT)",
        ))
        .from(counts::Entity)
        .and_where(
            Expr::col((counts::Entity, counts::Column::ListId))
                .equals((lists::Entity, lists::Column::Id)),
        )
        .to_owned()
}
