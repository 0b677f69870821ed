use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::error::{Success, operation_errors};
use super::models::{BooleanResponse, ErrorResponse};
use super::payload::JsonBody;
use super::security::ApiAuth;
use crate::service::DatabaseService;

operation_errors!(GetHealthError, {
    /// The URL is over 61,440 bytes.
    400 => BadRequest,
    /// Missing or invalid credentials.
    403 => Forbidden,
});

/// The liveness answer: the process is up. No rate limit counts liveness, so no rate-limit headers.
#[derive(ApiResponse)]
pub enum LivenessResponse {
    /// The process is up.
    #[oai(status = 200)]
    Ok(JsonBody<BooleanResponse>),
    /// The URL is over 61,440 bytes (answered by `bounds::CheckRequest`; documented only).
    #[oai(status = 400)]
    #[allow(dead_code)]
    BadRequest(JsonBody<ErrorResponse>),
    /// The URL is over 65,534 bytes (answered by the HTTP layer, with no body; documented only).
    #[oai(status = 414)]
    #[allow(dead_code)]
    UriTooLong,
}

/// Health checks.
pub struct HealthApi {
    pub database: DatabaseService,
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Check health
    ///
    /// Readiness: `true` when Roster can reach its database; 503 with `Retry-After` when it cannot.
    #[oai(path = "/api/health", method = "get", operation_id = "getHealth")]
    async fn health(&self, _auth: ApiAuth) -> Result<Success<BooleanResponse>, GetHealthError> {
        self.database.ping().await?;
        Ok(Success(BooleanResponse::yes()))
    }

    /// Check liveness
    ///
    /// `true` while the process runs, whatever the database's state. Needs no authentication.
    #[oai(path = "/health", method = "get", operation_id = "getLiveness")]
    async fn liveness(&self) -> LivenessResponse {
        LivenessResponse::Ok(JsonBody(BooleanResponse::yes()))
    }
}
