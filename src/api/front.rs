//! The outermost layer, one per request: it resolves once what every other layer needs to know (the operation the
//! request is for, from `catalog.rs`; the client's address; whether it carries credentials) and leaves it in the
//! request context (`context::Resolved`); around the rest it keeps the request id in every log line, records
//! metrics, gives every error the JSON shape (`error::error_response`) and writes the caller's rate-limit quota on
//! the answer (`limits::QuotaSlot`).

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderValue, Method, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use super::catalog::Catalog;
use super::context::{ClientAddress, Resolved};
use super::error::{RequestFacts, error_response};
use super::layer::Layer;
use super::limits::QuotaSlot;

const REQUEST_ID: &str = "x-request-id";

/// Accepts a client's request id when it is short and harmless in logs; otherwise makes one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Methods recorded by name in metrics; any other (clients may invent methods) is recorded as `other`, so the
/// number of series stays bounded.
const KNOWN_METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
];

fn method_label(method: &Method) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// A low-cardinality name for a route outside the API's operations: the fixed route, or `unknown`.
fn fixed_route_label(path: &str) -> &'static str {
    match path {
        "/docs" => "/docs",
        "/openapi.json" => "/openapi.json",
        "/openapi.yaml" => "/openapi.yaml",
        "/metrics" => "/metrics",
        _ => "unknown",
    }
}

/// Resolves the request once, then: its log span with the request id (echoed in the answer), the framework's
/// errors in the JSON shape, and metrics by route, method and status (every label from a closed set).
pub struct Front {
    pub catalog: Arc<Catalog>,
}

impl Layer for Front {
    async fn handle<E: Endpoint>(&self, next: &E, mut req: Request) -> poem::Result<Response> {
        let id = request_id(&req);
        let operation = self
            .catalog
            .operation(req.method(), req.uri().path())
            .cloned();
        let route = operation
            .as_ref()
            .map_or_else(|| fixed_route_label(req.uri().path()), |op| op.id);
        let method = method_label(req.method());
        // Cheap copies (a known method is a tag, a URI shares the request's bytes): only an error's message
        // needs them, after the endpoint has consumed the request.
        let facts = RequestFacts::of(&req);
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %req.method(),
            path = %req.uri().path(),
        );
        let resolved = Resolved {
            operation,
            address: ClientAddress::of(&req),
            authorization: facts.has_authorization,
        };
        req.extensions_mut().insert(resolved);
        let quota = QuotaSlot::default();
        req.extensions_mut().insert(quota.clone());
        async move {
            let started = Instant::now();
            let mut response = match next.call(req).await {
                Ok(response) => response.into_response(),
                Err(err) => error_response(err, &facts, &self.catalog),
            };
            quota.announce(&mut response);
            let elapsed = started.elapsed();
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&id) {
                headers.insert(REQUEST_ID, value);
            }
            // Every answer is exactly the type it says it is; browsers must not guess otherwise.
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            let status = response.status().as_u16();
            metrics::counter!("roster_http_requests_total", "route" => route, "method" => method, "status" => status.to_string())
                .increment(1);
            metrics::histogram!("roster_http_request_duration_seconds", "route" => route)
                .record(elapsed.as_secs_f64());
            let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
            if status >= 500 {
                tracing::warn!(status, elapsed_ms, "request failed");
            } else {
                tracing::info!(status, elapsed_ms, "request done");
            }
            Ok(response)
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_are_recorded_as_other() {
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let invented = Method::from_bytes(&[b'X'; 200]).unwrap();
        assert_eq!(method_label(&invented), "other");
    }

    #[test]
    fn client_request_ids_are_kept_only_when_harmless() {
        let with = |value: &str| request_id(&Request::builder().header(REQUEST_ID, value).finish());
        assert_eq!(with("abc-123"), "abc-123");
        assert_ne!(with("evil\nline"), "evil\nline");
        assert_ne!(with(&"x".repeat(129)), "x".repeat(129));
        assert_eq!(request_id(&Request::default()).len(), 36);
    }
}
