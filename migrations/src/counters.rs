//! Exact counts kept by triggers, in the same transaction as every change to the rows they count: the pattern
//! behind `list_counts` (migrations 5 and 6, frozen as released), written once for every later counter.
//!
//! A counter table has the counted table's key columns, a `shard` and `n`. On PostgreSQL a statement trigger
//! applies each statement's net change per key once, upserting into the session's shard (its backend pid modulo
//! [`POSTGRES_SHARDS`]) in key order: concurrent writers on the same key do not queue on one row, and two
//! statements that share a shard lock its rows in the same order, so they cannot deadlock. A shard may go
//! negative; the sum over the shards is exact. SQLite has one writer at a time: row triggers, one shard.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// Shards per key on PostgreSQL.
pub const POSTGRES_SHARDS: u32 = 16;

/// One counter: `table (keys…, shard, n)` counting the rows of `source` per value of `keys`.
pub struct Counter {
    /// The counter table; it also names the triggers and their functions.
    pub table: &'static str,
    /// The table whose rows are counted.
    pub source: &'static str,
    /// The columns of `source` a count is kept for.
    pub keys: &'static [&'static str],
    /// A condition a changed key must meet to be counted, with `{row}` standing for the key's row (`NEW`, `OLD`
    /// or the statement's net change). Used to skip keys whose owner is being deleted by the same statement.
    pub guard: &'static str,
}

impl Counter {
    fn keys(&self, prefix: &str) -> String {
        self.keys
            .iter()
            .map(|k| format!("{prefix}{k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn guard(&self, row: &str) -> String {
        self.guard.replace("{row}", row)
    }

    /// Creates the counter table (and, for `counted`, counts the rows already in `source`) and its triggers.
    pub async fn create(
        &self,
        manager: &SchemaManager<'_>,
        key_types: &[&str],
    ) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let columns: String = self
            .keys
            .iter()
            .zip(key_types)
            .map(|(k, ty)| format!("{k} {ty} NOT NULL, "))
            .collect();
        let keys = self.keys("");
        db.execute_unprepared(&format!(
            "CREATE TABLE {table} ({columns}shard SMALLINT NOT NULL, n BIGINT NOT NULL, \
             PRIMARY KEY ({keys}, shard))",
            table = self.table
        ))
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO {table} ({keys}, shard, n) SELECT {keys}, 0, COUNT(*) FROM {source} GROUP BY {keys}",
            table = self.table,
            source = self.source
        ))
        .await?;
        let statements = if manager.get_database_backend() == DatabaseBackend::Postgres {
            self.postgres_triggers()
        } else {
            self.sqlite_triggers()
        };
        for statement in statements {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    pub async fn drop(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let (table, source) = (self.table, self.source);
        for op in ["insert", "delete", "update", "truncate"] {
            if manager.get_database_backend() == DatabaseBackend::Postgres {
                db.execute_unprepared(&format!(
                    "DROP TRIGGER IF EXISTS {table}_{op} ON {source}; DROP FUNCTION IF EXISTS {table}_{op}()"
                ))
                .await?;
            } else {
                db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {table}_{op}"))
                    .await?;
            }
        }
        db.execute_unprepared(&format!("DROP TABLE {table}"))
            .await?;
        Ok(())
    }

    fn postgres_triggers(&self) -> Vec<String> {
        let (table, source) = (self.table, self.source);
        let keys = self.keys("");
        let mut statements = Vec::new();
        for op in ["insert", "delete", "update"] {
            let (referencing, rows) = match op {
                "insert" => (
                    "NEW TABLE AS new_rows".to_owned(),
                    format!("SELECT {keys}, 1 AS delta FROM new_rows"),
                ),
                "delete" => (
                    "OLD TABLE AS old_rows".to_owned(),
                    format!("SELECT {keys}, -1 AS delta FROM old_rows"),
                ),
                _ => (
                    "OLD TABLE AS old_rows NEW TABLE AS new_rows".to_owned(),
                    format!(
                        "SELECT {keys}, 1 AS delta FROM new_rows \
                         UNION ALL SELECT {keys}, -1 AS delta FROM old_rows"
                    ),
                ),
            };
            let guard = self.guard("d");
            statements.push(format!(
                "CREATE FUNCTION {table}_{op}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    INSERT INTO {table} ({keys}, shard, n)
                    SELECT {keys}, pg_backend_pid() % {POSTGRES_SHARDS}, SUM(delta) FROM ({rows}) d
                    WHERE {guard}
                    GROUP BY {keys} HAVING SUM(delta) <> 0
                    ORDER BY {keys}
                    ON CONFLICT ({keys}, shard) DO UPDATE SET n = {table}.n + EXCLUDED.n;
                    RETURN NULL;
                END $$"
            ));
            statements.push(format!(
                "CREATE TRIGGER {table}_{op} AFTER {OP} ON {source} REFERENCING {referencing}
                    FOR EACH STATEMENT EXECUTE FUNCTION {table}_{op}()",
                OP = op.to_uppercase()
            ));
        }
        // TRUNCATE fires no delete trigger of its own.
        statements.push(format!(
            "CREATE FUNCTION {table}_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN DELETE FROM {table}; RETURN NULL; END $$"
        ));
        statements.push(format!(
            "CREATE TRIGGER {table}_truncate AFTER TRUNCATE ON {source}
                FOR EACH STATEMENT EXECUTE FUNCTION {table}_truncate()"
        ));
        statements
    }

    fn sqlite_triggers(&self) -> Vec<String> {
        let (table, source) = (self.table, self.source);
        let keys = self.keys("");
        let change = |row: &str, delta: i32| {
            format!(
                "INSERT INTO {table} ({keys}, shard, n) SELECT {values}, 0, {delta} WHERE {guard}
                 ON CONFLICT ({keys}, shard) DO UPDATE SET n = n + excluded.n;",
                values = self.keys(&format!("{row}.")),
                guard = self.guard(row),
            )
        };
        let moved = self
            .keys
            .iter()
            .map(|k| format!("OLD.{k} IS NOT NEW.{k}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        vec![
            format!(
                "CREATE TRIGGER {table}_insert AFTER INSERT ON {source} BEGIN {} END",
                change("NEW", 1)
            ),
            format!(
                "CREATE TRIGGER {table}_delete AFTER DELETE ON {source} BEGIN {} END",
                change("OLD", -1)
            ),
            format!(
                "CREATE TRIGGER {table}_update AFTER UPDATE OF {keys} ON {source} WHEN {moved} BEGIN {} {} END",
                change("OLD", -1),
                change("NEW", 1)
            ),
        ]
    }
}
