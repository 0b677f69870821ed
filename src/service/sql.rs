//! SQL pieces every resource's service uses: timestamps as stored, literal substring patterns, scalar
//! subqueries, reading a page and one number in one statement, and telling the backends apart.

use chrono::{DateTime, SubsecRound, Utc};
use std::collections::BTreeSet;

use sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, Func, IntoColumnRef, IntoIden, Query, SelectStatement,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Order, QueryResult};

use crate::domain::{Direction, SortKey, SortValue};

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

/// The SQL order of a direction.
pub fn order(direction: Direction) -> Order {
    match direction {
        Direction::Asc => Order::Asc,
        Direction::Desc => Order::Desc,
    }
}

/// Whether the connection speaks to PostgreSQL (the only backend with some of the statements used).
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == sea_orm::DatabaseBackend::Postgres
}

/// The rows at or after `key` (`inclusive`), or strictly after it, in the ordering of `table` by `column` (none:
/// by id alone) then `id`, in `direction`: a row-value comparison that the ordering's index serves as a range.
pub fn from_key<T, C>(
    table: T,
    column: Option<C>,
    id: C,
    direction: Direction,
    key: &SortKey,
    inclusive: bool,
) -> Expr
where
    T: IntoIden + Clone,
    C: IntoIden,
{
    let id_column = Expr::col((table.clone(), id));
    let (left, right) = match (column, &key.value) {
        (Some(column), SortValue::Text(text)) => (
            Expr::tuple([Expr::col((table, column)), id_column]),
            Expr::tuple([Expr::val(text.clone()), Expr::val(key.id)]),
        ),
        (Some(column), SortValue::Time(time)) => (
            Expr::tuple([Expr::col((table, column)), id_column]),
            Expr::tuple([Expr::val(*time), Expr::val(key.id)]),
        ),
        // By id alone (keys are made for, and cursors checked against, their ordering: no other pairing occurs).
        _ => (id_column, Expr::val(key.id)),
    };
    match (direction, inclusive) {
        (Direction::Asc, true) => left.gte(right),
        (Direction::Asc, false) => left.gt(right),
        (Direction::Desc, true) => left.lte(right),
        (Direction::Desc, false) => left.lt(right),
    }
}

/// The alias of a page inside its statement.
const PAGE: &str = "page";

/// A column of a page's row, for the per-row values of [`page_and_values`] to refer to.
pub fn page_column(column: impl IntoIden) -> Expr {
    Expr::col((Alias::new(PAGE), column.into_iden()))
}

/// Reads one page and some numbers in one statement (one round trip): `page` is the ordered, limited select of the
/// rows; `order` its ordering, repeated outside; each of `per_row` a named `SELECT` of one value for each row
/// (referring to the row by [`page_column`]); each of `alongside` a `SELECT` of one integer. Both are added around
/// the page rather than next to its columns, so that rows skipped by `OFFSET` are not projected with them. When
/// the page is empty, the numbers are read by a second statement of their own.
pub async fn page_and_values<C, Col>(
    db: &C,
    page: SelectStatement,
    order: &[(Col, Order)],
    per_row: &[(String, SelectStatement)],
    alongside: &[SelectStatement],
) -> Result<(Vec<QueryResult>, Vec<i64>), DbErr>
where
    C: ConnectionTrait,
    Col: IntoIden + Clone,
{
    // The first keeps the name it had when there was only one.
    let name = |i: usize| match i {
        0 => "alongside".to_owned(),
        _ => format!("alongside_{i}"),
    };
    let with_values = |select: &mut SelectStatement| {
        for (i, value) in alongside.iter().enumerate() {
            select.expr_as(scalar_subquery(value.clone()), name(i));
        }
    };
    let mut outer = Query::select();
    for (column, direction) in order {
        outer.order_by((PAGE, column.clone()), direction.clone());
    }
    outer.column((PAGE, Asterisk));
    for (name, value) in per_row {
        outer.expr_as(scalar_subquery(value.clone()), Alias::new(name));
    }
    with_values(&mut outer);
    let rows = db
        .query_all(&outer.from_subquery(page, PAGE).to_owned())
        .await?;
    let read = |row: &QueryResult| {
        (0..alongside.len())
            .map(|i| row.try_get::<i64>("", &name(i)))
            .collect::<Result<Vec<_>, _>>()
    };
    let values = match rows.first() {
        Some(row) => read(row)?,
        // No row to carry them (a page past the end, or no match).
        None => {
            let mut alone = Query::select();
            with_values(&mut alone);
            match db.query_one(&alone).await? {
                Some(row) => read(&row)?,
                None => vec![0; alongside.len()],
            }
        }
    };
    Ok((rows, values))
}

