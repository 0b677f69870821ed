//! Subscribers and their subscriptions: fields, the rules their input must follow, and how they are queried.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Direction, List, NAME_MAX_CHARS, Pagination, ValidationError, fold, search_words};

/// Longest accepted e-mail address, in bytes: the longest address SMTP can carry (RFC 5321's 256-byte path less
/// its angle brackets).
pub const EMAIL_MAX_BYTES: usize = 254;
/// Largest `attribs`, serialised as compact JSON, in bytes.
pub const ATTRIBS_MAX_BYTES: usize = 65_536;
/// Deepest nesting of objects and arrays in `attribs` (the top-level object is level 1).
pub const ATTRIBS_MAX_DEPTH: usize = 16;
/// Most JSON values inside `attribs` (objects, arrays and scalars, the top-level object aside). In memory each takes
/// 32 bytes or more whatever its size as JSON (`0,` is 2), so this, not the byte bound, is what keeps a page of
/// subscribers held in memory near the size of its JSON.
pub const ATTRIBS_MAX_VALUES: usize = 1024;
/// Most list ids in one subscriber write (`lists`, `target_list_ids`, `list_uuids`) and in a `list_id` filter.
pub const SUBSCRIBER_LISTS_MAX: usize = 1000;
/// Most subscriber ids in one bulk body (`PUT /api/subscribers/lists`, `PUT /api/subscribers/blocklist`): a
/// large import batch, and still well inside the default 1 MiB body limit.
pub const BULK_IDS_MAX: usize = 100_000;

string_enum!(
    /// A subscriber's standing: `blocklisted` subscribers are unsubscribed from every list and stay so.
    SubscriberStatus { Enabled => "enabled", Disabled => "disabled", Blocklisted => "blocklisted" }
);
string_enum!(
    /// A subscription's state on one list.
    SubscriptionStatus { Unconfirmed => "unconfirmed", Confirmed => "confirmed", Unsubscribed => "unsubscribed" }
);

/// One subscription of a subscriber, with the list it is on: shared by every subscription to it that one read
/// returns (a list's description alone may be 256 KiB; a page's subscribers may be on the same thousand lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub list: std::sync::Arc<List>,
    pub status: SubscriptionStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A subscriber as stored, with the subscriptions the caller may see.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub id: i64,
    pub uuid: Uuid,
    pub email: String,
    pub name: String,
    pub attribs: Map<String, Value>,
    pub status: SubscriberStatus,
    pub lists: Vec<Subscription>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A valid e-mail address: trimmed, lowercased (as listmonk stores it, so uniqueness ignores case), at most
