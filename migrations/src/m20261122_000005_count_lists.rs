use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Exact list counts per (status, type, optin), kept by triggers in the same transaction as every change to
/// `lists`. They make `total` cheap for listings filtered on nothing else (the default listing, and filters on
/// status, type and opt-in): a sum over at most eight rows instead of counting every list.
const TABLE: &str = "CREATE TABLE list_counts (
    status VARCHAR(16) NOT NULL,
    type VARCHAR(16) NOT NULL,
    optin VARCHAR(16) NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (status, type, optin)
)";

/// Every combination exists from the start, so triggers only ever update.
const SEED: &str = "INSERT INTO list_counts (status, type, optin, n)
    SELECT s.v, t.v, o.v, (SELECT COUNT(*) FROM lists l WHERE l.status = s.v AND l.type = t.v AND l.optin = o.v)
    FROM (SELECT 'active' AS v UNION ALL SELECT 'archived') s,
         (SELECT 'public' AS v UNION ALL SELECT 'private') t,
         (SELECT 'single' AS v UNION ALL SELECT 'double') o";

/// SQLite runs one writer at a time, so plain row triggers are enough.
const SQLITE_TRIGGERS: [&str; 3] = [
    "CREATE TRIGGER list_counts_insert AFTER INSERT ON lists BEGIN
        UPDATE list_counts SET n = n + 1 WHERE status = NEW.status AND type = NEW.type AND optin = NEW.optin;
    END",
    "CREATE TRIGGER list_counts_delete AFTER DELETE ON lists BEGIN
        UPDATE list_counts SET n = n - 1 WHERE status = OLD.status AND type = OLD.type AND optin = OLD.optin;
    END",
    "CREATE TRIGGER list_counts_update AFTER UPDATE OF status, type, optin ON lists
    WHEN OLD.status IS NOT NEW.status OR OLD.type IS NOT NEW.type OR OLD.optin IS NOT NEW.optin BEGIN
        UPDATE list_counts SET n = n - 1 WHERE status = OLD.status AND type = OLD.type AND optin = OLD.optin;
        UPDATE list_counts SET n = n + 1 WHERE status = NEW.status AND type = NEW.type AND optin = NEW.optin;
    END",
];

/// On Postgres, a statement trigger applies each statement's net change once, locking the counters it changes in
/// key order, so that concurrent statements (bulk deletes, updates moving lists both ways) cannot deadlock on them.
/// An update that changes no status, type or opt-in touches no counter.
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
                ORDER BY c.status, c.type, c.optin
                FOR UPDATE OF c
            )
            UPDATE list_counts c SET n = c.n + d.delta
            FROM delta d, locked l
            WHERE c.status = d.status AND c.type = d.type AND c.optin = d.optin
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
        db.execute_unprepared(SEED).await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
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
