//! Run-time settings, filled from command-line flags and `ROSTER_*` environment variables (see `cli`).

use std::fmt;
use std::time::Duration;

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

/// A database URL whose password is masked when printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }

    /// The URL with any password replaced by `********`.
    pub fn masked(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("********"));
                url.to_string()
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.masked())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("sqlite:")
            || s.starts_with("postgres://")
            || s.starts_with("postgresql://")
        {
            Ok(Self::new(s))
        } else {
            Err("expected a sqlite:// or postgres:// URL".into())
        }
    }
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    /// Most pooled connections (Postgres; SQLite always uses one writer connection).
    pub max_connections: u32,
    /// Connections the pool opens at start-up and keeps open (Postgres), so that a new instance takes full load
    /// at once instead of connecting during its first requests.
    pub min_connections: u32,
    /// How long a request waits for a pooled connection before it is answered 503.
    pub acquire_timeout: Duration,
    /// Longest a single SQL statement may run (Postgres `statement_timeout`).
    pub statement_timeout: Duration,
}

/// Everything `roster serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `host:port` to listen on; port 0 picks a free port.
    pub address: String,
    pub database: DatabaseSettings,
    pub admin_username: String,
    /// When `None`, a generated password (stored hashed in the database) is used.
    pub admin_password: Option<Secret>,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// What the HTTP layer enforces on each request.
    pub http: HttpSettings,
    /// How connections are accepted and kept.
    pub connections: ConnectionSettings,
}

/// What the HTTP layer enforces on each request: the one place these settings live between the command line and
/// the middleware (`api::app`).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Longest a request may run before it is answered 503.
    pub request_timeout: Duration,
    /// Sustained requests per second per identity (or client address); 0 turns rate limiting off.
    pub rate_limit: u32,
    /// Burst allowed above the sustained rate.
    pub rate_limit_burst: u32,
    /// Failed logins allowed per client address per minute, after the burst; 0 turns the limiter off.
    pub login_failures_per_minute: u32,
    /// Failed logins allowed at once per client address.
    pub login_failure_burst: u32,
    /// When set, `/metrics` needs this bearer token.
    pub metrics_token: Option<Secret>,
    /// Longest a request waits for its caller's fair share of the database pool before it is answered 429.
    pub fair_share_wait: Duration,
    /// Largest subscriber import (the upload, and a ZIP's CSV decompressed), in bytes.
    pub import_limit: u64,
    /// Longest an import upload may take to arrive.
    pub import_upload_timeout: Duration,
    /// What `Idempotency-Key` keeps and for how long.
    pub idempotency: IdempotencySettings,
}

/// How long an `Idempotency-Key` is kept, and how many one caller may have at once.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencySettings {
    /// How long a key and its answer are kept after the first request with it.
    pub ttl: Duration,
    /// Most keys one caller (an API user, the admin, or a client address on the public form) may have kept at once.
    pub keys_per_caller: u64,
    /// How long a request with a key may run before a retry may take it over (if it wrote nothing).
    pub lease: Duration,
}

/// Bounds on connections, so that no client can hold the server's descriptors, memory or attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Most open client connections; further ones wait in the kernel's backlog until one closes.
    pub max_connections: usize,
    /// Longest a client may take to send a request's line and headers (HTTP/1).
    pub header_read_timeout: Duration,
    /// A connection on which nothing moves, in either direction, for this long is closed.
    pub idle_timeout: Duration,
    /// Most concurrent streams on one HTTP/2 connection.
    pub http2_max_streams: u32,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            http2_max_streams: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_masked_when_printed() {
        let url = DatabaseUrl::new("postgres://roster:hunter2@db:5432/roster");
        assert!(!format!("{url:?} {url}").contains("hunter2"));
        assert_eq!(url.expose(), "postgres://roster:hunter2@db:5432/roster");
    }

    #[test]
    fn secrets_are_masked_when_printed() {
        assert!(!format!("{:?}", Secret::new("hunter2")).contains("hunter2"));
    }
}
