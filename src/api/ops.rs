//! What an operator needs around every request: a request id in every log line, Prometheus metrics and a request
//! timeout.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::http::{HeaderValue, Method, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use super::catalog::Catalog;
use super::error::ApiError;
use super::layer::Layer;
use crate::service::DatabaseService;

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

/// Wraps the request in a span carrying its id (so every log line of the request has it) and echoes the id.
pub async fn with_request_id<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let id = request_id(&req);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    async move {
        let started = Instant::now();
        let mut response = next.call(req).await?.into_response();
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
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
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

/// The process-wide Prometheus recorder (the `metrics` facade has one global recorder).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests embedding Roster); ours then renders nothing new.
        let _ = metrics::set_global_recorder(recorder);
        // Histogram samples wait in a queue until upkeep folds them into buckets; without it they pile up for as
        // long as nobody scrapes /metrics.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread for metrics upkeep");
        handle
    })
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

/// A low-cardinality name for the route: the operation id, the fixed route, or `unknown`.
fn route_label(catalog: &Catalog, method: &Method, path: &str) -> &'static str {
    if let Some(operation) = catalog.operation(method, path) {
        return operation.id;
    }
    match path {
        "/docs" => "/docs",
        "/openapi.json" => "/openapi.json",
        "/openapi.yaml" => "/openapi.yaml",
        "/metrics" => "/metrics",
        _ => "unknown",
    }
}

/// Counts requests by route, method and status, and times them. Every label comes from a closed set.
pub struct RecordMetrics {
    pub catalog: Arc<Catalog>,
}

impl Layer for RecordMetrics {
    async fn handle<E: Endpoint>(&self, next: &E, req: Request) -> poem::Result<Response> {
        let route = route_label(&self.catalog, req.method(), req.uri().path());
        let method = method_label(req.method());
        let started = Instant::now();
        let response = next.call(req).await?.into_response();
        let status = response.status().as_u16().to_string();
        metrics::counter!("roster_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
        metrics::histogram!("roster_http_request_duration_seconds", "route" => route)
            .record(started.elapsed().as_secs_f64());
        Ok(response)
    }
}

/// Answers 503 when a request runs longer than the given time.
pub struct LimitDuration(pub Duration);

impl Layer for LimitDuration {
    async fn handle<E: Endpoint>(&self, next: &E, mut req: Request) -> poem::Result<Response> {
        let limit = self.0;
        req.extensions_mut().insert(super::context::Deadline(
            tokio::time::Instant::now() + limit,
        ));
        match tokio::time::timeout(limit, next.call(req)).await {
            Ok(result) => Ok(result?.into_response()),
            Err(_) => {
                tracing::warn!(?limit, "request timed out");
                Err(ApiError::timed_out().into())
            }
        }
    }
}

/// Prometheus text for `/metrics`, with the pool's current use.
pub fn metrics_endpoint(
    database: DatabaseService,
    token: Option<crate::config::Secret>,
) -> impl Endpoint {
    prometheus();
    poem::endpoint::make(move |req: Request| {
        let database = database.clone();
        let token = token.clone();
        async move {
            if let Some(token) = &token {
                let expected = format!("Bearer {}", token.expose());
                let presented = req
                    .headers()
                    .get(poem::http::header::AUTHORIZATION)
                    .map(|v| v.as_bytes())
                    .unwrap_or_default();
                let ok: bool = subtle::ConstantTimeEq::ct_eq(presented, expected.as_bytes()).into();
                if !ok {
                    return Err(ApiError::forbidden(
                        "metrics need `Authorization: Bearer <token>`",
                    )
                    .into());
                }
            }
            let pool = database.pool_usage();
            metrics::gauge!("roster_db_pool_connections", "state" => "in_use")
                .set(f64::from(pool.size.saturating_sub(pool.idle)));
            metrics::gauge!("roster_db_pool_connections", "state" => "idle")
                .set(f64::from(pool.idle));
            metrics::gauge!("roster_db_pool_max_connections").set(f64::from(pool.max));
            Ok::<_, poem::Error>(
                Response::builder()
                    .content_type("text/plain; version=0.0.4")
                    .body(prometheus().render()),
            )
        }
    })
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
