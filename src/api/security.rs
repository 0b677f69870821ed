//! Authentication: one middleware authenticates every request for an operation that needs credentials, once; the
//! security schemes only declare the schemes in the spec, and [`ApiAuth`] hands the result to the operation
//! without reading the header again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use poem::http::header::AUTHORIZATION;
use poem::{Endpoint, IntoResponse, Request, RequestBody, Response};
use poem_openapi::auth::{ApiKey, Basic};
use poem_openapi::registry::Registry;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme};
use sha2::{Digest, Sha256};

use super::context::{caller, resolved, set_caller};
use super::error::ApiError;
use super::layer::Layer;
use super::limits::{Caller, LoginFailures, RateLimits};
use crate::domain::Principal;
use crate::service::{AuthError, Authenticator};

// HTTP Basic authentication: the admin or an API user and its token (described in openapi.yaml). Declares the
// scheme for the spec (`ApiAuth` registers it); never extracted.
#[derive(SecurityScheme)]
#[oai(rename = "BasicAuth", ty = "basic")]
pub struct BasicAuth(#[allow(dead_code)] Basic);

// listmonk's `Authorization: token api_user:token` (described in openapi.yaml).
#[derive(SecurityScheme)]
#[oai(
    rename = "TokenAuth",
    ty = "api_key",
    key_name = "Authorization",
    key_in = "header"
)]
// Declares the scheme for the spec ([`ApiAuth`] registers it); never extracted.
pub struct TokenAuth(#[allow(dead_code)] ApiKey);

/// Either scheme, as an operation's argument: the spec shows both schemes (as the derived enum of the two would),
/// and the operation gets the caller [`Authenticate`] established. The derived enum would decode the header a
/// second time and look the caller up for each scheme it tries.
pub struct ApiAuth(Principal);

impl ApiAuth {
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

impl<'a> ApiExtractor<'a> for ApiAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <BasicAuth as ApiExtractor>::register(registry);
        <TokenAuth as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <BasicAuth as ApiExtractor>::security_schemes();
        schemes.extend(<TokenAuth as ApiExtractor>::security_schemes());
        schemes
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        authenticated(req).map(Self)
    }
}

/// The caller [`Authenticate`] established for this request. Every operation with a security requirement is
/// behind that middleware, so a request without one never had valid credentials (a `HEAD`, which the router
/// serves with the `GET` operation, is not an operation of the catalog and is not authenticated).
fn authenticated(req: &Request) -> poem::Result<Principal> {
    caller(req).cloned().ok_or_else(|| {
        let reason = match req.headers().get(AUTHORIZATION) {
            Some(value) if value.to_str().is_err() => AuthError::Malformed("not visible ASCII"),
            _ => AuthError::Missing,
        };
        ApiError::from(reason).into()
    })
}

/// Authenticates requests for operations that need credentials: first the address's failed-login allowance
/// (before any credential is looked at), then one lookup of the credentials, then the caller's rate limit. A
/// request whose `Authorization` header authenticated before takes from its caller's bucket first, so a
/// throttled caller is refused without a lookup.
pub struct Authenticate {
    pub authenticator: Authenticator,
    pub limits: Arc<RateLimits>,
    pub failures: Option<LoginFailures>,
    pub known: KnownCredentials,
}

impl Layer for Authenticate {
    async fn handle<E: Endpoint>(&self, next: &E, mut req: Request) -> poem::Result<Response> {
        if !resolved(&req).authenticates() {
            return Ok(next.call(req).await?.into_response());
        }
        let fingerprint = req
            .headers()
            .get(AUTHORIZATION)
            .map(|header| Fingerprint::of(header.as_bytes()));
        let known = fingerprint.and_then(|f| self.known.caller(&f));
        if let Some(caller) = known {
            self.limits.take(&req, caller)?;
        }
        let principal = self.principal(&req).await?;
        let caller = Caller::of(&principal);
        if known != Some(caller) {
            self.limits.take(&req, caller)?;
            if let Some(fingerprint) = fingerprint {
                self.known.remember(fingerprint, caller);
            }
        }
        set_caller(&mut req, principal);
        Ok(next.call(req).await?.into_response())
    }
}

/// The SHA-256 of an `Authorization` header's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    fn of(header: &[u8]) -> Self {
        Self(Sha256::digest(header).into())
    }
}

/// Most headers remembered; past it the memory starts afresh (one more lookup per caller).
const KNOWN_MAX: usize = 4_096;

/// Which caller each recently authenticated `Authorization` header belonged to, so that a throttled caller's
/// requests are refused (429) before their credentials are looked up in the database: a flood of them would
/// otherwise cost a lookup each. Only used to refuse, never to admit: a remembered header is still looked up
/// whenever its caller's bucket lets the request through, so a disabled user or a rotated token is refused
/// (403) as at once as before. Per instance, in memory, bounded by [`KNOWN_MAX`]; only a header that
/// authenticated finds an entry, so it tells nothing to someone without the credentials.
#[derive(Default)]
pub struct KnownCredentials(Mutex<HashMap<Fingerprint, Caller>>);

impl KnownCredentials {
    fn caller(&self, fingerprint: &Fingerprint) -> Option<Caller> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(fingerprint)
            .copied()
    }

    fn remember(&self, fingerprint: Fingerprint, caller: Caller) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= KNOWN_MAX {
            known.clear();
        }
        known.insert(fingerprint, caller);
    }
}

impl Authenticate {
    async fn principal(&self, req: &Request) -> Result<Principal, ApiError> {
        let Some(header) = req.headers().get(AUTHORIZATION) else {
            return Err(AuthError::Missing.into());
        };
        let address = resolved(req).address;
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
