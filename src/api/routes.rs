//! Assembles the application: operations, the served spec, Swagger UI, and the middleware stack.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::middleware::CatchPanic;
use poem::web::Html;
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};
use poem_openapi::{OpenApi, OpenApiService};
use sea_orm::DatabaseConnection;

use super::error::{ApiError, shape_errors};
use super::health::HealthApi;
use super::lists::ListsApi;
use super::ops::{RateLimits, limit_anonymous, limit_duration, record_metrics, with_request_id};
use crate::service::{Authenticator, ListService};

/// The hand-maintained contract, compiled in: it is what `/openapi.yaml`, `/openapi.json` and Swagger UI serve.
pub const SPEC_YAML: &str = include_str!("../../openapi.yaml");

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

/// The spec poem-openapi derives from the code, for comparison with `openapi.yaml`.
pub fn generated_spec() -> String {
    openapi_service(ListService::new(DatabaseConnection::default())).spec()
}

/// `openapi.yaml` as JSON.
pub fn served_spec_json() -> String {
    let value: serde_json::Value =
        serde_yaml::from_str(SPEC_YAML).expect("openapi.yaml is valid YAML (checked by the tests)");
    value.to_string()
}

/// The methods each documented path accepts, for the `Allow` header of a 405.
pub struct AllowedMethods(Vec<(Vec<String>, Vec<String>)>);

impl AllowedMethods {
    fn from_api() -> Self {
        let mut paths = Vec::new();
        for api in <Apis as OpenApi>::meta() {
            for path in api.paths {
                let segments = path.path.split('/').map(str::to_owned).collect();
                let methods = path
                    .operations
                    .iter()
                    .map(|op| op.method.to_string())
                    .collect();
                paths.push((segments, methods));
            }
        }
        Self(paths)
    }

    /// The `Allow` value for a concrete request path known to the router.
    pub fn for_path(&self, path: &str) -> String {
        let wanted: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .find(|(template, _)| {
                template.len() == wanted.len()
                    && template.iter().zip(&wanted).all(|(t, w)| {
                        t == w || (t.starts_with('{') && t.ends_with('}') && !w.is_empty())
                    })
            })
            .map(|(_, methods)| methods.join(", "))
            // Outside the API only the spec and docs routes exist, and they are GET-only.
            .unwrap_or_else(|| "GET".to_owned())
    }
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
    /// When set, `/metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<crate::config::Secret>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            request_timeout: std::time::Duration::from_secs(30),
            rate_limit: 0,
            rate_limit_burst: 0,
            metrics_token: None,
        }
    }
}

/// What the middleware needs, shared through the request's data.
pub struct HttpContext {
    pub allowed: AllowedMethods,
    pub limits: Arc<RateLimits>,
    pub body_limit: usize,
    pub request_timeout: std::time::Duration,
}

/// The context installed by [`app`].
pub fn context(req: &Request) -> poem::Result<Arc<HttpContext>> {
    req.data::<Arc<HttpContext>>().cloned().ok_or_else(|| {
        tracing::error!("no HTTP context installed");
        ApiError::internal().into()
    })
}

/// Reads the whole body up front, so that an oversized one is answered 413 whether or not it announced its
/// length, before any handler runs.
async fn limit_body<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let limit = context(&req)?.body_limit;
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
            other => ApiError::bad_request(format!("cannot read the request body: {other}")).into(),
        })?;
    req.set_body(Body::from_bytes(bytes));
    Ok(next.call(req).await?.into_response())
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

/// The whole HTTP application.
pub fn app(lists: ListService, authenticator: Authenticator, config: AppConfig) -> impl Endpoint {
    super::ops::prometheus();
    let metrics = metrics_endpoint(lists.clone(), config.metrics_token.clone());
    let service = openapi_service(lists);
    let spec_json = served_spec_json();
    // Swagger UI (compiled in, works offline) showing the hand-maintained contract rather than the generated one.
    // No validator badge (it would call validator.swagger.io) and an empty icon (no /favicon.ico request):
    // nothing leaves the host.
    let docs = service
        .swagger_ui_html()
        .replacen(&service.spec(), &spec_json, 1)
        .replacen(
            "deepLinking: true,",
            "deepLinking: true,\n        validatorUrl: null,",
            1,
        )
        .replacen(
            "<head>",
            "<head>\n    <link rel=\"icon\" href=\"data:,\">",
            1,
        );
    let docs = Html(docs);
    let context = Arc::new(HttpContext {
        allowed: AllowedMethods::from_api(),
        limits: RateLimits::new(config.rate_limit, config.rate_limit_burst),
        body_limit: config.body_limit,
        request_timeout: config.request_timeout,
    });

    #[handler]
    fn spec_yaml() -> Response {
        Response::builder()
            .content_type("application/yaml")
            .body(SPEC_YAML)
    }

    Route::new()
        .at("/openapi.yaml", get(spec_yaml))
        .at(
            "/openapi.json",
            get(poem::endpoint::make_sync(move |_| {
                Response::builder()
                    .content_type("application/json")
                    .body(spec_json.clone())
            })),
        )
        .at(
            "/docs",
            get(poem::endpoint::make_sync(move |_| docs.clone())),
        )
        .at("/metrics", get(metrics))
        .nest("/", service)
        .with(CatchPanic::new().with_handler(panic_response))
        .around(limit_body)
        // Boxing erases the middleware types, which would otherwise nest past the compiler's depth limit.
        .boxed()
        .around(limit_duration)
        .around(limit_anonymous)
        .around(shape_errors)
        .around(record_metrics)
        .around(with_request_id)
        .data(Arc::new(authenticator))
        .data(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_methods_of_the_matching_path_template() {
        let allowed = AllowedMethods::from_api();
        assert_eq!(allowed.for_path("/api/lists"), "GET, POST, DELETE");
        assert_eq!(allowed.for_path("/api/lists/7"), "GET, PUT, DELETE");
        assert_eq!(allowed.for_path("/health"), "GET");
        assert_eq!(allowed.for_path("/docs"), "GET");
    }
}
