//! Request bodies accepted as JSON, URL-encoded form or multipart form data. Every media type is turned into the
//! same JSON object and parsed by the same code, so one set of rules applies whatever the client sends: a form
//! field that is present but empty is an empty string, exactly like `""` in JSON.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::ApiRequest;
use poem_openapi::error::ParseRequestPayloadError;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde_json::{Map, Value};

use super::models::{
    MailingListCreate, MailingListUpdate, PublicSubscriptionForm, PublicSubscriptionJson,
    SubscriberCreate, SubscriberCreateForm, SubscriberIds, SubscriberListsUpdate, SubscriberPatch,
    SubscriberUpdate,
};

/// What a body type tells the parsers about its fields.
pub trait BodyFields {
    /// The fields of the body; anything else is ignored.
    const FIELDS: &'static [&'static str];
    /// The fields a form may carry (by default all of them).
    const FORM_FIELDS: &'static [&'static str] = Self::FIELDS;
    /// Fields that a form repeats once per value (arrays of strings).
    const REPEATED: &'static [&'static str] = &[];
    /// Fields whose `null` means something (PATCH `"attribs": null` clears the attributes, as in listmonk).
    const NULLABLE: &'static [&'static str] = &[];
}

fn media_type_is(content_type: &str, expected: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

fn unreadable(err: impl std::fmt::Display) -> poem::Error {
    ParseRequestPayloadError {
        reason: err.to_string(),
    }
    .into()
}

/// Parses the fields of a body, whatever its media type. `null` is refused for a known field (unless the body
/// type allows it): the schemas do not allow it, and leaving a field out already means "no value". Unknown
/// fields are ignored, whatever their value.
fn parse_fields<T: ParseFromJSON + BodyFields>(value: Value) -> poem::Result<T> {
    if let Value::Object(members) = &value
        && let Some((name, _)) = members.iter().find(|(name, v)| {
            v.is_null()
                && T::FIELDS.contains(&name.as_str())
                && !T::NULLABLE.contains(&name.as_str())
        })
    {
        return Err(unreadable(format!(
            "field `{name}` is null; leave the field out instead"
        )));
    }
    T::parse_from_json(Some(value)).map_err(|err| unreadable(err.into_message()))
}

/// A form's fields as the JSON object they stand for; other fields are ignored, as in JSON bodies. A
/// single-valued field given twice with different values is refused rather than one of them silently kept.
fn form_object<T: BodyFields>(
    pairs: impl IntoIterator<Item = (String, String)>,
) -> poem::Result<Value> {
    let mut object = Map::new();
    for (name, value) in pairs {
        if !T::FORM_FIELDS.contains(&name.as_str()) {
            continue;
        }
        if T::REPEATED.contains(&name.as_str()) {
            if let Value::Array(values) = object
                .entry(name)
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                values.push(Value::String(value));
            }
        } else if let Some(first) = object.get(&name) {
            if first.as_str() != Some(value.as_str()) {
                return Err(unreadable(format!(
                    "field `{name}` is given more than once with different values"
                )));
            }
        } else {
            object.insert(name, Value::String(value));
        }
    }
    Ok(Value::Object(object))
}

/// Parses a JSON body into a value, refusing an object (at any depth, `attribs` included) that has a key more than
/// once: `serde_json` would keep the last silently, while a form repeating a field with different values is
/// refused. Keys are compared once unescaped (`"a"` and `"\u0061"` are the same key).
fn json_value(data: &[u8]) -> poem::Result<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(data);
    let value =
        <StrictValue as serde::Deserialize>::deserialize(&mut deserializer).map_err(unreadable)?;
    deserializer.end().map_err(unreadable)?;
    Ok(value.0)
}

