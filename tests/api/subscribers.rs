//! Subscribers and subscriptions over HTTP, and the lists' counts that follow them.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, brief, expect_error, ids, read};

/// Creates a subscriber and returns its JSON.
pub async fn create_subscriber(app: &TestApp, body: Value) -> Value {
    let (status, json) = read(app.post_json("/api/subscribers", &body).await).await;
    assert_eq!(status, StatusCode::OK, "creating {body}: {json}");
    json["data"].clone()
}

pub async fn subscriber_id(app: &TestApp, email: &str, lists: &[i64]) -> i64 {
    create_subscriber(app, json!({ "email": email, "lists": lists })).await["id"]
        .as_i64()
        .unwrap()
}

/// Every list's `subscriber_count` and `subscriber_statuses`, as the API shows them.
pub async fn shown_counts(app: &TestApp) -> BTreeMap<i64, (i64, BTreeMap<String, i64>)> {
    counts_shown_by(app, "/api/lists?per_page=all").await
}

/// The `subscriber_count` and `subscriber_statuses` of the lists on the page `path` answers.
async fn counts_shown_by(app: &TestApp, path: &str) -> BTreeMap<i64, (i64, BTreeMap<String, i64>)> {
    let (status, page) = read(app.get(path).await).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|list| {
            let statuses = list["subscriber_statuses"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
                .collect();
            (
                list["id"].as_i64().unwrap(),
                (list["subscriber_count"].as_i64().unwrap(), statuses),
            )
        })
        .collect()
}

/// The same, counted from the subscriptions themselves.
pub async fn recounted(app: &TestApp) -> BTreeMap<i64, (i64, BTreeMap<String, i64>)> {
    let backend = app.db.get_database_backend();
    let lists = app
        .db
        .query_all_raw(Statement::from_string(backend, "SELECT id FROM lists"))
        .await
        .unwrap();
    let mut counts: BTreeMap<i64, (i64, BTreeMap<String, i64>)> = lists
        .iter()
        .map(|row| (row.try_get::<i64>("", "id").unwrap(), Default::default()))
        .collect();
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT list_id, status, COUNT(*) AS n FROM subscriber_lists GROUP BY list_id, status",
        ))
        .await
        .unwrap();
    for row in rows {
        let list: i64 = row.try_get("", "list_id").unwrap();
        let status: String = row.try_get("", "status").unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        let entry = counts.entry(list).or_default();
        entry.0 += n;
        entry.1.insert(status, n);
    }
    counts
}

/// The counts every list shows are exactly those of its subscriptions.
pub async fn assert_counts_exact(app: &TestApp, after: &str) {
    assert_eq!(
        shown_counts(app).await,
        recounted(app).await,
        "after {after}"
    );
}

fn statuses(list: &Value) -> Value {
    list["subscriber_statuses"].clone()
}

async fn list_json(app: &TestApp, id: i64) -> Value {
    let (status, json) = read(app.get(&format!("/api/lists/{id}")).await).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["data"].clone()
}

pub async fn subscriber(app: &TestApp, id: i64) -> Value {
    let (status, json) = read(app.get(&format!("/api/subscribers/{id}")).await).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["data"].clone()
}

