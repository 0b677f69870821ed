use sea_orm_migration::sea_orm::DatabaseBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::counters::Counter;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Subscribers {
    Table,
    Id,
    Uuid,
    Email,
    Name,
    NameFolded,
    Attribs,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SubscriberLists {
    Table,
    SubscriberId,
    ListId,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Lists {
    Table,
    Id,
}

/// Subscriptions per (list, subscription status): the lists' `subscriber_count` and `subscriber_statuses`. A list
/// being deleted takes its subscriptions with it (cascade); the guard keeps their removal from re-creating its
/// counter rows, which the list's own cascade removes.
const LIST_SUBSCRIBERS: Counter = Counter {
    table: "list_subscriber_counts",
    source: "subscriber_lists",
    keys: &["list_id", "status"],
    guard: "EXISTS (SELECT 1 FROM lists WHERE lists.id = {row}.list_id)",
};

/// Subscribers per status: the `total` of subscriber listings filtered on nothing but status.
const SUBSCRIBERS: Counter = Counter {
    table: "subscriber_counts",
    source: "subscribers",
    keys: &["status"],
    guard: "TRUE",
};

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // As for lists: names sort by their folded form, in code-point order on both backends.
        let mut name_folded = text(Subscribers::NameFolded);
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            name_folded.extra("COLLATE \"C\"");
        }
        manager
            .create_table(
                Table::create()
                    .table(Subscribers::Table)
                    .col(big_pk_auto(Subscribers::Id))
                    .col(uuid_uniq(Subscribers::Uuid))
                    // Stored lowercase (as listmonk does), so a plain unique index makes it unique whatever the case.
                    .col(text_uniq(Subscribers::Email))
                    .col(text(Subscribers::Name))
                    .col(name_folded)
                    .col(json_binary(Subscribers::Attribs))
                    .col(string_len(Subscribers::Status, 16))
                    .col(timestamp_with_time_zone(Subscribers::CreatedAt))
                    .col(timestamp_with_time_zone(Subscribers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SubscriberLists::Table)
                    .col(big_integer(SubscriberLists::SubscriberId))
                    .col(big_integer(SubscriberLists::ListId))
                    .col(string_len(SubscriberLists::Status, 16))
                    .col(timestamp_with_time_zone(SubscriberLists::CreatedAt))
                    .col(timestamp_with_time_zone(SubscriberLists::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(SubscriberLists::SubscriberId)
                            .col(SubscriberLists::ListId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SubscriberLists::Table, SubscriberLists::SubscriberId)
                            .to(Subscribers::Table, Subscribers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SubscriberLists::Table, SubscriberLists::ListId)
                            .to(Lists::Table, Lists::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // Every ordering carries `id`, the final tie-breaker; a list's subscribers are found (and paged by id)
        // from `subscriber_lists` alone.
        let indexes: [(&str, Vec<Subscribers>); 4] = [
            (
                "idx_subscribers_status",
                vec![Subscribers::Status, Subscribers::Id],
            ),
            (
                "idx_subscribers_name",
                vec![Subscribers::NameFolded, Subscribers::Id],
            ),
            (
                "idx_subscribers_created_at",
                vec![Subscribers::CreatedAt, Subscribers::Id],
            ),
            (
                "idx_subscribers_updated_at",
                vec![Subscribers::UpdatedAt, Subscribers::Id],
            ),
        ];
        for (name, cols) in indexes {
            let mut index = Index::create();
            index.name(name).table(Subscribers::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        let subscription_indexes: [(&str, Vec<SubscriberLists>); 2] = [
            (
                "idx_subscriber_lists_list",
                vec![SubscriberLists::ListId, SubscriberLists::SubscriberId],
            ),
            (
                "idx_subscriber_lists_list_status",
                vec![
                    SubscriberLists::ListId,
                    SubscriberLists::Status,
                    SubscriberLists::SubscriberId,
                ],
            ),
        ];
        for (name, cols) in subscription_indexes {
            let mut index = Index::create();
            index.name(name).table(SubscriberLists::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }

        LIST_SUBSCRIBERS
            .create(manager, &["BIGINT", "VARCHAR(16)"])
            .await?;
        // A deleted list's counter rows go with it.
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE list_subscriber_counts ADD CONSTRAINT list_subscriber_counts_list_fkey \
                 FOREIGN KEY (list_id) REFERENCES lists (id) ON DELETE CASCADE",
            )
            .await?;
        } else {
            // SQLite cannot add a constraint to a table; a trigger does the same.
            db.execute_unprepared(
                "CREATE TRIGGER list_subscriber_counts_list_delete AFTER DELETE ON lists BEGIN
                    DELETE FROM list_subscriber_counts WHERE list_id = OLD.id;
                END",
            )
            .await?;
        }
        SUBSCRIBERS.create(manager, &["VARCHAR(16)"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        SUBSCRIBERS.drop(manager).await?;
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            manager
                .get_connection()
                .execute_unprepared("DROP TRIGGER IF EXISTS list_subscriber_counts_list_delete")
                .await?;
        }
        LIST_SUBSCRIBERS.drop(manager).await?;
        manager
            .drop_table(Table::drop().table(SubscriberLists::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Subscribers::Table).to_owned())
            .await
    }
}
