//! The race harness: every pair of writing operations, run at the same moment on the same rows, many times, on
//! the backend under test. After every round each invariant Roster states is checked, and no answer may be a 5xx
//! or anything its operation does not document for the case. On PostgreSQL the database's deadlock count must
//! stay 0.
//!
//! `ROSTER_RACE_ROUNDS` sets the rounds per pair (default 4, so CI stays quick; `scripts/soak.sh` runs more).

use std::collections::BTreeMap;

use futures_util::future::join_all;
use reqwest::header::{ETAG, IF_MATCH};
use reqwest::{Method, RequestBuilder, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::json;

use crate::helpers::{TestApp, read};

/// The rows one round races on: two public lists and two subscribers, the first on list 0, the second on both.
struct Fixture {
    round: usize,
    lists: [i64; 2],
    uuids: [String; 2],
    subscribers: [i64; 2],
    emails: [String; 2],
    /// The `ETag`s of the lists and subscribers once created, for the conditional writes.
    list_tags: [String; 2],
    subscriber_tags: [String; 2],
}

/// Every operation that writes subscribers, subscriptions or lists.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Add,
    AddConfirmed,
    Remove,
    Unsubscribe,
    BlocklistOne,
    BlocklistMany,
    PutSubscriber,
    PatchSubscriber,
    CreateSubscriber,
    PublicForm,
    DeleteSubscriber,
    DeleteSubscribers,
    UpdateList,
    DeleteList,
    DeleteLists,
    PatchSubscriberIfMatch,
    DeleteSubscriberIfMatch,
    UpdateListIfMatch,
    DeleteListIfMatch,
}

const ALL: [Op; 19] = [
    Op::Add,
    Op::AddConfirmed,
    Op::Remove,
    Op::Unsubscribe,
    Op::BlocklistOne,
    Op::BlocklistMany,
    Op::PutSubscriber,
    Op::PatchSubscriber,
    Op::CreateSubscriber,
    Op::PublicForm,
    Op::DeleteSubscriber,
    Op::DeleteSubscribers,
    Op::UpdateList,
    Op::DeleteList,
    Op::DeleteLists,
    Op::PatchSubscriberIfMatch,
    Op::DeleteSubscriberIfMatch,
    Op::UpdateListIfMatch,
    Op::DeleteListIfMatch,
];

impl Op {
    /// The request, for one side of a pair (`side` 0 or 1 picks which rows lead, so a pair of the same operation
    /// names the rows in opposite orders).
    fn request(self, app: &TestApp, f: &Fixture, side: usize) -> RequestBuilder {
        let (s, t) = if side == 0 { (0, 1) } else { (1, 0) };
        let subs = json!([f.subscribers[s], f.subscribers[t]]);
        let lists = json!([f.lists[s], f.lists[t]]);
        let memberships = |action: &str, status: Option<&str>| {
            let mut body = json!({"ids": subs, "action": action, "target_list_ids": lists});
            if let Some(status) = status {
                body["status"] = json!(status);
            }
            app.request(Method::PUT, "/api/subscribers/lists")
                .json(&body)
        };
        match self {
            Op::Add => memberships("add", None),
            Op::AddConfirmed => memberships("add", Some("confirmed")),
            Op::Remove => memberships("remove", None),
            Op::Unsubscribe => memberships("unsubscribe", None),
            Op::BlocklistOne => app.request(
                Method::PUT,
                &format!("/api/subscribers/{}/blocklist", f.subscribers[s]),
            ),
            Op::BlocklistMany => app
                .request(Method::PUT, "/api/subscribers/blocklist")
                .json(&json!({ "ids": subs })),
            Op::PutSubscriber => app
                .request(
                    Method::PUT,
                    &format!("/api/subscribers/{}", f.subscribers[s]),
                )
                .json(&json!({"email": f.emails[s], "name": format!("put {side}"), "lists": [f.lists[t]]})),
            Op::PatchSubscriber => app
                .request(
                    Method::PATCH,
                    &format!("/api/subscribers/{}", f.subscribers[s]),
                )
                .json(&json!({"lists": [f.lists[s], f.lists[t]], "attribs": {"side": side}})),
            Op::CreateSubscriber => app.request(Method::POST, "/api/subscribers").json(&json!({
                "email": format!("new-{side}-{}@example.com", f.round),
                "lists": lists,
            })),
            Op::PublicForm => app
                .anonymous(Method::POST, "/api/public/subscription")
                .json(&json!({"email": f.emails[s], "list_uuids": [f.uuids[s], f.uuids[t]]})),
            Op::DeleteSubscriber => app.request(
                Method::DELETE,
                &format!("/api/subscribers/{}", f.subscribers[s]),
            ),
            Op::DeleteSubscribers => app.request(
                Method::DELETE,
                &format!(
                    "/api/subscribers?id={}&id={}",
                    f.subscribers[s], f.subscribers[t]
                ),
            ),
            Op::UpdateList => app
                .request(Method::PUT, &format!("/api/lists/{}", f.lists[s]))
                .json(&json!({"name": format!("renamed {side}"), "status": "active"})),
            Op::DeleteList => app.request(Method::DELETE, &format!("/api/lists/{}", f.lists[s])),
            Op::DeleteLists => app.request(
                Method::DELETE,
                &format!("/api/lists?id={}&id={}", f.lists[s], f.lists[t]),
            ),
            // With the tags the rows had when created: whoever wrote them first makes these 412.
            Op::PatchSubscriberIfMatch => Op::PatchSubscriber
                .request(app, f, side)
                .header(IF_MATCH, &f.subscriber_tags[s]),
            Op::DeleteSubscriberIfMatch => Op::DeleteSubscriber
                .request(app, f, side)
                .header(IF_MATCH, &f.subscriber_tags[s]),
            Op::UpdateListIfMatch => Op::UpdateList
                .request(app, f, side)
                .header(IF_MATCH, &f.list_tags[s]),
            Op::DeleteListIfMatch => Op::DeleteList
                .request(app, f, side)
                .header(IF_MATCH, &f.list_tags[s]),
        }
    }

