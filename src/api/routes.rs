//! Assembles the application: operations, the served documents, `/metrics`, and the middleware stack.

use std::sync::Arc;

use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, Route, get};
use poem_openapi::registry::MetaApi;
use poem_openapi::{OpenApi, OpenApiService};
use tokio::sync::Semaphore;

use super::bounds::{CheckRequest, LimitBody};
use super::catalog::Catalog;
use super::docs::Document;
use super::error::panic_response;
use super::fairness::{Gate, ShareDatabase};
use super::front::Front;
use super::health::HealthApi;
use super::idempotency::Idempotent;
use super::imports::ImportsApi;
use super::layer::layer;
use super::limits::{LimitUnauthenticated, LoginFailures, RateLimits};
use super::lists::ListsApi;
use super::ops::{LimitDuration, metrics_endpoint};
use super::security::{Authenticate, KnownCredentials};
use super::subscribers::SubscribersApi;
use crate::config::HttpSettings;
use crate::service::{Authenticator, Services};

type Apis = (ListsApi, SubscribersApi, ImportsApi, HealthApi);

fn openapi_service(services: Services) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            ListsApi {
                lists: services.lists,
            },
            SubscribersApi {
                subscribers: services.subscribers,
            },
            ImportsApi {
                imports: services.imports,
                uploads: Arc::new(Semaphore::new(1)),
            },
            HealthApi {
                database: services.database,
            },
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
    openapi_service(Services::unconnected()).spec()
}

/// The whole HTTP application. Every middleware gets what it needs here, once; what a request is for is resolved
/// once per request, by `Front`, and read from the request context by the layers inside it.
pub fn app(
    services: Services,
    authenticator: Authenticator,
    config: HttpSettings,
    pool_size: usize,
) -> impl Endpoint {
    let metrics = metrics_endpoint(services.database.clone(), config.metrics_token.clone());
    let idempotency = services.idempotency.clone();
    let background = services.background.clone();
    let service = openapi_service(services);
    let docs = Document::swagger_ui(&service.swagger_ui_html(), &service.spec());
    let catalog = Arc::new(Catalog::new(api_meta()));
    let limits = RateLimits::new(config.rate_limit, config.rate_limit_burst);
    Route::new()
        .at("/openapi.yaml", get(Document::yaml().endpoint()))
        .at("/openapi.json", get(Document::json().endpoint()))
        .at("/docs", get(docs.endpoint()))
        .at("/metrics", get(metrics))
        .nest("/", service)
        // Innermost: a keyed write runs in a task of its own, which catches its panics (to end its key's attempt).
        .with(Idempotent {
            service: idempotency,
            catalog: catalog.clone(),
        })
        // A request holds its share of the database only once its body has arrived (an upload, one at a time per
        // instance, holds it while its file arrives).
        // One connection is left out of the gate: authentication looks callers up before they reach it, and must
        // find one even when the requests let in hold all the others.
        .with(ShareDatabase(Gate::new(
            pool_size.saturating_sub(1),
            config.fair_share_wait,
            background,
        )))
        .with(CatchPanic::new().with_handler(panic_response))
        .with(layer(LimitBody {
            body: config.body_limit,
            upload: config.import_limit,
        }))
        // Boxing erases the middleware types, which would otherwise nest past the compiler's depth limit.
        .boxed()
        .with(layer(CheckRequest))
        .with(layer(Authenticate {
            authenticator,
            limits: limits.clone(),
            failures: LoginFailures::new(
                config.login_failures_per_minute,
                config.login_failure_burst,
            ),
            known: KnownCredentials::default(),
        }))
        .with(layer(LimitDuration {
            request: config.request_timeout,
            upload: config.import_upload_timeout,
        }))
        .with(layer(LimitUnauthenticated { limits }))
        // Outermost: resolves the operation and the client once, shapes every error inside it and writes the
        // caller's quota on every answer.
        .with(layer(Front { catalog }))
}

#[cfg(test)]
mod tests {
    use poem::http::Method;

    use super::*;

    #[test]
    fn allow_lists_the_methods_of_the_matching_path_template() {
        let catalog = Catalog::new(api_meta());
        assert_eq!(catalog.allow("/api/lists"), "GET, POST, DELETE");
        assert_eq!(catalog.allow("/api/lists/7"), "GET, PUT, DELETE");
        assert_eq!(catalog.allow("/health"), "GET");
        assert_eq!(catalog.allow("/docs"), "GET");
        assert_eq!(catalog.allow("/api/subscribers/lists"), "PUT");
        assert_eq!(
            catalog.allow("/api/subscribers/7"),
            "GET, PUT, PATCH, DELETE"
        );
    }

    #[test]
    fn the_catalog_knows_which_operations_authenticate_and_which_parameters_are_scalar() {
        let catalog = Catalog::new(api_meta());
        let get = catalog.operation(&Method::GET, "/api/lists").unwrap();
        assert_eq!(get.id, "getLists");
        assert!(get.authenticated);
        assert!(get.scalar_query.contains(&"query".to_owned()));
        assert!(get.scalar_query.contains(&"per_page".to_owned()));
        assert!(!get.scalar_query.contains(&"tag".to_owned()));
        let public = catalog
            .operation(&Method::GET, "/api/public/lists")
            .unwrap();
        assert!(!public.authenticated);
        let delete = catalog.operation(&Method::DELETE, "/api/lists").unwrap();
        assert!(delete.scalar_query.contains(&"all".to_owned()));
        assert!(!delete.scalar_query.contains(&"id".to_owned()));
        assert!(catalog.operation(&Method::PATCH, "/api/lists").is_none());
        assert!(catalog.operation(&Method::GET, "/api/lists/").is_none());
        assert!(catalog.operation(&Method::GET, "/api/lists/7/x").is_none());
        assert!(catalog.operation(&Method::GET, "/api").is_none());
        let lists_of_subscribers = catalog
            .operation(&Method::PUT, "/api/subscribers/lists")
            .unwrap();
        assert_eq!(lists_of_subscribers.id, "manageSubscriberLists");
        let liveness = catalog.operation(&Method::GET, "/health").unwrap();
        assert!(liveness.liveness && !liveness.authenticated);
        assert!(!get.liveness);
    }
}
