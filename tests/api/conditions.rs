//! Conditional requests: `ETag` on one list or subscriber, `If-None-Match` answered 304, and `If-Match` making a
//! write happen only while nobody changed what it names, checked in the write's own transaction.

use reqwest::header::{ETAG, IF_MATCH, IF_NONE_MATCH};
use reqwest::{Method, Response, StatusCode};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_error, read};
use crate::subscribers::subscriber_id;

fn tag(response: &Response) -> String {
    let tag = response
        .headers()
        .get(ETAG)
        .expect("an ETag header")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(tag.len(), 34, "{tag}");
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    tag
}

/// The current tag and body of `path`.
async fn current(app: &TestApp, path: &str) -> (String, Value) {
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tag = tag(&response);
    (tag, response.json().await.unwrap())
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    if_match: &str,
    body: Option<Value>,
) -> Response {
    let mut request = app.request(method, path).header(IF_MATCH, if_match);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// Expects a 412 that carries `expected_tag` (the current one) and says why.
async fn expect_precondition_failed(response: Response, expected_tag: &str) {
    assert_eq!(tag(&response), expected_tag);
    let message = expect_error(response, StatusCode::PRECONDITION_FAILED).await;
    assert!(message.contains("If-Match"), "{message}");
}

#[tokio::test]
async fn a_get_by_id_carries_an_etag_and_if_none_match_with_it_answers_304_without_a_body() {
    let app = TestApp::spawn().await;
    let list = app.create_named("Tagged").await;
    let subscriber = subscriber_id(&app, "tagged@example.com", &[list]).await;
    for path in [
        format!("/api/lists/{list}"),
        format!("/api/subscribers/{subscriber}"),
    ] {
        let (tag, _) = current(&app, &path).await;
        assert_eq!(
            current(&app, &path).await.0,
            tag,
            "{path}: the same answer, the same tag"
        );
        for condition in [
            tag.clone(),
            format!("W/{tag}"),
            format!("\"other\", {tag}"),
            "*".into(),
        ] {
            let response = app
                .request(Method::GET, &path)
                .header(IF_NONE_MATCH, &condition)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::NOT_MODIFIED,
                "{path} {condition}"
            );
            assert_eq!(response.headers()[ETAG], tag.as_str());
            assert!(response.bytes().await.unwrap().is_empty());
        }
        let response = app
            .request(Method::GET, &path)
            .header(IF_NONE_MATCH, "\"00000000000000000000000000000000\"")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{path}: another tag gets the answer"
        );
    }
}