/// Ids bound one by one in `one_of`; more travel as one JSON array, so a scope of any size never meets a backend's
/// limit on bound values (SQLite 32,766, PostgreSQL 65,535).
const BOUND_ONE_BY_ONE: usize = 500;

/// `column IN (ids)` for any number of ids: bound one by one when few (the planner sees the values), else as
/// one JSON array parameter expanded by the database.
pub fn one_of<C: IntoColumnRef>(column: C, ids: &BTreeSet<i64>, backend: DatabaseBackend) -> Expr {
    if ids.len() <= BOUND_ONE_BY_ONE {
        return Expr::col(column).is_in(ids.iter().copied());
    }
    let json = serde_json::to_string(ids).unwrap_or_default();
    let expand = match backend {
        DatabaseBackend::Postgres => Func::cust(Alias::new("jsonb_array_elements_text"))
            .arg(Expr::val(json).cast_as(Alias::new("jsonb"))),
        _ => Func::cust(Alias::new("json_each")).arg(json),
    };
    let values = Query::select()
        .expr(Expr::col(Alias::new("value")).cast_as(Alias::new("bigint")))
        .from_function(expand, Alias::new("ids"))
        .to_owned();
    Expr::col(column).in_subquery(values)
}

/// A statement that differs between requests only in one id, built by sea-query once per backend and then reused
/// with the id put into its bound values. Building it costs more CPU than its round trip does (perf of a GET by
/// id: ~20 µs of sea-query building, cloning and dropping per request; docs/benchmarks.md).
pub struct ByIdStatement {
    build: fn(i64) -> SelectStatement,
    built: [std::sync::OnceLock<Template>; 3],
}

/// The SQL and bound values of one build, and where in those values the id goes.
struct Template {
    sql: String,
    values: Vec<sea_orm::Value>,
    id_at: Vec<usize>,
}

impl ByIdStatement {
    pub const fn new(build: fn(i64) -> SelectStatement) -> Self {
        Self {
            build,
            built: [const { std::sync::OnceLock::new() }; 3],
        }
    }

    /// The statement for `id`, equal to `build(id)` built for `backend`.
    pub fn of(&self, backend: DatabaseBackend, id: i64) -> sea_orm::Statement {
        let slot = match backend {
            DatabaseBackend::Postgres => 0,
            DatabaseBackend::Sqlite => 1,
            _ => 2,
        };
        let template = self.built[slot].get_or_init(|| self.template(backend));
        let mut values = template.values.clone();
        for &at in &template.id_at {
            values[at] = id.into();
        }
        sea_orm::Statement::from_sql_and_values(backend, template.sql.clone(), values)
    }

    /// Two builds with different ids: their SQL must be equal, and the values that differ are the id's places.
    fn template(&self, backend: DatabaseBackend) -> Template {
        let (one, two) = (i64::MIN + 1, i64::MIN + 2);
        let first = backend.build(&(self.build)(one));
        let second = backend.build(&(self.build)(two));
        assert_eq!(first.sql, second.sql, "the id must only be a bound value");
        let values = first.values.map(|v| v.0).unwrap_or_default();
        let other = second.values.map(|v| v.0).unwrap_or_default();
        let id_at = (0..values.len())
            .filter(|&at| values[at] != other[at])
            .collect();
        Template {
            sql: first.sql,
            values,
            id_at,
        }
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
