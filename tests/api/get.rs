use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, expect_error, read};

#[tokio::test]
async fn getting_a_missing_list_is_404() {
    let app = TestApp::spawn().await;
    for path in ["/api/lists/1", "/api/lists/9223372036854775807"] {
        let message = expect_error(app.get(path).await, StatusCode::NOT_FOUND).await;
        assert_eq!(message, "list not found");
    }
}

#[tokio::test]
async fn ids_that_are_not_positive_integers_are_400_on_every_single_list_operation() {
    let app = TestApp::spawn().await;
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        for id in [
            "0",
            "-1",
            "abc",
            "1.5",
            "9223372036854775808",
            "99999999999999999999999999",
            "%F0%9F%8E%89",
            "1%20",
        ] {
            let response = app
                .request(method.clone(), &format!("/api/lists/{id}"))
                .json(&serde_json::json!({"name": "x"}))
                .send()
                .await
                .unwrap();
            let message = expect_error(response, StatusCode::BAD_REQUEST).await;
            assert!(message.contains("list_id"), "{method} {id}: {message}");
        }
    }
}

#[tokio::test]
async fn a_list_reads_back_exactly_as_created() {
    let app = TestApp::spawn().await;
    let created = app
        .create_list(serde_json::json!({"name": "Same", "tags": ["b", "a"], "description": "d"}))
        .await;
    let (status, body) = read(
        app.request(Method::GET, &format!("/api/lists/{}", created["id"]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], created);
}
