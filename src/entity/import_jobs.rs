use sea_orm::entity::prelude::*;

/// The subscriber import (one row, `id` 1): see migration 13.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// The attempt running the job; its batches commit only while the row still names it.
    pub token: String,
    /// The uploaded file's name.
    pub name: String,
    pub mode: String,
    /// `importing`, `stopping`, `finished` or `failed` (`none` is the absence of a row).
    pub status: String,
    pub total: i64,
    pub imported: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    /// Lines in `import_log`.
    pub logged: i32,
    pub caller: String,
    pub started_at: DateTimeUtc,
    /// Renewed while the job runs; a running job whose heartbeat is older than the lease is dead.
    pub heartbeat_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
