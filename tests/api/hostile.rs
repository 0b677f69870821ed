//! Hostile input: for every request dimension, the largest accepted input is answered correctly and one past it
//! is a 400 with a JSON message naming the limit, on GET and DELETE alike; the reproductions that once crashed
//! the process or starved the pool are answered and the process stays up.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, expect_error, read};

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `n` different words.
fn words(n: usize) -> String {
    (0..n)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts a 400 whose message contains `names`, and that the server still answers.
async fn refused(app: &TestApp, method: Method, path: &str, names: &str) {
    let response = app.request(method.clone(), path).send().await.unwrap();
    let message = expect_error(response, StatusCode::BAD_REQUEST).await;
    assert!(
        message.contains(names),
        "{method} {}…: {message}",
        &path[..path.floor_char_boundary(80)]
    );
    assert_eq!(
        app.get("/health").await.status(),
        StatusCode::OK,
        "still alive"
    );
}

async fn total(app: &TestApp, query: &str) -> i64 {
    app.list(query).await["total"].as_i64().unwrap()
}

#[tokio::test]
async fn a_search_of_a_thousand_characters_is_served_and_one_more_is_refused() {
    let app = TestApp::spawn().await;
    // Ten words of 99 characters and nine spaces: 999 characters, every word within its own bound of 100.
    let long = (0..10)
        .map(|i| format!("{i}{}", "é".repeat(98)))
        .collect::<Vec<_>>()
        .join(" ");
    app.create_named(&format!("x{long}x")).await;
    assert_eq!(total(&app, &format!("query={}", encode(&long))).await, 1);
    let over = encode(&format!("{long} é"));
    let word_over = encode(&"é".repeat(101));
    for method in [Method::GET, Method::DELETE] {
        refused(
            &app,
            method.clone(),
            &format!("/api/lists?query={over}"),
            "1000",
        )
        .await;
        refused(
            &app,
            method,
            &format!("/api/lists?query={word_over}"),
            "100",
        )
        .await;
    }
    let (status, _) = read(
        app.delete(&format!("/api/lists?query={}", encode(&long)))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        total(&app, "").await,
        0,
        "the largest accepted search deletes too"
    );
}

#[tokio::test]
async fn thirty_two_search_words_are_served_and_a_thirty_third_is_refused() {
    let app = TestApp::spawn().await;
    app.create_named(&words(32)).await;
    assert_eq!(
        total(&app, &format!("query={}", encode(&words(32)))).await,
        1
    );
    for method in [Method::GET, Method::DELETE] {
        let path = format!("/api/lists?query={}", encode(&words(33)));
        refused(&app, method, &path, "32").await;
    }
    // Repeats count once: a thousand characters of one repeated word is one word.
    let repeated = vec!["w1"; 333].join(" ");
    assert_eq!(
        total(&app, &format!("query={}", encode(&repeated))).await,
        1
    );
}

#[tokio::test]
async fn the_search_that_overflowed_a_worker_stack_is_refused_and_the_process_lives() {
    let app = TestApp::spawn().await;
    app.create_named("a").await;
    // 14,000 words (a 28 KB URL): once a process abort, on GET and DELETE.
    let query = vec!["a"; 14_000].join("+");
    let distinct = (0..8_000)
        .map(|i| format!("{i}"))
        .collect::<Vec<_>>()
        .join("+");
    for method in [Method::GET, Method::DELETE] {
        let response = app
            .request(method.clone(), &format!("/api/lists?query={query}"))
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::BAD_REQUEST).await;
        refused(
            &app,
            method,
            &format!("/api/lists?query={distinct}"),
            "1000",
        )
        .await;
    }
    // One word of 50,000 bytes (once SQLite's "LIKE pattern too complex").
    refused(
        &app,
        Method::GET,
        &format!("/api/lists?query={}", "b".repeat(50_000)),
        "1000",
    )
    .await;
    assert_eq!(app.names("").await, ["a"], "nothing was deleted");
}

#[tokio::test]
async fn a_hundred_tags_are_served_and_a_hundred_and_first_or_an_overlong_tag_is_refused() {
    let app = TestApp::spawn().await;
    let tags: Vec<String> = (0..100).map(|i| format!("{i:0>100}")).collect();
    app.create_list(json!({"name": "tagged", "tags": tags}))
        .await;
    app.create_list(json!({"name": "fewer", "tags": tags[..99]}))
        .await;
    let filter = |tags: &[String]| {
        tags.iter()
            .map(|t| format!("tag={}", encode(t)))
            .collect::<Vec<_>>()
            .join("&")
    };
    // 100 tags: one subquery, answered at once on both backends (once 2.9 s and a statement timeout).
    assert_eq!(app.names(&filter(&tags)).await, ["tagged"]);
    let mut more = tags.clone();
    more.push("extra".into());
    refused(
        &app,
        Method::GET,
        &format!("/api/lists?{}", filter(&more)),
        "100",
    )
    .await;
    let overlong = format!("tag={}", "t".repeat(101));
    refused(&app, Method::GET, &format!("/api/lists?{overlong}"), "100").await;
    assert_eq!(total(&app, &format!("tag={}", "t".repeat(100))).await, 0);
}

