//! Typing: what a value written in the expression means beside what it is compared with (numbers, timestamps,
//! statuses, JSON), and `LIKE` patterns.

use super::*;

pub(super) fn compare(
    left: Term,
    op: CompareOp,
    right: Term,
) -> Result<Predicate, ValidationError> {
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
pub(super) fn exact_number(text: &str) -> Result<Literal, ValidationError> {
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
pub(super) fn float_text(n: f64) -> String {
    serde_json::Number::from_f64(n).map_or_else(|| n.to_string(), |n| n.to_string())
}

/// The exact value of a decimal number (`-12.5e3`, `.5`, `1.`) as its sign, significant digits (no leading or
/// trailing zeros) and the power of ten of the digits' decimal point (`0.125e5` is `("125", 5)`); zero is
/// `(false, "", 0)` whatever its sign. `None` for text that is not such a number or has a runaway exponent.
pub(super) fn decimal(text: &str) -> Option<(bool, String, i64)> {
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
pub(super) fn number(text: &str) -> Result<Literal, ValidationError> {
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
pub(super) fn fold(a: &Raw, op: CompareOp, b: &Raw) -> Result<bool, ValidationError> {
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

pub(super) fn null_compared() -> ValidationError {
    error("NULL cannot be compared; use IS NULL or IS NOT NULL")
}

/// `term` (not a literal) and `value` typed for it. `exact` is set for `=`, `<>` and `IN`.
pub(super) fn typed(
    term: &Term,
    value: &Raw,
    exact: bool,
) -> Result<(Operand, Literal), ValidationError> {
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
pub(super) fn attrib_literal(
    as_text: bool,
    value: &Raw,
) -> Result<(AttribView, Literal), ValidationError> {
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

pub(super) fn timestamp(field: Field, text: &str) -> Result<DateTime<Utc>, ValidationError> {
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

pub(super) fn in_list(
    operand: Term,
    values: Vec<Raw>,
    negated: bool,
) -> Result<Predicate, ValidationError> {
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

pub(super) fn like(
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
pub(super) fn like_pattern(pattern: &str) -> Result<Vec<LikePart>, ValidationError> {
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
