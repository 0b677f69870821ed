//! The pool's release (vendor/README.md). On PostgreSQL a connection goes back without a round trip when nothing is
//! queued or in flight on it, and with one (which drains it) when a statement's answer is unread or a rollback is
//! queued; a transaction whose `BEGIN` was abandoned is rolled back. Watched from a proxy between Roster's pool and
//! PostgreSQL that reads the messages the pool sends and can hold back the server's answers. On SQLite an abandoned
//! statement still ends before its connection serves anyone else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roster::config::{DatabaseSettings, DatabaseUrl};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::TestDatabase;

/// PostgreSQL's untyped requests that come before the startup message (SSLRequest, GSSENCRequest).
const PRE_STARTUP_CODES: [u32; 2] = [80_877_103, 80_877_104];

/// The type bytes of every message the clients sent, in order, per connection; and a switch that holds back the
/// server's answers while it is on.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Vec<Vec<u8>>>>, Arc<AtomicBool>);

impl Sent {
    /// Syncs with no extended-query message before them since the last answer: the pool's ping (a Sync on its own).
    fn pings(&self) -> usize {
        let connections = self.0.lock().unwrap();
        connections
            .iter()
            .map(|types| {
                let mut previous = None;
                let mut pings = 0;
                for &kind in types {
                    if kind == b'S' && matches!(previous, None | Some(b'S' | b'Q' | b'p')) {
                        pings += 1;
                    }
                    previous = Some(kind);
                }
                pings
            })
            .sum()
    }
}

/// Forwards one client's bytes to PostgreSQL, recording the type of each message it sends.
async fn relay(client: TcpStream, server: std::net::SocketAddr, sent: Sent) {
    let server = TcpStream::connect(server).await.unwrap();
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let index = {
        let mut connections = sent.0.lock().unwrap();
        connections.push(Vec::new());
        connections.len() - 1
    };
    let held = sent.1.clone();
    tokio::spawn(async move {
        let mut chunk = [0u8; 8192];
        while let Ok(read) = server_read.read(&mut chunk).await {
            while held.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if read == 0 || client_write.write_all(&chunk[..read]).await.is_err() {
                return;
            }
        }
    });
    let mut pending = Vec::new();
    let mut started = false;
    let mut chunk = [0u8; 8192];
    loop {
        let Ok(read) = client_read.read(&mut chunk).await else {
            return;
        };
        if read == 0 {
            return;
        }
        pending.extend_from_slice(&chunk[..read]);
        // Whole messages only: untyped (length, code) before startup, then (type, length).
        loop {
            let header = if started { 5 } else { 8 };
            if pending.len() < header {
                break;
            }
            let length_at = usize::from(started);
            let length =
                u32::from_be_bytes(pending[length_at..length_at + 4].try_into().unwrap()) as usize;
            let total = length + length_at;
            if pending.len() < total {
                break;
            }
            if started {
                sent.0.lock().unwrap()[index].push(pending[0]);
            } else {
                let code = u32::from_be_bytes(pending[4..8].try_into().unwrap());
                started = !PRE_STARTUP_CODES.contains(&code);
            }
            pending.drain(..total);
        }
        if server_write.write_all(&chunk[..read]).await.is_err() {
            return;
        }
    }
}

/// A proxy in front of `url`'s server; returns the URL through it (without TLS, so its messages can be read).
async fn proxy(url: &str, sent: Sent) -> String {
    let mut url = url::Url::parse(url).unwrap();
    let server = tokio::net::lookup_host((url.host_str().unwrap(), url.port().unwrap_or(5432)))
        .await
        .unwrap()
        .next()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay(client, server, sent.clone()));
        }
    });
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(port)).unwrap();
    url.query_pairs_mut().append_pair("sslmode", "disable");
    url.to_string()
}

