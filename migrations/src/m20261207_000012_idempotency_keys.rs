use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyCallers {
    Table,
    Caller,
    Live,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Caller,
    Key,
    Fingerprint,
    Token,
    State,
    Status,
    ContentType,
    Etag,
    Body,
    ClaimedAt,
    ExpiresAt,
}

/// `idempotency_keys`: one row per caller and `Idempotency-Key`, holding the request's fingerprint, who is
/// carrying it out (`token`), how far it got (`running`, `committed` by the write's own transaction, `done` with
/// its answer, `lost` when it committed and its answer could not be had) and the answer to replay. Kept in the
/// database so that every instance answers a retry alike. `idempotency_callers` counts each caller's keys, so that
/// the cap on them is checked with one row rather than a count.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(text(IdempotencyKeys::Caller))
                    .col(string_len(IdempotencyKeys::Key, 255))
                    .col(string_len(IdempotencyKeys::Fingerprint, 64))
                    .col(string_len(IdempotencyKeys::Token, 36))
                    .col(string_len(IdempotencyKeys::State, 16))
                    .col(integer_null(IdempotencyKeys::Status))
                    .col(string_len_null(IdempotencyKeys::ContentType, 100))
                    .col(string_len_null(IdempotencyKeys::Etag, 40))
                    .col(blob_null(IdempotencyKeys::Body))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ClaimedAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::Caller)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyCallers::Table)
                    .col(text(IdempotencyCallers::Caller).primary_key())
                    .col(big_integer(IdempotencyCallers::Live))
                    .to_owned(),
            )
            .await?;
        // The cleanup finds expired keys by this index, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("idempotency_keys_expires_at")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyCallers::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}
