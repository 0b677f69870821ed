//! `Idempotency-Key` on every operation that is not a `GET`: the first request with a key is carried out and its
//! answer kept (`service::IdempotencyService`); a retry with the same key and the same request gets that answer
//! without anything running again. The request's fingerprint (method, path and query, content type, body; a
//! multipart body by its parts, since clients pick a new boundary per attempt) must match, else 422; a retry
//! arriving while the first is still being carried out gets 409 with `Retry-After`.
//!
//! A keyed request runs in a task of its own, so that a client that disconnects cannot stop it between claiming
//! its key and running, or between its write's commit and the recording of its answer. The request timeout still
//! applies, inside that task.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use poem_openapi::types::ParseFromParameter;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::catalog::Catalog;
use super::context::{caller, deadline, resolved};
use super::error::{ApiError, RequestFacts, error_response, panic_response};
use super::types::IdempotencyKey;
use crate::domain::Principal;
use crate::service::{Claimed, IdempotencyService, StoredAnswer, carrying};

/// The header.
const HEADER: &str = "idempotency-key";

/// Seconds a retry is told to wait while the first attempt is still running.
const IN_PROGRESS_RETRY_AFTER: i32 = 1;

/// The middleware; inside authentication, the body limit and the caller's fair share of the database, so the caller
/// is known, the body bounded and the key's statements counted against the caller.
pub struct Idempotent {
    pub service: IdempotencyService,
    pub catalog: Arc<Catalog>,
}

impl<E: Endpoint + 'static> Middleware<E> for Idempotent {
    type Output = IdempotentEndpoint<E>;

    fn transform(&self, next: E) -> Self::Output {
        IdempotentEndpoint {
            next: Arc::new(next),
            service: self.service.clone(),
            catalog: self.catalog.clone(),
        }
    }
}

pub struct IdempotentEndpoint<E> {
    next: Arc<E>,
    service: IdempotencyService,
    catalog: Arc<Catalog>,
}

/// Who a key belongs to: keys are per caller, so no caller can read or collide with another's.
fn owner(req: &Request) -> String {
    match caller(req) {
        Some(Principal::Admin { username }) => format!("admin:{username}"),
        Some(Principal::ApiUser { id, .. }) => format!("user:{id}"),
        None => format!("address:{}", resolved(req).address),
    }
}

/// The key as sent, if any.
fn key_of(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    // A value that is not text is refused like any other malformed key (an empty one).
    IdempotencyKey::parse_from_parameter(value.to_str().unwrap_or_default())
        .map(Some)
        .map_err(|err| ApiError::bad_request(err.into_message()))
}

/// Adds one length-prefixed field to a fingerprint, so that no two different sequences of fields hash alike.
fn feed(hash: &mut Sha256, field: &[u8]) {
    hash.update((field.len() as u64).to_be_bytes());
    hash.update(field);
}

/// The request as a retry must repeat it.
async fn fingerprint(req: &Request, body: &Bytes) -> String {
    let mut hash = Sha256::new();
    feed(&mut hash, req.method().as_str().as_bytes());
    let target = req.uri().path_and_query().map_or("", |pq| pq.as_str());
    feed(&mut hash, target.as_bytes());
    // A condition makes it another request: a retry with a fresh tag is a new attempt, with a key of its own.
    for condition in [header::IF_MATCH, header::IF_NONE_MATCH] {
        feed(
            &mut hash,
            req.headers()
                .get(condition)
                .map_or(&b""[..], |v| v.as_bytes()),
        );
    }
    let content_type = req.content_type().unwrap_or_default();
    match multer::parse_boundary(content_type) {
        Ok(boundary) => {
            feed(&mut hash, b"multipart/form-data");
            let mut parts = Sha256::new();
            if feed_parts(&mut parts, body.clone(), boundary.clone())
                .await
                .is_ok()
            {
                hash.update(parts.finalize());
            } else {
                // Malformed (the operation refuses it): the bytes without the boundary, which a retry may change.
                feed(&mut hash, b"malformed");
                feed(&mut hash, &without(body, boundary.as_bytes()));
            }
        }
        Err(_) => {
            // `application/json` and `application/json; charset=utf-8` are one type.
            let essence = content_type.split(';').next().unwrap_or_default().trim();
            feed(&mut hash, essence.to_ascii_lowercase().as_bytes());
            feed(&mut hash, body);
        }
    }
    hex::encode(hash.finalize())
}

