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

mod syntax;
mod terms;
#[cfg(test)]
mod tests;
mod values;

use syntax::*;
use terms::*;
use values::*;

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
