//! The import job (listmonk's `/api/import/subscribers`): each operation checks the caller, parses, calls one
//! `ImportService` method and maps the result.

use std::sync::Arc;

use poem::http::StatusCode;
use poem_openapi::OpenApi;
use poem_openapi::types::ParseFromJSON;
use tokio::sync::Semaphore;

use super::ApiTags;
use super::error::ApiError;
use super::models::{ImportLogResponse, ImportParams, ImportStatusResponse, SuccessStatus};
use super::responses::{Success, operation_errors};
use super::security::ApiAuth;
use super::upload::ImportUploadBody;
use crate::domain::{self, ImportOptions};
use crate::service::{ImportService, ServiceError};

operation_errors!(ReadImportError, {
    400 => BadRequest,
    403 => Forbidden,
});
operation_errors!(StartImportError, {
    400 => BadRequest,
    403 => Forbidden,
    409 => ImportRunning,
    413 => PayloadTooLarge,
    415 => UnsupportedMediaType,
    422 => ImportUnprocessable,
});

/// Seconds a client is told to wait before uploading again while a job runs.
const RUNNING_RETRY_AFTER: i32 = 5;

/// The error, with `Retry-After` when it is a 409 (a job running, an upload arriving): the import's conflicts end
/// by themselves.
fn retry_later(err: ServiceError) -> ApiError {
    let err = ApiError::from(err);
    if err.status == StatusCode::CONFLICT {
        ApiError {
            retry_after: Some(RUNNING_RETRY_AFTER),
            ..err
        }
    } else {
        err
    }
}

/// `params`: a JSON object of listmonk's import options (400 when it is not one, as for a malformed body).
fn parse_params(raw: &[u8]) -> Result<domain::ImportParams, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(raw)
        .map_err(|err| ApiError::bad_request(format!("`params` is not JSON: {err}")))?;
    let params = ImportParams::parse_from_json(Some(value))
        .map_err(|err| ApiError::bad_request(format!("`params`: {}", err.into_message())))?;
    Ok(params.into())
}

/// The import API.
pub struct ImportsApi {
    pub imports: ImportService,
    /// One upload arriving at a time on this instance (per instance, in memory: the file goes to this instance's
    /// temporary directory).
    pub uploads: Arc<Semaphore>,
}

#[OpenApi(tag = "ApiTags::Import")]
impl ImportsApi {
    #[oai(
        path = "/api/import/subscribers",
        method = "get",
        operation_id = "getImportStatus"
    )]
    async fn status(
        &self,
        auth: ApiAuth,
    ) -> Result<Success<ImportStatusResponse>, ReadImportError> {
        let stats = self.imports.status(auth.principal()).await?;
        Ok(Success(ImportStatusResponse::success(stats.into())))
    }

    #[oai(
        path = "/api/import/subscribers/logs",
        method = "get",
        operation_id = "getImportLogs"
    )]
    async fn logs(&self, auth: ApiAuth) -> Result<Success<ImportLogResponse>, ReadImportError> {
        let data = self.imports.logs(auth.principal()).await?;
        Ok(Success(ImportLogResponse {
            data,
            status: SuccessStatus::Success,
        }))
    }

    #[oai(
        path = "/api/import/subscribers",
        method = "post",
        operation_id = "importSubscribers"
    )]
    async fn start(
        &self,
        auth: ApiAuth,
        body: ImportUploadBody,
    ) -> Result<Success<ImportStatusResponse>, StartImportError> {
        // Refused before a byte of the file is read: a caller without the permission, an upload while a job runs,
        // and a second upload arriving on this instance while one does (each may fill the temporary directory).
        self.imports
            .ensure_idle(auth.principal())
            .await
            .map_err(retry_later)?;
        let Ok(_arriving) = self.uploads.try_acquire() else {
            return Err(retry_later(ServiceError::Conflict(
                "another import is being uploaded to this instance; retry after Retry-After seconds".into(),
            ))
            .into());
        };
        let upload = body.spool(self.imports.limit()).await?;
        let options = ImportOptions::try_from(parse_params(&upload.params)?)?;
        let stats = self
            .imports
            .start(auth.principal(), options, upload.file, upload.file_name)
            .await
            .map_err(retry_later)?;
        Ok(Success(ImportStatusResponse::success(stats.into())))
    }

    #[oai(
        path = "/api/import/subscribers",
        method = "delete",
        operation_id = "stopImport"
    )]
    async fn stop(&self, auth: ApiAuth) -> Result<Success<ImportStatusResponse>, ReadImportError> {
        let stats = self.imports.stop(auth.principal()).await?;
        Ok(Success(ImportStatusResponse::success(stats.into())))
    }
}
