use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `roles.version`: grown by every change to a role's permissions. Authentication records the versions of the
/// caller's roles; a write checks them in its own transaction, holding the roles `FOR SHARE`, so a write whose
/// grant was revoked while it was in flight is refused instead of committing after the revoke.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE roles ADD COLUMN version BIGINT NOT NULL DEFAULT 0")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE roles DROP COLUMN version")
            .await?;
        Ok(())
    }
}
