use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A version of the lists' contents: `list_counts.changes`, whose sum over all rows grows with every statement
/// that inserts, updates, deletes or truncates lists, in the same transaction. Roster reads it in the same
/// snapshot as an expensive count (a search or a tag filter) and keeps the count while the version stays the same,
/// so repeated listings with the same filter (paging through a search) stop recounting. Tags are only ever written
/// together with their list's row, so a change of tags changes the version too.
///
/// The version rides on the counter rows the triggers of `m20261122_000005_count_lists` already update (sharded,
/// locked in key order), so it costs writers no extra row: those triggers are replaced by ones that also bump
/// `changes`, and updates that change no counted field now bump it too.
const ADD_COLUMN: &str = "ALTER TABLE list_counts ADD COLUMN changes BIGINT NOT NULL DEFAULT 0";

const POSTGRES_SHARDS: u32 = 16;

/// The statement triggers' functions: with `versioned`, as this migration makes them (no `HAVING SUM(delta) <> 0`,
/// so a statement that changed lists without moving any between counters, a rename, still updates its
/// combination's row with a delta of 0, and bumps `changes`); without, as migration 5 made them.
fn postgres_function(op: &str, versioned: bool) -> String {
    let rows = match op {
        "insert" => "SELECT status, type, optin, 1 AS delta FROM new_rows",
        "delete" => "SELECT status, type, optin, -1 AS delta FROM old_rows",
        _ => {
            "SELECT status, type, optin, 1 AS delta FROM new_rows \
             UNION ALL SELECT status, type, optin, -1 AS delta FROM old_rows"
        }
    };
    let (having, bump) = if versioned {
        ("", ", changes = c.changes + 1")
    } else {
        ("HAVING SUM(delta) <> 0", "")
    };
    format!(
        "CREATE OR REPLACE FUNCTION roster_count_lists_{op}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            WITH delta AS (
                SELECT status, type, optin, SUM(delta) AS delta FROM ({rows}) r
                GROUP BY status, type, optin {having}
            ), locked AS (
                SELECT c.status, c.type, c.optin FROM list_counts c
                JOIN delta d USING (status, type, optin)
                WHERE c.shard = pg_backend_pid() % {POSTGRES_SHARDS}
                ORDER BY c.status, c.type, c.optin
                FOR UPDATE OF c
            )
            UPDATE list_counts c SET n = c.n + d.delta{bump}
            FROM delta d, locked l
            WHERE c.status = d.status AND c.type = d.type AND c.optin = d.optin
              AND c.shard = pg_backend_pid() % {POSTGRES_SHARDS}
              AND l.status = d.status AND l.type = d.type AND l.optin = d.optin;
            RETURN NULL;
        END $$"
    )
}

fn postgres_truncate(versioned: bool) -> String {
    let bump = if versioned {
        ", changes = changes + 1"
    } else {
        ""
    };
    format!(
        "CREATE OR REPLACE FUNCTION roster_count_lists_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE list_counts SET n = 0{bump}; RETURN NULL; END $$"
    )
}

/// SQLite's row triggers: with `versioned`, bumping `changes` too, the update trigger firing on every update
/// (moving a list to the combination it already has is a net change of 0); without, as migration 5 made them.
fn sqlite_triggers(versioned: bool) -> Vec<String> {
    let (bump, update_when) = if versioned {
        (", changes = changes + 1", "")
    } else {
        (
            "",
            " OF status, type, optin ON lists WHEN OLD.status IS NOT NEW.status OR OLD.type IS NOT NEW.type \
             OR OLD.optin IS NOT NEW.optin",
        )
    };
    let update_on = if versioned { " ON lists" } else { "" };
    vec![
        "DROP TRIGGER list_counts_insert".into(),
        "DROP TRIGGER list_counts_delete".into(),
        "DROP TRIGGER list_counts_update".into(),
        format!(
            "CREATE TRIGGER list_counts_insert AFTER INSERT ON lists BEGIN
            UPDATE list_counts SET n = n + 1{bump}
            WHERE status = NEW.status AND type = NEW.type AND optin = NEW.optin AND shard = 0;
        END"
        ),
        format!(
            "CREATE TRIGGER list_counts_delete AFTER DELETE ON lists BEGIN
            UPDATE list_counts SET n = n - 1{bump}
            WHERE status = OLD.status AND type = OLD.type AND optin = OLD.optin AND shard = 0;
        END"
        ),
        format!(
            "CREATE TRIGGER list_counts_update AFTER UPDATE{update_on}{update_when} BEGIN
            UPDATE list_counts SET n = n - 1{bump}
            WHERE status = OLD.status AND type = OLD.type AND optin = OLD.optin AND shard = 0;
            UPDATE list_counts SET n = n + 1
            WHERE status = NEW.status AND type = NEW.type AND optin = NEW.optin AND shard = 0;
        END"
        ),
    ]
}

async fn set_triggers(manager: &SchemaManager<'_>, versioned: bool) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if manager.get_database_backend() == DatabaseBackend::Postgres {
        for op in ["insert", "delete", "update"] {
            db.execute_unprepared(&postgres_function(op, versioned))
                .await?;
        }
        db.execute_unprepared(&postgres_truncate(versioned)).await?;
    } else {
        for statement in sqlite_triggers(versioned) {
            db.execute_unprepared(&statement).await?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(ADD_COLUMN)
            .await?;
        set_triggers(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_triggers(manager, false).await?;
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE list_counts DROP COLUMN changes")
            .await?;
        Ok(())
    }
}
