//! The subscriber bodies of the API, as they appear on the wire and in the spec.

use std::collections::BTreeMap;

use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object};

use super::{ListOptin, ListStatus, ListType, SuccessStatus};
use crate::api::types::{
    AttribsObject, EmailText, ListId, NullableAttribs, SubscriberId, SubscriberNameText, Timestamp,
    WireUuid,
};
use crate::domain;

mirror_enum!(
    /// `enabled` (the default), `disabled`, or `blocklisted`: a blocklisted subscriber is unsubscribed from every
    /// list, and new subscriptions of theirs are `unsubscribed` too.
    SubscriberStatus => SubscriberStatus { Enabled, Disabled, Blocklisted }
);
mirror_enum!(
    /// A subscription's state: `unconfirmed` (the default for new subscriptions), `confirmed`, or
    /// `unsubscribed`.
    SubscriptionStatus => SubscriptionStatus { Unconfirmed, Confirmed, Unsubscribed }
);

/// The field a subscriber listing is sorted by.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum SubscriberOrderBy {
    Id,
    Email,
    Name,
    Status,
    CreatedAt,
    UpdatedAt,
}

impl From<SubscriberOrderBy> for domain::SubscriberOrderBy {
    fn from(value: SubscriberOrderBy) -> Self {
        match value {
            SubscriberOrderBy::Id => Self::Id,
            SubscriberOrderBy::Email => Self::Email,
            SubscriberOrderBy::Name => Self::Name,
            SubscriberOrderBy::Status => Self::Status,
            SubscriberOrderBy::CreatedAt => Self::CreatedAt,
            SubscriberOrderBy::UpdatedAt => Self::UpdatedAt,
        }
    }
}

/// One list a subscriber is on: the list's fields and the subscription's.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct SubscriberList {
    /// The subscription's state on this list.
    pub subscription_status: SubscriptionStatus,
    /// When the subscriber joined this list.
    pub subscription_created_at: Timestamp,
    /// When the subscription last changed.
    pub subscription_updated_at: Timestamp,
    /// Extra data of the subscription (listmonk records an opt-in IP here); always `{}` in Roster.
    pub subscription_meta: BTreeMap<String, serde_json::Value>,
    /// The list's id.
    #[oai(validator(minimum(value = "1"), maximum(value = "9223372036854775807")))]
    pub id: i64,
    pub uuid: WireUuid,
    #[oai(validator(max_length = 2000))]
    pub name: String,
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub list_type: ListType,
    pub optin: ListOptin,
    /// The list's status (not the subscription's).
    pub status: ListStatus,
    #[oai(validator(max_items = 100, max_length = 100))]
    pub tags: Vec<String>,
    #[oai(validator(max_length = 65536))]
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A subscriber.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct Subscriber {
    /// Numeric id, assigned by the server.
    #[oai(read_only)]
    #[oai(validator(minimum(value = "1"), maximum(value = "9223372036854775807")))]
    pub id: i64,
    #[oai(read_only)]
    pub created_at: Timestamp,
    #[oai(read_only)]
    pub updated_at: Timestamp,
    /// Random (v4) UUID, assigned by the server.
    #[oai(read_only)]
    pub uuid: WireUuid,
    /// The e-mail address, lowercase.
    #[oai(validator(max_length = 254))]
    pub email: String,
    #[oai(validator(max_length = 2000))]
    pub name: String,
    /// Free-form attributes; `{}` when there are none.
    pub attribs: BTreeMap<String, serde_json::Value>,
    pub status: SubscriberStatus,
    /// The lists the subscriber is on, by list id, with each subscription's state. Only lists the caller may
    /// read are shown.
    pub lists: Vec<SubscriberList>,
}

impl Subscriber {
    pub fn from_domain(subscriber: domain::Subscriber) -> Self {
        Self {
            id: subscriber.id,
            created_at: Timestamp(subscriber.created_at),
            updated_at: Timestamp(subscriber.updated_at),
            uuid: WireUuid(subscriber.uuid),
            email: subscriber.email,
            name: subscriber.name,
            attribs: subscriber.attribs.into_iter().collect(),
            status: subscriber.status.into(),
            lists: subscriber
                .lists
                .into_iter()
                .map(|s| SubscriberList {
                    subscription_status: s.status.into(),
                    subscription_created_at: Timestamp(s.created_at),
                    subscription_updated_at: Timestamp(s.updated_at),
                    subscription_meta: BTreeMap::new(),
                    id: s.list.id,
                    uuid: WireUuid(s.list.uuid),
                    name: s.list.name,
                    list_type: s.list.list_type.into(),
                    optin: s.list.optin.into(),
                    status: s.list.status.into(),
                    tags: s.list.tags,
                    description: s.list.description,
                    created_at: Timestamp(s.list.created_at),
                    updated_at: Timestamp(s.list.updated_at),
                })
                .collect(),
        }
    }
}

