//! Building and running the application; shared by `main` and the integration tests.

use std::future::Future;

use migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::api::app;
use crate::config::{DatabaseSettings, Settings};
use crate::service::{AdminCredentials, Authenticator, Services};

/// A bound, migrated, ready-to-run Roster.
pub struct Application {
    listener: TcpListener,
    port: u16,
    db: DatabaseConnection,
    /// Reads on their own: the same pool on PostgreSQL, read-only connections on SQLite.
    reads: DatabaseConnection,
    settings: Settings,
    authenticator: Authenticator,
    generated_password: Option<String>,
}

/// Connects and applies pending migrations.
pub async fn migrate(database: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    let db = crate::db::connect(database).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

/// Connects to a database that must already be migrated (administrative commands change no schema as a side
/// effect).
pub async fn connect_migrated(database: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    let db = crate::db::connect(database).await?;
    let pending = Migrator::get_pending_migrations(&db).await?;
    if !pending.is_empty() {
        anyhow::bail!(
            "the database at {} lacks {} migration(s); run `roster migrate` (or start the server) first",
            database.url,
            pending.len()
        );
    }
    Ok(db)
}

impl Application {
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        check_admin_password(&settings)?;
        check_timeouts(&settings)?;
        settings.connections.max_connections = crate::server::connection_cap(
            settings.connections.max_connections,
            settings.database.max_connections,
        );
        let db = migrate(&settings.database).await?;
        crate::db::warm(&db, &settings.database);
        let reads = crate::db::connect_readers(&settings.database, &db).await?;
        let bootstrap = AdminCredentials::load(
            &db,
            &settings.admin_username,
            settings.admin_password.as_ref().map(|p| p.expose()),
        )
        .await?;
        let listener = TcpListener::bind(settings.address.as_str()).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            port,
            settings,
            authenticator: Authenticator::new(bootstrap.credentials, reads.clone()),
            db,
            reads,
            generated_password: bootstrap.generated_password,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle on the application's connection pool (shared, not a new pool).
    pub fn db(&self) -> DatabaseConnection {
        self.db.clone()
    }

    /// The pool reads use (the same as `db` on PostgreSQL).
    pub fn reads(&self) -> DatabaseConnection {
        self.reads.clone()
    }

    /// The admin password generated on this start, if this start generated one.
    pub fn generated_admin_password(&self) -> Option<&str> {
        self.generated_password.as_deref()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish within the grace period.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // What callers share (`fairness`): the pool on PostgreSQL, the read-only connections on SQLite.
        let pool_size = if self.settings.database.url.is_sqlite() {
            crate::db::SQLITE_READERS as usize
        } else {
            self.settings.database.max_connections as usize
        };
        let endpoint = app(
            Services::new(
                self.db.clone(),
                self.reads.clone(),
                self.settings.http.idempotency,
                self.settings.http.import_limit,
            ),
            self.authenticator,
            self.settings.http.clone(),
            pool_size,
        );
        let result = crate::server::serve(
            self.listener,
            endpoint,
            &self.settings.connections,
            shutdown,
            self.settings.shutdown_grace,
        )
        .await;
        for pool in [self.db, self.reads] {
            if let Err(err) = pool.close().await {
                tracing::warn!(error = %err, "closing the database pool failed");
            }
        }
        result
    }
}

/// Shortest admin password accepted without a warning.
const ADMIN_PASSWORD_ADVISED_CHARS: usize = 16;

/// An empty admin password would start a server nobody can log in to; a short one is easy to guess.
fn check_admin_password(settings: &Settings) -> anyhow::Result<()> {
    let Some(password) = &settings.admin_password else {
        return Ok(());
    };
    let length = password.expose().chars().count();
    if length == 0 {
        anyhow::bail!(
            "ROSTER_ADMIN_PASSWORD is set but empty; set a password, or unset it to have one generated"
        );
    }
    if length < ADMIN_PASSWORD_ADVISED_CHARS {
        tracing::warn!(
            "ROSTER_ADMIN_PASSWORD is only {length} characters long; use at least {ADMIN_PASSWORD_ADVISED_CHARS} \
             random characters (or unset it to have a strong one generated): failed logins are throttled per \
             address, but many addresses can guess in parallel"
        );
    }
    Ok(())
}

/// A statement that may outlive its request could commit after the client was answered 503, and a retry would
/// then do the work twice: every statement must end before its request does.
fn check_timeouts(settings: &Settings) -> anyhow::Result<()> {
    let statement = settings.database.statement_timeout;
    if statement >= settings.http.request_timeout {
        anyhow::bail!(
            "ROSTER_DB_STATEMENT_TIMEOUT ({statement:?}) must be shorter than ROSTER_REQUEST_TIMEOUT ({:?}): a \
             statement still running when its request is answered 503 could commit, and a retry would repeat it",
            settings.http.request_timeout
        );
    }
    // A key that expired while its request could still be running would let a retry carry the request out again.
    let idempotency = settings.http.idempotency;
    if idempotency.ttl <= idempotency.lease {
        anyhow::bail!(
            "ROSTER_IDEMPOTENCY_TTL ({:?}) must be longer than twice ROSTER_REQUEST_TIMEOUT ({:?}): a key must not \
             expire while its request may still be running",
            idempotency.ttl,
            idempotency.lease
        );
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
