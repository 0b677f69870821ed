//! The import job's bodies, as they appear on the wire and in the spec.

use poem_openapi::{Enum, Object};

use super::{SubscriptionStatus, SuccessStatus};
use crate::api::types::ListId;
use crate::domain;
use crate::service::ImportStats;

mirror_enum!(
    ImportMode => ImportMode { Subscribe, Blocklist }
);
mirror_enum!(
    ImportState => ImportState { None, Importing, Stopping, Finished, Failed }
);

// The upload's `params`, as JSON text (listmonk's `SessionOpt`). Parsed only; the spec describes the field.
#[derive(Object, Debug, Clone)]
pub struct ImportParams {
    pub mode: Option<ImportMode>,
    pub subscription_status: Option<SubscriptionStatus>,
    pub delim: Option<String>,
    #[oai(validator(max_items = 1000))]
    pub lists: Option<Vec<ListId>>,
    pub overwrite: Option<bool>,
    pub overwrite_userinfo: Option<bool>,
    pub overwrite_subscription_status: Option<bool>,
    // listmonk's UI sends the file's name here too; the upload's own name is used.
    #[oai(validator(max_length = 1024))]
    pub filename: Option<String>,
}

impl From<ImportParams> for domain::ImportParams {
    fn from(params: ImportParams) -> Self {
        Self {
            mode: params.mode.map(Into::into),
            subscription_status: params.subscription_status.map(Into::into),
            delim: params.delim,
            lists: params
                .lists
                .map(|ids| ids.into_iter().map(|id| id.0).collect()),
            overwrite: params.overwrite,
            overwrite_userinfo: params.overwrite_userinfo,
            overwrite_subscription_status: params.overwrite_subscription_status,
        }
    }
}

#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct ImportStatus {
    #[oai(validator(max_length = 255))]
    pub name: String,
    #[oai(validator(minimum(value = "0"), maximum(value = "9223372036854775807")))]
    pub total: i64,
    #[oai(validator(minimum(value = "0"), maximum(value = "9223372036854775807")))]
    pub imported: i64,
    #[oai(validator(minimum(value = "0"), maximum(value = "9223372036854775807")))]
    pub created: i64,
    #[oai(validator(minimum(value = "0"), maximum(value = "9223372036854775807")))]
    pub updated: i64,
    #[oai(validator(minimum(value = "0"), maximum(value = "9223372036854775807")))]
    pub skipped: i64,
    pub status: ImportState,
}

impl From<ImportStats> for ImportStatus {
    fn from(stats: ImportStats) -> Self {
        Self {
            name: stats.name,
            total: stats.total,
            imported: stats.imported,
            created: stats.created,
            updated: stats.updated,
            skipped: stats.skipped,
            status: stats.status.into(),
        }
    }
}

pub type ImportStatusResponse = super::Envelope<ImportStatus>;

#[derive(Object, serde::Serialize, Debug, Clone, PartialEq)]
pub struct ImportLogResponse {
    #[oai(validator(max_length = 500000))]
    pub data: String,
    pub status: SuccessStatus,
}
