//! listmonk's `query`, parsed into a [`Predicate`] by the domain, as a condition on the `subscribers` table.
//!
//! Only fixed SQL fragments written here reach the database as SQL; every value from the query (strings, numbers,
//! attribute keys, patterns) is a bound parameter. Nothing here writes placeholders by hand: they are backend
//! specific (`$1` on PostgreSQL, `?` on SQLite, and sea-query's `Expr::cust_with_values` leaves a `?` unchanged on
//! PostgreSQL), so every value goes through `Expr::val` and the query builder numbers it.
//!
//! The translation gives the same answers on both backends:
//! - `LIKE` is case-sensitive: PostgreSQL's `LIKE … ESCAPE '!'`, SQLite's `GLOB` (SQLite's `LIKE` ignores ASCII
//!   case), with the pattern rewritten for each.
//! - `ILIKE` and `LOWER()` fold ASCII letters only, because SQLite's `lower()` folds nothing else: PostgreSQL
//!   lowers under the `"C"` collation, which does the same.
//! - Text orders by code point: `COLLATE "C"` on PostgreSQL (whose default collation may be a locale's), SQLite's
//!   binary collation. Equality needs no collation, so `=` and `IN` keep using indexes.
//! - Attributes: PostgreSQL reads `jsonb` with `->`/`->>` and the keys bound; SQLite reads the JSON text with
//!   `->`/`->>` and a bound path `$."k1"."k2"` (the domain keeps `"` and `\` out of keys), checking
//!   `json_type` so that each view (see [`AttribView`]) yields the same values as on PostgreSQL. Numbers in an
//!   attribute's text keep their JSON spelling on SQLite; PostgreSQL normalises exponents (`1e2` reads `100`).

use sea_orm::DatabaseBackend;
use sea_orm::sea_query::{BinOper, Condition, Expr, ExprTrait, Func, LikeExpr, Value};

use crate::domain::{AttribView, CompareOp, Field, LikePart, Literal, Operand, Predicate};
use crate::entity::subscribers;
use crate::service::sql::LIKE_ESCAPE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Postgres,
    /// SQLite, and anything that is not PostgreSQL (Roster runs on these two only).
    Sqlite,
}

