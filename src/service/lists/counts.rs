//! Each list's subscriptions by status, read from `list_subscriber_counts`: exact counters kept by triggers in
//! the same transaction as every change to `subscriber_lists` (migration 7), so reading them costs a few rows
//! per list however many subscribers it has.

use std::collections::HashMap;
use std::sync::LazyLock;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Query, SelectStatement, SimpleExpr};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryResult, QueryTrait};

use super::super::paging::Reading;
use super::super::sql::{ByIdStatement, page_column};
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
        let select = grouped(Expr::col(counts::Column::ListId).is_in(chunk.iter().copied()));
        for row in db.query_all(&select).await? {
            let list: i64 = row.try_get("", "list_id")?;
            if let Some(entry) = found.get_mut(&list) {
                let status: String = row.try_get("", "status")?;
                add(
                    entry,
                    status.parse().map_err(DbErr::Type)?,
                    row.try_get("", "n")?,
                );
            }
        }
    }
    found.values_mut().for_each(in_order);
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

/// The subscriptions of the lists `which` selects, by list and status (summed over the counters' shards).
fn grouped(which: SimpleExpr) -> SelectStatement {
    Query::select()
        .column(counts::Column::ListId)
        .column(counts::Column::Status)
        // SUM of a BIGINT is NUMERIC on PostgreSQL.
        .expr_as(Expr::cust("CAST(SUM(n) AS BIGINT)"), "n")
        .from(counts::Entity)
        .and_where(which)
        .group_by_col(counts::Column::ListId)
        .group_by_col(counts::Column::Status)
        .to_owned()
}

/// Adds `n` subscriptions of `status` to `counted`; a status with none is left out.
fn add(counted: &mut SubscriberCounts, status: SubscriptionStatus, n: i64) {
    if n > 0 {
        counted.0.push((status, u64::try_from(n).unwrap_or(0)));
    }
}

/// Puts the statuses in their fixed order, whatever order the rows came in.
fn in_order(counted: &mut SubscriberCounts) {
    counted
        .0
        .sort_by_key(|(status, _)| SubscriptionStatus::ALL.iter().position(|s| s == status));
}

/// A list of a listing's page, with its counts when they were asked for.
pub(crate) struct Counted {
    pub list: lists::Model,
    pub counts: Option<SubscriberCounts>,
}

/// How a page's statement reads its lists: with each list's counts in the same statement when `with_counts`
/// (one round trip), with `total` and `version` beside them.
pub(crate) fn page_reading(
    with_counts: bool,
    total: Option<SelectStatement>,
    version: Option<SelectStatement>,
) -> Reading<'static, Counted> {
    Reading {
        per_row: if with_counts { &PER_PAGE_ROW } else { &[] },
        total,
        version,
        decode: if with_counts { counted } else { uncounted },
    }
}

/// Each status's count of a page's list, as values of its row ([`page_and_values`]'s `per_row`): the list's
/// counter rows of that status summed, null when it has none. Built once.
///
/// [`page_and_values`]: crate::service::sql::page_and_values
static PER_PAGE_ROW: LazyLock<Vec<(String, SelectStatement)>> = LazyLock::new(|| {
    SubscriptionStatus::ALL
        .iter()
        .map(|&status| {
            let of_status = Query::select()
                // SUM of a BIGINT is NUMERIC on PostgreSQL.
                .expr(Expr::col(counts::Column::N).sum().cast_as("BIGINT"))
                .from(counts::Entity)
                .and_where(
                    Expr::col((counts::Entity, counts::Column::ListId))
                        .eq(page_column(lists::Column::Id)),
                )
                .and_where(Expr::col((counts::Entity, counts::Column::Status)).eq(status.as_str()))
                .to_owned();
            (count_column(status).to_owned(), of_status)
        })
        .collect()
});

/// A page's row read with [`PER_PAGE_ROW`].
fn counted(row: &QueryResult) -> Result<Counted, DbErr> {
    Ok(Counted {
        list: lists::Model::from_query_result(row, "")?,
        counts: Some(counts_in(row)?),
    })
}

/// A page's row read without counts.
fn uncounted(row: &QueryResult) -> Result<Counted, DbErr> {
    Ok(Counted {
        list: lists::Model::from_query_result(row, "")?,
        counts: None,
    })
}

/// The counts in a row's per-status columns ([`count_column`]).
fn counts_in(row: &QueryResult) -> Result<SubscriberCounts, DbErr> {
    let mut counted = SubscriberCounts::default();
    for &status in SubscriptionStatus::ALL {
        let n: Option<i64> = row.try_get("", count_column(status))?;
        add(&mut counted, status, n.unwrap_or(0));
    }
    Ok(counted)
}

/// The column of one status's count in [`one_with_counts_statement`] and [`PER_PAGE_ROW`].
fn count_column(status: SubscriptionStatus) -> &'static str {
    // Fixed names, so reading a page's rows allocates none.
    match status {
        SubscriptionStatus::Unconfirmed => "counted_unconfirmed",
        SubscriptionStatus::Confirmed => "counted_confirmed",
        SubscriptionStatus::Unsubscribed => "counted_unsubscribed",
    }
}

/// The statement [`one_with_counts`] runs: the list's row with one column per subscription status (null when it
/// has none of that status), so that one round trip reads both, in one row.
pub(crate) fn one_with_counts_statement(id: i64) -> SelectStatement {
    let counted_as = Alias::new("counted");
    let mut by_status = Query::select();
    by_status
        .column(counts::Column::ListId)
        .from(counts::Entity)
        .and_where(Expr::col(counts::Column::ListId).eq(id))
        .group_by_col(counts::Column::ListId);
    let mut select = lists::Entity::find_by_id(id).into_query();
    for &status in SubscriptionStatus::ALL {
        let column = count_column(status);
        // SUM of a BIGINT is NUMERIC on PostgreSQL.
        by_status.expr_as(
            Expr::case(
                Expr::col(counts::Column::Status).eq(status.as_str()),
                Expr::col(counts::Column::N),
            )
            .sum()
            .cast_as("BIGINT"),
            Alias::new(column),
        );
        select.expr_as(
            Expr::col((counted_as.clone(), Alias::new(column))),
            Alias::new(column),
        );
    }
    select
        .join_subquery(
            JoinType::LeftJoin,
            by_status,
            counted_as.clone(),
            Expr::col((counted_as, counts::Column::ListId))
                .equals((lists::Entity, lists::Column::Id)),
        )
        .to_owned()
}

/// [`one_with_counts_statement`], built once per backend.
static ONE_WITH_COUNTS: ByIdStatement = ByIdStatement::new(one_with_counts_statement);

/// One list with its subscriptions by status, in one statement (a GET by id is one round trip).
pub(crate) async fn one_with_counts(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<(lists::Model, SubscriberCounts)>, DbErr> {
    let statement = ONE_WITH_COUNTS.of(db.get_database_backend(), id);
    let Some(row) = db.query_one_raw(statement).await? else {
        return Ok(None);
    };
    let model = lists::Model::from_query_result(&row, "")?;
    Ok(Some((model, counts_in(&row)?)))
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

    #[test]
    fn the_statement_built_once_equals_a_fresh_build_for_every_id() {
        for backend in [DatabaseBackend::Postgres, DatabaseBackend::Sqlite] {
            for id in [1, 7, 0, -3, i64::MAX, i64::MIN] {
                assert_eq!(
                    ONE_WITH_COUNTS.of(backend, id),
                    backend.build(&one_with_counts_statement(id)),
                    "{backend:?} {id}"
                );
            }
        }
    }
}
