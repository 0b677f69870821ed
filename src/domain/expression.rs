//! listmonk's `query` parameter of subscriber listings: a SQL boolean expression that listmonk pastes into its own
//! SQL. Roster never runs it: it is parsed (by `sqlparser`, PostgreSQL dialect), checked against a whitelist and
//! turned into [`Predicate`], Roster's own tree with typed values, which the service layer translates into a
//! condition with bound values.
//!
//! What is accepted:
//! - columns `id`, `uuid`, `email`, `name`, `status`, `created_at`, `updated_at`, with or without `subscribers.`;
//! - `attribs->'key'` (JSON) and `attribs->>'key'` (text), chained (`attribs->'stack'->>'lang'`);
//! - `=`, `<>`, `!=`, `<`, `<=`, `>`, `>=`, `[NOT] LIKE`, `[NOT] ILIKE`, `[NOT] IN (literals)`, `IS [NOT] NULL`,
//!   `AND`, `OR`, `NOT`, parentheses, `LOWER(column)`;
//! - `'…'` strings, numbers, `TRUE`, `FALSE` (and `NULL` nowhere: use `IS [NOT] NULL`).
//!
//! How values compare (the same on SQLite and PostgreSQL):
//! - `email` is stored lowercase, so strings compared with (or `LIKE` patterns applied to) the bare `email` column
//!   are lowercased first: `email = 'A@B.C'` finds `a@b.c`. `LOWER(email)` keeps the literal as written.
//! - `id` takes whole numbers (or strings holding one), `uuid` a UUID string, `created_at`/`updated_at` a date
//!   (`2024-01-01`, midnight UTC), a date and time without offset (UTC) or an RFC 3339 timestamp, truncated to
//!   microseconds as stored.
//! - `status` compared with `=`, `<>` or `IN` must be `enabled`, `disabled` or `blocklisted`: any other value could
//!   never match, so it is refused as the likely typo it is.
//! - Strings compare by code point; `LIKE` is case-sensitive with `%`, `_` and `\` as escape (PostgreSQL's default);
//!   `ILIKE` and `LOWER()` fold ASCII letters only, because SQLite's `lower()` folds only those (`É` stays `É`).
//! - `attribs->>'k'` compared with a string compares the value's text (a JSON string's content, `true`, `30`, or a
//!   nested object's JSON, whose spacing differs between backends); with a number it compares numerically and only
//!   JSON numbers match; with `TRUE`/`FALSE`, only JSON booleans match.
//! - Numbers compared with an attribute or another literal must compare exactly and alike on both backends (SQLite
//!   reads JSON numbers as 64-bit integers or floats, PostgreSQL as decimals): at most 2^53 (9007199254740992) in
//!   magnitude, and either whole or the shortest decimal of their 64-bit float, as serde_json writes it (`0.1`,
//!   not `0.10000000000000001`); anything else is refused, naming the number. `-0.0` is `0`. (`id` takes any
//!   64-bit integer: a bigint column compares exactly everywhere.)
//! - `attribs->'k'` (JSON) compared with a string takes that string as JSON, as PostgreSQL does: `'"x"'` is the
//!   JSON string `x`, `'30'` the number 30, `'true'` a boolean; plain numbers and booleans work as for `->>`.
//!   `attribs->'k' IS NULL` means the key is absent (a JSON `null` is a value); `attribs->>'k' IS NULL` also
//!   matches a JSON `null`.

use std::cmp::Ordering;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, SubsecRound, Utc};
use sqlparser::ast::{
    BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident,
    InTarget, ObjectNamePart, UnaryOperator, Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
use uuid::Uuid;

use super::{SubscriberStatus, ValidationError};

/// Longest `query`, in characters. Checked before anything else, so that the work and memory spent on a query are
/// bounded whatever a client sends.
pub const EXPRESSION_MAX_CHARS: usize = 2_000;
/// Most tokens (words, literals, operators, parentheses) in a `query`, checked before parsing: bounds the size of
/// the parsed tree and of the SQL condition built from it (e.g. about 250 values in an `IN` list).
pub const EXPRESSION_MAX_TOKENS: usize = 500;
/// Deepest nesting in a `query`: parentheses, `NOT` and `LOWER(…)` each open one level.
pub const EXPRESSION_MAX_DEPTH: usize = 16;
/// Most keys in one `attribs->'a'->'b'->>'c'` chain.
pub const ATTRIB_PATH_MAX_KEYS: usize = 8;
/// Longest key in an `attribs` chain, in characters. Keys must also be free of `"`, `\` and control characters,
/// which SQLite's JSON paths cannot address.
pub const ATTRIB_KEY_MAX_CHARS: usize = 128;
/// Longest `LIKE`/`ILIKE` pattern. Matching costs up to the stored text times the pattern per row (an attribute
/// of 65,536 bytes × 256), so the pattern, not only the expression, is bounded.
pub const LIKE_PATTERN_MAX_CHARS: usize = 256;

/// A condition on subscribers, as parsed from listmonk's `query`.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// All hold (at least two items).
    And(Vec<Predicate>),
    /// Any holds (at least two items).
    Or(Vec<Predicate>),
    Not(Box<Predicate>),
    /// `left` is never [`Operand::Literal`]; `right` is a literal typed for `left` (see [`AttribView`]) or an
    /// operand of the same kind (text with text, timestamps with timestamps…).
    Compare {
        left: Operand,
        op: CompareOp,
        right: Operand,
    },
    /// `operand` is text (a text column, `LOWER(…)` or an attribute's text).
    Like {
        operand: Operand,
        pattern: Vec<LikePart>,
        negated: bool,
        /// `ILIKE`: ASCII letters match whatever their case.
        case_insensitive: bool,
    },
    /// At least one value, each typed for `operand` like the right side of [`Predicate::Compare`].
    In {
        operand: Operand,
        values: Vec<Literal>,
        negated: bool,
    },
    /// `operand` is not a literal.
    IsNull {
        operand: Operand,
        negated: bool,
    },
    /// `TRUE`, `FALSE`, or a comparison of two literals, evaluated while parsing.
    Literal(bool),
}

/// A value in a [`Predicate`].
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Field(Field),
    /// A value inside `attribs`, reached by `path` (the keys of `attribs->'a'->>'b'`).
    Attrib {
        path: Vec<String>,
        view: AttribView,
    },
    /// `LOWER(…)` of a text operand: ASCII letters only.
    Lower(Box<Operand>),
    Literal(Literal),
}

/// How an attribute's JSON value is read, chosen from what it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttribView {
    /// The JSON value itself (`->`): only tested with `IS [NOT] NULL`; SQL `NULL` when the key is absent.
    Json,
    /// Its text (`->>`): a string's content, `true`/`false`, a number's digits, an object's or array's JSON; SQL
    /// `NULL` for JSON `null` or an absent key.
    Text,
    /// A JSON string's content, else SQL `NULL`.
    String,
    /// A JSON number, as a number, else SQL `NULL`.
    Number,
    /// A JSON boolean, as a boolean, else SQL `NULL`.
    Boolean,
}

/// The subscriber columns a `query` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Id,
    Uuid,
    /// Stored lowercase.
    Email,
    Name,
    Status,
    CreatedAt,
    UpdatedAt,
}

impl Field {
    pub const ALL: [Field; 7] = [
        Field::Id,
        Field::Uuid,
        Field::Email,
        Field::Name,
        Field::Status,
        Field::CreatedAt,
        Field::UpdatedAt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Uuid => "uuid",
            Field::Email => "email",
            Field::Name => "name",
            Field::Status => "status",
            Field::CreatedAt => "created_at",
            Field::UpdatedAt => "updated_at",
        }
    }

    fn class(self) -> Class {
        match self {
            Field::Id => Class::Integer,
            Field::Uuid => Class::Uuid,
            Field::Email | Field::Name | Field::Status => Class::Text,
            Field::CreatedAt | Field::UpdatedAt => Class::Timestamp,
        }
    }
}

/// A typed value, to be bound as a statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Integer(i64),
    /// Always finite.
    Float(f64),
    Boolean(bool),
    Uuid(Uuid),
    /// At microsecond precision, as stored.
    Timestamp(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CompareOp {
    /// The operator with its operands swapped: `a < b` is `b > a`.
    fn flipped(self) -> Self {
        match self {
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::LtEq => CompareOp::GtEq,
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::GtEq => CompareOp::LtEq,
            op => op,
        }
    }

    /// Whether the operator orders its operands (rather than testing equality).
    pub fn is_ordering(self) -> bool {
        !matches!(self, CompareOp::Eq | CompareOp::NotEq)
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            CompareOp::Eq => ordering == Ordering::Equal,
            CompareOp::NotEq => ordering != Ordering::Equal,
            CompareOp::Lt => ordering == Ordering::Less,
            CompareOp::LtEq => ordering != Ordering::Greater,
            CompareOp::Gt => ordering == Ordering::Greater,
            CompareOp::GtEq => ordering != Ordering::Less,
        }
    }
}