/// A JSON value whose objects have no duplicate keys. Built by the same single pass as `serde_json::Value` (with
/// one map lookup per key), and bounded by the same recursion limit, which the deserializer itself enforces.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        // `-0.0` is `0.0`: PostgreSQL's `jsonb` has no negative zero (its numbers are decimals), so an attribute
        // stored as `-0.0` would read back, and compare as text, differently on SQLite.
        let n = if n == 0.0 { 0.0 } else { n };
        // JSON text has no NaN or infinity, so this is always a number.
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d).map(|v: StrictValue| v.0)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(StrictValue(value)) = seq.next_element()? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{}` is given more than once in one object",
                    shown_key(&key)
                )));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A key quoted in a message, cut short so that messages stay small.
fn shown_key(key: &str) -> String {
    const MAX: usize = 60;
    match key.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &key[..end]),
        None => key.to_owned(),
    }
}

/// Decodes an `application/x-www-form-urlencoded` body strictly: bytes that are not UTF-8 once decoded are
/// refused, as in JSON and multipart bodies, rather than replaced with U+FFFD.
fn form_pairs(data: &[u8]) -> poem::Result<Vec<(String, String)>> {
    let decode = |raw: &[u8]| {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        String::from_utf8(percent_encoding::percent_decode(&spaced).collect())
            .map_err(|_| unreadable("the form is not valid UTF-8 once percent-decoded"))
    };
    data.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// Defines a payload type for a list body in one media type.
macro_rules! fields_payload {
    ($(#[$meta:meta])* $name:ident, $content_type:literal) => {
        $(#[$meta])*
        pub struct $name<T>(pub T);

        impl<T: Type> Payload for $name<T> {
            const CONTENT_TYPE: &'static str = $content_type;

            fn check_content_type(content_type: &str) -> bool {
                media_type_is(content_type, $content_type)
            }

            fn schema_ref() -> MetaSchemaRef {
                T::schema_ref()
            }

            fn register(registry: &mut Registry) {
                T::register(registry);
            }
        }
    };
}

fields_payload!(
    /// `application/json`.
    JsonFields,
    "application/json"
);

impl<T: Type + ParseFromJSON + BodyFields> ParsePayload for JsonFields<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(req, body).await?;
        parse_fields(json_value(&data)?).map(Self)
    }
}

fields_payload!(
    /// `application/x-www-form-urlencoded`, with `tags` repeated once per tag.
    FormFields,
    "application/x-www-form-urlencoded"
);

impl<T: Type + ParseFromJSON + BodyFields> ParsePayload for FormFields<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(req, body).await?;
        parse_fields(form_object::<T>(form_pairs(&data)?)?).map(Self)
    }
}

fields_payload!(
    /// `multipart/form-data`, as sent by `curl --form`, with `tags` repeated once per tag.
    MultipartFields,
    "multipart/form-data"
);

impl<T: Type + ParseFromJSON + BodyFields> ParsePayload for MultipartFields<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let mut multipart = poem::web::Multipart::from_request(req, body).await?;
        let mut pairs = Vec::new();
        while let Some(field) = multipart.next_field().await? {
            let name = field.name().map(str::to_owned);
            let value = field.text().await.map_err(unreadable)?;
            if let Some(name) = name {
                pairs.push((name, value));
            }
        }
        parse_fields(form_object::<T>(pairs)?).map(Self)
    }
}

/// Defines the request body of an operation: the same fields in each accepted media type.
macro_rules! form_body {
    ($(#[$meta:meta])* $name:ident, $fields:ty) => {
        $(#[$meta])*
        #[derive(ApiRequest)]
        pub enum $name {
            Json(JsonFields<$fields>),
            Form(FormFields<$fields>),
            Multipart(MultipartFields<$fields>),
        }

        impl $name {
            pub fn into_inner(self) -> $fields {
                match self {
                    $name::Json(JsonFields(fields))
                    | $name::Form(FormFields(fields))
                    | $name::Multipart(MultipartFields(fields)) => fields,
                }
            }
        }
    };
}

form_body!(CreateListBody, MailingListCreate);
form_body!(UpdateListBody, MailingListUpdate);
// A new subscriber: JSON with every field, or a form with the text fields (as listmonk binds forms).
#[derive(ApiRequest)]
pub enum CreateSubscriberBody {
    Json(JsonFields<SubscriberCreate>),
    Form(FormFields<SubscriberCreateForm>),
    Multipart(MultipartFields<SubscriberCreateForm>),
}

impl CreateSubscriberBody {
    pub fn into_fields(self) -> crate::domain::SubscriberFields {
        match self {
            Self::Json(JsonFields(body)) => body.into(),
            Self::Form(FormFields(body)) | Self::Multipart(MultipartFields(body)) => body.into(),
        }
    }
}
// A subscription from a public form: JSON with `list_uuids`, or a form with `l` once per list (listmonk reads
// neither name in the other media type).
#[derive(ApiRequest)]
pub enum PublicSubscriptionBody {
    Json(JsonFields<PublicSubscriptionJson>),
    Form(FormFields<PublicSubscriptionForm>),
    Multipart(MultipartFields<PublicSubscriptionForm>),
}

impl PublicSubscriptionBody {
    /// The e-mail, the name and the list UUIDs, whatever the media type.
    pub fn into_parts(self) -> (String, Option<String>, Vec<uuid::Uuid>) {
        match self {
            Self::Json(JsonFields(body)) => (
                body.email.0,
                body.name.map(|n| n.0),
                body.list_uuids.into_iter().map(|u| u.0).collect(),
            ),
            Self::Form(FormFields(body)) | Self::Multipart(MultipartFields(body)) => (
                body.email.0,
                body.name.map(|n| n.0),
                body.l.into_iter().map(|u| u.0).collect(),
            ),
        }
    }
}

/// Defines a JSON-only request body.
macro_rules! json_body {
    ($(#[$meta:meta])* $name:ident, $fields:ty) => {
        $(#[$meta])*
        #[derive(ApiRequest)]
        pub enum $name {
            Json(JsonFields<$fields>),
        }

        impl $name {
            pub fn into_inner(self) -> $fields {
                let $name::Json(JsonFields(fields)) = self;
                fields
            }
        }
    };
}

json_body!(UpdateSubscriberBody, SubscriberUpdate);
json_body!(PatchSubscriberBody, SubscriberPatch);
json_body!(SubscriberListsBody, SubscriberListsUpdate);
json_body!(SubscriberIdsBody, SubscriberIds);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::models::MailingListCreate;

    #[test]
    fn forms_become_objects_with_repeated_tags_as_arrays() {
        let pairs = [
            ("name", "n"),
            ("tags", "a"),
            ("tags", ""),
            ("description", ""),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            form_object::<MailingListCreate>(pairs).unwrap(),
            serde_json::json!({"name": "n", "tags": ["a", ""], "description": ""})
        );
    }

    #[test]
    fn single_valued_form_fields_given_twice_must_agree() {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert!(form_object::<MailingListCreate>(pairs(&[("name", "a"), ("name", "b")])).is_err());
        assert!(form_object::<MailingListCreate>(pairs(&[("name", "a"), ("name", "a")])).is_ok());
        let unknown =
            form_object::<MailingListCreate>(pairs(&[("", "true"), ("", "null"), ("name", "n")]))
                .unwrap();
        assert_eq!(
            unknown,
            serde_json::json!({"name": "n"}),
            "unknown fields are ignored, repeated or not"
        );
    }

    #[test]
    fn json_bodies_refuse_a_key_given_twice_at_any_depth() {
        let message = |text: &str| match json_value(text.as_bytes()) {
            Err(err) => err
                .downcast_ref::<ParseRequestPayloadError>()
                .unwrap()
                .reason
                .clone(),
            Ok(value) => panic!("{text} was accepted as {value}"),
        };
        assert!(message(r#"{"name":"a","name":"b"}"#).contains("`name`"));
        assert!(message(r#"{"name":"a","name":"a"}"#).contains("`name`"));
        assert!(message(r#"{"attribs":{"k":1,"k":2}}"#).contains("`k`"));
        assert!(message(r#"[{"x":[{"deep":1,"\u0064eep":2}]}]"#).contains("`deep`"));
        let long = "k".repeat(1000);
        let shown = message(&format!(r#"{{"{long}":1,"{long}":2}}"#));
        assert!(shown.len() < 200, "{shown}");
        // Anything else reads exactly as serde_json reads it.
        for text in [
            r#"{"name":"a","tags":["x","x"],"attribs":{"a":{"a":{"a":null}},"n":-1.5e300,"u":18446744073709551615,"i":-9223372036854775808}}"#,
            r#"  [1, 2.0, true, false, null, "é\n", {}, []]  "#,
            "\"text\"",
            "0",
        ] {
            let expected: Value = serde_json::from_str(text).unwrap();
            let value = json_value(text.as_bytes()).unwrap();
            assert_eq!(value, expected, "{text}");
            assert_eq!(value.to_string(), expected.to_string(), "{text}: key order");
        }
        // No negative zero, as in PostgreSQL's `jsonb`.
        for zero in ["-0.0", "-0", "-0e5", "0.0"] {
            let value = json_value(format!(r#"{{"n":{zero}}}"#).as_bytes()).unwrap();
            assert!(matches!(value["n"].as_f64(), Some(n) if n == 0.0 && n.is_sign_positive()));
            assert!(!value.to_string().contains('-'), "{zero}: {value}");
        }
        for text in ["", "{", r#"{"a":1} x"#, "[1,]", "NaN"] {
            assert!(json_value(text.as_bytes()).is_err(), "{text}");
        }
        // serde_json's recursion limit still holds.
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(json_value(deep.as_bytes()).is_err());
    }

    #[test]
    fn form_bodies_are_decoded_strictly() {
        assert_eq!(
            form_pairs(b"name=a+b%21&tags=&x").unwrap(),
            [
                ("name".to_owned(), "a b!".to_owned()),
                ("tags".to_owned(), String::new()),
                ("x".to_owned(), String::new())
            ]
        );
        assert!(form_pairs(b"name=%FF").is_err());
        assert!(form_pairs(b"name=\xff").is_err());
        assert_eq!(
            form_pairs(b"name=%zz").unwrap()[0].1,
            "%zz",
            "a stray % is literal, as in browsers"
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_form_body_is_fields_or_a_reason(data in prop::collection::vec(any::<u8>(), 0..400)) {
                // Never a panic: either the pairs of a UTF-8 form, or an error that becomes a 400.
                if let Ok(pairs) = form_pairs(&data) {
                    let _ = form_object::<MailingListCreate>(pairs).map(parse_fields::<MailingListCreate>);
                }
            }

            #[test]
            fn any_json_body_is_a_list_or_a_reason(text in "[\\[\\]{}\":,a-z0-9 ]{0,200}") {
                if let Ok(value) = serde_json::from_str::<Value>(&text) {
                    let _ = parse_fields::<MailingListCreate>(value);
                }
            }

            #[test]
            fn strict_json_reads_what_serde_json_reads_unless_a_key_repeats(text in json_text()) {
                let expected: Value = serde_json::from_str(&text).unwrap();
                match json_value(text.as_bytes()) {
                    Ok(value) => {
                        prop_assert!(!has_duplicate(&text), "{}", text);
                        prop_assert_eq!(value, expected);
                    }
                    Err(err) => {
                        prop_assert!(has_duplicate(&text), "{}: {:?}", text, err);
                        let message = format!("{err:?}");
                        prop_assert!(message.contains("more than once"), "{}", message);
                    }
                }
            }
        }

        /// JSON text whose objects take their keys from a few, so that some repeat.
        fn json_text() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                Just("null".to_owned()),
                Just("true".to_owned()),
                (-1e6f64..1e6).prop_map(|n| n.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                "[a-c]{0,3}".prop_map(|s| format!("\"{s}\"")),
            ];
            leaf.prop_recursive(4, 40, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5)
                        .prop_map(|items| format!("[{}]", items.join(","))),
                    prop::collection::vec(("[a-c]", inner), 0..5).prop_map(|members| {
                        let members: Vec<String> = members
                            .iter()
                            .map(|(k, v)| format!("\"{k}\":{v}"))
                            .collect();
                        format!("{{{}}}", members.join(","))
                    }),
                ]
            })
        }

        /// Whether some object of `text` (as `json_text` writes it) repeats a key: serde_json's own reading, which
        /// keeps the last of each, then has fewer members than the text (where only a key is followed by `:`).
        fn has_duplicate(text: &str) -> bool {
            fn members(value: &Value) -> usize {
                match value {
                    Value::Array(items) => items.iter().map(members).sum(),
                    Value::Object(map) => map.len() + map.values().map(members).sum::<usize>(),
                    _ => 0,
                }
            }
            let read: Value = serde_json::from_str(text).unwrap();
            members(&read) != text.matches("\":").count()
        }
    }
}
