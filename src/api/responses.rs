//! What the spec says of each operation's answers: `operation_errors!` declares an operation's error type with
//! the statuses it documents, `Success<T>` its 200, and `documented_headers` the headers Roster writes on them.
//! How errors are answered is in `error.rs`.

use std::marker::PhantomData;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use serde::Serialize;

use super::conditions::{Encoded, encode, has_current};
use super::error::ApiError;
use super::payload::{JsonBody, json_response};

/// Declares an operation's error type: the error statuses it documents, and always 414 (which the HTTP layer
/// answers for any URL over 65,534 bytes, before Roster sees the request, so without a body), 429, 500 and 503.
/// It holds an [`ApiError`](super::error::ApiError) and is answered through the one mapping ([`error_response`](super::error::error_response)); its only other job is
/// to put the statuses into the spec. Converting an `ApiError` whose status the operation does not document is a
/// bug: it is logged and answered 500.
macro_rules! operation_errors {
    (
        $(#[$meta:meta])* $name:ident,
        { $($(#[$vmeta:meta])* $status:literal => $variant:ident),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name($crate::api::error::ApiError);

        const _: () = {
            use $crate::api::models::ErrorResponse;
            use $crate::api::payload::JsonBody;

            /// What the spec says of the errors; never built. Headers are added by `documented_headers`.
            #[derive(poem_openapi::ApiResponse)]
            #[allow(dead_code)]
            enum Documented {
                $(
                    $(#[$vmeta])*
                    #[oai(status = $status)]
                    $variant(JsonBody<ErrorResponse>),
                )*
                // Answers every operation may give; what they mean is said in openapi.yaml only.
                #[oai(status = 414)]
                UriTooLong,
                #[oai(status = 429)]
                TooManyRequests(JsonBody<ErrorResponse>),
                #[oai(status = 500)]
                Internal(JsonBody<ErrorResponse>),
                #[oai(status = 503)]
                Unavailable(JsonBody<ErrorResponse>),
            }

            impl poem_openapi::ApiResponse for $name {
                fn meta() -> poem_openapi::registry::MetaResponses {
                    $crate::api::responses::documented_headers(<Documented as poem_openapi::ApiResponse>::meta())
                }

                fn register(registry: &mut poem_openapi::registry::Registry) {
                    <Documented as poem_openapi::ApiResponse>::register(registry);
                }
            }
        };

        impl From<$crate::api::error::ApiError> for $name {
            fn from(err: $crate::api::error::ApiError) -> Self {
                match err.status.as_u16() {
                    $($status)|* | 429 | 500 | 503 => Self(err),
                    status => {
                        tracing::error!(status, message = %err.message, "undocumented error status");
                        Self($crate::api::error::ApiError::internal())
                    }
                }
            }
        }

        impl From<$crate::service::ServiceError> for $name {
            fn from(err: $crate::service::ServiceError) -> Self {
                $crate::api::error::ApiError::from(err).into()
            }
        }

        impl From<$crate::domain::ValidationError> for $name {
            fn from(err: $crate::domain::ValidationError) -> Self {
                $crate::api::error::ApiError::from(err).into()
            }
        }

        impl From<$name> for poem::Error {
            fn from(err: $name) -> Self {
                err.0.into()
            }
        }
    };
}
pub(crate) use operation_errors;

fn integer_header(
    name: &str,
    required: bool,
    format: &'static str,
    bounds: (f64, f64),
) -> poem_openapi::registry::MetaHeader {
    use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
    let mut schema = MetaSchema::new_with_format("integer", format);
    (schema.minimum, schema.maximum) = (Some(bounds.0), Some(bounds.1));
    poem_openapi::registry::MetaHeader {
        name: name.into(),
        description: None,
        required,
        deprecated: false,
        schema: MetaSchemaRef::Inline(Box::new(schema)),
    }
}

/// The `ETag` header (see `conditions`): 32 hex digits between quotes.
fn etag_header() -> poem_openapi::registry::MetaHeader {
    use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
    let mut schema = MetaSchema::new("string");
    (schema.min_length, schema.max_length) = (Some(34), Some(34));
    schema.pattern = Some("^\"[0-9a-f]{32}\"$".into());
    poem_openapi::registry::MetaHeader {
        name: "ETag".into(),
        description: None,
        required: true,
        deprecated: false,
        schema: MetaSchemaRef::Inline(Box::new(schema)),
    }
}

/// Adds to an operation's documented answers the headers Roster writes on them (described in openapi.yaml only): `Retry-After` on 429 and 503
/// (and on a 409 for a retry too early), the current `ETag` on 412, and the rate-limit headers (`limits::Quota`) on every answer but the HTTP layer's bodiless 414.
pub fn documented_headers(
    mut meta: poem_openapi::registry::MetaResponses,
) -> poem_openapi::registry::MetaResponses {
    let most = f64::from(u32::MAX);
    for response in &mut meta.responses {
        match response.status {
            Some(414) => continue,
            // The current tag, so that the caller can read what changed and decide again.
            Some(412) => response.headers.push(etag_header()),
            // On a retry whose first attempt is still being carried out (`Idempotency-Key`).
            Some(409) => response.headers.push(integer_header(
                "Retry-After",
                false,
                "int32",
                (1.0, f64::from(i32::MAX)),
            )),
            Some(429 | 503) => response.headers.push(integer_header(
                "Retry-After",
                true,
                "int32",
                (1.0, f64::from(i32::MAX)),
            )),
            _ => {}
        }
        response.headers.extend([
            integer_header("RateLimit-Limit", false, "int64", (1.0, most)),
            integer_header("RateLimit-Remaining", false, "int64", (0.0, most)),
            integer_header("RateLimit-Reset", false, "int64", (0.0, most)),
        ]);
    }
    meta
}

/// A `200` answer carrying `T` as JSON: the success side of every operation.
pub struct Success<T>(pub T);

impl<T: poem_openapi::types::Type + serde::Serialize + Send> poem_openapi::ApiResponse
    for Success<T>
{
    fn meta() -> poem_openapi::registry::MetaResponses {
        documented_headers(poem_openapi::registry::MetaResponses {
            responses: vec![json_200::<T>(vec![])],
        })
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        <JsonBody<T> as poem_openapi::payload::Payload>::register(registry);
    }
}

impl<T: poem_openapi::types::Type + serde::Serialize + Send> IntoResponse for Success<T> {
    fn into_response(self) -> Response {
        JsonBody(self.0).into_response()
    }
}

/// A `200` answer carrying one list or subscriber as JSON, with its `ETag`.
pub struct Tagged<T> {
    encoded: Encoded,
    of: PhantomData<T>,
}

impl<T: Serialize> Tagged<T> {
    pub fn new(value: &T) -> Result<Self, ApiError> {
        Ok(Self {
            encoded: encode(value)?,
            of: PhantomData,
        })
    }

    pub fn tag(&self) -> &str {
        &self.encoded.tag
    }
}

impl<T: poem_openapi::types::Type + Send> poem_openapi::ApiResponse for Tagged<T> {
    fn meta() -> poem_openapi::registry::MetaResponses {
        documented_headers(poem_openapi::registry::MetaResponses {
            responses: vec![tagged_200::<T>()],
        })
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        <JsonBody<T> as poem_openapi::payload::Payload>::register(registry);
    }
}

/// A 200 carrying `T` as JSON, with `headers`.
fn json_200<T: poem_openapi::types::Type>(
    headers: Vec<poem_openapi::registry::MetaHeader>,
) -> poem_openapi::registry::MetaResponse {
    use poem_openapi::payload::Payload;
    poem_openapi::registry::MetaResponse {
        description: "",
        status: Some(200),
        status_range: None,
        content: vec![poem_openapi::registry::MetaMediaType {
            content_type: JsonBody::<T>::CONTENT_TYPE,
            schema: JsonBody::<T>::schema_ref(),
        }],
        headers,
    }
}

fn tagged_200<T: poem_openapi::types::Type>() -> poem_openapi::registry::MetaResponse {
    json_200::<T>(vec![etag_header()])
}

fn with_tag(mut response: Response, tag: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

impl<T: Send> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        with_tag(json_response(self.encoded.body), &self.encoded.tag)
    }
}

/// A `GET` of one list or subscriber: the representation with its `ETag`, or `304` when the caller's
/// `If-None-Match` names it.
pub enum Cached<T> {
    Fresh(Tagged<T>),
    NotModified(String),
}

impl<T: Serialize> Cached<T> {
    /// `value`, or 304 when `if_none_match` names its tag.
    pub fn new(value: &T, if_none_match: Option<&str>) -> Result<Self, ApiError> {
        let tagged = Tagged::new(value)?;
        Ok(match if_none_match {
            Some(header) if has_current(header, tagged.tag()) => {
                Self::NotModified(tagged.encoded.tag)
            }
            _ => Self::Fresh(tagged),
        })
    }
}

impl<T: poem_openapi::types::Type + Send> poem_openapi::ApiResponse for Cached<T> {
    fn meta() -> poem_openapi::registry::MetaResponses {
        documented_headers(poem_openapi::registry::MetaResponses {
            responses: vec![
                tagged_200::<T>(),
                poem_openapi::registry::MetaResponse {
                    description: "",
                    status: Some(304),
                    status_range: None,
                    content: vec![],
                    headers: vec![etag_header()],
                },
            ],
        })
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        <JsonBody<T> as poem_openapi::payload::Payload>::register(registry);
    }
}

impl<T: Send> IntoResponse for Cached<T> {
    fn into_response(self) -> Response {
        match self {
            Self::Fresh(tagged) => tagged.into_response(),
            Self::NotModified(tag) => with_tag(
                Response::builder()
                    .status(StatusCode::NOT_MODIFIED)
                    .finish(),
                &tag,
            ),
        }
    }
}
