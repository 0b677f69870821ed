//! Grants that change while a write is in flight. A request is authenticated when its headers arrive; its write
//! checks, in its own transaction, that the caller's credentials and roles are still what its grants were read
//! from, and holds them until it ends. So a write whose grant was revoked before it began writing is refused
//! (503, nothing written), and a revoke waits for a write it authorised that is already writing.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use roster::domain::UserPermission;
use roster::service::AccountService;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};
use serde_json::json;

use crate::helpers::{TestApp, api_user, read, trickle};

/// How long a slow request's body takes to arrive after its headers (authentication happens at the headers).
const BODY_DELAY: Duration = Duration::from_millis(700);

/// `POST /api/lists` creating `name`, whose body arrives [`BODY_DELAY`] after its headers.
async fn slow_create(app: &TestApp, authorization: &str, name: &str) -> Response {
    let body = serde_json::to_vec(&json!({ "name": name })).unwrap();
    app.anonymous(Method::POST, "/api/lists")
        .header(AUTHORIZATION, authorization)
        .header(CONTENT_TYPE, "application/json")
        .body(trickle(vec![body], BODY_DELAY))
        .send()
        .await
        .unwrap()
}

async fn lists_named(app: &TestApp, name: &str) -> usize {
    app.names(&format!("query={name}&per_page=all"))
        .await
        .iter()
        .filter(|n| *n == name)
        .count()
}

/// Runs `change` while a slow create by `authorization` is between its authentication and its write; returns the
/// create's status and body. Retried (up to 5 times) when the create was authenticated after the change, which
/// a loaded machine can cause: then it meets the change at authentication instead (403), which is not what this
/// exercises.
async fn create_across<F, Fut>(
    app: &TestApp,
    authorization: &str,
    prefix: &str,
    change: F,
    undo: impl AsyncFn(),
) -> (StatusCode, serde_json::Value, String)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for attempt in 0..5 {
        let name = format!("{prefix}-{attempt}");
        let (answer, ()) = tokio::join!(slow_create(app, authorization, &name), async {
            tokio::time::sleep(BODY_DELAY / 2).await;
            change().await;
        });
        let retry_after = answer
            .headers()
            .get(RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let (status, body) = read(answer).await;
        if status == StatusCode::FORBIDDEN {
            undo().await;
            continue;
        }
        assert_eq!(
            retry_after.as_deref(),
            (status == StatusCode::SERVICE_UNAVAILABLE).then_some("1"),
            "{body}"
        );
        return (status, body, name);
    }
    panic!("the change never fell between a create's authentication and its write");
}

#[tokio::test]
async fn a_write_whose_grant_is_revoked_before_it_writes_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (accounts, auth) = api_user(&app, "creator", &[UserPermission::ListsManageAll]).await;
    let grant = |yes: bool| {
        let accounts = accounts.clone();
        async move {
            accounts
                .set_user_permissions("creator", &[UserPermission::ListsManageAll], yes)
                .await
                .unwrap();
        }
    };
    let (status, body, name) = create_across(
        &app,
        &auth,
        "revoked",
        || grant(false),
        async || grant(true).await,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("roles or credentials changed"),
        "{body}"
    );
    assert_eq!(lists_named(&app, &name).await, 0, "nothing was written");
    // Sent again, it is checked against the grants as they are now.
    let (status, _) = read(slow_create(&app, &auth, &name).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(lists_named(&app, &name).await, 0);
}

