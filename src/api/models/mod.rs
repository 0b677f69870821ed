//! The request and response bodies of the API, as they appear on the wire and in the spec.

use std::collections::BTreeMap;

use poem_openapi::{Enum, Object};

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

mod subscribers;
pub use subscribers::*;

mirror_enum!(
    /// `public` lists appear on subscription forms; `private` lists do not.
    ListType => ListType { Public, Private }
);
mirror_enum!(
    /// `double` opt-in asks subscribers to confirm; `single` does not.
    ListOptin => Optin { Single, Double }
);
mirror_enum!(
    /// `archived` lists are hidden from list selectors in campaigns, public subscription forms and roles, but can
    /// still be read by filtering with `status=archived` or by listing without a status filter.
    ListStatus => ListStatus { Active, Archived }
);

/// The field a listing is sorted by.
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

/// Always `success` on a successful response.
#[derive(Enum, serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum SuccessStatus {
    Success,
}

/// A mailing list.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct MailingList {
    /// Numeric id, assigned by the server.
    #[oai(read_only)]
    #[oai(validator(minimum(value = "1"), maximum(value = "9223372036854775807")))]
    pub id: i64,
    /// When the list was created.
    #[oai(read_only)]
    pub created_at: Timestamp,
    /// When the list last changed.
    #[oai(read_only)]
    pub updated_at: Timestamp,
    /// Random (v4) UUID, assigned by the server.
    #[oai(read_only)]
    pub uuid: WireUuid,
    /// The list's name (as stored: at most 2,000 characters).
    #[oai(validator(max_length = 2000))]
    pub name: String,
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub list_type: ListType,
    pub optin: ListOptin,
    pub status: ListStatus,
    /// Tags, in the order given; never null (as stored: at most 100, of at most 100 characters).
    #[oai(validator(max_items = 100, max_length = 100))]
    pub tags: Vec<String>,
    /// Free-text description; empty when none was given.
    #[oai(validator(max_length = 65536))]
    pub description: String,
    /// Subscriptions on the list, of every status (as listmonk counts them), exact as of this response; left out
    /// when `minimal=true`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriber_count: Option<Count>,
    /// Subscriptions by status (`unconfirmed`, `confirmed`, `unsubscribed`); `{}` when there are none; left out
    /// when `minimal=true`.
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

/// One page of lists.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct MailingListPage {
    /// The lists on this page.
    pub results: Vec<MailingList>,
    /// How many lists match the filters, over all pages.
    #[oai(validator(minimum(value = "0"), maximum(value = "9223372036854775807")))]
    pub total: i64,
    /// Rows per page; `0` when `per_page=all` was requested.
    #[oai(validator(minimum(value = "0"), maximum(value = "999999999")))]
    pub per_page: i64,
    /// This page's number, from 1.
    #[oai(validator(minimum(value = "1"), maximum(value = "999999999")))]
    pub page: i64,
}

/// A list as offered on public subscription forms.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct PublicMailingList {
    /// The list's UUID, used to subscribe.
    pub uuid: WireUuid,
    /// The list's name.
    #[oai(validator(max_length = 2000))]
    pub name: String,
}

/// A new list, sent as JSON, as a URL-encoded form or as multipart form data (give `tags` once per tag in
/// forms). Unknown fields are ignored. Only `name` is required; the rest default to `type=private`,
/// `optin=single`, `status=active`, `tags=[]` and `description=""`.
///
/// Names are trimmed and must not be blank. Tags are trimmed, inner whitespace becomes `-`, empty and repeated
/// tags are dropped; case is kept.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct MailingListCreate {
    /// Name of the new list.
    pub name: NameText,
    /// Type of list. Defaults to `private`.
    #[oai(rename = "type")]
    pub list_type: Option<ListType>,
    /// Opt-in type. Defaults to `single`.
    pub optin: Option<ListOptin>,
    /// Status of the list. Defaults to `active`.
    pub status: Option<ListStatus>,
    /// Associated tags for the list.
    pub tags: Option<TagList>,
    /// Description of the new list.
    pub description: Option<DescriptionText>,
}

/// Changes to a list, sent as JSON, as a URL-encoded form or as multipart form data (give `tags` once per tag in
/// forms). Every field is optional: fields left out keep their value, fields sent are set (`"tags": []` clears
/// the tags, `"description": ""` clears the description). `null` is refused: leave the field out. Unknown
/// fields are ignored; the same rules as on create apply to names and tags.
#[derive(Object, Debug, Clone, Default, PartialEq)]
pub struct MailingListUpdate {
    /// New name for the list.
    pub name: Option<NameText>,
    /// Type of list.
    #[oai(rename = "type")]
    pub list_type: Option<ListType>,
    /// Opt-in type.
    pub optin: Option<ListOptin>,
    /// Status of the list.
    pub status: Option<ListStatus>,
    /// Associated tags for the list.
    pub tags: Option<TagList>,
    /// Description of the list.
    pub description: Option<DescriptionText>,
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

/// Successful response carrying one list.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct MailingListResponse {
    pub data: MailingList,
    pub status: SuccessStatus,
}

/// Successful response carrying one page of lists.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct MailingListPageResponse {
    pub data: MailingListPage,
    pub status: SuccessStatus,
}

/// Successful response whose payload is `true`.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct BooleanResponse {
    pub data: bool,
    pub status: SuccessStatus,
}

impl BooleanResponse {
    pub fn yes() -> Self {
        Self {
            data: true,
            status: SuccessStatus::Success,
        }
    }
}

/// Every error: a human-readable message.
#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct ErrorResponse {
    /// What went wrong (at most [`crate::api::error::MESSAGE_MAX_CHARS`] characters).
    #[oai(validator(max_length = 4096))]
    pub message: String,
}
