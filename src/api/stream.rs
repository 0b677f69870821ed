//! Answers written as they are read: the same 200 JSON envelope as a whole answer, with its `results` array filled
//! from a stream of batches, so that memory does not grow with the answer (`per_page=all`). Once the first bytes
//! are sent the status cannot change: a failure later (the database, the request's deadline) cuts the connection,
//! and the client sees an incomplete JSON text rather than a wrong one.

use futures_util::{Stream, StreamExt, stream};
use poem::http::header;
use poem::{Body, IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::types::Type;
use serde::Serialize;

use super::payload::JsonBody;
use super::responses::Success;
use crate::service::ServiceError;

/// Marks a response whose body still does database work while it is sent: the fair-share gate keeps the
/// caller's place until the body ends.
#[derive(Debug, Clone, Copy)]
pub struct Streaming;

/// A 200 answer of `T`, whole or streamed; documented as `T` either way.
pub enum Answer<T> {
    Whole(T),
    Streamed(Body),
}

impl<T: Type + Serialize + Send> ApiResponse for Answer<T> {
    fn meta() -> MetaResponses {
        Success::<T>::meta()
    }

    fn register(registry: &mut Registry) {
        Success::<T>::register(registry);
    }
}

impl<T: Type + Serialize + Send> IntoResponse for Answer<T> {
    fn into_response(self) -> Response {
        match self {
            Answer::Whole(value) => Success(value).into_response(),
            Answer::Streamed(body) => {
                let mut response = Response::builder()
                    .header(header::CONTENT_TYPE, JsonBody::<T>::CONTENT_TYPE)
                    .body(body);
                response.extensions_mut().insert(Streaming);
                response
            }
        }
    }
}

/// The body of `head` (the whole answer with an empty `results`) with `results` filled from `batches`, each row
/// written with serde as it arrives; what follows `results` is written once the batches have ended, after
/// `finish` has completed `head` (e.g. with the cursor of the next page).
pub fn streamed<T, R, S, F>(head: T, batches: S, finish: F) -> Body
where
    T: Serialize + Send + 'static,
    R: Serialize + Send + 'static,
    S: Stream<Item = Result<Vec<R>, ServiceError>> + Send + 'static,
    F: FnOnce(&mut T) + Send + 'static,
{
    let Some((prefix, _)) = split(&head) else {
        // Unreachable with the page types, whose first field is `results`; answered like any internal error.
        tracing::error!("a streamed answer has no `results` to fill");
        return Body::from_bytes_stream(stream::once(async {
            Err::<Vec<u8>, _>(std::io::Error::other("no results to fill"))
        }));
    };
    let mut first = true;
    let rows = batches.map(move |batch| {
        let batch = batch.map_err(|err| {
            tracing::warn!(error = %err, "a streamed answer was cut off");
            std::io::Error::other(err.to_string())
        })?;
        let mut bytes = Vec::with_capacity(batch.len() * 512);
        for row in &batch {
            if !std::mem::take(&mut first) {
                bytes.push(b',');
            }
            serde_json::to_writer(&mut bytes, row).map_err(std::io::Error::other)?;
        }
        Ok::<_, std::io::Error>(bytes)
    });
    let suffix = stream::once(async move {
        let mut head = head;
        finish(&mut head);
        split(&head)
            .map(|(_, suffix)| suffix)
            .ok_or_else(|| std::io::Error::other("no results to fill"))
    });
    let body = stream::once(async move { Ok(prefix) })
        .chain(rows)
        .chain(suffix);
    Body::from_bytes_stream(body)
}

/// `head` serialised, split inside its empty `results` array: what comes before the rows, and what after.
fn split<T: Serialize>(head: &T) -> Option<(Vec<u8>, Vec<u8>)> {
    const EMPTY: &[u8] = br#""results":[]"#;
    let mut whole = serde_json::to_vec(head).ok()?;
    let at = whole.windows(EMPTY.len()).position(|w| w == EMPTY)?;
    let suffix = whole.split_off(at + EMPTY.len() - 1);
    Some((whole, suffix))
}
