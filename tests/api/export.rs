//! `GET /api/subscribers/export`: the listing's selection as CSV, written as it is read.

use std::collections::BTreeMap;

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use roster::domain::{ListPermission, UserPermission};
use roster::service::{AccountService, RoleKind};
use serde_json::{Value, json};

use crate::helpers::{TestApp, read};
use crate::subscribers::create_subscriber;

const HEADER: [&str; 8] = [
    "uuid",
    "email",
    "name",
    "attributes",
    "status",
    "created_at",
    "updated_at",
    "lists",
];

/// The export's records (the header checked and left out), from `path` with `authorization` (the admin's when
/// `None`).
async fn export(app: &TestApp, path: &str, authorization: Option<&str>) -> Vec<Vec<String>> {
    let request = match authorization {
        Some(value) => app
            .anonymous(Method::GET, path)
            .header("Authorization", value),
        None => app.request(Method::GET, path),
    };
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert_eq!(response.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        response.headers()[CONTENT_DISPOSITION],
        "attachment; filename=\"subscribers.csv\""
    );
    let body = response.bytes().await.unwrap();
    let mut reader = csv::Reader::from_reader(&body[..]);
    assert_eq!(reader.headers().unwrap(), HEADER.as_slice());
    reader
        .records()
        .map(|record| record.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// What the export's record of `subscriber` (as `GET` answers it) must be.
fn expected_record(subscriber: &Value) -> Vec<String> {
    let text = |key: &str| subscriber[key].as_str().unwrap().to_owned();
    let lists: BTreeMap<String, Value> = subscriber["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["id"].to_string(), l["subscription_status"].clone()))
        .collect();
    vec![
        text("uuid"),
        text("email"),
        text("name"),
        subscriber["attribs"].to_string(),
        text("status"),
        text("created_at"),
        text("updated_at"),
        serde_json::to_string(&lists).unwrap(),
    ]
}

fn ids_in(records: &[Vec<String>], by_uuid: &BTreeMap<String, i64>) -> Vec<i64> {
    records.iter().map(|r| by_uuid[&r[0]]).collect()
}

#[tokio::test]
async fn an_export_is_every_subscriber_as_csv_in_id_order_with_its_lists() {
    let app = TestApp::spawn().await;
    let a = app.create_named("A").await;
    let b = app.create_named("B").await;
    let mut made = Vec::new();
    for (email, name, attribs, lists) in [
        ("plain@example.com", "Plain", json!({}), vec![a]),
        (
            "comma@example.com",
            "Last, First",
            json!({"city": "Pune, IN"}),
            vec![a, b],
        ),
        (
            "quote@example.com",
            "The \"Quoted\" One",
            json!({"q": "\"x\""}),
            vec![],
        ),
        (
            "lines@example.com",
            "Two\nLines",
            json!({"nested": {"k": [1, 2.5, null]}}),
            vec![b],
        ),
    ] {
        let created = create_subscriber(
            &app,
            json!({"email": email, "name": name, "attribs": attribs, "lists": lists}),
        )
        .await;
        made.push(created["id"].as_i64().unwrap());
    }
    let (status, _) = read(
        app.put_json(
            "/api/subscribers/lists",
            &json!({"ids": [made[1]], "action": "unsubscribe", "target_list_ids": [b]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let records = export(&app, "/api/subscribers/export", None).await;
    assert_eq!(records.len(), made.len());
    for (record, id) in records.iter().zip(&made) {
        let (_, subscriber) = read(app.get(&format!("/api/subscribers/{id}")).await).await;
        assert_eq!(
            record,
            &expected_record(&subscriber["data"]),
            "subscriber {id}"
        );
    }
    assert_eq!(
        records[1][7],
        format!(r#"{{"{a}":"unconfirmed","{b}":"unsubscribed"}}"#)
    );
}

#[tokio::test]
async fn an_export_selects_what_the_listing_selects_with_the_same_filters() {
    let app = TestApp::spawn().await;
    let a = app.create_named("A").await;
    let b = app.create_named("B").await;
    let mut by_uuid = BTreeMap::new();
    for i in 0..12 {
        let lists = match i % 3 {
            0 => vec![a],
            1 => vec![a, b],
            _ => vec![],
        };
        let created = create_subscriber(
            &app,
            json!({"email": format!("s{i}@example.com"), "name": format!("Sub {i}"), "lists": lists,
                   "attribs": {"n": i}, "preconfirm_subscriptions": i % 2 == 0}),
        )
        .await;
        by_uuid.insert(
            created["uuid"].as_str().unwrap().to_owned(),
            created["id"].as_i64().unwrap(),
        );
    }
    for filters in [
        String::new(),
        format!("list_id={a}"),
        format!("list_id={a}&list_id={b}"),
        format!("list_id={b}&subscription_status=confirmed"),
        "search=sub%201".to_owned(),
        "query=subscribers.attribs-%3E%3E'n'%20%3D%20'3'".to_owned(),
        "status=enabled".to_owned(),
    ] {
        let (status, page) = read(
            app.get(&format!(
                "/api/subscribers?per_page=all&order_by=id&order=asc&{filters}"
            ))
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{filters}: {page}");
        let listed: Vec<i64> = page["data"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect();
        assert!(!listed.is_empty(), "{filters} selects someone");
        let records = export(&app, &format!("/api/subscribers/export?{filters}"), None).await;
        assert_eq!(ids_in(&records, &by_uuid), listed, "{filters}");
    }
}

#[tokio::test]
async fn a_caller_reading_some_lists_exports_only_their_subscribers_and_subscriptions() {
    let app = TestApp::spawn().await;
    let a = app.create_named("A").await;
    let b = app.create_named("B").await;
    let on_a = create_subscriber(&app, json!({"email": "on-a@example.com", "lists": [a, b]})).await;
    create_subscriber(&app, json!({"email": "on-b@example.com", "lists": [b]})).await;
    let accounts = AccountService::new(app.db.clone());
    accounts
        .create_role("readers", RoleKind::User)
        .await
        .unwrap();
    accounts
        .set_user_permissions("readers", &[UserPermission::SubscribersGet], true)
        .await
        .unwrap();
    accounts.create_role("on-a", RoleKind::List).await.unwrap();
    accounts
        .set_list_permissions("on-a", ListPermission::Get, &[a], true)
        .await
        .unwrap();
    let token = accounts
        .create_user("reader", "readers", Some("on-a"))
        .await
        .unwrap()
        .token;
    let records = export(
        &app,
        "/api/subscribers/export",
        Some(&format!("token reader:{token}")),
    )
    .await;
    assert_eq!(records.len(), 1, "only the subscriber on A");
    assert_eq!(records[0][1], on_a["email"].as_str().unwrap());
    assert_eq!(
        records[0][7],
        format!(r#"{{"{a}":"unconfirmed"}}"#),
        "only A's subscription"
    );

    let response = app
        .anonymous(Method::GET, "/api/subscribers/export")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_large_export_is_written_as_it_is_read() {
    let app = TestApp::spawn().await;
    let first = create_subscriber(
        &app,
        json!({"email": "first@example.com", "attribs": {"k": "v"}}),
    )
    .await;
    let columns = "uuid, email, name, name_folded, attribs, status, created_at, updated_at";
    let values = "{uuid}, 'row' || v || '@example.com', 'Row ' || v, 'row ' || v, t.attribs, t.status, \
                  t.created_at, t.updated_at";
    crate::helpers::insert_copies(
        &app,
        "subscribers",
        first["id"].as_i64().unwrap(),
        1_500,
        columns,
        values,
    )
    .await;
    let response = app.get("/api/subscribers/export").await;
    assert!(
        response.headers().get(CONTENT_LENGTH).is_none(),
        "streamed, not built whole"
    );
    let body = response.bytes().await.unwrap();
    let mut reader = csv::Reader::from_reader(&body[..]);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 1_501);
    assert_eq!(&records[0][1], "first@example.com");
    assert!(records.iter().all(|r| &r[3] == r#"{"k":"v"}"#));
}

#[tokio::test]
async fn a_cell_a_spreadsheet_would_run_as_a_formula_is_written_as_text() {
    let app = TestApp::spawn().await;
    for (name, written) in [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1+1", "'+1+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("Plain = name", "Plain = name"),
    ] {
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        create_subscriber(&app, json!({"email": email, "name": name})).await;
        let records = export(&app, "/api/subscribers/export", None).await;
        let record = records.iter().find(|r| r[1] == email).unwrap();
        assert_eq!(record[2], written, "{name:?}");
    }
    let email = "=x@example.com";
    create_subscriber(&app, json!({"email": email})).await;
    let records = export(&app, "/api/subscribers/export", None).await;
    assert!(records.iter().any(|r| r[1] == "'=x@example.com"));
}

#[tokio::test]
async fn an_export_of_an_empty_selection_is_the_header_alone() {
    let app = TestApp::spawn().await;
    let list = app.create_named("Empty").await;
    create_subscriber(&app, json!({"email": "elsewhere@example.com"})).await;
    for path in [
        "/api/subscribers/export?search=nobody-has-this".to_owned(),
        format!("/api/subscribers/export?list_id={list}"),
    ] {
        assert!(export(&app, &path, None).await.is_empty(), "{path}");
    }
    let fresh = TestApp::spawn().await;
    assert!(
        export(&fresh, "/api/subscribers/export", None)
            .await
            .is_empty()
    );
}
