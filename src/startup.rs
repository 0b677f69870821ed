//! Building and running the application; shared by `main` and the integration tests.

use std::future::Future;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use sea_orm::DatabaseConnection;

use crate::api::{AppConfig, app};
use crate::config::{DatabaseSettings, Settings};
use crate::service::{AdminCredentials, Authenticator, ListService};

/// A bound, migrated, ready-to-run Roster.
pub struct Application {
    acceptor: TcpAcceptor,
    port: u16,
    db: DatabaseConnection,
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

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = migrate(&settings.database).await?;
        let bootstrap = AdminCredentials::load(
            &db,
            &settings.admin_username,
            settings.admin_password.as_ref().map(|p| p.expose()),
        )
        .await?;
        let acceptor = TcpListener::bind(settings.address.clone())
            .into_acceptor()
            .await?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().map(|a| a.port()))
            .unwrap_or_default();
        Ok(Self {
            acceptor,
            port,
            settings,
            authenticator: Authenticator::new(bootstrap.credentials, db.clone()),
            db,
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

    /// The admin password generated on this start, if this start generated one.
    pub fn generated_admin_password(&self) -> Option<&str> {
        self.generated_password.as_deref()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish within the grace period.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let config = AppConfig {
            body_limit: self.settings.body_limit,
            request_timeout: self.settings.request_timeout,
            rate_limit: self.settings.rate_limit,
            rate_limit_burst: self.settings.rate_limit_burst,
            metrics_token: self.settings.metrics_token.clone(),
        };
        let endpoint = app(
            ListService::new(self.db.clone()),
            self.authenticator,
            config,
        );
        let grace: Option<Duration> = Some(self.settings.shutdown_grace);
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(endpoint, shutdown, grace)
            .await;
        if let Err(err) = self.db.close().await {
            tracing::warn!(error = %err, "closing the database pool failed");
        }
        result
    }
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
