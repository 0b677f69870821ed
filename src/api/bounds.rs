//! Checks on the request as a whole, made before routing: the URL's size, and single-valued query parameters
//! given twice with different values (the framework would silently keep one of them; on a `DELETE` that is
//! the difference between deleting nothing and deleting everything).

use std::collections::HashMap;

use poem::http::StatusCode;
use poem::{Body, Endpoint, IntoResponse, Request, Response};

use super::context::resolved;
use super::error::ApiError;
use super::layer::Layer;

/// Longest accepted URL (path and query string), in bytes. Every parameter at its own maximum fits in it at
/// once: 1,000 ids (23 KB), a 1,000-character search (up to 12 KB encoded) and 100 tags of 100 ASCII characters
/// (10 KB). It stays under the 65,534 bytes the `http` crate can hold at all (hyper answers a longer URL 414
/// itself), so that an overlong URL gets a JSON message.
pub const URL_MAX_BYTES: usize = 60 * 1024;

/// Most bytes of header fields (names and values) in one request. hyper's own buffer limit is coarser (a head
/// that arrives in one read may exceed it), so the exact bound is checked here.
pub const HEADER_MAX_BYTES: usize = 64 * 1024;

/// The first single-valued parameter that is given twice with different values.
fn conflicting_repeat(scalar: &[String], query: &str) -> Option<String> {
    let mut seen: HashMap<String, String> = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if !scalar.iter().any(|s| *s == name) {
            continue;
        }
        match seen.get(name.as_ref()) {
            Some(first) if *first != value => return Some(name.into_owned()),
            Some(_) => {}
            None => {
                seen.insert(name.into_owned(), value.into_owned());
            }
        }
    }
    None
}

/// Refuses, with 400, an overlong URL and conflicting repeats of a single-valued query parameter, and with 431
/// header fields over [`HEADER_MAX_BYTES`].
pub struct CheckRequest;

impl Layer for CheckRequest {
    async fn handle<E: Endpoint>(&self, next: &E, req: Request) -> poem::Result<Response> {
        let header_bytes: usize = req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if header_bytes > HEADER_MAX_BYTES {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "the header fields are {header_bytes} bytes long; at most {HEADER_MAX_BYTES} are accepted"
                ),
            )
            .into());
        }
        let uri = req.uri();
        let length = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
        if length > URL_MAX_BYTES {
            return Err(ApiError::bad_request(format!(
                "the URL is {length} bytes long; at most {URL_MAX_BYTES} are accepted"
            ))
            .into());
        }
        if let (Some(query), Some(operation)) = (uri.query(), &resolved(&req).operation)
            && let Some(name) = conflicting_repeat(&operation.scalar_query, query)
        {
            return Err(ApiError::bad_request(format!(
                "`{name}` is given more than once with different values; give it once"
            ))
            .into());
        }
        Ok(next.call(req).await?.into_response())
    }
}

/// Reads the whole body up front, so that an oversized one is answered 413 whether or not it announced its
/// length, before any handler runs. An upload's body (`catalog::Operation::upload`) is left to stream to its
/// operation, which counts it against `upload`; only an announced length past that is refused here.
pub struct LimitBody {
    pub body: usize,
    pub upload: u64,
}

impl Layer for LimitBody {
    async fn handle<E: Endpoint>(&self, next: &E, mut req: Request) -> poem::Result<Response> {
        let is_upload = resolved(&req)
            .operation
            .as_ref()
            .is_some_and(|op| op.upload);
        // The upload's own bound is on the file; the rest of the multipart body is small beside it.
        let limit = if is_upload {
            self.upload.saturating_add(self.body as u64)
        } else {
            self.body as u64
        };
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {limit} bytes"),
            )
        };
        let announced = req
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|len| len > limit) {
            return Err(too_large().into());
        }
        if is_upload {
            return Ok(next.call(req).await?.into_response());
        }
        let limit = self.body;
        let body = req.take_body();
        let bytes = body
            .into_bytes_limit(limit)
            .await
            .map_err(|err| match err {
                poem::error::ReadBodyError::PayloadTooLarge => poem::Error::from(too_large()),
                other => {
                    ApiError::bad_request(format!("cannot read the request body: {other}")).into()
                }
            })?;
        req.set_body(Body::from_bytes(bytes));
        Ok(next.call(req).await?.into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_different_values_of_a_single_valued_parameter_conflict() {
        let scalar = ["all".to_owned(), "query".to_owned()];
        assert_eq!(
            conflicting_repeat(&scalar, "all=true&all=false"),
            Some("all".into())
        );
        assert_eq!(
            conflicting_repeat(&scalar, "all=false&all=true"),
            Some("all".into())
        );
        assert_eq!(conflicting_repeat(&scalar, "all=true&all=true"), None);
        assert_eq!(conflicting_repeat(&scalar, "query=a+b&query=a%20b"), None);
        assert_eq!(conflicting_repeat(&scalar, "id=1&id=2&query=x"), None);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn a_reported_conflict_is_a_scalar_given_two_different_values(query in "[a-c=&%0-9+]{0,60}") {
                let scalar = ["a".to_owned(), "b".to_owned()];
                if let Some(name) = conflicting_repeat(&scalar, &query) {
                    let values: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
                        .filter(|(n, _)| *n == name)
                        .map(|(_, v)| v.into_owned())
                        .collect();
                    prop_assert!(scalar.contains(&name));
                    prop_assert!(values.iter().any(|v| *v != values[0]));
                }
            }
        }
    }
}
