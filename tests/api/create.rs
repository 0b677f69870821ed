use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_error, read, trickle};

fn assert_timestamp_format(value: &Value) {
    let text = value.as_str().expect("a timestamp string");
    // 2020-03-07T06:31:06.072483+00:00
    assert_eq!(text.len(), 32, "{text}");
    assert_eq!(&text[19..20], ".", "{text}");
    assert!(text[20..26].chars().all(|c| c.is_ascii_digit()), "{text}");
    assert!(text.ends_with("+00:00"), "{text}");
    chrono::DateTime::parse_from_rfc3339(text).unwrap();
}

#[tokio::test]
async fn creating_fills_in_the_documented_defaults() {
    let app = TestApp::spawn().await;
    let list = app.create_list(json!({"name": "Plain"})).await;
    assert_eq!(list["type"], "private");
    assert_eq!(list["optin"], "single");
    assert_eq!(list["status"], "active");
    assert_eq!(list["tags"], json!([]));
    assert_eq!(list["description"], "");
    assert_eq!(list["subscriber_count"], 0);
    assert_eq!(list["subscriber_statuses"], json!({}));
}

#[tokio::test]
async fn created_lists_carry_a_v4_uuid_and_timestamps_in_the_documented_format() {
    let app = TestApp::spawn().await;
    let list = app.create_list(json!({"name": "Stamped"})).await;
    let uuid = uuid::Uuid::parse_str(list["uuid"].as_str().unwrap()).unwrap();
    assert_eq!(uuid.get_version_num(), 4);
    assert_timestamp_format(&list["created_at"]);
    assert_timestamp_format(&list["updated_at"]);
    let again = app.create_list(json!({"name": "Stamped"})).await;
    assert_ne!(
        again["uuid"], list["uuid"],
        "names are not unique, uuids are"
    );
}

#[tokio::test]
async fn names_are_trimmed_and_tags_normalised() {
    let app = TestApp::spawn().await;
    let list = app
        .create_list(json!({
            "name": "  Weekly  news \t",
            "tags": [" My  Tag ", "", "x", "My-Tag", "X", "   ", "\tlast one\n"]
        }))
        .await;
    assert_eq!(list["name"], "Weekly  news");
    assert_eq!(list["tags"], json!(["My-Tag", "x", "X", "last-one"]));
}

#[tokio::test]
async fn lists_can_be_created_from_a_urlencoded_form_with_repeated_tags() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::POST, "/api/lists")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("name=Form+list&type=public&optin=double&tags=a&tags=b&description=d%26e")
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = &body["data"];
    assert_eq!(list["name"], "Form list");
    assert_eq!(list["type"], "public");
    assert_eq!(list["optin"], "double");
    assert_eq!(list["tags"], json!(["a", "b"]));
    assert_eq!(list["description"], "d&e");
}

#[tokio::test]
async fn a_single_form_tag_is_a_one_element_list() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::POST, "/api/lists")
        .form(&[("name", "One tag"), ("tags", "solo")])
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["tags"], json!(["solo"]));
}

#[tokio::test]
async fn lists_can_be_created_from_multipart_form_data() {
    let app = TestApp::spawn().await;
    let form = reqwest::multipart::Form::new()
        .text("name", "Multipart list")
        .text("status", "archived")
        .text("tags", "one")
        .text("tags", "two");
    let response = app
        .request(Method::POST, "/api/lists")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "archived");
    assert_eq!(body["data"]["tags"], json!(["one", "two"]));
}

#[tokio::test]
async fn hostile_strings_are_stored_and_returned_verbatim() {
    let app = TestApp::spawn().await;
    for name in [
        "100% _off_ \\ \"quoted\" 'single' ; DROP TABLE lists; --",
        "emoji 🎉📬 and ünïcödé",
        "<b>&amp;</b> & < >",
        "%",
        "_",
        "\\",
    ] {
        let list = app
            .create_list(json!({"name": name, "description": name, "tags": [name]}))
            .await;
        assert_eq!(list["name"], name);
        assert_eq!(list["description"], name);
        let fetched = read(app.get(&format!("/api/lists/{}", list["id"])).await)
            .await
            .1;
        assert_eq!(fetched["data"]["name"], name);
    }
}

#[tokio::test]
async fn output_is_not_html_escaped() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json("/api/lists", &json!({"name": "a & b <c>"}))
        .await;
    let text = response.text().await.unwrap();
    assert!(text.contains("a & b <c>"), "{text}");
}

#[tokio::test]
async fn unknown_fields_and_client_supplied_ids_are_ignored() {
    let app = TestApp::spawn().await;
    let list = app
        .create_list(
            json!({"name": "x", "id": 999, "uuid": "nope", "subscriber_count": 7, "extra": true}),
        )
        .await;
    assert_ne!(list["id"], 999);
    assert_ne!(list["uuid"], "nope");
    assert_eq!(list["subscriber_count"], 0);
}

