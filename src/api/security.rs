use std::sync::Arc;

use poem::Request;
use poem::http::header::AUTHORIZATION;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Basic};

use super::error::ApiError;
use super::ops::client_key;
use crate::domain::Principal;
use crate::service::{AuthError, Authenticator};

/// HTTP Basic authentication: the admin credentials (`curl -u admin:PASSWORD`) or an API user and its token
/// (`curl -u api_user:token`). Missing, wrong or malformed credentials are answered with 403 and a JSON message.
#[derive(SecurityScheme)]
#[oai(rename = "BasicAuth", ty = "basic", checker = "check_basic")]
pub struct BasicAuth(Principal);

/// listmonk's token header for API users: `Authorization: token api_user:token`. In Swagger UI, enter the whole
/// value, `token api_user:token`.
#[derive(SecurityScheme)]
#[oai(
    rename = "TokenAuth",
    ty = "api_key",
    key_name = "Authorization",
    key_in = "header",
    checker = "check_token"
)]
pub struct TokenAuth(Principal);

/// Either scheme. Both checkers authenticate the same raw header, so whichever variant reports last (poem tries
/// them in order and keeps the last error) gives the precise answer.
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

/// `count_failure`: whether a refusal counts against the client's address. Only the last checker counts, so that a
/// refused request counts once although both checkers see it.
async fn authenticate(req: &Request, count_failure: bool) -> poem::Result<Principal> {
    let authenticator = req.data::<Arc<Authenticator>>().ok_or_else(|| {
        tracing::error!("no authenticator installed");
        ApiError::internal()
    })?;
    let header = match req.headers().get(AUTHORIZATION) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::forbidden("malformed Authorization header: not visible ASCII")
        })?),
    };
    let context = super::routes::context(req)?;
    let limits = Some(&context.limits);
    match authenticator.authenticate(header).await {
        Ok(principal) => {
            if let Some(limits) = limits {
                limits.check(&identity_key(&principal), "identity")?;
            }
            Ok(principal)
        }
        Err(err) => {
            // Failed attempts count against the client's address, which slows down guessing.
            if let (true, Some(limits), AuthError::Invalid | AuthError::Malformed(_)) =
                (count_failure, limits, &err)
            {
                limits.check(&client_key(req), "address")?;
            }
            Err(ApiError::from(err).into())
        }
    }
}

fn identity_key(principal: &Principal) -> String {
    match principal {
        Principal::Admin { username } => format!("admin:{username}"),
        Principal::ApiUser { id, .. } => format!("user:{id}"),
    }
}

async fn check_basic(req: &Request, _: Basic) -> poem::Result<Principal> {
    authenticate(req, false).await
}

async fn check_token(req: &Request, _: ApiKey) -> poem::Result<Principal> {
    authenticate(req, true).await
}
