//! One caller cannot take the database from the others: a caller flooding the API with expensive queries gets
//! 429 past its share, while another caller is served at once.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, expensive_query, plant_long_attribs, read};

/// A Roster with a pool of 5 (a caller may hold 4), 3-second statements and a short wait for a fair share, and
/// subscribers on which `expensive` runs to that timeout.
async fn small_pool() -> TestApp {
    let app = TestApp::spawn_with(|settings| {
        settings.database.max_connections = 5;
        settings.database.statement_timeout = Duration::from_secs(3);
        settings.http.fair_share_wait = Duration::from_millis(300);
    })
    .await;
    plant_long_attribs(&app, 40).await;
    app
}

fn expensive(app: &TestApp) -> reqwest::RequestBuilder {
    app.request(Method::GET, "/api/subscribers")
        .query(&[("query", expensive_query())])
}

#[tokio::test]
async fn one_callers_flood_of_expensive_queries_leaves_another_caller_served() {
    let app = small_pool().await;
    let expensive = || expensive(&app);
    let flood = join_all((0..12).map(|_| expensive().send()));
    let probe = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let (status, _) = read(
            app.anonymous(Method::GET, "/api/public/lists")
                .send()
                .await
                .unwrap(),
        )
        .await;
        (status, started.elapsed())
    };
    let (answers, (probe_status, probe_took)) = tokio::join!(flood, probe);
    let statuses: Vec<StatusCode> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().status())
        .collect();
    let refused = answers
        .iter()
        .map(|a| a.as_ref().unwrap())
        .filter(|a| a.status() == StatusCode::TOO_MANY_REQUESTS)
        .inspect(|a| assert!(a.headers().contains_key("retry-after")))
        .count();
    assert!(
        refused >= 6,
        "the flood past its share is refused: {statuses:?}"
    );
    eprintln!("probe answered in {probe_took:?} while the flood got {statuses:?}");
    assert_eq!(probe_status, StatusCode::OK);
    // A caller may hold the pool less a reserve (PostgreSQL's pool, SQLite's read connections), so a newcomer
    // finds one free at once instead of waiting for a statement to end (up to 3 s); it still shares this
    // machine's two cores with the flood's statements.
    let bound = Duration::from_millis(1_500);
    assert!(
        probe_took < bound,
        "the other caller waited {probe_took:?}; flood: {statuses:?}"
    );
}

#[tokio::test]
async fn requests_whose_clients_left_keep_their_callers_places_until_their_statements_end() {
    let app = small_pool().await;
    let expensive = || expensive(&app);
    // Requests the client gives up on: their statements run on, each on a connection of the pool.
    // Six: more than a caller may hold on either backend.
    let left =
        join_all((0..6).map(|_| expensive().timeout(Duration::from_millis(200)).send())).await;
    assert!(
        left.iter()
            .all(|r| r.as_ref().is_err_and(|e| e.is_timeout()))
    );
    // So the caller still holds its places: more of its requests wait for them (429), not for a connection (503),
    // and another caller finds one free.
    let again = join_all((0..4).map(|_| expensive().send()));
    let probe = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        read(
            app.anonymous(Method::GET, "/api/public/lists")
                .send()
                .await
                .unwrap(),
        )
        .await
        .0
    };
    let (again, probe) = tokio::join!(again, probe);
    let statuses: Vec<StatusCode> = again.iter().map(|a| a.as_ref().unwrap().status()).collect();
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS)
            && !statuses.contains(&StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    assert_eq!(
        probe,
        StatusCode::OK,
        "the caller's own requests got {statuses:?}"
    );
}

