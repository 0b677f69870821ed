use reqwest::StatusCode;

use crate::helpers::{TestApp, expect_error, ids, read};

#[tokio::test]
async fn deleting_a_missing_list_is_404() {
    let app = TestApp::spawn().await;
    let id = app.create_named("once").await;
    assert_eq!(
        app.delete(&format!("/api/lists/{id}")).await.status(),
        StatusCode::OK
    );
    expect_error(
        app.delete(&format!("/api/lists/{id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn deleting_by_ids_ignores_ids_that_do_not_exist() {
    let app = TestApp::spawn().await;
    let a = app.create_named("a").await;
    let b = app.create_named("b").await;
    let (status, _) = read(
        app.delete(&format!("/api/lists?id={a}&id=999&id={a}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&app.list("").await), [b]);
}

#[tokio::test]
async fn deleting_by_query_uses_the_same_literal_matching_as_listing() {
    let app = TestApp::spawn().await;
    app.create_named("50% off").await;
    app.create_named("500 off").await;
    app.create_named("Newsletter").await;
    let (status, _) = read(app.delete("/api/lists?query=0%25").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.names("order_by=name&order=asc").await,
        ["500 off", "Newsletter"]
    );
    read(app.delete("/api/lists?query=news").await).await;
    assert_eq!(app.names("").await, ["500 off"]);
}

#[tokio::test]
async fn deleting_with_all_true_removes_every_list_of_every_status() {
    let app = TestApp::spawn().await;
    app.create_named("a").await;
    app.create_list(serde_json::json!({"name": "b", "status": "archived"}))
        .await;
    read(app.delete("/api/lists?all=true").await).await;
    assert_eq!(app.list("").await["total"], 0);
}

#[tokio::test]
async fn ids_win_over_query_and_all() {
    let app = TestApp::spawn().await;
    let a = app.create_named("alpha").await;
    app.create_named("beta").await;
    read(
        app.delete(&format!("/api/lists?id={a}&query=beta&all=true"))
            .await,
    )
    .await;
    assert_eq!(app.names("").await, ["beta"]);
}

#[tokio::test]
async fn deleting_with_nothing_to_select_is_400_and_deletes_nothing() {
    let app = TestApp::spawn().await;
    app.create_named("safe").await;
    for query in [
        "",
        "?query=",
        "?query=%20%20",
        "?all=false",
        "?all=1",
        "?id=",
    ] {
        let response = app.delete(&format!("/api/lists{query}")).await;
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
    for query in [
        "?id=abc",
        "?id=0",
        "?id=-5",
        "?id=1&id=x",
        "?id=99999999999999999999",
    ] {
        let response = app.delete(&format!("/api/lists{query}")).await;
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
    assert_eq!(app.names("").await, ["safe"]);
}

#[tokio::test]
async fn deleting_a_list_removes_it_from_tag_filters() {
    let app = TestApp::spawn().await;
    let id = app
        .create_list(serde_json::json!({"name": "t", "tags": ["x"]}))
        .await["id"]
        .clone();
    read(app.delete(&format!("/api/lists/{id}")).await).await;
    assert_eq!(app.list("tag=x").await["total"], 0);
}
