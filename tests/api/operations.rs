//! Operating Roster: rate limits, request ids, metrics, timeouts.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use roster::config::Secret;

use crate::helpers::{ADMIN_PASSWORD, TestApp, expect_error, read, trickle};

#[tokio::test]
async fn each_identity_has_its_own_rate_limit_with_retry_after() {
    let app = TestApp::spawn_with(|s| {
        s.http.rate_limit = 1;
        s.http.rate_limit_burst = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/lists").await.status(), StatusCode::OK);
    }
    let refused = app.get("/api/lists").await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let message = expect_error(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(message.contains("Retry-After"), "{message}");

    // Another caller, from the same address, is not affected.
    let accounts = roster::service::AccountService::new(app.db.clone());
    accounts
        .create_role("r", roster::service::RoleKind::User)
        .await
        .unwrap();
    let token = accounts
        .create_user("other", "r", None)
        .await
        .unwrap()
        .token;
    let response = app
        .anonymous(Method::GET, "/api/lists")
        .header("Authorization", format!("token other:{token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_throttled_caller_is_refused_without_its_credentials_being_looked_up() {
    let app = TestApp::spawn_with(|s| {
        s.http.rate_limit = 1;
        s.http.rate_limit_burst = 2;
    })
    .await;
    let (accounts, busy) = crate::helpers::api_user(&app, "busy", &[]).await;
    let as_busy = || async {
        app.anonymous(Method::GET, "/api/lists")
            .header("Authorization", &busy)
            .send()
            .await
            .unwrap()
            .status()
    };
    // `GET /api/lists` needs no permission beyond being someone: 200 without a list permission's lists.
    assert_eq!(as_busy().await, StatusCode::OK);
    assert_eq!(as_busy().await, StatusCode::OK);
    // With the users' table gone, every lookup of credentials fails; a throttled caller's requests do not get
    // that far.
    app.execute_sql("ALTER TABLE api_users RENAME TO api_users_away")
        .await;
    for _ in 0..5 {
        assert_eq!(as_busy().await, StatusCode::TOO_MANY_REQUESTS);
    }
    // However the header spells the same credentials.
    let spaced = busy.replacen("token ", "token    ", 1);
    for _ in 0..5 {
        let status = app
            .anonymous(Method::GET, "/api/lists")
            .header("Authorization", &spaced)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    // A header that never authenticated is looked up (and fails), whatever its user's bucket holds.
    let (status, _) = read(
        app.anonymous(Method::GET, "/api/lists")
            .header("Authorization", "token busy:wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(status.is_server_error(), "{status}");
    app.execute_sql("ALTER TABLE api_users_away RENAME TO api_users")
        .await;
    // Once its bucket refills, the caller is looked up again: a disabled user is refused at once.
    accounts.set_enabled("busy", false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(as_busy().await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_rotated_token_flooded_by_someone_else_does_not_keep_its_owner_throttled() {
    let app = TestApp::spawn_with(|s| {
        s.http.rate_limit = 1;
        s.http.rate_limit_burst = 3;
    })
    .await;
    let (accounts, header) = crate::helpers::api_user(&app, "owner", &[]).await;
    let old = header.strip_prefix("token owner:").unwrap().to_owned();
    let list = |client: &reqwest::Client, token: &str| {
        client
            .get(app.url("/api/lists"))
            .header("Authorization", format!("token owner:{token}"))
            .send()
    };
    let owner = app.client_from(1);
    assert_eq!(list(&owner, &old).await.unwrap().status(), StatusCode::OK);
    let new = accounts.rotate_token("owner").await.unwrap().token;
    // Someone else, from another address, floods the old token: it is looked up once, found stale and forgotten,
    // and then refused as any wrong credentials are, from the owner's bucket no more.
    let other = app.client_from(2);
    for _ in 0..20 {
        let answer = list(&other, &old).await.unwrap();
        assert_ne!(answer.status(), StatusCode::OK);
        assert!(
            answer.headers().get("ratelimit-remaining").is_none(),
            "a stale token is not told its former owner's quota: {:?}",
            answer.headers()
        );
    }
    assert_eq!(list(&owner, &new).await.unwrap().status(), StatusCode::OK);
}

/// The caller's `RateLimit-*` headers of an answer, as numbers.
fn quota(response: &reqwest::Response) -> Option<(u64, u64, u64)> {
    let value =
        |name: &str| -> Option<u64> { response.headers().get(name)?.to_str().ok()?.parse().ok() };
    Some((
        value("ratelimit-limit")?,
        value("ratelimit-remaining")?,
        value("ratelimit-reset")?,
    ))
}

#[tokio::test]
async fn every_answer_tells_the_callers_quota_as_it_is_spent_429_included() {
    let app = TestApp::spawn_with(|s| {
        s.http.rate_limit = 1;
        s.http.rate_limit_burst = 3;
    })
    .await;
    let first = app.get("/api/lists").await;
    assert_eq!(first.status(), StatusCode::OK);
    let (limit, remaining, reset) = quota(&first).expect("rate-limit headers on a 200");
    assert_eq!((limit, remaining), (3, 2));
    assert!(
        (1..=1).contains(&reset),
        "one token to refill at 1/s: {reset}"
    );
    // An error answer counts and tells as well.
    let missing = app.get("/api/lists/999").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let (_, remaining, reset) = quota(&missing).expect("rate-limit headers on a 404");
    assert_eq!(remaining, 1);
    assert!((1..=2).contains(&reset), "{reset}");
    let last = app.get("/api/lists").await;
    assert_eq!(quota(&last).map(|q| q.1), Some(0));
    let refused = app.get("/api/lists").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let (limit, remaining, reset) = quota(&refused).expect("rate-limit headers on a 429");
    assert_eq!((limit, remaining), (3, 0));
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        reset >= retry_after && reset <= 3,
        "reset {reset}, retry after {retry_after}"
    );
    // Without credentials the address's bucket tells; liveness is counted by none.
    let public = app
        .anonymous(Method::GET, "/api/public/lists")
        .send()
        .await
        .unwrap();
    assert_eq!(quota(&public).map(|q| (q.0, q.1)), Some((3, 2)));
    let live = app.anonymous(Method::GET, "/health").send().await.unwrap();
    assert_eq!(quota(&live), None);
}

#[tokio::test]
async fn answers_carry_no_quota_when_rate_limiting_is_off() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/lists").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key("ratelimit-limit"));
}

#[tokio::test]
async fn requests_without_credentials_are_limited_per_address_except_liveness() {
    let app = TestApp::spawn_with(|s| {
        s.http.rate_limit = 1;
        s.http.rate_limit_burst = 2;
    })
    .await;
    let public = || app.anonymous(Method::GET, "/api/public/lists").send();
    assert_eq!(public().await.unwrap().status(), StatusCode::OK);
    assert_eq!(public().await.unwrap().status(), StatusCode::OK);
    let refused = public().await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    expect_error(refused, StatusCode::TOO_MANY_REQUESTS).await;
    for _ in 0..5 {
        let live = app.anonymous(Method::GET, "/health").send().await.unwrap();
        assert_eq!(live.status(), StatusCode::OK, "liveness is never limited");
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address_before_the_credentials_are_checked() {
    let app = TestApp::spawn_with(|s| {
        s.http.login_failure_burst = 3;
        s.http.login_failures_per_minute = 5;
    })
    .await;
    let lists = app.url("/api/lists");
    let guess = |password: &str| {
        app.client
            .get(&lists)
            .basic_auth("admin", Some(password.to_owned()))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            guess("guess").await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
    }
    let refused = guess("guess").await.unwrap();
    assert_eq!(
        refused.headers()["retry-after"],
        "12",
        "one more guess every 12 s"
    );
    expect_error(refused, StatusCode::TOO_MANY_REQUESTS).await;
    // The right password from the guessing address is refused too: a throttled guesser learns nothing.
    let right = guess(ADMIN_PASSWORD).await.unwrap();
    expect_error(right, StatusCode::TOO_MANY_REQUESTS).await;
    // Malformed credentials count as failures as well, and API users' tokens go through the same gate.
    let token = app
        .client
        .get(&lists)
        .header("Authorization", "token bot:x")
        .send();
    expect_error(token.await.unwrap(), StatusCode::TOO_MANY_REQUESTS).await;
    // Elsewhere, the admin is not locked out; requests without credentials are not throttled either.
    let elsewhere = app
        .client_from(2)
        .get(&lists)
        .basic_auth("admin", Some(ADMIN_PASSWORD));
    assert_eq!(elsewhere.send().await.unwrap().status(), StatusCode::OK);
    let public = app
        .client
        .get(app.url("/api/public/lists"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::OK);
}

#[tokio::test]
async fn successful_logins_do_not_use_up_the_failed_login_allowance() {
    let app = TestApp::spawn_with(|s| {
        s.http.login_failure_burst = 1;
        s.http.login_failures_per_minute = 1;
    })
    .await;
    for _ in 0..20 {
        assert_eq!(app.get("/api/lists").await.status(), StatusCode::OK);
    }
    let wrong = app
        .anonymous(Method::GET, "/api/lists")
        .basic_auth("admin", Some("x"));
    assert_eq!(wrong.send().await.unwrap().status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn rate_limiting_can_be_turned_off() {
    let app = TestApp::spawn_with(|s| s.http.rate_limit = 0).await;
    for _ in 0..50 {
        assert_eq!(app.get("/api/health").await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated_on_every_response() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::GET, "/api/lists")
        .header("X-Request-Id", "client-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-id-42");
    for (method, path) in [
        ("GET", "/api/lists"),
        ("GET", "/nope"),
        ("PATCH", "/api/lists"),
        ("GET", "/api/lists/0"),
    ] {
        let response = app
            .request(Method::from_bytes(method.as_bytes()).unwrap(), path)
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{method} {path}: {id}");
    }
    let response = app
        .anonymous(Method::GET, "/health")
        .header("X-Request-Id", "bad id\twith tab")
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"], "bad id\twith tab");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.get("/api/lists").await;
    app.get("/api/lists/12345").await;
    let response = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    for needle in [
        "roster_http_requests_total{route=\"getLists\",method=\"GET\",status=\"200\"}",
        "roster_http_requests_total{route=\"getListById\",method=\"GET\",status=\"404\"}",
        "roster_http_request_duration_seconds_bucket{route=\"getLists\"",
        "roster_db_pool_connections{state=\"idle\"}",
        "roster_db_pool_max_connections",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

#[tokio::test]
async fn metrics_count_rate_limit_rejections() {
    let app = TestApp::spawn_with(|s| {
        s.http.rate_limit = 1;
        s.http.rate_limit_burst = 1;
    })
    .await;
    app.get("/api/lists").await;
    assert_eq!(
        app.get("/api/lists").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let text = app
        .anonymous(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("roster_rate_limited_total{scope=\"identity\"}"),
        "{text}"
    );
    assert!(text.contains("status=\"429\""), "{text}");
}

#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    let app = TestApp::spawn_with(|s| s.http.metrics_token = Some(Secret::new("scrape-me"))).await;
    let without = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    expect_error(without, StatusCode::FORBIDDEN).await;
    let with = app
        .anonymous(Method::GET, "/metrics")
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_running_past_the_timeout_is_answered_503() {
    let app = TestApp::spawn_with(|s| {
        s.http.request_timeout = Duration::from_millis(300);
        s.database.statement_timeout = Duration::from_millis(250);
    })
    .await;
    // A body that trickles in keeps the request running.
    let mut parts = vec![b"{\"name\":\"".to_vec()];
    parts.extend((0..9).map(|_| b"x".to_vec()));
    let body = trickle(parts, Duration::from_millis(100));
    let response = app
        .request(Method::POST, "/api/lists")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    expect_error(response, StatusCode::SERVICE_UNAVAILABLE).await;
    let (status, _) = read(app.get("/api/lists").await).await;
    assert_eq!(status, StatusCode::OK, "the server carries on");
}
