use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, expect_error, read};

async fn update(
    app: &TestApp,
    id: &serde_json::Value,
    body: serde_json::Value,
) -> serde_json::Value {
    let (status, json) = read(app.put_json(&format!("/api/lists/{id}"), &body).await).await;
    assert_eq!(status, StatusCode::OK, "{body}: {json}");
    json["data"].clone()
}

#[tokio::test]
async fn fields_left_out_keep_their_value() {
    let app = TestApp::spawn().await;
    let list = app
        .create_list(json!({"name": "Old", "type": "public", "optin": "double", "tags": ["t"], "description": "d"}))
        .await;
    let updated = update(&app, &list["id"], json!({"name": "New"})).await;
    assert_eq!(updated["name"], "New");
    for key in [
        "type",
        "optin",
        "status",
        "tags",
        "description",
        "uuid",
        "created_at",
    ] {
        assert_eq!(updated[key], list[key], "{key}");
    }
}

#[tokio::test]
async fn fields_sent_are_set_including_empty_ones() {
    let app = TestApp::spawn().await;
    let list = app
        .create_list(json!({"name": "Full", "tags": ["a", "b"], "description": "text"}))
        .await;
    let updated = update(
        &app,
        &list["id"],
        json!({"tags": [], "description": "", "status": "archived", "type": "public", "optin": "double"}),
    )
    .await;
    assert_eq!(updated["tags"], json!([]));
    assert_eq!(updated["description"], "");
    assert_eq!(updated["status"], "archived");
    assert_eq!(updated["type"], "public");
    assert_eq!(updated["optin"], "double");
    assert_eq!(updated["name"], "Full");
}

#[tokio::test]
async fn nulls_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let list = app
        .create_list(json!({"name": "Kept", "tags": ["t"]}))
        .await;
    for body in [
        json!({"name": null}),
        json!({"tags": null, "description": "x"}),
        json!({"type": null}),
    ] {
        let response = app
            .put_json(&format!("/api/lists/{}", list["id"]), &body)
            .await;
        let message = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert!(message.contains("null"), "{message}");
    }
    let (_, body) = read(app.get(&format!("/api/lists/{}", list["id"])).await).await;
    assert_eq!(body["data"], list);
}

#[tokio::test]
async fn empty_form_fields_are_empty_strings_as_in_json() {
    let app = TestApp::spawn().await;
    let list = app
        .create_list(json!({"name": "Formed", "tags": ["a", "b"], "description": "text"}))
        .await;
    let path = format!("/api/lists/{}", list["id"]);
    let put_form = |pairs: &'static [(&'static str, &'static str)]| {
        app.request(Method::PUT, &path).form(pairs).send()
    };
    let (status, body) = read(
        put_form(&[("description", ""), ("tags", "")])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["description"], "");
    assert_eq!(body["data"]["tags"], json!([]));
    expect_error(
        put_form(&[("name", "")]).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    expect_error(
        put_form(&[("type", "")]).await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let multipart = reqwest::multipart::Form::new().text("name", "");
    let response = app
        .request(Method::PUT, &path)
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn updated_at_moves_only_when_something_changes() {
    let app = TestApp::spawn().await;
    let list = app
        .create_list(json!({"name": "Stable", "tags": ["x"]}))
        .await;
    let same = update(
        &app,
        &list["id"],
        json!({"name": "  Stable ", "tags": ["x"]}),
    )
    .await;
    assert_eq!(same["updated_at"], list["updated_at"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let changed = update(&app, &list["id"], json!({"description": "now"})).await;
    assert_ne!(changed["updated_at"], list["updated_at"]);
    assert_eq!(changed["created_at"], list["created_at"]);
    assert!(changed["updated_at"].as_str() > list["updated_at"].as_str());
}

#[tokio::test]
async fn tag_changes_are_visible_to_the_tag_filter() {
    let app = TestApp::spawn().await;
    let list = app
        .create_list(json!({"name": "Tagged", "tags": ["old"]}))
        .await;
    update(&app, &list["id"], json!({"tags": ["new", "other"]})).await;
    assert_eq!(app.list("tag=old").await["total"], 0);
    assert_eq!(app.names("tag=new&tag=other").await, ["Tagged"]);
}

#[tokio::test]
async fn lists_can_be_updated_from_a_urlencoded_form() {
    let app = TestApp::spawn().await;
    let list = app.create_list(json!({"name": "Formed"})).await;
    let response = app
        .request(Method::PUT, &format!("/api/lists/{}", list["id"]))
        .form(&[("tags", "a"), ("tags", "b c"), ("optin", "double")])
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["tags"], json!(["a", "b-c"]));
    assert_eq!(body["data"]["optin"], "double");
    assert_eq!(body["data"]["name"], "Formed");
}

#[tokio::test]
async fn updating_a_missing_list_is_404() {
    let app = TestApp::spawn().await;
    expect_error(
        app.put_json("/api/lists/42", &json!({"name": "x"})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn invalid_updates_get_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    let list = app.create_list(json!({"name": "Guarded"})).await;
    for body in [
        json!({"name": " "}),
        json!({"name": "n".repeat(2001)}),
        json!({"tags": ["t".repeat(101)]}),
        json!({"description": "\u{0}"}),
    ] {
        let response = app
            .put_json(&format!("/api/lists/{}", list["id"]), &body)
            .await;
        expect_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let (_, body) = read(app.get(&format!("/api/lists/{}", list["id"])).await).await;
    assert_eq!(body["data"], list);
}

#[tokio::test]
async fn unreadable_updates_get_400_or_415() {
    let app = TestApp::spawn().await;
    let list = app.create_list(json!({"name": "Guarded"})).await;
    let path = format!("/api/lists/{}", list["id"]);
    for body in ["{", "{\"type\": \"nope\"}", "{\"tags\": [1]}"] {
        let response = app
            .request(Method::PUT, &path)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
    let response = app.request(Method::PUT, &path).send().await.unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;
    let response = app
        .request(Method::PUT, &path)
        .header("Content-Type", "text/csv")
        .body("name,x")
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let big = json!({"description": "d".repeat(300 * 1024)});
    expect_error(
        app.put_json(&path, &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}
