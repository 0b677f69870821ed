use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, expect_error};

/// Every operation, with a path and body that would otherwise succeed or fail on the data.
const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/api/lists"),
    ("POST", "/api/lists"),
    ("DELETE", "/api/lists?id=1"),
    ("DELETE", "/api/lists?query=x"),
    ("GET", "/api/lists/1"),
    ("PUT", "/api/lists/1"),
    ("DELETE", "/api/lists/1"),
    ("GET", "/api/public/lists"),
    ("GET", "/api/subscribers"),
    ("GET", "/api/subscribers?list_id=1&search=x"),
    ("POST", "/api/subscribers"),
    ("DELETE", "/api/subscribers?id=1"),
    ("GET", "/api/subscribers/1"),
    ("PUT", "/api/subscribers/1"),
    ("PATCH", "/api/subscribers/1"),
    ("DELETE", "/api/subscribers/1"),
    ("PUT", "/api/subscribers/lists"),
    ("PUT", "/api/subscribers/blocklist"),
    ("PUT", "/api/subscribers/1/blocklist"),
    ("POST", "/api/public/subscription"),
];

async fn call(app: &TestApp, method: &str, path: &str) -> reqwest::Response {
    app.request(Method::from_bytes(method.as_bytes()).unwrap(), path)
        // One body that every operation can read (unknown fields are ignored).
        .json(&json!({
            "name": "x",
            "tags": ["t"],
            "email": "a@example.com",
            "ids": [1],
            "action": "add",
            "target_list_ids": [1],
            "list_uuids": ["2f1a0e4c-3d2b-4c1a-9e8f-7a6b5c4d3e2f"],
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn unknown_routes_are_404_with_a_json_message() {
    let app = TestApp::spawn().await;
    for path in [
        "/nope",
        "/api/lists/1/extra",
        "/api/list",
        "/api",
        "/api/lists/",
    ] {
        let message = expect_error(app.get(path).await, StatusCode::NOT_FOUND).await;
        assert!(message.contains("unknown endpoint"), "{path}: {message}");
    }
    let response = app.anonymous(Method::GET, "/nope").send().await.unwrap();
    expect_error(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_wrong_method_is_405_with_an_allow_header() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        ("PATCH", "/api/lists", "GET, POST, DELETE"),
        ("PUT", "/api/lists", "GET, POST, DELETE"),
        ("POST", "/api/lists/1", "GET, PUT, DELETE"),
        ("PATCH", "/api/lists/abc", "GET, PUT, DELETE"),
        ("POST", "/api/public/lists", "GET"),
        ("DELETE", "/health", "GET"),
        ("POST", "/openapi.json", "GET"),
    ] {
        let response = app
            .anonymous(Method::from_bytes(method.as_bytes()).unwrap(), path)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers().get("allow").map(|v| v.to_str().unwrap()),
            Some(allow),
            "{method} {path}"
        );
        expect_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
    }
}

#[tokio::test]
async fn an_unreachable_database_is_503_with_retry_after_on_every_operation() {
    let app = TestApp::spawn().await;
    app.db.clone().close().await.unwrap();
    app.reads.clone().close().await.unwrap();
    let mut operations = OPERATIONS.to_vec();
    operations.push(("GET", "/api/health"));
    for (method, path) in operations {
        let response = call(&app, method, path).await;
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse::<u32>().unwrap());
        assert!(retry_after.is_some_and(|s| s > 0), "{method} {path}");
        expect_error(response, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    // Liveness does not depend on the database.
    let response = app.anonymous(Method::GET, "/health").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_broken_database_is_500_without_leaking_details() {
    let app = TestApp::spawn().await;
    for table in [
        "subscriber_lists",
        "list_subscriber_counts",
        "subscribers",
        "list_permissions",
        "list_tags",
        "lists",
    ] {
        app.execute_sql(&format!("DROP TABLE {table}")).await;
    }
    for (method, path) in OPERATIONS {
        let message = expect_error(
            call(&app, method, path).await,
            StatusCode::INTERNAL_SERVER_ERROR,
        )
        .await;
        assert_eq!(message, "internal server error", "{method} {path}");
    }
}

#[tokio::test]
async fn rows_that_break_the_schema_are_500_not_garbage() {
    let app = TestApp::spawn().await;
    let id = app.create_named("soon corrupt").await;
    app.execute_sql("UPDATE lists SET type = 'temporary'").await;
    for (method, path) in [
        ("GET", "/api/lists".to_owned()),
        ("GET", format!("/api/lists/{id}")),
        ("PUT", format!("/api/lists/{id}")),
    ] {
        let response = call(&app, method, &path).await;
        expect_error(response, StatusCode::INTERNAL_SERVER_ERROR).await;
    }
}

#[tokio::test]
async fn errors_are_json_with_only_a_message() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/lists/77").await;
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next(),
        Some("application/json")
    );
    expect_error(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_missing_body_is_a_400_naming_what_that_operation_requires() {
    let app = TestApp::spawn().await;
    for (method, path, names) in [
        (Method::POST, "/api/lists", "`name`"),
        (Method::POST, "/api/subscribers", "`email`"),
        (Method::PUT, "/api/subscribers/lists", "`target_list_ids`"),
        (Method::PUT, "/api/subscribers/blocklist", "`ids`"),
    ] {
        let response = app.request(method, path).send().await.unwrap();
        let message = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert!(message.contains(names), "{path}: {message}");
    }
}
