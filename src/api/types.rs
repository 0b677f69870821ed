//! Scalar types whose wire form or schema poem-openapi does not provide out of the box.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde_json::Value;

use crate::domain::{
    ATTRIBS_MAX_BYTES, ATTRIBS_MAX_DEPTH, ATTRIBS_MAX_VALUES, DESCRIPTION_MAX_CHARS,
    EMAIL_MAX_BYTES, NAME_MAX_CHARS, PAGE_MAX, TAG_MAX_CHARS, TAGS_MAX,
};

/// Implements `Type` for a scalar newtype with an inline schema.
macro_rules! scalar_type {
    ($ty:ty, $name:literal, $schema:expr) => {
        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Inline(Box::new($schema))
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }
    };
}

/// A timestamp in the documented wire format `2019-01-01T09:00:00.000000+00:00`: always six fractional digits and
/// a numeric offset (never `Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp(pub DateTime<Utc>);

scalar_type!(Timestamp, "timestamp", {
    let mut schema = MetaSchema::new_with_format("string", "date-time");
    // Timestamps are the server's own (never read from a client), all within years 0-9999: always 32 characters.
    schema.min_length = Some(WIRE_LEN);
    schema.max_length = Some(WIRE_LEN);
    schema.example = Some(Value::String("2020-03-07T06:31:06.072483+00:00".into()));
    schema
});

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_wire(|text| serializer.serialize_str(text))
    }
}

/// The length of `2019-01-01T09:00:00.000000+00:00`.
const WIRE_LEN: usize = 32;

impl Timestamp {
    fn wire(&self) -> String {
        self.with_wire(str::to_owned)
    }

    /// Calls `f` with the wire form: from a stack buffer, or from chrono where `write_wire` hands over.
    pub fn with_wire<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let mut buf = [0; WIRE_LEN];
        match self.write_wire(&mut buf) {
            Some(text) => f(text),
            None => f(&self
                .0
                .fixed_offset()
                .to_rfc3339_opts(SecondsFormat::Micros, false)),
        }
    }

    /// The wire form written digit by digit, as chrono writes it (microseconds truncated), or `None` for the
    /// years and leap seconds it writes differently. A 500-subscriber page holds 11,000 timestamps, and chrono's
    /// general formatter was half of the time it took to serialise one.
    fn write_wire<'a>(&self, buf: &'a mut [u8; WIRE_LEN]) -> Option<&'a str> {
        use chrono::{Datelike, Timelike};
        let t = self.0.naive_utc();
        let (year, nanos) = (t.year(), t.nanosecond());
        if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
            return None;
        }
        let fields: [(u32, usize); 7] = [
            (year as u32, 4),
            (t.month(), 2),
            (t.day(), 2),
            (t.hour(), 2),
            (t.minute(), 2),
            (t.second(), 2),
            (nanos / 1_000, 6),
        ];
        let mut at = 0;
        for ((value, width), separator) in fields.into_iter().zip(*b"--T::.+") {
            let mut rest = value;
            for slot in buf[at..at + width].iter_mut().rev() {
                *slot = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            buf[at + width] = separator;
            at += width + 1;
        }
        buf[at..].copy_from_slice(b"00:00");
        std::str::from_utf8(buf).ok()
    }
}

impl ToJSON for Timestamp {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.wire()))
    }
}

impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(&s)
                .map(|t| Timestamp(t.with_timezone(&Utc)))
                .map_err(ParseError::custom),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

/// `per_page`: a positive number of rows, or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerPage {
    Rows(u64),
    All,
}

const PER_PAGE_PATTERN: &str = "^(all|[1-9][0-9]{0,8})$";

scalar_type!(PerPage, "per_page", {
    let mut schema = MetaSchema::new("string");
    // `all` or at most 9 digits: the pattern's own bound.
    schema.max_length = Some(9);
    schema.pattern = Some(PER_PAGE_PATTERN.into());
    schema.example = Some(Value::String("20".into()));
    schema
});

impl ParseFromParameter for PerPage {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        if value == "all" {
            return Ok(PerPage::All);
        }
        match value.parse::<u64>() {
            // Exactly the spec's pattern: digits only, no sign, no leading zero.
            Ok(n)
                if (1..=PAGE_MAX).contains(&n)
                    && value.starts_with(|c: char| matches!(c, '1'..='9')) =>
            {
                Ok(PerPage::Rows(n))
            }
            _ => Err(ParseError::custom(format!(
                "must be a whole number from 1 to {PAGE_MAX}, or `all`"
            ))),
        }
    }
}

impl ToJSON for PerPage {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(match self {
            PerPage::Rows(n) => n.to_string(),
            PerPage::All => "all".into(),
        }))
    }
}

