//! Connecting to the database.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::config::DatabaseSettings;

pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(settings.url.expose());
    options
        .acquire_timeout(settings.acquire_timeout)
        .connect_timeout(settings.acquire_timeout)
        .sqlx_logging(false);
    if settings.url.is_sqlite() {
        // One connection: SQLite has a single writer, and a lone connection never meets "database is locked".
        options
            .max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|opts| {
                opts.foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            });
    } else {
        let statement_timeout = settings.statement_timeout.as_millis().to_string();
        options
            .max_connections(settings.max_connections)
            .min_connections(settings.min_connections.clamp(1, settings.max_connections))
            .test_before_acquire(false)
            .map_sqlx_postgres_opts(move |opts| {
                opts.options([("statement_timeout", statement_timeout.as_str())])
            });
    }
    Database::connect(options).await
}
