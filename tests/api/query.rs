use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, expect_error, ids, read};

#[tokio::test]
async fn search_is_case_insensitive_and_every_word_must_occur() {
    let app = TestApp::spawn().await;
    for name in [
        "Weekly Newsletter",
        "Monthly newsletter",
        "Weekly digest",
        "ÜBER News",
    ] {
        app.create_named(name).await;
    }
    let q = |query: &str| format!("query={query}&order_by=name&order=asc");
    assert_eq!(
        app.names(&q("NEWS")).await,
        ["Monthly newsletter", "Weekly Newsletter", "ÜBER News"]
    );
    assert_eq!(app.names(&q("weekly%20news")).await, ["Weekly Newsletter"]);
    assert_eq!(
        app.names(&q("news%20%20weekly")).await,
        ["Weekly Newsletter"]
    );
    assert_eq!(app.names(&q("über")).await, ["ÜBER News"]);
    assert_eq!(
        app.names(&q("eekl")).await,
        ["Weekly digest", "Weekly Newsletter"]
    );
    assert!(app.names(&q("weekly%20monthly")).await.is_empty());
}

#[tokio::test]
async fn wildcards_and_punctuation_in_search_are_literal() {
    let app = TestApp::spawn().await;
    for name in [
        "50% off",
        "500 off",
        "a_b",
        "axb",
        "back\\slash",
        "quote's \"q\"",
        "(x) & | !y:",
    ] {
        app.create_named(name).await;
    }
    let q = |query: &str| format!("query={}", urlencode(query));
    assert_eq!(app.names(&q("%")).await, ["50% off"]);
    assert_eq!(app.names(&q("_")).await, ["a_b"]);
    assert_eq!(app.names(&q("\\")).await, ["back\\slash"]);
    assert_eq!(app.names(&q("'s")).await, ["quote's \"q\""]);
    assert_eq!(app.names(&q("\"q\"")).await, ["quote's \"q\""]);
    assert_eq!(app.names(&q("(x) & | !y:")).await, ["(x) & | !y:"]);
    assert_eq!(app.names(&q("!")).await, ["(x) & | !y:"]);
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn hostile_search_input_never_fails() {
    let app = TestApp::spawn().await;
    app.create_named("target").await;
    let long = "a".repeat(100);
    for query in [
        "'; DROP TABLE lists; --",
        "%%%___",
        "🎉",
        long.as_str(),
        "\\%\\_",
        "!!!",
        "&&",
        ":*",
        "<->",
    ] {
        let data = app.list(&format!("query={}", urlencode(query))).await;
        assert_eq!(data["total"], 0, "{query}");
    }
    assert_eq!(app.names("").await, ["target"]);
}

#[tokio::test]
async fn a_nul_in_search_or_tag_filters_matches_nothing() {
    let app = TestApp::spawn().await;
    app.create_list(json!({"name": "ab", "tags": ["t"]})).await;
    for query in ["query=a%00b", "tag=%00", "tag=t&query=%00"] {
        assert_eq!(app.list(query).await["total"], 0, "{query}");
    }
    let (status, _) = read(app.delete("/api/lists?query=a%00").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.names("").await, ["ab"], "nothing was deleted");
}

#[tokio::test]
async fn tag_filters_require_every_tag_exactly() {
    let app = TestApp::spawn().await;
    app.create_list(json!({"name": "both", "tags": ["a", "b"]}))
        .await;
    app.create_list(json!({"name": "a only", "tags": ["a"]}))
        .await;
    app.create_list(json!({"name": "upper", "tags": ["A", "b"]}))
        .await;
    app.create_list(json!({"name": "none"})).await;
    let q = |query: &str| format!("{query}&order_by=name&order=asc");
    assert_eq!(app.names(&q("tag=a")).await, ["a only", "both"]);
    assert_eq!(app.names(&q("tag=a&tag=b")).await, ["both"]);
    assert_eq!(app.names(&q("tag=A")).await, ["upper"]);
    assert_eq!(app.names(&q("tag=b")).await, ["both", "upper"]);
    assert!(app.names(&q("tag=")).await.is_empty());
    assert!(app.names(&q("tag=%25")).await.is_empty());
}

#[tokio::test]
async fn status_type_and_optin_filters_combine_with_and() {
    let app = TestApp::spawn().await;
    app.create_list(json!({"name": "pub-double", "type": "public", "optin": "double"}))
        .await;
    app.create_list(json!({"name": "pub-single", "type": "public"}))
        .await;
    app.create_list(json!({"name": "priv-double", "optin": "double", "status": "archived"}))
        .await;
    let q = |query: &str| format!("{query}&order_by=name&order=asc");
    assert_eq!(
        app.names(&q("type=public")).await,
        ["pub-double", "pub-single"]
    );
    assert_eq!(
        app.names(&q("optin=double")).await,
        ["priv-double", "pub-double"]
    );
    assert_eq!(
        app.names(&q("type=public&optin=double")).await,
        ["pub-double"]
    );
    assert_eq!(app.names(&q("status=archived")).await, ["priv-double"]);
    assert_eq!(
        app.names(&q("status=active&type=private")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        app.names(&q("query=pub&optin=single")).await,
        ["pub-single"]
    );
}

#[tokio::test]
async fn unknown_filter_values_are_400() {
    let app = TestApp::spawn().await;
    for query in [
        "status=deleted",
        "type=temporary",
        "optin=triple",
        "order_by=type",
        "order=up",
        "order=Asc",
        "minimal=yes",
    ] {
        expect_error(
            app.get(&format!("/api/lists?{query}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
}

#[tokio::test]
async fn the_default_order_is_newest_first() {
    let app = TestApp::spawn().await;
    for name in ["first", "second", "third"] {
        app.create_named(name).await;
    }
    assert_eq!(app.names("").await, ["third", "second", "first"]);
}

#[tokio::test]
async fn ordering_applies_to_the_whole_result_before_pagination() {
    let app = TestApp::spawn().await;
    // Created in an order unrelated to their names.
    for name in ["m", "c", "x", "a", "q", "b", "z", "k"] {
        app.create_named(name).await;
    }
    assert_eq!(
        app.names("order_by=name&order=asc&per_page=3").await,
        ["a", "b", "c"]
    );
    assert_eq!(
        app.names("order_by=name&order=asc&per_page=3&page=2").await,
        ["k", "m", "q"]
    );
    assert_eq!(
        app.names("order_by=name&order=DESC&per_page=2").await,
        ["z", "x"]
    );
    assert_eq!(
        app.names("order_by=name&order=ASC&per_page=2&page=4").await,
        ["x", "z"]
    );
}

#[tokio::test]
async fn names_sort_case_insensitively_with_id_breaking_ties() {
    let app = TestApp::spawn().await;
    let first = app.create_named("same").await;
    app.create_named("Beta").await;
    let second = app.create_named("Same").await;
    app.create_named("alpha").await;
    let page = app.list("order_by=name&order=asc").await;
    let names: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "Beta", "same", "Same"]);
    assert_eq!(&ids(&page)[2..], [first, second]);
    let page = app.list("order_by=name&order=desc").await;
    assert_eq!(&ids(&page)[..2], [second, first]);
}

#[tokio::test]
async fn every_sort_field_is_accepted_and_ties_fall_back_to_id() {
    let app = TestApp::spawn().await;
    let a = app
        .create_list(json!({"name": "a", "status": "archived"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let b = app.create_named("b").await;
    let c = app.create_named("c").await;
    assert_eq!(ids(&app.list("order_by=id&order=asc").await), [a, b, c]);
    assert_eq!(ids(&app.list("order_by=id").await), [c, b, a]);
    assert_eq!(
        ids(&app.list("order_by=subscriber_count&order=asc").await),
        [a, b, c]
    );
    assert_eq!(ids(&app.list("order_by=status&order=asc").await), [b, c, a]);
    assert_eq!(
        ids(&app.list("order_by=created_at&order=asc").await),
        [a, b, c]
    );
    app.put_json(
        &format!("/api/lists/{a}"),
        &json!({"description": "touched"}),
    )
    .await;
    assert_eq!(ids(&app.list("order_by=updated_at&order=desc").await)[0], a);
}

#[tokio::test]
async fn total_counts_every_match_even_past_the_last_page() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.create_named(&format!("l{i}")).await;
    }
    let page = app.list("per_page=2&page=3").await;
    assert_eq!(page["total"], 5);
    assert_eq!(ids(&page).len(), 1);
    let past = app.list("per_page=2&page=99").await;
    assert_eq!(past["total"], 5);
    assert!(ids(&past).is_empty());
    assert_eq!(past["page"], 99);
    // The same for a search, a tag filter and a status filter, whose totals are read differently.
    app.create_list(json!({"name": "tagged", "tags": ["t"], "status": "archived"}))
        .await;
    for (filter, total) in [("query=l", 5), ("tag=t", 1), ("status=archived", 1)] {
        for page in [1, 99, 99] {
            let read = app.list(&format!("{filter}&per_page=2&page={page}")).await;
            assert_eq!(read["total"], total, "{filter}, page {page}");
        }
    }
    assert_eq!(app.list("query=nothing-like-it").await["total"], 0);
}

#[tokio::test]
async fn per_page_all_returns_everything_and_reports_zero() {
    let app = TestApp::spawn().await;
    for i in 0..25 {
        app.create_named(&format!("l{i}")).await;
    }
    let page = app.list("per_page=all").await;
    assert_eq!(ids(&page).len(), 25);
    assert_eq!(page["per_page"], 0);
    let default = app.list("").await;
    assert_eq!(ids(&default).len(), 20);
    assert_eq!(default["per_page"], 20);
    assert_eq!(default["total"], 25);
    assert_eq!(ids(&app.list("per_page=all&page=3").await).len(), 25);
}

#[tokio::test]
async fn pagination_parameters_out_of_range_are_400() {
    let app = TestApp::spawn().await;
    for query in [
        "page=0",
        "page=-1",
        "page=abc",
        "page=1000000000",
        "page=99999999999999999999999",
        "per_page=0",
        "per_page=-1",
        "per_page=1000000000",
        "per_page=99999999999999999999999",
        "per_page=ALL",
        "per_page=",
    ] {
        expect_error(
            app.get(&format!("/api/lists?{query}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let page = app.list("page=999999999&per_page=999999999").await;
    assert_eq!(page["total"], 0);
}

#[tokio::test]
async fn minimal_keeps_the_shape_filters_order_and_pagination() {
    let app = TestApp::spawn().await;
    for name in ["b", "a", "c"] {
        app.create_list(json!({"name": name, "tags": ["t"]})).await;
    }
    let full = app.list("order_by=name&order=asc&per_page=2&tag=t").await;
    let minimal = app
        .list("order_by=name&order=asc&per_page=2&tag=t&minimal=true")
        .await;
    assert_eq!(ids(&full), ids(&minimal));
    assert_eq!(minimal["total"], 3);
    for list in minimal["results"].as_array().unwrap() {
        assert!(list.get("subscriber_count").is_none());
    }
    for list in full["results"].as_array().unwrap() {
        assert_eq!(list["subscriber_count"], 0);
    }
    let (status, empty) = read(app.get("/api/lists?minimal=true&query=nothing").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["data"]["results"], json!([]), "never a bare array");
}

/// `total` for listings filtered only on status, type and opt-in comes from counts the database keeps; they must
/// equal the rows actually there after every kind of change.
async fn assert_totals_exact(app: &TestApp) {
    let mut filters = vec![String::new()];
    for status in ["", "status=active", "status=archived"] {
        for list_type in ["", "type=public", "type=private"] {
            for optin in ["", "optin=single", "optin=double"] {
                let parts: Vec<&str> = [status, list_type, optin]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect();
                filters.push(parts.join("&"));
            }
        }
    }
    for filter in filters {
        let page = app.list(&format!("{filter}&per_page=all")).await;
        assert_eq!(page["total"], ids(&page).len(), "total for `{filter}`");
    }
}

#[tokio::test]
async fn totals_stay_exact_through_creates_updates_and_deletes() {
    let app = TestApp::spawn().await;
    let mut made = Vec::new();
    for i in 0..12 {
        let list = app
            .create_list(json!({
                "name": format!("count {i}"),
                "status": if i % 3 == 0 { "archived" } else { "active" },
                "type": if i % 2 == 0 { "public" } else { "private" },
                "optin": if i % 4 == 0 { "double" } else { "single" },
            }))
            .await;
        made.push(list["id"].as_i64().unwrap());
    }
    assert_totals_exact(&app).await;
    for id in &made[..4] {
        app.put_json(
            &format!("/api/lists/{id}"),
            &json!({"status": "archived", "type": "public"}),
        )
        .await;
    }
    app.put_json(
        &format!("/api/lists/{}", made[5]),
        &json!({"description": "no counted field"}),
    )
    .await;
    assert_totals_exact(&app).await;
    read(app.delete(&format!("/api/lists/{}", made[6])).await).await;
    read(
        app.delete(&format!("/api/lists?id={}&id={}", made[7], made[8]))
            .await,
    )
    .await;
    read(app.delete("/api/lists?query=count%201").await).await;
    assert_totals_exact(&app).await;
    read(app.delete("/api/lists?all=true").await).await;
    assert_totals_exact(&app).await;
    assert_eq!(app.list("").await["total"], 0);
}

/// Searches and tag filters are counted once and the count reused while no list changes; after any change the
/// total must again equal the rows there. Each filter is read twice, so the second read comes from the cache.
async fn assert_search_totals_exact(app: &TestApp) {
    for filter in [
        "query=alpha",
        "query=ALPHA%20beta",
        "tag=red",
        "tag=red&tag=blue",
        "tag=blue&tag=red&tag=red",
        "query=alpha&tag=red",
        "query=alpha&status=archived",
        "tag=red&type=public",
    ] {
        for _ in 0..2 {
            let page = app.list(&format!("{filter}&per_page=all")).await;
            assert_eq!(page["total"], ids(&page).len(), "total for `{filter}`");
        }
    }
}

#[tokio::test]
async fn search_and_tag_totals_follow_every_change_to_the_lists() {
    let app = TestApp::spawn().await;
    let mut made = Vec::new();
    for i in 0..10 {
        let list = app
            .create_list(json!({
                "name": format!("{} {} {i}", if i % 2 == 0 { "Alpha" } else { "Gamma" }, if i % 3 == 0 { "beta" } else { "delta" }),
                "tags": if i % 2 == 0 { json!(["red", "blue"]) } else { json!(["red"]) },
                "type": if i % 4 == 0 { "public" } else { "private" },
            }))
            .await;
        made.push(list["id"].as_i64().unwrap());
    }
    assert_search_totals_exact(&app).await;
    assert_eq!(app.list("query=alpha").await["total"], 5);

    app.create_list(json!({"name": "alpha beta new", "tags": ["red", "blue"]}))
        .await;
    assert_search_totals_exact(&app).await;
    let renamed = format!("/api/lists/{}", made[0]);
    app.put_json(&renamed, &json!({"name": "renamed away"}))
        .await;
    assert_search_totals_exact(&app).await;
    app.put_json(&renamed, &json!({"tags": []})).await;
    assert_search_totals_exact(&app).await;
    app.put_json(
        &format!("/api/lists/{}", made[1]),
        &json!({"tags": ["blue", "red"], "name": "alpha again"}),
    )
    .await;
    assert_search_totals_exact(&app).await;
    app.put_json(
        &format!("/api/lists/{}", made[2]),
        &json!({"status": "archived", "type": "public"}),
    )
    .await;
    assert_search_totals_exact(&app).await;
    app.execute_sql("UPDATE lists SET name = 'Alpha direct', name_folded = 'alpha direct' WHERE name LIKE 'Gamma%'")
        .await;
    assert_search_totals_exact(&app).await;
    read(app.delete(&format!("/api/lists/{}", made[4])).await).await;
    assert_search_totals_exact(&app).await;
    read(app.delete("/api/lists?query=beta").await).await;
    assert_search_totals_exact(&app).await;
    read(app.delete("/api/lists?all=true").await).await;
    assert_search_totals_exact(&app).await;
    assert_eq!(app.list("tag=red").await["total"], 0);
}

#[tokio::test]
async fn totals_stay_exact_after_the_version_migration_is_rolled_back_and_reapplied() {
    use migration::MigratorTrait;
    let database = crate::helpers::TestDatabase::create().await;
    let db = sea_orm::Database::connect(&database.url).await.unwrap();
    migration::Migrator::up(&db, None).await.unwrap();
    migration::Migrator::down(&db, Some(1)).await.unwrap();
    migration::Migrator::up(&db, None).await.unwrap();
    db.close().await.unwrap();
    let app = TestApp::spawn_on(database, Some(crate::helpers::ADMIN_PASSWORD)).await;
    let id = app
        .create_list(json!({"name": "alpha beta", "tags": ["red"], "status": "archived"}))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_search_totals_exact(&app).await;
    app.put_json(
        &format!("/api/lists/{id}"),
        &json!({"name": "gamma", "status": "active"}),
    )
    .await;
    assert_search_totals_exact(&app).await;
    assert_totals_exact(&app).await;
}

/// Every id of a listing in its order, read page by page, checked against the whole listing read at once.
async fn assert_pages_match(app: &TestApp, query: &str, per_page: usize) {
    let whole = ids(&app.list(&format!("{query}&per_page=all")).await);
    let mut paged = Vec::new();
    for page in 1.. {
        let found = app
            .list(&format!("{query}&per_page={per_page}&page={page}"))
            .await;
        assert_eq!(found["total"], whole.len(), "{query}, page {page}");
        if ids(&found).is_empty() {
            break;
        }
        paged.extend(ids(&found));
    }
    assert_eq!(paged, whole, "{query}");
}

#[tokio::test]
async fn deep_pages_agree_with_the_whole_ordering_before_and_after_writes() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for i in 0..130 {
        let body = json!({
            "name": format!("Deep {}", (i * 37) % 11),
            "status": if i % 4 == 0 { "archived" } else { "active" },
            "tags": if i % 3 == 0 { vec!["third"] } else { vec![] },
        });
        created.push(app.create_list(body).await["id"].as_i64().unwrap());
    }
    let orderings = [
        "order_by=id&order=desc",
        "order_by=name&order=asc",
        "order_by=status&order=desc",
        "order_by=created_at&order=asc",
        "order_by=updated_at&order=desc",
        "order_by=subscriber_count&order=desc",
    ];
    for ordering in orderings {
        assert_pages_match(&app, ordering, 20).await;
        assert_pages_match(&app, &format!("{ordering}&tag=third"), 9).await;
    }
    // Writes move lists between the pages already served (whose positions Roster may have kept).
    let (status, _) = read(app.delete(&format!("/api/lists/{}", created[2])).await).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = read(
        app.put_json(
            &format!("/api/lists/{}", created[110]),
            &json!({"name": "AAA first"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.create_named("Deep newcomer").await;
    for ordering in orderings {
        assert_pages_match(&app, ordering, 20).await;
    }
    // A deep page asked first after a write (as when another instance wrote) cannot start from a stale mark.
    for (i, ordering) in orderings.iter().enumerate() {
        assert_pages_match(&app, ordering, 20).await;
        app.create_named(&format!("AAA {i}")).await;
        let deep = ids(&app.list(&format!("{ordering}&per_page=20&page=6")).await);
        let whole = ids(&app.list(&format!("{ordering}&per_page=all")).await);
        assert_eq!(deep, whole[100..120], "{ordering}");
    }
}

/// The e-mails of the subscribers `query` (listmonk's SQL expression) selects, in e-mail order; or the 400's
/// message.
async fn selected(app: &TestApp, query: &str) -> Result<Vec<String>, String> {
    let response = app
        .request(reqwest::Method::GET, "/api/subscribers")
        .query(&[
            ("query", query),
            ("per_page", "all"),
            ("order_by", "email"),
            ("order", "asc"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    match status {
        StatusCode::OK => Ok(body["data"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["email"].as_str().unwrap().to_owned())
            .collect()),
        StatusCode::BAD_REQUEST => Err(body["message"].as_str().unwrap().to_owned()),
        other => panic!("{query}: {other} {body}"),
    }
}

#[tokio::test]
async fn query_numbers_compare_exactly_or_are_refused_alike_on_every_backend() {
    use crate::subscribers::create_subscriber;
    let app = TestApp::spawn().await;
    for (email, n) in [
        ("u64max@x.io", json!(18_446_744_073_709_551_615_u64)),
        ("u64near@x.io", json!(18_446_744_073_709_551_614_u64)),
        ("float@x.io", json!(18_446_744_073_709_552_000.0)),
        ("above@x.io", json!(9_007_199_254_740_993_i64)),
        ("two53@x.io", json!(9_007_199_254_740_992_i64)),
        ("tenth@x.io", json!(0.1)),
        ("third@x.io", json!(0.3)),
        ("negzero@x.io", json!(-0.0)),
        ("zero@x.io", json!(0)),
        ("zerof@x.io", json!(0.0)),
        ("tie@x.io", json!(-1_971_866_499_975_272.2)),
    ] {
        create_subscriber(&app, json!({"email": email, "attribs": {"n": n}})).await;
    }
    // Past 2^53, or not the shortest decimal of a float: refused, naming the number and what to write instead.
    for (query, says) in [
        (
            "attribs->>'n' = 18446744073709551615",
            "the number 18446744073709551615 cannot be compared exactly: numbers must be at most 9007199254740992 (2^53) in magnitude",
        ),
        (
            "attribs->>'n' > 9007199254740993",
            "the number 9007199254740993 cannot be compared exactly: numbers must be at most 9007199254740992",
        ),
        (
            "attribs->>'n' < -9007199254740993",
            "the number -9007199254740993 cannot be compared exactly",
        ),
        (
            "attribs->'n' = '18446744073709551614'",
            "the number 18446744073709551614 cannot be compared exactly",
        ),
        (
            "attribs->>'n' IN (1, 1e16)",
            "the number 1e16 cannot be compared exactly",
        ),
        (
            "attribs->>'n' = 0.30000000000000001",
            "the number 0.30000000000000001 cannot be compared exactly: it is not the shortest decimal of a 64-bit float; write 0.3",
        ),
        (
            "attribs->>'n' < -1971866499975272.3",
            "write -1971866499975272.2",
        ),
        (
            "18446744073709551615 = 18446744073709551614",
            "the number 18446744073709551615 cannot be compared exactly",
        ),
    ] {
        let message = selected(&app, query).await.expect_err(query);
        assert!(message.contains(says), "{query}: {message}");
    }
    // Within the bound, the same rows on SQLite and PostgreSQL, exactly.
    let zeros = ["negzero@x.io", "zero@x.io", "zerof@x.io"];
    for (query, expected) in [
        (
            "attribs->>'n' > 9007199254740992",
            &["above@x.io", "float@x.io", "u64max@x.io", "u64near@x.io"][..],
        ),
        ("attribs->>'n' = 9007199254740992", &["two53@x.io"]),
        (
            "attribs->>'n' >= 9007199254740992.0",
            &[
                "above@x.io",
                "float@x.io",
                "two53@x.io",
                "u64max@x.io",
                "u64near@x.io",
            ],
        ),
        ("attribs->>'n' = 0.3", &["third@x.io"]),
        ("attribs->'n' = '0.1'", &["tenth@x.io"]),
        ("attribs->>'n' = -0.0", &zeros),
        ("attribs->>'n' = 0", &zeros),
        ("attribs->>'n' < 0", &["tie@x.io"]),
        ("attribs->>'n' = -1971866499975272.2", &["tie@x.io"]),
        ("attribs->>'n' < -1971866499975272", &["tie@x.io"]),
        ("attribs->>'n' < -1971866499975272.2", &[]),
        // -0.0 is stored as 0.0 (PostgreSQL's jsonb has no negative zero), so its text is the same too.
        ("attribs->>'n' = '0.0'", &["negzero@x.io", "zerof@x.io"]),
        ("attribs->>'n' = '-0.0'", &[]),
    ] {
        assert_eq!(selected(&app, query).await.unwrap(), expected, "{query}");
    }
    let (_, page) = read(
        app.get("/api/subscribers?query=subscribers.email%3D%27negzero%40x.io%27")
            .await,
    )
    .await;
    assert_eq!(
        page["data"]["results"][0]["attribs"].to_string(),
        r#"{"n":0.0}"#
    );
}

#[tokio::test]
async fn a_like_pattern_of_256_characters_is_served_and_one_more_is_refused() {
    let app = TestApp::spawn().await;
    let query = |pattern: &str| {
        app.request(Method::GET, "/api/subscribers")
            .query(&[("query", format!("subscribers.name LIKE '{pattern}'"))])
            .send()
    };
    let longest = format!("%{}%", "a".repeat(254));
    let (status, body) = read(query(&longest).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let over = format!("%{}%", "a".repeat(255));
    let message = expect_error(query(&over).await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(message.contains("256"), "{message}");
}

#[tokio::test]
async fn lists_per_page_all_and_pages_over_500_are_streamed_and_equal_every_page_in_order() {
    let app = TestApp::spawn().await;
    let first = app.create_named("l0").await;
    // Names that repeat, so ties are broken by id; a few lists with subscribers, so counts differ.
    crate::helpers::insert_copies(
        &app,
        "lists",
        first,
        1_150,
        "uuid, name, name_folded, type, optin, status, tags, description, created_at, updated_at",
        "{uuid}, 'l' || (v % 37), 'l' || (v % 37), t.type, t.optin, t.status, t.tags, t.description, \
         t.created_at, t.updated_at",
    )
    .await;
    for (i, list) in [first, first + 3, first + 700].into_iter().enumerate() {
        for n in 0..=i {
            let body = json!({"email": format!("s{i}-{n}@example.com"), "lists": [list]});
            assert_eq!(
                app.post_json("/api/subscribers", &body).await.status(),
                StatusCode::OK
            );
        }
    }
    for ordering in [
        "order_by=name&order=asc",
        "order_by=subscriber_count&order=desc",
        "order_by=created_at&order=desc",
    ] {
        for filter in ["", "&query=l1", "&minimal=true"] {
            let query = format!("{ordering}{filter}");
            let mut paged = Vec::new();
            for page in 1.. {
                let read = app.list(&format!("per_page=100&page={page}&{query}")).await;
                let rows = read["results"].as_array().unwrap().clone();
                if rows.is_empty() {
                    break;
                }
                paged.extend(rows);
            }
            let response = app.get(&format!("/api/lists?per_page=all&{query}")).await;
            assert!(response.headers().get("content-length").is_none());
            let (status, all) = read(response).await;
            assert_eq!(status, StatusCode::OK, "{all}");
            assert_eq!(
                all["data"]["results"].as_array().unwrap(),
                &paged,
                "{query}"
            );
            assert_eq!(all["data"]["total"].as_u64().unwrap() as usize, paged.len());
            assert_eq!(
                (all["data"]["per_page"].clone(), all["data"]["page"].clone()),
                (json!(0), json!(1))
            );
            for page in 1..=3 {
                let response = app
                    .get(&format!("/api/lists?per_page=501&page={page}&{query}"))
                    .await;
                assert!(response.headers().get("content-length").is_none());
                let (_, body) = read(response).await;
                let from = ((page - 1) * 501).min(paged.len());
                let to = (from + 501).min(paged.len());
                assert_eq!(
                    body["data"]["results"].as_array().unwrap()[..],
                    paged[from..to],
                    "{query} {page}"
                );
                assert_eq!(body["data"]["total"], all["data"]["total"]);
                assert_eq!(body["data"]["per_page"], 501);
            }
        }
    }
    let response = app.get("/api/lists?per_page=500").await;
    assert!(response.headers().get("content-length").is_some());
}