/// The condition selecting the subscribers `predicate` holds for, in the SQL of `backend`.
pub fn condition(predicate: &Predicate, backend: DatabaseBackend) -> Condition {
    let backend = if backend == DatabaseBackend::Postgres {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    translate(predicate, backend)
}

/// Always true, added beside a `query`'s condition: the statement's shape is the client's, each `query` may be a
/// new one, and the PostgreSQL driver (`vendor/README.md`) does not keep a statement carrying this comment
/// prepared, so many shapes cannot fill every backend's statement cache.
pub const NOT_CACHED: &str = "TRUE /* roster: not cached */";

/// Recursion follows the predicate, whose depth the domain bounds.
fn translate(predicate: &Predicate, backend: Backend) -> Condition {
    match predicate {
        Predicate::And(items) if !items.is_empty() => {
            items.iter().fold(Condition::all(), |all, item| {
                all.add(translate(item, backend))
            })
        }
        Predicate::Or(items) if !items.is_empty() => {
            items.iter().fold(Condition::any(), |any, item| {
                any.add(translate(item, backend))
            })
        }
        // An empty `AND` holds, an empty `OR` does not (the parser builds neither).
        Predicate::And(_) => Condition::all().add(constant(true)),
        Predicate::Or(_) => Condition::all().add(constant(false)),
        Predicate::Not(inner) => translate(inner, backend).not(),
        Predicate::Literal(value) => Condition::all().add(constant(*value)),
        Predicate::Compare { left, op, right } => {
            // Ordering text needs code-point order on PostgreSQL; the collation of one side decides.
            let collate = backend == Backend::Postgres && op.is_ordering() && is_text(left);
            let right = match right {
                Operand::Literal(value) => literal(value, is_number(left)),
                right => operand(right, backend),
            };
            let mut left = operand(left, backend);
            if collate {
                left = collate_c(left);
            }
            Condition::all().add(match op {
                CompareOp::Eq => left.eq(right),
                CompareOp::NotEq => left.ne(right),
                CompareOp::Lt => left.lt(right),
                CompareOp::LtEq => left.lte(right),
                CompareOp::Gt => left.gt(right),
                CompareOp::GtEq => left.gte(right),
            })
        }
        Predicate::Like {
            operand: target,
            pattern,
            negated,
            case_insensitive,
        } => {
            let mut target = operand(target, backend);
            if *case_insensitive {
                target = lower(target, backend);
            }
            Condition::all().add(match backend {
                Backend::Postgres => {
                    let like =
                        LikeExpr::new(like_pattern(pattern, *case_insensitive)).escape(LIKE_ESCAPE);
                    if *negated {
                        target.not_like(like)
                    } else {
                        target.like(like)
                    }
                }
                Backend::Sqlite => target.binary(
                    BinOper::Custom(if *negated { "NOT GLOB" } else { "GLOB" }),
                    Expr::val(glob_pattern(pattern, *case_insensitive)),
                ),
            })
        }
        Predicate::In {
            operand: target,
            values,
            negated,
        } => {
            let numeric = is_number(target);
            let target = operand(target, backend);
            let values: Vec<Expr> = values.iter().map(|v| literal(v, numeric)).collect();
            Condition::all().add(if *negated {
                target.is_not_in(values)
            } else {
                target.is_in(values)
            })
        }
        Predicate::IsNull {
            operand: target,
            negated,
        } => {
            let target = operand(target, backend);
            Condition::all().add(if *negated {
                target.is_not_null()
            } else {
                target.is_null()
            })
        }
    }
}

fn constant(value: bool) -> Expr {
    Expr::cust(if value { "TRUE" } else { "FALSE" })
}

fn is_text(operand: &Operand) -> bool {
    match operand {
        Operand::Field(field) => matches!(field, Field::Email | Field::Name | Field::Status),
        Operand::Attrib { view, .. } => matches!(view, AttribView::Text | AttribView::String),
        Operand::Lower(_) => true,
        Operand::Literal(literal) => matches!(literal, Literal::Text(_)),
    }
}

fn column(field: Field) -> subscribers::Column {
    match field {
        Field::Id => subscribers::Column::Id,
        Field::Uuid => subscribers::Column::Uuid,
        Field::Email => subscribers::Column::Email,
        Field::Name => subscribers::Column::Name,
        Field::Status => subscribers::Column::Status,
        Field::CreatedAt => subscribers::Column::CreatedAt,
        Field::UpdatedAt => subscribers::Column::UpdatedAt,
    }
}

fn col(column: subscribers::Column) -> Expr {
    Expr::col((subscribers::Entity, column))
}

fn is_number(operand: &Operand) -> bool {
    matches!(
        operand,
        Operand::Attrib {
            view: AttribView::Number,
            ..
        }
    )
}

/// A bound value. Compared with an attribute's number (`numeric`), numbers are bound as text and cast by the
/// statement, exactly on PostgreSQL: this also keeps each statement's parameter types fixed by its text, which
/// PostgreSQL connections rely on (sqlx caches prepared statements by their SQL alone, with the parameter types of
/// their first use, and would read a `float8` sent for a cached `int8` as garbage). A float is written as JSON
/// writes it (its shortest decimal), as stored attributes are: the domain only lets through floats whose literal
/// is that decimal, so PostgreSQL compares the literal's exact value and SQLite parses the same text as the
/// stored numbers it compares with.
fn literal(literal: &Literal, numeric: bool) -> Expr {
    let value = match literal {
        Literal::Integer(n) if numeric => return Expr::val(n.to_string()).cast_as("numeric"),
        Literal::Float(n) if numeric => {
            let text =
                serde_json::Number::from_f64(*n).map_or_else(|| n.to_string(), |n| n.to_string());
            return Expr::val(text).cast_as("numeric");
        }
        Literal::Text(s) => Value::from(s.clone()),
        Literal::Integer(n) => Value::from(*n),
        Literal::Float(n) => Value::from(*n),
        Literal::Boolean(b) => Value::from(*b),
        Literal::Uuid(u) => Value::from(*u),
        Literal::Timestamp(t) => Value::from(*t),
    };
    Expr::val(value)
}

fn operand(operand: &Operand, backend: Backend) -> Expr {
    match operand {
        Operand::Field(field) => col(column(*field)),
        Operand::Attrib { path, view } => match backend {
            Backend::Postgres => pg_attrib(path, *view),
            Backend::Sqlite => sqlite_attrib(path, *view),
        },
        Operand::Lower(inner) => lower(self::operand(inner, backend), backend),
        Operand::Literal(value) => literal(value, false),
    }
}

/// `(expr) COLLATE "C"`, PostgreSQL only: the parentheses keep the collation on the whole operand (`COLLATE`
/// binds tighter than `->>`). `$1` stands for `expr` (PostgreSQL's numbered form: see the module's note), and
/// `BinOper::Custom("COLLATE")` would parenthesise `("C")`, which PostgreSQL refuses.
fn collate_c(expr: Expr) -> Expr {
    Expr::cust_with_expr("($1) COLLATE \"C\"", expr)
}

/// `lower()` of ASCII letters only, on both backends.
fn lower(expr: Expr, backend: Backend) -> Expr {
    match backend {
        Backend::Postgres => Func::lower(collate_c(expr)).into(),
        Backend::Sqlite => Func::lower(expr).into(),
    }
}

/// `attribs -> $1 -> … ->> $n`, the last step `->>` when `text`.
fn pg_path(path: &[String], text: bool) -> Expr {
    let mut expr = col(subscribers::Column::Attribs);
    for (i, key) in path.iter().enumerate() {
        let op = if text && i + 1 == path.len() {
            "->>"
        } else {
            "->"
        };
        expr = expr.binary(BinOper::Custom(op), Expr::val(key.as_str()));
    }
    expr
}

fn pg_attrib(path: &[String], view: AttribView) -> Expr {
    // The value when `jsonb_typeof` is `kind`, else NULL.
    let typed = |kind: &str, then: Expr| -> Expr {
        Expr::case(
            Func::cust("jsonb_typeof")
                .arg(pg_path(path, false))
                .eq(kind),
            then,
        )
        .into()
    };
    match view {
        AttribView::Json => pg_path(path, false),
        AttribView::Text => pg_path(path, true),
        AttribView::String => typed("string", pg_path(path, true)),
        // Casts of Roster's own making, guarded by the type check so that they cannot fail.
        AttribView::Number => typed("number", pg_path(path, true).cast_as("numeric")),
        AttribView::Boolean => typed("boolean", pg_path(path, true).cast_as("boolean")),
    }
}

/// SQLite's JSON path for `path`: `$."k1"."k2"`, each key quoted (the domain keeps `"` and `\` out of keys).
fn sqlite_path(path: &[String]) -> String {
    let mut text = String::from("$");
    for key in path {
        text.push_str(".\"");
        text.push_str(key);
        text.push('"');
    }
    text
}

fn sqlite_attrib(path: &[String], view: AttribView) -> Expr {
    let json_path = sqlite_path(path);
    let json_type = || {
        Expr::from(
            Func::cust("json_type")
                .arg(col(subscribers::Column::Attribs))
                .arg(Expr::val(json_path.as_str())),
        )
    };
    let arrow = |op: &'static str| {
        col(subscribers::Column::Attribs).binary(BinOper::Custom(op), Expr::val(json_path.as_str()))
    };
    match view {
        AttribView::Json => arrow("->"),
        // `->>` gives a string's content; `->` the JSON text of anything else (`true`, numbers as written,
        // objects), as PostgreSQL's `->>` does. JSON null reads NULL.
        AttribView::Text => Expr::case(json_type().eq("text"), arrow("->>"))
            .case(json_type().ne("null"), arrow("->"))
            .into(),
        AttribView::String => Expr::case(json_type().eq("text"), arrow("->>")).into(),
        AttribView::Number => {
            Expr::case(json_type().is_in(["integer", "real"]), arrow("->>")).into()
        }
        // `->>` reads JSON booleans as 1 and 0, which is how SQLite binds `true` and `false`.
        AttribView::Boolean => {
            Expr::case(json_type().is_in(["true", "false"]), arrow("->>")).into()
        }
    }
}

