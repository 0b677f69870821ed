use std::sync::Arc;

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Basic;

use super::error::ApiError;
use crate::domain::Principal;
use crate::service::Authenticator;

/// HTTP Basic authentication with the admin credentials (`curl -u admin:PASSWORD`). Missing, wrong or malformed
/// credentials are answered with 403 and a JSON message.
#[derive(SecurityScheme)]
#[oai(rename = "BasicAuth", ty = "basic", checker = "check_basic")]
pub struct BasicAuth(pub Principal);

async fn check_basic(req: &Request, basic: Basic) -> poem::Result<Principal> {
    let authenticator = req.data::<Arc<Authenticator>>().ok_or_else(|| {
        tracing::error!("no authenticator installed");
        ApiError::internal()
    })?;
    authenticator
        .basic(&basic.username, &basic.password)
        .ok_or_else(|| ApiError::forbidden("invalid credentials").into())
}
