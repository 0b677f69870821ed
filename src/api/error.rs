//! The one mapping from failures to HTTP: `ApiError` for the handlers, and the middleware that gives the
//! framework's own errors (bad parameters, unknown routes, wrong methods, media types) the same JSON shape.

use super::payload::JsonBody;
use poem::http::{HeaderValue, Method, StatusCode, Uri, header};
use poem::{IntoResponse, Request, Response};

use super::catalog::Catalog;
use super::models::ErrorResponse;
use crate::service::{AuthError, ServiceError};

/// Seconds a client should wait before retrying when the database is unavailable.
pub const RETRY_AFTER_SECONDS: i32 = 5;

/// An error answer: a status, a message for the client and, for 429 and 503, when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for the `Retry-After` header.
    pub retry_after: Option<i32>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn too_many_requests(retry_after: std::time::Duration) -> Self {
        // Round up: retrying earlier than allowed would be refused again.
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self {
            retry_after: Some(i32::try_from(seconds.max(1)).unwrap_or(i32::MAX)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests; retry after the number of seconds in Retry-After",
            )
        }
    }

    /// The database did not answer in time, or a request ran past the configured timeout.
    pub fn timed_out() -> Self {
        Self {
            retry_after: Some(RETRY_AFTER_SECONDS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the request timed out; retry later",
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn unavailable() -> Self {
        Self {
            retry_after: Some(RETRY_AFTER_SECONDS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable; retry later",
            )
        }
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    pub fn body(self) -> JsonBody<ErrorResponse> {
        JsonBody(ErrorResponse {
            message: self.message,
        })
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::NotFound(what) => {
                Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            ServiceError::Conflict(message) => Self::new(StatusCode::CONFLICT, message),
            ServiceError::Rejected(message) => Self::bad_request(message),
            ServiceError::Forbidden => Self::forbidden("permission denied"),
            ServiceError::Invalid(err) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, err.0),
            ServiceError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                Self::unavailable()
            }
            ServiceError::Database(source) => {
                tracing::error!(error = %source, "database error");
                Self::internal()
            }
        }
    }
}

/// How to authenticate, for 403 answers.
pub const AUTH_HINT: &str =
    "use BasicAuth (admin:password or api_user:token) or `Authorization: token api_user:token`";

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Missing => Self::forbidden(format!("authentication required: {AUTH_HINT}")),
            AuthError::Malformed(_) => Self::forbidden(format!("{err}; {AUTH_HINT}")),
            AuthError::Invalid => Self::forbidden("invalid credentials"),
            AuthError::Service(err) => err.into(),
        }
    }
}

