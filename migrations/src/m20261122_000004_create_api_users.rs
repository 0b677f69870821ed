use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Roles {
    Table,
    Id,
    Name,
    Kind,
    CreatedAt,
}

/// Permissions a user role grants over every list (`lists:get_all`, `lists:manage_all`).
#[derive(DeriveIden)]
enum RolePermissions {
    Table,
    RoleId,
    Permission,
}

/// Permissions a list role grants on one list (`list:get`, `list:manage`); gone with the list.
#[derive(DeriveIden)]
enum ListPermissions {
    Table,
    RoleId,
    ListId,
    Permission,
}

#[derive(DeriveIden)]
enum ApiUsers {
    Table,
    Id,
    Name,
    Status,
    TokenSha256,
    UserRoleId,
    ListRoleId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Lists {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Roles::Table)
                    .col(big_pk_auto(Roles::Id))
                    .col(string_len_uniq(Roles::Name, 100))
                    .col(string_len(Roles::Kind, 8))
                    .col(timestamp_with_time_zone(Roles::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RolePermissions::Table)
                    .col(big_integer(RolePermissions::RoleId))
                    .col(string_len(RolePermissions::Permission, 32))
                    .primary_key(
                        Index::create()
                            .col(RolePermissions::RoleId)
                            .col(RolePermissions::Permission),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RolePermissions::Table, RolePermissions::RoleId)
                            .to(Roles::Table, Roles::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ListPermissions::Table)
                    .col(big_integer(ListPermissions::RoleId))
                    .col(big_integer(ListPermissions::ListId))
                    .col(string_len(ListPermissions::Permission, 32))
                    .primary_key(
                        Index::create()
                            .col(ListPermissions::RoleId)
                            .col(ListPermissions::ListId)
                            .col(ListPermissions::Permission),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ListPermissions::Table, ListPermissions::RoleId)
                            .to(Roles::Table, Roles::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ListPermissions::Table, ListPermissions::ListId)
                            .to(Lists::Table, Lists::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Deleting a list cascades through this index.
        manager
            .create_index(
                Index::create()
                    .name("idx_list_permissions_list_id")
                    .table(ListPermissions::Table)
                    .col(ListPermissions::ListId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiUsers::Table)
                    .col(big_pk_auto(ApiUsers::Id))
                    .col(string_len_uniq(ApiUsers::Name, 100))
                    .col(string_len(ApiUsers::Status, 16))
                    .col(string_len(ApiUsers::TokenSha256, 64))
                    .col(big_integer(ApiUsers::UserRoleId))
                    .col(big_integer_null(ApiUsers::ListRoleId))
                    .col(timestamp_with_time_zone(ApiUsers::CreatedAt))
                    .col(timestamp_with_time_zone(ApiUsers::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiUsers::Table, ApiUsers::UserRoleId)
                            .to(Roles::Table, Roles::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiUsers::Table, ApiUsers::ListRoleId)
                            .to(Roles::Table, Roles::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ApiUsers::Table.into_iden(),
            ListPermissions::Table.into_iden(),
            RolePermissions::Table.into_iden(),
            Roles::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
