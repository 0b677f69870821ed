//! Who may do what with subscribers: every subscriber operation × every kind of caller, all or nothing, and no
//! answer that tells a caller whether a subscriber it may not see exists.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use roster::domain::{ListPermission, UserPermission};
use roster::service::{AccountService, RoleKind};
use serde_json::{Value, json};

use crate::helpers::{TestApp, read};
use crate::subscribers::{assert_counts_exact, subscriber_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    /// No credentials.
    Nobody,
    /// `subscribers:get_all`, `subscribers:manage`, `lists:get_all`, `lists:manage_all`.
    Everything,
    /// `subscribers:get`, and `list:get` on A.
    Reader,
    /// `subscribers:get` and `subscribers:manage`, `list:get` and `list:manage` on A.
    Editor,
    /// `subscribers:manage` and `lists:manage_all`, but may read no subscriber.
    ManageOnly,
    /// `lists:get_all` and `lists:manage_all`, and no subscriber permission.
    ListsOnly,
    Admin,
}

use Who::*;

const CALLERS: [Who; 7] = [
    Nobody, Everything, Reader, Editor, ManageOnly, ListsOnly, Admin,
];

struct World {
    app: TestApp,
    tokens: HashMap<&'static str, String>,
    /// Lists A (the restricted callers' list) and B.
    a: i64,
    b: i64,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let a = app.create_named("A").await;
        let b = app.create_named("B").await;
        let accounts = AccountService::new(app.db.clone());
        for (role, perms) in [
            (
                "everything",
                vec![
                    UserPermission::SubscribersGetAll,
                    UserPermission::SubscribersManage,
                    UserPermission::ListsGetAll,
                    UserPermission::ListsManageAll,
                ],
            ),
            ("reader", vec![UserPermission::SubscribersGet]),
            (
                "editor",
                vec![
                    UserPermission::SubscribersGet,
                    UserPermission::SubscribersManage,
                ],
            ),
            (
                "manage-only",
                vec![
                    UserPermission::SubscribersManage,
                    UserPermission::ListsManageAll,
                ],
            ),
            (
                "lists-only",
                vec![UserPermission::ListsGetAll, UserPermission::ListsManageAll],
            ),
        ] {
            accounts.create_role(role, RoleKind::User).await.unwrap();
            accounts
                .set_user_permissions(role, &perms, true)
                .await
                .unwrap();
        }
        accounts.create_role("on-a", RoleKind::List).await.unwrap();
        accounts
            .set_list_permissions("on-a", ListPermission::Get, &[a], true)
            .await
            .unwrap();
        accounts
            .create_role("manage-a", RoleKind::List)
            .await
            .unwrap();
        for permission in [ListPermission::Get, ListPermission::Manage] {
            accounts
                .set_list_permissions("manage-a", permission, &[a], true)
                .await
                .unwrap();
        }
        let mut tokens = HashMap::new();
        for (user, role, list_role) in [
            ("everything", "everything", None),
            ("reader", "reader", Some("on-a")),
            ("editor", "editor", Some("manage-a")),
            ("manage-only", "manage-only", None),
            ("lists-only", "lists-only", None),
        ] {
            let issued = accounts.create_user(user, role, list_role).await.unwrap();
            tokens.insert(user, issued.token);
        }
        Self { app, tokens, a, b }
    }

    async fn call(
        &self,
        who: Who,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let user = match who {
            Nobody => None,
            Everything => Some("everything"),
            Reader => Some("reader"),
            Editor => Some("editor"),
            ManageOnly => Some("manage-only"),
            ListsOnly => Some("lists-only"),
            Admin => None,
        };
        let mut request = match (who, user) {
            (Admin, _) => self.app.request(method, path),
            (_, Some(user)) => self.app.anonymous(method, path).header(
                "Authorization",
                format!("token {user}:{}", self.tokens[user]),
            ),
            (_, None) => self.app.anonymous(method, path),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }
}

fn may_read_all(who: Who) -> bool {
    matches!(who, Everything | Admin)
}

fn may_read_on_a(who: Who) -> bool {
    matches!(who, Everything | Admin | Reader | Editor)
}

fn may_change_on_a(who: Who) -> bool {
    matches!(who, Everything | Admin | Editor)
}

