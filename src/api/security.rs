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

use super::context::{caller, resolved, set_caller};
use super::error::ApiError;
use super::layer::Layer;
use super::limits::{Caller, LoginAttempt, LoginFailures, RateLimits};
use crate::domain::Principal;
use crate::service::{AuthError, Authenticator, Credentials};

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
/// request whose credentials authenticated before takes from its caller's bucket before the lookup, so a
/// throttled caller is refused without one.
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
        let address = resolved(&req).address;
        let attempt = match &self.failures {
            Some(failures) => Some(failures.begin(address, Instant::now())?),
            None => None,
        };
        let credentials = match req.headers().get(AUTHORIZATION) {
            None => Err(AuthError::Missing),
            Some(header) => header
                .to_str()
                .map_err(|_| AuthError::Malformed("not visible ASCII"))
                .and_then(Credentials::parse),
        };
        let digest = credentials.as_ref().ok().map(Credentials::digest);
        let known = digest.and_then(|d| self.known.caller(&d));
        // Charged before the lookup, but its quota is told only once the credentials prove to be that caller's.
        let charged = match known {
            Some(caller) => match self.limits.check(caller) {
                (quota, Ok(())) => Some((caller, quota)),
                (quota, Err(refused)) => {
                    self.finish(attempt, false);
                    RateLimits::record(&req, quota);
                    return Err(refused.into());
                }
            },
            None => None,
        };
        let result = match credentials {
            Ok(credentials) => self.authenticator.authenticate(&credentials).await,
            Err(err) => Err(err),
        };
        let failed = matches!(result, Err(AuthError::Invalid | AuthError::Malformed(_)));
        self.finish(attempt, failed);
        let principal = match result {
            Ok(principal) => principal,
            Err(err) => {
                if failed {
                    tracing::warn!(client = %address, reason = %err, "failed login");
                    // Credentials that no longer authenticate (a rotated token, a disabled user) are forgotten.
                    if let Some(digest) = digest {
                        self.known.forget(&digest);
                    }
                }
                return Err(ApiError::from(err).into());
            }
        };
        let caller = Caller::of(&principal);
        match charged {
            Some((charged, quota)) if charged == caller => RateLimits::record(&req, quota),
            _ => {
                self.limits.take(&req, caller)?;
                if let Some(digest) = digest {
                    self.known.remember(digest, caller);
                }
            }
        }
        set_caller(&mut req, principal);
        Ok(next.call(req).await?.into_response())
    }
}

impl Authenticate {
    fn finish(&self, attempt: Option<LoginAttempt>, failed: bool) {
        if let (Some(failures), Some(attempt)) = (&self.failures, attempt) {
            failures.finish(attempt, failed, Instant::now());
        }
    }
}

/// Most credentials remembered; past it one entry makes room for the next.
const KNOWN_MAX: usize = 4_096;

/// Which caller recently authenticated credentials belong to (by `Credentials::digest`, so one entry per
/// credential however its header is spelled), so that a throttled caller's requests are refused (429) before
/// their credentials are looked up in the database: a flood of them would otherwise cost a lookup each. Only used
/// to refuse, never to admit: a remembered credential is still looked up whenever its caller's bucket lets the
/// request through, so a disabled user or a rotated token is refused (403) at once, and then forgotten. Only
/// credentials that authenticated have an entry, so it tells nothing to someone without them. Per instance, in
/// memory, at most [`KNOWN_MAX`] entries.
#[derive(Default)]
pub struct KnownCredentials(Mutex<HashMap<[u8; 32], Caller>>);

impl KnownCredentials {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Caller>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn caller(&self, digest: &[u8; 32]) -> Option<Caller> {
        self.lock().get(digest).copied()
    }

    fn remember(&self, digest: [u8; 32], caller: Caller) {
        let mut known = self.lock();
        if known.len() >= KNOWN_MAX
            && !known.contains_key(&digest)
            && let Some(any) = known.keys().next().copied()
        {
            known.remove(&any);
        }
        known.insert(digest, caller);
    }

    fn forget(&self, digest: &[u8; 32]) {
        self.lock().remove(digest);
    }
}
