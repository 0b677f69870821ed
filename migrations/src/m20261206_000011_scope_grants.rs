use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `subscriber_lists.grants_scope`: whether a subscription puts its subscriber in the scope of the list's readers
/// (`subscribers:get` through `list:get`). A subscription the public form adds to a subscriber that already existed
/// does not (`FALSE`): otherwise anyone could post a victim's e-mail to a public list and hand the victim's name
/// and attributes to whoever reads that list. Every subscription written by an authenticated caller does.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE subscriber_lists ADD COLUMN grants_scope BOOLEAN NOT NULL DEFAULT TRUE",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE subscriber_lists DROP COLUMN grants_scope")
            .await?;
        Ok(())
    }
}
