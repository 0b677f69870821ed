//! Every operation the code serves has a row in one table, which drives three attacks: who may call it (no
//! credentials, an API user without any permission, the admin), hostile input (one malformed request of its own,
//! and a URL past the bound), and a keyed write whose answer is lost (its key must say the write committed). An
//! operation added without its row fails `every_operation_served_has_a_row_in_the_attack_table`, so none ships
//! unattacked.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, ADMIN_USER, TestApp, read};
use crate::idempotency::{key_state, lose_answers};
use roster::service::{AccountService, RoleKind};

/// The rows a request names, fresh for each row.
struct Fixture {
    list: i64,
    list_uuid: String,
    subscriber: i64,
}

/// One operation: a request the admin is served, whether it needs credentials, and a hostile request with the
/// status it must get. `{list}`, `{subscriber}` and `{list_uuid}` in paths and bodies name the fixture's rows.
struct Row {
    operation: &'static str,
    method: Method,
    path: &'static str,
    body: Option<&'static str>,
    /// Served without credentials.
    public: bool,
    /// Served to any valid credentials, whatever their permissions.
    any_caller: bool,
    /// Served to a caller without permissions, with what it may see: nothing.
    scoped: bool,
    hostile: (&'static str, Option<&'static str>, StatusCode),
    /// The bodies' media type.
    content_type: &'static str,
}

const fn row(
    operation: &'static str,
    method: Method,
    path: &'static str,
    body: Option<&'static str>,
    hostile: (&'static str, Option<&'static str>, StatusCode),
) -> Row {
    Row {
        operation,
        method,
        path,
        body,
        public: false,
        any_caller: false,
        scoped: false,
        hostile,
        content_type: "application/json",
    }
}

/// The media type of `UPLOAD` and `BAD_UPLOAD`.
const MULTIPART: &str = "multipart/form-data; boundary=coverage";
/// An import of one subscriber onto the fixture's list.
const UPLOAD: &str = "--coverage\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n{\"lists\":[{list}]}\r\n\
    --coverage\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.csv\"\r\nContent-Type: text/csv\r\n\r\n\
    email\nimported@example.com\n\r\n--coverage--\r\n";
/// The same with `params` that are not JSON.
const BAD_UPLOAD: &str = "--coverage\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n{lists:1}\r\n\
    --coverage\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.csv\"\r\n\r\n\
    email\nimported@example.com\n\r\n--coverage--\r\n";

const BAD: StatusCode = StatusCode::BAD_REQUEST;
const RULE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

