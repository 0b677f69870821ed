//! Positions in a subscriber listing's order: where a deep page starts, and the `after` cursor clients pass to
//! walk a listing without `OFFSET`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{Direction, SubscriberOrderBy, ValidationError};

/// Longest `after` cursor accepted, in characters: a cursor holds one sort value, at most a name of 2,000
/// characters of up to 4 bytes each, base64-encoded (10,667 characters), and a few short fields.
pub const CURSOR_MAX_CHARS: usize = 12_288;

/// The value a row is sorted by, besides its id (which breaks ties and is the whole key when sorting by id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SortValue {
    /// Sorted by id alone.
    None,
    Text(String),
    Time(DateTime<Utc>),
}

/// Where a row sits in an ordering: the rows before it sort before `(value, id)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SortKey {
    pub value: SortValue,
    pub id: i64,
}

impl SortKey {
    /// Bytes held, to bound what a cache of keys keeps.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
            + match &self.value {
                SortValue::Text(text) => text.len(),
                _ => 0,
            }
    }
}

/// A listing's `after`: the last row a client has seen, in the ordering it was seen in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub order_by: SubscriberOrderBy,
    pub direction: Direction,
    pub key: SortKey,
}

const VERSION: &str = "v1";

fn direction_str(direction: Direction) -> &'static str {
    match direction {
        Direction::Asc => "asc",
        Direction::Desc => "desc",
    }
}

impl Cursor {
    /// The opaque text handed to clients (URL-safe).
    pub fn encode(&self) -> String {
        let value = match &self.key.value {
            SortValue::None => String::new(),
            SortValue::Text(text) => text.clone(),
            SortValue::Time(time) => time.to_rfc3339_opts(SecondsFormat::Micros, true),
        };
        let text = format!(
            "{VERSION}|{}|{}|{}|{value}",
            self.order_by.as_str(),
            direction_str(self.direction),
            self.key.id
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Reads a cursor made by [`Cursor::encode`] for this ordering; anything else is refused.
    pub fn parse(
        text: &str,
        order_by: SubscriberOrderBy,
        direction: Direction,
    ) -> Result<Self, ValidationError> {
        let invalid = || {
            ValidationError(
                "after is not a cursor from this API (pass a page's `next` unchanged)".into(),
            )
        };
        if text.len() > CURSOR_MAX_CHARS {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let decoded = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut fields = decoded.splitn(5, '|');
        let (Some(VERSION), Some(order), Some(dir), Some(id), Some(value)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(invalid());
        };
        if order != order_by.as_str() || dir != direction_str(direction) {
            return Err(ValidationError(format!(
                "after was made for order_by={order}&order={dir}; pass the same order_by and order"
            )));
        }
        // No stored text holds a NUL (PostgreSQL refuses one in a bound value).
        if value.contains('\0') {
            return Err(invalid());
        }
        let id: i64 = id.parse().map_err(|_| invalid())?;
        let value = match order_by {
            SubscriberOrderBy::Id if value.is_empty() => SortValue::None,
            SubscriberOrderBy::Id => return Err(invalid()),
            SubscriberOrderBy::CreatedAt | SubscriberOrderBy::UpdatedAt => SortValue::Time(
                DateTime::parse_from_rfc3339(value)
                    .map_err(|_| invalid())?
                    .with_timezone(&Utc),
            ),
            SubscriberOrderBy::Email | SubscriberOrderBy::Name | SubscriberOrderBy::Status => {
                SortValue::Text(value.to_owned())
            }
        };
        Ok(Self {
            order_by,
            direction,
            key: SortKey { value, id },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(order_by: SubscriberOrderBy, value: SortValue) -> Cursor {
        Cursor {
            order_by,
            direction: Direction::Desc,
            key: SortKey { value, id: 42 },
        }
    }

    #[test]
    fn a_cursor_reads_back_as_it_was_made_for_every_ordering() {
        let time = DateTime::parse_from_rfc3339("2026-12-02T05:44:16.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        for made in [
            cursor(SubscriberOrderBy::Id, SortValue::None),
            cursor(SubscriberOrderBy::UpdatedAt, SortValue::Time(time)),
            cursor(SubscriberOrderBy::Email, SortValue::Text("a|b@c.d".into())),
            cursor(SubscriberOrderBy::Name, SortValue::Text(String::new())),
        ] {
            let text = made.encode();
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            );
            assert_eq!(
                Cursor::parse(&text, made.order_by, made.direction),
                Ok(made)
            );
        }
    }

    #[test]
    fn a_cursor_is_refused_for_another_ordering_or_when_altered() {
        let made = cursor(SubscriberOrderBy::Email, SortValue::Text("a@b.c".into())).encode();
        let other = Cursor::parse(&made, SubscriberOrderBy::Name, Direction::Desc).unwrap_err();
        assert!(other.0.contains("order_by=email&order=desc"), "{other:?}");
        assert!(Cursor::parse(&made, SubscriberOrderBy::Email, Direction::Asc).is_err());
        for bad in ["", "!!", "djE", &"A".repeat(CURSOR_MAX_CHARS + 1)] {
            assert!(Cursor::parse(bad, SubscriberOrderBy::Email, Direction::Desc).is_err());
        }
        let nul = URL_SAFE_NO_PAD.encode("v1|email|desc|1|a\0b");
        assert!(Cursor::parse(&nul, SubscriberOrderBy::Email, Direction::Desc).is_err());
        let not_a_time = URL_SAFE_NO_PAD.encode("v1|updated_at|desc|1|yesterday");
        assert!(Cursor::parse(&not_a_time, SubscriberOrderBy::UpdatedAt, Direction::Desc).is_err());
    }
}