/// `bytes` with every occurrence of `pattern` (not empty) left out. In linear time (memmem's two-way search): a
/// naive scan compares up to the boundary's length at every byte, and both come from the caller (a 1 MiB body and a
/// 60 KB boundary made that seconds of a worker thread, before any permission check).
fn without(bytes: &[u8], pattern: &[u8]) -> Vec<u8> {
    if pattern.is_empty() {
        return bytes.to_vec();
    }
    let mut kept = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for found in memchr::memmem::find_iter(bytes, pattern) {
        kept.extend_from_slice(&bytes[at..found]);
        at = found + pattern.len();
    }
    kept.extend_from_slice(&bytes[at..]);
    kept
}

/// A multipart body by its parts: name, file name, content type and content of each, in order.
async fn feed_parts(hash: &mut Sha256, body: Bytes, boundary: String) -> Result<(), multer::Error> {
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    while let Some(part) = parts.next_field().await? {
        feed(hash, part.name().unwrap_or_default().as_bytes());
        feed(hash, part.file_name().unwrap_or_default().as_bytes());
        feed(
            hash,
            part.content_type()
                .map_or("", |m| m.essence_str())
                .as_bytes(),
        );
        feed(hash, &part.bytes().await?);
    }
    Ok(())
}

/// A kept answer, as sent again.
fn replay(answer: StoredAnswer) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .body(answer.body);
    for (name, value) in [
        (header::CONTENT_TYPE, answer.content_type),
        (header::ETAG, answer.etag),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn conflict(message: &str, retry_after: Option<i32>) -> ApiError {
    ApiError {
        retry_after,
        ..ApiError::new(StatusCode::CONFLICT, message)
    }
}

impl<E: Endpoint + 'static> Endpoint for IdempotentEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        // Only the API's writes take keys: not reads, not unknown paths or methods (nothing to keep for them).
        let key = match *req.method() {
            Method::GET | Method::HEAD | Method::OPTIONS => None,
            _ if resolved(&req).operation.is_none() => None,
            // An upload is not held to be fingerprinted; the import job refuses a second one while it runs.
            _ if resolved(&req)
                .operation
                .as_ref()
                .is_some_and(|op| op.upload) =>
            {
                None
            }
            _ => key_of(req.headers())?,
        };
        let Some(key) = key else {
            return self.next.call(req).await.map(IntoResponse::into_response);
        };
        let body = req.take_body().into_bytes().await?;
        let fingerprint = fingerprint(&req, &body).await;
        req.set_body(body);
        let keyed = Keyed {
            next: self.next.clone(),
            service: self.service.clone(),
            catalog: self.catalog.clone(),
        };
        // Its own task, claim included: a client that leaves must not stop it between claiming the key and
        // running, nor between the write's commit and the record of its answer.
        match tokio::spawn(keyed.carry_out(req, key, fingerprint).in_current_span()).await {
            Ok(answer) => answer,
            Err(err) => {
                tracing::error!(error = %err, "a keyed request's task failed");
                Err(ApiError::internal().into())
            }
        }
    }
}

/// What a keyed request's task needs.
struct Keyed<E> {
    next: Arc<E>,
    service: IdempotencyService,
    catalog: Arc<Catalog>,
}