/// Sort direction, `asc` or `desc` in either case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortOrder(pub crate::domain::Direction);

// A pattern rather than an enum: an enum of `asc`/`ASC` makes SDK generators emit clashing constant names.
const SORT_ORDER_PATTERN: &str = "^(asc|desc|ASC|DESC)$";

scalar_type!(SortOrder, "sort_order", {
    let mut schema = MetaSchema::new("string");
    schema.max_length = Some(4);
    schema.pattern = Some(SORT_ORDER_PATTERN.into());
    schema.example = Some(Value::String("desc".into()));
    schema
});

impl ParseFromParameter for SortOrder {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        use crate::domain::Direction;
        match value {
            "asc" | "ASC" => Ok(SortOrder(Direction::Asc)),
            "desc" | "DESC" => Ok(SortOrder(Direction::Desc)),
            _ => Err(ParseError::custom("must be `asc` or `desc` (either case)")),
        }
    }
}

impl ToJSON for SortOrder {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(
            match self.0 {
                crate::domain::Direction::Asc => "asc",
                crate::domain::Direction::Desc => "desc",
            }
            .into(),
        ))
    }
}

/// A tag in a filter: up to 100 characters (longer ones could match no list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterTag(pub String);

scalar_type!(FilterTag, "filter_tag", {
    let mut schema = MetaSchema::new("string");
    schema.max_length = Some(TAG_MAX_CHARS);
    schema
});

impl ParseFromParameter for FilterTag {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        if value.chars().count() > TAG_MAX_CHARS {
            return Err(ParseError::custom(format!(
                "a tag is at most {TAG_MAX_CHARS} characters"
            )));
        }
        Ok(FilterTag(value.to_owned()))
    }
}

impl ToJSON for FilterTag {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

impl AsRef<str> for FilterTag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters (see `idempotency.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(pub String);

impl IdempotencyKey {
    pub const MAX_CHARS: usize = 255;

    pub fn parse(value: &str) -> Option<Self> {
        ((1..=Self::MAX_CHARS).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| Self(value.to_owned()))
    }
}

scalar_type!(IdempotencyKey, "idempotency_key", {
    let mut schema = MetaSchema::new("string");
    (schema.min_length, schema.max_length) = (Some(1), Some(IdempotencyKey::MAX_CHARS));
    schema.pattern = Some("^[\\x21-\\x7E]+$".into());
    schema
});

impl ParseFromParameter for IdempotencyKey {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Self::parse(value).ok_or_else(|| {
            ParseError::custom(format!(
                "Idempotency-Key must be 1 to {} visible ASCII characters",
                Self::MAX_CHARS
            ))
        })
    }
}

impl ToJSON for IdempotencyKey {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// Defines an id type: a positive 64-bit integer, refused with a message naming what it identifies.
macro_rules! positive_id {
    ($(#[$meta:meta])* $ty:ident, $name:literal, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $ty(pub i64);

        scalar_type!($ty, $name, {
            let mut schema = MetaSchema::new_with_format("integer", "int64");
            schema.minimum = Some(1.0);
            schema.maximum = Some(i64::MAX as f64);
            schema.example = Some(Value::from(5));
            schema
        });

        impl ParseFromParameter for $ty {
            fn parse_from_parameter(value: &str) -> ParseResult<Self> {
                match value.parse::<i64>() {
                    Ok(id) if id >= 1 && !value.starts_with('+') => Ok($ty(id)),
                    _ => Err(ParseError::custom(format!(
                        "`{}` is not a valid {} id: ids are whole numbers from 1 to {}",
                        value.chars().take(40).collect::<String>(),
                        $what,
                        i64::MAX
                    ))),
                }
            }
        }

        impl ToJSON for $ty {
            fn to_json(&self) -> Option<Value> {
                Some(Value::from(self.0))
            }
        }

        /// In a JSON body, the same rule as in a parameter.
        impl ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::Number(n)) if n.as_i64().is_some_and(|id| id >= 1) => {
                        Ok($ty(n.as_i64().unwrap_or_default()))
                    }
                    Some(Value::Number(n)) => Err(ParseError::custom(format!(
                        "{n} is not a valid {} id: ids are whole numbers from 1 to {}",
                        $what,
                        i64::MAX
                    ))),
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
            }
        }
    };
}

positive_id!(
    /// A list id: a positive 64-bit integer.
    ListId,
    "list_id",
    "list"
);
positive_id!(
    /// A subscriber id: a positive 64-bit integer.
    SubscriberId,
    "subscriber_id",
    "subscriber"
);

/// A UUID in its hyphenated form of 36 characters, the only form read (so that the schema's `maxLength` is the
/// code's bound) and the one written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WireUuid(pub uuid::Uuid);

/// The length of `ce13e971-c2ed-4069-bd0c-240e9a9f56f9`.
const UUID_LEN: usize = 36;

scalar_type!(WireUuid, "uuid", {
    let mut schema = MetaSchema::new_with_format("string", "uuid");
    schema.max_length = Some(UUID_LEN);
    schema
});

impl ParseFromJSON for WireUuid {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) if s.len() == UUID_LEN => uuid::Uuid::parse_str(&s)
                .map(WireUuid)
                .map_err(ParseError::custom),
            Some(Value::String(_)) => Err(ParseError::custom(
                "a UUID is 36 characters: 8-4-4-4-12 hexadecimal digits",
            )),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for WireUuid {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.hyphenated().to_string()))
    }
}

impl serde::Serialize for WireUuid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// A count of rows: from 0 to `i64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Count(pub i64);

scalar_type!(Count, "count", {
    let mut schema = MetaSchema::new_with_format("integer", "int64");
    schema.minimum = Some(0.0);
    schema.maximum = Some(i64::MAX as f64);
    schema
});

impl ParseFromJSON for Count {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.as_ref().and_then(Value::as_i64) {
            Some(n) if n >= 0 => Ok(Count(n)),
            _ => Err(ParseError::expected_type(value.unwrap_or_default())),
        }
    }
}

impl ToJSON for Count {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0))
    }
}

