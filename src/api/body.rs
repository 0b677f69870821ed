//! The list body of POST and PUT, accepted as JSON, URL-encoded form or multipart form data. All three parse into
//! the same body type, so the list rules are applied in one place whatever the media type.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::ApiRequest;
use poem_openapi::error::ParseRequestPayloadError;
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;

use super::models::{MailingListCreate, MailingListUpdate};
use crate::domain::ListFields;

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

/// Defines a payload type for a list body in one more media type.
macro_rules! form_payload {
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

form_payload!(
    /// `application/x-www-form-urlencoded`, with `tags` repeated once per tag.
    FormFields,
    "application/x-www-form-urlencoded"
);

impl<T: Type + DeserializeOwned> ParsePayload for FormFields<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(req, body).await?;
        serde_html_form::from_bytes(&data)
            .map(Self)
            .map_err(unreadable)
    }
}

form_payload!(
    /// `multipart/form-data`, as sent by `curl --form`, with `tags` repeated once per tag.
    MultipartFields,
    "multipart/form-data"
);

impl<T: Type + DeserializeOwned> ParsePayload for MultipartFields<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let mut multipart = poem::web::Multipart::from_request(req, body).await?;
        // Re-encode the text parts as a URL-encoded form so both form media types share one parser.
        let mut pairs = Vec::new();
        while let Some(field) = multipart.next_field().await? {
            let name = field.name().map(str::to_owned);
            let value = field.text().await.map_err(unreadable)?;
            if let Some(name) = name {
                pairs.push((name, value));
            }
        }
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        serde_html_form::from_str(&form)
            .map(Self)
            .map_err(unreadable)
    }
}

/// Defines the request body of an operation: the same fields in each accepted media type.
macro_rules! list_body {
    ($(#[$meta:meta])* $name:ident, $fields:ty) => {
        $(#[$meta])*
        #[derive(ApiRequest)]
        pub enum $name {
            Json(Json<$fields>),
            Form(FormFields<$fields>),
            Multipart(MultipartFields<$fields>),
        }

        impl $name {
            pub fn into_fields(self) -> ListFields {
                match self {
                    $name::Json(Json(fields)) => fields.into(),
                    $name::Form(FormFields(fields)) => fields.into(),
                    $name::Multipart(MultipartFields(fields)) => fields.into(),
                }
            }
        }
    };
}

list_body!(
    /// The new list.
    CreateListBody,
    MailingListCreate
);
list_body!(
    /// The fields to change.
    UpdateListBody,
    MailingListUpdate
);
