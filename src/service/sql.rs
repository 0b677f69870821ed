//! SQL pieces every resource's service uses: timestamps as stored, literal substring patterns, scalar
//! subqueries, reading a page and one number in one statement, and telling the backends apart.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Asterisk, Expr, IntoIden, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DbErr, Order, QueryResult};

/// Timestamps are stored in UTC at microsecond precision on every backend, so that they read back exactly as
/// written and sort correctly even where the database keeps them as text (SQLite).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Not a backslash: its meaning in string literals differs between backends.
pub const LIKE_ESCAPE: char = '!';

/// `LIKE` pattern for a literal substring: `%`, `_` and the escape character itself lose their meaning.
pub fn contains_pattern(word: &str) -> String {
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

/// `(SELECT ...)` as a value in another statement.
pub fn scalar_subquery(select: SelectStatement) -> Expr {
    Expr::SubQuery(None, Box::new(select.into()))
}

/// Whether the connection speaks to PostgreSQL (the only backend with some of the statements used).
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == sea_orm::DatabaseBackend::Postgres
}

/// The alias of a page inside its statement.
const PAGE: &str = "page";

/// Reads one page and one number in one statement (one round trip): `page` is the ordered, limited select of the
/// rows; `order` its ordering, repeated outside; `alongside` a `SELECT` of one integer. The number is added around
/// the page rather than next to its columns, so that rows skipped by `OFFSET` are not projected with it. When the
/// page is empty, the number is read on its own.
pub async fn page_and_value<C, Col>(
    db: &C,
    page: SelectStatement,
    order: &[(Col, Order)],
    alongside: SelectStatement,
) -> Result<(Vec<QueryResult>, i64), DbErr>
where
    C: ConnectionTrait,
    Col: IntoIden + Clone,
{
    let mut outer = Query::select();
    for (column, direction) in order {
        outer.order_by((PAGE, column.clone()), direction.clone());
    }
    let statement = outer
        .column((PAGE, Asterisk))
        .expr_as(scalar_subquery(alongside.clone()), "alongside")
        .from_subquery(page, PAGE)
        .to_owned();
    let rows = db.query_all(&statement).await?;
    let value = match rows.first() {
        Some(row) => row.try_get::<i64>("", "alongside")?,
        // No row to carry it (a page past the end, or no match).
        None => match db.query_one(&alongside).await? {
            Some(row) => row.try_get_by_index(0)?,
            None => 0,
        },
    };
    Ok((rows, value))
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
