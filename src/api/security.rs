use std::sync::Arc;

use poem::Request;
use poem::http::header::AUTHORIZATION;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Basic};

use super::error::ApiError;
use crate::domain::Principal;
use crate::service::Authenticator;

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

async fn authenticate(req: &Request) -> poem::Result<Principal> {
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
    authenticator
        .authenticate(header)
        .await
        .map_err(|err| ApiError::from(err).into())
}

async fn check_basic(req: &Request, _: Basic) -> poem::Result<Principal> {
    authenticate(req).await
}

async fn check_token(req: &Request, _: ApiKey) -> poem::Result<Principal> {
    authenticate(req).await
}