#[tokio::test]
async fn two_callers_flooding_together_leave_the_reserve_to_a_third() {
    use roster::domain::UserPermission;
    // Callers in flight may hold the pool (9 on PostgreSQL, SQLite's 6 read connections) less 2 places together,
    // which are kept for callers holding nothing.
    let app = TestApp::spawn_with(|settings| {
        settings.database.max_connections = 9;
        settings.database.statement_timeout = Duration::from_secs(3);
        settings.http.fair_share_wait = Duration::from_millis(300);
    })
    .await;
    plant_long_attribs(&app, 40).await;
    let (_, reader) =
        crate::helpers::api_user(&app, "reader", &[UserPermission::SubscribersGetAll]).await;
    let admin_flood = join_all((0..12).map(|_| expensive(&app).send()));
    let reader_flood = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        join_all((0..12).map(|_| {
            app.anonymous(Method::GET, "/api/subscribers")
                .header("Authorization", &reader)
                .query(&[("query", expensive_query())])
                .send()
        }))
        .await
    };
    let probe = async {
        tokio::time::sleep(Duration::from_millis(450)).await;
        let started = Instant::now();
        let status = app
            .anonymous(Method::GET, "/api/public/lists")
            .send()
            .await
            .unwrap()
            .status();
        (status, started.elapsed())
    };
    let (admin, reader, (probe, took)) = tokio::join!(admin_flood, reader_flood, probe);
    let statuses = |answers: Vec<reqwest::Result<reqwest::Response>>| -> Vec<StatusCode> {
        answers.into_iter().map(|a| a.unwrap().status()).collect()
    };
    let (admin, reader) = (statuses(admin), statuses(reader));
    eprintln!("probe {probe} in {took:?}; admin {admin:?}; reader {reader:?}");
    assert_eq!(probe, StatusCode::OK, "admin {admin:?}; reader {reader:?}");
    assert!(
        took < Duration::from_millis(1_500),
        "the third caller waited {took:?}"
    );
    // The second identity held one place of the reserve at most; the rest of its flood waited its turn (429).
    let served = reader
        .iter()
        .filter(|s| **s != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(served <= 1, "reader {reader:?}");
}

#[tokio::test]
async fn authentication_finds_a_connection_when_the_requests_let_in_hold_all_the_others() {
    use roster::domain::UserPermission;
    use roster::service::{AccountService, RoleKind};
    use sea_orm::{ConnectionTrait, DatabaseBackend, TransactionTrait};
    let app = TestApp::spawn_with(|settings| {
        settings.database.max_connections = 5;
        settings.http.fair_share_wait = Duration::from_millis(300);
    })
    .await;
    if app.db.get_database_backend() != DatabaseBackend::Postgres {
        // On SQLite the writes wait for the one writer, not for the read connections authentication uses.
        return;
    }
    let accounts = AccountService::new(app.db.clone());
    accounts
        .create_role("editors", RoleKind::User)
        .await
        .unwrap();
    accounts
        .set_user_permissions(
            "editors",
            &[UserPermission::ListsManageAll, UserPermission::ListsGetAll],
            true,
        )
        .await
        .unwrap();
    let mut users = Vec::new();
    for name in ["one", "two", "three"] {
        let token = accounts
            .create_user(name, "editors", None)
            .await
            .unwrap()
            .token;
        users.push(format!("token {name}:{token}"));
    }
    let id = app.create_named("held").await;
    // Another session holds the list, so every update of it holds a pooled connection while it waits.
    let elsewhere = sea_orm::Database::connect(app.database.url.as_str())
        .await
        .unwrap();
    let hold = elsewhere.begin().await.unwrap();
    hold.execute_unprepared(&format!("SELECT id FROM lists WHERE id = {id} FOR UPDATE"))
        .await
        .unwrap();
    let put = |authorization: Option<&str>| {
        let request = match authorization {
            Some(value) => app
                .anonymous(Method::PUT, &format!("/api/lists/{id}"))
                .header("Authorization", value),
            None => app.request(Method::PUT, &format!("/api/lists/{id}")),
        };
        request
            .json(&serde_json::json!({ "name": "renamed" }))
            .send()
    };
    // Three of the admin's and one each of two API users: one more than the gate lets in.
    let waiting = join_all([
        put(None),
        put(None),
        put(None),
        put(Some(&users[0])),
        put(Some(&users[1])),
    ]);
    let newcomer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let answer = put(Some(&users[2])).await.unwrap();
        let status = answer.status();
        (status, answer.text().await.unwrap())
    };
    let release = async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        hold.commit().await.unwrap();
    };
    let (held, (status, body), ()) = tokio::join!(waiting, newcomer, release);
    // The newcomer is authenticated on the connection left out of the gate, then waits its turn at the gate.
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let held: Vec<StatusCode> = held.into_iter().map(|a| a.unwrap().status()).collect();
    assert_eq!(
        held.iter().filter(|s| **s == StatusCode::OK).count(),
        4,
        "{held:?}"
    );
    assert!(held.contains(&StatusCode::TOO_MANY_REQUESTS), "{held:?}");
}
