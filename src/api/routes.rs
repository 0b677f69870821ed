//! Assembles the application: operations, the served documents, `/metrics`, and the middleware stack.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::middleware::CatchPanic;
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get};
use poem_openapi::registry::MetaApi;
use poem_openapi::{OpenApi, OpenApiService};
use sea_orm::DatabaseConnection;

use super::bounds::CheckRequest;
use super::catalog::Catalog;
use super::docs::Document;
use super::error::{ApiError, ShapeErrors};
use super::health::HealthApi;
use super::layer::{Layer, layer};
use super::limits::{LimitUnauthenticated, LoginFailures, RateLimits};
use super::lists::ListsApi;
use super::ops::{LimitDuration, RecordMetrics, with_request_id};
use super::security::Authenticate;
use crate::service::{Authenticator, ListService};

type Apis = (ListsApi, HealthApi);

fn openapi_service(lists: ListService) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            ListsApi {
                lists: lists.clone(),
            },
            HealthApi { lists },
        ),
        "Roster",
        env!("CARGO_PKG_VERSION"),
    )
    .server("/")
}

/// The operations' metadata, as poem-openapi derives it from the code.
pub fn api_meta() -> Vec<MetaApi> {
    <Apis as OpenApi>::meta()
}

/// The spec poem-openapi derives from the code, for comparison with `openapi.yaml`.
pub fn generated_spec() -> String {
    openapi_service(ListService::new(DatabaseConnection::default())).spec()
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Longest a request may run before it is answered 503.
    pub request_timeout: std::time::Duration,
    /// Sustained requests per second per identity (or per address without credentials); 0 is unlimited.
    pub rate_limit: u32,
    /// Requests allowed in a burst above the sustained rate.
    pub rate_limit_burst: u32,
    /// Failed logins allowed per client address per minute after the burst; 0 turns the limiter off.
    pub login_failures_per_minute: u32,
    /// Failed logins allowed at once per client address.
    pub login_failure_burst: u32,
    /// When set, `/metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<crate::config::Secret>,
}

/// Reads the whole body up front, so that an oversized one is answered 413 whether or not it announced its
/// length, before any handler runs.
struct LimitBody(usize);

impl Layer for LimitBody {
    async fn handle<E: Endpoint>(&self, next: &E, mut req: Request) -> poem::Result<Response> {
        let limit = self.0;
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
        if announced.is_some_and(|len| len > limit as u64) {
            return Err(too_large().into());
        }
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

fn panic_response(_: Box<dyn std::any::Any + Send>) -> Response {
    tracing::error!("request handler panicked");
    poem::error::ResponseError::as_response(&ApiError::internal())
}

/// Prometheus text for `/metrics`, with the pool's current use.
fn metrics_endpoint(lists: ListService, token: Option<crate::config::Secret>) -> impl Endpoint {
    poem::endpoint::make(move |req: Request| {
        let lists = lists.clone();
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
            let pool = lists.pool_usage();
            metrics::gauge!("roster_db_pool_connections", "state" => "in_use")
                .set(f64::from(pool.size.saturating_sub(pool.idle)));
            metrics::gauge!("roster_db_pool_connections", "state" => "idle")
                .set(f64::from(pool.idle));
            metrics::gauge!("roster_db_pool_max_connections").set(f64::from(pool.max));
            Ok::<_, poem::Error>(
                Response::builder()
                    .content_type("text/plain; version=0.0.4")
                    .body(super::ops::prometheus().render()),
            )
        }
    })
}

/// The whole HTTP application. Every middleware gets what it needs here, once; none looks anything up per
/// request.
pub fn app(lists: ListService, authenticator: Authenticator, config: AppConfig) -> impl Endpoint {
    super::ops::prometheus();
    let metrics = metrics_endpoint(lists.clone(), config.metrics_token.clone());
    let service = openapi_service(lists);
    let docs = Document::swagger_ui(&service.swagger_ui_html(), &service.spec());
    let catalog = Arc::new(Catalog::new(api_meta()));
    let limits = RateLimits::new(config.rate_limit, config.rate_limit_burst);
    Route::new()
        .at("/openapi.yaml", get(Document::yaml().endpoint()))
        .at("/openapi.json", get(Document::json().endpoint()))
        .at("/docs", get(docs.endpoint()))
        .at("/metrics", get(metrics))
        .nest("/", service)
        .with(CatchPanic::new().with_handler(panic_response))
        .with(layer(LimitBody(config.body_limit)))
        // Boxing erases the middleware types, which would otherwise nest past the compiler's depth limit.
        .boxed()
        .with(layer(CheckRequest {
            catalog: catalog.clone(),
        }))
        .with(layer(Authenticate {
            catalog: catalog.clone(),
            authenticator,
            limits: limits.clone(),
            failures: LoginFailures::new(
                config.login_failures_per_minute,
                config.login_failure_burst,
            ),
        }))
        .with(layer(LimitDuration(config.request_timeout)))
        .with(layer(LimitUnauthenticated {
            catalog: catalog.clone(),
            limits,
        }))
        .with(layer(ShapeErrors {
            catalog: catalog.clone(),
        }))
        .with(layer(RecordMetrics { catalog }))
        .around(with_request_id)
}
