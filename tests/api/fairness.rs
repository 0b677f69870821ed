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
    let left =
        join_all((0..4).map(|_| expensive().timeout(Duration::from_millis(300)).send())).await;
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
