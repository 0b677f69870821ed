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
    /// Manage API users (they authenticate as `api_user:token`).
    Users(UsersArgs),
    /// Manage roles and what they grant.
    Roles(RolesArgs),
    /// Print the OpenAPI spec Roster serves (`openapi.yaml`) and exit.
    Openapi {
        /// Print instead the spec poem-openapi derives from the code, as JSON (for comparing with openapi.yaml).
        #[arg(long)]
        generated: bool,
    },
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: UserAction,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an enabled API user and print its token. The token is shown only this once.
    Create {
        /// The user's name, as used in `api_user:token`.
        name: String,
        /// Its user role (required; grants `lists:*` and `subscribers:*` permissions).
        #[arg(long)]
        role: String,
        /// Its list role (optional; grants `list:get` / `list:manage` on individual lists).
        #[arg(long)]
        list_role: Option<String>,
        #[command(flatten)]
        admin: AdminName,
    },
    /// List API users (never their tokens).
    List,
    /// Refuse the user's requests from now on.
    Disable { name: String },
    /// Accept the user's requests again.
    Enable { name: String },
    /// Delete the user.
    Delete { name: String },
    /// Issue a new token and print it; the old one stops working at once.
    RotateToken { name: String },
}

#[derive(Debug, Args)]
pub struct RolesArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: RoleAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleKindArg {
    /// Grants `lists:get_all`, `lists:manage_all`, `subscribers:get_all`, `subscribers:get`, `subscribers:manage`,
    /// `subscribers:import`.
    User,
    /// Grants `list:get` and/or `list:manage` on individual lists.
    List,
}

#[derive(Debug, Subcommand)]
pub enum RoleAction {
    /// Create a role.
    Create {
        name: String,
        #[arg(long, value_enum)]
        kind: RoleKindArg,
    },
    /// List roles and what they grant.
    List,
    /// Delete a role that no user holds.
    Delete { name: String },
    /// Grant a permission: `lists:get_all`, `lists:manage_all`, `subscribers:get_all`, `subscribers:get`,
    /// `subscribers:manage` or `subscribers:import` to a user role, or `list:get` or `list:manage` on the lists given with `--list` to a
    /// list role.
    Grant(GrantArgs),
    /// Revoke a permission (same arguments as `grant`).
    Revoke(GrantArgs),
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The role.
    pub role: String,
    /// `lists:get_all`, `lists:manage_all`, `subscribers:get_all`, `subscribers:get`, `subscribers:manage`,
    /// `subscribers:import`, `list:get` or `list:manage`.
    pub permission: String,
    /// A list id, for `list:*` permissions; repeat for several lists.
    #[arg(long = "list")]
    pub lists: Vec<i64>,
}

/// The admin's username: the name BasicAuth accepts for the admin, and which no API user may take.
#[derive(Debug, Clone, Args)]
pub struct AdminName {
    /// Admin username for BasicAuth (no API user may take it).
    #[arg(long, env = "ROSTER_ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,
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

    /// Connections opened at start-up and kept open (Postgres; at most the maximum), so that a new instance takes
    /// full load at once.
    #[arg(long, env = "ROSTER_DB_MIN_CONNECTIONS", default_value_t = 4)]
    pub db_min_connections: u32,

    /// Seconds a request waits for a database connection before it is answered 503.
    #[arg(long, env = "ROSTER_DB_ACQUIRE_TIMEOUT", default_value_t = 0.5)]
    pub db_acquire_timeout: f64,

    /// Seconds a single SQL statement may run before it is cancelled (answered 503): PostgreSQL's
    /// `statement_timeout`; on SQLite, work that keeps the connection busy without a pause is interrupted.
    #[arg(long, env = "ROSTER_DB_STATEMENT_TIMEOUT", default_value_t = 10.0)]
    pub db_statement_timeout: f64,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (`host:port`; port 0 picks a free port).
    #[arg(long, env = "ROSTER_ADDRESS", default_value = "127.0.0.1:9000")]
    pub address: String,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub admin: AdminName,

    /// Admin password. When unset on the very first start, a strong password is generated, printed once and
    /// stored only as a hash; later starts keep using it. When set, it wins.
    #[arg(long, env = "ROSTER_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,

    /// Largest accepted request body, in bytes (larger bodies get 413).
    #[arg(long, env = "ROSTER_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// Largest subscriber import accepted, in bytes: the uploaded file, and the CSV in a ZIP once decompressed
    /// (larger ones get 413, or 422 for a ZIP). Separate from the body limit: the upload is written to a
    /// temporary file as it arrives, never held in memory.
    #[arg(long, env = "ROSTER_IMPORT_LIMIT", default_value_t = crate::domain::IMPORT_LIMIT_DEFAULT)]
    pub import_limit: u64,

    /// Seconds an import upload may take to arrive (it replaces the request timeout for that one operation).
    #[arg(long, env = "ROSTER_IMPORT_UPLOAD_TIMEOUT", default_value_t = 600.0)]
    pub import_upload_timeout: f64,