fn fold_ascii(text: &str, case_insensitive: bool) -> String {
    if case_insensitive {
        text.to_ascii_lowercase()
    } else {
        text.to_owned()
    }
}

/// PostgreSQL `LIKE` pattern, escaped with [`LIKE_ESCAPE`].
fn like_pattern(parts: &[LikePart], case_insensitive: bool) -> String {
    let mut pattern = String::new();
    for part in parts {
        match part {
            LikePart::Text(text) => {
                for c in fold_ascii(text, case_insensitive).chars() {
                    if matches!(c, '%' | '_' | LIKE_ESCAPE) {
                        pattern.push(LIKE_ESCAPE);
                    }
                    pattern.push(c);
                }
            }
            LikePart::AnyChar => pattern.push('_'),
            LikePart::AnyString => pattern.push('%'),
        }
    }
    pattern
}

/// SQLite `GLOB` pattern: `*`, `?` and `[` match themselves inside brackets.
fn glob_pattern(parts: &[LikePart], case_insensitive: bool) -> String {
    let mut pattern = String::new();
    for part in parts {
        match part {
            LikePart::Text(text) => {
                for c in fold_ascii(text, case_insensitive).chars() {
                    match c {
                        '*' => pattern.push_str("[*]"),
                        '?' => pattern.push_str("[?]"),
                        '[' => pattern.push_str("[[]"),
                        c => pattern.push(c),
                    }
                }
            }
            LikePart::AnyChar => pattern.push('?'),
            LikePart::AnyString => pattern.push('*'),
        }
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse_expression;
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;
    use sea_orm::sea_query::{ColumnDef, PostgresQueryBuilder, Query, SqliteQueryBuilder, Table};
    use sea_orm::{
        ActiveModelTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
        EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    };
    use sqlparser::dialect::{Dialect, PostgreSqlDialect, SQLiteDialect};
    use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

    use crate::domain::SubscriberStatus;

    /// `SELECT "subscribers"."id" FROM "subscribers" WHERE …` with placeholders, and the number of values bound.
    fn sql(query: &str, backend: DatabaseBackend) -> (String, usize) {
        let predicate = parse_expression(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        built(&predicate, backend)
    }

    fn built(predicate: &Predicate, backend: DatabaseBackend) -> (String, usize) {
        let select = Query::select()
            .column((subscribers::Entity, subscribers::Column::Id))
            .from(subscribers::Entity)
            .cond_where(condition(predicate, backend))
            .to_owned();
        let (sql, values) = match backend {
            DatabaseBackend::Postgres => select.build(PostgresQueryBuilder),
            _ => select.build(SqliteQueryBuilder),
        };
        (sql, values.0.len())
    }

    const IDENTIFIERS: &[&str] = &[
        "subscribers",
        "id",
        "uuid",
        "email",
        "name",
        "status",
        "created_at",
        "updated_at",
        "attribs",
        "C",
    ];
    const KEYWORDS: &[&str] = &[
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "IS",
        "NULL",
        "LIKE",
        "ESCAPE",
        "GLOB",
        "CASE",
        "WHEN",
        "THEN",
        "END",
        "CAST",
        "AS",
        "NUMERIC",
        "BOOLEAN",
        "COLLATE",
        "TRUE",
        "FALSE",
        "LOWER",
        "JSON_TYPE",
        "JSONB_TYPEOF",
    ];

    /// Fails unless every token of `sql` is one Roster writes itself: quoted known identifiers, fixed keywords and
    /// functions, operators, punctuation, placeholders (as many as values) and the `'!'` of `ESCAPE`.
    fn assert_whitelisted(sql: &str, values: usize, backend: DatabaseBackend) {
        let dialect: &dyn Dialect = match backend {
            DatabaseBackend::Postgres => &PostgreSqlDialect {},
            _ => &SQLiteDialect {},
        };
        let tokens = Tokenizer::new(dialect, sql)
            .tokenize()
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let mut placeholders = 0;
        for token in tokens {
            let allowed = match &token {
                Token::Word(word) => match word.quote_style {
                    Some('"') => IDENTIFIERS.contains(&word.value.as_str()),
                    None => KEYWORDS.contains(&word.value.to_ascii_uppercase().as_str()),
                    Some(_) => false,
                },
                Token::Placeholder(p) => {
                    placeholders += 1;
                    match backend {
                        DatabaseBackend::Postgres => {
                            p.len() > 1
                                && p.starts_with('$')
                                && p[1..].bytes().all(|b| b.is_ascii_digit())
                        }
                        _ => p == "?",
                    }
                }
                Token::SingleQuotedString(s) => s == "!",
                Token::Whitespace(Whitespace::Space)
                | Token::LParen
                | Token::RParen
                | Token::Comma
                | Token::Period
                | Token::Eq
                | Token::Neq
                | Token::Lt
                | Token::LtEq
                | Token::Gt
                | Token::GtEq
                | Token::Arrow
                | Token::LongArrow => true,
                _ => false,
            };
            assert!(allowed, "unexpected token {token:?} in {sql}");
        }
        assert_eq!(
            placeholders, values,
            "placeholders and values differ: {sql}"
        );
    }

    const REPRESENTATIVE: &[&str] = &[
        "subscribers.email='a@b.c'",
        "subscribers.uuid='0b8c6f7a-5d2e-4c3b-9a1f-2e3d4c5b6a79'",
        "subscribers.attribs->>'city' = 'Bengaluru' AND subscribers.name LIKE 'Test%'",
        "LOWER(subscribers.email) IN ('x@y.z','a@b.c')",
        "subscribers.attribs->'stack'->>'lang' ILIKE '%go%'",
        "NOT (subscribers.name IS NULL)",
        "subscribers.id > 5 OR subscribers.status <> 'blocklisted'",
        "subscribers.created_at > '2024-01-01'",
        "attribs->>'age' > 30",
        "attribs->'age' = '\"30\"' OR attribs->'vip' = 'true' OR attribs->'x' IS NULL",
        "name < 'a' AND created_at < updated_at AND name NOT LIKE '%*?[%' AND TRUE",
    ];

    #[test]
    fn sql_is_built_from_fixed_fragments() {
        for query in REPRESENTATIVE {
            for backend in [DatabaseBackend::Postgres, DatabaseBackend::Sqlite] {
                let (sql, values) = sql(query, backend);
                assert_whitelisted(&sql, values, backend);
            }
        }
    }

    #[test]
    fn sql_snapshots() {
        let cases = [
            (
                "email = 'A@B.C'",
                r#"SELECT "subscribers"."id" FROM "subscribers" WHERE "subscribers"."email" = $1"#,
                r#"SELECT "subscribers"."id" FROM "subscribers" WHERE "subscribers"."email" = ?"#,
            ),
            (
                "attribs->'stack'->>'lang' ILIKE '%Go%'",
                r#"SELECT "subscribers"."id" FROM "subscribers" WHERE LOWER((("subscribers"."attribs" -> $1) ->> $2) COLLATE "C") LIKE $3 ESCAPE '!'"#,
                r#"SELECT "subscribers"."id" FROM "subscribers" WHERE LOWER((CASE WHEN (json_type("subscribers"."attribs", ?) = ?) THEN "subscribers"."attribs" ->> ? WHEN (json_type("subscribers"."attribs", ?) <> ?) THEN "subscribers"."attribs" -> ? END)) GLOB ?"#,
            ),
            (
                "attribs->>'age' > 30",
                r#"SELECT "subscribers"."id" FROM "subscribers" WHERE (CASE WHEN (jsonb_typeof("subscribers"."attribs" -> $1) = $2) THEN CAST(("subscribers"."attribs" ->> $3) AS numeric) END) > CAST($4 AS numeric)"#,
                r#"SELECT "subscribers"."id" FROM "subscribers" WHERE (CASE WHEN (json_type("subscribers"."attribs", ?) IN (?, ?)) THEN "subscribers"."attribs" ->> ? END) > CAST(? AS numeric)"#,
            ),
            (
                "name < 'b' OR NOT (id IN (1, 2) AND TRUE)",
                r#"SELECT "subscribers"."id" FROM "subscribers" WHERE (("subscribers"."name") COLLATE "C") < $1 OR (NOT ("subscribers"."id" IN ($2, $3) AND (TRUE)))"#,
                r#"SELECT "subscribers"."id" FROM "subscribers" WHERE "subscribers"."name" < ? OR (NOT ("subscribers"."id" IN (?, ?) AND (TRUE)))"#,
            ),
        ];
        for (query, postgres, sqlite) in cases {
            assert_eq!(sql(query, DatabaseBackend::Postgres).0, postgres, "{query}");
            assert_eq!(sql(query, DatabaseBackend::Sqlite).0, sqlite, "{query}");
        }
    }

    #[test]
    fn patterns_are_rewritten_per_backend() {
        let parts = vec![
            LikePart::Text("A!%_*?[]".into()),
            LikePart::AnyChar,
            LikePart::AnyString,
        ];
        assert_eq!(like_pattern(&parts, false), "A!!!%!_*?[]_%");
        assert_eq!(like_pattern(&parts, true), "a!!!%!_*?[]_%");
        assert_eq!(glob_pattern(&parts, false), "A!%_[*][?][[]]?*");
        assert_eq!(
            sqlite_path(&["a.b".into(), "$x".into()]),
            "$.\"a.b\".\"$x\""
        );
    }

    /// Why values never go into hand-written SQL: sea-query rewrites only the backend's own placeholder.
    #[test]
    fn custom_placeholders_are_backend_specific() {
        let select = |expr: Expr| {
            Query::select()
                .expr(Expr::cust("1"))
                .and_where(expr)
                .to_owned()
        };
        let question = select(Expr::cust_with_values("email = ?", ["x"]));
        // Left as `?` on PostgreSQL: a syntax error there.
        assert_eq!(
            question.build(PostgresQueryBuilder).0,
            "SELECT 1 WHERE email = ?"
        );
        assert_eq!(
            question.build(SqliteQueryBuilder).0,
            "SELECT 1 WHERE email = ?"
        );
        let dollar = select(Expr::cust_with_values("email = $1", ["x"]));
        // Left as `$1` on SQLite, which reads it as a named parameter that is never bound: it matches nothing.
        assert_eq!(
            dollar.build(SqliteQueryBuilder).0,
            "SELECT 1 WHERE email = $1"
        );
    }

    /// Query strings that parse: atoms with arbitrary literals and keys, combined at random.
    fn valid_query() -> impl Strategy<Value = String> {
        let quoted = |s: String| format!("'{}'", s.replace('\'', "''"));
        let text = "[^\u{0}]{0,12}".prop_map(quoted);
        let key = "[^\u{0}\"\\\\[:cntrl:]]{1,8}".prop_map(quoted);
        let column = prop::sample::select(vec![
            "email",
            "subscribers.name",
            "status",
            "LOWER(name)",
            "LOWER(subscribers.email)",
        ]);
        let op = prop::sample::select(vec!["=", "<>", "!=", "<", "<=", ">", ">="]);
        let like = prop::sample::select(vec!["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"]);
        let atom = prop_oneof![
            (column.clone(), op.clone(), text.clone())
                .prop_map(|(c, o, t)| format!("{c} {o} {t}"))
                .prop_filter("status values", |q| !q.starts_with("status =")
                    && !q.starts_with("status <>")
                    && !q.starts_with("status !=")),
            (column.clone(), like, text.clone()).prop_map(|(c, l, t)| format!("{c} {l} {t}")),
            (
                prop::collection::vec(key.clone(), 1..4),
                prop::bool::ANY,
                op.clone(),
                prop_oneof![
                    text.clone(),
                    any::<i64>().prop_map(|n| n.to_string()),
                    (-1e9f64..1e9).prop_map(|n| format!("{n:?}")),
                    Just("TRUE".to_owned()),
                ],
            )
                .prop_map(|(keys, text, o, v)| {
                    let mut path = String::from("attribs");
                    for (i, k) in keys.iter().enumerate() {
                        let arrow = if text && i + 1 == keys.len() {
                            "->>"
                        } else {
                            "->"
                        };
                        path.push_str(&format!("{arrow}{k}"));
                    }
                    format!("{path} {o} {v}")
                }),
            (key.clone(), prop::bool::ANY).prop_map(|(k, not)| format!(
                "subscribers.attribs->{k} IS {}NULL",
                if not { "NOT " } else { "" }
            )),
            prop::collection::vec(any::<i64>(), 1..5).prop_map(|ids| format!(
                "id IN ({})",
                ids.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            (op.clone(), 0u32..3_000_000_000).prop_map(|(o, secs)| {
                let t = DateTime::<Utc>::from_timestamp(i64::from(secs), 0).unwrap();
                format!("created_at {o} '{}'", t.to_rfc3339())
            }),
            Just("uuid = '0b8c6f7a-5d2e-4c3b-9a1f-2e3d4c5b6a79'".to_owned()),
            Just("created_at < updated_at".to_owned()),
            Just("FALSE".to_owned()),
        ];
        atom.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(|v| v.join(" AND ")),
                prop::collection::vec(inner.clone(), 2..4).prop_map(|v| v.join(" OR ")),
                inner.clone().prop_map(|q| format!("NOT ({q})")),
                inner.prop_map(|q| format!("({q})")),
            ]
        })
    }

    fn check_whitelisted(query: &str) -> Result<(), TestCaseError> {
        if let Ok(predicate) = parse_expression(query) {
            for backend in [DatabaseBackend::Postgres, DatabaseBackend::Sqlite] {
                let (sql, values) = built(&predicate, backend);
                assert_whitelisted(&sql, values, backend);
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn accepted_queries_become_whitelisted_sql(query in valid_query()) {
            // Most generated queries are accepted (some are too long or too deep).
            check_whitelisted(&query)?;
        }

        #[test]
        fn sql_fragments_never_reach_the_database(
            parts in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40),
        ) {
            check_whitelisted(&parts.join(" "))?;
        }

        #[test]
        fn arbitrary_text_never_reaches_the_database(query in ".{0,200}") {
            check_whitelisted(&query)?;
        }
    }

    const FRAGMENTS: &[&str] = &[
        "subscribers.",
        "email",
        "name",
        "id",
        "status",
        "created_at",
        "attribs",
        "password",
        "->",
        "->>",
        "'k'",
        "'\"'",
        "=",
        "<>",
        "<",
        ">=",
        "LIKE",
        "ILIKE",
        "NOT",
        "IN",
        "IS",
        "NULL",
        "AND",
        "OR",
        "(",
        ")",
        ",",
        "LOWER(",
        "'a@b.c'",
        "'%_\\'",
        "5",
        "-3",
        "1.5e3",
        "TRUE",
        "'2024-01-01'",
        "'enabled'",
        "1=1; DROP TABLE lists",
        "' OR '1'='1",
        "'' OR ''1''=''1'",
        "--",
        "/*",
        "pg_sleep(10)",
        "SELECT",
        "FROM",
        "::text",
        "$1",
        "?",
        ";",
        "'",
        "\"",
        "$$",
        "ESCAPE",
        "'\"x\"'",
        "'30'",
        "||",
        "'); DROP TABLE subscribers; --'",
        "json_extract(",
        "sqlite_master",
    ];

    #[test]
    fn the_generator_produces_accepted_queries() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let strategy = valid_query();
        let mut accepted = 0;
        for _ in 0..200 {
            let query = strategy.new_tree(&mut runner).unwrap().current();
            if parse_expression(&query).is_ok() {
                accepted += 1;
            }
        }
        assert!(
            accepted > 150,
            "only {accepted} of 200 generated queries parse"
        );
    }

    // What the database tests store and expect.

    const UUID_2: &str = "0b8c6f7a-5d2e-4c3b-9a1f-2e3d4c5b6a79";

    struct Row {
        id: i64,
        email: &'static str,
        name: &'static str,
        attribs: serde_json::Value,
        status: SubscriberStatus,
        created_at: &'static str,
    }

    fn rows() -> Vec<Row> {
        use serde_json::json;
        vec![
            Row {
                id: 1,
                email: "a@b.c",
                name: "Test One",
                attribs: json!({"city": "Bengaluru", "age": 30, "stack": {"lang": "Go"}, "vip": true, "n": 9_007_199_254_740_992_i64}),
                status: SubscriberStatus::Enabled,
                created_at: "2023-06-01T10:00:00Z",
            },
            Row {
                id: 2,
                email: "x@y.z",
                name: "test two",
                attribs: json!({"city": "bengaluru", "age": "30", "stack": {"lang": "rust"}, "vip": false, "n": 0.0}),
                status: SubscriberStatus::Blocklisted,
                created_at: "2024-03-01T00:00:00.5Z",
            },
            Row {
                id: 3,
                email: "c@d.e",
                name: "Other",
                attribs: json!({"age": 41.5, "stack": {"lang": "golang"}, "city": null, "n": 0.1, "m": -1_971_866_499_975_272.2}),
                status: SubscriberStatus::Disabled,
                created_at: "2024-01-01T00:00:00Z",
            },
            Row {
                id: 4,
                email: "ünï@x.y",
                name: "ÉCOLE 50%_off*",
                attribs: json!({"a.b": {"$c": "dotted"}, "it's": 1, "n": 18_446_744_073_709_551_615_u64}),
                status: SubscriberStatus::Enabled,
                created_at: "2025-01-01T00:00:00.123456Z",
            },
            Row {
                id: 6,
                email: "k@l.m",
                name: "Kay",
                attribs: json!({"age": 5, "tags": ["vip", "x"], "n": 9_007_199_254_740_993_i64, "m": -1_971_866_499_975_272.0}),
                status: SubscriberStatus::Blocklisted,
                created_at: "2024-06-01T12:00:00+02:00",
            },
        ]
    }

    /// Each query and the ids it must select, identically on every backend.
    const CASES: &[(&str, &[i64])] = &[
        ("subscribers.email='a@b.c'", &[1]),
        ("subscribers.email='A@B.C'", &[1]),
        ("email = 'ÜNÏ@X.Y'", &[4]),
        (
            "subscribers.uuid='0b8c6f7a-5d2e-4c3b-9a1f-2e3d4c5b6a79'",
            &[2],
        ),
        (
            "uuid <> '0b8c6f7a-5d2e-4c3b-9a1f-2e3d4c5b6a79'",
            &[1, 3, 4, 6],
        ),
        (
            "subscribers.attribs->>'city' = 'Bengaluru' AND subscribers.name LIKE 'Test%'",
            &[1],
        ),
        ("name LIKE 'test%'", &[2]),
        ("name ILIKE 'TEST%'", &[1, 2]),
        ("name NOT ILIKE 'test%'", &[3, 4, 6]),
        ("name LIKE '%50\\%\\_off*'", &[4]),
        ("name LIKE '%*'", &[4]),
        ("name LIKE '%\\*'", &[4]),
        ("name LIKE 'K_y'", &[6]),
        ("name LIKE '_'", &[]),
        ("name ILIKE 'école%'", &[]),
        ("name ILIKE 'ÉCOLE%'", &[4]),
        ("LOWER(name) = 'École 50%_off*'", &[4]),
        ("email LIKE 'A@%'", &[1]),
        ("LOWER(subscribers.email) IN ('x@y.z','a@b.c')", &[1, 2]),
        (
            "subscribers.attribs->'stack'->>'lang' ILIKE '%go%'",
            &[1, 3],
        ),
        ("subscribers.attribs->'stack'->>'lang' LIKE '%go%'", &[3]),
        ("NOT (subscribers.name IS NULL)", &[1, 2, 3, 4, 6]),
        (
            "subscribers.id > 5 OR subscribers.status <> 'blocklisted'",
            &[1, 3, 4, 6],
        ),
        ("status IN ('enabled', 'disabled')", &[1, 3, 4]),
        ("status NOT IN ('enabled')", &[2, 3, 6]),
        ("subscribers.created_at > '2024-01-01'", &[2, 4, 6]),
        ("created_at >= '2024-01-01T00:00:00Z'", &[2, 3, 4, 6]),
        ("created_at > '2024-03-01T00:00:00.4999999Z'", &[2, 4, 6]),
        ("created_at = '2024-03-01 00:00:00.5'", &[2]),
        ("created_at = '2025-01-01T00:00:00.1234561Z'", &[4]),
        ("created_at = '2024-06-01T10:00:00Z'", &[6]),
        ("created_at < updated_at", &[4]),
        ("attribs->>'age' > 30", &[3]),
        ("attribs->>'age' >= 30", &[1, 3]),
        ("attribs->>'age' = 41.5", &[3]),
        ("attribs->>'age' IN (5, 30)", &[1, 6]),
        // The same statements as above with other kinds of numbers: their parameters must keep their types.
        ("attribs->>'age' IN (5.0, 41.5)", &[3, 6]),
        ("attribs->>'age' = 30", &[1]),
        ("attribs->>'age' = '30'", &[1, 2]),
        ("attribs->>'age' < '4'", &[1, 2]),
        ("attribs->'age' = '30'", &[1]),
        ("attribs->'age' = '\"30\"'", &[2]),
        ("attribs->>'vip' = 'true'", &[1]),
        ("attribs->'vip' = true", &[1]),
        ("attribs->>'vip' = FALSE", &[2]),
        ("attribs->>'vip' <> TRUE", &[2]),
        ("attribs->>'city' IS NULL", &[3, 4, 6]),
        ("attribs->'city' IS NULL", &[4, 6]),
        ("attribs->'city' IS NOT NULL", &[1, 2, 3]),
        ("attribs->>'tags' LIKE '%\"vip\"%'", &[6]),
        ("attribs->'a.b'->>'$c' = 'dotted'", &[4]),
        ("attribs->>'it''s' = '1'", &[4]),
        ("attribs->>'stack' LIKE '{%'", &[1, 2, 3]),
        ("name < 'a'", &[1, 3, 6]),
        ("name >= 'a'", &[2, 4]),
        ("LOWER(name) < 'l'", &[6]),
        ("id IN (1, 3) AND NOT id = 3", &[1]),
        (
            "NOT (id = 1 OR id = 2) AND NOT (id = 3 AND name = 'Other')",
            &[4, 6],
        ),
        ("id NOT IN (1, 3)", &[2, 4, 6]),
        (
            "uuid IS NOT NULL AND (id = 1 OR (id = 2 OR id = '3'))",
            &[1, 2, 3],
        ),
        ("TRUE", &[1, 2, 3, 4, 6]),
        ("1 = 0 OR FALSE", &[]),
        ("'a' < 'b'", &[1, 2, 3, 4, 6]),
        // Numbers within ±2^53, written as JSON writes them, compare exactly with any stored number: past 2^53
        // (6 is 2^53 + 1, 4 is u64::MAX), between floats of 17 digits (3, 6), at zero.
        ("attribs->>'n' = 9007199254740992", &[1]),
        ("attribs->>'n' > 9007199254740992", &[4, 6]),
        ("attribs->>'n' >= 9007199254740992.0", &[1, 4, 6]),
        ("attribs->'n' < '9007199254740992'", &[2, 3]),
        ("attribs->>'n' = 0.1", &[3]),
        ("attribs->>'n' IN (0.1, 9007199254740992)", &[1, 3]),
        ("attribs->>'n' = -0.0", &[2]),
        ("attribs->'n' = '-0'", &[2]),
        ("attribs->>'n' < 0.1", &[2]),
        ("attribs->>'m' = -1971866499975272.2", &[3]),
        ("attribs->>'m' < -1971866499975272.2", &[]),
        ("attribs->>'m' > -1971866499975272.2", &[6]),
        ("attribs->>'m' <= -1971866499975272", &[3, 6]),
    ];

    /// A `subscribers` table shaped as the migration makes it, filled with [`rows`].
    async fn prepare(db: &DatabaseConnection) {
        let table = Table::create()
            .table(subscribers::Entity)
            .col(
                ColumnDef::new(subscribers::Column::Id)
                    .big_integer()
                    .not_null()
                    .primary_key(),
            )
            .col(
                ColumnDef::new(subscribers::Column::Uuid)
                    .uuid()
                    .not_null()
                    .unique_key(),
            )
            .col(
                ColumnDef::new(subscribers::Column::Email)
                    .text()
                    .not_null()
                    .unique_key(),
            )
            .col(ColumnDef::new(subscribers::Column::Name).text().not_null())
            .col(
                ColumnDef::new(subscribers::Column::NameFolded)
                    .text()
                    .not_null(),
            )
            .col(
                ColumnDef::new(subscribers::Column::Attribs)
                    .json_binary()
                    .not_null(),
            )
            .col(
                ColumnDef::new(subscribers::Column::Status)
                    .string_len(16)
                    .not_null(),
            )
            .col(
                ColumnDef::new(subscribers::Column::CreatedAt)
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .col(
                ColumnDef::new(subscribers::Column::UpdatedAt)
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .to_owned();
        db.execute(&table).await.unwrap();
        for row in rows() {
            let created_at: DateTime<Utc> = DateTime::parse_from_rfc3339(row.created_at)
                .unwrap()
                .with_timezone(&Utc);
            let uuid = if row.id == 2 {
                UUID_2.parse().unwrap()
            } else {
                uuid::Uuid::new_v4()
            };
            subscribers::ActiveModel {
                id: Set(row.id),
                uuid: Set(uuid),
                email: Set(row.email.into()),
                name: Set(row.name.into()),
                name_folded: Set(crate::domain::fold_name(row.name)),
                attribs: Set(row.attribs),
                status: Set(row.status),
                created_at: Set(created_at),
                updated_at: Set(if row.id == 4 {
                    created_at + chrono::Duration::microseconds(1)
                } else {
                    created_at
                }),
            }
            .insert(db)
            .await
            .unwrap();
        }
    }

    async fn check_cases(db: &DatabaseConnection) {
        let backend = db.get_database_backend();
        for (query, expected) in CASES {
            let predicate = parse_expression(query).unwrap_or_else(|e| panic!("{query}: {e}"));
            let ids: Vec<i64> = subscribers::Entity::find()
                .select_only()
                .column(subscribers::Column::Id)
                .filter(condition(&predicate, backend))
                .order_by_asc(subscribers::Column::Id)
                .into_tuple()
                .all(db)
                .await
                .unwrap_or_else(|e| panic!("{backend:?}: {query}: {e}"));
            assert_eq!(ids, expected.to_vec(), "{backend:?}: {query}");
        }
    }

    #[tokio::test]
    async fn selects_the_same_rows_on_sqlite() {
        let mut options = ConnectOptions::new("sqlite::memory:");
        // One connection: each connection to `sqlite::memory:` has its own database.
        options
            .max_connections(1)
            .min_connections(1)
            .sqlx_logging(false);
        let db = Database::connect(options).await.unwrap();
        prepare(&db).await;
        check_cases(&db).await;
    }

    /// Runs when `ROSTER_TEST_POSTGRES_URL` names a role that may create databases; skipped otherwise.
    #[tokio::test]
    async fn selects_the_same_rows_on_postgres() {
        let Ok(admin_url) = std::env::var("ROSTER_TEST_POSTGRES_URL") else {
            eprintln!("skipped: ROSTER_TEST_POSTGRES_URL is not set");
            return;
        };
        let name = format!("roster_expr_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.unwrap();
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        // In a task, so that the database is dropped even when a check fails.
        let outcome = tokio::spawn(async move {
            let mut options = ConnectOptions::new(url.as_str());
            options.max_connections(1).sqlx_logging(false);
            let db = Database::connect(options).await.unwrap();
            prepare(&db).await;
            check_cases(&db).await;
            db.close().await.ok();
        })
        .await;
        admin
            .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
        admin.close().await.ok();
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic.into_panic());
        }
    }
}