impl<E: Endpoint + 'static> Keyed<E> {
    async fn carry_out(
        self,
        req: Request,
        key: IdempotencyKey,
        fingerprint: String,
    ) -> poem::Result<Response> {
        let claimed = self
            .service
            .claim(&owner(&req), &key.0, &fingerprint)
            .await
            .map_err(ApiError::from)?;
        let claim = match claimed {
            Claimed::Run(claim) => claim,
            Claimed::Replay(answer) => return Ok(replay(answer)),
            Claimed::Mismatch => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "this Idempotency-Key was used with a different request (method, path, query, conditions or body)",
                )
                .into());
            }
            Claimed::InProgress => {
                return Err(conflict(
                    "a request with this Idempotency-Key is being carried out; retry after Retry-After seconds",
                    Some(IN_PROGRESS_RETRY_AFTER),
                )
                .into());
            }
            Claimed::Lost => {
                return Err(conflict(
                    "the request with this Idempotency-Key was carried out, but its answer was lost; read the \
                     resource to see the result",
                    None,
                )
                .into());
            }
            Claimed::TooMany => {
                return Err(ApiError::too_many_requests(Duration::from_secs(60)).into());
            }
        };
        let facts = RequestFacts::of(&req);
        let deadline = deadline(&req);
        // Within the request's time, as any request: past it the operation is dropped (answered 503, which is not
        // kept: if it had not committed, the key is free again; if it had, the key says its answer was lost).
        let work = AssertUnwindSafe(carrying(claim.clone(), self.next.call(req))).catch_unwind();
        let response = match tokio::time::timeout_at(deadline, work).await {
            Ok(Ok(Ok(response))) => response.into_response(),
            Ok(Ok(Err(err))) => error_response(err, &facts, &self.catalog),
            Ok(Err(panic)) => panic_response(panic),
            Err(_) => error_response(ApiError::timed_out().into(), &facts, &self.catalog),
        };
        let (parts, body) = response.into_parts();
        let body = body.into_bytes().await.unwrap_or_default();
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let answer = StoredAnswer {
            status: parts.status.as_u16(),
            content_type: header(header::CONTENT_TYPE),
            etag: header(header::ETAG),
            body: body.to_vec(),
        };
        // Refusals for load and failures are not the request's answer: a retry may succeed.
        let keep = parts.status != StatusCode::TOO_MANY_REQUESTS && !parts.status.is_server_error();
        if let Err(err) = self.service.finish(&claim, answer, keep).await {
            tracing::warn!(error = %err, "recording the answer of a keyed request failed");
        }
        Ok(Response::from_parts(parts, body.into()))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What `without` means, one byte at a time.
    fn without_naively(bytes: &[u8], pattern: &[u8]) -> Vec<u8> {
        let (mut kept, mut at) = (Vec::new(), 0);
        while at < bytes.len() {
            if !pattern.is_empty() && bytes[at..].starts_with(pattern) {
                at += pattern.len();
            } else {
                kept.push(bytes[at]);
                at += 1;
            }
        }
        kept
    }

    proptest! {
        #[test]
        fn a_boundary_is_left_out_wherever_it_occurs(
            bytes in proptest::collection::vec(0u8..3, 0..200),
            pattern in proptest::collection::vec(0u8..3, 0..4),
        ) {
            prop_assert_eq!(without(&bytes, &pattern), without_naively(&bytes, &pattern));
        }
    }

    #[test]
    fn a_body_that_nearly_repeats_a_long_boundary_is_read_once() {
        // The shape that made a byte-at-a-time scan quadratic: a run of one byte and a boundary of that byte
        // ending in another. It keeps every byte (no occurrence) and, in linear time, takes milliseconds.
        let body = vec![b'a'; 1 << 20];
        let mut boundary = vec![b'a'; 60_000];
        boundary.push(b'b');
        assert_eq!(without(&body, &boundary).len(), body.len());
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_key_is_1_to_255_visible_ascii_characters() {
        assert_eq!(key_of(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            key_of(&headers("abc-123_~")).unwrap().unwrap().0,
            "abc-123_~"
        );
        assert!(key_of(&headers(&"k".repeat(255))).unwrap().is_some());
        for bad in ["", "has space", &"k".repeat(256)] {
            assert!(key_of(&headers(bad)).is_err(), "{bad:?}");
        }
    }

    /// A `POST /api/lists` with a multipart `body` whose boundary is `boundary`.
    fn multipart(boundary: &str, body: String) -> (Request, Bytes) {
        let req = Request::builder()
            .method(Method::POST)
            .uri_str("/api/lists")
            .content_type(&format!("multipart/form-data; boundary={boundary}"))
            .finish();
        (req, Bytes::from(body))
    }

    #[tokio::test]
    async fn malformed_multipart_bodies_have_one_fingerprint_whatever_the_boundary() {
        let request = |boundary: &str| {
            multipart(
                boundary,
                format!("--{boundary}\r\nno headers at all--{boundary}"),
            )
        };
        let (a, body_a) = request("aaaa-1111");
        let (b, body_b) = request("bbbb-2222-cc");
        assert_eq!(
            fingerprint(&a, &body_a).await,
            fingerprint(&b, &body_b).await
        );
    }

    #[tokio::test]
    async fn multipart_bodies_with_the_same_parts_have_one_fingerprint_whatever_the_boundary() {
        let request = |boundary: &str, value: &str| {
            multipart(
                boundary,
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{value}\r\n--{boundary}--\r\n"
                ),
            )
        };
        let (a, body_a) = request("one", "List");
        let (b, body_b) = request("two", "List");
        let (c, body_c) = request("one", "Other");
        let fa = fingerprint(&a, &body_a).await;
        assert_eq!(fa, fingerprint(&b, &body_b).await);
        assert_ne!(fa, fingerprint(&c, &body_c).await);
    }
}