/// One page of subscribers.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct SubscriberPage {
    /// The subscribers on this page (each once, whatever lists matched).
    pub results: Vec<Subscriber>,
    /// The `search` given, trimmed.
    #[oai(validator(max_length = 1000))]
    pub search: String,
    /// The `query` given, trimmed.
    #[oai(validator(max_length = 2000))]
    pub query: String,
    /// How many subscribers match, over all pages.
    #[oai(validator(minimum(value = "0"), maximum(value = "9223372036854775807")))]
    pub total: i64,
    /// Rows per page; `0` when `per_page=all` was requested.
    #[oai(validator(minimum(value = "0"), maximum(value = "999999999")))]
    pub per_page: i64,
    /// This page's number, from 1.
    #[oai(validator(minimum(value = "1"), maximum(value = "999999999")))]
    pub page: i64,
    /// The cursor of the following page, to pass as `after` (same `order_by` and `order`): present when this
    /// page is full (it may then be followed by an empty page), absent on a shorter page and with
    /// `per_page=all`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(validator(max_length = 12288))]
    pub next: Option<String>,
}

/// A new subscriber, as JSON. Unknown fields are ignored.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct SubscriberCreate {
    /// The e-mail address: trimmed and lowercased; must be unique (whatever its case).
    pub email: EmailText,
    /// Defaults to the part of the e-mail before `@`.
    pub name: Option<SubscriberNameText>,
    /// Defaults to `enabled`.
    pub status: Option<SubscriberStatus>,
    /// Ids of lists to subscribe to (at most 1,000); each must exist, and the caller must manage each.
    #[oai(validator(max_items = 1000))]
    pub lists: Option<Vec<ListId>>,
    /// Free-form attributes.
    pub attribs: Option<AttribsObject>,
    /// Make the new subscriptions `confirmed` instead of `unconfirmed`. Roster sends no e-mail either way.
    pub preconfirm_subscriptions: Option<bool>,
}

/// A new subscriber, as a URL-encoded or multipart form: the text fields, as listmonk binds forms. Unknown
/// fields are ignored.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct SubscriberCreateForm {
    /// The e-mail address: trimmed and lowercased; must be unique (whatever its case).
    pub email: EmailText,
    /// Defaults to the part of the e-mail before `@`.
    pub name: Option<SubscriberNameText>,
    /// Defaults to `enabled`.
    pub status: Option<SubscriberStatus>,
}

impl From<SubscriberCreateForm> for domain::SubscriberFields {
    fn from(body: SubscriberCreateForm) -> Self {
        Self {
            email: Some(body.email.0),
            name: body.name.map(|n| n.0),
            status: body.status.map(Into::into),
            ..Self::default()
        }
    }
}

/// A subscriber's new state (listmonk's replace): `email` is required; `name` and `status` keep their value when
/// left out; `attribs` are replaced (left out: cleared to `{}`); **`lists` becomes the exact set of lists, so
/// leaving it out removes the subscriber from every list** (the lists the caller may manage; subscriptions on
/// other lists stay). Subscriptions kept keep their state (an `unsubscribed` one is not revived; an
/// `unconfirmed` one becomes `confirmed` with `preconfirm_subscriptions`).
#[derive(Object, Debug, Clone, PartialEq)]
pub struct SubscriberUpdate {
    pub email: EmailText,
    pub name: Option<SubscriberNameText>,
    pub status: Option<SubscriberStatus>,
    #[oai(validator(max_items = 1000))]
    pub lists: Option<Vec<ListId>>,
    pub attribs: Option<AttribsObject>,
    pub preconfirm_subscriptions: Option<bool>,
}

/// Changes to a subscriber: fields left out keep their value. `attribs` are merged one level deep (top-level
/// keys added or replaced; `"attribs": null` clears them); `lists`, when present, becomes the exact set of lists.
#[derive(Object, Debug, Clone, Default, PartialEq)]
pub struct SubscriberPatch {
    pub email: Option<EmailText>,
    pub name: Option<SubscriberNameText>,
    pub status: Option<SubscriberStatus>,
    #[oai(validator(max_items = 1000))]
    pub lists: Option<Vec<ListId>>,
    pub attribs: MaybeUndefined<NullableAttribs>,
    pub preconfirm_subscriptions: Option<bool>,
}