/// One piece of a `LIKE` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LikePart {
    /// Characters matched as they are.
    Text(String),
    /// `_`: any one character.
    AnyChar,
    /// `%`: any characters, possibly none.
    AnyString,
}

/// Parses listmonk's `query` (a SQL boolean expression) into a [`Predicate`], or says which part is not supported.
pub fn parse(text: &str) -> Result<Predicate, ValidationError> {
    // Bytes first: counting the characters of a huge string is itself work a client controls.
    if text.len() > EXPRESSION_MAX_CHARS * 4 || text.chars().count() > EXPRESSION_MAX_CHARS {
        return Err(error(format!(
            "must be at most {EXPRESSION_MAX_CHARS} characters"
        )));
    }
    if text.contains('\0') {
        return Err(error("NUL characters are not supported"));
    }
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| error(format!("not a valid expression: {e}")))?;
    let (mut count, mut depth) = (0, 0);
    for token in &tokens {
        match &token.token {
            Token::Whitespace(
                Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
            ) => return Err(error("comments are not supported")),
            Token::Whitespace(_) => continue,
            Token::SemiColon => return Err(error("`;` is not supported: give one expression")),
            Token::Placeholder(_) => return Err(error("placeholders are not supported")),
            Token::DoubleColon => return Err(error("casts are not supported")),
            Token::LParen => {
                depth += 1;
                if depth > EXPRESSION_MAX_DEPTH {
                    return Err(too_deep());
                }
            }
            Token::RParen => depth = usize::max(depth, 1) - 1,
            _ => {}
        }
        count += 1;
        if count > EXPRESSION_MAX_TOKENS {
            return Err(error(format!(
                "must have at most {EXPRESSION_MAX_TOKENS} tokens (words, values and operators)"
            )));
        }
    }
    if count == 0 {
        return Err(error("is empty"));
    }
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let expr = parser.parse_expr().map_err(|e| match e {
        ParserError::RecursionLimitExceeded => too_deep(),
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => {
            error(format!("not a valid expression: {m}"))
        }
    })?;
    // `parse_expr` stops at the first token that cannot continue the expression.
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(error(format!(
            "unexpected `{}` after the expression",
            shown(&next.token.to_string())
        )));
    }
    predicate(&expr, 0)
}

/// The kinds of values, for checking what may be compared with what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Integer,
    Uuid,
    Text,
    Timestamp,
    Json,
}

/// A value as written, before it is typed by what it is compared with.
#[derive(Debug, Clone)]
enum Term {
    Field(Field),
    Attrib { path: Vec<String>, as_text: bool },
    Lower(Box<Term>),
    Literal(Raw),
}

#[derive(Debug, Clone)]
enum Raw {
    Text(String),
    /// As written, with its sign.
    Number(String),
    Boolean(bool),
    Null,
}

impl Term {
    fn class(&self) -> Option<Class> {
        match self {
            Term::Field(field) => Some(field.class()),
            Term::Attrib { as_text: true, .. } | Term::Lower(_) => Some(Class::Text),
            Term::Attrib { as_text: false, .. } => Some(Class::Json),
            Term::Literal(_) => None,
        }
    }

    /// The operand of a non-literal term, with attributes read as written (`->` JSON, `->>` text).
    fn operand(&self) -> Operand {
        match self {
            Term::Field(field) => Operand::Field(*field),
            Term::Attrib { path, as_text } => Operand::Attrib {
                path: path.clone(),
                view: if *as_text {
                    AttribView::Text
                } else {
                    AttribView::Json
                },
            },
            Term::Lower(inner) => Operand::Lower(Box::new(inner.operand())),
            // Callers handle literals before asking.
            Term::Literal(raw) => Operand::Literal(Literal::Text(raw.describe())),
        }
    }

    /// How the term reads in messages.
    fn describe(&self) -> String {
        match self {
            Term::Field(field) => format!("`{}`", field.as_str()),
            Term::Attrib { path, as_text } => {
                let mut text = String::from("`attribs");
                for (i, key) in path.iter().enumerate() {
                    let arrow = if *as_text && i + 1 == path.len() {
                        "->>"
                    } else {
                        "->"
                    };
                    text.push_str(&format!("{arrow}'{}'", shown(key)));
                }
                text.push('`');
                text
            }
            Term::Lower(inner) => format!("LOWER({})", inner.describe()),
            Term::Literal(raw) => raw.describe(),
        }
    }
}

impl Raw {
    fn describe(&self) -> String {
        match self {
            Raw::Text(s) => format!("the string '{}'", shown(s)),
            Raw::Number(n) => format!("the number {}", shown(n)),
            Raw::Boolean(b) => (if *b { "TRUE" } else { "FALSE" }).to_owned(),
            Raw::Null => "NULL".into(),
        }
    }
}

fn error(message: impl std::fmt::Display) -> ValidationError {
    ValidationError(format!("`query`: {message}"))
}

fn too_deep() -> ValidationError {
    error(format!(
        "is nested too deeply (at most {EXPRESSION_MAX_DEPTH} levels of parentheses, NOT and LOWER)"
    ))
}