#[tokio::test]
async fn tag_filters_are_normalised_like_stored_tags() {
    let app = TestApp::spawn().await;
    app.create_list(json!({"name": "n", "tags": ["a  b"]}))
        .await;
    assert_eq!(app.names("tag=a%20b").await, ["n"]);
    assert_eq!(app.names("tag=%20a-b%20").await, ["n"]);
    assert!(
        app.names("tag=%20").await.is_empty(),
        "a blank tag matches nothing"
    );
}

#[tokio::test]
async fn a_thousand_ids_are_deleted_and_a_thousand_and_first_is_refused() {
    let app = TestApp::spawn().await;
    let kept = app.create_named("kept").await;
    let gone = app.create_named("gone").await;
    let ids = |n: i64, first: i64| {
        (0..n)
            .map(|i| format!("id={}", first + i * 1000))
            .collect::<Vec<_>>()
            .join("&")
    };
    refused(
        &app,
        Method::DELETE,
        &format!("/api/lists?{}", ids(1001, gone)),
        "1000",
    )
    .await;
    assert_eq!(total(&app, "").await, 2, "nothing was deleted");
    let (status, _) = read(app.delete(&format!("/api/lists?{}", ids(1000, gone))).await).await;
    assert_eq!(status, StatusCode::OK);
    let left: Vec<i64> = crate::helpers::ids(&app.list("").await);
    assert_eq!(left, [kept]);
}

#[tokio::test]
async fn conflicting_repeats_of_a_single_valued_parameter_are_refused() {
    let app = TestApp::spawn().await;
    app.create_named("survivor").await;
    for path in [
        "/api/lists?all=true&all=false",
        "/api/lists?all=false&all=true",
    ] {
        refused(&app, Method::DELETE, path, "`all`").await;
    }
    refused(
        &app,
        Method::DELETE,
        "/api/lists?query=a&query=b",
        "`query`",
    )
    .await;
    assert_eq!(app.names("").await, ["survivor"], "nothing was deleted");
    for path in [
        "/api/lists?per_page=10&per_page=20",
        "/api/lists?query=a&query=b",
        "/api/lists?order=asc&order=desc",
        "/api/lists?minimal=true&minimal=false",
    ] {
        refused(&app, Method::GET, path, "more than once").await;
    }
    // Identical repeats say one thing, and repeated list parameters are lists.
    assert_eq!(app.names("per_page=5&per_page=5").await, ["survivor"]);
    assert!(app.names("tag=a&tag=b").await.is_empty());
}

#[tokio::test]
async fn per_page_follows_its_pattern_exactly() {
    let app = TestApp::spawn().await;
    for bad in ["01", "+1", "0", "1000000000", "ALL"] {
        refused(
            &app,
            Method::GET,
            &format!("/api/lists?per_page={bad}"),
            "per_page",
        )
        .await;
    }
    assert_eq!(
        app.list("per_page=999999999").await["per_page"],
        999_999_999
    );
}

#[tokio::test]
async fn a_url_over_65534_bytes_is_answered_414_without_a_body_on_every_operation() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let address = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    // One path per operation's route (the HTTP layer answers before any routing, whatever the method).
    for path in [
        "/api/lists",
        "/api/lists/1",
        "/api/public/lists",
        "/api/subscribers",
        "/api/subscribers/1",
        "/api/subscribers/lists",
        "/api/subscribers/blocklist",
        "/api/subscribers/1/blocklist",
        "/api/public/subscription",
        "/api/health",
        "/health",
    ] {
        // Sent by hand: an HTTP client may refuse to build such a URL at all.
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!(
            "GET {path}?x={} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n",
            "a".repeat(65_535)
        );
        // hyper may answer and close before it has read the whole line.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 414"), "{path}: {answer}");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        assert!(body.is_empty(), "{path}: 414 with a body: {body}");
    }
}