    /// What the operation may answer when something it names was deleted a moment before: the same answer it
    /// gives after the delete, never a 5xx.
    fn allowed(self) -> &'static [StatusCode] {
        const OK: StatusCode = StatusCode::OK;
        const GONE: StatusCode = StatusCode::NOT_FOUND;
        const NAMED: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
        const REFUSED: StatusCode = StatusCode::BAD_REQUEST;
        const CHANGED: StatusCode = StatusCode::PRECONDITION_FAILED;
        match self {
            Op::Add | Op::AddConfirmed | Op::Remove | Op::Unsubscribe | Op::BlocklistMany => {
                &[OK, NAMED]
            }
            Op::BlocklistOne | Op::DeleteSubscriber | Op::UpdateList | Op::DeleteList => {
                &[OK, GONE]
            }
            Op::PutSubscriber | Op::PatchSubscriber => &[OK, GONE, NAMED],
            Op::CreateSubscriber => &[OK, NAMED],
            Op::PublicForm => &[OK, REFUSED],
            Op::DeleteSubscribers | Op::DeleteLists => &[OK],
            Op::DeleteSubscriberIfMatch | Op::UpdateListIfMatch | Op::DeleteListIfMatch => {
                &[OK, GONE, CHANGED]
            }
            Op::PatchSubscriberIfMatch => &[OK, GONE, NAMED, CHANGED],
        }
    }
}

