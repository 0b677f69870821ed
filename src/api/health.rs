use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::error::{Success, operation_errors};
use super::models::BooleanResponse;
use super::payload::JsonBody;
use super::security::ApiAuth;
use crate::service::DatabaseService;

operation_errors!(GetHealthError, {
    /// Missing or invalid credentials.
    403 => Forbidden,
});

/// The liveness answer: the process is up.
#[derive(ApiResponse)]
pub enum LivenessResponse {
    /// The process is up.
    #[oai(status = 200)]
    Ok(JsonBody<BooleanResponse>),
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
