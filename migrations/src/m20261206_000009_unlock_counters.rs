use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The counter rows of a deleted list go by a trigger on PostgreSQL too, instead of a foreign key.
///
/// With the foreign key, every statement that changed a subscription took a `FOR KEY SHARE` lock on the list when
/// its counter trigger upserted the list's row, i.e. *after* locking the subscription. A write that changes
/// subscriptions on lists it does not name (a blocklist, a subscriber's delete, a `PUT` dropping lists) then
/// waited for a list that a concurrent `DELETE /api/lists` held while that delete waited for the write's
/// subscriptions: a deadlock. Without it, only writes that name a list lock it, before anything else, and the
/// lock order of `service::locks` holds. The trigger runs after the delete's cascade (whose own counter changes
/// the counters' guard skips), so no counter row outlives its list.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            // SQLite already removes them by trigger (migration 7).
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "ALTER TABLE list_subscriber_counts DROP CONSTRAINT list_subscriber_counts_list_fkey",
        )
        .await?;
        db.execute_unprepared(
            "CREATE FUNCTION list_subscriber_counts_list_delete() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                DELETE FROM list_subscriber_counts c USING old_lists o WHERE c.list_id = o.id;
                RETURN NULL;
            END $$",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER list_subscriber_counts_list_delete AFTER DELETE ON lists
                REFERENCING OLD TABLE AS old_lists
                FOR EACH STATEMENT EXECUTE FUNCTION list_subscriber_counts_list_delete()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "DROP TRIGGER IF EXISTS list_subscriber_counts_list_delete ON lists; \
             DROP FUNCTION IF EXISTS list_subscriber_counts_list_delete()",
        )
        .await?;
        db.execute_unprepared(
            "DELETE FROM list_subscriber_counts c WHERE NOT EXISTS (SELECT 1 FROM lists l WHERE l.id = c.list_id)",
        )
        .await?;
        db.execute_unprepared(
            "ALTER TABLE list_subscriber_counts ADD CONSTRAINT list_subscriber_counts_list_fkey \
             FOREIGN KEY (list_id) REFERENCES lists (id) ON DELETE CASCADE",
        )
        .await?;
        Ok(())
    }
}