#[tokio::test]
async fn a_write_whose_user_is_disabled_or_whose_token_is_rotated_before_it_writes_is_refused() {
    let app = TestApp::spawn().await;
    let (accounts, auth) = api_user(&app, "churn", &[UserPermission::ListsManageAll]).await;
    let enable = |yes: bool| {
        let accounts = accounts.clone();
        async move {
            accounts.set_enabled("churn", yes).await.unwrap();
        }
    };
    let (status, body, name) = create_across(
        &app,
        &auth,
        "disabled",
        || enable(false),
        async || enable(true).await,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(lists_named(&app, &name).await, 0);

    enable(true).await;
    let rotate = || {
        let accounts = accounts.clone();
        async move {
            accounts.rotate_token("churn").await.unwrap();
        }
    };
    // A rotation cannot be undone, so a create authenticated after it is refused at authentication: retrying
    // with the old token would only be refused again. One attempt, and its answer must not be a write.
    let (answer, ()) = tokio::join!(slow_create(&app, &auth, "rotated"), async {
        tokio::time::sleep(BODY_DELAY / 2).await;
        rotate().await;
    });
    let (status, body) = read(answer).await;
    assert!(
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::FORBIDDEN,
        "{status} {body}"
    );
    assert_eq!(lists_named(&app, "rotated").await, 0);
}

#[tokio::test]
async fn a_write_across_a_change_that_still_allows_it_succeeds_when_sent_again() {
    let app = TestApp::spawn().await;
    let (accounts, auth) = api_user(&app, "grown", &[UserPermission::ListsManageAll]).await;
    // A grant of something else changes the role's version too: the write cannot tell, so it is refused once.
    let grant_more = || {
        let accounts = accounts.clone();
        async move {
            accounts
                .set_user_permissions("grown", &[UserPermission::ListsGetAll], true)
                .await
                .unwrap();
        }
    };
    let (status, body, name) = create_across(&app, &auth, "grown", grant_more, async || {}).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = read(slow_create(&app, &auth, &name).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(lists_named(&app, &name).await, 1);
}

#[tokio::test]
async fn a_revoke_waits_for_a_write_its_grant_authorised_that_is_already_writing() {
    let app = TestApp::spawn().await;
    if app.db.get_database_backend() != DatabaseBackend::Postgres {
        // SQLite has one writing connection: a revoke and a write cannot overlap at all.
        return;
    }
    let (accounts, auth) = api_user(
        &app,
        "editor",
        &[UserPermission::ListsManageAll, UserPermission::ListsGetAll],
    )
    .await;
    let id = app.create_named("held").await;
    // Another transaction holds the list, so the editor's update waits inside its own transaction, past the
    // check of its grants.
    let hold = app.db.begin().await.unwrap();
    hold.execute_raw(Statement::from_string(
        DatabaseBackend::Postgres,
        format!("SELECT id FROM lists WHERE id = {id} FOR UPDATE"),
    ))
    .await
    .unwrap();
    let update = tokio::spawn({
        let request = app
            .anonymous(Method::PUT, &format!("/api/lists/{id}"))
            .header(AUTHORIZATION, &auth)
            .json(&json!({ "name": "renamed" }));
        async move { request.send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let revoke = tokio::spawn({
        let accounts = accounts.clone();
        async move {
            accounts
                .set_user_permissions("editor", &[UserPermission::ListsManageAll], false)
                .await
                .unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !revoke.is_finished(),
        "the revoke returned while a write it authorised was still writing"
    );
    hold.commit().await.unwrap();
    let (status, body) = read(update.await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "renamed");
    revoke.await.unwrap();
    // And after the revoke, the editor's writes are refused.
    let refused = app
        .anonymous(Method::PUT, &format!("/api/lists/{id}"))
        .header(AUTHORIZATION, &auth)
        .json(&json!({ "name": "again" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn writes_racing_a_revoke_from_another_process_are_refused_with_the_documented_answer() {
    let app = TestApp::spawn().await;
    let (_, auth) = api_user(
        &app,
        "busy",
        &[UserPermission::ListsManageAll, UserPermission::ListsGetAll],
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(app.create_named(&format!("busy-{i}")).await);
    }
    // The `roster` command's own connection to the database, as another process has.
    let elsewhere = sea_orm::Database::connect(app.database.url.as_str())
        .await
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = ids.iter().map(|id| {
        let (request, stop) = (
            app.anonymous(Method::PUT, &format!("/api/lists/{id}"))
                .header(AUTHORIZATION, &auth),
            stop.clone(),
        );
        async move {
            let mut answers = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let answer = request
                    .try_clone()
                    .unwrap()
                    .json(&json!({ "name": format!("renamed {n}") }))
                    .send()
                    .await
                    .unwrap();
                let (status, body) = read(answer).await;
                answers.push((status, body));
            }
            answers
        }
    });
    let revoke = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        AccountService::new(elsewhere.clone())
            .set_user_permissions("busy", &[UserPermission::ListsManageAll], false)
            .await
            .unwrap();
        let names = app.names("per_page=all&order_by=id").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        names
    };
    let (answers, names) = tokio::join!(futures_util::future::join_all(writers), revoke);
    assert_eq!(
        app.names("per_page=all&order_by=id").await,
        names,
        "no write committed after the revoke returned"
    );
    let answers: Vec<_> = answers.into_iter().flatten().collect();
    for (status, body) in &answers {
        match *status {
            StatusCode::OK | StatusCode::FORBIDDEN => {}
            StatusCode::SERVICE_UNAVAILABLE => assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("roles or credentials changed"),
                "{body}"
            ),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(answers.iter().any(|(s, _)| *s == StatusCode::OK));
    assert!(answers.iter().any(|(s, _)| *s == StatusCode::FORBIDDEN));
}
