use reqwest::{Method, StatusCode};

use crate::helpers::{ADMIN_PASSWORD, ADMIN_USER, TestApp, TestDatabase, expect_error, read};

/// Every operation that needs credentials, with a valid path.
const PROTECTED: &[(&str, &str)] = &[
    ("GET", "/api/lists"),
    ("POST", "/api/lists"),
    ("DELETE", "/api/lists?id=1"),
    ("GET", "/api/lists/1"),
    ("PUT", "/api/lists/1"),
    ("DELETE", "/api/lists/1"),
    ("GET", "/api/health"),
];

async fn assert_forbidden_everywhere(app: &TestApp, authorization: Option<&str>) {
    for (method, path) in PROTECTED {
        let mut request = app.anonymous(Method::from_bytes(method.as_bytes()).unwrap(), path);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let response = request
            .json(&serde_json::json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        let message = expect_error(response, StatusCode::FORBIDDEN).await;
        assert!(
            !message.contains(ADMIN_PASSWORD),
            "{method} {path}: {message}"
        );
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn requests_without_credentials_get_403_with_a_json_message() {
    let app = TestApp::spawn().await;
    assert_forbidden_everywhere(&app, None).await;
}

#[tokio::test]
async fn a_wrong_password_gets_403() {
    let app = TestApp::spawn().await;
    assert_forbidden_everywhere(&app, Some(&basic(ADMIN_USER, "wrong"))).await;
    assert_forbidden_everywhere(&app, Some(&basic(ADMIN_USER, ""))).await;
}

#[tokio::test]
async fn an_unknown_user_gets_403() {
    let app = TestApp::spawn().await;
    assert_forbidden_everywhere(&app, Some(&basic("root", ADMIN_PASSWORD))).await;
}

#[tokio::test]
async fn malformed_authorization_headers_get_403() {
    let app = TestApp::spawn().await;
    for header in [
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic YWRtaW4=", // "admin" without a colon
        "Bearer abc",
        "basic-ish",
        "token admin:whatever",
    ] {
        assert_forbidden_everywhere(&app, Some(header)).await;
    }
}

#[tokio::test]
async fn the_admin_credentials_are_accepted() {
    let app = TestApp::spawn().await;
    let response = app
        .anonymous(Method::GET, "/api/lists")
        .header("Authorization", basic(ADMIN_USER, ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn public_lists_and_liveness_need_no_credentials() {
    let app = TestApp::spawn().await;
    for path in ["/api/public/lists", "/health"] {
        let response = app.anonymous(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn health_needs_credentials_and_reports_a_reachable_database() {
    let app = TestApp::spawn().await;
    let (status, body) = read(app.get("/api/health").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"data": true, "status": "success"}));
    let (status, body) = read(app.anonymous(Method::GET, "/health").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], true);
}

#[tokio::test]
async fn the_first_start_generates_a_password_that_later_starts_keep() {
    let database = TestDatabase::create().await;
    let first = TestApp::spawn_on(database, None).await;
    let generated = first
        .generated_password
        .clone()
        .expect("the first start generates a password");
    assert!(generated.len() >= 32, "strong: {generated}");
    assert_eq!(first.get("/api/lists").await.status(), StatusCode::OK);

    let second = TestApp::spawn_on(first.stop(), None).await;
    assert!(
        second.generated_password.is_none(),
        "the password is generated once"
    );
    let response = second
        .anonymous(Method::GET, "/api/lists")
        .basic_auth(ADMIN_USER, Some(&generated))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_configured_password_wins_over_the_generated_one() {
    let database = TestDatabase::create().await;
    let first = TestApp::spawn_on(database, None).await;
    let generated = first.generated_password.clone().unwrap();
    let second = TestApp::spawn_on(first.stop(), Some("configured")).await;
    let with = |password: &str| {
        second
            .anonymous(Method::GET, "/api/lists")
            .basic_auth(ADMIN_USER, Some(password))
            .send()
    };
    assert_eq!(with("configured").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        with(&generated).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_generated_password_is_never_stored_in_clear() {
    use sea_orm::{ConnectionTrait, Statement};
    let database = TestDatabase::create().await;
    let app = TestApp::spawn_on(database, None).await;
    let generated = app.generated_password.clone().unwrap();
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT value FROM settings",
        ))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let value: String = row.try_get("", "value").unwrap();
        assert!(!value.contains(&generated));
    }
}