/// [`EMAIL_MAX_BYTES`], and a bare address (`a@example.com`; no display name, no `[1.2.3.4]` domain literal)
/// by the `email_address` crate's reading of RFC 5322.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let email = fold(raw.trim());
        if email.is_empty() {
            return Err(ValidationError("email must not be blank".into()));
        }
        if email.len() > EMAIL_MAX_BYTES {
            return Err(ValidationError(format!(
                "email must be at most {EMAIL_MAX_BYTES} bytes"
            )));
        }
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal();
        email_address::EmailAddress::parse_with_options(&email, options)
            .map_err(|err| ValidationError(format!("email is not a valid address: {err}")))?;
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`: the name of a subscriber who gave none.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(local, _)| local)
    }
}

/// A subscriber's name: trimmed, at most [`NAME_MAX_CHARS`] characters; blank means "the e-mail's local part".
fn parse_name(raw: Option<&str>, email: &Email) -> Result<String, ValidationError> {
    let name = raw.unwrap_or_default().trim();
    if name.contains('\0') {
        return Err(ValidationError(
            "name must not contain NUL characters".into(),
        ));
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(ValidationError(format!(
            "name must be at most {NAME_MAX_CHARS} characters"
        )));
    }
    Ok(if name.is_empty() {
        email.local_part().to_owned()
    } else {
        name.to_owned()
    })
}

/// Valid attributes: a JSON object of at most [`ATTRIBS_MAX_BYTES`], [`ATTRIBS_MAX_DEPTH`] levels and
/// [`ATTRIBS_MAX_VALUES`] values, with no
/// NUL character anywhere (PostgreSQL cannot store one in `jsonb`). `null` is the empty object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribs(Map<String, Value>);

impl Attribs {
    pub fn parse(value: Value) -> Result<Self, ValidationError> {
        let map = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(map) => map,
            other => {
                return Err(ValidationError(format!(
                    "attribs must be a JSON object, not {}",
                    json_kind(&other)
                )));
            }
        };
        // Iterative, so that no input decides how deep Roster recurses.
        let mut expansion = 0usize;
        let mut pending: Vec<(&Value, usize)> = map.values().map(|v| (v, 2)).collect();
        if map.keys().any(|k| k.contains('\0')) {
            return Err(nul_in_attribs());
        }
        let mut values = 0usize;
        while let Some((value, depth)) = pending.pop() {
            values += 1;
            if values > ATTRIBS_MAX_VALUES {
                return Err(ValidationError(format!(
                    "attribs must hold at most {ATTRIBS_MAX_VALUES} values (objects, arrays and scalars)"
                )));
            }
            match value {
                Value::Object(inner) => {
                    if depth > ATTRIBS_MAX_DEPTH {
                        return Err(too_deep());
                    }
                    if inner.keys().any(|k| k.contains('\0')) {
                        return Err(nul_in_attribs());
                    }
                    pending.extend(inner.values().map(|v| (v, depth + 1)));
                }
                Value::Array(items) => {
                    if depth > ATTRIBS_MAX_DEPTH {
                        return Err(too_deep());
                    }
                    pending.extend(items.iter().map(|v| (v, depth + 1)));
                }
                Value::String(text) if text.contains('\0') => return Err(nul_in_attribs()),
                Value::Number(number) => expansion += stored_expansion(number),
                _ => {}
            }
        }
        // Bounded as stored and read back, not as sent: PostgreSQL keeps JSON numbers as exact decimals and
        // writes them out in full, so `1e308` (5 bytes) is read back as 309 digits.
        let size = serde_json::to_vec(&map).map_or(usize::MAX, |bytes| bytes.len());
        if size.saturating_add(expansion) > ATTRIBS_MAX_BYTES {
            return Err(ValidationError(format!(
                "attribs must be at most {ATTRIBS_MAX_BYTES} bytes of JSON as stored, with every number \
                 written out in full decimal (1e308 is 309 digits)"
            )));
        }
        Ok(Self(map))
    }

    /// listmonk's PATCH merge: top-level keys are added or replaced; nested values are replaced whole.
    pub fn merged(mut self, with: Attribs) -> Result<Self, ValidationError> {
        self.0.extend(with.0);
        Self::parse(Value::Object(self.0))
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_inner(self) -> Map<String, Value> {
        self.0
    }
}

/// How many bytes longer a JSON number is once written out in plain decimal, as PostgreSQL's `jsonb` returns
/// it (`1e3` → `1000`, `1.5e-7` → `0.00000015`), than as serde writes it.
fn stored_expansion(number: &serde_json::Number) -> usize {
    let written = number.to_string();
    let Some((mantissa, exponent)) = written.split_once(['e', 'E']) else {
        return 0;
    };
    let Ok(exponent) = exponent.parse::<i64>() else {
        return 0;
    };
    let mantissa = mantissa.trim_start_matches('-');
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = (whole.len() + fraction.len()) as i64;
    let point = whole.len() as i64 + exponent;
    let plain = if point >= digits {
        point
    } else if point > 0 {
        digits + 1
    } else {
        2 - point + digits
    };
    usize::try_from(plain + i64::from(written.starts_with('-')) - written.len() as i64).unwrap_or(0)
}

fn too_deep() -> ValidationError {
    ValidationError(format!(
        "attribs must be nested at most {ATTRIBS_MAX_DEPTH} levels deep"
    ))
}

fn nul_in_attribs() -> ValidationError {
    ValidationError("attribs must not contain NUL characters".into())
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// List ids of a write: each at least 1, repeats dropped (first kept), at most [`SUBSCRIBER_LISTS_MAX`].
pub fn parse_list_ids(ids: &[i64], field: &str) -> Result<Vec<i64>, ValidationError> {
    if ids.len() > SUBSCRIBER_LISTS_MAX {
        return Err(ValidationError(format!(
            "give at most {SUBSCRIBER_LISTS_MAX} ids in `{field}`"
        )));
    }
    let mut unique = Vec::with_capacity(ids.len());
    for &id in ids {
        if id < 1 {
            return Err(ValidationError(format!(
                "`{field}`: {id} is not a valid id"
            )));
        }
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    Ok(unique)
}

/// Subscriber ids of a bulk write: each at least 1, repeats dropped, at least one and at most [`BULK_IDS_MAX`].
pub fn parse_subscriber_ids(ids: &[i64]) -> Result<Vec<i64>, ValidationError> {
    if ids.is_empty() {
        return Err(ValidationError(
            "`ids` must name at least one subscriber".into(),
        ));
    }
    if ids.len() > BULK_IDS_MAX {
        return Err(ValidationError(format!(
            "give at most {BULK_IDS_MAX} ids in `ids`"
        )));
    }
    if let Some(bad) = ids.iter().find(|&&id| id < 1) {
        return Err(ValidationError(format!("`ids`: {bad} is not a valid id")));
    }
    let mut unique = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    Ok(unique)
}

/// A subscriber body as read from JSON or a form, before the rules are applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriberFields {
    pub email: Option<String>,
    pub name: Option<String>,
    pub status: Option<SubscriberStatus>,
    /// `Some(Value::Null)` when the body says `"attribs": null`.
    pub attribs: Option<Value>,
    pub lists: Option<Vec<i64>>,
    pub preconfirm_subscriptions: Option<bool>,
}

/// A subscriber to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubscriber {
    pub email: Email,
    pub name: String,
    pub status: SubscriberStatus,
    pub attribs: Attribs,
    pub lists: Vec<i64>,
    pub preconfirm: bool,
}

impl TryFrom<SubscriberFields> for NewSubscriber {
    type Error = ValidationError;

    fn try_from(fields: SubscriberFields) -> Result<Self, Self::Error> {
        let email = Email::parse(fields.email.as_deref().unwrap_or_default())?;
        Ok(Self {
            name: parse_name(fields.name.as_deref(), &email)?,
            email,
            status: fields.status.unwrap_or(SubscriberStatus::Enabled),
            attribs: Attribs::parse(fields.attribs.unwrap_or(Value::Null))?,
            lists: parse_list_ids(&fields.lists.unwrap_or_default(), "lists")?,
            preconfirm: fields.preconfirm_subscriptions.unwrap_or(false),
        })
    }
}

/// What a change does to `attribs`.
#[derive(Debug, Clone, PartialEq)]
pub enum AttribsChange {
    Keep,
    Replace(Attribs),
    Merge(Attribs),
}

/// A change to a subscriber: `PUT` (a replace) and `PATCH` (a partial update) both become one.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriberChange {
    pub email: Option<Email>,
    /// A blank name means "the e-mail's local part", applied once the e-mail is known.
    pub name: Option<String>,
    pub status: Option<SubscriberStatus>,
    pub attribs: AttribsChange,
    /// The exact set of lists afterwards (`None`: subscriptions untouched).
    pub lists: Option<Vec<i64>>,
    pub preconfirm: bool,
}

impl SubscriberChange {
    /// listmonk's `PUT`: `email` is required; an omitted `name` or `status` is kept; omitted `attribs` become
    /// `{}`; omitted `lists` remove every subscription.
    pub fn replace(fields: SubscriberFields) -> Result<Self, ValidationError> {
        let email = Email::parse(fields.email.as_deref().unwrap_or_default())?;
        Ok(Self {
            name: fields
                .name
                .map(|n| parse_name(Some(&n), &email))
                .transpose()?,
            email: Some(email),
            status: fields.status,
            attribs: AttribsChange::Replace(Attribs::parse(fields.attribs.unwrap_or(Value::Null))?),
            lists: Some(parse_list_ids(&fields.lists.unwrap_or_default(), "lists")?),
            preconfirm: fields.preconfirm_subscriptions.unwrap_or(false),
        })
    }

    /// `PATCH`: only what is present changes; `attribs` are merged one level deep; `lists` replace the
    /// subscriptions only when present.
    pub fn patch(fields: SubscriberFields) -> Result<Self, ValidationError> {
        let email = fields.email.as_deref().map(Email::parse).transpose()?;
        let name = match fields.name {
            // The local part of the e-mail the subscriber will have is filled in by `resolve_name`.
            Some(name) if name.trim().is_empty() => Some(String::new()),
            Some(name) => Some(parse_name(Some(&name), &Email(String::new()))?),
            None => None,
        };
        Ok(Self {
            email,
            name,
            status: fields.status,
            attribs: match fields.attribs {
                None => AttribsChange::Keep,
                // listmonk: `"attribs": null` clears them.
                Some(Value::Null) => AttribsChange::Replace(Attribs::default()),
                Some(value) => AttribsChange::Merge(Attribs::parse(value)?),
            },
            lists: fields
                .lists
                .map(|ids| parse_list_ids(&ids, "lists"))
                .transpose()?,
            preconfirm: fields.preconfirm_subscriptions.unwrap_or(false),
        })
    }

    /// The name to store, given the e-mail the subscriber ends up with: a blank name becomes its local part.
    pub fn resolve_name(&self, email: &Email) -> Option<String> {
        self.name.as_ref().map(|name| {
            if name.is_empty() {
                email.local_part().to_owned()
            } else {
                name.clone()
            }
        })
    }
}

/// The status a new subscription gets: `unsubscribed` for a blocklisted subscriber, else `confirmed` when
/// preconfirmed, else `unconfirmed`.
pub fn new_subscription_status(
    subscriber: SubscriberStatus,
    preconfirm: bool,
) -> SubscriptionStatus {
    match (subscriber, preconfirm) {
        (SubscriberStatus::Blocklisted, _) => SubscriptionStatus::Unsubscribed,
        (_, true) => SubscriptionStatus::Confirmed,
        (_, false) => SubscriptionStatus::Unconfirmed,
    }
}

/// What a `PUT`/`PATCH` naming a list the subscriber is already on does to that subscription (listmonk's rules):
/// a blocklisted subscriber's become `unsubscribed`; otherwise `unconfirmed` becomes `confirmed` when
/// preconfirmed, and `confirmed` and `unsubscribed` stay (an unsubscribe is never undone by an edit).
pub fn kept_subscription_status(
    existing: SubscriptionStatus,
    subscriber: SubscriberStatus,
    preconfirm: bool,
) -> SubscriptionStatus {
    match (subscriber, existing, preconfirm) {
        (SubscriberStatus::Blocklisted, _, _) => SubscriptionStatus::Unsubscribed,
        (_, SubscriptionStatus::Unconfirmed, true) => SubscriptionStatus::Confirmed,
        (_, status, _) => status,
    }
}

/// A subscription from the public form: who, and to which lists (by UUID, at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicSubscription {
    pub email: Email,
    pub name: String,
    pub lists: Vec<Uuid>,
}

impl PublicSubscription {
    /// `lists` must hold at least one and at most [`SUBSCRIBER_LISTS_MAX`] UUIDs (repeats dropped).
    pub fn new(email: &str, name: Option<&str>, lists: &[Uuid]) -> Result<Self, ValidationError> {
        if lists.is_empty() {
            return Err(ValidationError("give at least one list UUID".into()));
        }
        if lists.len() > SUBSCRIBER_LISTS_MAX {
            return Err(ValidationError(format!(
                "give at most {SUBSCRIBER_LISTS_MAX} list UUIDs"
            )));
        }
        let email = Email::parse(email)?;
        let mut unique: Vec<Uuid> = Vec::with_capacity(lists.len());
        for uuid in lists {
            if !unique.contains(uuid) {
                unique.push(*uuid);
            }
        }
        Ok(Self {
            name: parse_name(name, &email)?,
            email,
            lists: unique,
        })
    }
}

/// What `PUT /api/subscribers/lists` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipAction {
    /// Subscribe; with a status, set it on new and existing subscriptions, else new ones are `unconfirmed` and
    /// existing ones keep theirs.
    Add(Option<SubscriptionStatus>),
    /// Delete the subscriptions.
    Remove,
    /// Mark existing subscriptions `unsubscribed` (creates none).
    Unsubscribe,
}

string_enum!(
    /// The field subscriber listings are sorted by; `id` always breaks ties.
    SubscriberOrderBy {
        Id => "id",
        Email => "email",
        Name => "name",
        Status => "status",
        CreatedAt => "created_at",
        UpdatedAt => "updated_at",
    }
);

/// Which subscribers a listing selects. All given filters must hold. Equal filters (and their hash) compare the
/// `query` text rather than its translation, which follows from it.
#[derive(Debug, Clone, Default)]
pub struct SubscriberFilter {
    /// Case-folded words that must each occur literally in the e-mail or the name.
    pub words: Vec<String>,
    /// Subscribers on any of these lists (each subscriber once).
    pub list_ids: Option<Vec<i64>>,
    /// With `list_ids`: only subscriptions in this state count.
    pub subscription_status: Option<SubscriptionStatus>,
    pub status: Option<SubscriberStatus>,
    /// listmonk's `query`, translated from its SQL form.
    pub expression: Option<super::Predicate>,
    /// `query` as given, trimmed: what `expression` was translated from.
    pub query: String,
}

impl SubscriberFilter {
    fn identity(&self) -> impl PartialEq + std::hash::Hash + '_ {
        (
            &self.words,
            &self.list_ids,
            self.subscription_status,
            self.status,
            &self.query,
        )
    }
}

impl PartialEq for SubscriberFilter {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for SubscriberFilter {}

impl std::hash::Hash for SubscriberFilter {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl SubscriberFilter {
    /// `search` is split like lists' `query`; `query` is translated by [`super::parse_expression`].
    pub fn new(
        search: Option<&str>,
        query: Option<&str>,
        list_ids: Option<Vec<i64>>,
        subscription_status: Option<SubscriptionStatus>,
        status: Option<SubscriberStatus>,
    ) -> Result<Self, ValidationError> {
        let words = search_words(search.unwrap_or_default(), "search")?;
        let query = query.unwrap_or_default().trim().to_owned();
        let expression = match query.as_str() {
            "" => None,
            text => Some(super::parse_expression(text)?),
        };
        if subscription_status.is_some() && list_ids.is_none() {
            return Err(ValidationError(
                "subscription_status needs at least one list_id".into(),
            ));
        }
        let list_ids = list_ids
            .map(|ids| {
                if ids.len() > SUBSCRIBER_LISTS_MAX {
                    return Err(ValidationError(format!(
                        "give at most {SUBSCRIBER_LISTS_MAX} `list_id` values"
                    )));
                }
                let mut ids = ids;
                ids.sort_unstable();
                ids.dedup();
                Ok(ids)
            })
            .transpose()?;
        Ok(Self {
            words,
            list_ids,
            subscription_status,
            status,
            expression,
            query,
        })
    }
}

/// A full subscriber listing request.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriberQuery {
    pub filter: SubscriberFilter,
    pub order_by: SubscriberOrderBy,
    pub direction: Direction,
    pub pagination: Pagination,
    /// Start right after this row instead of at the page's offset (`pagination.page` is then 1).
    pub after: Option<super::Cursor>,
}

/// One page of subscribers, with the number of matches over all pages.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriberPage {
    pub results: Vec<Subscriber>,
    pub total: u64,
    /// Where the next page starts, when this one is full.
    pub next: Option<super::Cursor>,
}

/// Case-folds a subscriber's name for search and sorting (the same folding as list names).
pub fn fold_name(name: &str) -> String {
    fold(name)
}

#[cfg(test)]
mod tests {

    #[test]
    fn numbers_are_measured_as_postgresql_writes_them_out() {
        for (number, plain) in [
            ("1e308", "1".to_owned() + &"0".repeat(308)),
            ("1.5e3", "1500.0".to_owned()),
            ("1e16", "1".to_owned() + &"0".repeat(16)),
            ("1.5e-7", "0.00000015".to_owned()),
            ("-2.5e-3", "-0.0025".to_owned()),
            ("1.25e1", "12.5".to_owned()),
            ("12", "12".to_owned()),
            ("0.5", "0.5".to_owned()),
        ] {
            let value: Value = serde_json::from_str(number).unwrap();
            let Value::Number(n) = value else {
                unreachable!()
            };
            assert_eq!(
                n.to_string().len() + stored_expansion(&n),
                plain.len(),
                "{number} is stored as {plain}"
            );
        }
    }

    #[test]
    fn attribs_are_bounded_as_stored_not_as_sent() {
        let fits = Value::Array(vec![json!(1e308); 200]);
        assert!(Attribs::parse(json!({ "a": fits })).is_ok());
        let sent_small = Value::Array(vec![json!(1e308); 220]);
        assert!(serde_json::to_vec(&sent_small).unwrap().len() < 2_000);
        let err = Attribs::parse(json!({ "a": sent_small })).unwrap_err();
        assert!(err.0.contains("as stored"), "{}", err.0);
    }
    use super::*;
    use serde_json::json;

    #[test]
    fn emails_are_trimmed_lowercased_and_validated() {
        assert_eq!(
            Email::parse("  John.Doe@Example.COM ").unwrap().as_str(),
            "john.doe@example.com"
        );
        assert_eq!(Email::parse("a@b").unwrap().local_part(), "a");
        for bad in [
            "",
            "   ",
            "john",
            "John <j@x.com>",
            "<j@x.com>",
            "a@[1.2.3.4]",
            "a@@b",
            "a b@c.d",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_limited_in_bytes() {
        // DNS labels are at most 63 bytes: the domain is several of them.
        let domain = format!(
            "{0}.{0}.{0}.{1}.com",
            "b".repeat(60),
            "c".repeat(EMAIL_MAX_BYTES - 64 - 1 - 183 - 4)
        );
        let at_limit = format!("{}@{domain}", "a".repeat(64));
        assert_eq!(at_limit.len(), EMAIL_MAX_BYTES);
        assert!(Email::parse(&at_limit).is_ok(), "{at_limit}");
        assert!(Email::parse(&format!("a{at_limit}")).is_err());
        assert!(Email::parse(&"é".repeat(10_000)).is_err());
    }

    #[test]
    fn a_blank_name_becomes_the_local_part() {
        let email = Email::parse("jo.doe@x.org").unwrap();
        assert_eq!(parse_name(None, &email).unwrap(), "jo.doe");
        assert_eq!(parse_name(Some("  "), &email).unwrap(), "jo.doe");
        assert_eq!(parse_name(Some(" Jo "), &email).unwrap(), "Jo");
        assert!(parse_name(Some(&"a".repeat(NAME_MAX_CHARS + 1)), &email).is_err());
    }

    #[test]
    fn attribs_must_be_a_bounded_object() {
        assert_eq!(Attribs::parse(Value::Null).unwrap(), Attribs::default());
        assert!(Attribs::parse(json!({"city": "Bengaluru", "n": [1, {"a": 2}]})).is_ok());
        for bad in [json!([]), json!("x"), json!(1), json!(true)] {
            assert!(Attribs::parse(bad).is_err());
        }
        let mut deep = json!(1);
        for _ in 0..ATTRIBS_MAX_DEPTH {
            deep = json!({ "k": deep });
        }
        assert!(Attribs::parse(deep.clone()).is_ok());
        assert!(Attribs::parse(json!({ "k": deep })).is_err());
        let big = json!({ "k": "a".repeat(ATTRIBS_MAX_BYTES) });
        assert!(Attribs::parse(big).is_err());
        assert!(Attribs::parse(json!({ "k\u{0}": 1 })).is_err());
        // The top-level object aside: an array and its elements.
        let values = |n: usize| json!({ "k": vec![json!({}); n - 1] });
        assert!(Attribs::parse(values(ATTRIBS_MAX_VALUES)).is_ok());
        assert!(Attribs::parse(values(ATTRIBS_MAX_VALUES + 1)).is_err());
        assert!(Attribs::parse(json!({ "k": ["\u{0}"] })).is_err());
    }

    #[test]
    fn patch_merges_attribs_one_level_deep() {
        let base = Attribs::parse(json!({"a": 1, "b": {"x": 1}})).unwrap();
        let with = Attribs::parse(json!({"b": {"y": 2}, "c": 3})).unwrap();
        assert_eq!(
            base.merged(with).unwrap().into_inner(),
            json!({"a": 1, "b": {"y": 2}, "c": 3})
                .as_object()
                .unwrap()
                .clone()
        );
    }

    #[test]
    fn list_ids_are_positive_and_deduplicated() {
        assert_eq!(parse_list_ids(&[3, 1, 3], "lists").unwrap(), [3, 1]);
        assert!(parse_list_ids(&[0], "lists").is_err());
        assert!(parse_list_ids(&vec![1; SUBSCRIBER_LISTS_MAX + 1], "lists").is_err());
        assert!(parse_subscriber_ids(&[]).is_err());
        assert_eq!(parse_subscriber_ids(&[2, 1, 2]).unwrap(), [1, 2]);
    }

    #[test]
    fn put_replaces_and_patch_changes_only_what_is_present() {
        let put = SubscriberChange::replace(SubscriberFields {
            email: Some("a@b.c".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(put.lists, Some(vec![]));
        assert_eq!(put.attribs, AttribsChange::Replace(Attribs::default()));
        assert_eq!(put.name, None);
        assert!(SubscriberChange::replace(SubscriberFields::default()).is_err());

        let patch = SubscriberChange::patch(SubscriberFields {
            name: Some(" ".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(patch.lists, None);
        assert_eq!(patch.attribs, AttribsChange::Keep);
        assert_eq!(
            patch
                .resolve_name(&Email::parse("x.y@z.org").unwrap())
                .as_deref(),
            Some("x.y")
        );
    }

    #[test]
    fn subscription_statuses_follow_listmonk() {
        use SubscriberStatus::*;
        use SubscriptionStatus::*;
        assert_eq!(new_subscription_status(Enabled, false), Unconfirmed);
        assert_eq!(new_subscription_status(Enabled, true), Confirmed);
        assert_eq!(new_subscription_status(Blocklisted, true), Unsubscribed);
        assert_eq!(
            kept_subscription_status(Unconfirmed, Enabled, true),
            Confirmed
        );
        assert_eq!(
            kept_subscription_status(Unsubscribed, Enabled, true),
            Unsubscribed
        );
        assert_eq!(
            kept_subscription_status(Confirmed, Disabled, false),
            Confirmed
        );
        assert_eq!(
            kept_subscription_status(Confirmed, Blocklisted, false),
            Unsubscribed
        );
    }

    #[test]
    fn subscription_status_needs_a_list_filter() {
        assert!(
            SubscriberFilter::new(None, None, None, Some(SubscriptionStatus::Confirmed), None)
                .is_err()
        );
        let filter = SubscriberFilter::new(
            Some("Ann ann  X"),
            Some("  "),
            Some(vec![2, 1, 2]),
            None,
            None,
        )
        .unwrap();
        assert_eq!(filter.words, ["ann", "x"]);
        assert_eq!(filter.list_ids, Some(vec![1, 2]));
        assert!(filter.expression.is_none());
    }
}
