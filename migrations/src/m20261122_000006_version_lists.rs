use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A version of the lists' contents: the sum of `n` over the shards grows with every statement that inserts,
/// updates, deletes or truncates lists, in the same transaction. Roster reads it in the same snapshot as an
/// expensive count (a search or a tag filter) and keeps the count while the version stays the same, so repeated
/// listings with the same filter (paging through a search) stop recounting. Tags are only ever written together
/// with their list's row, so a change of tags changes the version too.
///
/// Sharded like `list_counts` (by backend pid), so concurrent writers do not queue on one row. On Postgres the
/// trigger is named to fire before the `list_counts_*` triggers: every statement locks its session's version
/// shard first, so writers in one shard are ordered there and cannot deadlock on the counters.
const TABLE: &str =
    "CREATE TABLE list_changes (shard SMALLINT NOT NULL PRIMARY KEY, n BIGINT NOT NULL)";

const POSTGRES_SHARDS: u32 = 16;

fn postgres_trigger() -> String {
    format!(
        "CREATE FUNCTION roster_note_list_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE list_changes SET n = n + 1 WHERE shard = pg_backend_pid() % {POSTGRES_SHARDS};
        RETURN NULL;
    END $$;
    CREATE TRIGGER list_changes_note AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON lists
        FOR EACH STATEMENT EXECUTE FUNCTION roster_note_list_change();"
    )
}

/// SQLite has one writer at a time and one shard; it has no TRUNCATE.
const SQLITE_TRIGGERS: [&str; 3] = [
    "CREATE TRIGGER list_changes_insert AFTER INSERT ON lists BEGIN
        UPDATE list_changes SET n = n + 1 WHERE shard = 0;
    END",
    "CREATE TRIGGER list_changes_update AFTER UPDATE ON lists BEGIN
        UPDATE list_changes SET n = n + 1 WHERE shard = 0;
    END",
    "CREATE TRIGGER list_changes_delete AFTER DELETE ON lists BEGIN
        UPDATE list_changes SET n = n + 1 WHERE shard = 0;
    END",
];

fn seed(shards: u32) -> String {
    let rows = (0..shards)
        .map(|s| format!("({s}, 0)"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO list_changes (shard, n) VALUES {rows}")
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(TABLE).await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(&seed(POSTGRES_SHARDS)).await?;
            db.execute_unprepared(&postgres_trigger()).await?;
        } else {
            db.execute_unprepared(&seed(1)).await?;
            for trigger in SQLITE_TRIGGERS {
                db.execute_unprepared(trigger).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(
                "DROP TRIGGER IF EXISTS list_changes_note ON lists; \
                 DROP FUNCTION IF EXISTS roster_note_list_change()",
            )
            .await?;
        } else {
            for op in ["insert", "update", "delete"] {
                db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS list_changes_{op}"))
                    .await?;
            }
        }
        db.execute_unprepared("DROP TABLE list_changes").await?;
        Ok(())
    }
}
