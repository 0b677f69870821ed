//! The request and response bodies of the API, as they appear on the wire and in the spec.

use std::collections::BTreeMap;

use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{Enum, Object};

use super::body::BodyFields;
use super::types::{Count, DescriptionText, NameText, TagList, Timestamp, WireUuid};
use crate::domain;

/// Defines an API enum mirroring a domain enum, with conversions both ways.
macro_rules! mirror_enum {
    ($(#[$meta:meta])* $name:ident => $domain:ident { $($variant:ident),+ }) => {
        $(#[$meta])*
        #[derive(Enum, serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
        #[oai(rename_all = "lowercase")]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl From<$name> for domain::$domain {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => domain::$domain::$variant),+ }
            }
        }

        impl From<domain::$domain> for $name {
            fn from(value: domain::$domain) -> Self {
                match value { $(domain::$domain::$variant => $name::$variant),+ }
            }
        }
    };
}

mod imports;
mod subscribers;
pub use imports::*;
pub use subscribers::*;

mirror_enum!(
    ListType => ListType { Public, Private }
);
mirror_enum!(
    ListOptin => Optin { Single, Double }
);
mirror_enum!(
    ListStatus => ListStatus { Active, Archived }
);

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ListOrderBy {
    Id,
    Name,
    Status,
    CreatedAt,
    UpdatedAt,
    SubscriberCount,
}

impl From<ListOrderBy> for domain::OrderBy {
    fn from(value: ListOrderBy) -> Self {
        match value {
            ListOrderBy::Id => domain::OrderBy::Id,
            ListOrderBy::Name => domain::OrderBy::Name,
            ListOrderBy::Status => domain::OrderBy::Status,
            ListOrderBy::CreatedAt => domain::OrderBy::CreatedAt,
            ListOrderBy::UpdatedAt => domain::OrderBy::UpdatedAt,
            ListOrderBy::SubscriberCount => domain::OrderBy::SubscriberCount,
        }
    }
}

#[derive(Enum, serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum SuccessStatus {
    Success,
}

#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct MailingList {
    #[oai(read_only)]
    #[oai(validator(minimum(value = "1"), maximum(value = "9223372036854775807")))]
    pub id: i64,
    #[oai(read_only)]
    pub created_at: Timestamp,
    #[oai(read_only)]
    pub updated_at: Timestamp,
    #[oai(read_only)]
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
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriber_count: Option<Count>,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriber_statuses: Option<BTreeMap<String, Count>>,
}

impl MailingList {
    pub fn from_domain(list: domain::List) -> Self {
        Self {
            id: list.id,
            created_at: Timestamp(list.created_at),
            updated_at: Timestamp(list.updated_at),
            uuid: WireUuid(list.uuid),
            name: list.name,
            list_type: list.list_type.into(),
            optin: list.optin.into(),
            status: list.status.into(),
            tags: list.tags,
            description: list.description,
            subscriber_count: list
                .subscribers
                .as_ref()
                .map(|counts| Count(i64::try_from(counts.total()).unwrap_or(i64::MAX))),
            subscriber_statuses: list.subscribers.map(|counts| {
                counts
                    .0
                    .into_iter()
                    .map(|(status, n)| {
                        (
                            status.to_string(),
                            Count(i64::try_from(n).unwrap_or(i64::MAX)),
                        )
                    })
                    .collect()
            }),
        }
    }
}

#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct MailingListPage {
    pub results: Vec<MailingList>,
    #[oai(validator(minimum(value = "0"), maximum(value = "9223372036854775807")))]
    pub total: i64,
    #[oai(validator(minimum(value = "0"), maximum(value = "999999999")))]
    pub per_page: i64,
    #[oai(validator(minimum(value = "1"), maximum(value = "999999999")))]
    pub page: i64,
}

#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct PublicMailingList {
    pub uuid: WireUuid,
    #[oai(validator(max_length = 2000))]
    pub name: String,
}

#[derive(Object, Debug, Clone, PartialEq)]
pub struct MailingListCreate {
    pub name: NameText,
    #[oai(rename = "type")]
    pub list_type: Option<ListType>,
    pub optin: Option<ListOptin>,
    pub status: Option<ListStatus>,
    pub tags: Option<TagList>,
    pub description: Option<DescriptionText>,
}

impl BodyFields for MailingListCreate {
    const FIELDS: &'static [&'static str] =
        &["name", "type", "optin", "status", "tags", "description"];
    const REPEATED: &'static [&'static str] = &["tags"];
}

#[derive(Object, Debug, Clone, Default, PartialEq)]
pub struct MailingListUpdate {
    pub name: Option<NameText>,
    #[oai(rename = "type")]
    pub list_type: Option<ListType>,
    pub optin: Option<ListOptin>,
    pub status: Option<ListStatus>,
    pub tags: Option<TagList>,
    pub description: Option<DescriptionText>,
}

impl BodyFields for MailingListUpdate {
    const FIELDS: &'static [&'static str] = MailingListCreate::FIELDS;
    const REPEATED: &'static [&'static str] = MailingListCreate::REPEATED;
}

impl From<MailingListCreate> for MailingListUpdate {
    fn from(fields: MailingListCreate) -> Self {
        Self {
            name: Some(fields.name),
            list_type: fields.list_type,
            optin: fields.optin,
            status: fields.status,
            tags: fields.tags,
            description: fields.description,
        }
    }
}

impl From<MailingListCreate> for domain::ListFields {
    fn from(fields: MailingListCreate) -> Self {
        MailingListUpdate::from(fields).into()
    }
}

impl From<MailingListUpdate> for domain::ListFields {
    fn from(fields: MailingListUpdate) -> Self {
        Self {
            name: fields.name.map(|n| n.0),
            list_type: fields.list_type.map(Into::into),
            optin: fields.optin.map(Into::into),
            status: fields.status.map(Into::into),
            tags: fields
                .tags
                .map(|tags| tags.0.into_iter().map(|t| t.0).collect()),
            description: fields.description.map(|d| d.0),
        }
    }
}

// How listmonk wraps every successful answer: `{"data": …, "status": "success"}` (described in openapi.yaml).
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct Envelope<T: ParseFromJSON + ToJSON + serde::Serialize> {
    pub data: T,
    pub status: SuccessStatus,
}

impl<T: ParseFromJSON + ToJSON + serde::Serialize> Envelope<T> {
    pub fn success(data: T) -> Self {
        Self {
            data,
            status: SuccessStatus::Success,
        }
    }
}

pub type MailingListResponse = Envelope<MailingList>;
pub type MailingListPageResponse = Envelope<MailingListPage>;
pub type BooleanResponse = Envelope<bool>;

#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct ErrorResponse {
    #[oai(validator(max_length = 4096))]
    pub message: String,
}
