//! The walk over sqlparser's tree: which nodes are accepted, each turned into a [`Predicate`] or a [`Term`].

use super::*;

/// A condition. `depth` counts the levels of parentheses, `NOT` and `LOWER` around `expr`; every recursive call
/// either raises it or descends into a flattened `AND`/`OR` (whose items cannot be the same operator without
/// parentheses), so recursion stays within a small multiple of [`EXPRESSION_MAX_DEPTH`].
pub(super) fn predicate(expr: &Expr, depth: usize) -> Result<Predicate, ValidationError> {
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
pub(super) fn group(
    expr: &Expr,
    op: &BinaryOperator,
    depth: usize,
) -> Result<Predicate, ValidationError> {
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

pub(super) fn compare_op(op: &BinaryOperator) -> Option<CompareOp> {
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
pub(super) fn term(expr: &Expr, depth: usize) -> Result<Term, ValidationError> {
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

pub(super) enum Column {
    Field(Field),
    Attribs,
}

pub(super) fn ident_is(ident: &Ident, name: &str) -> bool {
    match ident.quote_style {
        None => ident.value.eq_ignore_ascii_case(name),
        // A quoted name is exact, as in PostgreSQL.
        Some('"') => ident.value == name,
        Some(_) => false,
    }
}

pub(super) fn resolve(idents: &[Ident]) -> Result<Column, ValidationError> {
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

pub(super) fn column(idents: &[Ident]) -> Result<Term, ValidationError> {
    match resolve(idents)? {
        Column::Field(field) => Ok(Term::Field(field)),
        Column::Attribs => Err(error(
            "`attribs` needs a key: attribs->>'key' (text) or attribs->'key' (JSON)",
        )),
    }
}

/// `attribs->'a'->…->>'z'`, nested to the left by the parser: walked in a loop, at most
/// [`ATTRIB_PATH_MAX_KEYS`] steps.
pub(super) fn attrib(expr: &Expr) -> Result<Term, ValidationError> {
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

pub(super) fn attrib_base(
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

pub(super) fn attrib_key(expr: &Expr) -> Result<String, ValidationError> {
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

pub(super) fn lower(function: &Function, depth: usize) -> Result<Term, ValidationError> {
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

pub(super) fn raw(value: &Value) -> Result<Raw, ValidationError> {
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
pub(super) fn unsupported(expr: &Expr) -> ValidationError {
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
