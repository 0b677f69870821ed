//! Authentication: one middleware authenticates every request for an operation that needs credentials, once; the
//! security schemes only declare the schemes in the spec and hand the result to the operation.

use std::sync::Arc;
use std::time::Instant;

use poem::http::header::AUTHORIZATION;
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Basic};

use super::catalog::Catalog;
use super::context::{ClientAddress, caller, set_caller};
use super::error::ApiError;
use super::layer::Layer;
use super::limits::{Caller, LoginFailures, RateLimits};
use crate::domain::Principal;
use crate::service::{AuthError, Authenticator};

// HTTP Basic authentication: the admin or an API user and its token (described in openapi.yaml).
#[derive(SecurityScheme)]
#[oai(rename = "BasicAuth", ty = "basic", checker = "check_basic")]
pub struct BasicAuth(Principal);

// listmonk's `Authorization: token api_user:token` (described in openapi.yaml).
#[derive(SecurityScheme)]
#[oai(
    rename = "TokenAuth",
    ty = "api_key",
    key_name = "Authorization",
    key_in = "header",
    checker = "check_token"
)]
pub struct TokenAuth(Principal);

/// Either scheme.
#[derive(SecurityScheme)]
pub enum ApiAuth {
    Basic(BasicAuth),
    Token(TokenAuth),
}

impl ApiAuth {
    pub fn principal(&self) -> &Principal {
        match self {
            ApiAuth::Basic(BasicAuth(p)) | ApiAuth::Token(TokenAuth(p)) => p,
        }
    }
}

/// The caller [`Authenticate`] established for this request. Every operation with a security requirement is
/// behind that middleware, so a request without one never had valid credentials.
fn authenticated(req: &Request) -> poem::Result<Principal> {
    caller(req)
        .cloned()
        .ok_or_else(|| ApiError::from(AuthError::Missing).into())
}

async fn check_basic(req: &Request, _: Basic) -> poem::Result<Principal> {
    authenticated(req)
}

async fn check_token(req: &Request, _: ApiKey) -> poem::Result<Principal> {
    authenticated(req)
}

/// Authenticates requests for operations that need credentials: first the address's failed-login allowance
/// (before any credential is looked at), then one lookup of the credentials, then the caller's rate limit.
pub struct Authenticate {
    pub catalog: Arc<Catalog>,
    pub authenticator: Authenticator,
    pub limits: Arc<RateLimits>,
    pub failures: Option<LoginFailures>,
}

impl Layer for Authenticate {
    async fn handle<E: Endpoint>(&self, next: &E, mut req: Request) -> poem::Result<Response> {
        let needs_credentials = self
            .catalog
            .operation(req.method(), req.uri().path())
            .is_some_and(|op| op.authenticated);
        if !needs_credentials {
            return Ok(next.call(req).await?.into_response());
        }
        let principal = self.principal(&req).await?;
        self.limits.take(&req, Caller::of(&principal))?;
        set_caller(&mut req, principal);
        Ok(next.call(req).await?.into_response())
    }
}

impl Authenticate {
    async fn principal(&self, req: &Request) -> Result<Principal, ApiError> {
        let Some(header) = req.headers().get(AUTHORIZATION) else {
            return Err(AuthError::Missing.into());
        };
        let address = ClientAddress::of(req);
        let attempt = match &self.failures {
            Some(failures) => Some(failures.begin(address, Instant::now())?),
            None => None,
        };
        let result = match header.to_str() {
            Ok(header) => self.authenticator.authenticate(Some(header)).await,
            Err(_) => Err(AuthError::Malformed("not visible ASCII")),
        };
        let failed = matches!(result, Err(AuthError::Invalid | AuthError::Malformed(_)));
        if let (Some(failures), Some(attempt)) = (&self.failures, attempt) {
            failures.finish(attempt, failed, Instant::now());
        }
        result.map_err(|err| {
            if failed {
                tracing::warn!(client = %address, reason = %err, "failed login");
            }
            err.into()
        })
    }
}
