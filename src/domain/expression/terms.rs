//! What a value is before it is typed by what it is compared with, and the messages that quote it.

use super::*;

/// The kinds of values, for checking what may be compared with what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Integer,
    Uuid,
    Text,
    Timestamp,
    Json,
}

/// A value as written, before it is typed by what it is compared with.
#[derive(Debug, Clone)]
pub(super) enum Term {
    Field(Field),
    Attrib { path: Vec<String>, as_text: bool },
    Lower(Box<Term>),
    Literal(Raw),
}

#[derive(Debug, Clone)]
pub(super) enum Raw {
    Text(String),
    /// As written, with its sign.
    Number(String),
    Boolean(bool),
    Null,
}

impl Term {
    pub(super) fn class(&self) -> Option<Class> {
        match self {
            Term::Field(field) => Some(field.class()),
            Term::Attrib { as_text: true, .. } | Term::Lower(_) => Some(Class::Text),
            Term::Attrib { as_text: false, .. } => Some(Class::Json),
            Term::Literal(_) => None,
        }
    }

    /// The operand of a non-literal term, with attributes read as written (`->` JSON, `->>` text).
    pub(super) fn operand(&self) -> Operand {
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
    pub(super) fn describe(&self) -> String {
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
    pub(super) fn describe(&self) -> String {
        match self {
            Raw::Text(s) => format!("the string '{}'", shown(s)),
            Raw::Number(n) => format!("the number {}", shown(n)),
            Raw::Boolean(b) => (if *b { "TRUE" } else { "FALSE" }).to_owned(),
            Raw::Null => "NULL".into(),
        }
    }
}

pub(super) fn error(message: impl std::fmt::Display) -> ValidationError {
    ValidationError(format!("`query`: {message}"))
}

pub(super) fn too_deep() -> ValidationError {
    error(format!(
        "is nested too deeply (at most {EXPRESSION_MAX_DEPTH} levels of parentheses, NOT and LOWER)"
    ))
}

/// Caller text quoted in a message, cut short so that messages stay small.
pub(super) fn shown(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

pub(super) const COLUMNS_HINT: &str =
    "use subscribers.id, uuid, email, name, status, created_at, updated_at or attribs->>'key'";