fn rounds() -> usize {
    std::env::var("ROSTER_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

async fn fixture(app: &TestApp, round: usize) -> Fixture {
    let mut lists = [0; 2];
    let mut uuids = [String::new(), String::new()];
    for (i, (id, uuid)) in lists.iter_mut().zip(uuids.iter_mut()).enumerate() {
        let list = app
            .create_list(json!({"name": format!("race {round}.{i}"), "type": "public"}))
            .await;
        *id = list["id"].as_i64().unwrap();
        *uuid = list["uuid"].as_str().unwrap().to_owned();
    }
    let emails = [
        format!("a-{round}@example.com"),
        format!("b-{round}@example.com"),
    ];
    let mut subscribers = [0; 2];
    for (i, id) in subscribers.iter_mut().enumerate() {
        let on = &lists[..=i];
        let (status, body) = read(
            app.post_json(
                "/api/subscribers",
                &json!({"email": emails[i], "lists": on}),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        *id = body["data"]["id"].as_i64().unwrap();
    }
    let tag = |path: String| async move {
        let response = app.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.headers()[ETAG].to_str().unwrap().to_owned()
    };
    let list_tags = [
        tag(format!("/api/lists/{}", lists[0])).await,
        tag(format!("/api/lists/{}", lists[1])).await,
    ];
    let subscriber_tags = [
        tag(format!("/api/subscribers/{}", subscribers[0])).await,
        tag(format!("/api/subscribers/{}", subscribers[1])).await,
    ];
    Fixture {
        round,
        lists,
        uuids,
        subscribers,
        emails,
        list_tags,
        subscriber_tags,
    }
}

async fn rows(app: &TestApp, sql: &str) -> Vec<Vec<String>> {
    let backend = app.db.get_database_backend();
    app.db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (0..)
                .map_while(|i| row.try_get_by_index::<String>(i).ok())
                .collect()
        })
        .collect()
}

/// Every invariant Roster states about stored data, checked in SQL; returns the broken ones.
pub async fn broken_invariants(app: &TestApp) -> Vec<String> {
    let text = |column: &str| match app.db.get_database_backend() {
        DatabaseBackend::Postgres => format!("{column}::text"),
        _ => format!("CAST({column} AS TEXT)"),
    };
    let checks: [(&str, String); 6] = [
        (
            "a blocklisted subscriber has a subscription that is not unsubscribed",
            format!(
                "SELECT {}, {} FROM subscriber_lists sl JOIN subscribers s ON s.id = sl.subscriber_id \
                 WHERE s.status = 'blocklisted' AND sl.status <> 'unsubscribed'",
                text("sl.subscriber_id"),
                text("sl.list_id")
            ),
        ),
        (
            "a subscription names a subscriber or a list that does not exist",
            format!(
                "SELECT {}, {} FROM subscriber_lists sl \
                 WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.id = sl.subscriber_id) \
                    OR NOT EXISTS (SELECT 1 FROM lists l WHERE l.id = sl.list_id)",
                text("sl.subscriber_id"),
                text("sl.list_id")
            ),
        ),
        (
            "a list's subscription counter differs from a recount",
            format!(
                "SELECT {k}, status, {c}, {r} FROM (\
                   SELECT list_id, status, SUM(n) AS c, 0 AS r FROM list_subscriber_counts GROUP BY list_id, status \
                   UNION ALL SELECT list_id, status, 0, COUNT(*) FROM subscriber_lists GROUP BY list_id, status\
                 ) x GROUP BY list_id, status HAVING SUM(c) <> SUM(r)",
                k = text("list_id"),
                c = text("SUM(c)"),
                r = text("SUM(r)")
            ),
        ),
        (
            "a subscriber counter differs from a recount",
            format!(
                "SELECT status, {c}, {r} FROM (\
                   SELECT status, SUM(n) AS c, 0 AS r FROM subscriber_counts GROUP BY status \
                   UNION ALL SELECT status, 0, COUNT(*) FROM subscribers GROUP BY status\
                 ) x GROUP BY status HAVING SUM(c) <> SUM(r)",
                c = text("SUM(c)"),
                r = text("SUM(r)")
            ),
        ),
        (
            "a list counter differs from a recount",
            format!(
                "SELECT status, type, optin, {c}, {r} FROM (\
                   SELECT status, type, optin, SUM(n) AS c, 0 AS r FROM list_counts GROUP BY status, type, optin \
                   UNION ALL SELECT status, type, optin, 0, COUNT(*) FROM lists GROUP BY status, type, optin\
                 ) x GROUP BY status, type, optin HAVING SUM(c) <> SUM(r)",
                c = text("SUM(c)"),
                r = text("SUM(r)")
            ),
        ),
        (
            "a counter row is left for a list that does not exist",
            format!(
                "SELECT {} FROM list_subscriber_counts c \
                 WHERE NOT EXISTS (SELECT 1 FROM lists l WHERE l.id = c.list_id) AND c.n <> 0",
                text("c.list_id")
            ),
        ),
    ];
    let mut broken = Vec::new();
    for (what, sql) in checks {
        let found = rows(app, &sql).await;
        if !found.is_empty() {
            broken.push(format!("{what}: {found:?}"));
        }
    }
    broken
}

/// Deadlocks PostgreSQL detected in this test's database (0 on SQLite).
async fn deadlocks(app: &TestApp) -> i64 {
    if app.db.get_database_backend() != DatabaseBackend::Postgres {
        return 0;
    }
    // Statistics reach pg_stat_database when a backend flushes them (at most once a second when idle).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let found = rows(
        app,
        "SELECT pg_stat_clear_snapshot()::text, deadlocks::text FROM pg_stat_database \
         WHERE datname = current_database()",
    )
    .await;
    found[0][1].parse().unwrap()
}

/// Races every pair from `firsts` × `ALL` (each unordered pair once), `rounds()` times each.
async fn race_pairs(firsts: &[Op]) {
    let app = TestApp::spawn().await;
    let mut round = 0;
    let mut unexpected: BTreeMap<String, usize> = BTreeMap::new();
    let mut broken = Vec::new();
    'pairs: for &a in firsts {
        let position = ALL.iter().position(|op| *op == a).unwrap();
        for &b in &ALL[position..] {
            for _ in 0..rounds() {
                round += 1;
                let f = fixture(&app, round).await;
                let answers =
                    join_all([a.request(&app, &f, 0).send(), b.request(&app, &f, 1).send()]).await;
                for (op, answer) in [(a, &answers[0]), (b, &answers[1])] {
                    let status = answer.as_ref().map(|r| r.status()).unwrap();
                    if !op.allowed().contains(&status) {
                        *unexpected
                            .entry(format!("{op:?} racing {a:?}/{b:?}: {status}"))
                            .or_default() += 1;
                    }
                }
                for answer in answers {
                    answer.unwrap().bytes().await.unwrap();
                }
                // A broken invariant stays broken: report the round that broke it, and stop.
                for problem in broken_invariants(&app).await {
                    broken.push(format!("{a:?} with {b:?}, round {round}: {problem}"));
                }
                if !broken.is_empty() {
                    break 'pairs;
                }
            }
        }
    }
    let deadlocks = deadlocks(&app).await;
    assert!(
        unexpected.is_empty() && broken.is_empty() && deadlocks == 0,
        "answers outside what the operations document, by pair: {unexpected:#?}\n\
         broken invariants: {broken:#?}\ndeadlocks PostgreSQL detected: {deadlocks}"
    );
}

