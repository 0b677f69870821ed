//! What an operator needs around every request: a request id in every log line, Prometheus metrics, rate
//! limits and a request timeout.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::http::{HeaderValue, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::OperationId;
use tracing::Instrument;

use super::error::ApiError;

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
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
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
        // long as nobody scrapes /metrics (the first soak run showed RSS creeping by ~0.2 MiB a minute).
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

/// A low-cardinality name for the route: the operation id, or the fixed route, or `unknown`.
fn route_label(response: &Response, path: &str) -> String {
    if let Some(operation) = response.data::<OperationId>() {
        return operation.0.to_owned();
    }
    match path {
        "/docs" | "/openapi.json" | "/openapi.yaml" | "/metrics" => path.to_owned(),
        _ => "unknown".to_owned(),
    }
}

/// Counts requests by route and status, and times them.
pub async fn record_metrics<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.call(req).await?.into_response();
    let route = route_label(&response, &path);
    let status = response.status().as_u16().to_string();
    metrics::counter!("roster_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("roster_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// Keyed token buckets. State is per instance: behind a load balancer each instance counts on its own.
pub struct RateLimits {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl RateLimits {
    /// `per_second` sustained requests with bursts of `burst`; 0 turns limiting off.
    pub fn new(per_second: u32, burst: u32) -> Arc<Self> {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        let limits = Arc::new(Self {
            limiter,
            clock: DefaultClock::default(),
        });
        if limits.limiter.is_some() {
            // Forget idle keys now and then, so memory stays bounded whatever the number of clients.
            let weak = Arc::downgrade(&limits);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    match weak.upgrade() {
                        Some(limits) => {
                            if let Some(limiter) = &limits.limiter {
                                limiter.retain_recent();
                                limiter.shrink_to_fit();
                            }
                        }
                        None => break,
                    }
                }
            });
        }
        limits
    }

    /// Takes one request from `key`'s bucket, or says when to retry.
    pub fn check(&self, key: &str, scope: &'static str) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            metrics::counter!("roster_rate_limited_total", "scope" => scope).increment(1);
            ApiError::too_many_requests(not_until.wait_time_from(self.clock.now()))
        })
    }
}

/// The client's address, for limits on requests without credentials.
pub fn client_key(req: &Request) -> String {
    let ip: Option<IpAddr> = req.remote_addr().as_socket_addr().map(|a| a.ip());
    format!(
        "ip:{}",
        ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    )
}

/// Limits requests that carry no credentials per client address (authenticated ones are limited per identity
/// where they are authenticated). Liveness checks are exempt: a load balancer polls them.
pub async fn limit_anonymous<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    if !req.headers().contains_key(header::AUTHORIZATION) && req.uri().path() != "/health" {
        super::routes::context(&req)?
            .limits
            .check(&client_key(&req), "address")?;
    }
    Ok(next.call(req).await?.into_response())
}

/// Answers 503 when a request runs longer than the configured timeout.
pub async fn limit_duration<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let limit = super::routes::context(&req)?.request_timeout;
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(result) => Ok(result?.into_response()),
        Err(_) => {
            tracing::warn!(?limit, "request timed out");
            Err(ApiError::timed_out().into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refuse_past_the_burst_and_say_when_to_retry() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _guard = runtime.enter();
        let limits = RateLimits::new(1, 2);
        assert!(limits.check("a", "test").is_ok());
        assert!(limits.check("a", "test").is_ok());
        let refused = limits.check("a", "test").unwrap_err();
        assert_eq!(refused.status, poem::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after, Some(1));
        assert!(limits.check("b", "test").is_ok(), "keys are independent");
        assert!(
            RateLimits::new(0, 0).check("a", "test").is_ok(),
            "0 turns limits off"
        );
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
