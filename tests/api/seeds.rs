//! Every example request of the Lists document, as written there.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, expect_error, ids, read};

async fn seed_lists(app: &TestApp, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 1..=n {
        ids.push(app.create_named(&format!("List {i}")).await);
    }
    ids
}

#[tokio::test]
async fn get_all_lists_with_page_and_per_page() {
    let app = TestApp::spawn().await;
    seed_lists(&app, 3).await;
    let data = app.list("page=1&per_page=100").await;
    assert_eq!(data["total"], 3);
    assert_eq!(data["per_page"], 100);
    assert_eq!(data["page"], 1);
    assert_eq!(data["results"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn get_only_active_lists() {
    let app = TestApp::spawn().await;
    app.create_list(json!({"name": "on", "status": "active"}))
        .await;
    app.create_list(json!({"name": "off", "status": "archived"}))
        .await;
    assert_eq!(app.names("status=active&per_page=100").await, ["on"]);
}

#[tokio::test]
async fn get_archived_lists_with_minimal_data() {
    let app = TestApp::spawn().await;
    app.create_list(json!({"name": "on"})).await;
    app.create_list(json!({"name": "off", "status": "archived"}))
        .await;
    let data = app.list("status=archived&minimal=true&per_page=all").await;
    assert_eq!(data["per_page"], 0);
    assert_eq!(data["total"], 1);
    let list = &data["results"][0];
    assert_eq!(list["name"], "off");
    assert!(list.get("subscriber_count").is_none());
    assert!(list.get("subscriber_statuses").is_none());
}

#[tokio::test]
async fn get_public_lists_without_credentials() {
    let app = TestApp::spawn().await;
    let public = app
        .create_list(json!({"name": "Opt-in list", "type": "public", "optin": "double"}))
        .await;
    app.create_list(json!({"name": "private"})).await;
    app.create_list(json!({"name": "gone", "type": "public", "status": "archived"}))
        .await;
    let response = app
        .anonymous(Method::GET, "/api/public/lists")
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([{"uuid": public["uuid"], "name": "Opt-in list"}])
    );
}

#[tokio::test]
async fn get_a_specific_list() {
    let app = TestApp::spawn().await;
    let created = seed_lists(&app, 5).await;
    assert_eq!(created[4], 5);
    let (status, body) = read(app.get("/api/lists/5").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "success");
    let list = &body["data"];
    assert_eq!(list["id"], 5);
    assert_eq!(list["name"], "List 5");
    assert_eq!(list["tags"], json!([]));
    assert_eq!(list["subscriber_count"], 0);
    assert_eq!(list["subscriber_statuses"], json!({}));
}

#[tokio::test]
async fn create_a_new_list_as_in_the_example_response() {
    let app = TestApp::spawn().await;
    let (status, body) = read(
        app.post_json(
            "/api/lists",
            &json!({
                "name": "Test list",
                "type": "public",
                "optin": "single",
                "tags": [],
                "description": "This is a test list"
            }),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let list = &body["data"];
    for (key, value) in [
        ("name", json!("Test list")),
        ("type", json!("public")),
        ("optin", json!("single")),
        ("status", json!("active")),
        ("tags", json!([])),
        ("subscriber_count", json!(0)),
        ("description", json!("This is a test list")),
    ] {
        assert_eq!(list[key], value, "{key}");
    }
    assert_eq!(list["created_at"], list["updated_at"]);
}

#[tokio::test]
async fn create_with_the_documented_bare_request_is_a_400_because_name_is_required() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::POST, "/api/lists")
        .send()
        .await
        .unwrap();
    let message = expect_error(response, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("name"), "{message}");
}

#[tokio::test]
async fn update_a_list_with_form_fields() {
    let app = TestApp::spawn().await;
    seed_lists(&app, 4).await;
    app.create_list(
        json!({"name": "Test list", "type": "public", "description": "This is a test list"}),
    )
    .await;
    let form = reqwest::multipart::Form::new()
        .text("name", "modified test list")
        .text("type", "private");
    let response = app
        .request(Method::PUT, "/api/lists/5")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "modified test list");
    assert_eq!(body["data"]["type"], "private");
    assert_eq!(body["data"]["description"], "This is a test list");
}

#[tokio::test]
async fn delete_a_specific_list() {
    let app = TestApp::spawn().await;
    seed_lists(&app, 2).await;
    let (status, body) = read(app.delete("/api/lists/1").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"data": true, "status": "success"}));
    assert_eq!(ids(&app.list("").await), [2]);
}

#[tokio::test]
async fn delete_multiple_lists_by_ids() {
    let app = TestApp::spawn().await;
    seed_lists(&app, 13).await;
    let (status, body) = read(app.delete("/api/lists?id=10&id=11&id=12").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], true);
    let remaining = ids(&app.list("per_page=all&order_by=id&order=asc").await);
    assert_eq!(remaining, [1, 2, 3, 4, 5, 6, 7, 8, 9, 13]);
}

#[tokio::test]
async fn delete_multiple_lists_by_search_query() {
    let app = TestApp::spawn().await;
    app.create_named("My test list").await;
    app.create_named("Test List two").await;
    app.create_named("Newsletter").await;
    let (status, _) = read(app.delete("/api/lists?query=test%20list").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.names("").await, ["Newsletter"]);
}
