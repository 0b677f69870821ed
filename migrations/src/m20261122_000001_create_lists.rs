use sea_orm_migration::sea_orm::DatabaseBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Lists {
    Table,
    Id,
    Uuid,
    Name,
    NameFolded,
    Type,
    Optin,
    Status,
    Tags,
    Description,
    CreatedAt,
    UpdatedAt,
}

/// One row per (list, tag): lets the `tag` filter use an index instead of reading every row's JSON.
#[derive(DeriveIden)]
enum ListTags {
    Table,
    ListId,
    Tag,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Names sort by their folded form. On Postgres the column uses the "C" collation (code-point order), the
        // order SQLite uses, so that both backends sort identically and the index serves the sort.
        let mut name_folded = text(Lists::NameFolded);
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            name_folded.extra("COLLATE \"C\"");
        }
        manager
            .create_table(
                Table::create()
                    .table(Lists::Table)
                    .col(big_pk_auto(Lists::Id))
                    .col(uuid_uniq(Lists::Uuid))
                    .col(text(Lists::Name))
                    .col(name_folded)
                    .col(string_len(Lists::Type, 16))
                    .col(string_len(Lists::Optin, 16))
                    .col(string_len(Lists::Status, 16))
                    .col(json_binary(Lists::Tags))
                    .col(text(Lists::Description))
                    .col(timestamp_with_time_zone(Lists::CreatedAt))
                    .col(timestamp_with_time_zone(Lists::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ListTags::Table)
                    .col(big_integer(ListTags::ListId))
                    .col(string_len(ListTags::Tag, 100))
                    .primary_key(Index::create().col(ListTags::ListId).col(ListTags::Tag))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ListTags::Table, ListTags::ListId)
                            .to(Lists::Table, Lists::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // Every filter and every ordering the API offers has an index. Orderings carry `id` because it is the
        // final tie-breaker of every listing.
        let indexes: [(&str, Vec<Lists>); 6] = [
            ("idx_lists_status", vec![Lists::Status, Lists::Id]),
            ("idx_lists_type", vec![Lists::Type, Lists::Id]),
            ("idx_lists_optin", vec![Lists::Optin, Lists::Id]),
            ("idx_lists_name", vec![Lists::NameFolded, Lists::Id]),
            ("idx_lists_created_at", vec![Lists::CreatedAt, Lists::Id]),
            ("idx_lists_updated_at", vec![Lists::UpdatedAt, Lists::Id]),
        ];
        for (name, cols) in indexes {
            let mut index = Index::create();
            index.name(name).table(Lists::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_list_tags_tag")
                    .table(ListTags::Table)
                    .col(ListTags::Tag)
                    .col(ListTags::ListId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ListTags::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Lists::Table).to_owned())
            .await
    }
}