/// Caller text quoted in a message, cut short so that messages stay small.
fn shown(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

const COLUMNS_HINT: &str =
    "use subscribers.id, uuid, email, name, status, created_at, updated_at or attribs->>'key'";

/// A condition. `depth` counts the levels of parentheses, `NOT` and `LOWER` around `expr`; every recursive call
/// either raises it or descends into a flattened `AND`/`OR` (whose items cannot be the same operator without
/// parentheses), so recursion stays within a small multiple of [`EXPRESSION_MAX_DEPTH`].
fn predicate(expr: &Expr, depth: usize) -> Result<Predicate, ValidationError> {
    if depth > EXPRESSION_MAX_DEPTH {
        return Err(too_deep());
    }
    match expr {
        Expr::BinaryOp {
            op: op @ (BinaryOperator::And | BinaryOperator::Or),
            ..
        } => group(expr, op, depth),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => Ok(Predicate::Not(Box::new(predicate(expr, depth + 1)?))),
        Expr::Nested(inner) => predicate(inner, depth + 1),
        Expr::BinaryOp { left, op, right } if compare_op(op).is_some() => {
            let op = compare_op(op).unwrap_or(CompareOp::Eq);
            compare(term(left, depth)?, op, term(right, depth)?)
        }
        Expr::Like {
            negated,
            any,
            expr: operand,
            pattern,
            escape_char,
        }
        | Expr::ILike {
            negated,
            any,
            expr: operand,
            pattern,
            escape_char,
        } => {
            let name = if matches!(expr, Expr::Like { .. }) {
                "LIKE"
            } else {
                "ILIKE"
            };
            if *any {
                return Err(error(format!("{name} ANY is not supported")));
            }
            if escape_char.is_some() {
                return Err(error(format!(
                    "{name} … ESCAPE is not supported; `\\` escapes `%`, `_` and itself"
                )));
            }
            like(
                term(operand, depth)?,
                term(pattern, depth)?,
                *negated,
                name == "ILIKE",
            )
        }
        Expr::In {
            expr: operand,
            target,
            negated,
            global: false,
        } => match target {
            InTarget::List(list) => {
                let operand = term(operand, depth)?;
                let mut values = Vec::with_capacity(list.len());
                for item in list {
                    match term(item, depth)? {
                        Term::Literal(raw) => values.push(raw),
                        other => {
                            return Err(error(format!(
                                "IN (…) takes literal values, not {}",
                                other.describe()
                            )));
                        }
                    }
                }
                in_list(operand, values, *negated)
            }
            InTarget::Subquery(_) => Err(error("sub-queries are not supported")),
            _ => Err(unsupported(expr)),
        },
        Expr::IsNull(operand) | Expr::IsNotNull(operand) => {
            let negated = matches!(expr, Expr::IsNotNull(_));
            match term(operand, depth)? {
                Term::Literal(raw) => Err(error(format!(
                    "IS [NOT] NULL applies to a column, not {}",
                    raw.describe()
                ))),
                term => Ok(Predicate::IsNull {
                    operand: term.operand(),
                    negated,
                }),
            }
        }
        Expr::Value(value) => match raw(&value.value)? {
            Raw::Boolean(b) => Ok(Predicate::Literal(b)),
            other => Err(error(format!("{} is not a condition", other.describe()))),
        },
        Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Function(_)
        | Expr::BinaryOp {
            op: BinaryOperator::Arrow | BinaryOperator::LongArrow,
            ..
        } => {
            let term = term(expr, depth)?;
            Err(error(format!(
                "{} is not a condition; compare it with a value",
                term.describe()
            )))
        }
        _ => Err(unsupported(expr)),
    }
}

/// A chain `a AND b AND c …` (or `OR`), which the parser nests to the left, as one flat list: walked in a loop,
/// so a long chain costs no recursion.
fn group(expr: &Expr, op: &BinaryOperator, depth: usize) -> Result<Predicate, ValidationError> {
    let mut items = Vec::new();
    let mut current = expr;
    while let Expr::BinaryOp {
        left,
        op: this,
        right,
    } = current
        && this == op
    {
        items.push(right.as_ref());
        current = left;
    }
    items.push(current);
    items.reverse();
    let and = *op == BinaryOperator::And;
    let mut predicates = Vec::with_capacity(items.len());
    for item in items {
        match predicate(item, depth)? {
            // `a AND (b AND c)` is `a AND b AND c`.
            Predicate::And(inner) if and => predicates.extend(inner),
            Predicate::Or(inner) if !and => predicates.extend(inner),
            other => predicates.push(other),
        }
    }
    Ok(if and {
        Predicate::And(predicates)
    } else {
        Predicate::Or(predicates)
    })
}

fn compare_op(op: &BinaryOperator) -> Option<CompareOp> {
    Some(match op {
        BinaryOperator::Eq => CompareOp::Eq,
        BinaryOperator::NotEq => CompareOp::NotEq,
        BinaryOperator::Lt => CompareOp::Lt,
        BinaryOperator::LtEq => CompareOp::LtEq,
        BinaryOperator::Gt => CompareOp::Gt,
        BinaryOperator::GtEq => CompareOp::GtEq,
        _ => return None,
    })
}

/// A value: a column, an attribute, `LOWER(…)` or a literal.
fn term(expr: &Expr, depth: usize) -> Result<Term, ValidationError> {
    if depth > EXPRESSION_MAX_DEPTH {
        return Err(too_deep());
    }
    match expr {
        Expr::Identifier(ident) => column(std::slice::from_ref(ident)),
        Expr::CompoundIdentifier(idents) => column(idents),
        Expr::BinaryOp {
            op: BinaryOperator::Arrow | BinaryOperator::LongArrow,
            ..
        } => attrib(expr),
        Expr::Nested(inner) => term(inner, depth + 1),
        Expr::Function(function) => lower(function, depth),
        Expr::Value(value) => Ok(Term::Literal(raw(&value.value)?)),
        Expr::UnaryOp {
            op: op @ (UnaryOperator::Minus | UnaryOperator::Plus),
            expr: inner,
        } => match inner.as_ref() {
            Expr::Value(value) => match &value.value {
                Value::Number(n, false) if *op == UnaryOperator::Minus => {
                    Ok(Term::Literal(Raw::Number(format!("-{n}"))))
                }
                Value::Number(n, false) => Ok(Term::Literal(Raw::Number(n.clone()))),
                _ => Err(error(format!("`{op}` applies to numbers only"))),
            },
            _ => Err(error(format!("`{op}` applies to numbers only"))),
        },
        _ => Err(unsupported(expr)),
    }
}

enum Column {
    Field(Field),
    Attribs,
}

fn ident_is(ident: &Ident, name: &str) -> bool {
    match ident.quote_style {
        None => ident.value.eq_ignore_ascii_case(name),
        // A quoted name is exact, as in PostgreSQL.
        Some('"') => ident.value == name,
        Some(_) => false,
    }
}

fn resolve(idents: &[Ident]) -> Result<Column, ValidationError> {
    let name = match idents {
        [name] => name,
        [table, name] if ident_is(table, "subscribers") => name,
        [table, _] => {
            return Err(error(format!(
                "table `{}` is not supported; only subscribers' columns are",
                shown(&table.value)
            )));
        }
        _ => {
            let full: Vec<&str> = idents.iter().map(|i| i.value.as_str()).collect();
            return Err(error(format!(
                "column `{}` is not supported; {COLUMNS_HINT}",
                shown(&full.join("."))
            )));
        }
    };
    if ident_is(name, "attribs") {
        return Ok(Column::Attribs);
    }
    Field::ALL
        .into_iter()
        .find(|field| ident_is(name, field.as_str()))
        .map(Column::Field)
        .ok_or_else(|| {
            error(format!(
                "column `{}` is not supported; {COLUMNS_HINT}",
                shown(&name.value)
            ))
        })
}

fn column(idents: &[Ident]) -> Result<Term, ValidationError> {
    match resolve(idents)? {
        Column::Field(field) => Ok(Term::Field(field)),
        Column::Attribs => Err(error(
            "`attribs` needs a key: attribs->>'key' (text) or attribs->'key' (JSON)",
        )),
    }
}

/// `attribs->'a'->…->>'z'`, nested to the left by the parser: walked in a loop, at most
/// [`ATTRIB_PATH_MAX_KEYS`] steps.
fn attrib(expr: &Expr) -> Result<Term, ValidationError> {
    let mut path = Vec::new();
    let mut as_text = false;
    let mut current = expr;
    loop {
        match current {
            Expr::BinaryOp {
                left,
                op: op @ (BinaryOperator::Arrow | BinaryOperator::LongArrow),
                right,
            } => {
                if path.len() == ATTRIB_PATH_MAX_KEYS {
                    return Err(error(format!(
                        "attribs paths have at most {ATTRIB_PATH_MAX_KEYS} keys"
                    )));
                }
                if *op == BinaryOperator::LongArrow {
                    // Walking from the end: only the first step seen (the last written) may be `->>`.
                    if !path.is_empty() {
                        return Err(error(
                            "`->>` yields text, which has no keys: only the last step may be `->>`",
                        ));
                    }
                    as_text = true;
                }
                path.push(attrib_key(right)?);
                current = left;
            }
            Expr::Identifier(ident) => {
                return attrib_base(std::slice::from_ref(ident), path, as_text);
            }
            Expr::CompoundIdentifier(idents) => return attrib_base(idents, path, as_text),
            _ => return Err(error("`->` and `->>` apply to subscribers.attribs only")),
        }
    }
}

fn attrib_base(
    idents: &[Ident],
    mut path: Vec<String>,
    as_text: bool,
) -> Result<Term, ValidationError> {
    match resolve(idents)? {
        Column::Attribs => {
            path.reverse();
            Ok(Term::Attrib { path, as_text })
        }
        Column::Field(field) => Err(error(format!(
            "`->` and `->>` apply to subscribers.attribs only, not `{}`",
            field.as_str()
        ))),
    }
}

fn attrib_key(expr: &Expr) -> Result<String, ValidationError> {
    let Expr::Value(value) = expr else {
        return Err(error("attribs keys must be '…' strings"));
    };
    let Value::SingleQuotedString(key) = &value.value else {
        return Err(error("attribs keys must be '…' strings"));
    };
    let chars = key.chars().count();
    if chars == 0
        || chars > ATTRIB_KEY_MAX_CHARS
        || key.chars().any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err(error(format!(
            "attribs keys must be 1 to {ATTRIB_KEY_MAX_CHARS} characters without `\"`, `\\` or control characters"
        )));
    }
    Ok(key.clone())
}

fn lower(function: &Function, depth: usize) -> Result<Term, ValidationError> {
    let is_lower = matches!(
        function.name.0.as_slice(),
        [ObjectNamePart::Identifier(name)] if ident_is(name, "lower")
    );
    if !is_lower {
        return Err(error(format!(
            "function `{}` is not supported; only LOWER(column) is",
            shown(&function.name.to_string())
        )));
    }
    let argument = match &function.args {
        FunctionArguments::List(list)
            if !function.uses_odbc_syntax
                && matches!(function.parameters, FunctionArguments::None)
                && function.within_group.is_empty()
                && function.filter.is_none()
                && function.null_treatment.is_none()
                && function.over.is_none()
                && list.duplicate_treatment.is_none()
                && list.clauses.is_empty() =>
        {
            match list.args.as_slice() {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(argument))] => argument,
                _ => return Err(error("LOWER takes exactly one column")),
            }
        }
        _ => return Err(error("LOWER takes exactly one column")),
    };
    let inner = term(argument, depth + 1)?;
    match inner.class() {
        Some(Class::Text) => Ok(Term::Lower(Box::new(inner))),
        None => Err(error("LOWER takes a column, not a literal")),
        Some(Class::Json) => Err(error(format!(
            "{} yields JSON; use ->> for its text",
            inner.describe()
        ))),
        Some(_) => Err(error(format!(
            "LOWER applies to text (email, name, status or attribs->>'key'), not {}",
            inner.describe()
        ))),
    }
}