#[tokio::test]
async fn reading_subscribers_follows_the_callers_lists() {
    let world = World::new().await;
    let (a, b) = (world.a, world.b);
    let on_a = subscriber_id(&world.app, "on-a@example.com", &[a]).await;
    let on_b = subscriber_id(&world.app, "on-b@example.com", &[b]).await;
    subscriber_id(&world.app, "orphan@example.com", &[]).await;
    for who in CALLERS {
        let (status, page) = world.call(who, Method::GET, "/api/subscribers", None).await;
        let expected = if may_read_all(who) {
            (StatusCode::OK, 3)
        } else if may_read_on_a(who) {
            (StatusCode::OK, 1)
        } else {
            (StatusCode::FORBIDDEN, -1)
        };
        assert_eq!(status, expected.0, "{who:?}: {page}");
        if status == StatusCode::OK {
            assert_eq!(page["data"]["total"], expected.1, "{who:?}");
            if !may_read_all(who) {
                assert_eq!(page["data"]["results"][0]["id"], on_a);
            }
        }
        let (status, _) = world
            .call(
                who,
                Method::GET,
                &format!("/api/subscribers?list_id={b}"),
                None,
            )
            .await;
        assert_eq!(
            status == StatusCode::OK,
            may_read_all(who),
            "{who:?} filtering on B"
        );
        let (status, _) = world
            .call(who, Method::GET, &format!("/api/subscribers/{on_a}"), None)
            .await;
        assert_eq!(
            status == StatusCode::OK,
            may_read_on_a(who),
            "{who:?} reading on-a"
        );
        // A subscriber the caller may not see and one that does not exist get the same answer.
        let (hidden, _) = world
            .call(who, Method::GET, &format!("/api/subscribers/{on_b}"), None)
            .await;
        let (missing, _) = world
            .call(who, Method::GET, "/api/subscribers/999", None)
            .await;
        if may_read_all(who) {
            assert_eq!(
                (hidden, missing),
                (StatusCode::OK, StatusCode::NOT_FOUND),
                "{who:?}"
            );
        } else {
            assert_eq!(
                (hidden, missing),
                (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
                "{who:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_restricted_caller_sees_only_its_lists_in_a_subscriber() {
    let world = World::new().await;
    let both = subscriber_id(&world.app, "both@example.com", &[world.a, world.b]).await;
    let (_, reader) = world
        .call(
            Reader,
            Method::GET,
            &format!("/api/subscribers/{both}"),
            None,
        )
        .await;
    let lists: Vec<i64> = reader["data"]["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(lists, [world.a]);
    let (_, admin) = world
        .call(
            Admin,
            Method::GET,
            &format!("/api/subscribers/{both}"),
            None,
        )
        .await;
    assert_eq!(admin["data"]["lists"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn changing_subscribers_needs_manage_on_them_and_on_every_list_named() {
    let world = World::new().await;
    let (a, b) = (world.a, world.b);
    for who in CALLERS {
        let tag = format!("{who:?}").to_lowercase();
        let on_a = subscriber_id(&world.app, &format!("{tag}-a@example.com"), &[a]).await;
        let on_b = subscriber_id(&world.app, &format!("{tag}-b@example.com"), &[b]).await;
        let ok = may_change_on_a(who);
        let cases: Vec<(Method, String, Value, bool)> = vec![
            (
                Method::POST,
                "/api/subscribers".into(),
                json!({"email": format!("{tag}-new@example.com"), "lists": [a]}),
                ok,
            ),
            (
                Method::POST,
                "/api/subscribers".into(),
                json!({"email": format!("{tag}-nolist@example.com")}),
                may_read_all(who),
            ),
            (
                Method::POST,
                "/api/subscribers".into(),
                json!({"email": format!("{tag}-newb@example.com"), "lists": [a, b]}),
                may_read_all(who),
            ),
            (
                Method::PATCH,
                format!("/api/subscribers/{on_a}"),
                json!({"name": "x"}),
                ok,
            ),
            (
                Method::PATCH,
                format!("/api/subscribers/{on_b}"),
                json!({"name": "x"}),
                may_read_all(who),
            ),
            (
                Method::PATCH,
                format!("/api/subscribers/{on_a}"),
                json!({"lists": [a, b]}),
                may_read_all(who),
            ),
            (
                Method::PUT,
                "/api/subscribers/lists".into(),
                json!({"ids": [on_a], "action": "add", "target_list_ids": [a]}),
                ok,
            ),
            (
                Method::PUT,
                "/api/subscribers/lists".into(),
                json!({"ids": [on_a], "action": "add", "target_list_ids": [b]}),
                may_read_all(who),
            ),
            (
                Method::PUT,
                "/api/subscribers/lists".into(),
                json!({"ids": [on_a, on_b], "action": "unsubscribe", "target_list_ids": [a]}),
                may_read_all(who),
            ),
            (
                Method::PUT,
                format!("/api/subscribers/{on_b}/blocklist"),
                json!({}),
                may_read_all(who),
            ),
            (
                Method::PUT,
                "/api/subscribers/blocklist".into(),
                json!({"ids": [on_a, on_b]}),
                may_read_all(who),
            ),
            (
                Method::PUT,
                format!("/api/subscribers/{on_a}/blocklist"),
                json!({}),
                ok,
            ),
            (
                Method::DELETE,
                format!("/api/subscribers/{on_a}"),
                json!({}),
                ok,
            ),
            // Gone already for those who may delete it, and B's subscriber out of a scoped caller's reach: a
            // bulk delete skips both, so it succeeds for every caller who may delete subscribers.
            (
                Method::DELETE,
                format!("/api/subscribers?id={on_a}&id={on_b}"),
                json!({}),
                ok,
            ),
        ];
        for (method, path, body, allowed) in cases {
            let (status, answer) = world
                .call(who, method.clone(), &path, Some(body.clone()))
                .await;
            let expected = if allowed {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, expected, "{who:?} {method} {path} {body}: {answer}");
        }
    }
    assert_counts_exact(&world.app, "the permission matrix").await;
}

#[tokio::test]
async fn the_public_subscription_needs_no_credentials_and_ignores_them() {
    let world = World::new().await;
    let list = world
        .app
        .create_list(json!({"name": "open", "type": "public"}))
        .await;
    for who in CALLERS {
        let (status, body) = world
            .call(
                who,
                Method::POST,
                "/api/public/subscription",
                Some(
                    json!({"email": format!("{who:?}@example.com"), "list_uuids": [list["uuid"]]}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{who:?}: {body}");
    }
}

/// Creates `n` more private lists straight in the database (the API would take minutes) and returns every list id.
pub(crate) async fn many_lists(app: &TestApp, n: u32) -> Vec<i64> {
    use sea_orm::{ConnectionTrait, Statement};
    let first = app.create_named("first").await;
    crate::helpers::insert_copies(
        app,
        "lists",
        first,
        n,
        "uuid, name, name_folded, type, optin, status, tags, description, created_at, updated_at",
        "{uuid}, 'bulk ' || v, 'bulk ' || v, t.type, t.optin, t.status, t.tags, t.description, t.created_at, \
         t.updated_at",
    )
    .await;
    let backend = app.db.get_database_backend();
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT id FROM lists ORDER BY id",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get_by_index::<i64>(0).unwrap())
        .collect()
}

#[tokio::test]
async fn a_list_role_over_forty_thousand_lists_serves_every_read_and_write() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::spawn().await;
    // Two bound values per list used to exceed both backends' limits (SQLite 32,766, PostgreSQL 65,535): 503.
    let lists = many_lists(&app, 40_000).await;
    let accounts = AccountService::new(app.db.clone());
    accounts.create_role("wide", RoleKind::User).await.unwrap();
    accounts
        .set_user_permissions(
            "wide",
            &[
                UserPermission::SubscribersGet,
                UserPermission::SubscribersManage,
            ],
            true,
        )
        .await
        .unwrap();
    accounts
        .create_role("all-lists", RoleKind::List)
        .await
        .unwrap();
    for permission in [ListPermission::Get, ListPermission::Manage] {
        accounts
            .set_list_permissions("all-lists", permission, &lists[..1], true)
            .await
            .unwrap();
    }
    let backend = app.db.get_database_backend();
    app.db
        .execute_raw(Statement::from_string(
            backend,
            "INSERT INTO list_permissions (role_id, list_id, permission) \
             SELECT r.id, l.id, p.permission FROM roles r, lists l, list_permissions p \
             WHERE r.name = 'all-lists' AND p.role_id = r.id AND l.id <> p.list_id",
        ))
        .await
        .unwrap();
    let token = accounts
        .create_user("wide", "wide", Some("all-lists"))
        .await
        .unwrap()
        .token;
    let call = |method: Method, path: &str, body: Option<Value>| {
        let mut request = app
            .anonymous(method, path)
            .header("Authorization", format!("token wide:{token}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move { read(request.send().await.unwrap()).await }
    };
    let last = *lists.last().unwrap();
    let (status, page) = call(Method::GET, "/api/lists?per_page=2", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"]["total"], lists.len());
    let (status, created) = call(
        Method::POST,
        "/api/subscribers",
        Some(json!({"email": "wide@example.com", "lists": [lists[0], last]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    assert_eq!(created["data"]["lists"].as_array().unwrap().len(), 2);
    let (status, page) = call(Method::GET, "/api/subscribers?per_page=5", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"]["total"], 1);
    let (status, page) = call(Method::GET, "/api/subscribers?search=wide&per_page=5", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"]["total"], 1);
    let (status, one) = call(Method::GET, &format!("/api/subscribers/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    let (status, body) = call(Method::DELETE, "/api/lists?query=bulk%2039999", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(Method::DELETE, &format!("/api/subscribers/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The subscriber's `{list id: status}` as the admin sees it.
async fn admin_view(app: &TestApp, id: i64) -> std::collections::BTreeMap<i64, String> {
    crate::subscribers::memberships(&crate::subscribers::subscriber(app, id).await)
}

#[tokio::test]
async fn an_anonymous_subscription_never_brings_a_subscriber_into_a_scoped_callers_reach() {
    let world = World::new().await;
    let (a, b) = (world.a, world.b);
    let (status, list) = read(
        world
            .app
            .put_json(&format!("/api/lists/{a}"), &json!({"type": "public"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let uuid = list["data"]["uuid"].as_str().unwrap().to_owned();
    let victim = crate::subscribers::create_subscriber(
        &world.app,
        json!({"email": "victim@example.com", "lists": [b], "attribs": {"ssn": "078-05-1120"}}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/subscribers/{victim}");
    assert_eq!(
        world.call(Editor, Method::GET, &path, None).await.0,
        StatusCode::FORBIDDEN
    );
    let form = world
        .app
        .anonymous(Method::POST, "/api/public/subscription")
        .json(&json!({"email": "victim@example.com", "list_uuids": [uuid]}))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    assert_eq!(
        admin_view(&world.app, victim).await.len(),
        2,
        "the form subscribed the victim to A"
    );
    for who in [Editor, Reader] {
        assert_eq!(
            world.call(who, Method::GET, &path, None).await.0,
            StatusCode::FORBIDDEN,
            "{who:?}"
        );
        let (status, page) = world
            .call(
                who,
                Method::GET,
                &format!("/api/subscribers?list_id={a}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["data"]["total"], 0, "{who:?} sees nobody on A: {page}");
        let (status, page) = world
            .call(who, Method::GET, "/api/subscribers?search=victim", None)
            .await;
        assert_eq!(
            (status, page["data"]["total"].clone()),
            (StatusCode::OK, json!(0)),
            "{who:?}"
        );
    }
    for (method, target, body) in [
        (Method::DELETE, path.clone(), None),
        (Method::PUT, format!("{path}/blocklist"), None),
        (Method::PATCH, path.clone(), Some(json!({"name": "taken"}))),
        (
            Method::PUT,
            "/api/subscribers/lists".to_owned(),
            Some(json!({"ids": [victim], "action": "remove", "target_list_ids": [a]})),
        ),
    ] {
        let (status, body) = world.call(Editor, method.clone(), &target, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {target}: {body}");
    }
    assert_eq!(
        admin_view(&world.app, victim).await[&b],
        "unconfirmed",
        "nothing changed"
    );
    // A new e-mail is the form's to create: its subscriber is in the reach of A's readers.
    let form = world
        .app
        .anonymous(Method::POST, "/api/public/subscription")
        .json(&json!({"email": "newcomer@example.com", "list_uuids": [uuid]}))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let (status, page) = world
        .call(
            Editor,
            Method::GET,
            "/api/subscribers?search=newcomer",
            None,
        )
        .await;
    assert_eq!(
        (status, page["data"]["total"].clone()),
        (StatusCode::OK, json!(1))
    );
    // An authenticated add of the victim to A brings it into A's readers' reach.
    let (status, body) = read(
        world
            .app
            .put_json(
                "/api/subscribers/lists",
                &json!({"ids": [victim], "action": "add", "target_list_ids": [a]}),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        world.call(Editor, Method::GET, &path, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_scoped_write_never_changes_a_subscription_on_a_list_the_caller_does_not_manage() {
    let world = World::new().await;
    let (a, b) = (world.a, world.b);
    let shared = subscriber_id(&world.app, "shared@example.com", &[a, b]).await;
    let path = format!("/api/subscribers/{shared}");
    for (method, target, body) in [
        (Method::DELETE, path.clone(), None),
        (
            Method::DELETE,
            format!("/api/subscribers?id={shared}"),
            None,
        ),
        (Method::PUT, format!("{path}/blocklist"), None),
        (
            Method::PUT,
            "/api/subscribers/blocklist".to_owned(),
            Some(json!({"ids": [shared]})),
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"status": "blocklisted"})),
        ),
    ] {
        let (status, body) = world.call(Editor, method.clone(), &target, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {target}: {body}");
    }
    let kept = admin_view(&world.app, shared).await;
    assert_eq!(
        kept[&b], "unconfirmed",
        "B's subscription is untouched: {kept:?}"
    );
    // What is wholly the caller's, the caller may delete and blocklist.
    let own = subscriber_id(&world.app, "own@example.com", &[a]).await;
    let (status, body) = world
        .call(
            Editor,
            Method::PUT,
            &format!("/api/subscribers/{own}/blocklist"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = world
        .call(
            Editor,
            Method::DELETE,
            &format!("/api/subscribers/{own}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_scoped_bulk_delete_skips_what_the_caller_may_not_read_so_a_retry_succeeds() {
    let world = World::new().await;
    let (a, b) = (world.a, world.b);
    let own = subscriber_id(&world.app, "own@example.com", &[a]).await;
    let other = subscriber_id(&world.app, "other@example.com", &[b]).await;
    let path = format!("/api/subscribers?id={own}&id={other}&id=987654");
    for attempt in 1..=2 {
        let (status, body) = world.call(Editor, Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::OK, "attempt {attempt}: {body}");
    }
    assert_eq!(
        world
            .app
            .get(&format!("/api/subscribers/{own}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin_view(&world.app, other).await.len(),
        1,
        "B's subscriber stays"
    );
}

#[tokio::test]
async fn a_list_id_filter_on_a_list_the_caller_may_not_read_is_403_even_with_get_all() {
    let world = World::new().await;
    let (a, b) = (world.a, world.b);
    subscriber_id(&world.app, "on-b@example.com", &[b]).await;
    let accounts = AccountService::new(world.app.db.clone());
    accounts
        .create_role("all-subscribers", RoleKind::User)
        .await
        .unwrap();
    accounts
        .set_user_permissions(
            "all-subscribers",
            &[UserPermission::SubscribersGetAll],
            true,
        )
        .await
        .unwrap();
    let token = accounts
        .create_user("auditor", "all-subscribers", Some("on-a"))
        .await
        .unwrap()
        .token;
    let get = |query: String| {
        let request = world
            .app
            .anonymous(Method::GET, &format!("/api/subscribers?{query}"))
            .header("Authorization", format!("token auditor:{token}"));
        async move { read(request.send().await.unwrap()).await }
    };
    let (status, page) = get(String::new()).await;
    assert_eq!(
        (status, page["data"]["total"].clone()),
        (StatusCode::OK, json!(1))
    );
    let (status, page) = get(format!("list_id={a}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for query in [
        format!("list_id={b}"),
        "list_id=987654".to_owned(),
        format!("list_id={a}&list_id={b}"),
    ] {
        let (status, body) = get(query.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{query}: {body}");
    }
}

#[tokio::test]
async fn a_scoped_read_racing_moves_off_the_callers_lists_never_sees_the_moved_subscriber() {
    let world = World::new().await;
    let (a, b) = (world.a, world.b);
    let moving = crate::subscribers::create_subscriber(
        &world.app,
        json!({"email": "moving@example.com", "lists": [a], "attribs": {"phase": "in"}}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/subscribers/{moving}");
    let writes = async {
        for round in 0..150 {
            for (lists, phase) in [(vec![a], "in"), (vec![b], "out")] {
                let body = json!({"email": "moving@example.com", "lists": lists,
                    "attribs": {"phase": phase, "round": round}});
                let (status, body) = world.call(Admin, Method::PUT, &path, Some(body)).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }
    };
    let reads = async {
        let (mut served, mut refused) = (0, 0);
        for _ in 0..600 {
            let (status, body) = world.call(Reader, Method::GET, &path, None).await;
            match status {
                StatusCode::OK => {
                    // Served only as it is on the caller's list: never the state moved off it.
                    assert_eq!(body["data"]["attribs"]["phase"], "in", "{body}");
                    served += 1;
                }
                StatusCode::FORBIDDEN => refused += 1,
                other => panic!("{other}: {body}"),
            }
        }
        (served, refused)
    };
    let ((), (served, refused)) = tokio::join!(writes, reads);
    assert!(
        served + refused == 600,
        "{served} served, {refused} refused"
    );
}
