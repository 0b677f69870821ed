use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::models::{BooleanResponse, ErrorResponse};
use super::payload::JsonBody;
use super::responses::{Success, operation_errors};
use super::security::ApiAuth;
use crate::service::DatabaseService;

operation_errors!(GetHealthError, {
    400 => BadRequest,
    403 => Forbidden,
});

#[derive(ApiResponse)]
pub enum LivenessResponse {
    #[oai(status = 200)]
    Ok(JsonBody<BooleanResponse>),
    #[oai(status = 400)]
    #[allow(dead_code)]
    BadRequest(JsonBody<ErrorResponse>),
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
    #[oai(path = "/api/health", method = "get", operation_id = "getHealth")]
    async fn health(&self, _auth: ApiAuth) -> Result<Success<BooleanResponse>, GetHealthError> {
        self.database.ping().await?;
        Ok(Success(BooleanResponse::success(true)))
    }

    #[oai(path = "/health", method = "get", operation_id = "getLiveness")]
    async fn liveness(&self) -> LivenessResponse {
        LivenessResponse::Ok(JsonBody(BooleanResponse::success(true)))
    }
}
