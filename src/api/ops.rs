//! What an operator needs: Prometheus metrics (recorded per request by `front::Front`, served at `/metrics`) and
//! a request timeout.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::{Endpoint, IntoResponse, Request, Response};

use super::error::ApiError;
use super::layer::Layer;
use crate::service::DatabaseService;

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

/// Answers 503 when a request runs longer than the given time.
pub struct LimitDuration {
    pub request: Duration,
    /// For uploads (`catalog::Operation::upload`): the file must arrive within it.
    pub upload: Duration,
}

impl Layer for LimitDuration {
    async fn handle<E: Endpoint>(&self, next: &E, mut req: Request) -> poem::Result<Response> {
        let is_upload = super::context::resolved(&req)
            .operation
            .as_ref()
            .is_some_and(|op| op.upload);
        let limit = if is_upload { self.upload } else { self.request };
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