#[tokio::test]
async fn the_url_is_bounded_and_the_request_head_too() {
    let app = TestApp::spawn().await;
    let base = "/api/lists?ignored=";
    let at_limit = format!(
        "{base}{}",
        "a".repeat(roster::api::URL_MAX_BYTES - base.len())
    );
    let (status, _) = read(app.get(&at_limit).await).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "unknown parameters are ignored, up to the limit"
    );
    refused(&app, Method::GET, &format!("{at_limit}a"), "61440").await;
    // Past what a URL can hold at all, hyper answers 414 itself.
    let raw = format!("{}{}", app.url(base), "a".repeat(65_535));
    match app
        .client
        .get(raw)
        .basic_auth("admin", Some("x"))
        .send()
        .await
    {
        Ok(response) => assert_eq!(response.status(), StatusCode::URI_TOO_LONG),
        // The client itself may refuse to hold such a URL.
        Err(err) => assert!(err.is_builder(), "{}", err.without_url()),
    }
    // Header fields: exactly bounded by Roster (431 with a message), and coarsely by hyper's buffer (a bare 431).
    let header = |size: usize| {
        app.request(Method::GET, "/api/lists")
            .header("X-Huge", "h".repeat(size))
            .send()
    };
    // Room for the field's name, the Authorization field and reqwest's own few headers.
    let served = header(roster::api::HEADER_MAX_BYTES - 300).await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    let message = expect_error(
        header(roster::api::HEADER_MAX_BYTES).await.unwrap(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    )
    .await;
    assert!(message.contains("65536"), "{message}");
    let bare = header(4 * roster::server::HEAD_MAX_BYTES).await.unwrap();
    assert_eq!(bare.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let mut many = app.request(Method::GET, "/api/lists");
    for i in 0..=roster::server::HEADERS_MAX {
        many = many.header(format!("x-h{i}"), "v");
    }
    assert_eq!(
        many.send().await.unwrap().status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn form_bodies_are_utf8_and_their_single_fields_agree() {
    let app = TestApp::spawn().await;
    let id = app.create_named("n").await;
    for (method, path) in [
        (Method::POST, "/api/lists".to_owned()),
        (Method::PUT, format!("/api/lists/{id}")),
    ] {
        for body in [
            &b"name=%FF"[..],
            b"name=\xff",
            b"name=a&name=b",
            b"name=a&type=public&type=private",
        ] {
            let response = app
                .request(method.clone(), &path)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body.to_vec())
                .send()
                .await
                .unwrap();
            expect_error(response, StatusCode::BAD_REQUEST).await;
        }
    }
    assert_eq!(app.names("").await, ["n"], "nothing was created or changed");
}

#[tokio::test]
async fn invented_methods_do_not_grow_metrics() {
    let app = TestApp::spawn().await;
    for i in 0..50 {
        let method = Method::from_bytes(format!("INVENTED{i:0>190}").as_bytes()).unwrap();
        let response = app.request(method, "/api/lists").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains("INVENTED"),
        "invented methods are not labels"
    );
    assert!(metrics.contains(r#"method="other""#));
}

#[tokio::test]
async fn credentials_do_not_lift_the_per_address_limit_where_nothing_authenticates() {
    let app = TestApp::spawn_with(|s| {
        s.http.rate_limit = 1;
        s.http.rate_limit_burst = 3;
    })
    .await;
    for path in [
        "/api/public/lists",
        "/docs",
        "/openapi.json",
        "/metrics",
        "/nowhere",
    ] {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let response = app
                .client_from(9)
                .get(app.url(path))
                .basic_auth("admin", Some("anything"));
            statuses.push(response.send().await.unwrap().status());
        }
        assert!(
            statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
            "{path}: {statuses:?}"
        );
    }
    // An operation that authenticates is limited per caller instead: the admin from elsewhere is served.
    assert_eq!(app.get("/api/lists").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn hostile_subscriber_input_gets_a_clear_4xx_and_nothing_changes() {
    use crate::subscribers::{assert_counts_exact, subscriber_id};
    let app = TestApp::spawn().await;
    let list = app.create_named("news").await;
    let id = subscriber_id(&app, "s@example.com", &[list]).await;
    for path in [
        "/api/subscribers/9223372036854775808",
        "/api/subscribers/-1",
        "/api/subscribers/1e3",
        "/api/subscribers?list_id=9223372036854775808",
        "/api/subscribers?per_page=1000000000",
    ] {
        let (status, body) = read(app.get(path).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
    }
    let max = i64::MAX;
    let ids: Vec<i64> = std::iter::repeat_n(id, 50_000).chain([max]).collect();
    let (status, body) = read(
        app.put_json(
            "/api/subscribers/lists",
            &json!({"ids": ids, "action": "remove", "target_list_ids": [list, list, list]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(&max.to_string()),
        "{body}"
    );
    let (status, body) = read(
        app.put_json(
            "/api/subscribers/lists",
            &json!({"ids": [1.5], "action": "add", "target_list_ids": [list]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let too_many: Vec<i64> = (1..=100_001).collect();
    let (status, _) = read(
        app.put_json("/api/subscribers/blocklist", &json!({"ids": too_many}))
            .await,
    )
    .await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
        "{status}"
    );
    for email in [
        "\u{202e}evil@example.com",
        "a@b@c",
        "😀@😀",
        "\"quoted\"@example.com ",
    ] {
        let (status, body) = read(
            app.post_json("/api/subscribers", &json!({"email": email}))
                .await,
        )
        .await;
        assert!(
            status == StatusCode::OK || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{email}: {status} {body}"
        );
    }
    let many_words: String = (0..33).map(|i| format!("w{i} ")).collect();
    for search in ["' OR '1'='1", "%", "_", "\\", "\u{0}", &many_words] {
        let response = app
            .request(Method::GET, "/api/subscribers")
            .query(&[("search", search)])
            .send()
            .await
            .unwrap();
        let (status, body) = read(response).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "{search:?}: {status} {body}"
        );
        if status == StatusCode::OK {
            assert_eq!(body["data"]["total"], 0, "{search:?} is literal");
        }
    }
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
    assert_counts_exact(&app, "hostile input").await;
}

#[tokio::test]
async fn a_json_key_given_twice_is_refused_at_any_depth_and_nothing_changes() {
    use crate::subscribers::{assert_counts_exact, subscriber_id};
    let app = TestApp::spawn().await;
    let list = app.create_named("news").await;
    let id = subscriber_id(&app, "s@example.com", &[list]).await;
    let subscriber = format!("/api/subscribers/{id}");
    let send = |method: Method, path: &str, body: String| {
        app.request(method, path)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for (method, path, body, key) in [
        (
            Method::POST,
            "/api/lists",
            r#"{"name":"a","name":"b"}"#.to_owned(),
            "name",
        ),
        (
            Method::POST,
            "/api/lists",
            r#"{"name":"a","tags":["t"],"name":"a"}"#.to_owned(),
            "name",
        ),
        (
            Method::PUT,
            &format!("/api/lists/{list}"),
            r#"{"description":"x","description":"y"}"#.to_owned(),
            "description",
        ),
        (
            Method::PUT,
            "/api/subscribers/lists",
            format!(
                r#"{{"ids":[{id}],"action":"remove","target_list_ids":[{list}],"ids":[{id}]}}"#
            ),
            "ids",
        ),
        (
            Method::PUT,
            "/api/subscribers/blocklist",
            format!(r#"{{"ids":[{id}],"\u0069ds":[{id}]}}"#),
            "ids",
        ),
        (
            Method::POST,
            "/api/subscribers",
            r#"{"email":"new@example.com","attribs":{"k":1,"k":2}}"#.to_owned(),
            "k",
        ),
        (
            Method::PATCH,
            &subscriber,
            r#"{"attribs":{"a":[{"deep":true,"deep":false}]}}"#.to_owned(),
            "deep",
        ),
        (
            Method::PUT,
            &subscriber,
            r#"{"email":"s@example.com","lists":[],"email":"t@example.com"}"#.to_owned(),
            "email",
        ),
    ] {
        let response = send(method.clone(), path, body.clone()).await.unwrap();
        let message = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert!(
            message.contains(&format!("`{key}`")) && message.contains("more than once"),
            "{method} {path} {body}: {message}"
        );
    }
    assert_eq!(
        app.names("").await,
        ["news"],
        "no list was created or changed"
    );
    let (_, page) = read(app.get("/api/subscribers").await).await;
    assert_eq!(page["data"]["total"], 1, "{page}");
    let (_, shown) = read(app.get(&subscriber).await).await;
    assert_eq!(shown["data"]["email"], "s@example.com");
    assert_eq!(shown["data"]["attribs"], json!({}));
    assert_eq!(shown["data"]["status"], "enabled");
    assert_eq!(
        shown["data"]["lists"][0]["subscription_status"],
        "unconfirmed"
    );
    assert_counts_exact(&app, "duplicate keys").await;
    // The same key in different objects is no repeat.
    let response = send(
        Method::PATCH,
        &subscriber,
        r#"{"name":"n","attribs":{"name":{"name":1},"k":[{"k":1},{"k":2}]}}"#.to_owned(),
    )
    .await
    .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["attribs"],
        json!({"name": {"name": 1}, "k": [{"k": 1}, {"k": 2}]})
    );
}

#[tokio::test]
async fn a_subscriber_search_word_of_a_hundred_characters_is_served_and_one_more_is_refused() {
    let app = TestApp::spawn().await;
    let word = "é".repeat(100);
    let (status, body) = read(
        app.post_json(
            "/api/subscribers",
            &json!({"email": "long@example.com", "name": format!("x{word}x")}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, page) = read(
        app.get(&format!("/api/subscribers?search={}", encode(&word)))
            .await,
    )
    .await;
    assert_eq!(
        (status, page["data"]["total"].clone()),
        (StatusCode::OK, json!(1))
    );
    let over = encode(&"é".repeat(101));
    refused(
        &app,
        Method::GET,
        &format!("/api/subscribers?search={over}"),
        "100",
    )
    .await;
}