    /// Seconds in-flight requests may take to finish after SIGINT/SIGTERM.
    #[arg(long, env = "ROSTER_SHUTDOWN_GRACE", default_value_t = 10.0)]
    pub shutdown_grace: f64,

    /// Seconds a request may run before it is answered 503.
    #[arg(long, env = "ROSTER_REQUEST_TIMEOUT", default_value_t = 30.0)]
    pub request_timeout: f64,

    /// Sustained requests per second allowed per API user or admin, and per client address for requests without
    /// credentials (0 turns rate limiting off). Counted per instance.
    #[arg(long, env = "ROSTER_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,

    /// Requests allowed in a burst above the sustained rate.
    #[arg(long, env = "ROSTER_RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,

    /// Failed logins allowed per client address per minute once the burst is spent (0 turns the limiter off).
    /// Checked before the credentials, so a throttled address gets 429 even with the right password.
    #[arg(long, env = "ROSTER_LOGIN_FAILURES_PER_MINUTE", default_value_t = 5)]
    pub login_failures_per_minute: u32,

    /// Failed logins allowed at once per client address.
    #[arg(long, env = "ROSTER_LOGIN_FAILURE_BURST", default_value_t = 10)]
    pub login_failure_burst: u32,

    /// Seconds a request may wait for its caller's fair share of the database pool (the pool less 1 in 8
    /// connections for a caller alone; the pool divided among the callers in flight once it is full) before it is
    /// answered 429 with Retry-After. Counted per instance.
    #[arg(long, env = "ROSTER_FAIR_SHARE_WAIT", default_value_t = 1.0)]
    pub fair_share_wait: f64,

    /// Seconds an `Idempotency-Key` and the answer to its request are kept; longer than twice the request timeout.
    #[arg(long, env = "ROSTER_IDEMPOTENCY_TTL", default_value_t = 86_400.0)]
    pub idempotency_ttl: f64,

    /// Most `Idempotency-Key`s one caller (API user, admin, or client address on the public form) may have kept
    /// at once; a new key past it is answered 429.
    #[arg(
        long,
        env = "ROSTER_IDEMPOTENCY_KEYS_PER_CALLER",
        default_value_t = 100_000
    )]
    pub idempotency_keys_per_caller: u64,

    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    #[arg(long, env = "ROSTER_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// Most open client connections (further ones wait in the kernel's backlog). Lowered at start-up, with a
    /// warning, when the process's descriptor limit cannot hold them.
    #[arg(long, env = "ROSTER_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Seconds a client may take to send a request's line and headers (HTTP/1); slower ones are disconnected.
    #[arg(long, env = "ROSTER_HEADER_READ_TIMEOUT", default_value_t = 10.0)]
    pub header_read_timeout: f64,

    /// Seconds a connection may stay with nothing moving in either direction before it is closed.
    #[arg(long, env = "ROSTER_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub idle_timeout: f64,

    /// Most concurrent streams on one HTTP/2 connection.
    #[arg(long, env = "ROSTER_HTTP2_MAX_STREAMS", default_value_t = 64)]
    pub http2_max_streams: u32,
}

fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::MAX)
}

impl DatabaseArgs {
    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.database_url.clone(),
            max_connections: self.db_max_connections.max(1),
            min_connections: self.db_min_connections,
            acquire_timeout: seconds(self.db_acquire_timeout),
            statement_timeout: seconds(self.db_statement_timeout),
        }
    }
}

impl ServeArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            address: self.address.clone(),
            database: self.database.settings(),
            admin_username: self.admin.admin_username.clone(),
            admin_password: self.admin_password.clone(),
            shutdown_grace: seconds(self.shutdown_grace),
            http: crate::config::HttpSettings {
                body_limit: self.body_limit,
                request_timeout: seconds(self.request_timeout),
                rate_limit: self.rate_limit,
                rate_limit_burst: self.rate_limit_burst,
                login_failures_per_minute: self.login_failures_per_minute,
                login_failure_burst: self.login_failure_burst,
                metrics_token: self.metrics_token.clone(),
                fair_share_wait: seconds(self.fair_share_wait),
                import_limit: self.import_limit.max(1),
                import_upload_timeout: seconds(self.import_upload_timeout),
                idempotency: crate::config::IdempotencySettings {
                    ttl: seconds(self.idempotency_ttl),
                    keys_per_caller: self.idempotency_keys_per_caller.max(1),
                    // A request cannot outlive its timeout by much: past twice that, an attempt that has not
                    // committed is taken to have died.
                    lease: seconds(self.request_timeout).saturating_mul(2),
                },
            },
            connections: crate::config::ConnectionSettings {
                max_connections: self.max_connections.max(1),
                header_read_timeout: seconds(self.header_read_timeout),
                idle_timeout: seconds(self.idle_timeout),
                http2_max_streams: self.http2_max_streams.max(1),
            },
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
