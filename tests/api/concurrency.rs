//! Many clients at once, and several Roster instances on one database.

use std::collections::BTreeSet;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, TestDatabase, ids, read};

#[tokio::test]
async fn concurrent_writers_on_one_list_leave_exactly_one_of_their_writes() {
    let app = TestApp::spawn().await;
    let id = app.create_named("contended").await;
    let path = format!("/api/lists/{id}");
    let writes: Vec<_> = (0..24)
        .map(|i| json!({"name": format!("name {i}"), "description": format!("description {i}"), "tags": [format!("t{i}")]}))
        .collect();
    let results = join_all(writes.iter().map(|body| app.put_json(&path, body))).await;
    for response in results {
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (_, body) = read(app.get(&path).await).await;
    let list = &body["data"];
    let winner = writes
        .iter()
        .find(|w| w["name"] == list["name"])
        .expect("the final name is one of the writes");
    assert_eq!(
        list["description"], winner["description"],
        "fields of one write stay together"
    );
    assert_eq!(list["tags"], winner["tags"]);
    assert_eq!(
        app.list(&format!("tag={}", winner["tags"][0].as_str().unwrap()))
            .await["total"],
        1
    );
}

#[tokio::test]
async fn concurrent_updates_of_different_fields_lose_nothing() {
    let app = TestApp::spawn().await;
    let id = app.create_named("fields").await;
    let path = format!("/api/lists/{id}");
    let bodies = [
        json!({"description": "set by one"}),
        json!({"status": "archived"}),
        json!({"type": "public"}),
        json!({"optin": "double"}),
        json!({"tags": ["kept"]}),
    ];
    for response in join_all(bodies.iter().map(|b| app.put_json(&path, b))).await {
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (_, body) = read(app.get(&path).await).await;
    let list = &body["data"];
    assert_eq!(list["description"], "set by one");
    assert_eq!(list["status"], "archived");
    assert_eq!(list["type"], "public");
    assert_eq!(list["optin"], "double");
    assert_eq!(list["tags"], json!(["kept"]));
}

#[tokio::test]
async fn concurrent_creates_and_deletes_keep_totals_consistent() {
    let app = TestApp::spawn().await;
    let first: Vec<i64> =
        join_all((0..20).map(|i| app.create_list(json!({"name": format!("c{i}")}))))
            .await
            .iter()
            .map(|l| l["id"].as_i64().unwrap())
            .collect();
    assert_eq!(
        first.iter().collect::<BTreeSet<_>>().len(),
        20,
        "ids are unique"
    );
    let app = &app;
    let deletes = first[..10]
        .iter()
        .map(|id| async move { app.delete(&format!("/api/lists/{id}")).await });
    let creates = (20..40).map(|i| async move {
        app.post_json("/api/lists", &json!({"name": format!("c{i}")}))
            .await
    });
    let (deleted, created) = tokio::join!(join_all(deletes), join_all(creates));
    assert!(deleted.iter().all(|r| r.status() == StatusCode::OK));
    assert!(created.iter().all(|r| r.status() == StatusCode::OK));
    let page = app.list("per_page=all").await;
    assert_eq!(page["total"], 30);
    assert_eq!(ids(&page).len(), 30);
}

#[tokio::test]
async fn bulk_deletes_racing_with_updates_give_only_documented_answers() {
    let app = TestApp::spawn().await;
    let mut all = Vec::new();
    for i in 0..30 {
        all.push(app.create_named(&format!("race {i}")).await);
    }
    let app = &app;
    let updates = all.iter().map(|id| async move {
        app.put_json(
            &format!("/api/lists/{id}"),
            &json!({"description": "updated"}),
        )
        .await
    });
    let bulk = async {
        let half: Vec<String> = all[..15].iter().map(|id| format!("id={id}")).collect();
        let by_ids = app.delete(&format!("/api/lists?{}", half.join("&"))).await;
        let by_query = app.delete("/api/lists?query=race%202").await;
        (by_ids.status(), by_query.status())
    };
    let (updated, (by_ids, by_query)) = tokio::join!(join_all(updates), bulk);
    assert_eq!(by_ids, StatusCode::OK);
    assert_eq!(by_query, StatusCode::OK);
    for response in updated {
        let status = response.status();
        assert!(
            status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "undocumented answer {status}: {}",
            response.text().await.unwrap()
        );
    }
    let left = ids(&app.list("per_page=all").await);
    assert!(left.iter().all(|id| !all[..15].contains(id)));
    for id in left {
        let (_, body) = read(app.get(&format!("/api/lists/{id}")).await).await;
        assert!(!body["data"]["name"].as_str().unwrap().starts_with("race 2"));
    }
}

/// Two instances of Roster serving one fresh database; the first owns it.
async fn two_instances_on_one_database() -> (TestApp, TestApp) {
    let database = TestDatabase::create().await;
    let url = database.url.clone();
    let one = TestApp::spawn_on(database, Some(crate::helpers::ADMIN_PASSWORD)).await;
    let two = TestApp::spawn_on(
        TestDatabase::shared(&url),
        Some(crate::helpers::ADMIN_PASSWORD),
    )
    .await;
    (one, two)
}

#[tokio::test]
async fn two_instances_on_one_database_see_each_others_writes_at_once() {
    let (one, two) = two_instances_on_one_database().await;
    let created = one
        .create_list(json!({"name": "shared", "tags": ["x"]}))
        .await;
    let (_, seen) = read(two.get(&format!("/api/lists/{}", created["id"])).await).await;
    assert_eq!(seen["data"], created);
    two.put_json(
        &format!("/api/lists/{}", created["id"]),
        &json!({"name": "renamed"}),
    )
    .await;
    assert_eq!(one.names("tag=x").await, ["renamed"]);
    read(one.delete(&format!("/api/lists/{}", created["id"])).await).await;
    assert_eq!(two.list("").await["total"], 0);
}

#[tokio::test]
async fn search_totals_on_one_instance_follow_writes_made_through_another() {
    let (one, two) = two_instances_on_one_database().await;
    let created = one
        .create_list(json!({"name": "Weekly news", "tags": ["vip"]}))
        .await;
    // Read twice on `one`, so that its count is kept and then reused.
    for _ in 0..2 {
        assert_eq!(one.list("query=news").await["total"], 1);
        assert_eq!(one.list("tag=vip").await["total"], 1);
    }
    two.create_list(json!({"name": "Daily news", "tags": ["vip"]}))
        .await;
    assert_eq!(one.list("query=news").await["total"], 2);
    assert_eq!(one.list("tag=vip").await["total"], 2);
    two.put_json(
        &format!("/api/lists/{}", created["id"]),
        &json!({"name": "Weekly digest", "tags": []}),
    )
    .await;
    assert_eq!(one.list("query=news").await["total"], 1);
    assert_eq!(one.list("tag=vip").await["total"], 1);
}

#[tokio::test]
async fn status_changes_racing_both_ways_with_bulk_deletes_keep_totals_exact() {
    let app = TestApp::spawn().await;
    let mut all = Vec::new();
    for i in 0..24 {
        let status = if i % 2 == 0 { "active" } else { "archived" };
        all.push(
            app.create_list(json!({"name": format!("flip {i}"), "status": status}))
                .await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let app = &app;
    // Lists move active -> archived and archived -> active at once, while bulk deletes take some away.
    let flips = all.iter().enumerate().map(|(i, id)| async move {
        let status = if i % 2 == 0 { "archived" } else { "active" };
        app.put_json(
            &format!("/api/lists/{id}"),
            &json!({"status": status, "type": "public"}),
        )
        .await
        .status()
    });
    let deletes = async {
        let first: Vec<String> = all[..6].iter().map(|id| format!("id={id}")).collect();
        let a = app
            .delete(&format!("/api/lists?{}", first.join("&")))
            .await
            .status();
        let b = app.delete("/api/lists?query=flip%202").await.status();
        (a, b)
    };
    let (flipped, (a, b)) = tokio::join!(join_all(flips), deletes);
    assert_eq!((a, b), (StatusCode::OK, StatusCode::OK));
    assert!(
        flipped
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::NOT_FOUND),
        "{flipped:?}"
    );
    for filter in [
        "",
        "status=active",
        "status=archived",
        "type=public",
        "type=private",
    ] {
        let page = app.list(&format!("{filter}&per_page=all")).await;
        assert_eq!(page["total"], ids(&page).len(), "total for `{filter}`");
    }
}

#[tokio::test]
async fn concurrent_subscribes_and_unsubscribes_on_the_same_lists_leave_exact_counts() {
    use crate::subscribers::{assert_counts_exact, subscriber_id};
    let app = TestApp::spawn().await;
    let a = app
        .create_list(json!({"name": "a", "type": "public"}))
        .await;
    let b = app
        .create_list(json!({"name": "b", "type": "public"}))
        .await;
    let (a_id, b_id) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
    let mut people = Vec::new();
    for i in 0..12 {
        people.push(subscriber_id(&app, &format!("p{i}@example.com"), &[a_id]).await);
    }
    // Every kind of subscription write at once, naming the same rows in opposite orders.
    let writes = (0..48).map(|i| {
        let app = &app;
        let (first, second) = if i % 2 == 0 { (a_id, b_id) } else { (b_id, a_id) };
        let mut ids = people.clone();
        if i % 3 == 0 {
            ids.reverse();
        }
        let uuids = [a["uuid"].clone(), b["uuid"].clone()];
        async move {
            let response = match i % 6 {
                0 => app.put_json("/api/subscribers/lists", &json!({"ids": ids, "action": "add", "target_list_ids": [first, second]})).await,
                1 => app.put_json("/api/subscribers/lists", &json!({"ids": ids, "action": "unsubscribe", "target_list_ids": [second, first]})).await,
                2 => app.put_json("/api/subscribers/lists", &json!({"ids": ids, "action": "remove", "target_list_ids": [first]})).await,
                3 => app.put_json("/api/subscribers/lists", &json!({"ids": ids, "action": "add", "target_list_ids": [second], "status": "confirmed"})).await,
                4 => app
                    .anonymous(reqwest::Method::POST, "/api/public/subscription")
                    .json(&json!({"email": format!("new{i}@example.com"), "list_uuids": uuids}))
                    .send()
                    .await
                    .unwrap(),
                _ => app.post_json("/api/subscribers", &json!({"email": format!("c{i}@example.com"), "lists": [second, first]})).await,
            };
            let (status, body) = read(response).await;
            assert_eq!(status, StatusCode::OK, "write {i}: {body}");
        }
    });
    join_all(writes).await;
    assert_counts_exact(&app, "concurrent writes").await;
}

#[tokio::test]
async fn concurrent_subscribers_of_one_list_spread_over_counter_shards() {
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
    let app = TestApp::spawn().await;
    let list = app
        .create_list(json!({"name": "hot", "type": "public"}))
        .await;
    let subscribes = (0..32).map(|i| {
        let app = &app;
        let uuid = list["uuid"].clone();
        async move {
            let response = app
                .anonymous(reqwest::Method::POST, "/api/public/subscription")
                .json(&json!({"email": format!("hot{i}@example.com"), "list_uuids": [uuid]}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    });
    join_all(subscribes).await;
    let (_, body) = read(app.get(&format!("/api/lists/{}", list["id"])).await).await;
    assert_eq!(body["data"]["subscriber_count"], 32);
    if app.db.get_database_backend() == DatabaseBackend::Postgres {
        // Writers on different connections add to different rows, so they do not queue on one.
        let row = app
            .db
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                format!(
                    "SELECT COUNT(DISTINCT shard) AS shards FROM list_subscriber_counts WHERE list_id = {}",
                    list["id"]
                ),
            ))
            .await
            .unwrap()
            .unwrap();
        let shards: i64 = row.try_get("", "shards").unwrap();
        assert!(shards > 1, "all writers used one counter row");
    }
}