fn table() -> Vec<Row> {
    use Method as M;
    vec![
        Row {
            // Served with what it may see: nothing.
            scoped: true,
            ..row(
                "getLists",
                M::GET,
                "/api/lists",
                None,
                ("/api/lists?per_page=0", None, BAD),
            )
        },
        row(
            "createList",
            M::POST,
            "/api/lists",
            Some(r#"{"name": "new list"}"#),
            ("/api/lists", Some(r#"{"name": "a", "name": "b"}"#), BAD),
        ),
        row(
            "getListById",
            M::GET,
            "/api/lists/{list}",
            None,
            ("/api/lists/0", None, BAD),
        ),
        row(
            "updateList",
            M::PUT,
            "/api/lists/{list}",
            Some(r#"{"name": "renamed"}"#),
            ("/api/lists/{list}", Some(r#"{"name": "   "}"#), RULE),
        ),
        row(
            "deleteListById",
            M::DELETE,
            "/api/lists/{list}",
            None,
            ("/api/lists/abc", None, BAD),
        ),
        row(
            "deleteLists",
            M::DELETE,
            "/api/lists?id={list}",
            None,
            ("/api/lists?id=0", None, BAD),
        ),
        Row {
            public: true,
            ..row(
                "getPublicLists",
                M::GET,
                "/api/public/lists",
                None,
                // It reads nothing from the request: parameters it does not take are ignored.
                ("/api/public/lists?page=1&page=2", None, StatusCode::OK),
            )
        },
        row(
            "getSubscribers",
            M::GET,
            "/api/subscribers",
            None,
            ("/api/subscribers?query=1;DROP%20TABLE%20lists", None, BAD),
        ),
        row(
            "exportSubscribers",
            M::GET,
            "/api/subscribers/export",
            None,
            (
                "/api/subscribers/export?query=1;DROP%20TABLE%20lists",
                None,
                BAD,
            ),
        ),
        row(
            "createSubscriber",
            M::POST,
            "/api/subscribers",
            Some(r#"{"email": "new@example.com", "lists": [{list}]}"#),
            (
                "/api/subscribers",
                Some(r#"{"email": "not an e-mail"}"#),
                RULE,
            ),
        ),
        row(
            "getSubscriberById",
            M::GET,
            "/api/subscribers/{subscriber}",
            None,
            ("/api/subscribers/-1", None, BAD),
        ),
        row(
            "patchSubscriber",
            M::PATCH,
            "/api/subscribers/{subscriber}",
            Some(r#"{"name": "patched"}"#),
            (
                "/api/subscribers/{subscriber}",
                Some(r#"{"attribs": {"a": 1, "a": 2}}"#),
                BAD,
            ),
        ),
        row(
            "updateSubscriber",
            M::PUT,
            "/api/subscribers/{subscriber}",
            Some(r#"{"email": "replaced@example.com", "name": "replaced", "lists": [{list}]}"#),
            (
                "/api/subscribers/{subscriber}",
                Some(r#"{"email": "x@", "name": "x"}"#),
                RULE,
            ),
        ),
        row(
            "blocklistSubscriberById",
            M::PUT,
            "/api/subscribers/{subscriber}/blocklist",
            None,
            ("/api/subscribers/0/blocklist", None, BAD),
        ),
        row(
            "deleteSubscriberById",
            M::DELETE,
            "/api/subscribers/{subscriber}",
            None,
            ("/api/subscribers/9223372036854775808", None, BAD),
        ),
        row(
            "deleteSubscribers",
            M::DELETE,
            "/api/subscribers?id={subscriber}",
            None,
            ("/api/subscribers?id=abc", None, BAD),
        ),
        row(
            "manageSubscriberLists",
            M::PUT,
            "/api/subscribers/lists",
            Some(r#"{"ids": [{subscriber}], "action": "add", "target_list_ids": [{list}]}"#),
            (
                "/api/subscribers/lists",
                Some(r#"{"ids": [{subscriber}], "action": "adopt", "target_list_ids": [{list}]}"#),
                BAD,
            ),
        ),
        row(
            "blocklistSubscribers",
            M::PUT,
            "/api/subscribers/blocklist",
            Some(r#"{"ids": [{subscriber}]}"#),
            ("/api/subscribers/blocklist", Some(r#"{"ids": "all"}"#), BAD),
        ),
        Row {
            public: true,
            ..row(
                "createPublicSubscription",
                M::POST,
                "/api/public/subscription",
                Some(r#"{"email": "public@example.com", "list_uuids": ["{list_uuid}"]}"#),
                (
                    "/api/public/subscription",
                    Some(
                        r#"{"email": "public@example.com", "list_uuids": ["{list_uuid}"], "email": "b@example.com"}"#,
                    ),
                    BAD,
                ),
            )
        },
        row(
            "getImportStatus",
            M::GET,
            "/api/import/subscribers",
            None,
            // A GET's body is not read.
            ("/api/import/subscribers", Some("{"), StatusCode::OK),
        ),
        row(
            "getImportLogs",
            M::GET,
            "/api/import/subscribers/logs",
            None,
            ("/api/import/subscribers/logs", Some("{"), StatusCode::OK),
        ),
        row(
            "stopImport",
            M::DELETE,
            "/api/import/subscribers",
            None,
            // Nothing to stop: the job is cleared, whatever the body says.
            ("/api/import/subscribers", Some("{"), StatusCode::OK),
        ),
        // Last: the job it starts runs on after the request (the rows before compare everything around theirs).
        Row {
            content_type: MULTIPART,
            ..row(
                "importSubscribers",
                M::POST,
                "/api/import/subscribers",
                Some(UPLOAD),
                ("/api/import/subscribers", Some(BAD_UPLOAD), BAD),
            )
        },
        Row {
            any_caller: true,
            ..row(
                "getHealth",
                M::GET,
                "/api/health",
                None,
                // A GET's body is not read.
                ("/api/health", Some("{"), StatusCode::OK),
            )
        },
        Row {
            public: true,
            ..row(
                "getLiveness",
                M::GET,
                "/health",
                None,
                ("/health?x=1&x=2", Some("{"), StatusCode::OK),
            )
        },
    ]
}

/// The operation ids of the spec the code itself generates.
fn served_operations() -> BTreeSet<String> {
    let spec: Value = serde_json::from_str(&roster::api::generated_spec()).unwrap();
    let mut found = BTreeSet::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            if let Some(id) = operation["operationId"].as_str() {
                found.insert(id.to_owned());
            }
        }
    }
    found
}

#[test]
fn every_operation_served_has_a_row_in_the_attack_table() {
    let rows: BTreeSet<String> = table().iter().map(|r| r.operation.to_owned()).collect();
    assert_eq!(table().len(), rows.len(), "one row per operation");
    assert_eq!(served_operations(), rows);
}

async fn fixture(app: &TestApp) -> Fixture {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let list = app
        .create_list(json!({"name": format!("l{suffix}"), "type": "public"}))
        .await;
    let body = json!({"email": format!("s{suffix}@example.com"), "lists": [list["id"]]});
    let (status, subscriber) = read(app.post_json("/api/subscribers", &body).await).await;
    assert_eq!(status, StatusCode::OK, "{subscriber}");
    Fixture {
        list: list["id"].as_i64().unwrap(),
        list_uuid: list["uuid"].as_str().unwrap().to_owned(),
        subscriber: subscriber["data"]["id"].as_i64().unwrap(),
    }
}

fn fill(text: &str, at: &Fixture) -> String {
    text.replace("{list}", &at.list.to_string())
        .replace("{list_uuid}", &at.list_uuid)
        .replace("{subscriber}", &at.subscriber.to_string())
}

async fn call(
    app: &TestApp,
    (method, content_type): (&Method, &str),
    path: &str,
    body: Option<&str>,
    authorization: Option<&str>,
) -> (StatusCode, String) {
    call_keyed(app, (method, content_type), path, body, authorization, None).await
}

/// [`call`] with an `Idempotency-Key`, if any.
async fn call_keyed(
    app: &TestApp,
    (method, content_type): (&Method, &str),
    path: &str,
    body: Option<&str>,
    authorization: Option<&str>,
    key: Option<&str>,
) -> (StatusCode, String) {
    let mut request = app.anonymous(method.clone(), path);
    if let Some(header) = authorization {
        request = request.header("Authorization", header);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", content_type)
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap_or_default())
}

/// Everything an admin can read, to check that a refused request changed nothing.
async fn everything(app: &TestApp) -> (Value, Value) {
    let lists = app.list("per_page=all&order_by=id").await;
    let (_, subscribers) = read(app.get("/api/subscribers?per_page=all&order_by=id").await).await;
    (lists, subscribers)
}

#[tokio::test]
async fn every_operation_refuses_callers_without_its_permission_and_serves_the_admin() {
    let app = TestApp::spawn().await;
    let accounts = AccountService::new(app.db.clone());
    accounts
        .create_role("nothing", RoleKind::User)
        .await
        .unwrap();
    let token = accounts
        .create_user("powerless", "nothing", None)
        .await
        .unwrap()
        .token;
    let powerless = format!("token powerless:{token}");
    for row in table() {
        let at = fixture(&app).await;
        let path = fill(row.path, &at);
        let body = row.body.map(|b| fill(b, &at));
        let before = everything(&app).await;
        for (who, header, served) in [
            ("no credentials", None, row.public),
            (
                "no permission",
                Some(powerless.as_str()),
                row.public || row.any_caller || row.scoped,
            ),
        ] {
            let (status, text) = call(
                &app,
                (&row.method, row.content_type),
                &path,
                body.as_deref(),
                header,
            )
            .await;
            if served {
                assert!(
                    status.is_success(),
                    "{} {who}: {status} {text}",
                    row.operation
                );
                if row.scoped && header.is_some() {
                    let page: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(page["data"]["results"], json!([]), "{}", row.operation);
                    assert_eq!(page["data"]["total"], 0, "{}", row.operation);
                }
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {who}: {text}",
                    row.operation
                );
                let message: Value = serde_json::from_str(&text).unwrap();
                assert!(
                    message["message"].is_string(),
                    "{} {who}: {text}",
                    row.operation
                );
            }
        }
        if !row.public && !row.any_caller {
            assert_eq!(
                everything(&app).await,
                before,
                "{}: a refusal changed something",
                row.operation
            );
        }
        let (status, text) = call(
            &app,
            (&row.method, row.content_type),
            &path,
            body.as_deref(),
            Some(&admin()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{} as the admin: {text}",
            row.operation
        );
    }
}

#[tokio::test]
async fn every_operation_refuses_hostile_input_with_its_documented_status_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = admin();
    for row in table() {
        let at = fixture(&app).await;
        let before = everything(&app).await;
        let (path, body, expected) = row.hostile;
        let (path, body) = (fill(path, &at), body.map(|b| fill(b, &at)));
        let (status, text) = call(
            &app,
            (&row.method, row.content_type),
            &path,
            body.as_deref(),
            Some(&admin),
        )
        .await;
        assert_eq!(status, expected, "{} {path}: {text}", row.operation);
        if !status.is_success() {
            let message: Value = serde_json::from_str(&text).unwrap();
            assert!(message["message"].is_string(), "{}: {text}", row.operation);
        }
        // A URL past the bound is refused before the operation reads anything.
        let base = format!("{}?pad=", fill(row.path, &at).split('?').next().unwrap());
        let pad = "a".repeat(roster::api::URL_MAX_BYTES + 1 - base.len());
        let long = format!("{base}{pad}");
        let (status, text) = call(
            &app,
            (&row.method, row.content_type),
            &long,
            body.as_deref(),
            Some(&admin),
        )
        .await;
        assert!(
            [BAD, StatusCode::URI_TOO_LONG].contains(&status) && text.contains("61440"),
            "{}: {status} {text}",
            row.operation
        );
        assert_eq!(
            everything(&app).await,
            before,
            "{}: hostile input changed something",
            row.operation
        );
    }
}

#[tokio::test]
async fn every_keyed_write_that_changes_something_marks_its_key_in_the_same_commit() {
    // Without the mark, a retry after a lost answer (an instance dying between the commit and the answer's
    // record) would carry the write out a second time.
    let app = TestApp::spawn().await;
    lose_answers(&app).await;
    let admin = admin();
    // The upload takes no key (openapi.yaml): its file is not held to be compared.
    let writes = table()
        .into_iter()
        .filter(|row| row.method != Method::GET && row.content_type != MULTIPART);
    for row in writes {
        let at = fixture(&app).await;
        let before = everything(&app).await;
        let key = format!("lost-{}", row.operation);
        let (status, text) = call_keyed(
            &app,
            (&row.method, row.content_type),
            &fill(row.path, &at),
            row.body.map(|b| fill(b, &at)).as_deref(),
            Some(&admin),
            Some(&key),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}: {text}", row.operation);
        let state = key_state(&app, &key).await;
        assert!(
            state == "committed" || everything(&app).await == before,
            "{} wrote without marking its key (it says {state})",
            row.operation
        );
    }
}

fn admin() -> String {
    use base64::Engine;
    let pair = format!("{ADMIN_USER}:{ADMIN_PASSWORD}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}