fn raw(value: &Value) -> Result<Raw, ValidationError> {
    match value {
        Value::SingleQuotedString(s) => Ok(Raw::Text(s.clone())),
        Value::Number(n, false) => Ok(Raw::Number(n.clone())),
        Value::Boolean(b) => Ok(Raw::Boolean(*b)),
        Value::Null => Ok(Raw::Null),
        Value::Placeholder(_) => Err(error("placeholders are not supported")),
        _ => Err(error(format!(
            "the literal `{}` is not supported; use '…' strings, numbers, TRUE or FALSE",
            shown(&value.to_string())
        ))),
    }
}

/// Names the construct that is refused.
fn unsupported(expr: &Expr) -> ValidationError {
    let message = match expr {
        Expr::Subquery(_)
        | Expr::Exists { .. }
        | Expr::In {
            target: InTarget::Subquery(_),
            ..
        } => "sub-queries are not supported".to_owned(),
        Expr::Cast { .. } | Expr::Convert { .. } => "casts are not supported".to_owned(),
        Expr::Function(function) => format!(
            "function `{}` is not supported; only LOWER(column) is",
            shown(&function.name.to_string())
        ),
        Expr::BinaryOp { op, .. } => {
            format!("operator `{}` is not supported", shown(&op.to_string()))
        }
        Expr::UnaryOp { op, .. } => format!("operator `{op}` is not supported here"),
        Expr::Between { .. } => "BETWEEN is not supported; use >= and <=".to_owned(),
        Expr::Case { .. } => "CASE is not supported".to_owned(),
        Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotUnknown(_) => "IS TRUE, IS FALSE and IS UNKNOWN are not supported".to_owned(),
        Expr::IsDistinctFrom(..) | Expr::IsNotDistinctFrom(..) => {
            "IS [NOT] DISTINCT FROM is not supported".to_owned()
        }
        Expr::SimilarTo { .. } | Expr::RLike { .. } => {
            "SIMILAR TO and regular expressions are not supported; use LIKE".to_owned()
        }
        Expr::AnyOp { .. } | Expr::AllOp { .. } => {
            "ANY and ALL are not supported; use IN (…)".to_owned()
        }
        Expr::In { .. } => "IN takes a list of literal values".to_owned(),
        Expr::Collate { .. } => "COLLATE is not supported".to_owned(),
        Expr::TypedString(_) => {
            "typed literals (such as DATE '…') are not supported; use a plain '…' string".to_owned()
        }
        Expr::Interval(_) => "INTERVAL is not supported".to_owned(),
        Expr::Array(_) => "arrays are not supported".to_owned(),
        Expr::Tuple(_) => "row values are not supported".to_owned(),
        Expr::AtTimeZone { .. } => "AT TIME ZONE is not supported".to_owned(),
        Expr::Wildcard(_) | Expr::QualifiedWildcard(..) => "`*` is not supported".to_owned(),
        Expr::CompoundFieldAccess { .. } | Expr::JsonAccess { .. } => {
            "this access is not supported; use attribs->'key' or attribs->>'key'".to_owned()
        }
        _ => format!("`{}` is not supported", shown(&expr.to_string())),
    };
    error(message)
}

fn compare(left: Term, op: CompareOp, right: Term) -> Result<Predicate, ValidationError> {
    match (left, right) {
        (Term::Literal(a), Term::Literal(b)) => Ok(Predicate::Literal(fold(&a, op, &b)?)),
        (Term::Literal(a), right) => compare(right, op.flipped(), Term::Literal(a)),
        (left, Term::Literal(value)) => {
            let (left, value) = typed(&left, &value, !op.is_ordering())?;
            Ok(Predicate::Compare {
                left,
                op,
                right: Operand::Literal(value),
            })
        }
        (left, right) => {
            let (a, b) = (left.class(), right.class());
            if a == Some(Class::Json) || b == Some(Class::Json) {
                let json = if a == Some(Class::Json) {
                    &left
                } else {
                    &right
                };
                return Err(error(format!(
                    "{} yields JSON; compare it with a literal, or use ->> for its text",
                    json.describe()
                )));
            }
            if a != b {
                return Err(error(format!(
                    "cannot compare {} with {}",
                    left.describe(),
                    right.describe()
                )));
            }
            Ok(Predicate::Compare {
                left: left.operand(),
                op,
                right: right.operand(),
            })
        }
    }
}

/// The largest magnitude of a number literal compared with an attribute or another literal: 2^53, past which
/// 64-bit floats (what SQLite compares JSON numbers as) skip whole numbers, while PostgreSQL compares exactly.
pub const NUMBER_MAX_EXACT: i64 = 1 << 53;

/// A number literal compared with an attribute (or with another literal), refused unless both backends compare it
/// exactly and alike. SQLite reads JSON numbers as 64-bit integers or floats, PostgreSQL as exact decimals, and
/// Roster stores attributes as serde_json writes them: integers, or a float's shortest decimal. A literal within
/// ±2^53 that is an integer, or the decimal serde_json writes for its float (`0.1`, `1.5e3`, not
/// `0.10000000000000001`), then orders against every stored number as its float does on SQLite and as its decimal
/// does on PostgreSQL. `-0.0` is `0`.
fn exact_number(text: &str) -> Result<Literal, ValidationError> {
    let too_large = || {
        error(format!(
            "the number {} cannot be compared exactly: numbers must be at most {NUMBER_MAX_EXACT} (2^53) in magnitude",
            shown(text)
        ))
    };
    match number(text)? {
        Literal::Integer(n) if n.unsigned_abs() > NUMBER_MAX_EXACT.unsigned_abs() => {
            Err(too_large())
        }
        Literal::Float(n) if n.abs() > NUMBER_MAX_EXACT as f64 => Err(too_large()),
        Literal::Float(n) if decimal(text) != decimal(&float_text(n)) => Err(error(format!(
            "the number {} cannot be compared exactly: it is not the shortest decimal of a 64-bit float; write {}",
            shown(text),
            float_text(n)
        ))),
        // No negative zero (the pattern matches `-0.0` too): PostgreSQL's decimals have none.
        Literal::Float(0.0) => Ok(Literal::Float(0.0)),
        literal => Ok(literal),
    }
}

/// A float as serde_json writes it, as attributes are stored: its shortest decimal (the nearest one when several
/// are as short), in exponent form when long.
fn float_text(n: f64) -> String {
    serde_json::Number::from_f64(n).map_or_else(|| n.to_string(), |n| n.to_string())
}

/// The exact value of a decimal number (`-12.5e3`, `.5`, `1.`) as its sign, significant digits (no leading or
/// trailing zeros) and the power of ten of the digits' decimal point (`0.125e5` is `("125", 5)`); zero is
/// `(false, "", 0)` whatever its sign. `None` for text that is not such a number or has a runaway exponent.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, text) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let exponent_digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
    if whole.is_empty() && fraction.is_empty()
        || exponent_digits.is_empty()
        || !(whole
            .bytes()
            .chain(fraction.bytes())
            .chain(exponent_digits.bytes()))
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    let point =
        i64::try_from(whole.len()).ok()? - i64::try_from(digits.len() - significant.len()).ok()?;
    let significant = significant.trim_end_matches('0');
    if significant.is_empty() {
        return Some((false, String::new(), 0));
    }
    let exponent = exponent.parse::<i64>().ok()?;
    Some((
        negative,
        significant.to_owned(),
        point.checked_add(exponent)?,
    ))
}

/// A number as written: whole numbers that fit `i64` stay exact.
fn number(text: &str) -> Result<Literal, ValidationError> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = text.parse::<i64>()
    {
        return Ok(Literal::Integer(n));
    }
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(Literal::Float(n)),
        _ => Err(error(format!(
            "the number `{}` is not supported",
            shown(text)
        ))),
    }
}