/// A string field whose limits are published in the schema but checked by the list rules, so that a
/// well-formed request that breaks them gets 422 with a precise message, whatever its media type.
macro_rules! checked_string {
    ($(#[$meta:meta])* $ty:ident, $name:literal, min = $min:expr, max = $max:expr, pattern = $pattern:expr) => {
        checked_string!($(#[$meta])* $ty, $name, min = $min, max = $max, pattern = $pattern, format = None);
    };
    ($(#[$meta:meta])* $ty:ident, $name:literal, min = $min:expr, max = $max:expr, pattern = $pattern:expr, format = $format:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty(pub String);

        scalar_type!($ty, $name, {
            let mut schema = MetaSchema::new("string");
            schema.format = $format;
            schema.min_length = $min;
            schema.max_length = Some($max);
            schema.pattern = $pattern;
            schema
        });

        impl ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::String(s)) => Ok($ty(s)),
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
            }
        }

        impl ToJSON for $ty {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }
    };
}

/// No NUL characters (Postgres cannot store them).
const NO_NUL: &str = r"^[^\u0000]*$";

/// No NUL characters, and at least one character that is not whitespace by Rust's `char::is_whitespace`
/// (Unicode White_Space), which is what trimming removes.
const NAME_PATTERN: &str = r"^[^\u0000]*[^\u0000\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$";

checked_string!(
    /// A list name: 1–2000 characters, not only whitespace.
    NameText, "list_name", min = Some(1), max = NAME_MAX_CHARS, pattern = Some(NAME_PATTERN.into())
);
checked_string!(
    /// A tag: up to 100 characters.
    TagText, "list_tag", min = None, max = TAG_MAX_CHARS, pattern = Some(NO_NUL.into())
);
checked_string!(
    /// A description: up to 65,536 characters.
    DescriptionText, "list_description", min = None, max = DESCRIPTION_MAX_CHARS, pattern = Some(NO_NUL.into())
);
checked_string!(
    /// An e-mail address: trimmed, at most 254 bytes, a bare address (`a@example.com`).
    EmailText, "subscriber_email", min = Some(1), max = EMAIL_MAX_BYTES, pattern = Some(NO_NUL.into()), format = Some("email")
);
checked_string!(
    /// A subscriber's name: up to 2000 characters; blank means the e-mail's local part.
    SubscriberNameText, "subscriber_name", min = None, max = NAME_MAX_CHARS, pattern = Some(NO_NUL.into())
);

/// A subscriber's attributes: any JSON object, at most 65,536 bytes, 16 levels deep and 1,024 values. Any JSON value is read,
/// so that the subscriber rules can refuse a non-object with 422 and a precise message.
#[derive(Debug, Clone, PartialEq)]
pub struct AttribsObject(pub Value);

// openapi.yaml's description of `attribs` states these bounds.
const _: () =
    assert!(ATTRIBS_MAX_BYTES == 65_536 && ATTRIBS_MAX_DEPTH == 16 && ATTRIBS_MAX_VALUES == 1024);

impl AttribsObject {
    fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new("object");
        schema.additional_properties =
            Some(Box::new(MetaSchemaRef::Inline(Box::new(MetaSchema::ANY))));
        schema.example = Some(serde_json::json!({"city": "Bengaluru", "projects": 3}));
        schema
    }
}

scalar_type!(AttribsObject, "subscriber_attribs", AttribsObject::schema());

impl ParseFromJSON for AttribsObject {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Ok(AttribsObject(value.unwrap_or_default()))
    }
}

