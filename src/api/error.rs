//! The one mapping from failures to HTTP: `ApiError` for the handlers, and `error_response`, which gives the
//! framework's own errors (bad parameters, unknown routes, wrong methods, media types) the same JSON shape. What
//! the spec says of each operation's answers is in `responses.rs`.

use super::payload::JsonBody;
use poem::http::{HeaderValue, Method, StatusCode, Uri, header};
use poem::{IntoResponse, Request, Response};

use super::catalog::Catalog;
use super::models::ErrorResponse;
use crate::service::{AuthError, ServiceError};

/// Seconds a client should wait before retrying when the database is unavailable.
pub const RETRY_AFTER_SECONDS: i32 = 5;

/// Longest error message, in characters (the spec's `maxLength`): a message quoting what the client sent is cut
/// to it, so that an error never echoes a whole URL or body back.
pub const MESSAGE_MAX_CHARS: usize = 4096;

/// An error answer: a status, a message for the client and, for 429 and 503, when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for the `Retry-After` header.
    pub retry_after: Option<i32>,
    /// The current entity tag, for the `ETag` header of a 412.
    pub etag: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            etag: None,
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
        let mut message = self.message;
        if let Some((cut, _)) = message.char_indices().nth(MESSAGE_MAX_CHARS - 1)
            && message[cut..].chars().nth(1).is_some()
        {
            message.truncate(cut);
            message.push('…');
        }
        JsonBody(ErrorResponse { message })
    }

    /// Seconds for `Retry-After`: every 429 and 503 carries one, also one built without saying when.
    fn retry_after(&self) -> Option<i32> {
        let must = matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        );
        self.retry_after.or(must.then_some(RETRY_AFTER_SECONDS))
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::NotFound(what) => {
                Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            ServiceError::Conflict(message) => Self::new(StatusCode::CONFLICT, message),
            ServiceError::PreconditionFailed(tag) => Self {
                etag: Some(tag),
                ..Self::new(
                    StatusCode::PRECONDITION_FAILED,
                    "If-Match does not name the current version; its ETag is in this answer's ETag header",
                )
            },
            ServiceError::Rejected(message) => Self::bad_request(message),
            ServiceError::Forbidden => Self::forbidden("permission denied"),
            ServiceError::Invalid(err) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, err.0),
            ServiceError::GrantsChanged => Self {
                retry_after: Some(1),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the caller's roles or credentials changed while this write was in flight; nothing was \
                     written. Send it again: it will be checked against them as they are now",
                )
            },
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
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(value) = self
            .etag
            .as_deref()
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            response.headers_mut().insert(header::ETAG, value);
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

/// What a body must hold, by operation, for the message answering a request without one (the `required` of each
/// body in the spec; `tests/api/seeds.rs` checks the lists' case the seed documents).
fn required_fields(operation: &str) -> &'static str {
    match operation {
        "createList" => "`name` at least",
        "createSubscriber" | "updateSubscriber" => "`email` at least",
        "createPublicSubscription" => "`email` and the lists at least",
        "manageSubscriberLists" => "`ids`, `action` and `target_list_ids` at least",
        "blocklistSubscribers" => "`ids`",
        "updateList" | "patchSubscriber" => "the fields to change",
        _ => "see the operation's request body",
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
                let operation = catalog.operation(&facts.method, path).map(|op| op.id);
                ApiError::bad_request(format!(
                    "a request body is required ({})",
                    required_fields(operation.unwrap_or_default())
                ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use poem::error::ResponseError;

    #[test]
    fn every_429_and_503_says_when_to_retry_however_it_was_built() {
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            let response = ApiError::new(status, "busy").as_response();
            assert_eq!(response.headers()[header::RETRY_AFTER], "5", "{status}");
        }
        let own = ApiError::too_many_requests(std::time::Duration::from_millis(1_500));
        assert_eq!(own.as_response().headers()[header::RETRY_AFTER], "2");
        let not_found = ApiError::new(StatusCode::NOT_FOUND, "gone").as_response();
        assert!(!not_found.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn messages_are_cut_to_the_documented_length() {
        let long = ApiError::bad_request("é".repeat(MESSAGE_MAX_CHARS + 10))
            .body()
            .0
            .message;
        assert_eq!(long.chars().count(), MESSAGE_MAX_CHARS);
        assert!(long.ends_with('…'));
        let exact = "x".repeat(MESSAGE_MAX_CHARS);
        assert_eq!(ApiError::bad_request(exact.clone()).body().0.message, exact);
    }
}
