//! The subscriber bodies of the API, as they appear on the wire and in the spec.

use std::collections::BTreeMap;

use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object};

use super::{Envelope, ListOptin, ListStatus, ListType};
use crate::api::body::BodyFields;
use crate::api::types::{
    AttribsObject, EmailText, ListId, NullableAttribs, SubscriberId, SubscriberNameText, Timestamp,
    WireUuid,
};
use crate::domain;

mirror_enum!(
    SubscriberStatus => SubscriberStatus { Enabled, Disabled, Blocklisted }
);
mirror_enum!(
    SubscriptionStatus => SubscriptionStatus { Unconfirmed, Confirmed, Unsubscribed }
);

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

#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct SubscriberList {
    pub subscription_status: SubscriptionStatus,
    pub subscription_created_at: Timestamp,
    pub subscription_updated_at: Timestamp,
    pub subscription_meta: BTreeMap<String, serde_json::Value>,
    #[oai(validator(minimum(value = "1"), maximum(value = "9223372036854775807")))]
    pub id: i64,
    pub uuid: WireUuid,
    #[oai(validator(max_length = 2000))]
    pub name: String,
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub list_type: ListType,
    pub optin: ListOptin,
    pub status: ListStatus,
    #[oai(validator(max_items = 100, max_length = 100))]
    pub tags: Vec<String>,
    #[oai(validator(max_length = 65536))]
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct Subscriber {
    #[oai(read_only)]
    #[oai(validator(minimum(value = "1"), maximum(value = "9223372036854775807")))]
    pub id: i64,
    #[oai(read_only)]
    pub created_at: Timestamp,
    #[oai(read_only)]
    pub updated_at: Timestamp,
    #[oai(read_only)]
    pub uuid: WireUuid,
    #[oai(validator(max_length = 254))]
    pub email: String,
    #[oai(validator(max_length = 2000))]
    pub name: String,
    pub attribs: BTreeMap<String, serde_json::Value>,
    pub status: SubscriberStatus,
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
                .map(|s| {
                    // Moved out when this subscription holds the list alone (a GET by id), copied when shared.
                    let list = std::sync::Arc::unwrap_or_clone(s.list);
                    SubscriberList {
                        subscription_status: s.status.into(),
                        subscription_created_at: Timestamp(s.created_at),
                        subscription_updated_at: Timestamp(s.updated_at),
                        subscription_meta: BTreeMap::new(),
                        id: list.id,
                        uuid: WireUuid(list.uuid),
                        name: list.name,
                        list_type: list.list_type.into(),
                        optin: list.optin.into(),
                        status: list.status.into(),
                        tags: list.tags,
                        description: list.description,
                        created_at: Timestamp(list.created_at),
                        updated_at: Timestamp(list.updated_at),
                    }
                })
                .collect(),
        }
    }
}

#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct SubscriberPage {
    pub results: Vec<Subscriber>,
    #[oai(validator(max_length = 1000))]
    pub search: String,
    #[oai(validator(max_length = 2000))]
    pub query: String,
    #[oai(validator(minimum(value = "0"), maximum(value = "9223372036854775807")))]
    pub total: i64,
    #[oai(validator(minimum(value = "0"), maximum(value = "999999999")))]
    pub per_page: i64,
    #[oai(validator(minimum(value = "1"), maximum(value = "999999999")))]
    pub page: i64,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(validator(max_length = 12288))]
    pub next: Option<String>,
}

#[derive(Object, Debug, Clone, PartialEq)]
pub struct SubscriberCreate {
    pub email: EmailText,
    pub name: Option<SubscriberNameText>,
    pub status: Option<SubscriberStatus>,
    #[oai(validator(max_items = 1000))]
    pub lists: Option<Vec<ListId>>,
    pub attribs: Option<AttribsObject>,
    pub preconfirm_subscriptions: Option<bool>,
}

/// The fields of a subscriber's JSON bodies (create, replace, patch).
const SUBSCRIBER_FIELDS: &[&str] = &[
    "email",
    "name",
    "status",
    "lists",
    "attribs",
    "preconfirm_subscriptions",
];

impl BodyFields for SubscriberCreate {
    const FIELDS: &'static [&'static str] = SUBSCRIBER_FIELDS;
}

#[derive(Object, Debug, Clone, PartialEq)]
pub struct SubscriberCreateForm {
    pub email: EmailText,
    pub name: Option<SubscriberNameText>,
    pub status: Option<SubscriberStatus>,
}

impl BodyFields for SubscriberCreateForm {
    const FIELDS: &'static [&'static str] = &["email", "name", "status"];
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

impl BodyFields for SubscriberUpdate {
    const FIELDS: &'static [&'static str] = SUBSCRIBER_FIELDS;
}

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

impl BodyFields for SubscriberPatch {
    const FIELDS: &'static [&'static str] = SUBSCRIBER_FIELDS;
    const NULLABLE: &'static [&'static str] = &["attribs"];
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

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum MembershipAction {
    Add,
    Remove,
    Unsubscribe,
}

#[derive(Object, Debug, Clone, PartialEq)]
pub struct SubscriberListsUpdate {
    #[oai(validator(min_items = 1, max_items = 100000))]
    pub ids: Vec<SubscriberId>,
    pub action: MembershipAction,
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub target_list_ids: Vec<ListId>,
    pub status: Option<SubscriptionStatus>,
}

impl BodyFields for SubscriberListsUpdate {
    const FIELDS: &'static [&'static str] = &["ids", "action", "target_list_ids", "status"];
}

#[derive(Object, Debug, Clone, PartialEq)]
pub struct SubscriberIds {
    #[oai(validator(min_items = 1, max_items = 100000))]
    pub ids: Vec<SubscriberId>,
}

impl BodyFields for SubscriberIds {
    const FIELDS: &'static [&'static str] = &["ids"];
}

#[derive(Object, Debug, Clone, PartialEq)]
pub struct PublicSubscriptionJson {
    pub email: EmailText,
    pub name: Option<SubscriberNameText>,
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub list_uuids: Vec<WireUuid>,
}

impl BodyFields for PublicSubscriptionJson {
    const FIELDS: &'static [&'static str] = &["email", "name", "list_uuids"];
}

#[derive(Object, Debug, Clone, PartialEq)]
pub struct PublicSubscriptionForm {
    pub email: EmailText,
    pub name: Option<SubscriberNameText>,
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub l: Vec<WireUuid>,
}

impl BodyFields for PublicSubscriptionForm {
    const FIELDS: &'static [&'static str] = &["email", "name", "l"];
    const REPEATED: &'static [&'static str] = &["l"];
}

#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct PublicSubscriptionResult {
    pub has_optin: bool,
}

pub type SubscriberResponse = Envelope<Subscriber>;
pub type SubscriberPageResponse = Envelope<SubscriberPage>;
pub type PublicSubscriptionResponse = Envelope<PublicSubscriptionResult>;
