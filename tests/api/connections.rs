//! Connection hygiene and start-up checks: slow or silent clients are cut off, the number of connections is
//! bounded, and settings that would be unsafe (an empty admin password, a statement timeout that outlives its
//! request, an unmigrated database for an administrative command) are refused up front.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, TestDatabase, settings};

/// Waits until the server closes the connection, and says how long that took.
async fn closed_after(stream: &mut TcpStream, at_most: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(at_most, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection is still open after {at_most:?}"),
        }
    }
}

fn port(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off_at_the_header_timeout() {
    let app =
        TestApp::spawn_with(|s| s.connections.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port(&app))).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if stream.write_all(b"X-a: b\r\n").await.is_err() {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), trickle)
        .await
        .ok();
    let waited = closed_after(&mut stream, Duration::from_secs(5)).await;
    assert!(waited < Duration::from_secs(5));
}

#[tokio::test]
async fn a_connection_on_which_nothing_moves_is_closed_at_the_idle_timeout() {
    let app = TestApp::spawn_with(|s| {
        s.connections.idle_timeout = Duration::from_secs(1);
        s.connections.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    // An HTTP/2 connection (prior knowledge) that sends its preface and then nothing: no header timeout applies.
    let mut stream = TcpStream::connect(("127.0.0.1", port(&app))).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let waited = closed_after(&mut stream, Duration::from_secs(10)).await;
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
}

#[tokio::test]
async fn a_request_roster_works_on_for_longer_than_the_idle_timeout_is_answered() {
    use sea_orm::{ConnectionTrait, DatabaseBackend, TransactionTrait};
    let app = TestApp::spawn_with(|s| {
        s.connections.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let id = app.create_named("held").await;
    // Another session holds what the update needs for 2.5 s: the list's row on PostgreSQL, the write lock on
    // SQLite (where Roster's writer waits up to its 5 s busy timeout). No byte moves on the client's connection
    // meanwhile.
    // One connection, so that SQLite's `COMMIT` goes where its `BEGIN IMMEDIATE` went.
    let mut options = sea_orm::ConnectOptions::new(app.database.url.as_str());
    options.max_connections(1);
    let elsewhere = sea_orm::Database::connect(options).await.unwrap();
    let hold = if app.db.get_database_backend() == DatabaseBackend::Postgres {
        let hold = elsewhere.begin().await.unwrap();
        hold.execute_unprepared(&format!("SELECT id FROM lists WHERE id = {id} FOR UPDATE"))
            .await
            .unwrap();
        Some(hold)
    } else {
        elsewhere
            .execute_unprepared("BEGIN IMMEDIATE")
            .await
            .unwrap();
        None
    };
    let release = async {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        match hold {
            Some(hold) => hold.commit().await.unwrap(),
            None => {
                elsewhere.execute_unprepared("COMMIT").await.unwrap();
            }
        }
    };
    let (path, body) = (
        format!("/api/lists/{id}"),
        serde_json::json!({ "name": "renamed" }),
    );
    let started = Instant::now();
    let (answer, ()) = tokio::join!(app.put_json(&path, &body), release);
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let app = TestApp::spawn_with(|s| {
        s.connections.max_connections = 2;
        s.connections.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(("127.0.0.1", port(&app))).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The third connection is queued by the kernel and served once the silent ones are cut off.
    let started = Instant::now();
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_empty_admin_password_is_refused_at_start_up() {
    let database = TestDatabase::create().await;
    let result = roster::Application::build(settings(&database.url, Some(""))).await;
    let message = result.err().expect("refused").to_string();
    assert!(message.contains("ROSTER_ADMIN_PASSWORD"), "{message}");
}

#[tokio::test]
async fn a_statement_timeout_not_shorter_than_the_request_timeout_is_refused_at_start_up() {
    let database = TestDatabase::create().await;
    let mut settings = settings(&database.url, Some("a long enough password"));
    settings.http.request_timeout = Duration::from_secs(10);
    settings.database.statement_timeout = Duration::from_secs(10);
    let message = roster::Application::build(settings)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(message.contains("ROSTER_DB_STATEMENT_TIMEOUT"), "{message}");
}

#[tokio::test]
async fn administrative_commands_refuse_an_unmigrated_database_instead_of_migrating_it() {
    let database = TestDatabase::create().await;
    let settings = settings(&database.url, None).database;
    let Err(refused) = roster::startup::connect_migrated(&settings).await else {
        panic!("an unmigrated database was accepted");
    };
    let message = refused.to_string();
    assert!(message.contains("roster migrate"), "{message}");
    roster::startup::migrate(&settings).await.unwrap();
    roster::startup::connect_migrated(&settings).await.unwrap();
}

#[tokio::test]
async fn postgres_pools_open_their_minimum_of_connections_at_start_up() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::spawn_with(|s| {
        s.database.min_connections = 4;
        s.database.max_connections = 6;
    })
    .await;
    if app.db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return; // SQLite always uses one connection.
    }
    let count = Statement::from_string(
        sea_orm::DatabaseBackend::Postgres,
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()",
    );
    let started = Instant::now();
    loop {
        let row = app.db.query_one_raw(count.clone()).await.unwrap().unwrap();
        let open: i64 = row.try_get_by_index(0).unwrap();
        if open >= 4 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "only {open} connections open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
