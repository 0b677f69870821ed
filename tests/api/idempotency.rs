//! `Idempotency-Key`: a retried write is carried out once, and its repeat gets the first answer.

use std::time::Duration;

use reqwest::header::{ETAG, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use roster::domain::UserPermission;
use roster::service::{AccountService, RoleKind};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::helpers::{TestApp, expect_error, read};

const KEY: &str = "Idempotency-Key";

/// Status, ETag and body of an answer.
async fn answer(response: Response) -> (StatusCode, Option<String>, Vec<u8>) {
    let status = response.status();
    let tag = response
        .headers()
        .get(ETAG)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, tag, response.bytes().await.unwrap().to_vec())
}

/// The status of `request`'s answer.
async fn status(request: RequestBuilder) -> StatusCode {
    request.send().await.unwrap().status()
}

fn create_list(app: &TestApp, key: &str, name: &str) -> RequestBuilder {
    app.request(Method::POST, "/api/lists")
        .header(KEY, key)
        .json(&json!({ "name": name }))
}

/// The first column of the one row `sql` reads.
async fn scalar<T: sea_orm::TryGetable>(app: &TestApp, sql: &str) -> T {
    let row = app
        .db
        .query_one_raw(Statement::from_string(app.db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<T>(0).unwrap()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    scalar(app, sql).await
}

async fn lists_named(app: &TestApp, name: &str) -> i64 {
    count(
        app,
        &format!("SELECT COUNT(*) FROM lists WHERE name = '{name}'"),
    )
    .await
}

#[tokio::test]
async fn a_retried_create_gets_the_first_answer_and_writes_once() {
    let app = TestApp::spawn().await;
    let first = answer(create_list(&app, "k-1", "Once").send().await.unwrap()).await;
    assert_eq!(first.0, StatusCode::OK);
    assert!(first.1.is_some(), "the first answer's ETag");
    for _ in 0..3 {
        let again = answer(create_list(&app, "k-1", "Once").send().await.unwrap()).await;
        assert_eq!(again, first, "the same status, ETag and body");
    }
    assert_eq!(lists_named(&app, "Once").await, 1);

    // A subscriber's create would answer 409 to a plain retry; with the key the retry gets the first answer.
    let create = || {
        app.request(Method::POST, "/api/subscribers")
            .header(KEY, "k-2")
            .json(&json!({"email": "once@example.com"}))
    };
    let first = answer(create().send().await.unwrap()).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(answer(create().send().await.unwrap()).await, first);
    // Without the key, the same request is a new one.
    let plain = app
        .request(Method::POST, "/api/subscribers")
        .json(&json!({"email": "once@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_a_422_and_nothing_runs() {
    let app = TestApp::spawn().await;
    assert_eq!(
        status(create_list(&app, "k", "First")).await,
        StatusCode::OK
    );
    for other in [
        create_list(&app, "k", "Second"),
        app.request(Method::POST, "/api/lists?x=1")
            .header(KEY, "k")
            .json(&json!({"name": "First"})),
        app.request(Method::DELETE, "/api/lists?all=true")
            .header(KEY, "k"),
    ] {
        let message = expect_error(
            other.send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(message.contains("Idempotency-Key"), "{message}");
    }
    assert_eq!(lists_named(&app, "Second").await, 0);
    assert_eq!(
        lists_named(&app, "First").await,
        1,
        "the DELETE did not run"
    );
}

#[tokio::test]
async fn a_malformed_key_is_a_400_and_nothing_runs() {
    let app = TestApp::spawn().await;
    for key in ["", "with space", &"k".repeat(256), "caf\u{e9}"] {
        let request = app
            .request(Method::POST, "/api/lists")
            .header(KEY, key.as_bytes())
            .json(&json!({"name": "Bad key"}));
        let message = expect_error(request.send().await.unwrap(), StatusCode::BAD_REQUEST).await;
        assert!(message.contains("Idempotency-Key"), "{key:?}: {message}");
    }
    assert_eq!(lists_named(&app, "Bad key").await, 0);
    let longest = "k".repeat(255);
    assert_eq!(
        status(create_list(&app, &longest, "Long key")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn keys_are_per_caller() {
    let app = TestApp::spawn().await;
    let accounts = AccountService::new(app.db.clone());
    accounts
        .create_role("makers", RoleKind::User)
        .await
        .unwrap();
    accounts
        .set_user_permissions(
            "makers",
            &[UserPermission::ListsGetAll, UserPermission::ListsManageAll],
            true,
        )
        .await
        .unwrap();
    let token = accounts
        .create_user("bot", "makers", None)
        .await
        .unwrap()
        .token;
    let as_bot = app
        .anonymous(Method::POST, "/api/lists")
        .header("Authorization", format!("token bot:{token}"))
        .header(KEY, "shared")
        .json(&json!({"name": "Bot's"}));
    assert_eq!(
        status(create_list(&app, "shared", "Admin's")).await,
        StatusCode::OK
    );
    // The same key from another caller is that caller's own: no 422, no replay of the admin's answer.
    let (status, body) = read(as_bot.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "Bot's");

    // On the public form, keys are per client address.
    let list = app
        .create_list(json!({"name": "Open", "type": "public"}))
        .await;
    let form = |n: u8, email: &str| {
        app.client_from(n)
            .post(app.url("/api/public/subscription"))
            .header(KEY, "form")
            .json(&json!({"email": email, "list_uuids": [list["uuid"]]}))
    };
    assert_eq!(
        form(1, "one@example.com").send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        form(2, "two@example.com").send().await.unwrap().status(),
        StatusCode::OK
    );
    let reused = form(1, "three@example.com").send().await.unwrap();
    expect_error(reused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM subscribers").await,
        2,
        "one and two subscribed; three was refused"
    );
}

#[tokio::test]
async fn concurrent_repeats_run_once_and_the_others_wait_with_retry_after_or_get_the_answer() {
    let app = TestApp::spawn().await;
    let sends = (0..8).map(|_| create_list(&app, "burst", "Burst").send());
    let answers = futures_util::future::join_all(sends).await;
    let mut bodies = Vec::new();
    for response in answers {
        let response = response.unwrap();
        match response.status() {
            StatusCode::OK => bodies.push(response.bytes().await.unwrap()),
            StatusCode::CONFLICT => {
                assert!(response.headers().contains_key(RETRY_AFTER));
            }
            other => panic!("{other}"),
        }
    }
    assert!(!bodies.is_empty());
    assert!(
        bodies.windows(2).all(|pair| pair[0] == pair[1]),
        "one answer"
    );
    assert_eq!(lists_named(&app, "Burst").await, 1);
    // Once the first has finished, every repeat gets its answer.
    let (status, _, body) = answer(create_list(&app, "burst", "Burst").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bodies[0]);
}

/// Holds the database's writes back (PostgreSQL: the lists table; SQLite: the writer) until the returned
/// transaction ends. On PostgreSQL the key is claimed and the list's insert waits, so the client leaves between
/// the two (without a task of its own, the request would be dropped there and the retry would get 409 until the
/// lease ends); on SQLite the claim waits too, so there the test checks only the outcome.
async fn hold_writes(app: &TestApp) -> sea_orm::DatabaseTransaction {
    let txn = app.db.begin().await.unwrap();
    let sql = match app.db.get_database_backend() {
        DatabaseBackend::Postgres => "LOCK TABLE lists IN EXCLUSIVE MODE",
        _ => "INSERT INTO settings (key, value) VALUES ('test-hold', 'x')",
    };
    txn.execute_unprepared(sql).await.unwrap();
    txn
}

#[tokio::test]
async fn a_request_whose_client_left_is_still_carried_out_and_its_answer_kept_for_the_retry() {
    let app = TestApp::spawn().await;
    let held = hold_writes(&app).await;
    // The client sends its request and goes away before any answer, as after a timeout.
    let body = r#"{"name":"Cut off"}"#;
    let request = format!(
        "POST /api/lists HTTP/1.1\r\nHost: test\r\nAuthorization: {}\r\nContent-Type: application/json\r\n\
         {KEY}: cut\r\nContent-Length: {}\r\n\r\n{body}",
        crate::helpers::admin_authorization(),
        body.len()
    );
    let address = app.url("").trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(socket);
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.rollback().await.unwrap();
    // The retry waits (409) while the first attempt finishes, then gets its answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body) = read(create_list(&app, "cut", "Cut off").send().await.unwrap()).await;
        if status != StatusCode::CONFLICT || tokio::time::Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(lists_named(&app, "Cut off").await, 1, "carried out once");
    let id = body["data"]["id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/api/lists/{id}")).await.status(),
        StatusCode::OK
    );
}

/// Sets the key's row as an attempt that stopped long ago would have left it.
async fn age_key(app: &TestApp, key: &str, state: &str) {
    app.execute_sql(&format!(
        "UPDATE idempotency_keys SET state = '{state}', status = NULL, body = NULL WHERE key = '{key}'"
    ))
    .await;
    age_claim(app, key).await;
}

/// Dates the key's claim long ago, leaving its state as the attempt left it.
pub(crate) async fn age_claim(app: &TestApp, key: &str) {
    let long_ago = match app.db.get_database_backend() {
        DatabaseBackend::Postgres => "TIMESTAMPTZ '2000-01-01 00:00:00+00'",
        _ => "'2000-01-01T00:00:00+00:00'",
    };
    app.execute_sql(&format!(
        "UPDATE idempotency_keys SET claimed_at = {long_ago} WHERE key = '{key}'"
    ))
    .await;
}

/// The state of the key's row (`running`, `committed`, `done`, `lost`).
pub(crate) async fn key_state(app: &TestApp, key: &str) -> String {
    scalar(
        app,
        &format!("SELECT state FROM idempotency_keys WHERE key = '{key}'"),
    )
    .await
}

/// Makes keeping the answer of every request keyed `lost-…` fail, as an instance that dies just after the write
/// leaves it: the write committed, its answer never recorded.
pub(crate) async fn lose_answers(app: &TestApp) {
    app.execute_sql(match app.db.get_database_backend() {
        DatabaseBackend::Postgres => {
            "CREATE FUNCTION lose_answer() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.state = 'done' AND NEW.key LIKE 'lost-%' THEN RAISE EXCEPTION 'the answer is lost'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER lose_answer BEFORE UPDATE ON idempotency_keys \
             FOR EACH ROW EXECUTE FUNCTION lose_answer()"
        }
        _ => {
            "CREATE TRIGGER lose_answer BEFORE UPDATE ON idempotency_keys \
             WHEN NEW.state = 'done' AND NEW.key LIKE 'lost-%' \
             BEGIN SELECT RAISE(ABORT, 'the answer is lost'); END"
        }
    })
    .await;
}

#[tokio::test]
async fn a_retry_takes_over_an_attempt_that_died_before_writing_and_reports_one_that_died_after() {
    let app = TestApp::spawn().await;
    assert_eq!(
        status(create_list(&app, "dead", "Dead")).await,
        StatusCode::OK
    );
    // Died before its write committed (the key says only `running`): the retry carries the request out.
    age_key(&app, "dead", "running").await;
    assert_eq!(
        status(create_list(&app, "dead", "Dead")).await,
        StatusCode::OK
    );
    assert_eq!(
        lists_named(&app, "Dead").await,
        2,
        "the simulated death wrote nothing; the retry did"
    );
    // Died after its write committed but before its answer was kept: the retry must not write again.
    age_key(&app, "dead", "committed").await;
    let response = create_list(&app, "dead", "Dead").send().await.unwrap();
    assert!(!response.headers().contains_key(RETRY_AFTER));
    let message = expect_error(response, StatusCode::CONFLICT).await;
    assert!(message.contains("lost"), "{message}");
    assert_eq!(lists_named(&app, "Dead").await, 2);
}

#[tokio::test]
async fn keys_expire_and_expired_ones_are_cleaned_up() {
    let app = TestApp::spawn_with(|settings| {
        settings.http.idempotency.ttl = Duration::from_millis(500);
        settings.http.idempotency.lease = Duration::from_millis(100);
    })
    .await;
    for i in 0..20 {
        let response = create_list(&app, &format!("old-{i}"), "Old")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Expired: the key is free for another request.
    let (status, body) = read(create_list(&app, "old-0", "Reused").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "Reused");
    // Every 8th new key deletes up to 128 expired ones (16 per new key).
    for i in 0..8 {
        let response = create_list(&app, &format!("new-{i}"), "New")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let expired = count(
        &app,
        "SELECT COUNT(*) FROM idempotency_keys WHERE key LIKE 'old-%' AND key <> 'old-0'",
    )
    .await;
    assert_eq!(expired, 0, "expired keys left");
    assert_eq!(
        count(&app, "SELECT live FROM idempotency_callers").await,
        count(&app, "SELECT COUNT(*) FROM idempotency_keys").await,
        "the caller's count follows its keys"
    );
}

#[tokio::test]
async fn a_caller_keeps_at_most_its_cap_of_keys_and_a_new_one_past_it_is_a_429() {
    let app = TestApp::spawn_with(|settings| {
        settings.http.idempotency.keys_per_caller = 3;
    })
    .await;
    for i in 0..3 {
        let response = create_list(&app, &format!("cap-{i}"), "Capped")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = create_list(&app, "cap-3", "Capped").send().await.unwrap();
    assert!(response.headers().contains_key(RETRY_AFTER));
    expect_error(response, StatusCode::TOO_MANY_REQUESTS).await;
    // Retries of kept keys still get their answers; requests without a key are not limited.
    assert_eq!(
        status(create_list(&app, "cap-0", "Capped")).await,
        StatusCode::OK
    );
    assert_eq!(lists_named(&app, "Capped").await, 3);
    assert_eq!(
        app.post_json("/api/lists", &json!({"name": "Unkeyed"}))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_multipart_retry_with_a_new_boundary_and_a_form_retry_are_the_same_request() {
    let app = TestApp::spawn().await;
    let send = |name: &'static str| {
        let form = reqwest::multipart::Form::new().text("name", name);
        app.request(Method::POST, "/api/lists")
            .header(KEY, "multi")
            .multipart(form)
            .send()
    };
    let first = answer(send("Multi").await.unwrap()).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(answer(send("Multi").await.unwrap()).await, first);
    expect_error(
        send("Other").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(lists_named(&app, "Multi").await, 1);

    // A URL-encoded form is the same request when its bytes are.
    let form = || {
        app.request(Method::POST, "/api/lists")
            .header(KEY, "form")
            .form(&[("name", "Form")])
            .send()
    };
    let first = answer(form().await.unwrap()).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(answer(form().await.unwrap()).await, first);
    assert_eq!(lists_named(&app, "Form").await, 1);
}

#[tokio::test]
async fn every_write_accepts_a_key_and_a_refusal_is_kept_as_its_answer() {
    let app = TestApp::spawn().await;
    let list = app.create_named("Kept").await;
    // A 404 is the request's answer: its retry gets it again, even once the resource exists meanwhile.
    let missing = || {
        app.request(Method::DELETE, "/api/subscribers/999")
            .header(KEY, "missing")
    };
    let first = answer(missing().send().await.unwrap()).await;
    assert_eq!(first.0, StatusCode::NOT_FOUND);
    assert_eq!(answer(missing().send().await.unwrap()).await, first);
    // A conditional write and a bulk write, keyed.
    let (_, value): (StatusCode, Value) = read(app.get(&format!("/api/lists/{list}")).await).await;
    assert_eq!(value["data"]["id"], list);
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/api/lists/{list}"),
            Some(json!({"name": "Kept 2"})),
        ),
        (Method::DELETE, format!("/api/lists?id={list}"), None),
    ] {
        let send = || {
            let request = app
                .request(method.clone(), &path)
                .header(KEY, path.as_str());
            match &body {
                Some(body) => request.json(body),
                None => request,
            }
        };
        let first = answer(send().send().await.unwrap()).await;
        assert_eq!(first.0, StatusCode::OK, "{method} {path}");
        assert_eq!(
            answer(send().send().await.unwrap()).await,
            first,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn conditions_are_part_of_the_request_and_unknown_paths_keep_no_key() {
    let app = TestApp::spawn().await;
    let list = app.create_named("Conditioned").await;
    let path = format!("/api/lists/{list}");
    let put = |condition: &'static str| {
        app.request(Method::PUT, &path)
            .header(KEY, "conditioned")
            .header("If-Match", condition)
            .json(&json!({"name": "Renamed"}))
            .send()
    };
    let first = answer(put("\"stale\"").await.unwrap()).await;
    assert_eq!(first.0, StatusCode::PRECONDITION_FAILED);
    // The same key with another condition is another request: a fresh attempt needs a fresh key.
    expect_error(put("*").await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        answer(put("\"stale\"").await.unwrap()).await,
        first,
        "the 412 is its answer"
    );

    for (method, target) in [
        (Method::POST, "/api/nowhere"),
        (Method::PATCH, "/api/lists"),
    ] {
        let response = app
            .request(method.clone(), target)
            .header(KEY, "unknown")
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{method} {target}");
    }
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM idempotency_keys WHERE key = 'unknown'"
        )
        .await,
        0
    );
}
