//! The `roster` command line. Every flag has a `ROSTER_*` environment variable fallback.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{DatabaseSettings, DatabaseUrl, Secret, Settings};

/// Roster: a listmonk-compatible Lists API server.
///
/// With no subcommand, `roster` serves the API (same as `roster serve`). The API is at /api/..., Swagger UI at
/// /docs, the OpenAPI spec at /openapi.yaml and /openapi.json.
#[derive(Debug, Parser)]
#[command(name = "roster", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,

    /// Log output format.
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit (serving also applies them at start-up).
    Migrate(DatabaseArgs),
    /// Print the OpenAPI spec Roster serves (`openapi.yaml`) and exit.
    Openapi {
        /// Print instead the spec poem-openapi derives from the code, as JSON (for comparing with openapi.yaml).
        #[arg(long)]
        generated: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://FILE?mode=rwc` (embedded, the default) or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(
        long,
        env = "ROSTER_DATABASE_URL",
        default_value = "sqlite://roster.db?mode=rwc"
    )]
    pub database_url: DatabaseUrl,

    /// Most pooled database connections (Postgres).
    #[arg(long, env = "ROSTER_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Seconds a request waits for a database connection before it is answered 503.
    #[arg(long, env = "ROSTER_DB_ACQUIRE_TIMEOUT", default_value_t = 3.0)]
    pub db_acquire_timeout: f64,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (`host:port`; port 0 picks a free port).
    #[arg(long, env = "ROSTER_ADDRESS", default_value = "127.0.0.1:9000")]
    pub address: String,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Admin username for BasicAuth.
    #[arg(long, env = "ROSTER_ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,

    /// Admin password. When unset on the very first start, a strong password is generated, printed once and
    /// stored only as a hash; later starts keep using it. When set, it wins.
    #[arg(long, env = "ROSTER_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,

    /// Largest accepted request body, in bytes (larger bodies get 413).
    #[arg(long, env = "ROSTER_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// Seconds in-flight requests may take to finish after SIGINT/SIGTERM.
    #[arg(long, env = "ROSTER_SHUTDOWN_GRACE", default_value_t = 10.0)]
    pub shutdown_grace: f64,
}

fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::MAX)
}

impl DatabaseArgs {
    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.database_url.clone(),
            max_connections: self.db_max_connections.max(1),
            acquire_timeout: seconds(self.db_acquire_timeout),
        }
    }
}

impl ServeArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            address: self.address.clone(),
            database: self.database.settings(),
            admin_username: self.admin_username.clone(),
            admin_password: self.admin_password.clone(),
            body_limit: self.body_limit,
            shutdown_grace: seconds(self.shutdown_grace),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_means_serve_with_defaults() {
        let cli = Cli::try_parse_from(["roster"]).unwrap();
        assert!(cli.command.is_none());
        let settings = cli.serve.settings();
        assert_eq!(settings.admin_username, "admin");
        assert!(settings.database.url.is_sqlite());
    }

    #[test]
    fn the_command_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