#[tokio::test]
async fn subscription_writes_raced_pairwise_keep_every_invariant_and_answer_no_5xx() {
    race_pairs(&[
        Op::Add,
        Op::AddConfirmed,
        Op::Remove,
        Op::Unsubscribe,
        Op::BlocklistOne,
    ])
    .await;
}

#[tokio::test]
async fn subscriber_edits_raced_pairwise_keep_every_invariant_and_answer_no_5xx() {
    race_pairs(&[
        Op::BlocklistMany,
        Op::PutSubscriber,
        Op::PatchSubscriber,
        Op::CreateSubscriber,
        Op::PublicForm,
    ])
    .await;
}

#[tokio::test]
async fn conditional_writes_raced_pairwise_keep_every_invariant_and_answer_no_5xx() {
    race_pairs(&[
        Op::PatchSubscriberIfMatch,
        Op::DeleteSubscriberIfMatch,
        Op::UpdateListIfMatch,
        Op::DeleteListIfMatch,
    ])
    .await;
}

#[tokio::test]
async fn deletes_raced_pairwise_keep_every_invariant_and_answer_no_5xx() {
    race_pairs(&[
        Op::DeleteSubscriber,
        Op::DeleteSubscribers,
        Op::UpdateList,
        Op::DeleteList,
        Op::DeleteLists,
    ])
    .await;
}

#[tokio::test]
async fn granting_or_revoking_lists_in_any_order_while_they_are_deleted_never_deadlocks() {
    use roster::domain::ListPermission;
    use roster::service::{AccountService, RoleKind};
    let app = TestApp::spawn().await;
    let accounts = AccountService::new(app.db.clone());
    accounts
        .create_role("racing", RoleKind::List)
        .await
        .unwrap();
    for round in 0..6 {
        let lists = crate::subscriber_permissions::many_lists(&app, 150).await;
        let lists = &lists[lists.len() - 150..];
        let grant = round % 2 == 0;
        if !grant {
            accounts
                .set_list_permissions("racing", ListPermission::Get, lists, true)
                .await
                .unwrap();
        }
        // The role's change names the lists in descending order; the delete locks them ascending.
        let descending: Vec<i64> = lists.iter().rev().copied().collect();
        let query: Vec<String> = lists.iter().map(|id| format!("id={id}")).collect();
        let path = format!("/api/lists?{}", query.join("&"));
        let (changed, deleted) = tokio::join!(
            accounts.set_list_permissions("racing", ListPermission::Get, &descending, grant),
            app.delete(&path)
        );
        let (status, body) = read(deleted).await;
        assert_eq!(status, StatusCode::OK, "round {round}: {body}");
        // A grant that comes after the delete finds the lists gone; anything else is a failure.
        if let Err(err) = changed {
            assert!(
                grant && err.to_string().contains("no list with id"),
                "round {round}: {err}"
            );
        }
    }
    assert_eq!(deadlocks(&app).await, 0);
}
