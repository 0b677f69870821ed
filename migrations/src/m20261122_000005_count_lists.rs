use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Exact list counts per (status, type, optin), kept by triggers in the same transaction as every change to
/// `lists`. They make `total` cheap for listings filtered on nothing else (the default listing, and filters on
/// status, type and opt-in): a sum over a few rows instead of counting every list.
///
/// Each count is split over shards, and a database session only changes its own shard (its backend pid modulo
/// the shard count), so concurrent writers do not queue on one counter row. A shard may go negative; the sum over
/// the shards is exact.
const TABLE: &str = "CREATE TABLE list_counts (
    status VARCHAR(16) NOT NULL,
    type VARCHAR(16) NOT NULL,
    optin VARCHAR(16) NOT NULL,
    shard SMALLINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (status, type, optin, shard)
)";

/// Shards on Postgres; SQLite has one writer at a time and one shard.
const POSTGRES_SHARDS: u32 = 16;

/// Every (combination, shard) row exists from the start, so triggers only ever update; existing lists are counted
/// into shard 0.
fn seed(shards: u32) -> String {
    let shard_values = (0..shards)
        .map(|s| format!("SELECT {s} AS v"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    format!(
        "INSERT INTO list_counts (status, type, optin, shard, n)
        SELECT s.v, t.v, o.v, h.v, CASE WHEN h.v = 0 THEN
            (SELECT COUNT(*) FROM lists l WHERE l.status = s.v AND l.type = t.v AND l.optin = o.v) ELSE 0 END
        FROM (SELECT 'active' AS v UNION ALL SELECT 'archived') s,
             (SELECT 'public' AS v UNION ALL SELECT 'private') t,
             (SELECT 'single' AS v UNION ALL SELECT 'double') o,
             ({shard_values}) h"
    )
}

/// SQLite runs one writer at a time, so plain row triggers are enough.
const SQLITE_TRIGGERS: [&str; 3] = [
    "CREATE TRIGGER list_counts_insert AFTER INSERT ON lists BEGIN
        UPDATE list_counts SET n = n + 1
        WHERE status = NEW.status AND type = NEW.type AND optin = NEW.optin AND shard = 0;
    END",
    "CREATE TRIGGER list_counts_delete AFTER DELETE ON lists BEGIN
        UPDATE list_counts SET n = n - 1
        WHERE status = OLD.status AND type = OLD.type AND optin = OLD.optin AND shard = 0;
    END",
    "CREATE TRIGGER list_counts_update AFTER UPDATE OF status, type, optin ON lists
    WHEN OLD.status IS NOT NEW.status OR OLD.type IS NOT NEW.type OR OLD.optin IS NOT NEW.optin BEGIN
        UPDATE list_counts SET n = n - 1
        WHERE status = OLD.status AND type = OLD.type AND optin = OLD.optin AND shard = 0;
        UPDATE list_counts SET n = n + 1
        WHERE status = NEW.status AND type = NEW.type AND optin = NEW.optin AND shard = 0;
    END",
];

/// On Postgres, a statement trigger applies each statement's net change once to the session's shard, locking the
/// counters it changes in key order, so that concurrent statements (bulk deletes, updates moving lists both ways)
/// cannot deadlock on them. An update that changes no status, type or opt-in touches no counter.
fn postgres_trigger(op: &str) -> String {
    let (referencing, rows) = match op {
        "INSERT" => (
            "NEW TABLE AS new_rows",
            "SELECT status, type, optin, 1 AS delta FROM new_rows",
        ),
        "DELETE" => (
            "OLD TABLE AS old_rows",
            "SELECT status, type, optin, -1 AS delta FROM old_rows",
        ),
        _ => (
            "OLD TABLE AS old_rows NEW TABLE AS new_rows",
            "SELECT status, type, optin, 1 AS delta FROM new_rows \
             UNION ALL SELECT status, type, optin, -1 AS delta FROM old_rows",
        ),
    };
    let name = op.to_lowercase();
    format!(
        "CREATE FUNCTION roster_count_lists_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            WITH delta AS (
                SELECT status, type, optin, SUM(delta) AS delta FROM ({rows}) r
                GROUP BY status, type, optin HAVING SUM(delta) <> 0
            ), locked AS (
                SELECT c.status, c.type, c.optin FROM list_counts c
                JOIN delta d USING (status, type, optin)
                WHERE c.shard = pg_backend_pid() % {POSTGRES_SHARDS}
                ORDER BY c.status, c.type, c.optin
                FOR UPDATE OF c
            )
            UPDATE list_counts c SET n = c.n + d.delta
            FROM delta d, locked l
            WHERE c.status = d.status AND c.type = d.type AND c.optin = d.optin
              AND c.shard = pg_backend_pid() % {POSTGRES_SHARDS}
              AND l.status = d.status AND l.type = d.type AND l.optin = d.optin;
            RETURN NULL;
        END $$;
        CREATE TRIGGER list_counts_{name} AFTER {op} ON lists REFERENCING {referencing}
            FOR EACH STATEMENT EXECUTE FUNCTION roster_count_lists_{name}();"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(TABLE).await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(&seed(POSTGRES_SHARDS)).await?;
            for op in ["INSERT", "DELETE", "UPDATE"] {
                db.execute_unprepared(&postgres_trigger(op)).await?;
            }
            // TRUNCATE fires no delete trigger of its own.
            db.execute_unprepared(
                "CREATE FUNCTION roster_count_lists_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN UPDATE list_counts SET n = 0; RETURN NULL; END $$;
                CREATE TRIGGER list_counts_truncate AFTER TRUNCATE ON lists
                    FOR EACH STATEMENT EXECUTE FUNCTION roster_count_lists_truncate();",
            )
            .await?;
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
            for op in ["insert", "delete", "update", "truncate"] {
                db.execute_unprepared(&format!(
                    "DROP TRIGGER IF EXISTS list_counts_{op} ON lists; \
                     DROP FUNCTION IF EXISTS roster_count_lists_{op}()"
                ))
                .await?;
            }
        } else {
            for op in ["insert", "delete", "update"] {
                db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS list_counts_{op}"))
                    .await?;
            }
        }
        db.execute_unprepared("DROP TABLE list_counts").await?;
        Ok(())
    }
}
