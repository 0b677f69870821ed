//! Property tests over HTTP: any query string on the listing and bulk-delete operations is answered with a
//! documented status and a JSON body, never a 500, and the server stays up.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;

use crate::helpers::{TestApp, read};

const PARAMETERS: &[&str] = &[
    "query",
    "tag",
    "id",
    "all",
    "page",
    "per_page",
    "order",
    "order_by",
    "status",
    "type",
    "optin",
    "minimal",
    "junk",
    "search",
    "list_id",
    "subscription_status",
];

/// A query string of up to 12 parameters, known or not, with values from small and plausible to large and odd.
fn query_string() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "[a-z0-9 %_!'\";-]{0,12}",
        "(all|true|false|asc|DESC|name|0|01|-1|999999999|1000000000|9223372036854775808)",
        "\\PC{0,30}",
        // listmonk-style SQL fragments, for the subscribers' `query`.
        "(subscribers\\.)?(id|email|name|status|attribs->>'k'|password) ?(=|<>|LIKE|IN|IS) ?('a%'|1|\\(1, 2\\)|NULL|\\(SELECT 1\\))( (AND|OR) )?",
        (1usize..1200).prop_map(|n| "w ".repeat(n)),
    ];
    let pair = (prop::sample::select(PARAMETERS), value).prop_map(|(name, value)| {
        let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        format!("{name}={value}")
    });
    prop::collection::vec(pair, 0..12).prop_map(|pairs| pairs.join("&"))
}

fn check(method: reqwest::Method, path: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(async {
        let app = TestApp::spawn().await;
        for name in ["a", "b c", "w"] {
            app.create_list(serde_json::json!({"name": name, "tags": ["t"]}))
                .await;
        }
        app.post_json(
            "/api/subscribers",
            &serde_json::json!({"email": "a@example.com", "lists": [1], "attribs": {"k": "a"}}),
        )
        .await;
        app
    });
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&query_string(), |query| {
            let (status, json) = runtime.block_on(async {
                let response = app
                    .request(method.clone(), &format!("{path}?{query}"))
                    .send()
                    .await
                    .unwrap();
                read(response).await
            });
            prop_assert!(
                status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                "{method} {path}?{query}: {status} {json}"
            );
            if status == StatusCode::BAD_REQUEST {
                prop_assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
            }
            Ok(())
        })
        .unwrap();
    let health = runtime.block_on(async { app.get("/health").await.status() });
    assert_eq!(health, StatusCode::OK);
}

#[test]
fn any_listing_query_is_answered_200_or_400() {
    check(reqwest::Method::GET, "/api/lists");
}

#[test]
fn any_bulk_delete_query_is_answered_200_or_400() {
    check(reqwest::Method::DELETE, "/api/lists");
}

#[test]
fn any_subscriber_listing_query_is_answered_200_or_400() {
    check(reqwest::Method::GET, "/api/subscribers");
}

#[test]
fn any_subscriber_bulk_delete_query_is_answered_200_or_400() {
    check(reqwest::Method::DELETE, "/api/subscribers");
}
