//! Middleware as values that own their configuration: a [`Layer`] handles a request given the next endpoint, and
//! [`layer`] turns it into a poem middleware. Everything a layer needs is given when the application is
//! assembled, so nothing is looked up per request and a missing piece does not compile.

use std::future::Future;
use std::sync::Arc;

use poem::{Endpoint, Middleware, Request, Response};

/// One step around every request.
pub trait Layer: Send + Sync + 'static {
    fn handle<E: Endpoint>(
        &self,
        next: &E,
        req: Request,
    ) -> impl Future<Output = poem::Result<Response>> + Send;
}

/// A layer in front of an endpoint.
pub struct Layered<L, E> {
    layer: Arc<L>,
    next: E,
}

impl<L: Layer, E: Endpoint> Endpoint for Layered<L, E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        self.layer.handle(&self.next, req).await
    }
}

/// A layer as poem middleware.
pub struct LayerMiddleware<L>(Arc<L>);

pub fn layer<L: Layer>(layer: L) -> LayerMiddleware<L> {
    LayerMiddleware(Arc::new(layer))
}

impl<L: Layer, E: Endpoint> Middleware<E> for LayerMiddleware<L> {
    type Output = Layered<L, E>;

    fn transform(&self, next: E) -> Self::Output {
        Layered {
            layer: self.0.clone(),
            next,
        }
    }
}