/// `{list id: subscription status}` of a subscriber.
pub fn memberships(subscriber: &Value) -> BTreeMap<i64, String> {
    subscriber["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_i64().unwrap(),
                l["subscription_status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn request(app: &TestApp, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    read(app.request(method, path).json(&body).send().await.unwrap()).await
}

#[tokio::test]
async fn the_lists_documents_example_shows_two_subscribers_and_counts_follow_every_write() {
    let app = TestApp::spawn().await;
    let list = app.create_named("Default list").await;
    let other = app.create_named("Other").await;
    let john = subscriber_id(&app, "john@example.com", &[list]).await;
    let anon = create_subscriber(
        &app,
        json!({"email": "anon@example.com", "lists": [list], "preconfirm_subscriptions": true}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let shown = list_json(&app, list).await;
    assert_eq!(shown["subscriber_count"], 2);
    assert_eq!(statuses(&shown), json!({"unconfirmed": 1, "confirmed": 1}));
    assert_counts_exact(&app, "two subscribers").await;

    let lists_add = json!({"ids": [john, anon], "action": "add", "target_list_ids": [other]});
    let (status, body) = request(&app, Method::PUT, "/api/subscribers/lists", lists_add).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_counts_exact(&app, "add").await;
    assert_eq!(list_json(&app, other).await["subscriber_count"], 2);

    let unsubscribe = json!({"ids": [anon], "action": "unsubscribe", "target_list_ids": [other]});
    request(&app, Method::PUT, "/api/subscribers/lists", unsubscribe).await;
    assert_counts_exact(&app, "unsubscribe").await;
    assert_eq!(
        statuses(&list_json(&app, other).await),
        json!({"unconfirmed": 1, "unsubscribed": 1})
    );

    let remove = json!({"ids": [john], "action": "remove", "target_list_ids": [other]});
    request(&app, Method::PUT, "/api/subscribers/lists", remove).await;
    assert_counts_exact(&app, "remove").await;
    assert_eq!(list_json(&app, other).await["subscriber_count"], 1);

    let (status, _) = request(
        &app,
        Method::PUT,
        &format!("/api/subscribers/{anon}/blocklist"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_counts_exact(&app, "blocklist").await;
    assert_eq!(
        statuses(&list_json(&app, list).await),
        json!({"unconfirmed": 1, "unsubscribed": 1})
    );

    let (status, body) = request(
        &app,
        Method::PUT,
        &format!("/api/subscribers/{john}"),
        json!({"email": "john@example.com", "lists": [other]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        memberships(&body["data"])
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [other]
    );
    assert_counts_exact(&app, "PUT replacing lists").await;

    let (status, _) = request(
        &app,
        Method::PATCH,
        &format!("/api/subscribers/{john}"),
        json!({"lists": [list, other], "preconfirm_subscriptions": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_counts_exact(&app, "PATCH with lists").await;

    expect_ok(app.delete(&format!("/api/subscribers/{john}")).await).await;
    assert_counts_exact(&app, "delete subscriber").await;

    expect_ok(app.delete(&format!("/api/lists/{list}")).await).await;
    assert_counts_exact(&app, "delete list").await;
    assert_eq!(
        memberships(&subscriber(&app, anon).await).len(),
        1,
        "anon stays, on `other` only"
    );
}

async fn expect_ok(response: reqwest::Response) -> Value {
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn a_new_subscriber_has_a_lowercase_email_a_default_name_and_an_exact_list_count() {
    let app = TestApp::spawn().await;
    let list = app.create_named("news").await;
    let created = create_subscriber(
        &app,
        json!({"email": "  John.Doe@Example.COM ", "lists": [list, list], "attribs": {"city": "Bengaluru"}}),
    )
    .await;
    assert_eq!(created["email"], "john.doe@example.com");
    assert_eq!(created["name"], "john.doe");
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["attribs"], json!({"city": "Bengaluru"}));
    assert_eq!(
        memberships(&created),
        BTreeMap::from([(list, "unconfirmed".into())])
    );
    let entry = &created["lists"][0];
    for key in [
        "uuid",
        "name",
        "type",
        "optin",
        "status",
        "tags",
        "description",
        "created_at",
        "updated_at",
    ] {
        assert!(!entry[key].is_null(), "list entry lacks {key}: {entry}");
    }
    assert_eq!(entry["subscription_meta"], json!({}));
    assert_eq!(list_json(&app, list).await["subscriber_count"], 1);
    assert_eq!(
        subscriber(&app, created["id"].as_i64().unwrap()).await,
        created
    );
}

#[tokio::test]
async fn a_blocklisted_subscribers_new_subscriptions_are_unsubscribed() {
    let app = TestApp::spawn().await;
    let list = app.create_named("news").await;
    let created = create_subscriber(
        &app,
        json!({"email": "b@example.com", "status": "blocklisted", "lists": [list], "preconfirm_subscriptions": true}),
    )
    .await;
    assert_eq!(
        memberships(&created),
        BTreeMap::from([(list, "unsubscribed".into())])
    );
}

#[tokio::test]
async fn invalid_emails_names_and_attribs_are_422_and_nothing_is_created() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"email": "not-an-email"}),
        json!({"email": "John <john@example.com>"}),
        json!({"email": "   "}),
        json!({"email": format!("{}@example.com", "a".repeat(10_000))}),
        json!({"email": "é@exämple.com\u{0}"}),
        json!({"email": "a@example.com", "name": "n".repeat(2001)}),
        json!({"email": "a@example.com", "attribs": [1, 2]}),
        json!({"email": "a@example.com", "attribs": "text"}),
        json!({"email": "a@example.com", "attribs": {"k": "v".repeat(70_000)}}),
    ] {
        let message = expect_error(
            app.post_json("/api/subscribers", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(!message.is_empty());
    }
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({ "k": deep });
    }
    let message = expect_error(
        app.post_json(
            "/api/subscribers",
            &json!({"email": "a@example.com", "attribs": deep}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(message.contains("16 levels"), "{message}");
    // 1,025 values in 4 KB: small as JSON, large as held in memory.
    let message = expect_error(
        app.post_json(
            "/api/subscribers",
            &json!({"email": "a@example.com", "attribs": {"zeros": vec![0; 1024]}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(message.contains("1024 values"), "{message}");
    let (_, page) = read(app.get("/api/subscribers").await).await;
    assert_eq!(page["data"]["total"], 0);
    let body = json!({"email": "a@example.com", "attribs": {"zeros": vec![0; 1023]}});
    assert_eq!(
        app.post_json("/api/subscribers", &body).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn unreadable_subscriber_bodies_are_400_413_or_415() {
    let app = TestApp::spawn().await;
    expect_error(
        app.post_json("/api/subscribers", &json!({"name": "no email"}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        app.post_json(
            "/api/subscribers",
            &json!({"email": "a@b.c", "status": "gone"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        app.post_json("/api/subscribers", &json!({"email": "a@b.c", "lists": "1"}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let too_many = json!({"email": "a@b.c", "lists": (1..=1001).collect::<Vec<_>>()});
    let message = expect_error(
        app.post_json("/api/subscribers", &too_many).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("1000"), "{message}");
    let big = json!({"email": "a@b.c", "attribs": {"k": "v".repeat(300 * 1024)}});
    expect_error(
        app.post_json("/api/subscribers", &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    for (method, path) in [
        (Method::POST, "/api/subscribers"),
        (Method::PUT, "/api/subscribers/1"),
        (Method::PUT, "/api/subscribers/lists"),
    ] {
        let response = app
            .request(method.clone(), path)
            .header("Content-Type", "text/plain")
            .body("email=a@b.c")
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    // Forms carry the text fields, as listmonk binds them.
    let response = app
        .request(Method::POST, "/api/subscribers")
        .form(&[
            ("email", "form@example.com"),
            ("name", "Form"),
            ("status", "disabled"),
        ])
        .send()
        .await
        .unwrap();
    let created = expect_ok(response).await;
    assert_eq!(created["data"]["status"], "disabled");
}

#[tokio::test]
async fn a_duplicate_email_is_409_whatever_its_case_on_create_and_change() {
    let app = TestApp::spawn().await;
    subscriber_id(&app, "taken@example.com", &[]).await;
    let other = subscriber_id(&app, "other@example.com", &[]).await;
    let message = expect_error(
        app.post_json("/api/subscribers", &json!({"email": "TAKEN@example.com"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(message.contains("already exists"), "{message}");
    let (status, _) = request(
        &app,
        Method::PATCH,
        &format!("/api/subscribers/{other}"),
        json!({"email": "Taken@Example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = request(
        &app,
        Method::PUT,
        &format!("/api/subscribers/{other}"),
        json!({"email": "taken@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(subscriber(&app, other).await["email"], "other@example.com");
    // Folded character by character: a word-final capital sigma is the same letter as any other.
    subscriber_id(&app, "ασ@example.com", &[]).await;
    let message = expect_error(
        app.post_json("/api/subscribers", &json!({"email": "ΑΣ@example.com"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(message.contains("already exists"), "{message}");
}

#[tokio::test]
async fn unknown_ids_in_a_write_are_422_naming_them_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let list = app.create_named("news").await;
    let id = subscriber_id(&app, "a@example.com", &[list]).await;
    let message = expect_error(
        app.post_json(
            "/api/subscribers",
            &json!({"email": "b@example.com", "lists": [list, 9999, 8888]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        message.contains("9999") && message.contains("8888"),
        "{message}"
    );
    let (_, page) = read(app.get("/api/subscribers?search=b%40example").await).await;
    assert_eq!(page["data"]["total"], 0, "nothing was created");
    let (status, body) = request(
        &app,
        Method::PUT,
        &format!("/api/subscribers/{id}"),
        json!({"email": "a@example.com", "lists": [9999]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for body in [
        json!({"ids": [id, 7777], "action": "add", "target_list_ids": [list]}),
        json!({"ids": [id], "action": "add", "target_list_ids": [list, 9999]}),
    ] {
        let message = expect_error(
            app.put_json("/api/subscribers/lists", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            message.contains("7777") || message.contains("9999"),
            "{message}"
        );
    }
    let message = expect_error(
        app.put_json("/api/subscribers/blocklist", &json!({"ids": [id, 7777]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(message.contains("7777"), "{message}");
    let kept = subscriber(&app, id).await;
    assert_eq!(
        kept["status"], "enabled",
        "the blocklist was all or nothing"
    );
    assert_eq!(
        memberships(&kept),
        BTreeMap::from([(list, "unconfirmed".into())])
    );
    assert_counts_exact(&app, "refused writes").await;
}

#[tokio::test]
async fn missing_subscribers_are_404_and_bad_ids_400() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::GET, "/api/subscribers/77"),
        (Method::PATCH, "/api/subscribers/77"),
        (Method::PUT, "/api/subscribers/77"),
        (Method::DELETE, "/api/subscribers/77"),
        (Method::PUT, "/api/subscribers/77/blocklist"),
    ] {
        let (status, body) = request(
            &app,
            method.clone(),
            path,
            json!({"email": "x@example.com"}),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["message"], "subscriber not found");
        let bad = path.replace("77", "0");
        let (status, body) = request(
            &app,
            method.clone(),
            &bad,
            json!({"email": "x@example.com"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {bad}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("subscriber id"),
            "{body}"
        );
    }
    expect_error(
        app.delete("/api/subscribers").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        app.delete("/api/subscribers?id=abc").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let many: String = (1..=1001).map(|i| format!("id={i}&")).collect();
    expect_error(
        app.delete(&format!("/api/subscribers?{many}")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A bulk delete ignores ids that do not exist, so a retry succeeds.
    expect_ok(app.delete("/api/subscribers?id=77&id=78").await).await;
}

#[tokio::test]
async fn put_replaces_the_lists_and_attribs_while_patch_merges() {
    let app = TestApp::spawn().await;
    let a = app.create_named("a").await;
    let b = app.create_named("b").await;
    let created = create_subscriber(
        &app,
        json!({"email": "s@example.com", "name": "Sam", "lists": [a, b], "attribs": {"x": 1, "nested": {"y": 2}}}),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let (status, patched) = request(
        &app,
        Method::PATCH,
        &format!("/api/subscribers/{id}"),
        json!({"attribs": {"nested": {"z": 3}, "w": true}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["data"]["attribs"],
        json!({"nested": {"z": 3}, "w": true, "x": 1})
    );
    assert_eq!(
        memberships(&patched["data"]).len(),
        2,
        "PATCH without lists keeps them"
    );
    assert_eq!(patched["data"]["name"], "Sam");

    let (_, cleared) = request(
        &app,
        Method::PATCH,
        &format!("/api/subscribers/{id}"),
        json!({"attribs": null}),
    )
    .await;
    assert_eq!(cleared["data"]["attribs"], json!({}));

    let (status, replaced) = request(
        &app,
        Method::PUT,
        &format!("/api/subscribers/{id}"),
        json!({"email": "S2@example.com", "attribs": {"only": 1}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    let data = &replaced["data"];
    assert_eq!(data["email"], "s2@example.com");
    assert_eq!(data["name"], "Sam", "PUT keeps a name left out");
    assert_eq!(data["attribs"], json!({"only": 1}));
    assert_eq!(
        data["lists"],
        json!([]),
        "PUT without lists removes every subscription"
    );
    assert_ne!(data["updated_at"], created["updated_at"]);
    assert_counts_exact(&app, "PUT").await;
}

#[tokio::test]
async fn edits_keep_subscription_states_as_listmonk_does() {
    let app = TestApp::spawn().await;
    let a = app.create_named("a").await;
    let b = app.create_named("b").await;
    let id = subscriber_id(&app, "s@example.com", &[a, b]).await;
    request(
        &app,
        Method::PUT,
        "/api/subscribers/lists",
        json!({"ids": [id], "action": "unsubscribe", "target_list_ids": [b]}),
    )
    .await;
    let (_, body) = request(
        &app,
        Method::PATCH,
        &format!("/api/subscribers/{id}"),
        json!({"lists": [a, b], "preconfirm_subscriptions": true}),
    )
    .await;
    assert_eq!(
        memberships(&body["data"]),
        BTreeMap::from([(a, "confirmed".into()), (b, "unsubscribed".into())]),
        "preconfirm confirms unconfirmed subscriptions and never revives an unsubscribe"
    );
    let (_, body) = request(
        &app,
        Method::PATCH,
        &format!("/api/subscribers/{id}"),
        json!({"status": "blocklisted"}),
    )
    .await;
    assert_eq!(
        memberships(&body["data"]),
        BTreeMap::from([(a, "unsubscribed".into()), (b, "unsubscribed".into())])
    );
    assert_counts_exact(&app, "blocklisting by PATCH").await;
}

#[tokio::test]
async fn adding_without_a_status_keeps_existing_ones_and_with_one_sets_it() {
    let app = TestApp::spawn().await;
    let list = app.create_named("news").await;
    let confirmed = create_subscriber(
        &app,
        json!({"email": "c@example.com", "lists": [list], "preconfirm_subscriptions": true}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let fresh = subscriber_id(&app, "f@example.com", &[]).await;
    let add = json!({"ids": [confirmed, fresh, fresh], "action": "add", "target_list_ids": [list]});
    expect_ok(app.put_json("/api/subscribers/lists", &add).await).await;
    assert_eq!(
        memberships(&subscriber(&app, confirmed).await)[&list],
        "confirmed"
    );
    assert_eq!(
        memberships(&subscriber(&app, fresh).await)[&list],
        "unconfirmed"
    );
    let add = json!({"ids": [confirmed, fresh], "action": "add", "target_list_ids": [list], "status": "unsubscribed"});
    expect_ok(app.put_json("/api/subscribers/lists", &add).await).await;
    assert_eq!(
        statuses(&list_json(&app, list).await),
        json!({"unsubscribed": 2})
    );
    for bad in [
        json!({"ids": [], "action": "add", "target_list_ids": [list]}),
        json!({"ids": [1], "action": "add", "target_list_ids": []}),
        json!({"ids": [1], "action": "move", "target_list_ids": [list]}),
        json!({"ids": [1], "action": "add", "target_list_ids": [list], "status": "maybe"}),
    ] {
        expect_error(
            app.put_json("/api/subscribers/lists", &bad).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let (status, _) = request(
        &app,
        Method::PUT,
        "/api/subscribers/lists",
        json!({"ids": [0], "action": "add", "target_list_ids": [list]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn blocklisting_many_unsubscribes_every_subscription() {
    let app = TestApp::spawn().await;
    let a = app.create_named("a").await;
    let b = app.create_named("b").await;
    let one = subscriber_id(&app, "one@example.com", &[a, b]).await;
    let two = subscriber_id(&app, "two@example.com", &[a]).await;
    expect_ok(
        app.put_json("/api/subscribers/blocklist", &json!({"ids": [one, two]}))
            .await,
    )
    .await;
    for id in [one, two] {
        let s = subscriber(&app, id).await;
        assert_eq!(s["status"], "blocklisted");
        assert!(
            memberships(&s)
                .values()
                .all(|status| status == "unsubscribed")
        );
    }
    assert_eq!(
        statuses(&list_json(&app, a).await),
        json!({"unsubscribed": 2})
    );
    expect_error(
        app.put_json("/api/subscribers/blocklist", &json!({"ids": []}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn listing_finds_each_subscriber_once_and_counts_every_match() {
    let app = TestApp::spawn().await;
    let a = app.create_named("a").await;
    let b = app.create_named("b").await;
    for i in 0..7 {
        let lists: Vec<i64> = if i % 2 == 0 { vec![a, b] } else { vec![a] };
        create_subscriber(&app, json!({"email": format!("user{i}@example.com"), "name": format!("User {i}"), "lists": lists})).await;
    }
    subscriber_id(&app, "loner@example.org", &[]).await;
    let page = |query: &'static str| {
        let app = &app;
        async move {
            let (status, body) = read(app.get(&format!("/api/subscribers?{query}")).await).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body["data"].clone()
        }
    };
    let both = page_for(
        &app,
        &format!("list_id={a}&list_id={b}&per_page=3&order_by=email&order=asc"),
    )
    .await;
    assert_eq!(
        both["total"], 7,
        "each subscriber once, whatever lists matched"
    );
    assert_eq!(both["results"].as_array().unwrap().len(), 3);
    assert_eq!(both["results"][0]["email"], "user0@example.com");
    assert_eq!(page("per_page=all").await["total"], 8);
    assert_eq!(page("per_page=all").await["per_page"], 0);
    let found = page("search=USER%205").await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["search"], "USER 5");
    assert_eq!(page("search=example.org").await["total"], 1);
    assert_eq!(page("search=%25").await["total"], 0, "`%` is literal");
    assert_eq!(
        page_for(
            &app,
            &format!("list_id={b}&subscription_status=unconfirmed")
        )
        .await["total"],
        4
    );
    assert_eq!(
        page_for(&app, &format!("list_id={b}&subscription_status=confirmed")).await["total"],
        0
    );
    assert_eq!(page("status=blocklisted").await["total"], 0);
    assert_eq!(
        page("page=9").await["total"],
        8,
        "total also past the last page"
    );
    let message = expect_error(
        app.get("/api/subscribers?subscription_status=confirmed")
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("list_id"), "{message}");
    expect_error(
        app.get("/api/subscribers?order_by=password").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        app.get("/api/subscribers?list_id=0").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

async fn page_for(app: &TestApp, query: &str) -> Value {
    let (status, body) = read(app.get(&format!("/api/subscribers?{query}")).await).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body["data"].clone()
}

#[tokio::test]
async fn every_page_of_lists_shows_each_lists_counts_as_a_recount_has_them() {
    let app = TestApp::spawn().await;
    let mut lists = Vec::new();
    for i in 0..125 {
        lists.push(app.create_named(&format!("list {i:03}")).await);
    }
    // Subscriber i on every list whose index is a multiple of i + 1, then unsubscribed from some of them: lists
    // with different counts, and statuses of two kinds.
    let mut subscribers = Vec::new();
    for i in 0..12 {
        let on: Vec<i64> = lists.iter().copied().step_by(i + 1).collect();
        subscribers.push(subscriber_id(&app, &format!("s{i}@example.com"), &on).await);
    }
    let unsubscribe = json!({"ids": &subscribers[..4], "action": "unsubscribe",
                             "target_list_ids": lists.iter().copied().step_by(5).collect::<Vec<_>>()});
    let (status, body) = request(&app, Method::PUT, "/api/subscribers/lists", unsubscribe).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = recounted(&app).await;
    // Pages 1 to 7 of 20: from page 6 the page's ids are read first (100 rows skipped), except by count.
    for order_by in ["id", "name", "created_at", "subscriber_count"] {
        let mut seen = BTreeMap::new();
        for page in 1..=7 {
            let path = format!("/api/lists?order_by={order_by}&per_page=20&page={page}");
            seen.extend(counts_shown_by(&app, &path).await);
        }
        assert_eq!(seen, expected, "ordered by {order_by}");
    }
}

#[tokio::test]
async fn lists_sort_by_subscriber_count_and_minimal_reads_no_counts() {
    let app = TestApp::spawn().await;
    let small = app.create_named("small").await;
    let big = app.create_named("big").await;
    let empty = app.create_named("empty").await;
    for i in 0..3 {
        subscriber_id(&app, &format!("s{i}@example.com"), &[big]).await;
    }
    subscriber_id(&app, "x@example.com", &[small]).await;
    let ids = |page: &Value| -> Vec<i64> {
        page["data"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_i64().unwrap())
            .collect()
    };
    let (_, desc) = read(
        app.get("/api/lists?order_by=subscriber_count&order=desc")
            .await,
    )
    .await;
    assert_eq!(ids(&desc), [big, small, empty]);
    let (_, asc) = read(
        app.get("/api/lists?order_by=subscriber_count&order=asc&per_page=1&page=2")
            .await,
    )
    .await;
    assert_eq!(
        ids(&asc),
        [small],
        "sorted over the whole result before paging"
    );
    let (_, minimal) = read(app.get("/api/lists?minimal=true").await).await;
    for list in minimal["data"]["results"].as_array().unwrap() {
        assert!(
            list.get("subscriber_count").is_none() && list.get("subscriber_statuses").is_none()
        );
    }
}

#[tokio::test]
async fn public_subscription_takes_only_public_active_lists_and_gives_no_oracle() {
    let app = TestApp::spawn().await;
    let open = app
        .create_list(json!({"name": "open", "type": "public", "optin": "double"}))
        .await;
    let single = app
        .create_list(json!({"name": "single", "type": "public"}))
        .await;
    let private = app.create_list(json!({"name": "private"})).await;
    let archived = app
        .create_list(json!({"name": "old", "type": "public", "status": "archived"}))
        .await;
    let subscribe = |body: Value| {
        let app = &app;
        async move {
            read(
                app.anonymous(Method::POST, "/api/public/subscription")
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, body) =
        subscribe(json!({"email": "New@Example.com", "name": "New", "list_uuids": [open["uuid"]]}))
            .await;
    assert_eq!(
        (status, body.clone()),
        (
            StatusCode::OK,
            json!({"data": {"has_optin": true}, "status": "success"})
        )
    );
    let mut refusals = Vec::new();
    for list in [&private, &archived] {
        refusals.push(
            subscribe(
                json!({"email": "x@example.com", "list_uuids": [open["uuid"], list["uuid"]]}),
            )
            .await,
        );
    }
    refusals.push(subscribe(json!({"email": "x@example.com", "list_uuids": ["2f1a0e4c-3d2b-4c1a-9e8f-7a6b5c4d3e2f"]})).await);
    for refusal in &refusals {
        assert_eq!(
            refusal, &refusals[0],
            "one answer for private, archived and unknown lists"
        );
    }
    assert_eq!(refusals[0].0, StatusCode::BAD_REQUEST);
    let (_, page) = read(app.get("/api/subscribers?search=x%40example").await).await;
    assert_eq!(
        page["data"]["total"], 0,
        "a refused subscription writes nothing"
    );

    // A known e-mail only gains subscriptions; its name is not taken over.
    let (_, found) = read(app.get("/api/subscribers?search=new%40example.com").await).await;
    let id = found["data"]["results"][0]["id"].as_i64().unwrap();
    let (status, body) = subscribe(
        json!({"email": "new@example.com", "name": "Attacker", "list_uuids": [single["uuid"]]}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"data": {"has_optin": false}, "status": "success"})
        )
    );
    let known = subscriber(&app, id).await;
    assert_eq!(known["name"], "New");
    assert_eq!(memberships(&known).len(), 2);

    // A blocklisted e-mail gets the same answer and nothing changes.
    expect_ok(
        app.put_json("/api/subscribers/blocklist", &json!({"ids": [id]}))
            .await,
    )
    .await;
    let before = subscriber(&app, id).await;
    let (status, _) = subscribe(
        json!({"email": "new@example.com", "list_uuids": [open["uuid"], single["uuid"]]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(subscriber(&app, id).await, before);

    // HTML forms send `l` once per list.
    let uuid = single["uuid"].as_str().unwrap();
    let response = app
        .anonymous(Method::POST, "/api/public/subscription")
        .form(&[("email", "form@example.com"), ("l", uuid)])
        .send()
        .await
        .unwrap();
    expect_ok(response).await;
    expect_error(
        app.anonymous(Method::POST, "/api/public/subscription")
            .json(&json!({"email": "y@example.com"}))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        app.anonymous(Method::POST, "/api/public/subscription")
            .json(&json!({"email": "y@example.com", "list_uuids": ["nope"]}))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        app.anonymous(Method::POST, "/api/public/subscription")
            .json(&json!({"email": "not an email", "list_uuids": [single["uuid"]]}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_counts_exact(&app, "public subscriptions").await;
}

#[tokio::test]
async fn listmonks_sql_query_is_translated_never_run() {
    let app = TestApp::spawn().await;
    let list = app.create_named("news").await;
    let ann = create_subscriber(&app, json!({"email": "ann+x@example.com", "name": "Ann", "lists": [list], "attribs": {"city": "Bengaluru", "age": 41, "stack": {"lang": "Go"}}})).await;
    create_subscriber(
        &app,
        json!({"email": "bob@example.org", "name": "Bob", "attribs": {"city": "Paris", "age": 30}}),
    )
    .await;
    let uuid = ann["uuid"].as_str().unwrap();
    let id = ann["id"].as_i64().unwrap();
    let found = |query: String| {
        let app = &app;
        async move {
            let response = app
                .request(Method::GET, "/api/subscribers")
                .query(&[("query", query.as_str()), ("per_page", "all")])
                .send()
                .await
                .unwrap();
            let (status, body) = read(response).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            assert_eq!(body["data"]["query"], query.trim());
            body["data"]["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // What the PyPI `listmonk` client sends to find one subscriber.
    assert_eq!(
        found("subscribers.email='ann+x@example.com'".into()).await,
        ["Ann"]
    );
    assert_eq!(
        found("subscribers.email='Ann+X@Example.com'".into()).await,
        ["Ann"],
        "e-mails are stored lowercase"
    );
    assert_eq!(found(format!("subscribers.uuid='{uuid}'")).await, ["Ann"]);
    assert_eq!(found(format!("subscribers.id={id}")).await, ["Ann"]);
    assert_eq!(
        found("subscribers.attribs->>'city' = 'Bengaluru' AND subscribers.name LIKE 'A%'".into())
            .await,
        ["Ann"]
    );
    assert_eq!(
        found("subscribers.attribs->'stack'->>'lang' ILIKE '%go%'".into()).await,
        ["Ann"]
    );
    assert_eq!(found("attribs->>'age' > 35".into()).await, ["Ann"]);
    assert_eq!(
        found("LOWER(subscribers.name) IN ('bob', 'carol') OR name IS NULL".into()).await,
        ["Bob"]
    );
    assert_eq!(
        found("NOT (subscribers.status = 'blocklisted')  ".into()).await,
        ["Bob", "Ann"]
    );
    assert_eq!(
        found("subscribers.name LIKE 'a%'".into()).await,
        Vec::<String>::new(),
        "LIKE is case-sensitive"
    );
    for hostile in [
        "1=1; DROP TABLE lists",
        "subscribers.id IN (SELECT id FROM api_users)",
        "password = 'x'",
        "subscribers.email = 'a' -- comment",
        "pg_sleep(10) IS NULL",
        "subscribers.id::text = '1'",
        &format!("{}subscribers.id = 1{}", "(".repeat(40), ")".repeat(40)),
        &vec!["subscribers.id = 1"; 300].join(" AND "),
        &"x".repeat(2001),
    ] {
        let response = app
            .request(Method::GET, "/api/subscribers")
            .query(&[("query", hostile)])
            .send()
            .await
            .unwrap();
        let message = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert!(
            message.starts_with("`query`") || message.contains("2000"),
            "{hostile}: {message}"
        );
    }
    assert_counts_exact(&app, "queries").await;
}

#[tokio::test]
async fn null_and_ids_below_one_are_unreadable_except_a_patch_clearing_attribs() {
    let app = TestApp::spawn().await;
    let id = subscriber_id(&app, "n@example.com", &[]).await;
    for field in [
        "name",
        "status",
        "lists",
        "attribs",
        "preconfirm_subscriptions",
    ] {
        let body = json!({"email": "a@b.c", field: null});
        let message = expect_error(
            app.post_json("/api/subscribers", &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(message.contains("null"), "POST {field}: {message}");
        let (status, _) = request(&app, Method::PUT, &format!("/api/subscribers/{id}"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "PUT {field}");
    }
    let (status, _) = request(
        &app,
        Method::PATCH,
        &format!("/api/subscribers/{id}"),
        json!({"lists": null}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = request(
        &app,
        Method::PATCH,
        &format!("/api/subscribers/{id}"),
        json!({"attribs": null}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for body in [
        json!({"email": "a@b.c", "lists": [0]}),
        json!({"email": "a@b.c", "lists": [-3]}),
    ] {
        expect_error(
            app.post_json("/api/subscribers", &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    expect_error(
        app.put_json("/api/subscribers/blocklist", &json!({"ids": [0]}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn extreme_numbers_in_attribs_read_back_exactly() {
    // PostgreSQL keeps jsonb numbers as exact decimals (1.7976931348623157e308 comes back as 309 digits); reading
    // them must round to the same double, not overflow.
    let app = TestApp::spawn().await;
    let attribs = json!({"max": 1.797_693_134_862_315_7e308, "min": -1.797_693_134_862_315_7e308, "tiny": 5e-324, "big": 3.009149979867288e16});
    let created =
        create_subscriber(&app, json!({"email": "n@example.com", "attribs": attribs})).await;
    let id = created["id"].as_i64().unwrap();
    let (_, page) = read(app.get("/api/subscribers").await).await;
    for shown in [
        &created["attribs"],
        &subscriber(&app, id).await["attribs"],
        &page["data"]["results"][0]["attribs"],
    ] {
        for (key, value) in attribs.as_object().unwrap() {
            // The same number (an integral one may come back written as an integer, as from listmonk).
            assert_eq!(shown[key].as_f64(), value.as_f64(), "{key}: {shown}");
        }
    }
}

/// Every id of a listing in its order, read page by page (`page=`) and by cursor (`after=`), both checked
/// against the whole listing read at once.
async fn assert_pages_match(app: &TestApp, query: &str, per_page: usize) {
    let whole = ids(&page_for(app, &format!("{query}&per_page=all")).await);
    let mut paged = Vec::new();
    for page in 1.. {
        let found = page_for(app, &format!("{query}&per_page={per_page}&page={page}")).await;
        assert_eq!(found["total"], whole.len(), "{query}, page {page}");
        let ids = ids(&found);
        if ids.is_empty() {
            break;
        }
        paged.extend(ids);
    }
    assert_eq!(paged, whole, "{query}: pages");
    let mut walked = Vec::new();
    let mut next = page_for(app, &format!("{query}&per_page={per_page}")).await;
    loop {
        walked.extend(ids(&next));
        let Some(cursor) = next["next"].as_str() else {
            break;
        };
        assert_eq!(ids(&next).len(), per_page, "only a full page has a next");
        next = page_for(app, &format!("{query}&per_page={per_page}&after={cursor}")).await;
        assert_eq!(next["total"], whole.len(), "{query}: total with a cursor");
    }
    assert_eq!(walked, whole, "{query}: cursor walk");
}

#[tokio::test]
async fn deep_pages_and_cursors_agree_with_the_whole_ordering_before_and_after_writes() {
    let app = TestApp::spawn().await;
    let list = app.create_named("walked").await;
    let mut created = Vec::new();
    for i in 0..130 {
        // Names repeat, so ties on the sort column are broken by id.
        let body = json!({
            "email": format!("w{:03}@example.com", (i * 37) % 130),
            "name": format!("Walker {}", i % 7),
            "status": if i % 5 == 0 { "disabled" } else { "enabled" },
            "lists": if i % 2 == 0 { vec![list] } else { vec![] },
        });
        created.push(create_subscriber(&app, body).await["id"].as_i64().unwrap());
    }
    let orderings = [
        "order_by=id&order=desc",
        "order_by=email&order=asc",
        "order_by=name&order=asc",
        "order_by=status&order=desc",
        "order_by=updated_at&order=desc",
        "order_by=created_at&order=asc",
    ];
    for ordering in orderings {
        assert_pages_match(&app, ordering, 20).await;
        assert_pages_match(&app, &format!("{ordering}&search=walker%203"), 7).await;
    }
    assert_pages_match(
        &app,
        &format!("list_id={list}&order_by=email&order=desc"),
        30,
    )
    .await;
    // Writes move rows between the pages already served (whose positions Roster may have kept).
    let (status, _) = request(
        &app,
        Method::DELETE,
        &format!("/api/subscribers/{}", created[3]),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = request(
        &app,
        Method::PATCH,
        &format!("/api/subscribers/{}", created[100]),
        json!({"name": "Aaron"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    subscriber_id(&app, "a-newcomer@example.com", &[list]).await;
    for ordering in orderings {
        assert_pages_match(&app, ordering, 20).await;
    }
    // A deep page asked first after a write (as when another instance wrote) cannot start from a stale mark.
    for (i, ordering) in orderings.iter().enumerate() {
        assert_pages_match(&app, ordering, 20).await;
        subscriber_id(&app, &format!("a{i}@example.com"), &[list]).await;
        let deep = ids(&page_for(&app, &format!("{ordering}&per_page=20&page=6")).await);
        let whole = ids(&page_for(&app, &format!("{ordering}&per_page=all")).await);
        assert_eq!(deep, whole[100..120], "{ordering}");
    }
    let (status, _) = request(
        &app,
        Method::PUT,
        "/api/subscribers/lists",
        json!({"ids": [created[1], created[5]], "action": "remove", "target_list_ids": [list]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_pages_match(
        &app,
        &format!("list_id={list}&order_by=email&order=desc"),
        30,
    )
    .await;
}

#[tokio::test]
async fn a_cursor_for_another_ordering_a_later_page_or_altered_is_400() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        subscriber_id(&app, &format!("c{i}@example.com"), &[]).await;
    }
    let first = page_for(&app, "order_by=email&order=asc&per_page=2").await;
    let cursor = first["next"].as_str().unwrap().to_owned();
    let last = page_for(
        &app,
        &format!("order_by=email&order=asc&per_page=2&after={cursor}"),
    )
    .await;
    assert_eq!(ids(&last).len(), 1);
    assert!(
        last.get("next").is_none(),
        "a short page has no next: {last}"
    );
    for (query, says) in [
        (
            format!("order_by=email&order=desc&after={cursor}"),
            "order_by=email&order=asc",
        ),
        (
            format!("order_by=name&order=asc&after={cursor}"),
            "order_by=email&order=asc",
        ),
        (
            format!("order_by=email&order=asc&page=2&after={cursor}"),
            "page must be 1",
        ),
        ("after=bm90IGEgY3Vyc29y".to_owned(), "not a cursor"),
        // "v1|email|asc|1|a\0b": a NUL would reach PostgreSQL as a bound value.
        (
            "order_by=email&order=asc&after=djF8ZW1haWx8YXNjfDF8YQBi".to_owned(),
            "not a cursor",
        ),
    ] {
        let message = expect_error(
            app.get(&format!("/api/subscribers?{query}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(message.contains(says), "{query}: {message}");
    }
    expect_error(
        app.get(&format!("/api/subscribers?after={}", "A".repeat(12_289)))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(page_for(&app, "per_page=all").await.get("next").is_none());
}

#[tokio::test]
async fn the_cursor_of_the_longest_name_is_accepted() {
    let app = TestApp::spawn().await;
    // 2,000 characters of 4 bytes each: the longest sort value a cursor can carry.
    let longest = "😀".repeat(2000);
    create_subscriber(&app, json!({"email": "long@example.com", "name": longest})).await;
    create_subscriber(&app, json!({"email": "short@example.com", "name": "😀"})).await;
    let first = page_for(&app, "order_by=name&order=desc&per_page=1").await;
    assert_eq!(first["results"][0]["name"], longest);
    let cursor = first["next"].as_str().unwrap();
    assert!(cursor.len() > 10_000, "{}", cursor.len());
    let second = page_for(
        &app,
        &format!("order_by=name&order=desc&per_page=1&after={cursor}"),
    )
    .await;
    assert_eq!(second["results"][0]["email"], "short@example.com");
}

#[tokio::test]
async fn a_searchs_total_follows_every_write_that_changes_it() {
    let app = TestApp::spawn().await;
    let list = app.create_named("searched").await;
    let a = subscriber_id(&app, "needle-a@example.com", &[list]).await;
    subscriber_id(&app, "needle-b@example.com", &[]).await;
    let total = |query: String| {
        let app = &app;
        async move { page_for(app, &query).await["total"].as_i64().unwrap() }
    };
    assert_eq!(total("search=needle".into()).await, 2);
    assert_eq!(total("search=needle".into()).await, 2, "a repeated search");
    assert_eq!(total(format!("search=needle&list_id={list}")).await, 1);
    let c = subscriber_id(&app, "needle-c@example.com", &[]).await;
    assert_eq!(total("search=needle".into()).await, 3, "after a create");
    let (status, _) = request(
        &app,
        Method::PUT,
        "/api/subscribers/lists",
        json!({"ids": [c], "action": "add", "target_list_ids": [list]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        total(format!("search=needle&list_id={list}")).await,
        2,
        "after a subscription"
    );
    let (status, _) = request(
        &app,
        Method::PATCH,
        &format!("/api/subscribers/{a}"),
        json!({"email": "haystack@example.com", "name": "Hay"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(total("search=needle".into()).await, 2, "after an edit");
    assert_eq!(
        total("query=subscribers.email%20LIKE%20%27needle%25%27".into()).await,
        2
    );
    let (status, _) = request(
        &app,
        Method::DELETE,
        &format!("/api/subscribers/{c}"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(total("search=needle".into()).await, 1, "after a delete");
    assert_eq!(
        total("query=subscribers.email%20LIKE%20%27needle%25%27".into()).await,
        1
    );
}

#[tokio::test]
async fn attribs_are_bounded_as_stored_so_a_small_request_cannot_plant_a_large_row() {
    let app = TestApp::spawn().await;
    // 220 × 1e308 is under 2 KB as sent and 68 KB once PostgreSQL writes each number out in full.
    let planted = json!({"email": "big@example.com", "attribs": {"a": vec![1e308; 220]}});
    let message = expect_error(
        app.post_json("/api/subscribers", &planted).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        message.contains("65536 bytes of JSON as stored"),
        "{message}"
    );
    let fits = create_subscriber(
        &app,
        json!({"email": "fits@example.com", "attribs": {"a": vec![1e308; 200]}}),
    )
    .await;
    let id = fits["id"].as_i64().unwrap();
    let backend = app.db.get_database_backend();
    let stored = app
        .db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT LENGTH(CAST(attribs AS TEXT)) FROM subscribers WHERE id = {id}"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i32>(0)
        .unwrap();
    assert!(stored <= 65_536, "stored as {stored} bytes");
    let (status, body) = request(
        &app,
        Method::PATCH,
        &format!("/api/subscribers/{id}"),
        json!({"attribs": {"b": vec![1e308; 20]}}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a merge past the bound: {body}"
    );
}

#[tokio::test]
async fn text_orderings_are_code_point_order_whatever_the_database_collation() {
    use crate::helpers::{ADMIN_PASSWORD, TestDatabase};
    // On PostgreSQL, a database whose own collation (ICU en-US) orders otherwise: `ä` with `a`, case ignored,
    // punctuation after letters.
    let database = TestDatabase::create_with_icu_collation().await;
    let app = TestApp::spawn_on(database, Some(ADMIN_PASSWORD)).await;
    let people = [
        ("a+z@x.io", "Zoë", "enabled"),
        ("ä@x.io", "ärger", "disabled"),
        ("B@x.io", "Bob", "blocklisted"),
        ("a@x.io", "bob", "enabled"),
        ("ab@x.io", "Äpfel", "enabled"),
        ("a-b@x.io", "apple", "disabled"),
        ("a.b@x.io", "a b", "enabled"),
        ("é@x.io", "Éclair", "blocklisted"),
        ("e@x.io", "eclair", "enabled"),
        ("z@x.io", "_under", "disabled"),
        ("Zz@x.io", "Zed", "enabled"),
        ("0@x.io", "0", "enabled"),
        ("á@x.io", "Ápple", "disabled"),
    ];
    let mut rows = Vec::new();
    for (email, name, status) in people {
        let created = create_subscriber(
            &app,
            json!({"email": email, "name": name, "status": status}),
        )
        .await;
        // The sort values as stored: e-mails lowercase, names folded.
        rows.push((
            created["id"].as_i64().unwrap(),
            [email.to_lowercase(), name.to_lowercase(), status.to_owned()],
        ));
    }
    for (field, column) in [("email", 0), ("name", 1), ("status", 2)] {
        // Rust compares strings byte by byte: UTF-8's order is code-point order. `id` breaks ties.
        let mut sorted: Vec<(&str, i64)> = rows
            .iter()
            .map(|(id, values)| (values[column].as_str(), *id))
            .collect();
        sorted.sort();
        let mut expected: Vec<i64> = sorted.into_iter().map(|(_, id)| id).collect();
        for order in ["asc", "desc"] {
            if order == "desc" {
                expected.reverse();
            }
            let query = format!("order_by={field}&order={order}");
            let whole = ids(&page_for(&app, &format!("{query}&per_page=all")).await);
            assert_eq!(whole, expected, "{query}");
            // Pages and cursors (keyset comparisons) agree with it.
            for per_page in [2, 3, 5] {
                assert_pages_match(&app, &query, per_page).await;
            }
        }
    }
    // `query` orders text by code point as well.
    let found = |query: &'static str| {
        let app = &app;
        async move {
            let response = app
                .request(Method::GET, "/api/subscribers")
                .query(&[("query", query), ("per_page", "all")])
                .send()
                .await
                .unwrap();
            let (status, body) = read(response).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            let mut emails: Vec<String> = body["data"]["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["email"].as_str().unwrap().to_owned())
                .collect();
            emails.sort();
            emails
        }
    };
    let mut after_b: Vec<String> = rows
        .iter()
        .map(|(_, values)| values[0].clone())
        .filter(|email| email.as_str() > "b")
        .collect();
    after_b.sort();
    assert_eq!(found("email > 'b'").await, after_b);
    assert_eq!(
        found("email < 'a@x.io' AND email >= 'a'").await,
        ["a+z@x.io", "a-b@x.io", "a.b@x.io"]
    );
}

#[tokio::test]
async fn per_page_all_is_streamed_and_equals_every_page_in_order() {
    let app = TestApp::spawn().await;
    let lists = [app.create_named("one").await, app.create_named("two").await];
    // More rows than one batch of the stream (500), with names that repeat so ties are broken by id.
    for chunk in (0..1_100).collect::<Vec<_>>().chunks(50) {
        futures_util::future::join_all(chunk.iter().map(|i| {
            let on = if i % 3 == 0 {
                vec![lists[0], lists[1]]
            } else {
                vec![lists[i % 2]]
            };
            let body = json!({"email": format!("s{i}@example.com"), "name": format!("n{}", i % 37), "lists": on});
            let app = &app;
            async move { app.post_json("/api/subscribers", &body).await }
        }))
        .await
        .into_iter()
        .for_each(|r| assert_eq!(r.status(), StatusCode::OK));
    }
    for ordering in [
        "order_by=name&order=asc",
        "order_by=id&order=desc",
        "order_by=email&order=asc",
    ] {
        for filter in ["", "&search=n1", &format!("&list_id={}", lists[0])] {
            let (status, all) = read(
                app.get(&format!("/api/subscribers?per_page=all&{ordering}{filter}"))
                    .await,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{all}");
            let data = &all["data"];
            let mut paged = Vec::new();
            for page in 1.. {
                let (_, body) = read(
                    app.get(&format!(
                        "/api/subscribers?per_page=100&page={page}&{ordering}{filter}"
                    ))
                    .await,
                )
                .await;
                let rows = body["data"]["results"].as_array().unwrap().clone();
                if rows.is_empty() {
                    assert_eq!(data["total"], body["data"]["total"], "{ordering}{filter}");
                    break;
                }
                paged.extend(rows);
            }
            assert_eq!(
                data["results"].as_array().unwrap(),
                &paged,
                "{ordering}{filter}"
            );
            assert_eq!(data["total"].as_u64().unwrap() as usize, paged.len());
            assert_eq!(
                (data["per_page"].clone(), data["page"].clone()),
                (json!(0), json!(1))
            );
            assert_eq!(all["status"], "success");
            // Numbered pages of more than 500 rows are streamed too, and end with the cursor of the next page
            // when full.
            let big =
                |page: &str| format!("/api/subscribers?per_page=501&{page}&{ordering}{filter}");
            let mut walked = Vec::new();
            let mut next = None;
            for page in 1..=3 {
                let response = app.get(&big(&format!("page={page}"))).await;
                assert!(response.headers().get("content-length").is_none());
                let (status, body) = read(response).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                let rows = body["data"]["results"].as_array().unwrap();
                let from = (page - 1) * 501;
                assert_eq!(
                    rows[..],
                    paged[from.min(paged.len())..(from + 501).min(paged.len())]
                );
                assert_eq!(body["data"]["total"], data["total"]);
                assert_eq!(
                    (
                        body["data"]["per_page"].clone(),
                        body["data"]["page"].clone()
                    ),
                    (json!(501), json!(page))
                );
                assert_eq!(
                    body["data"].get("next").is_some(),
                    rows.len() == 501,
                    "{ordering}{filter} {page}"
                );
                if page == 1 {
                    next = body["data"]["next"].as_str().map(str::to_owned);
                }
            }
            while let Some(cursor) = next.take() {
                let (_, body) = read(app.get(&big(&format!("after={cursor}"))).await).await;
                walked.extend(body["data"]["results"].as_array().unwrap().clone());
                next = body["data"]["next"].as_str().map(str::to_owned);
            }
            assert_eq!(
                walked[..],
                paged[501.min(paged.len())..],
                "{ordering}{filter}"
            );
        }
    }
    // Pages up to 500 rows are read whole (and carry their length).
    let response = app.get("/api/subscribers?per_page=500").await;
    assert!(response.headers().get("content-length").is_some());
}

#[tokio::test]
async fn a_page_of_subscribers_on_many_long_lists_is_written_a_batch_at_a_time_and_equals_its_rows()
{
    let app = TestApp::spawn().await;
    let mut lists = Vec::new();
    for i in 0..12 {
        let description = char::from(b'a' + i).to_string().repeat(60_000);
        let list = app
            .create_list(json!({"name": format!("long {i}"), "description": description}))
            .await;
        lists.push(list["id"].as_i64().unwrap());
    }
    // Each of these answers about 720 KB (12 lists of 60,000 characters): a batch of its own.
    for i in 0..6 {
        subscriber_id(&app, &format!("long{i}@example.com"), &lists).await;
    }
    for i in 0..2 {
        subscriber_id(&app, &format!("short{i}@example.com"), &[]).await;
    }
    let one_by_one = |ids: Vec<i64>| {
        let app = &app;
        async move {
            let mut rows = Vec::new();
            for id in ids {
                let (_, body) = read(app.get(&format!("/api/subscribers/{id}")).await).await;
                rows.push(body["data"].clone());
            }
            rows
        }
    };
    let response = app.get("/api/subscribers?per_page=20&order_by=id").await;
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed"
    );
    let (status, page) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{}", brief(&page));
    let rows = page["data"]["results"].as_array().unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(rows[..], one_by_one(ids.clone()).await[..]);
    assert_eq!(
        (
            &page["data"]["total"],
            &page["data"]["per_page"],
            &page["data"]["page"]
        ),
        (&json!(8), &json!(20), &json!(1))
    );
    assert!(page["data"].get("next").is_none(), "not full: no next page");
    assert_eq!(page["status"], "success");

    // A full page so written ends with the cursor of the next one.
    let (_, first) = read(app.get("/api/subscribers?per_page=3&order_by=id").await).await;
    let cursor = first["data"]["next"].as_str().unwrap();
    let (_, rest) = read(
        app.get(&format!(
            "/api/subscribers?per_page=20&order_by=id&after={cursor}"
        ))
        .await,
    )
    .await;
    let walked: Vec<Value> = [&first, &rest]
        .iter()
        .flat_map(|p| p["data"]["results"].as_array().unwrap().clone())
        .collect();
    assert_eq!(walked[..], rows[..]);

    // A page of ordinary subscribers is read whole, as before.
    let response = app.get("/api/subscribers?per_page=20&search=short").await;
    assert!(response.headers().get("content-length").is_some());
}

/// A subscriber and 30,000 copies of it, in statements of 3,000 rows, each well within a 1 s statement budget.
async fn plant_rows(app: &TestApp) {
    let first = create_subscriber(app, json!({"email": "first@example.com"})).await["id"]
        .as_i64()
        .unwrap();
    for chunk in 0..10 {
        let n = format!("(v + {})", chunk * 3_000);
        let values = format!(
            "{{uuid}}, 'row' || {n} || '@example.com', 'Row ' || {n}, 'row ' || {n}, t.attribs, t.status, \
             t.created_at, t.updated_at"
        );
        let columns = "uuid, email, name, name_folded, attribs, status, created_at, updated_at";
        crate::helpers::insert_copies(app, "subscribers", first, 3_000, columns, &values).await;
    }
}

#[tokio::test]
async fn a_streamed_answer_nobody_reads_ends_its_snapshot_at_the_request_deadline() {
    let app = TestApp::spawn_with(|settings| {
        settings.http.request_timeout = std::time::Duration::from_secs(2);
        settings.database.statement_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    plant_rows(&app).await;
    let mut response = app.get("/api/subscribers?per_page=all").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.chunk().await.unwrap().unwrap();
    // Megabytes more than the socket holds, and no more read: the walk is not asked for its next batch.
    tokio::time::sleep(std::time::Duration::from_millis(3_000)).await;
    if app.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        let open = app
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
                 AND state LIKE 'idle in transaction%'",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap();
        assert_eq!(open, 0, "a snapshot outlived its request's deadline");
    }
    // On both backends: the answer is cut, not ended as if complete.
    let cut = loop {
        match response.chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(
        cut,
        "an answer whose time ran out must not end as if complete"
    );
}

#[tokio::test]
async fn a_streamed_answer_read_slowly_is_not_cut_by_the_statement_budget() {
    // The budget is per statement: a walk of many statements in one snapshot may take longer than it.
    let app = TestApp::spawn_with(|settings| {
        settings.database.statement_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    plant_rows(&app).await;
    let mut response = app.get("/api/subscribers?per_page=all").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.chunk().await.unwrap().unwrap().to_vec();
    // Megabytes more than the socket holds: the walk waits for this reader, its transaction open, past the budget.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    while let Some(chunk) = response.chunk().await.expect("the answer is not cut off") {
        body.extend_from_slice(&chunk);
    }
    let page: Value = serde_json::from_slice(&body).expect("a complete JSON answer");
    assert_eq!(page["data"]["results"].as_array().unwrap().len(), 30_001);
    assert_eq!(page["data"]["total"], 30_001);
}
