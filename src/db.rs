//! Connecting to the database.

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::config::DatabaseSettings;

/// What every pool shares: the URL, the acquire and connect timeouts, no statement logging; on SQLite, WAL (readers
/// beside the writer), a busy timeout and the statement budget (`limit_work`). `read_only` for SQLite's readers.
fn options(settings: &DatabaseSettings, read_only: bool) -> ConnectOptions {
    let mut options = ConnectOptions::new(settings.url.expose());
    options
        .acquire_timeout(settings.acquire_timeout)
        .connect_timeout(settings.acquire_timeout)
        .sqlx_logging(false);
    if settings.url.is_sqlite() {
        options.map_sqlx_sqlite_opts(move |opts| {
            opts.foreign_keys(true)
                .read_only(read_only)
                .busy_timeout(Duration::from_secs(5))
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
        });
        let budget = settings.statement_timeout;
        options.map_sqlx_sqlite_pool_opts(move |pool| {
            pool.after_connect(move |connection, _| Box::pin(limit_work(connection, budget)))
        });
    }
    options
}

pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = options(settings, false);
    if settings.url.is_sqlite() {
        // One connection: SQLite has a single writer, and a lone connection never meets "database is locked".
        options.max_connections(1).min_connections(1);
    } else {
        let statement_timeout = settings.statement_timeout.as_millis().to_string();
        options
            .max_connections(settings.max_connections)
            .min_connections(settings.min_connections.clamp(1, settings.max_connections))
            // The pool opens its minimum in the background rather than within the acquire timeout at start-up,
            // where a few slow handshakes would fail the start; the migrations' first query still fails fast when
            // the database cannot be reached.
            .connect_lazy(true)
            .test_before_acquire(false)
            .map_sqlx_postgres_opts(move |opts| {
                opts.options([("statement_timeout", statement_timeout.as_str())])
            });
    }
    Database::connect(options).await
}

/// Read-only connections beside SQLite's one writer: in WAL mode readers neither wait for the writer nor for
/// each other, so one slow read does not hold every other caller. Also the capacity callers share (`fairness`).
pub const SQLITE_READERS: u32 = 6;

/// The connections reads use: on PostgreSQL the same pool as writes; on SQLite a pool of [`SQLITE_READERS`]
/// read-only connections (a write still goes through the one writer, whose reads inside a transaction stay on it).
pub async fn connect_readers(
    settings: &DatabaseSettings,
    writer: &DatabaseConnection,
) -> Result<DatabaseConnection, DbErr> {
    if !settings.url.is_sqlite() {
        return Ok(writer.clone());
    }
    let mut options = options(settings, true);
    // All open from the start: a fixed set of descriptors, whatever the load has been.
    options
        .max_connections(SQLITE_READERS)
        .min_connections(SQLITE_READERS);
    Database::connect(options).await
}

/// SQLite virtual-machine steps between two looks at the clock (a few rows of a scan; a row's expensive
/// function call, such as `LIKE` over a long text, is one step).
const PROGRESS_OPS: i32 = 64;

/// One connection's statement budget: when the running statement must end.
struct Budget {
    epoch: Instant,
    budget: Duration,
    /// Nanoseconds after `epoch`.
    deadline: AtomicU64,
}

impl Budget {
    fn arm(&self) {
        let deadline = (self.epoch.elapsed() + self.budget).as_nanos();
        self.deadline.store(
            u64::try_from(deadline).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn within(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now < self.deadline.load(Ordering::Relaxed)
    }
}

/// `sqlite3_trace_v2`'s statement callback: a statement begins, its budget starts.
unsafe extern "C" fn statement_began(
    _event: c_uint,
    budget: *mut c_void,
    _statement: *mut c_void,
    sql: *mut c_void,
) -> c_int {
    let sql = sql.cast::<c_char>().cast_const();
    // SAFETY: SQLite passes the statement's text (NUL-terminated) or null; `budget` is the `Budget` registered
    // with this callback, alive while the connection is (see `limit_work`).
    unsafe {
        // A trigger's statements report "-- TRIGGER name": they are part of the statement that fired them.
        if sql.is_null() || *sql != b'-' as c_char {
            (*budget.cast::<Budget>()).arm();
        }
    }
    0
}

/// SQLite's statement timeout, as PostgreSQL's `statement_timeout`: every statement starts a budget when it
/// begins (`sqlite3_trace_v2`), and a progress handler interrupts it once the budget is spent (SQLITE_INTERRUPT,
/// answered 503), so the connection is free again for the next caller. Per statement, not per transaction: a
/// long walk of many statements (a streamed `per_page=all`) is not cut short.
async fn limit_work(
    connection: &mut sea_orm::sqlx::SqliteConnection,
    budget: Duration,
) -> Result<(), sea_orm::sqlx::Error> {
    let budget = Arc::new(Budget {
        epoch: Instant::now(),
        budget,
        deadline: AtomicU64::new(0),
    });
    budget.arm();
    let mut handle = connection.lock_handle().await?;
    // SAFETY: the registered pointer stays valid while the connection lives: the progress handler below owns a
    // clone of the `Arc`, and the connection keeps its handler until it closes.
    unsafe {
        libsqlite3_sys::sqlite3_trace_v2(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_TRACE_STMT,
            Some(statement_began),
            Arc::as_ptr(&budget).cast_mut().cast::<c_void>(),
        );
    }
    handle.set_progress_handler(PROGRESS_OPS, move || budget.within());
    Ok(())
}

/// Opens the pool's minimum of connections in the background (PostgreSQL), so that a new instance serves its first
/// burst without connecting; the pool then keeps at least that many open. Failures only mean a colder start.
pub fn warm(db: &DatabaseConnection, settings: &DatabaseSettings) {
    if settings.url.is_sqlite() {
        return;
    }
    let pool = db.get_postgres_connection_pool().clone();
    let wanted = settings.min_connections.clamp(1, settings.max_connections);
    tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..wanted {
            match pool.acquire().await {
                Ok(connection) => held.push(connection),
                Err(err) => {
                    tracing::debug!(error = %err, "warming the pool stopped early");
                    break;
                }
            }
        }
        tracing::debug!(connections = held.len(), "database pool warmed");
    });
}