impl From<crate::domain::ValidationError> for ApiError {
    fn from(err: crate::domain::ValidationError) -> Self {
        ServiceError::Invalid(err).into()
    }
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let mut response = self.clone().body().into_response();
        response.set_status(self.status);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// Declares an operation's error type: the error statuses it documents, and always 429, 500 and 503. It holds an
/// [`ApiError`] and is answered through the one mapping ([`error_response`]); its only other job is to put the
/// statuses into the spec. Converting an `ApiError` whose status the operation does not document is a bug: it
/// is logged and answered 500.
macro_rules! operation_errors {
    (
        $(#[$meta:meta])* $name:ident,
        { $($(#[$vmeta:meta])* $status:literal => $variant:ident),* $(,)? }
    ) => {
        $crate::api::error::operation_errors!($(#[$meta])* $name, { $($(#[$vmeta])* $status => $variant),* }
            without_body {});
    };
    // `without_body` lists statuses that the HTTP layer answers before Roster sees the request (so with no
    // JSON body); they are documented, never built by Roster.
    (
        $(#[$meta:meta])* $name:ident,
        { $($(#[$vmeta:meta])* $status:literal => $variant:ident),* $(,)? }
        without_body { $($(#[$bmeta:meta])* $bstatus:literal => $bvariant:ident),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name($crate::api::error::ApiError);

        const _: () = {
            use $crate::api::models::ErrorResponse;
            use $crate::api::payload::JsonBody;

            /// What the spec says of the errors; never built.
            #[derive(poem_openapi::ApiResponse)]
            #[allow(dead_code)]
            enum Documented {
                $(
                    $(#[$vmeta])*
                    #[oai(status = $status)]
                    $variant(JsonBody<ErrorResponse>),
                )*
                $(
                    $(#[$bmeta])*
                    #[oai(status = $bstatus)]
                    $bvariant,
                )*
                /// Too many requests from this caller (per API user, or per client address without credentials,
                /// or too many failed logins from this address). Retry after the number of seconds in
                /// `Retry-After`.
                #[oai(status = 429)]
                TooManyRequests(
                    JsonBody<ErrorResponse>,
                    /// Seconds to wait before retrying.
                    #[oai(header = "Retry-After")]
                    i32,
                ),
                /// An unexpected error; details are logged by the server, never shown.
                #[oai(status = 500)]
                Internal(JsonBody<ErrorResponse>),
                /// The database is unreachable. Retry after the number of seconds in `Retry-After`.
                #[oai(status = 503)]
                Unavailable(
                    JsonBody<ErrorResponse>,
                    /// Seconds to wait before retrying.
                    #[oai(header = "Retry-After")]
                    i32,
                ),
            }

            impl poem_openapi::ApiResponse for $name {
                fn meta() -> poem_openapi::registry::MetaResponses {
                    <Documented as poem_openapi::ApiResponse>::meta()
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

/// A `200` answer carrying `T` as JSON: the success side of every operation.
pub struct Success<T>(pub T);

impl<T: poem_openapi::types::Type + serde::Serialize + Send> poem_openapi::ApiResponse
    for Success<T>
{
    fn meta() -> poem_openapi::registry::MetaResponses {
        use poem_openapi::payload::Payload;
        poem_openapi::registry::MetaResponses {
            responses: vec![poem_openapi::registry::MetaResponse {
                description: "Success.",
                status: Some(200),
                status_range: None,
                content: vec![poem_openapi::registry::MetaMediaType {
                    content_type: JsonBody::<T>::CONTENT_TYPE,
                    schema: JsonBody::<T>::schema_ref(),
                }],
                headers: vec![],
            }],
        }
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

/// Answers a panic in a handler with the JSON 500 (with `CatchPanic`); the panic itself is logged.
pub fn panic_response(_: Box<dyn std::any::Any + Send>) -> Response {
    tracing::error!("request handler panicked");
    poem::error::ResponseError::as_response(&ApiError::internal())
}

/// What the error mapping needs to know about the request after the endpoint has consumed it.
pub struct RequestFacts {
    method: Method,
    uri: Uri,
    pub has_authorization: bool,
    empty_body: bool,
}

impl RequestFacts {
    pub fn of(req: &Request) -> Self {
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            has_authorization: req.headers().contains_key(header::AUTHORIZATION),
            empty_body: req
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_none_or(|len| len.as_bytes() == b"0")
                && !req.headers().contains_key(header::TRANSFER_ENCODING),
        }
    }
}

/// Answers every error, the framework's included, with the JSON error body and the documented status (called by
/// `front::Front` around every request).
pub fn error_response(err: poem::Error, facts: &RequestFacts, catalog: &Catalog) -> Response {
    let path = facts.uri.path();
    use poem::error::{MethodNotAllowedError, NotFoundError};
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParsePathError, ParseRequestPayloadError,
    };

    if let Some(api) = err.downcast_ref::<ApiError>() {
        return poem::error::ResponseError::as_response(api);
    }
    let api = if err.is::<NotFoundError>() {
        ApiError::new(StatusCode::NOT_FOUND, format!("unknown endpoint: {path}"))
    } else if err.is::<MethodNotAllowedError>() {
        let allow = catalog.allow(path);
        let mut response = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {} is not allowed here; use {allow}", facts.method),
        )
        .body()
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(header::ALLOW, value);
        }
        return response;
    } else if err.is::<AuthorizationError>() {
        // Raised by the framework before any checker runs: no usable header at all.
        ApiError::from(if facts.has_authorization {
            AuthError::Malformed("not visible ASCII")
        } else {
            AuthError::Missing
        })
    } else if let Some(content_type) = err.downcast_ref::<ContentTypeError>() {
        match content_type {
            ContentTypeError::ExpectContentType if facts.empty_body => {
                ApiError::bad_request("a request body is required (`name` at least)")
            }
            other => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "{other}; send application/json, application/x-www-form-urlencoded or multipart/form-data"
                ),
            ),
        }
    } else if let Some(path) = err.downcast_ref::<ParsePathError>() {
        // The framework names path parameters `param0`, ...; the reason names the real one.
        ApiError::bad_request(path.reason.clone())
    } else if let Some(payload) = err.downcast_ref::<ParseRequestPayloadError>() {
        ApiError::bad_request(format!("invalid request body: {}", payload.reason))
    } else if err.status().is_server_error() {
        tracing::error!(error = %err, "unhandled error");
        ApiError::internal()
    } else {
        ApiError::new(err.status(), err.to_string())
    };
    poem::error::ResponseError::as_response(&api)
}