#[tokio::test]
async fn a_lists_tag_changes_with_its_subscriber_counts_and_a_subscribers_with_its_subscriptions() {
    let app = TestApp::spawn().await;
    let list = app.create_named("Counted").await;
    let other = app.create_named("Other").await;
    let list_path = format!("/api/lists/{list}");
    let (before, _) = current(&app, &list_path).await;
    let subscriber = subscriber_id(&app, "joins@example.com", &[list]).await;
    let (after, body) = current(&app, &list_path).await;
    assert_eq!(body["data"]["subscriber_count"], 1);
    assert_ne!(
        before, after,
        "a new subscription changes the list's answer, so its tag"
    );

    let subscriber_path = format!("/api/subscribers/{subscriber}");
    let (before, _) = current(&app, &subscriber_path).await;
    let (status, _) = read(
        app.put_json(
            "/api/subscribers/lists",
            &json!({"ids": [subscriber], "action": "add", "target_list_ids": [other]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(current(&app, &subscriber_path).await.0, before);
}

#[tokio::test]
async fn the_answer_to_a_create_or_an_update_carries_the_tag_a_get_then_gives() {
    let app = TestApp::spawn().await;
    let response = app.post_json("/api/lists", &json!({"name": "Fresh"})).await;
    let created = tag(&response);
    let id = response.json::<Value>().await.unwrap()["data"]["id"].clone();
    assert_eq!(current(&app, &format!("/api/lists/{id}")).await.0, created);
    let response = send(
        &app,
        Method::PUT,
        &format!("/api/lists/{id}"),
        &created,
        Some(json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated = tag(&response);
    assert_ne!(updated, created);
    assert_eq!(current(&app, &format!("/api/lists/{id}")).await.0, updated);

    let response = app
        .post_json("/api/subscribers", &json!({"email": "fresh@example.com"}))
        .await;
    let created = tag(&response);
    let id = response.json::<Value>().await.unwrap()["data"]["id"].clone();
    let path = format!("/api/subscribers/{id}");
    assert_eq!(current(&app, &path).await.0, created);
    for (method, body) in [
        (Method::PATCH, json!({"name": "Patched"})),
        (
            Method::PUT,
            json!({"email": "fresh@example.com", "name": "Put"}),
        ),
    ] {
        let (before, _) = current(&app, &path).await;
        let response = send(&app, method.clone(), &path, &before, Some(body)).await;
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(current(&app, &path).await.0, tag(&response), "{method}");
    }
}

#[tokio::test]
async fn a_write_with_a_stale_if_match_is_refused_412_with_the_current_tag_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let list = app.create_named("Edited").await;
    let subscriber = subscriber_id(&app, "edited@example.com", &[]).await;
    let list_path = format!("/api/lists/{list}");
    let subscriber_path = format!("/api/subscribers/{subscriber}");
    let (stale_list, _) = current(&app, &list_path).await;
    let (stale_subscriber, _) = current(&app, &subscriber_path).await;
    // Someone else edits both.
    assert_eq!(
        app.put_json(&list_path, &json!({"name": "Theirs"}))
            .await
            .status(),
        StatusCode::OK
    );
    let patched = app
        .request(Method::PATCH, &subscriber_path)
        .json(&json!({"name": "Theirs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let (list_now, list_body) = current(&app, &list_path).await;
    let (subscriber_now, subscriber_body) = current(&app, &subscriber_path).await;

    let writes = [
        (
            Method::PUT,
            &list_path,
            &stale_list,
            &list_now,
            Some(json!({"name": "Mine"})),
        ),
        (Method::DELETE, &list_path, &stale_list, &list_now, None),
        (
            Method::PUT,
            &subscriber_path,
            &stale_subscriber,
            &subscriber_now,
            Some(json!({"email": "mine@example.com"})),
        ),
        (
            Method::PATCH,
            &subscriber_path,
            &stale_subscriber,
            &subscriber_now,
            Some(json!({"name": "Mine"})),
        ),
        (
            Method::DELETE,
            &subscriber_path,
            &stale_subscriber,
            &subscriber_now,
            None,
        ),
    ];
    for (method, path, stale, now, body) in writes {
        for condition in [
            stale.clone(),
            format!("W/{now}"),
            "\"not-a-tag\"".into(),
            String::new(),
        ] {
            let response = send(&app, method.clone(), path, &condition, body.clone()).await;
            expect_precondition_failed(response, now).await;
        }
    }
    assert_eq!(
        current(&app, &list_path).await.1,
        list_body,
        "nothing changed"
    );
    assert_eq!(
        current(&app, &subscriber_path).await.1,
        subscriber_body,
        "nothing changed"
    );

    // With the current tag (or `*`, or a list naming it) the same writes go through.
    let response = send(
        &app,
        Method::PATCH,
        &subscriber_path,
        &format!("\"x\", {subscriber_now}"),
        Some(json!({"name": "Mine"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        send(&app, Method::DELETE, &subscriber_path, "*", None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Method::DELETE, &list_path, &list_now, None)
            .await
            .status(),
        StatusCode::OK
    );
    for path in [&list_path, &subscriber_path] {
        assert_eq!(
            app.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
        // Gone: 404 whatever the condition, `*` included.
        for condition in ["*", list_now.as_str()] {
            let response = send(&app, Method::DELETE, path, condition, None).await;
            assert_eq!(
                response.status(),
                StatusCode::NOT_FOUND,
                "{path} {condition}"
            );
        }
    }
}

#[tokio::test]
async fn of_two_writes_sent_with_the_same_tag_exactly_one_succeeds_and_the_other_gets_412() {
    let app = TestApp::spawn().await;
    let list = app.create_named("Raced").await;
    let subscriber = subscriber_id(&app, "raced@example.com", &[list]).await;
    let list_path = format!("/api/lists/{list}");
    let subscriber_path = format!("/api/subscribers/{subscriber}");
    for round in 0..10 {
        for (method, path) in [(Method::PUT, &list_path), (Method::PATCH, &subscriber_path)] {
            let (tag, _) = current(&app, path).await;
            let names = [format!("A{round}"), format!("B{round}")];
            let [first, second] = names.clone().map(|name| {
                send(
                    &app,
                    method.clone(),
                    path,
                    &tag,
                    Some(json!({ "name": name })),
                )
            });
            let (first, second) = tokio::join!(first, second);
            let statuses = [first.status(), second.status()];
            let winner = match statuses {
                [StatusCode::OK, StatusCode::PRECONDITION_FAILED] => &names[0],
                [StatusCode::PRECONDITION_FAILED, StatusCode::OK] => &names[1],
                other => panic!("round {round}, {method} {path}: {other:?}"),
            };
            let (_, body) = current(&app, path).await;
            assert_eq!(
                &body["data"]["name"],
                winner.as_str(),
                "round {round}: the winner's write stands"
            );
        }
    }
    // And a delete racing an update with the same tag: one of them. The update first: the delete sees a changed
    // tag (412). The delete first: the update finds nothing (404, whatever its condition).
    let (tag, _) = current(&app, &subscriber_path).await;
    let (update, delete) = tokio::join!(
        send(
            &app,
            Method::PATCH,
            &subscriber_path,
            &tag,
            Some(json!({"name": "Last"}))
        ),
        send(&app, Method::DELETE, &subscriber_path, &tag, None),
    );
    let statuses = [update.status(), delete.status()];
    assert!(
        statuses == [StatusCode::OK, StatusCode::PRECONDITION_FAILED]
            || statuses == [StatusCode::NOT_FOUND, StatusCode::OK],
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_condition_past_its_bound_is_a_400() {
    let app = TestApp::spawn().await;
    let list = app.create_named("Bounded").await;
    let long = format!("\"{}\"", "a".repeat(1023));
    let path = format!("/api/lists/{list}");
    let response = app
        .request(Method::GET, &path)
        .header(IF_NONE_MATCH, &long)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;
    let response = send(&app, Method::DELETE, &path, &long, None).await;
    expect_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.get(&path).await.status(), StatusCode::OK, "not deleted");
}

#[tokio::test]
async fn a_caller_who_may_manage_a_list_but_not_read_it_cannot_learn_its_tag() {
    use roster::domain::ListPermission;
    use roster::service::{AccountService, RoleKind};

    let app = TestApp::spawn().await;
    let list = app.create_named("Unreadable").await;
    let accounts = AccountService::new(app.db.clone());
    accounts.create_role("none", RoleKind::User).await.unwrap();
    accounts
        .create_role("managers", RoleKind::List)
        .await
        .unwrap();
    accounts
        .set_list_permissions("managers", ListPermission::Manage, &[list], true)
        .await
        .unwrap();
    let token = accounts
        .create_user("manager", "none", Some("managers"))
        .await
        .unwrap()
        .token;
    let path = format!("/api/lists/{list}");
    let response = app
        .anonymous(Method::DELETE, &path)
        .header("Authorization", format!("token manager:{token}"))
        .header(IF_MATCH, "\"00000000000000000000000000000000\"")
        .send()
        .await
        .unwrap();
    assert!(
        !response.headers().contains_key(ETAG),
        "no tag for a caller who may not read"
    );
    expect_error(response, StatusCode::FORBIDDEN).await;
    assert_eq!(app.get(&path).await.status(), StatusCode::OK, "not deleted");
    // Without a condition, manage alone deletes, as before.
    let response = app
        .anonymous(Method::DELETE, &path)
        .header("Authorization", format!("token manager:{token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_conditional_list_delete_checks_its_tag_after_a_subscription_change_in_flight_commits() {
    let app = TestApp::spawn().await;
    let list = app.create_named("Held").await;
    let subscriber = subscriber_id(&app, "held@example.com", &[list]).await;
    let path = format!("/api/lists/{list}");
    let (before, _) = current(&app, &path).await;
    // A change of the subscription that names only the subscriber (as a blocklist does), still uncommitted.
    let txn = app.db.begin().await.unwrap();
    txn.execute_unprepared(&format!(
        "UPDATE subscriber_lists SET status = 'unsubscribed' WHERE subscriber_id = {subscriber}"
    ))
    .await
    .unwrap();
    let delete = tokio::spawn({
        let request = app
            .request(Method::DELETE, &path)
            .header(IF_MATCH, before.clone());
        async move { request.send().await.unwrap() }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    txn.commit().await.unwrap();
    // The delete waited for the change, and compares with the counts it made.
    let (after, body) = current(&app, &path).await;
    assert_ne!(after, before);
    assert_eq!(
        body["data"]["subscriber_statuses"],
        json!({"unsubscribed": 1})
    );
    expect_precondition_failed(delete.await.unwrap(), &after).await;
}
