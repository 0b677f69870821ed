//! The pool's release on PostgreSQL (vendor/README.md): a connection goes back without a round trip when nothing is
//! queued or in flight on it, and with one (which drains it) when a statement's answer is unread or a rollback is
//! queued. Watched from a proxy between Roster's pool and PostgreSQL that reads the messages the pool sends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use roster::config::{DatabaseSettings, DatabaseUrl};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::TestDatabase;

/// PostgreSQL's untyped requests that come before the startup message (SSLRequest, GSSENCRequest).
const PRE_STARTUP_CODES: [u32; 2] = [80_877_103, 80_877_104];

/// The type bytes of every message the clients sent, in order, per connection.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Vec<Vec<u8>>>>);

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
    tokio::spawn(async move {
        tokio::io::copy(&mut server_read, &mut client_write)
            .await
            .ok();
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

#[tokio::test]
async fn a_connection_returns_to_the_pool_without_a_round_trip_unless_something_on_it_is_unfinished()
 {
    if std::env::var_os("ROSTER_TEST_POSTGRES_URL").is_none() {
        return; // SQLite's connections are threads in this process: nothing to drain over a socket.
    }
    let database = TestDatabase::create().await;
    let sent = Sent::default();
    let settings = DatabaseSettings {
        url: DatabaseUrl::new(&proxy(&database.url, sent.clone()).await),
        // One connection, so that every statement below meets what the one before it left.
        max_connections: 1,
        min_connections: 1,
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(10),
    };
    let db = roster::db::connect(&settings).await.unwrap();
    db.execute_unprepared("CREATE TABLE kept (n int)")
        .await
        .unwrap();
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

    // A transaction dropped without commit: its rollback goes out on release, and the next caller sees no trace.
    let transaction = db.begin().await.unwrap();
    transaction
        .execute_unprepared("INSERT INTO kept VALUES (2)")
        .await
        .unwrap();
    drop(transaction);
    let rows = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*)::int4 AS n, (SELECT count(*)::int4 FROM pg_locks WHERE locktype = 'relation' \
             AND relation = 'kept'::regclass) AS locks FROM kept",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rows.try_get::<i32>("", "n").unwrap(),
        1,
        "the dropped transaction's row is visible"
    );
    assert_eq!(
        rows.try_get::<i32>("", "locks").unwrap(),
        1,
        "only this statement's lock"
    );
    assert_eq!(
        sent.pings(),
        before + 2,
        "the dropped transaction's rollback was not flushed on release"
    );
    db.close().await.unwrap();
}
