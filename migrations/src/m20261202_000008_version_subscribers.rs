use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Shards of the version on PostgreSQL: those of the counters, so that a session's version row and its counter
/// rows belong to the same shard.
const POSTGRES_SHARDS: u32 = 16;

/// The tables whose changes move the subscribers' version: what any subscriber listing can depend on.
const VERSIONED: [&str; 2] = ["subscribers", "subscriber_lists"];

/// A version of the subscribers and their subscriptions: the sum of `subscriber_changes.n`, which grows with every
/// statement that inserts, updates, deletes or truncates either table, in the same transaction. Roster reads it in
/// the same snapshot as a page, so an expensive total (a search, a `query`) and the positions of deep pages can
/// be reused while it stays the same, exactly as the lists' version (migration 6) serves lists.
///
/// On PostgreSQL statement triggers bump the session's shard (backend pid modulo 16, as the counters). Their names
/// sort before the counters' triggers (`changes_*` < `list_subscriber_counts_*`, `subscriber_counts_*`), which
/// PostgreSQL fires in name order: every writing statement locks its shard's version row first, so two sessions
/// of one shard queue there instead of deadlocking on counter rows taken in different orders. SQLite (one writer
/// at a time) bumps one row from row triggers.
///
/// Substring search over e-mails and names (`LIKE '%word%'`) gets trigram indexes on PostgreSQL, as list names
/// did in migration 3.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE subscriber_changes (shard SMALLINT NOT NULL PRIMARY KEY, n BIGINT NOT NULL)",
        )
        .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(&format!(
                "INSERT INTO subscriber_changes (shard, n) \
                 SELECT shard, 0 FROM generate_series(0, {}) AS shard",
                POSTGRES_SHARDS - 1
            ))
            .await?;
            db.execute_unprepared(&format!(
                "CREATE FUNCTION roster_subscriber_changes() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    UPDATE subscriber_changes SET n = n + 1 WHERE shard = pg_backend_pid() % {POSTGRES_SHARDS};
                    RETURN NULL;
                END $$"
            ))
            .await?;
            for table in VERSIONED {
                for op in ["insert", "update", "delete", "truncate"] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER changes_{op} AFTER {OP} ON {table} \
                         FOR EACH STATEMENT EXECUTE FUNCTION roster_subscriber_changes()",
                        OP = op.to_uppercase()
                    ))
                    .await?;
                }
            }
            for (index, column) in [
                ("idx_subscribers_email_trgm", "email"),
                ("idx_subscribers_name_folded_trgm", "name_folded"),
            ] {
                db.execute_unprepared(&format!(
                    "CREATE INDEX {index} ON subscribers USING gin ({column} gin_trgm_ops)"
                ))
                .await?;
            }
        } else {
            db.execute_unprepared("INSERT INTO subscriber_changes (shard, n) VALUES (0, 0)")
                .await?;
            for table in VERSIONED {
                for op in ["insert", "update", "delete"] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {table}_changes_{op} AFTER {OP} ON {table} BEGIN
                            UPDATE subscriber_changes SET n = n + 1;
                        END",
                        OP = op.to_uppercase()
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(
                "DROP INDEX IF EXISTS idx_subscribers_email_trgm; \
                 DROP INDEX IF EXISTS idx_subscribers_name_folded_trgm",
            )
            .await?;
            for table in VERSIONED {
                for op in ["insert", "update", "delete", "truncate"] {
                    db.execute_unprepared(&format!(
                        "DROP TRIGGER IF EXISTS changes_{op} ON {table}"
                    ))
                    .await?;
                }
            }
            db.execute_unprepared("DROP FUNCTION IF EXISTS roster_subscriber_changes()")
                .await?;
        } else {
            for table in VERSIONED {
                for op in ["insert", "update", "delete"] {
                    db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {table}_changes_{op}"))
                        .await?;
                }
            }
        }
        db.execute_unprepared("DROP TABLE subscriber_changes")
            .await?;
        Ok(())
    }
}
