//! Each list's subscriptions by status, read from `list_subscriber_counts`: exact counters kept by triggers in
//! the same transaction as every change to `subscriber_lists` (migration 7), so reading them costs a few rows
//! per list however many subscribers it has.

use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryTrait};

use crate::domain::{List, SubscriberCounts, SubscriptionStatus};
use crate::entity::{list_subscriber_counts as counts, lists};

/// Rows of one statement's `IN (...)`: far below every backend's limit on bound values.
const CHUNK: usize = 10_000;

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

/// The subscriptions of one list by status, as a subquery named `counted` to join to `lists`.
fn counted(id: i64) -> SelectStatement {
    Query::select()
        .column(counts::Column::ListId)
        .column(counts::Column::Status)
        .expr_as(Expr::cust("CAST(SUM(n) AS BIGINT)"), "n")
        .from(counts::Entity)
        .and_where(Expr::col(counts::Column::ListId).eq(id))
        .group_by_col(counts::Column::ListId)
        .group_by_col(counts::Column::Status)
        .to_owned()
}

/// The statement [`one_with_counts`] runs: the list's row once per status it has subscriptions of (once with
/// null counts when it has none), so that one round trip reads both.
pub(crate) fn one_with_counts_statement(id: i64) -> SelectStatement {
    let counted_as = Alias::new("counted");
    lists::Entity::find_by_id(id)
        .into_query()
        .expr_as(
            Expr::col((counted_as.clone(), counts::Column::Status)),
            "counted_status",
        )
        .expr_as(
            Expr::col((counted_as.clone(), Alias::new("n"))),
            "counted_n",
        )
        .join_subquery(
            JoinType::LeftJoin,
            counted(id),
            counted_as.clone(),
            Expr::col((counted_as, counts::Column::ListId))
                .equals((lists::Entity, lists::Column::Id)),
        )
        .to_owned()
}

/// One list with its subscriptions by status, in one statement (a GET by id is one round trip).
pub(crate) async fn one_with_counts(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<(lists::Model, SubscriberCounts)>, DbErr> {
    let rows = db.query_all(&one_with_counts_statement(id)).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let model = lists::Model::from_query_result(first, "")?;
    let mut counted = SubscriberCounts::default();
    for row in &rows {
        let status: Option<String> = row.try_get("", "counted_status")?;
        let n: Option<i64> = row.try_get("", "counted_n")?;
        if let (Some(status), Some(n)) = (status, n)
            && n > 0
        {
            let status: SubscriptionStatus = status.parse().map_err(DbErr::Type)?;
            counted.0.push((status, u64::try_from(n).unwrap_or(0)));
        }
    }
    counted
        .0
        .sort_by_key(|(status, _)| SubscriptionStatus::ALL.iter().position(|s| s == status));
    Ok(Some((model, counted)))
}

#[cfg(test)]
mod tests {
    use sea_orm::DatabaseBackend;

    use super::*;

    /// The statement `scripts/bench/get_one.sql` runs with pgbench (its `:id` here 7): the two stay the same.
    #[test]
    fn a_list_and_its_counts_are_read_by_one_statement_the_one_pgbench_runs() {
        let sql = DatabaseBackend::Postgres
            .build(&one_with_counts_statement(7))
            .to_string();
        let script = include_str!("../../../scripts/bench/get_one.sql");
        let benched = script
            .lines()
            .find(|line| line.starts_with("SELECT"))
            .expect("a SELECT in get_one.sql")
            .trim_end_matches(';')
            .replace(":id", "7");
        assert_eq!(sql, benched);
    }
}