async fn number(db: &DatabaseConnection, n: i32) -> i32 {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT $1::int4 AS n",
            [n.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// A pool of one connection (so that every statement meets what the one before it left) through a proxy to a
/// fresh PostgreSQL database; and a session of its own on that database, outside the pool.
async fn pool_of_one(sent: &Sent) -> (DatabaseConnection, DatabaseConnection, TestDatabase) {
    let (db, database) = proxied_pool_of_one(sent, Duration::from_secs(10)).await;
    db.execute_unprepared("CREATE TABLE kept (n int)")
        .await
        .unwrap();
    let elsewhere = sea_orm::Database::connect(&database.url).await.unwrap();
    (db, elsewhere, database)
}

/// A pool of one connection, waiting at most `acquire` for it, through a proxy to a fresh PostgreSQL database.
async fn proxied_pool_of_one(sent: &Sent, acquire: Duration) -> (DatabaseConnection, TestDatabase) {
    let database = TestDatabase::create().await;
    let settings = DatabaseSettings {
        url: DatabaseUrl::new(&proxy(&database.url, sent.clone()).await),
        max_connections: 1,
        min_connections: 1,
        acquire_timeout: acquire,
        statement_timeout: Duration::from_secs(10),
    };
    (roster::db::connect(&settings).await.unwrap(), database)
}

/// An integer `sql` reads, run by the session outside the pool.
async fn read_elsewhere(elsewhere: &DatabaseConnection, sql: &str) -> i32 {
    let row = elsewhere
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// The rows of `kept` another session sees.
async fn kept_elsewhere(elsewhere: &DatabaseConnection) -> i32 {
    read_elsewhere(elsewhere, "SELECT count(*)::int4 AS n FROM kept").await
}

/// Waits (at most 5 s) until no other session of the database is in a transaction or a statement, watched from
/// outside the pool: the pool's connection settled without anyone using it again.
async fn pool_settles(elsewhere: &DatabaseConnection) -> bool {
    let busy = "SELECT count(*)::int4 AS n FROM pg_stat_activity WHERE datname = current_database() \
                AND pid <> pg_backend_pid() AND state <> 'idle'";
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if read_elsewhere(elsewhere, busy).await == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_connection_returns_to_the_pool_without_a_round_trip_unless_something_on_it_is_unfinished()
 {
    if std::env::var_os("ROSTER_TEST_POSTGRES_URL").is_none() {
        return; // SQLite's side: the last test.
    }
    let sent = Sent::default();
    let (db, elsewhere, _database) = pool_of_one(&sent).await;
    assert_eq!(number(&db, 1).await, 1);
    let before = sent.pings();

    for n in 2..22 {
        assert_eq!(number(&db, n).await, n);
    }
    let transaction = db.begin().await.unwrap();
    transaction
        .execute_unprepared("INSERT INTO kept VALUES (1)")
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    assert_eq!(number(&db, 22).await, 22);
    assert_eq!(
        sent.pings(),
        before,
        "finished statements and a committed transaction were followed by a ping"
    );

    // A statement abandoned mid-flight: its answer is drained before the connection serves the next caller.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        db.execute_unprepared("SELECT pg_sleep(1)"),
    )
    .await;
    assert!(abandoned.is_err(), "the sleep finished within 200 ms");
    assert_eq!(number(&db, 23).await, 23);
    assert_eq!(
        sent.pings(),
        before + 1,
        "the abandoned statement was not drained on release"
    );

    // A transaction dropped without commit: its rollback goes out on release, before anyone uses the connection.
    let transaction = db.begin().await.unwrap();
    transaction
        .execute_unprepared("INSERT INTO kept VALUES (2)")
        .await
        .unwrap();
    drop(transaction);
    assert!(
        pool_settles(&elsewhere).await,
        "the dropped transaction stayed open on its pooled connection"
    );
    assert_eq!(
        kept_elsewhere(&elsewhere).await,
        1,
        "the dropped transaction's row is visible"
    );
    assert_eq!(
        sent.pings(),
        before + 2,
        "the dropped transaction's rollback was not flushed on release"
    );
    elsewhere.close().await.unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_transaction_whose_begin_was_abandoned_is_rolled_back_and_later_writes_are_kept() {
    if std::env::var_os("ROSTER_TEST_POSTGRES_URL").is_none() {
        return; // SQLite's `BEGIN` is cancel-safe upstream (sqlx #2057).
    }
    let sent = Sent::default();
    let (db, elsewhere, _database) = pool_of_one(&sent).await;
    // `BEGIN` reaches the server, and its answer is held until the caller has given up.
    sent.1.store(true, Ordering::SeqCst);
    let abandoned = tokio::time::timeout(Duration::from_millis(200), db.begin()).await;
    assert!(abandoned.is_err(), "BEGIN was answered while held");
    sent.1.store(false, Ordering::SeqCst);
    assert!(
        pool_settles(&elsewhere).await,
        "the abandoned BEGIN left its pooled connection inside a transaction"
    );
    // Single statements on the same connection: inside a leftover transaction they would never commit.
    for n in 1..=3 {
        db.execute_unprepared(&format!("INSERT INTO kept VALUES ({n})"))
            .await
            .unwrap();
    }
    assert_eq!(
        kept_elsewhere(&elsewhere).await,
        3,
        "writes after an abandoned BEGIN are invisible to other sessions"
    );
    elsewhere.close().await.unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn an_abandoned_write_on_sqlite_ends_before_its_writer_serves_anyone_else() {
    if std::env::var_os("ROSTER_TEST_POSTGRES_URL").is_some() {
        return; // PostgreSQL's side: the tests above.
    }
    let database = TestDatabase::create().await;
    let settings = DatabaseSettings {
        url: DatabaseUrl::new(&database.url),
        max_connections: 1,
        min_connections: 1,
        acquire_timeout: Duration::from_millis(500),
        // The abandoned write is interrupted at this budget: longer than SQLite's busy timeout (5 s in db.rs), so
        // that a second writer opened meanwhile would give up on the lock with "database is locked".
        statement_timeout: Duration::from_secs(7),
    };
    let db = roster::db::connect(&settings).await.unwrap();
    db.execute_unprepared("CREATE TABLE kept (n int)")
        .await
        .unwrap();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        db.execute_unprepared(
            "INSERT INTO kept WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
             WHERE x < 500000000) SELECT x FROM c",
        ),
    )
    .await;
    assert!(abandoned.is_err(), "the long insert finished within 100 ms");
    // Until it ends, callers wait for the one writer (and may time out waiting); a second writer would meet
    // "database is locked" instead.
    let pool = db.get_sqlite_connection_pool();
    let started = Instant::now();
    loop {
        assert!(pool.size() <= 1, "a second writer was opened");
        match db.execute_unprepared("INSERT INTO kept VALUES (-1)").await {
            Ok(_) => break,
            Err(err) => {
                let message = err.to_string();
                assert!(!message.contains("locked"), "{message}");
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "no write went through: {message}"
                );
            }
        }
    }
    assert_eq!(pool.size(), 1);
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_drain_that_gets_no_answer_closes_its_connection_instead_of_keeping_it_from_the_pool() {
    if std::env::var_os("ROSTER_TEST_POSTGRES_URL").is_none() {
        return; // PostgreSQL's release path.
    }
    let sent = Sent::default();
    let (db, _database) = proxied_pool_of_one(&sent, Duration::from_secs(30)).await;
    assert_eq!(number(&db, 1).await, 1);
    // The abandoned statement's answer never reaches the pool while the proxy holds it back, as when it sits
    // unread in a TLS buffer: the drain waits for it.
    sent.1.store(true, Ordering::SeqCst);
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        db.execute_unprepared("SELECT pg_sleep(1)"),
    )
    .await;
    assert!(abandoned.is_err());
    let next = tokio::spawn({
        let db = db.clone();
        async move { number(&db, 2).await }
    });
    // Past the drain's bound (15 s) the connection is closed and another opened; its answers flow once the proxy
    // lets them.
    tokio::time::sleep(Duration::from_secs(16)).await;
    sent.1.store(false, Ordering::SeqCst);
    assert_eq!(next.await.unwrap(), 2);
    assert_eq!(
        sent.0.lock().unwrap().len(),
        2,
        "the stuck connection was kept instead of replaced"
    );
    db.close().await.unwrap();
}

#[tokio::test]
async fn statements_shaped_by_a_subscriber_query_are_not_kept_prepared_on_the_connection() {
    let app = crate::helpers::TestApp::spawn_with(|s| s.database.max_connections = 1).await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        // The patched driver is PostgreSQL's; SQLite's statements live in Roster's own process.
        return;
    }
    crate::subscribers::create_subscriber(
        &app,
        serde_json::json!({"email": "shape@example.com", "name": "S"}),
    )
    .await;
    // Thirty shapes: 1 to 30 comparisons.
    for n in 1..=30 {
        let query: Vec<String> = (0..n).map(|i| format!("subscribers.id > {i}")).collect();
        let response = app
            .request(reqwest::Method::GET, "/api/subscribers")
            .query(&[("query", query.join(" OR "))])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
    }
    // The pool has one connection: this session is the one that served them.
    let prepared = |filter: &str| {
        let filter = filter.to_owned();
        let db = app.db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT COUNT(*)::int AS n FROM pg_prepared_statements WHERE {filter}"),
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i32>("", "n").unwrap()
        }
    };
    // (This count's own statement is prepared too, and names the comment: it is left out.)
    let own = "statement NOT LIKE '%pg_prepared_statements%'";
    assert_eq!(
        prepared(&format!("statement LIKE '%roster: not cached%' AND {own}")).await,
        0
    );
    assert!(
        prepared(&format!("statement LIKE '%subscribers%' AND {own}")).await > 0,
        "Roster's own statements are still prepared once per connection"
    );
}