/// A comparison of two literals, decided here.
fn fold(a: &Raw, op: CompareOp, b: &Raw) -> Result<bool, ValidationError> {
    let ordering = match (a, b) {
        (Raw::Null, _) | (_, Raw::Null) => return Err(null_compared()),
        (Raw::Text(a), Raw::Text(b)) => a.cmp(b),
        (Raw::Boolean(a), Raw::Boolean(b)) => a.cmp(b),
        (Raw::Number(a), Raw::Number(b)) => match (exact_number(a)?, exact_number(b)?) {
            (Literal::Integer(a), Literal::Integer(b)) => a.cmp(&b),
            (a, b) => {
                let float = |n: Literal| match n {
                    Literal::Integer(n) => n as f64,
                    Literal::Float(n) => n,
                    _ => 0.0,
                };
                // Both finite and exact (see `exact_number`), so always ordered, as their decimals are.
                float(a).partial_cmp(&float(b)).unwrap_or(Ordering::Equal)
            }
        },
        (a, b) => {
            return Err(error(format!(
                "cannot compare {} with {}",
                a.describe(),
                b.describe()
            )));
        }
    };
    Ok(op.holds(ordering))
}

fn null_compared() -> ValidationError {
    error("NULL cannot be compared; use IS NULL or IS NOT NULL")
}

/// `term` (not a literal) and `value` typed for it. `exact` is set for `=`, `<>` and `IN`.
fn typed(term: &Term, value: &Raw, exact: bool) -> Result<(Operand, Literal), ValidationError> {
    if let Raw::Null = value {
        return Err(null_compared());
    }
    let mismatch = || {
        error(format!(
            "cannot compare {} with {}",
            term.describe(),
            value.describe()
        ))
    };
    let literal = match (term, value) {
        (Term::Field(Field::Id), Raw::Number(n)) => match number(n)? {
            Literal::Integer(n) => Literal::Integer(n),
            _ => return Err(error(format!("`id` is a whole number, not {}", shown(n)))),
        },
        (Term::Field(Field::Id), Raw::Text(s)) => Literal::Integer(
            s.trim()
                .parse()
                .map_err(|_| error(format!("`id` is a whole number, not '{}'", shown(s))))?,
        ),
        (Term::Field(Field::Uuid), Raw::Text(s)) => {
            Literal::Uuid(Uuid::parse_str(s.trim()).map_err(|_| {
                error(format!(
                    "`uuid` compares with a UUID such as '5e2b3c0a-…', not '{}'",
                    shown(s)
                ))
            })?)
        }
        // Stored lowercase (by `str::to_lowercase`, as addresses are saved).
        (Term::Field(Field::Email), Raw::Text(s)) => Literal::Text(s.to_lowercase()),
        (Term::Field(Field::Status), Raw::Text(s)) => {
            if exact && s.parse::<SubscriberStatus>().is_err() {
                return Err(error(format!(
                    "unknown status '{}'; use enabled, disabled or blocklisted",
                    shown(s)
                )));
            }
            Literal::Text(s.clone())
        }
        (Term::Field(Field::Name) | Term::Lower(_), Raw::Text(s)) => Literal::Text(s.clone()),
        (Term::Field(field @ (Field::CreatedAt | Field::UpdatedAt)), Raw::Text(s)) => {
            Literal::Timestamp(timestamp(*field, s)?)
        }
        (Term::Attrib { path, as_text }, value) => {
            let (view, literal) = attrib_literal(*as_text, value)?;
            return Ok((
                Operand::Attrib {
                    path: path.clone(),
                    view,
                },
                literal,
            ));
        }
        _ => return Err(mismatch()),
    };
    Ok((term.operand(), literal))
}

/// How an attribute compares with `value`: the view to read it in and the value typed for that view.
fn attrib_literal(as_text: bool, value: &Raw) -> Result<(AttribView, Literal), ValidationError> {
    match value {
        Raw::Number(n) => Ok((AttribView::Number, exact_number(n)?)),
        Raw::Boolean(b) => Ok((AttribView::Boolean, Literal::Boolean(*b))),
        Raw::Text(s) if as_text => Ok((AttribView::Text, Literal::Text(s.clone()))),
        // `->` yields JSON, so (as in PostgreSQL) the string is read as JSON.
        Raw::Text(s) => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(serde_json::Value::String(s)) => Ok((AttribView::String, Literal::Text(s))),
            Ok(serde_json::Value::Bool(b)) => Ok((AttribView::Boolean, Literal::Boolean(b))),
            // The number as written, not as serde_json rounded it.
            Ok(serde_json::Value::Number(_)) => Ok((AttribView::Number, exact_number(s.trim())?)),
            Ok(serde_json::Value::Null) => Err(error(
                "comparing with JSON null is not supported; use attribs->>'key' IS NULL",
            )),
            Ok(_) => Err(error(
                "comparing with JSON objects or arrays is not supported",
            )),
            Err(_) => Err(error(format!(
                "`->` yields JSON, so '{}' must be JSON (such as '\"text\"'); use ->> to compare text",
                shown(s)
            ))),
        },
        Raw::Null => Err(null_compared()),
    }
}

fn timestamp(field: Field, text: &str) -> Result<DateTime<Utc>, ValidationError> {
    let text = text.trim();
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .into_iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                .map(|t| t.and_utc())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN).and_utc())
        });
    match parsed {
        // Four-digit years only: they sort as text where SQLite stores them so.
        Some(t) if (1..=9999).contains(&t.year()) => Ok(t.trunc_subsecs(6)),
        _ => Err(error(format!(
            "`{}` compares with a date ('2024-01-01') or an RFC 3339 timestamp ('2024-01-01T10:00:00Z'), not '{}'",
            field.as_str(),
            shown(text)
        ))),
    }
}

fn in_list(operand: Term, values: Vec<Raw>, negated: bool) -> Result<Predicate, ValidationError> {
    if values.is_empty() {
        return Err(error("IN (…) needs at least one value"));
    }
    if let Term::Literal(value) = &operand {
        let mut found = false;
        for candidate in &values {
            found |= fold(value, CompareOp::Eq, candidate)?;
        }
        return Ok(Predicate::Literal(found != negated));
    }
    let mut typed_operand = None;
    let mut literals = Vec::with_capacity(values.len());
    for value in &values {
        let (this, literal) = typed(&operand, value, true)?;
        match &typed_operand {
            None => typed_operand = Some(this),
            Some(first) if *first == this => {}
            Some(_) => {
                return Err(error(
                    "the values in IN (…) must all be of one type (strings, numbers or booleans)",
                ));
            }
        }
        literals.push(literal);
    }
    Ok(Predicate::In {
        operand: typed_operand.unwrap_or_else(|| operand.operand()),
        values: literals,
        negated,
    })
}

fn like(
    operand: Term,
    pattern: Term,
    negated: bool,
    case_insensitive: bool,
) -> Result<Predicate, ValidationError> {
    let name = if case_insensitive { "ILIKE" } else { "LIKE" };
    let Term::Literal(Raw::Text(pattern)) = pattern else {
        return Err(error(format!("{name} needs a '…' pattern on its right")));
    };
    if pattern.chars().count() > LIKE_PATTERN_MAX_CHARS {
        return Err(error(format!(
            "{name} patterns must be at most {LIKE_PATTERN_MAX_CHARS} characters"
        )));
    }
    match operand.class() {
        Some(Class::Text) => {}
        None => return Err(error(format!("{name} needs a column on its left"))),
        Some(Class::Json) => {
            return Err(error(format!(
                "{} yields JSON; use ->> for its text",
                operand.describe()
            )));
        }
        Some(_) => {
            return Err(error(format!(
                "{name} applies to text (email, name, status, LOWER(…) or attribs->>'key'), not {}",
                operand.describe()
            )));
        }
    }
    let mut parts = like_pattern(&pattern)?;
    if let Term::Field(Field::Email) = operand {
        for part in &mut parts {
            if let LikePart::Text(text) = part {
                *text = text.to_lowercase();
            }
        }
    }
    Ok(Predicate::Like {
        operand: operand.operand(),
        pattern: parts,
        negated,
        case_insensitive,
    })
}