impl ToJSON for AttribsObject {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.clone())
    }
}

/// [`AttribsObject`] where `null` means something (PATCH: clear the attributes), so the schema says `nullable`.
#[derive(Debug, Clone, PartialEq)]
pub struct NullableAttribs(pub Value);

scalar_type!(NullableAttribs, "subscriber_attribs_or_null", {
    let mut schema = AttribsObject::schema();
    schema.nullable = true;
    schema
});

impl ParseFromJSON for NullableAttribs {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Ok(NullableAttribs(value.unwrap_or_default()))
    }
}

impl ToJSON for NullableAttribs {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.clone())
    }
}

/// The tags sent for a list: at most 100, each checked by the list rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagList(pub Vec<TagText>);

scalar_type!(TagList, "list_tags", {
    let mut schema = MetaSchema::new("array");
    schema.items = Some(Box::new(TagText::schema_ref()));
    schema.max_items = Some(TAGS_MAX);
    schema
});

impl ParseFromJSON for TagList {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| TagText::parse_from_json(Some(item)).map_err(ParseError::propagate))
                .collect::<Result<_, _>>()
                .map(TagList),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for TagList {
    fn to_json(&self) -> Option<Value> {
        Some(Value::Array(
            self.0.iter().filter_map(ToJSON::to_json).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_always_carry_six_digits_and_a_numeric_offset() {
        let t = Utc.with_ymd_and_hms(2020, 3, 7, 6, 31, 6).unwrap();
        assert_eq!(
            Timestamp(t).to_json(),
            Some(Value::String("2020-03-07T06:31:06.000000+00:00".into()))
        );
    }

    #[test]
    fn per_page_accepts_positive_numbers_and_all_only() {
        assert_eq!(PerPage::parse_from_parameter("all").unwrap(), PerPage::All);
        assert_eq!(
            PerPage::parse_from_parameter("20").unwrap(),
            PerPage::Rows(20)
        );
        for bad in [
            "0",
            "-1",
            "+5",
            "1.5",
            "01",
            "ALL",
            "",
            "1000000000",
            "99999999999999999999999",
        ] {
            assert!(PerPage::parse_from_parameter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_ids_must_be_positive_integers() {
        assert_eq!(ListId::parse_from_parameter("5").unwrap(), ListId(5));
        for bad in ["0", "-3", "abc", "1e3", "99999999999999999999", "+1"] {
            assert!(ListId::parse_from_parameter(bad).is_err(), "{bad}");
        }
    }

    mod properties {
        use super::super::*;
        use chrono::TimeZone;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn per_page_is_accepted_exactly_when_it_matches_the_spec_pattern(
                value in prop_oneof!["[0-9+\\-a-z ]{0,12}", "(all|[1-9][0-9]{0,9})"],
            ) {
                let pattern = regex::Regex::new(PER_PAGE_PATTERN).unwrap();
                prop_assert_eq!(PerPage::parse_from_parameter(&value).is_ok(), pattern.is_match(&value));
            }

            #[test]
            fn timestamps_are_written_as_chrono_writes_them(
                seconds in prop_oneof![
                    -1_000_000_000_000i64..1_000_000_000_000,
                    // Around the years 0 and 9999, where the digit-by-digit writer hands over to chrono.
                    -62_167_219_300i64..-62_167_219_100,
                    253_402_300_700i64..253_402_300_900,
                ],
                nanos in prop_oneof![0u32..1_000_000_000, 1_000_000_000u32..2_000_000_000],
            ) {
                // Nanoseconds of 10⁹ and more are how chrono marks a leap second; it allows them only at :59.
                let at = Utc.timestamp_opt(seconds - seconds.rem_euclid(60) + 59, nanos)
                    .single()
                    .or_else(|| Utc.timestamp_opt(seconds, nanos % 1_000_000_000).single());
                if let Some(at) = at {
                    let by_chrono = at.fixed_offset().to_rfc3339_opts(SecondsFormat::Micros, false);
                    prop_assert_eq!(Timestamp(at).wire(), by_chrono.clone());
                    prop_assert_eq!(serde_json::to_string(&Timestamp(at)).unwrap(), format!("\"{by_chrono}\""));
                }
            }

            #[test]
            fn list_ids_are_positive_whole_numbers(value in "[-+0-9a-z ]{0,25}") {
                match ListId::parse_from_parameter(&value) {
                    Ok(ListId(id)) => {
                        prop_assert!(id >= 1);
                        prop_assert!(value.bytes().all(|b| b.is_ascii_digit()));
                    }
                    Err(_) => prop_assert!(value.parse::<i64>().map_or(true, |n| n < 1) || value.starts_with('+')),
                }
            }
        }
    }
}
