//! Who may do what: every endpoint × every kind of caller, with exactly which lists are seen or deleted.

use std::collections::BTreeSet;

use base64::Engine;
use reqwest::{Method, StatusCode};
use roster::domain::{ListPermission, UserPermission};
use roster::service::{AccountService, RoleKind};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, ADMIN_USER, TestApp, expect_error, read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Malformed,
    UnknownUser,
    WrongToken,
    Disabled,
    GetAll,
    ManageAll,
    ListGet,
    ListManage,
    BothAll,
    Admin,
}

use Who::*;

const EVERYONE: [Who; 11] = [
    Nobody,
    Malformed,
    UnknownUser,
    WrongToken,
    Disabled,
    GetAll,
    ManageAll,
    ListGet,
    ListManage,
    BothAll,
    Admin,
];

/// Callers who are never let in.
fn refused(who: Who) -> bool {
    matches!(
        who,
        Nobody | Malformed | UnknownUser | WrongToken | Disabled
    )
}

fn basic(user: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

/// Four lists A–D per round. `reader` may get A and B; `editor` may manage B and C (and get nothing).
struct Round {
    a: i64,
    b: i64,
    c: i64,
    d: i64,
    prefix: String,
}

impl Round {
    fn all(&self) -> [i64; 4] {
        [self.a, self.b, self.c, self.d]
    }
}

struct World {
    app: TestApp,
    accounts: AccountService,
    tokens: std::collections::HashMap<&'static str, String>,
    rounds: usize,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let accounts = AccountService::new(app.db.clone());
        for (role, perms) in [
            ("nothing", vec![]),
            ("get-all", vec![UserPermission::ListsGetAll]),
            ("manage-all", vec![UserPermission::ListsManageAll]),
            (
                "both-all",
                vec![UserPermission::ListsGetAll, UserPermission::ListsManageAll],
            ),
        ] {
            accounts.create_role(role, RoleKind::User).await.unwrap();
            accounts
                .set_user_permissions(role, &perms, true)
                .await
                .unwrap();
        }
        accounts
            .create_role("readers", RoleKind::List)
            .await
            .unwrap();
        accounts
            .create_role("editors", RoleKind::List)
            .await
            .unwrap();
        let mut tokens = std::collections::HashMap::new();
        for (user, role, list_role) in [
            ("getter", "get-all", None),
            ("manager", "manage-all", None),
            ("reader", "nothing", Some("readers")),
            ("editor", "nothing", Some("editors")),
            ("both", "both-all", None),
            ("disabled", "both-all", None),
        ] {
            let issued = accounts.create_user(user, role, list_role).await.unwrap();
            tokens.insert(user, issued.token);
        }
        accounts.set_enabled("disabled", false).await.unwrap();
        Self {
            app,
            accounts,
            tokens,
            rounds: 0,
        }
    }

    /// Fresh lists, with the list roles granted on them.
    async fn round(&mut self) -> Round {
        self.rounds += 1;
        let prefix = format!("round{}x", self.rounds);
        let mut ids = Vec::new();
        for letter in ["a", "b", "c", "d"] {
            ids.push(self.app.create_named(&format!("{prefix}{letter}")).await);
        }
        let round = Round {
            a: ids[0],
            b: ids[1],
            c: ids[2],
            d: ids[3],
            prefix,
        };
        self.accounts
            .set_list_permissions("readers", ListPermission::Get, &[round.a, round.b], true)
            .await
            .unwrap();
        self.accounts
            .set_list_permissions("editors", ListPermission::Manage, &[round.b, round.c], true)
            .await
            .unwrap();
        round
    }

    /// The `Authorization` header for a caller; API users alternate between the two accepted formats.
    fn header(&self, who: Who) -> Option<String> {
        let token = |user: &str| self.tokens[user].clone();
        match who {
            Nobody => None,
            Malformed => Some("Basic %%%".into()),
            UnknownUser => Some(format!("token ghost:{}", token("getter"))),
            WrongToken => Some(basic("getter", "x".repeat(48).as_str())),
            Disabled => Some(format!("token disabled:{}", token("disabled"))),
            GetAll => Some(format!("token getter:{}", token("getter"))),
            ManageAll => Some(basic("manager", &token("manager"))),
            ListGet => Some(basic("reader", &token("reader"))),
            ListManage => Some(format!("token editor:{}", token("editor"))),
            BothAll => Some(basic("both", &token("both"))),
            Admin => Some(basic(ADMIN_USER, ADMIN_PASSWORD)),
        }
    }

    async fn call(
        &self,
        who: Who,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.app.anonymous(method, path);
        if let Some(header) = self.header(who) {
            request = request.header("Authorization", header);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// Which of this round's lists still exist (checked as the admin).
    async fn remaining(&self, round: &Round) -> BTreeSet<i64> {
        let page = self
            .app
            .list(&format!("query={}&per_page=all", round.prefix))
            .await;
        crate::helpers::ids(&page).into_iter().collect()
    }
}

async fn expect_status(
    world: &World,
    who: Who,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    let response = world.call(who, method.clone(), path, body).await;
    let (got, json) = read(response).await;
    assert_eq!(got, status, "{who:?} {method} {path}: {json}");
    json
}

#[tokio::test]
async fn listing_shows_exactly_the_lists_the_caller_may_get() {
    let mut world = World::new().await;
    let r = world.round().await;
    for who in EVERYONE {
        let path = format!("/api/lists?query={}&per_page=all", r.prefix);
        if refused(who) {
            expect_error(
                world.call(who, Method::GET, &path, None).await,
                StatusCode::FORBIDDEN,
            )
            .await;
            continue;
        }
        let json = expect_status(&world, who, Method::GET, &path, None, StatusCode::OK).await;
        let seen: BTreeSet<i64> = crate::helpers::ids(&json["data"]).into_iter().collect();
        let expected: BTreeSet<i64> = match who {
            GetAll | BothAll | Admin => r.all().into(),
            ListGet => [r.a, r.b].into(),
            ManageAll | ListManage => BTreeSet::new(),
            _ => unreachable!(),
        };
        assert_eq!(seen, expected, "{who:?}");
        assert_eq!(
            json["data"]["total"],
            expected.len(),
            "{who:?}: total counts only visible lists"
        );
    }
}

#[tokio::test]
async fn reading_one_list_needs_get_and_reveals_nothing_without_it() {
    let mut world = World::new().await;
    let r = world.round().await;
    let missing = r.d + 1000;
    for who in EVERYONE {
        for (id, exists) in [(r.a, true), (r.c, true), (missing, false)] {
            let path = format!("/api/lists/{id}");
            let may_get = match who {
                GetAll | BothAll | Admin => true,
                ListGet => id == r.a || id == r.b,
                _ => false,
            };
            let expected = match (may_get, exists) {
                (false, _) => StatusCode::FORBIDDEN,
                (true, true) => StatusCode::OK,
                (true, false) => StatusCode::NOT_FOUND,
            };
            expect_status(&world, who, Method::GET, &path, None, expected).await;
        }
    }
}

#[tokio::test]
async fn creating_needs_lists_manage_all() {
    let world = World::new().await;
    for who in EVERYONE {
        let expected = match who {
            ManageAll | BothAll | Admin => StatusCode::OK,
            _ => StatusCode::FORBIDDEN,
        };
        let name = format!("made by {who:?}");
        expect_status(
            &world,
            who,
            Method::POST,
            "/api/lists",
            Some(json!({"name": name})),
            expected,
        )
        .await;
        let found = world
            .app
            .list(&format!("query={}", urlencoding(&name)))
            .await["total"]
            .clone();
        assert_eq!(
            found,
            json!(u64::from(expected == StatusCode::OK)),
            "{who:?}"
        );
    }
}

fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn updating_needs_manage_and_get_because_the_answer_is_the_list() {
    let mut world = World::new().await;
    let r = world.round().await;
    let missing = r.d + 1000;
    for who in EVERYONE {
        for (id, exists) in [(r.b, true), (r.a, true), (missing, false)] {
            let may_manage = match who {
                ManageAll | BothAll | Admin => true,
                ListManage => id == r.b || id == r.c,
                _ => false,
            };
            let may_get = match who {
                GetAll | BothAll | Admin => true,
                ListGet => id == r.a || id == r.b,
                _ => false,
            };
            // `manage` alone would otherwise read the list through the answer (a PUT of `{}`).
            let expected = match (may_manage && may_get, exists) {
                (false, _) => StatusCode::FORBIDDEN,
                (true, true) => StatusCode::OK,
                (true, false) => StatusCode::NOT_FOUND,
            };
            let body = json!({"description": format!("by {who:?}")});
            let path = format!("/api/lists/{id}");
            let json = expect_status(&world, who, Method::PUT, &path, Some(body), expected).await;
            if expected == StatusCode::OK {
                assert_eq!(json["data"]["description"], format!("by {who:?}"));
            }
        }
    }
    // Neither the editor (manage on B) nor the manager (manage on all) reads B through an empty update, and
    // nothing was changed by their attempts.
    for who in [ListManage, ManageAll] {
        let path = format!("/api/lists/{}", r.b);
        expect_status(
            &world,
            who,
            Method::PUT,
            &path,
            Some(json!({})),
            StatusCode::FORBIDDEN,
        )
        .await;
        expect_status(&world, who, Method::GET, &path, None, StatusCode::FORBIDDEN).await;
    }
    let b = expect_status(
        &world,
        Admin,
        Method::GET,
        &format!("/api/lists/{}", r.b),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(b["data"]["description"], "by Admin");
}

#[tokio::test]
async fn deleting_one_list_needs_manage() {
    let mut world = World::new().await;
    for who in EVERYONE {
        let r = world.round().await;
        for id in [r.a, r.b] {
            let may_manage = match who {
                ManageAll | BothAll | Admin => true,
                ListManage => id == r.b,
                _ => false,
            };
            let expected = if may_manage {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            expect_status(
                &world,
                who,
                Method::DELETE,
                &format!("/api/lists/{id}"),
                None,
                expected,
            )
            .await;
            assert_eq!(
                world.remaining(&r).await.contains(&id),
                !may_manage,
                "{who:?} {id}"
            );
        }
        let missing = r.d + 1000;
        let expected = match who {
            ManageAll | BothAll | Admin => StatusCode::NOT_FOUND,
            _ => StatusCode::FORBIDDEN,
        };
        expect_status(
            &world,
            who,
            Method::DELETE,
            &format!("/api/lists/{missing}"),
            None,
            expected,
        )
        .await;
    }
}

#[tokio::test]
async fn deleting_by_ids_is_all_or_nothing() {
    let mut world = World::new().await;
    for who in EVERYONE {
        // B and C: the editor may manage both. A and B: the editor may not manage A, so nothing goes.
        for pick in ["bc", "ab"] {
            let r = world.round().await;
            let ids: Vec<i64> = if pick == "bc" {
                vec![r.b, r.c]
            } else {
                vec![r.a, r.b]
            };
            let may = match who {
                ManageAll | BothAll | Admin => true,
                ListManage => pick == "bc",
                _ => false,
            };
            let path = format!("/api/lists?id={}&id={}", ids[0], ids[1]);
            let expected = if may {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            expect_status(&world, who, Method::DELETE, &path, None, expected).await;
            let left = world.remaining(&r).await;
            let gone: BTreeSet<i64> = r
                .all()
                .into_iter()
                .filter(|id| !left.contains(id))
                .collect();
            let expected_gone: BTreeSet<i64> = if may {
                ids.into_iter().collect()
            } else {
                BTreeSet::new()
            };
            assert_eq!(gone, expected_gone, "{who:?} {pick}");
        }
    }
}

#[tokio::test]
async fn deleting_by_query_or_all_skips_lists_the_caller_cannot_manage() {
    let mut world = World::new().await;
    for who in EVERYONE {
        for selector in ["query", "all"] {
            let r = world.round().await;
            let path = if selector == "query" {
                format!("/api/lists?query={}", r.prefix)
            } else {
                "/api/lists?all=true".to_owned()
            };
            if refused(who) {
                expect_error(
                    world.call(who, Method::DELETE, &path, None).await,
                    StatusCode::FORBIDDEN,
                )
                .await;
                assert_eq!(world.remaining(&r).await.len(), 4);
                continue;
            }
            expect_status(&world, who, Method::DELETE, &path, None, StatusCode::OK).await;
            let left = world.remaining(&r).await;
            let expected_left: BTreeSet<i64> = match who {
                ManageAll | BothAll | Admin => BTreeSet::new(),
                ListManage => [r.a, r.d].into(),
                _ => r.all().into(),
            };
            assert_eq!(left, expected_left, "{who:?} {selector}");
        }
    }
}

#[tokio::test]
async fn health_accepts_any_valid_credentials() {
    let world = World::new().await;
    for who in EVERYONE {
        let expected = if refused(who) {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::OK
        };
        expect_status(&world, who, Method::GET, "/api/health", None, expected).await;
        let expected = StatusCode::OK;
        expect_status(
            &world,
            who,
            Method::GET,
            "/api/public/lists",
            None,
            expected,
        )
        .await;
    }
}

#[tokio::test]
async fn refusals_do_not_reveal_whether_a_user_exists() {
    let world = World::new().await;
    let mut messages = BTreeSet::new();
    for who in [UnknownUser, WrongToken, Disabled] {
        messages.insert(
            expect_error(
                world.call(who, Method::GET, "/api/lists", None).await,
                StatusCode::FORBIDDEN,
            )
            .await,
        );
    }
    assert_eq!(messages.len(), 1, "{messages:?}");
}

#[tokio::test]
async fn both_header_formats_authenticate_the_same_user() {
    let world = World::new().await;
    let token = world.tokens["getter"].clone();
    for header in [
        format!("token getter:{token}"),
        format!("tokengetter:{token}"),
        basic("getter", &token),
    ] {
        let response = world
            .app
            .anonymous(Method::GET, "/api/lists")
            .header("Authorization", header.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{header}");
    }
}

#[tokio::test]
async fn disabling_deleting_and_rotating_take_effect_at_once() {
    let world = &World::new().await;
    let ok = |who| async move {
        world
            .call(who, Method::GET, "/api/lists", None)
            .await
            .status()
    };
    assert_eq!(ok(GetAll).await, StatusCode::OK);
    world.accounts.set_enabled("getter", false).await.unwrap();
    assert_eq!(ok(GetAll).await, StatusCode::FORBIDDEN);
    world.accounts.set_enabled("getter", true).await.unwrap();
    assert_eq!(ok(GetAll).await, StatusCode::OK);

    let old = world.tokens["getter"].clone();
    let new = world.accounts.rotate_token("getter").await.unwrap().token;
    assert_ne!(old, new);
    let with = |token: String| async move {
        world
            .app
            .anonymous(Method::GET, "/api/lists")
            .header("Authorization", format!("token getter:{token}"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(with(old).await, StatusCode::FORBIDDEN);
    assert_eq!(with(new.clone()).await, StatusCode::OK);

    world.accounts.delete_user("getter").await.unwrap();
    assert_eq!(with(new).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn role_changes_take_effect_at_once_and_deleted_lists_leave_list_roles() {
    let mut world = World::new().await;
    let r = world.round().await;
    world
        .accounts
        .set_list_permissions("readers", ListPermission::Get, &[r.a], false)
        .await
        .unwrap();
    let path = format!("/api/lists?query={}", r.prefix);
    let json = expect_status(&world, ListGet, Method::GET, &path, None, StatusCode::OK).await;
    assert_eq!(crate::helpers::ids(&json["data"]), [r.b]);

    read(world.app.delete(&format!("/api/lists/{}", r.b)).await).await;
    let role = world
        .accounts
        .roles()
        .await
        .unwrap()
        .into_iter()
        .find(|role| role.name == "readers")
        .unwrap();
    assert!(!role.lists.contains_key(&r.b), "{role:?}");
}

#[tokio::test]
async fn tokens_never_appear_in_the_database_or_in_responses() {
    use sea_orm::{ConnectionTrait, Statement};
    let world = World::new().await;
    let backend = world.app.db.get_database_backend();
    let rows = world
        .app
        .db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT name, status, token_sha256 FROM api_users",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 6);
    let mut stored = String::new();
    for row in rows {
        for column in ["name", "status", "token_sha256"] {
            stored.push_str(&row.try_get::<String>("", column).unwrap());
        }
    }
    let listed = serde_json::to_string(&world.accounts.users().await.unwrap()).unwrap();
    let response = world
        .call(GetAll, Method::GET, "/api/lists", None)
        .await
        .text()
        .await
        .unwrap();
    for token in world.tokens.values() {
        assert!(!stored.contains(token.as_str()));
        assert!(!listed.contains(token.as_str()));
        assert!(!response.contains(token.as_str()));
    }
}
