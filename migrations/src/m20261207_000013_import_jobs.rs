use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ImportJobs {
    Table,
    Id,
    Token,
    Name,
    Mode,
    Status,
    Total,
    Imported,
    Created,
    Updated,
    Skipped,
    Logged,
    Caller,
    StartedAt,
    HeartbeatAt,
    EndedAt,
}

#[derive(DeriveIden)]
enum ImportLog {
    Table,
    Id,
    Line,
}

/// `import_jobs`: the subscriber import, one row (`id` 1) as listmonk has one importer, held in the database so
/// that every instance reports the same job. `token` names the attempt running it; `heartbeat_at` is renewed while
/// it runs, so a job whose instance died is seen as failed. `import_log` holds its log lines (at most a bounded
/// number, `logged` counting them).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ImportJobs::Table)
                    .col(integer(ImportJobs::Id).primary_key())
                    .col(string_len(ImportJobs::Token, 36))
                    .col(text(ImportJobs::Name))
                    .col(string_len(ImportJobs::Mode, 16))
                    .col(string_len(ImportJobs::Status, 16))
                    .col(big_integer(ImportJobs::Total))
                    .col(big_integer(ImportJobs::Imported))
                    .col(big_integer(ImportJobs::Created))
                    .col(big_integer(ImportJobs::Updated))
                    .col(big_integer(ImportJobs::Skipped))
                    .col(integer(ImportJobs::Logged))
                    .col(text(ImportJobs::Caller))
                    .col(timestamp_with_time_zone(ImportJobs::StartedAt))
                    .col(timestamp_with_time_zone(ImportJobs::HeartbeatAt))
                    .col(timestamp_with_time_zone_null(ImportJobs::EndedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImportLog::Table)
                    .col(big_integer(ImportLog::Id).primary_key())
                    .col(text(ImportLog::Line))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ImportLog::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ImportJobs::Table).to_owned())
            .await
    }
}