#[tokio::test]
async fn bodies_that_break_the_list_rules_get_422() {
    let app = TestApp::spawn().await;
    let too_many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    for body in [
        json!({"name": ""}),
        json!({"name": "   \t\n"}),
        json!({"name": "x".repeat(2001)}),
        json!({"name": "y".repeat(10_000)}),
        json!({"name": "ok", "tags": ["t".repeat(101)]}),
        json!({"name": "ok", "tags": too_many}),
        json!({"name": "ok", "description": "d".repeat(65_537)}),
        json!({"name": "nul\u{0}char"}),
        json!({"name": "ok", "tags": ["nul\u{0}"]}),
    ] {
        let response = app.post_json("/api/lists", &body).await;
        expect_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    assert_eq!(app.list("").await["total"], 0, "nothing was created");
}

#[tokio::test]
async fn limits_are_inclusive() {
    let app = TestApp::spawn().await;
    let tags: Vec<String> = (0..100).map(|i| format!("{i}{}", "t".repeat(90))).collect();
    let list = app
        .create_list(
            json!({"name": "é".repeat(2000), "tags": tags, "description": "d".repeat(60_000)}),
        )
        .await;
    assert_eq!(list["tags"].as_array().unwrap().len(), 100);
    assert_eq!(list["name"].as_str().unwrap().chars().count(), 2000);
}

/// `tag=…&tag=…`, percent-encoded.
fn tag_query<T: AsRef<str>>(tags: impl IntoIterator<Item = T>) -> String {
    let url =
        reqwest::Url::parse_with_params("http://x/", tags.into_iter().map(|t| ("tag", t))).unwrap();
    url.query().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_created_list_is_found_by_each_of_its_tags_and_by_all_of_them() {
    let app = TestApp::spawn().await;
    let mut tags: Vec<String> = (0..98).map(|i| format!("t{i}")).collect();
    tags.extend(["it's".to_owned(), "50%_\\off".to_owned()]);
    let list = app
        .create_list(json!({"name": "Tagged", "tags": tags}))
        .await;
    app.create_list(json!({"name": "Other", "tags": ["t0"]}))
        .await;
    assert_eq!(list["tags"].as_array().unwrap().len(), 100);
    for tag in [&tags[0], &tags[97], &tags[98], &tags[99]] {
        let found = app.names(&tag_query([tag])).await;
        // Newest first.
        let expected: &[&str] = if tag == "t0" {
            &["Other", "Tagged"]
        } else {
            &["Tagged"]
        };
        assert_eq!(found, expected, "tag {tag}");
    }
    let every = tag_query(&tags);
    assert_eq!(app.names(&every).await, ["Tagged"]);
    assert_eq!(app.list(&every).await["total"], 1);
}

#[tokio::test]
async fn unreadable_bodies_get_400() {
    let app = TestApp::spawn().await;
    let cases: [(&str, &str); 10] = [
        ("application/json", "{\"name\": null}"),
        (
            "application/json",
            "{\"name\": \"x\", \"description\": null}",
        ),
        ("application/json", "{"),
        ("application/json", "[]"),
        ("application/json", "{\"type\": \"public\"}"),
        ("application/json", "{\"name\": 5}"),
        ("application/json", "{\"name\": \"x\", \"type\": \"bogus\"}"),
        (
            "application/json",
            "{\"name\": \"x\", \"tags\": \"notalist\"}",
        ),
        (
            "application/json",
            "{\"name\": \"x\", \"status\": \"ACTIVE\"}",
        ),
        ("application/x-www-form-urlencoded", "type=public"),
    ];
    for (content_type, body) in cases {
        let response = app
            .request(Method::POST, "/api/lists")
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
    let response = app
        .request(Method::POST, "/api/lists")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("name=x&optin=triple")
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn unsupported_media_types_get_415() {
    let app = TestApp::spawn().await;
    for content_type in ["text/plain", "application/xml", "image/png"] {
        let response = app
            .request(Method::POST, "/api/lists")
            .header("Content-Type", content_type)
            .body("name=x")
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    let response = app
        .request(Method::POST, "/api/lists")
        .body("{\"name\": \"no content type\"}")
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_even_without_a_length() {
    let app = TestApp::spawn().await;
    let big = json!({"name": "x", "description": "d".repeat(300 * 1024)});
    expect_error(
        app.post_json("/api/lists", &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    // Chunked, so no Content-Length announces the size.
    let bytes = serde_json::to_vec(&big).unwrap();
    let chunks = bytes.chunks(8192).map(<[u8]>::to_vec).collect();
    let response = app
        .request(Method::POST, "/api/lists")
        .header("Content-Type", "application/json")
        .body(trickle(chunks, std::time::Duration::ZERO))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn json_keys_are_case_sensitive_and_extra_media_type_parameters_are_fine() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::POST, "/api/lists")
        .header("Content-Type", "application/json; charset=utf-8")
        .body("{\"name\": \"with charset\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
