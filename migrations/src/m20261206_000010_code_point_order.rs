use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Subscribers' text columns compare in code-point order on PostgreSQL, as on SQLite (whose `BINARY` collation
/// compares UTF-8 bytes) and as `name_folded` already does (migration 7).
///
/// `email` and `status` followed the database's collation, so `order_by=email` put `ä@x.io` before `a+z@x.io` in
/// an ICU `en-US` database, and the keyset comparisons of cursors and deep pages (`(email, id) > ($1, $2)`) followed
/// that order too. Declaring the columns `COLLATE "C"` makes the database's locale irrelevant: `ORDER BY`, keyset
/// comparisons and `query` comparisons all use code-point order with no `COLLATE` in the statements, and the
/// indexes on them are rebuilt under it, so they keep serving those orderings (and prefix `LIKE`). Equality is the
/// same under every deterministic collation, so `email` stays unique exactly as before. `name` (which `query`
/// compares, always with `COLLATE "C"`) follows for uniformity; it has no index.
///
/// Changing only the collation of `text`/`varchar` rewrites no rows; PostgreSQL rebuilds the columns' indexes
/// (the unique index on `email`, its trigram index, `idx_subscribers_status`) under the table's exclusive lock.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            // SQLite compares text by code point already.
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE subscribers \
                 ALTER COLUMN email TYPE TEXT COLLATE \"C\", \
                 ALTER COLUMN name TYPE TEXT COLLATE \"C\", \
                 ALTER COLUMN status TYPE VARCHAR(16) COLLATE \"C\"",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE subscribers \
                 ALTER COLUMN email TYPE TEXT COLLATE pg_catalog.\"default\", \
                 ALTER COLUMN name TYPE TEXT COLLATE pg_catalog.\"default\", \
                 ALTER COLUMN status TYPE VARCHAR(16) COLLATE pg_catalog.\"default\"",
            )
            .await?;
        Ok(())
    }
}