impl From<SubscriberCreate> for SubscriberUpdate {
    fn from(body: SubscriberCreate) -> Self {
        Self {
            email: body.email,
            name: body.name,
            status: body.status,
            lists: body.lists,
            attribs: body.attribs,
            preconfirm_subscriptions: body.preconfirm_subscriptions,
        }
    }
}

impl From<SubscriberCreate> for domain::SubscriberFields {
    fn from(body: SubscriberCreate) -> Self {
        SubscriberUpdate::from(body).into()
    }
}

impl From<SubscriberUpdate> for domain::SubscriberFields {
    fn from(body: SubscriberUpdate) -> Self {
        Self {
            email: Some(body.email.0),
            name: body.name.map(|n| n.0),
            status: body.status.map(Into::into),
            attribs: body.attribs.map(|a| a.0),
            lists: body
                .lists
                .map(|ids| ids.into_iter().map(|id| id.0).collect()),
            preconfirm_subscriptions: body.preconfirm_subscriptions,
        }
    }
}

impl From<SubscriberPatch> for domain::SubscriberFields {
    fn from(body: SubscriberPatch) -> Self {
        Self {
            email: body.email.map(|e| e.0),
            name: body.name.map(|n| n.0),
            status: body.status.map(Into::into),
            attribs: match body.attribs {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(serde_json::Value::Null),
                MaybeUndefined::Value(a) => Some(a.0),
            },
            lists: body
                .lists
                .map(|ids| ids.into_iter().map(|id| id.0).collect()),
            preconfirm_subscriptions: body.preconfirm_subscriptions,
        }
    }
}

/// What to do with the subscriptions.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum MembershipAction {
    Add,
    Remove,
    Unsubscribe,
}

/// Subscriptions to change, for many subscribers and lists at once, in one transaction.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct SubscriberListsUpdate {
    /// Subscriber ids (1–100,000). Each must exist.
    #[oai(validator(min_items = 1, max_items = 100000))]
    pub ids: Vec<SubscriberId>,
    /// `add` subscribes (new subscriptions get `status`, or `unconfirmed`; existing ones are set to `status`
    /// when it is given and kept otherwise; a blocklisted subscriber's are always `unsubscribed`); `remove`
    /// deletes the subscriptions; `unsubscribe` marks existing ones `unsubscribed` (creating none).
    pub action: MembershipAction,
    /// List ids (1–1,000). Each must exist, and the caller must manage each.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub target_list_ids: Vec<ListId>,
    /// For `add` only: the subscriptions' state.
    pub status: Option<SubscriptionStatus>,
}

/// Subscribers to blocklist.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct SubscriberIds {
    /// Subscriber ids (1–100,000). Each must exist.
    #[oai(validator(min_items = 1, max_items = 100000))]
    pub ids: Vec<SubscriberId>,
}

/// A subscription from a public form, as JSON. Unknown fields are ignored.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct PublicSubscriptionJson {
    /// The subscriber's e-mail address.
    pub email: EmailText,
    /// Defaults to the part of the e-mail before `@`.
    pub name: Option<SubscriberNameText>,
    /// UUIDs of public, active lists (1 to 1,000).
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub list_uuids: Vec<WireUuid>,
}

/// A subscription from a public form, as an HTML form sends it: `l` once per list. Unknown fields are ignored.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct PublicSubscriptionForm {
    /// The subscriber's e-mail address.
    pub email: EmailText,
    /// Defaults to the part of the e-mail before `@`.
    pub name: Option<SubscriberNameText>,
    /// UUIDs of public, active lists (1 to 1,000), one `l` field each.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub l: Vec<WireUuid>,
}

/// The outcome of a public subscription; the same whether the e-mail was new, known, or blocklisted.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct PublicSubscriptionResult {
    /// Whether one of the lists is double opt-in (listmonk would then send a confirmation e-mail; Roster sends
    /// none).
    pub has_optin: bool,
}

/// Successful response carrying one subscriber.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct SubscriberResponse {
    pub data: Subscriber,
    pub status: SuccessStatus,
}

/// Successful response carrying one page of subscribers.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct SubscriberPageResponse {
    pub data: SubscriberPage,
    pub status: SuccessStatus,
}

/// Successful response to a public subscription.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct PublicSubscriptionResponse {
    pub data: PublicSubscriptionResult,
    pub status: SuccessStatus,
}