/// A `LIKE` pattern with PostgreSQL's default escape character, `\`.
fn like_pattern(pattern: &str) -> Result<Vec<LikePart>, ValidationError> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let wildcard = match c {
            '%' => LikePart::AnyString,
            '_' => LikePart::AnyChar,
            '\\' => {
                let escaped = chars.next().ok_or_else(|| {
                    error("a LIKE pattern must not end with the escape character `\\`")
                })?;
                text.push(escaped);
                continue;
            }
            c => {
                text.push(c);
                continue;
            }
        };
        if !text.is_empty() {
            parts.push(LikePart::Text(std::mem::take(&mut text)));
        }
        // `%%` matches what `%` does.
        if !(wildcard == LikePart::AnyString && parts.last() == Some(&LikePart::AnyString)) {
            parts.push(wildcard);
        }
    }
    if !text.is_empty() {
        parts.push(LikePart::Text(text));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(s: &str) -> Operand {
        Operand::Literal(Literal::Text(s.into()))
    }

    fn err(query: &str) -> String {
        match parse(query) {
            Ok(p) => panic!("`{query}` was accepted as {p:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn parses_what_clients_send() {
        assert_eq!(
            parse("subscribers.email='A@b.c'").unwrap(),
            Predicate::Compare {
                left: Operand::Field(Field::Email),
                op: CompareOp::Eq,
                right: text("a@b.c"),
            }
        );
        let uuid = "0b8c6f7a-5d2e-4c3b-9a1f-2e3d4c5b6a79";
        assert_eq!(
            parse(&format!("subscribers.uuid='{uuid}'")).unwrap(),
            Predicate::Compare {
                left: Operand::Field(Field::Uuid),
                op: CompareOp::Eq,
                right: Operand::Literal(Literal::Uuid(uuid.parse().unwrap())),
            }
        );
        assert_eq!(
            parse("subscribers.attribs->>'city' = 'Bengaluru' AND subscribers.name LIKE 'Test%'")
                .unwrap(),
            Predicate::And(vec![
                Predicate::Compare {
                    left: Operand::Attrib {
                        path: vec!["city".into()],
                        view: AttribView::Text
                    },
                    op: CompareOp::Eq,
                    right: text("Bengaluru"),
                },
                Predicate::Like {
                    operand: Operand::Field(Field::Name),
                    pattern: vec![LikePart::Text("Test".into()), LikePart::AnyString],
                    negated: false,
                    case_insensitive: false,
                },
            ])
        );
        assert_eq!(
            parse("LOWER(subscribers.email) IN ('x@y.z','A@b.c')").unwrap(),
            Predicate::In {
                operand: Operand::Lower(Box::new(Operand::Field(Field::Email))),
                values: vec![Literal::Text("x@y.z".into()), Literal::Text("A@b.c".into())],
                negated: false,
            }
        );
        assert_eq!(
            parse("subscribers.attribs->'stack'->>'lang' NOT ILIKE '%go\\_%'").unwrap(),
            Predicate::Like {
                operand: Operand::Attrib {
                    path: vec!["stack".into(), "lang".into()],
                    view: AttribView::Text
                },
                pattern: vec![
                    LikePart::AnyString,
                    LikePart::Text("go_".into()),
                    LikePart::AnyString
                ],
                negated: true,
                case_insensitive: true,
            }
        );
        assert_eq!(
            parse("NOT (subscribers.name IS NULL)").unwrap(),
            Predicate::Not(Box::new(Predicate::IsNull {
                operand: Operand::Field(Field::Name),
                negated: false
            }))
        );
        assert_eq!(
            parse("subscribers.id > 5 OR subscribers.status <> 'blocklisted'").unwrap(),
            Predicate::Or(vec![
                Predicate::Compare {
                    left: Operand::Field(Field::Id),
                    op: CompareOp::Gt,
                    right: Operand::Literal(Literal::Integer(5)),
                },
                Predicate::Compare {
                    left: Operand::Field(Field::Status),
                    op: CompareOp::NotEq,
                    right: text("blocklisted"),
                },
            ])
        );
        assert_eq!(
            parse("subscribers.created_at > '2024-01-01'").unwrap(),
            Predicate::Compare {
                left: Operand::Field(Field::CreatedAt),
                op: CompareOp::Gt,
                right: Operand::Literal(Literal::Timestamp(
                    "2024-01-01T00:00:00Z".parse().unwrap()
                )),
            }
        );
        assert_eq!(
            parse("attribs->>'age' > 30").unwrap(),
            Predicate::Compare {
                left: Operand::Attrib {
                    path: vec!["age".into()],
                    view: AttribView::Number
                },
                op: CompareOp::Gt,
                right: Operand::Literal(Literal::Integer(30)),
            }
        );
    }

    #[test]
    fn normalises_sides_chains_and_literals() {
        // A literal on the left is moved right, with the operator flipped.
        assert_eq!(parse("5 < id").unwrap(), parse("id > 5").unwrap(),);
        // Parenthesised chains of the same operator are flattened.
        assert_eq!(
            parse("id = 1 AND (id = 2 AND id = 3)").unwrap(),
            parse("id = 1 AND id = 2 AND id = 3").unwrap(),
        );
        assert_eq!(parse("1 = 1").unwrap(), Predicate::Literal(true));
        assert_eq!(parse("'a' > 'b'").unwrap(), Predicate::Literal(false));
        assert_eq!(parse("TRUE").unwrap(), Predicate::Literal(true));
        assert_eq!(parse("2 IN (1, 2.0)").unwrap(), Predicate::Literal(true));
        assert_eq!(
            parse("\"subscribers\".\"ID\" = 1").map_err(|e| e.0),
            Err("`query`: column `ID` is not supported; use subscribers.id, uuid, email, name, status, created_at, updated_at or attribs->>'key'".into()),
        );
        assert_eq!(
            parse("SUBSCRIBERS.ID = '7'").unwrap(),
            parse("id = 7").unwrap()
        );
        assert_eq!(
            parse("id >= -3").unwrap(),
            Predicate::Compare {
                left: Operand::Field(Field::Id),
                op: CompareOp::GtEq,
                right: Operand::Literal(Literal::Integer(-3)),
            }
        );
        // `->` takes its string as JSON; `->>` as text.
        for (query, view, literal) in [
            (
                "attribs->'n' = '30'",
                AttribView::Number,
                Literal::Integer(30),
            ),
            (
                "attribs->'n' = '\"30\"'",
                AttribView::String,
                Literal::Text("30".into()),
            ),
            (
                "attribs->'n' = 'true'",
                AttribView::Boolean,
                Literal::Boolean(true),
            ),
            (
                "attribs->'n' = 1.5",
                AttribView::Number,
                Literal::Float(1.5),
            ),
            (
                "attribs->>'n' = '30'",
                AttribView::Text,
                Literal::Text("30".into()),
            ),
            (
                "attribs->>'n' <> false",
                AttribView::Boolean,
                Literal::Boolean(false),
            ),
        ] {
            let Predicate::Compare { left, right, .. } = parse(query).unwrap() else {
                panic!("{query}");
            };
            assert_eq!(
                left,
                Operand::Attrib {
                    path: vec!["n".into()],
                    view
                },
                "{query}"
            );
            assert_eq!(right, Operand::Literal(literal), "{query}");
        }
        assert_eq!(
            parse("attribs->'n' IS NOT NULL").unwrap(),
            Predicate::IsNull {
                operand: Operand::Attrib {
                    path: vec!["n".into()],
                    view: AttribView::Json
                },
                negated: true
            }
        );
        assert_eq!(
            parse("created_at < updated_at").unwrap(),
            Predicate::Compare {
                left: Operand::Field(Field::CreatedAt),
                op: CompareOp::Lt,
                right: Operand::Field(Field::UpdatedAt),
            }
        );
        assert_eq!(
            parse("created_at = '2024-05-06T07:08:09.123456789+02:00'").unwrap(),
            Predicate::Compare {
                left: Operand::Field(Field::CreatedAt),
                op: CompareOp::Eq,
                right: Operand::Literal(Literal::Timestamp(
                    "2024-05-06T05:08:09.123456Z".parse().unwrap()
                )),
            }
        );
        assert!(parse("updated_at <= '2024-05-06 07:08:09'").is_ok());
        assert!(parse("status IN ('enabled', 'disabled')").is_ok());
        assert!(parse("status > 'b'").is_ok(), "any string orders");
        assert!(parse("email LIKE '%\\\\%'").is_ok());
    }

    /// The number `query` compares `attribs->>'n'` with.
    fn compared_number(query: &str) -> Literal {
        match parse(query) {
            Ok(Predicate::Compare {
                right: Operand::Literal(literal),
                ..
            }) => literal,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn numbers_are_exact_or_refused() {
        for (written, literal) in [
            ("9007199254740992", Literal::Integer(NUMBER_MAX_EXACT)),
            ("-9007199254740992", Literal::Integer(-NUMBER_MAX_EXACT)),
            (
                "9007199254740992.0",
                Literal::Float(9_007_199_254_740_992.0),
            ),
            (
                "9.007199254740992e15",
                Literal::Float(9_007_199_254_740_992.0),
            ),
            ("0.1", Literal::Float(0.1)),
            ("0.10", Literal::Float(0.1)),
            ("00.100e0", Literal::Float(0.1)),
            (".5", Literal::Float(0.5)),
            ("5.", Literal::Float(5.0)),
            ("1.5e3", Literal::Float(1500.0)),
            ("15E-1", Literal::Float(1.5)),
            ("0.30000000000000004", Literal::Float(0.1 + 0.2)),
            ("5e-324", Literal::Float(5e-324)),
            (
                "2.2250738585072014e-308",
                Literal::Float(2.225_073_858_507_201_4e-308),
            ),
            ("-0", Literal::Integer(0)),
            ("0e999999999999999999999", Literal::Float(0.0)),
        ] {
            for query in [
                format!("attribs->>'n' = {written}"),
                format!("attribs->'n' = '{written}'"),
            ] {
                if query.contains("'.5'") || query.contains("'5.'") || query.contains("'00.") {
                    continue; // Not JSON.
                }
                assert_eq!(compared_number(&query), literal, "{query}");
            }
        }
        // `-0.0` is 0, never a negative zero.
        for query in [
            "attribs->>'n' = -0.0",
            "attribs->'n' = '-0.0'",
            "attribs->>'n' = -0e3",
        ] {
            let Literal::Float(zero) = compared_number(query) else {
                panic!("{query}")
            };
            assert!(zero == 0.0 && zero.is_sign_positive(), "{query}");
        }
        for (written, says) in [
            (
                "9007199254740993",
                "at most 9007199254740992 (2^53) in magnitude",
            ),
            (
                "-9007199254740993",
                "at most 9007199254740992 (2^53) in magnitude",
            ),
            (
                "18446744073709551615",
                "at most 9007199254740992 (2^53) in magnitude",
            ),
            ("1e16", "at most 9007199254740992 (2^53) in magnitude"),
            (
                "9007199254740993.5",
                "at most 9007199254740992 (2^53) in magnitude",
            ),
            ("1e308", "at most 9007199254740992 (2^53) in magnitude"),
            (
                "0.30000000000000001",
                "not the shortest decimal of a 64-bit float; write 0.3",
            ),
            ("0.1000000000000000055511151231257827", "; write 0.1"),
            ("4503599627370496.5", "; write 4503599627370496.0"),
            ("9007199254740992.5", "; write 9007199254740992.0"),
            // Two decimals of 17 digits read as this float; serde_json writes the nearer, ….2.
            ("-1971866499975272.3", "; write -1971866499975272.2"),
            ("1e-400", "; write 0.0"),
            ("2e-324", "; write 0.0"),
        ] {
            for query in [
                format!("attribs->>'n' = {written}"),
                format!("attribs->'n' IN ('{written}')"),
                format!("{written} > 1"),
                format!("attribs->>'n' IN (1, {written})"),
            ] {
                let message = err(&query);
                assert!(
                    message.starts_with(&format!(
                        "`query`: the number {written} cannot be compared exactly: "
                    )) && message.contains(says),
                    "{query}: {message}"
                );
            }
        }
        // `id` is a bigint column, compared exactly on both backends: every `i64` is fine.
        assert!(parse("id = 9223372036854775807").is_ok());
        assert!(parse("id = -9007199254740993").is_ok());
        // Literals compared with each other are exact too.
        assert_eq!(parse("0.3 = 0.30").unwrap(), Predicate::Literal(true));
        assert_eq!(parse("-0.0 = 0").unwrap(), Predicate::Literal(true));
        assert_eq!(
            parse("9007199254740992 > 9007199254740991.0").unwrap(),
            Predicate::Literal(true)
        );
    }

    #[test]
    fn decimals_are_read_exactly() {
        assert_eq!(decimal("-12.5e3"), Some((true, "125".into(), 5)));
        assert_eq!(decimal("0.00125"), Some((false, "125".into(), -2)));
        assert_eq!(decimal("1.25e-2"), decimal("0.0125"));
        assert_eq!(decimal("-0.0"), Some((false, String::new(), 0)));
        assert_eq!(decimal("100"), decimal("1e2"));
        assert_ne!(decimal("100"), decimal("1e3"));
        for bad in [
            "",
            ".",
            "e5",
            "1e",
            "1.2.3",
            "0x10",
            "1_000",
            "inf",
            "1e99999999999999999999",
        ] {
            assert_eq!(decimal(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_float_within_the_bound_is_accepted_as_serde_json_writes_it(
            n in -9.007_199_254_740_992e15f64..9.007_199_254_740_992e15,
        ) {
            let query = format!("attribs->>'n' < {}", float_text(n));
            let literal = compared_number(&query);
            prop_assert!(
                literal == Literal::Float(n) || literal == Literal::Integer(n as i64),
                "{}: {:?}", query, literal
            );
            // Written otherwise (Rust's own shortest decimal may be the other of two as short), it is the same
            // decimal or refused with the one to write.
            let other = format!("attribs->>'n' < {n:e}");
            match parse(&other) {
                Ok(_) => prop_assert_eq!(decimal(&format!("{n:e}")), decimal(&float_text(n))),
                Err(e) => prop_assert!(e.0.ends_with(&format!("write {}", float_text(n))), "{}", e.0),
            }
        }
    }

    #[test]
    fn like_patterns_follow_postgres_escapes() {
        assert_eq!(
            like_pattern("a\\%b%%_\\\\").unwrap(),
            vec![
                LikePart::Text("a%b".into()),
                LikePart::AnyString,
                LikePart::AnyChar,
                LikePart::Text("\\".into()),
            ]
        );
        assert!(err("name LIKE 'abc\\'").contains("escape character"));
        // Patterns on `email` are lowercased, as addresses are stored.
        let Predicate::Like { pattern, .. } = parse("email LIKE 'A%'").unwrap() else {
            panic!()
        };
        assert_eq!(
            pattern,
            vec![LikePart::Text("a".into()), LikePart::AnyString]
        );
    }

    #[test]
    fn names_what_is_not_supported() {
        for (query, message) in [
            (
                "id IN (SELECT id FROM users)",
                "`query`: sub-queries are not supported",
            ),
            (
                "EXISTS (SELECT 1)",
                "`query`: sub-queries are not supported",
            ),
            (
                "email = (SELECT email FROM users LIMIT 1)",
                "`query`: sub-queries are not supported",
            ),
            (
                "password = 'x'",
                "`query`: column `password` is not supported; use subscribers.id, uuid, email, name, status, created_at, updated_at or attribs->>'key'",
            ),
            (
                "lists.name = 'x'",
                "`query`: table `lists` is not supported; only subscribers' columns are",
            ),
            (
                "id = 1; DROP TABLE lists",
                "`query`: `;` is not supported: give one expression",
            ),
            ("id = 1 -- x", "`query`: comments are not supported"),
            ("id = 1 /* x */", "`query`: comments are not supported"),
            ("id::text = '1'", "`query`: casts are not supported"),
            ("CAST(id AS text) = '1'", "`query`: casts are not supported"),
            ("id = $1", "`query`: placeholders are not supported"),
            (
                "pg_sleep(10) IS NULL",
                "`query`: function `pg_sleep` is not supported; only LOWER(column) is",
            ),
            (
                "upper(name) = 'X'",
                "`query`: function `upper` is not supported; only LOWER(column) is",
            ),
            (
                "name LIKE 'a!%' ESCAPE '!'",
                "`query`: LIKE … ESCAPE is not supported; `\\` escapes `%`, `_` and itself",
            ),
            (
                "id BETWEEN 1 AND 2",
                "`query`: BETWEEN is not supported; use >= and <=",
            ),
            (
                "name || 'x' = 'y'",
                "`query`: operator `||` is not supported",
            ),
            ("name ~ 'x'", "`query`: operator `~` is not supported"),
            (
                "email = NULL",
                "`query`: NULL cannot be compared; use IS NULL or IS NOT NULL",
            ),
            (
                "status = 'blacklisted'",
                "`query`: unknown status 'blacklisted'; use enabled, disabled or blocklisted",
            ),
            (
                "uuid = 'nope'",
                "`query`: `uuid` compares with a UUID such as '5e2b3c0a-…', not 'nope'",
            ),
            (
                "created_at > 'yesterday'",
                "`query`: `created_at` compares with a date ('2024-01-01') or an RFC 3339 timestamp ('2024-01-01T10:00:00Z'), not 'yesterday'",
            ),
            ("id = 1.5", "`query`: `id` is a whole number, not 1.5"),
            (
                "name = 5",
                "`query`: cannot compare `name` with the number 5",
            ),
            ("id = email", "`query`: cannot compare `id` with `email`"),
            (
                "email",
                "`query`: `email` is not a condition; compare it with a value",
            ),
            (
                "attribs = '{}'",
                "`query`: `attribs` needs a key: attribs->>'key' (text) or attribs->'key' (JSON)",
            ),
            (
                "attribs->>'a'->>'b' = 'x'",
                "`query`: `->>` yields text, which has no keys: only the last step may be `->>`",
            ),
            (
                "attribs->'a' LIKE 'x'",
                "`query`: `attribs->'a'` yields JSON; use ->> for its text",
            ),
            (
                "attribs->'a' = 'x'",
                "`query`: `->` yields JSON, so 'x' must be JSON (such as '\"text\"'); use ->> to compare text",
            ),
            (
                "attribs->1 = 'x'",
                "`query`: attribs keys must be '…' strings",
            ),
            (
                "name->>'a' = 'x'",
                "`query`: `->` and `->>` apply to subscribers.attribs only, not `name`",
            ),
            (
                "id LIKE '1%'",
                "`query`: LIKE applies to text (email, name, status, LOWER(…) or attribs->>'key'), not `id`",
            ),
            (
                "LOWER(id) = '1'",
                "`query`: LOWER applies to text (email, name, status or attribs->>'key'), not `id`",
            ),
            (
                "LOWER(name, email) = 'x'",
                "`query`: LOWER takes exactly one column",
            ),
            ("id IN (1, 'a')", "`query`: `id` is a whole number, not 'a'"),
            (
                "attribs->>'a' IN (1, 'a')",
                "`query`: the values in IN (…) must all be of one type (strings, numbers or booleans)",
            ),
            (
                "id IN (email)",
                "`query`: IN (…) takes literal values, not `email`",
            ),
            (
                "name = E'x'",
                "`query`: the literal `E'x'` is not supported; use '…' strings, numbers, TRUE or FALSE",
            ),
            (
                "id = 1 id = 2",
                "`query`: unexpected `id` after the expression",
            ),
            ("", "`query`: is empty"),
            (
                "CASE WHEN id = 1 THEN TRUE END",
                "`query`: CASE is not supported",
            ),
            (
                "name IS TRUE",
                "`query`: IS TRUE, IS FALSE and IS UNKNOWN are not supported",
            ),
            (
                "created_at > DATE '2024-01-01'",
                "`query`: typed literals (such as DATE '…') are not supported; use a plain '…' string",
            ),
            (
                "id = ANY(ARRAY[1])",
                "`query`: ANY and ALL are not supported; use IN (…)",
            ),
            (
                "name = 'a' COLLATE \"C\"",
                "`query`: COLLATE is not supported",
            ),
        ] {
            assert_eq!(err(query), message, "{query}");
        }
        assert!(err("id = ").starts_with("`query`: not a valid expression: "));
        assert!(err("name = 'unterminated").starts_with("`query`: not a valid expression: "));
    }

    #[test]
    fn bounds_are_checked_before_parsing() {
        let long = format!("name = '{}'", "x".repeat(EXPRESSION_MAX_CHARS));
        assert_eq!(
            err(&long),
            format!("`query`: must be at most {EXPRESSION_MAX_CHARS} characters")
        );
        // A flat chain of 200,000 terms: refused by its length, never parsed.
        let chain = vec!["id = 1"; 200_000].join(" AND ");
        assert!(err(&chain).contains("at most"));
        // `id IN (1,…,1)` with n values is 2n + 3 tokens.
        let list = |n: usize| format!("id IN ({})", vec!["1"; n].join(","));
        let over = list((EXPRESSION_MAX_TOKENS - 2) / 2);
        assert!(over.len() <= EXPRESSION_MAX_CHARS);
        assert_eq!(
            err(&over),
            format!(
                "`query`: must have at most {EXPRESSION_MAX_TOKENS} tokens (words, values and operators)"
            )
        );
        assert!(parse(&list((EXPRESSION_MAX_TOKENS - 3) / 2)).is_ok());
        let deep = format!(
            "{}id = 1{}",
            "(".repeat(EXPRESSION_MAX_DEPTH + 1),
            ")".repeat(EXPRESSION_MAX_DEPTH + 1)
        );
        assert_eq!(err(&deep), too_deep().0);
        let fits = format!(
            "{}id = 1{}",
            "(".repeat(EXPRESSION_MAX_DEPTH),
            ")".repeat(EXPRESSION_MAX_DEPTH)
        );
        assert!(parse(&fits).is_ok());
        let nots = format!("{}id = 1", "NOT ".repeat(EXPRESSION_MAX_DEPTH + 1));
        assert_eq!(err(&nots), too_deep().0);
        let many_nots = format!("{}id = 1", "NOT ".repeat(400));
        assert!(err(&many_nots).starts_with("`query`: "));
        let path = format!("attribs{} = 'x'", "->'k'".repeat(ATTRIB_PATH_MAX_KEYS + 1));
        assert!(err(&path).contains("at most 8 keys"));
        let key = format!("attribs->>'{}' = 'x'", "k".repeat(ATTRIB_KEY_MAX_CHARS + 1));
        assert!(err(&key).contains("attribs keys"));
        assert!(err("attribs->>'a\"b' = 'x'").contains("attribs keys"));
        assert!(
            parse(&format!(
                "attribs->>'{}' = 'x'",
                "é".repeat(ATTRIB_KEY_MAX_CHARS)
            ))
            .is_ok()
        );
    }

    /// SQL-ish fragments, including injection attempts, for the property tests.
    const FRAGMENTS: &[&str] = &[
        "subscribers.",
        "email",
        "name",
        "id",
        "uuid",
        "status",
        "created_at",
        "updated_at",
        "attribs",
        "password",
        "lists.",
        "->",
        "->>",
        "'k'",
        "'stack'",
        "=",
        "<>",
        "!=",
        "<",
        "<=",
        ">",
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
        "'A%'",
        "'%_\\'",
        "5",
        "-3",
        "1.5e3",
        "TRUE",
        "FALSE",
        "'2024-01-01'",
        "'enabled'",
        "'blocklisted'",
        "'0b8c6f7a-5d2e-4c3b-9a1f-2e3d4c5b6a79'",
        "1=1; DROP TABLE lists",
        "' OR '1'='1",
        "--",
        "/*",
        "*/",
        "pg_sleep(10)",
        "SELECT",
        "FROM",
        "UNION",
        "::text",
        "$1",
        "?",
        ";",
        "'",
        "\"",
        "E'\\x'",
        "$$",
        "CAST(",
        "AS",
        "ESCAPE",
        "'\"x\"'",
        "'30'",
        "||",
        "*",
        "attribs->'a'->>'b'",
        "sqlite_master",
        "'; DELETE FROM subscribers; --",
        "\\",
        "COLLATE",
        "json_extract(",
        "É",
        "\u{0}",
    ];

    fn sqlish() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40)
            .prop_map(|parts| parts.join(" "))
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(text in ".{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_sql_fragments(text in sqlish()) {
            if let Err(e) = parse(&text) {
                prop_assert!(e.0.starts_with("`query`: "));
            }
        }

        #[test]
        fn never_panics_on_deep_or_long_input(depth in 0usize..200, terms in 1usize..2_000) {
            let nested = format!("{}id = 1{}", "(".repeat(depth), ")".repeat(depth));
            prop_assert_eq!(parse(&nested).is_ok(), depth <= EXPRESSION_MAX_DEPTH);
            let chain = vec!["id = 1"; terms].join(" AND ");
            let _ = parse(&chain);
        }
    }

    #[test]
    fn survives_a_huge_chain() {
        // 100,000 terms: refused by length before any tokenizing, let alone parsing.
        let chain = vec!["email = 'a@b.c'"; 100_000].join(" OR ");
        assert!(parse(&chain).is_err());
        let unbalanced = "(".repeat(100_000);
        assert!(parse(&unbalanced).is_err());
    }
}
