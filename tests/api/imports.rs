//! The import job (`/api/import/subscribers`): uploads, options, bad rows, ZIPs, stop, one job at a time, a dead
//! instance's job, permissions, and imports racing other writes. On both backends.

use std::io::Write;
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use roster::domain::{ListPermission, UserPermission};
use roster::service::{AccountService, RoleKind};
use serde_json::{Value, json};

use crate::helpers::{TestApp, read};
use crate::idempotency::{age_claim, key_state, lose_answers};
use crate::races::broken_invariants;
use crate::subscribers::{assert_counts_exact, create_subscriber, subscriber_id};

const IMPORT: &str = "/api/import/subscribers";

fn form(params: &str, file: Vec<u8>, name: &str) -> Form {
    Form::new()
        .text("params", params.to_owned())
        .part("file", Part::bytes(file).file_name(name.to_owned()))
}

/// Uploads `file` with `params` as the admin (or with `authorization`).
async fn upload_as(
    app: &TestApp,
    authorization: Option<&str>,
    params: &str,
    file: &[u8],
    name: &str,
) -> (StatusCode, Value) {
    let request = match authorization {
        Some(value) => app
            .anonymous(Method::POST, IMPORT)
            .header("Authorization", value),
        None => app.request(Method::POST, IMPORT),
    };
    read(
        request
            .multipart(form(params, file.to_vec(), name))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn upload(app: &TestApp, params: &str, file: &[u8]) -> (StatusCode, Value) {
    upload_as(app, None, params, file, "subscribers.csv").await
}

async fn job(app: &TestApp) -> Value {
    let (status, body) = read(app.get(IMPORT).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

async fn log(app: &TestApp) -> String {
    let (status, body) = read(app.get("/api/import/subscribers/logs").await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_str().unwrap().to_owned()
}

/// The job once it has ended (`finished` or `failed`).
async fn ended(app: &TestApp) -> Value {
    for _ in 0..1200 {
        let job = job(app).await;
        if job["status"] == "finished" || job["status"] == "failed" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the import did not end: {}", job(app).await);
}

/// Imports `file` and waits for the job to end.
async fn import(app: &TestApp, params: &str, file: &[u8]) -> Value {
    let (status, body) = upload(app, params, file).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "importing", "{body}");
    ended(app).await
}

async fn subscriber_by_email(app: &TestApp, email: &str) -> Value {
    let (status, page) = read(
        app.get(&format!(
            "/api/subscribers?query=subscribers.email%3D%27{email}%27"
        ))
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let results = page["data"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{email}: {page}");
    results[0].clone()
}

fn subscriptions(subscriber: &Value) -> Vec<(i64, String)> {
    let mut found: Vec<(i64, String)> = subscriber["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_i64().unwrap(),
                l["subscription_status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

async fn assert_sound(app: &TestApp, after: &str) {
    assert_counts_exact(app, after).await;
    assert_eq!(
        broken_invariants(app).await,
        Vec::<String>::new(),
        "{after}"
    );
}

fn rows(n: usize, prefix: &str) -> Vec<u8> {
    let mut csv = b"email,name,attributes\n".to_vec();
    for i in 0..n {
        writeln!(
            csv,
            "{prefix}{i}@example.com,Row {i},\"{{\"\"n\"\": {i}}}\""
        )
        .unwrap();
    }
    csv
}

#[tokio::test]
async fn an_import_creates_subscribers_on_the_lists_with_the_status_asked() {
    let app = TestApp::spawn().await;
    let a = app.create_named("A").await;
    let b = app.create_named("B").await;
    // Columns in another order, one unknown, CRLF line ends and a byte-order mark, as spreadsheets write them.
    let csv = "\u{feff}name,city,attributes,email\r\nAnn,Pune,\"{\"\"plan\"\":\"\"pro\"\"}\",Ann@Example.com\r\n,Oslo,,bo@example.com\r\n";
    let job = import(
        &app,
        &format!(r#"{{"mode":"subscribe","subscription_status":"confirmed","lists":[{a},{b}]}}"#),
        csv.as_bytes(),
    )
    .await;
    assert_eq!(job["status"], "finished", "{job}");
    assert_eq!(job["name"], "subscribers.csv");
    assert_eq!(
        (
            &job["total"],
            &job["imported"],
            &job["created"],
            &job["updated"],
            &job["skipped"]
        ),
        (&json!(2), &json!(2), &json!(2), &json!(0), &json!(0)),
        "{job}"
    );
    let ann = subscriber_by_email(&app, "ann@example.com").await;
    assert_eq!(ann["name"], "Ann");
    assert_eq!(ann["attribs"], json!({"plan": "pro"}));
    assert_eq!(ann["status"], "enabled");
    assert_eq!(
        subscriptions(&ann),
        vec![(a, "confirmed".into()), (b, "confirmed".into())]
    );
    let bo = subscriber_by_email(&app, "bo@example.com").await;
    assert_eq!(bo["name"], "bo", "a blank name is the e-mail's local part");
    let log = log(&app).await;
    assert!(log.contains("processing 'subscribers.csv'"), "{log}");
    assert!(log.contains("ignoring the unknown column 'city'"), "{log}");
    assert!(log.contains("import finished; 2 rows imported"), "{log}");
    assert_sound(&app, "an import").await;
}

#[tokio::test]
async fn bad_rows_are_skipped_and_logged_with_their_line_numbers_and_the_rest_imported() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let mut csv = b"email,name,attributes\n".to_vec();
    csv.extend(b"good1@example.com,One,\n"); // line 2
    csv.extend(b"not-an-email,Bad,\n"); // 3
    csv.extend(b"attr@example.com,Bad,{nope\n"); // 4
    csv.extend(b"array@example.com,Bad,[1]\n"); // 5
    csv.extend(format!("long@example.com,{},\n", "n".repeat(2001)).as_bytes()); // 6
    csv.extend(b"utf8@example.com,\xff\xfe,\n"); // 7
    csv.extend(b"short@example.com\n"); // 8
    csv.extend(format!("wide@example.com,W,{}\n", ",".repeat(100)).as_bytes()); // 9
    csv.extend(format!("huge@example.com,\"{}\",\n", "h".repeat(300 * 1024)).as_bytes()); // 10
    csv.extend(b"good2@example.com,Two,\n"); // 11
    let job = import(&app, &format!(r#"{{"lists":[{list}]}}"#), &csv).await;
    assert_eq!(job["status"], "finished", "{job}");
    assert_eq!(
        (&job["imported"], &job["skipped"]),
        (&json!(2), &json!(8)),
        "{job}"
    );
    let log = log(&app).await;
    for (line, why) in [
        (3, "email is not a valid address"),
        (4, "attributes are not valid JSON"),
        (5, "attribs must be a JSON object"),
        (6, "name must be at most 2000 characters"),
        (7, "not valid UTF-8"),
        (8, "1 columns where the header needs 3"),
        (9, "more than 64 columns"),
        (10, "longer than 262144 bytes"),
    ] {
        let expected = format!("skipping line {line}: ");
        let entry = log
            .lines()
            .find(|l| l.contains(&expected))
            .unwrap_or_else(|| panic!("line {line} is logged: {log}"));
        assert!(entry.contains(why), "line {line}: {entry}");
    }
    subscriber_by_email(&app, "good1@example.com").await;
    subscriber_by_email(&app, "good2@example.com").await;
    assert_sound(&app, "an import with bad rows").await;
}

#[tokio::test]
async fn existing_subscribers_keep_their_fields_unless_overwrite_is_asked() {
    let app = TestApp::spawn().await;
    let a = app.create_named("A").await;
    let b = app.create_named("B").await;
    create_subscriber(
        &app,
        json!({"email": "old@example.com", "name": "Old", "attribs": {"k": 1}, "lists": [a], "preconfirm_subscriptions": true}),
    )
    .await;
    let csv = b"email,name,attributes\nold@example.com,New,\"{\"\"k\"\":2}\"\n";
    let job = import(
        &app,
        &format!(r#"{{"lists":[{a},{b}],"subscription_status":"unsubscribed"}}"#),
        csv,
    )
    .await;
    assert_eq!(
        (&job["created"], &job["updated"]),
        (&json!(0), &json!(0)),
        "{job}"
    );
    let kept = subscriber_by_email(&app, "old@example.com").await;
    assert_eq!(
        (&kept["name"], &kept["attribs"]),
        (&json!("Old"), &json!({"k": 1}))
    );
    assert_eq!(
        subscriptions(&kept),
        vec![(a, "confirmed".into()), (b, "unsubscribed".into())],
        "an existing subscription keeps its status; a new one gets the import's"
    );

    let job = import(
        &app,
        &format!(r#"{{"lists":[{a}],"subscription_status":"unconfirmed","overwrite":true}}"#),
        csv,
    )
    .await;
    assert_eq!(
        (&job["created"], &job["updated"]),
        (&json!(0), &json!(1)),
        "{job}"
    );
    let overwritten = subscriber_by_email(&app, "old@example.com").await;
    assert_eq!(
        (&overwritten["name"], &overwritten["attribs"]),
        (&json!("New"), &json!({"k": 2}))
    );
    assert_eq!(
        subscriptions(&overwritten),
        vec![(a, "unconfirmed".into()), (b, "unsubscribed".into())]
    );

    // listmonk's two halves of `overwrite`, one at a time.
    let renamed = b"email,name\nold@example.com,Newer\n";
    import(
        &app,
        &format!(
            r#"{{"lists":[{a}],"subscription_status":"confirmed","overwrite_userinfo":true}}"#
        ),
        renamed,
    )
    .await;
    let half = subscriber_by_email(&app, "old@example.com").await;
    assert_eq!(half["name"], "Newer");
    assert_eq!(subscriptions(&half)[0], (a, "unconfirmed".into()));
    assert_sound(&app, "overwrites").await;
}

#[tokio::test]
async fn a_repeated_email_in_the_file_applies_as_rows_one_after_the_other() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let csv = b"email,name\ntwice@example.com,First\nTWICE@example.com,Second\n";
    let job = import(&app, &format!(r#"{{"lists":[{list}]}}"#), csv).await;
    assert_eq!(
        (&job["imported"], &job["created"], &job["updated"]),
        (&json!(2), &json!(1), &json!(0))
    );
    assert_eq!(
        subscriber_by_email(&app, "twice@example.com").await["name"],
        "First"
    );
    let job = import(
        &app,
        &format!(r#"{{"lists":[{list}],"overwrite":true}}"#),
        csv,
    )
    .await;
    assert_eq!(
        (&job["created"], &job["updated"]),
        (&json!(0), &json!(2)),
        "{job}"
    );
    assert_eq!(
        subscriber_by_email(&app, "twice@example.com").await["name"],
        "Second"
    );
    assert_sound(&app, "a repeated e-mail").await;
}

#[tokio::test]
async fn the_rows_of_one_email_spread_over_many_batches_apply_in_file_order() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    // Each repeated e-mail's two rows 1,501 lines apart, in batches spread over the file (several per writer).
    let mut csv = b"email,name\n".to_vec();
    let repeated = 20;
    for k in 0..repeated {
        writeln!(csv, "again{k}@example.com,Early").unwrap();
        for i in 0..1_500 {
            writeln!(csv, "filler{k}-{i}@example.com,Filler").unwrap();
        }
        writeln!(csv, "again{k}@example.com,Late").unwrap();
    }
    let params = format!(r#"{{"lists":[{list}],"overwrite":true}}"#);
    let job = import(&app, &params, &csv).await;
    assert_eq!(
        (&job["status"], &job["imported"], &job["created"]),
        (&json!("finished"), &json!(30_040), &json!(30_020)),
        "{job}"
    );
    assert_eq!(job["updated"], 20, "{job}");
    for k in 0..repeated {
        let subscriber = subscriber_by_email(&app, &format!("again{k}@example.com")).await;
        assert_eq!(subscriber["name"], "Late", "{subscriber}");
    }
    assert_sound(&app, "repeated e-mails over many batches").await;
}

#[tokio::test]
async fn a_blocklist_import_blocklists_and_unsubscribes_every_subscription() {
    let app = TestApp::spawn().await;
    let a = app.create_named("A").await;
    let b = app.create_named("B").await;
    create_subscriber(
        &app,
        json!({"email": "known@example.com", "lists": [a, b], "preconfirm_subscriptions": true}),
    )
    .await;
    let csv = b"email,name\nknown@example.com,K\nnew@example.com,N\n";
    // Lists and a status are ignored in blocklist mode, as listmonk's UI may send them.
    let job = import(
        &app,
        &format!(r#"{{"mode":"blocklist","lists":[{a}],"subscription_status":"confirmed"}}"#),
        csv,
    )
    .await;
    assert_eq!(job["status"], "finished", "{job}");
    assert_eq!(job["created"], 1);
    let known = subscriber_by_email(&app, "known@example.com").await;
    assert_eq!(known["status"], "blocklisted");
    assert_eq!(
        subscriptions(&known),
        vec![(a, "unsubscribed".into()), (b, "unsubscribed".into())]
    );
    let new = subscriber_by_email(&app, "new@example.com").await;
    assert_eq!(new["status"], "blocklisted");
    assert!(subscriptions(&new).is_empty());
    // A later subscribe import cannot subscribe a blocklisted subscriber.
    import(
        &app,
        &format!(r#"{{"lists":[{a}],"subscription_status":"confirmed","overwrite":true}}"#),
        b"email\nnew@example.com\n",
    )
    .await;
    let still = subscriber_by_email(&app, "new@example.com").await;
    assert_eq!(subscriptions(&still), vec![(a, "unsubscribed".into())]);
    assert_sound(&app, "a blocklist import").await;
}

#[tokio::test]
async fn every_params_field_is_checked_and_nothing_starts_when_one_is_bad() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let file = b"email\na@example.com\n";
    for (params, expected, says) in [
        ("not json".to_owned(), StatusCode::BAD_REQUEST, "not JSON"),
        ("[1]".to_owned(), StatusCode::BAD_REQUEST, "params"),
        (
            r#"{"mode":"merge","lists":[1]}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "`params`: ",
        ),
        (
            format!(r#"{{"subscription_status":"gone","lists":[{list}]}}"#),
            StatusCode::BAD_REQUEST,
            "`params`: ",
        ),
        (
            format!(r#"{{"overwrite":"yes","lists":[{list}]}}"#),
            StatusCode::BAD_REQUEST,
            "`params`: ",
        ),
        (
            r#"{"lists":"1"}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "`params`: ",
        ),
        (
            r#"{"lists":[0]}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "`params`: ",
        ),
        (
            format!(r#"{{"lists":[{}]}}"#, vec!["1"; 1001].join(",")),
            StatusCode::BAD_REQUEST,
            "`params`: ",
        ),
        (
            r#"{"lists":[]}"#.to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at least one list",
        ),
        (
            r#"{}"#.to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at least one list",
        ),
        (
            r#"{"lists":[987654]}"#.to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown list ids: 987654",
        ),
        (
            format!(r#"{{"delim":"","lists":[{list}]}}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "delim",
        ),
        (
            format!(r#"{{"delim":";;","lists":[{list}]}}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "delim",
        ),
        (
            format!(r#"{{"delim":"\"","lists":[{list}]}}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "delim",
        ),
        (
            format!(r#"{{"delim":"é","lists":[{list}]}}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "delim",
        ),
        (
            format!(r#"{{"lists":[{list}],"pad":"{}"}}"#, "x".repeat(17 * 1024)),
            StatusCode::BAD_REQUEST,
            "16384",
        ),
    ] {
        let (status, body) = upload(&app, &params, file).await;
        assert_eq!(
            status,
            expected,
            "{}: {body}",
            &params[..params.len().min(80)]
        );
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(job(&app).await["status"], "none", "nothing started");

    // A delimiter of its own.
    let job = import(
        &app,
        &format!(r#"{{"delim":";","lists":[{list}]}}"#),
        b"name;email\nSemi;semi@example.com\n",
    )
    .await;
    assert_eq!(job["imported"], 1, "{job}");
    assert_eq!(
        subscriber_by_email(&app, "semi@example.com").await["name"],
        "Semi"
    );
}

#[tokio::test]
async fn the_upload_must_be_multipart_with_params_and_file_each_once() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let params = format!(r#"{{"lists":[{list}]}}"#);
    let send = |form: Form| app.request(Method::POST, IMPORT).multipart(form).send();
    let no_file = Form::new().text("params", params.clone());
    let no_params = Form::new().part("file", Part::bytes(b"email\n".to_vec()).file_name("a.csv"));
    let twice = form(&params, b"email\n".to_vec(), "a.csv").text("params", params.clone());
    for (form, says) in [
        (no_file, "`file` field is missing"),
        (no_params, "`params` field is missing"),
        (twice, "more than once"),
    ] {
        let (status, body) = read(send(form).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
    let (status, body) = read(
        app.request(Method::POST, IMPORT)
            .json(&json!({"params": params}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(job(&app).await["status"], "none");
}

#[tokio::test]
async fn the_file_is_checked_before_a_job_starts() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let params = format!(r#"{{"lists":[{list}]}}"#);
    for (file, says) in [
        (b"".to_vec(), "the file is empty"),
        (b"name,attributes\nA,\n".to_vec(), "no `email` column"),
        (b"email,name,email\n".to_vec(), "more than once"),
        (
            b"PK\x03\x04 not really a zip".to_vec(),
            "not a readable ZIP",
        ),
        (zip(&[("readme.txt", b"hello")]), "no .csv file"),
        (format!("{}\n", ",".repeat(100)).into_bytes(), "64 columns"),
    ] {
        let (status, body) = upload(&app, &params, &file).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
    assert_eq!(job(&app).await["status"], "none");
    // A header alone is an import of nothing.
    let job = import(&app, &params, b"email,name\n").await;
    assert_eq!(job["status"], "finished");
    assert_eq!((&job["total"], &job["imported"]), (&json!(0), &json!(0)));
}

/// A ZIP of these entries.
fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut out);
    for (name, data) in entries {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap();
    out.into_inner()
}

#[tokio::test]
async fn a_zip_holding_a_csv_is_imported_and_its_entry_paths_go_nowhere() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let file = zip(&[
        ("notes/readme.txt", b"not this"),
        (
            "../../etc/evil/subscribers.csv",
            b"email\nzipped@example.com\n",
        ),
        ("second.csv", b"email\nnot-read@example.com\n"),
    ]);
    let (status, body) = upload_as(
        &app,
        None,
        &format!(r#"{{"lists":[{list}]}}"#),
        &file,
        "upload.zip",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["name"], "subscribers.csv",
        "the entry's name, without its directories"
    );
    let job = ended(&app).await;
    assert_eq!(job["imported"], 1, "only the first CSV: {job}");
    subscriber_by_email(&app, "zipped@example.com").await;
    let log = log(&app).await;
    assert!(
        log.contains("ignoring the ZIP entry 'notes/readme.txt'"),
        "{log}"
    );
    assert!(log.contains("ignoring the ZIP entry 'second.csv'"), "{log}");
}

#[tokio::test]
async fn uploads_and_zipped_csvs_past_the_import_limit_are_refused() {
    let app = TestApp::spawn_with(|s| s.http.import_limit = 64 * 1024).await;
    let list = app.create_named("L").await;
    let params = format!(r#"{{"lists":[{list}]}}"#);
    let big = rows(3_000, "big");
    assert!(big.len() > 64 * 1024);
    let (status, body) = upload(&app, &params, &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // Without a length announced (chunked), the file is counted as it arrives.
    let chunks: Vec<Vec<u8>> = big.chunks(8 * 1024).map(<[u8]>::to_vec).collect();
    let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let part = Part::stream(reqwest::Body::wrap_stream(stream)).file_name("s.csv");
    let (status, body) = read(
        app.request(Method::POST, IMPORT)
            .multipart(
                Form::new()
                    .text("params", params.clone())
                    .part("file", part),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // A ZIP bomb: small, but its CSV is larger than the limit once decompressed.
    let mut bomb = b"email\n".to_vec();
    bomb.resize(1024 * 1024, b'\n');
    let file = zip(&[("bomb.csv", &bomb)]);
    assert!(file.len() < 64 * 1024);
    let (status, body) = upload(&app, &params, &file).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("decompressed"),
        "{body}"
    );
    assert_eq!(job(&app).await["status"], "none");
}

#[tokio::test]
async fn a_hundred_megabyte_line_and_a_million_columns_are_skipped_without_being_held() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let mut csv = b"email,name\nbefore@example.com,B\n".to_vec();
    csv.extend(b"line@example.com,\"");
    csv.resize(csv.len() + 100 * 1024 * 1024, b'x');
    csv.extend(b"\"\n");
    csv.extend(",".repeat(1_000_000).as_bytes());
    csv.extend(b"\nafter@example.com,A\n");
    let job = import(&app, &format!(r#"{{"lists":[{list}]}}"#), &csv).await;
    assert_eq!(
        (&job["imported"], &job["skipped"]),
        (&json!(2), &json!(2)),
        "{job}"
    );
    let log = log(&app).await;
    assert!(
        log.contains("skipping line 3: the row is longer than"),
        "{log}"
    );
    assert!(
        log.contains("skipping line 4: the row has more than 64 columns"),
        "{log}"
    );
}

#[tokio::test]
async fn one_import_runs_at_a_time_and_a_stop_ends_it_between_whole_batches() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let params = format!(r#"{{"lists":[{list}]}}"#);
    let (status, body) = upload(&app, &params, &rows(100_000, "many")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = app
        .request(Method::POST, IMPORT)
        .multipart(form(&params, rows(1, "second"), "second.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "5");
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, body) = read(app.delete(IMPORT).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = ended(&app).await;
    assert_eq!(job["status"], "finished", "{job}");
    let imported = job["imported"].as_i64().unwrap();
    assert!(
        imported < 100_000 && imported % 5_000 == 0,
        "stopped between whole batches: {job}"
    );
    let (_, page) = read(app.get("/api/subscribers?per_page=1").await).await;
    assert_eq!(page["data"]["total"], imported, "the counts are the data's");
    assert!(log(&app).await.contains("import stopped on request"));
    assert_sound(&app, "a stopped import").await;

    // A DELETE of an ended job clears it.
    let (_, body) = read(app.delete(IMPORT).await).await;
    assert_eq!(body["data"]["status"], "none", "{body}");
    assert_eq!(log(&app).await, "");
    let job = import(&app, &params, &rows(3, "again")).await;
    assert_eq!(job["imported"], 3);
}

#[tokio::test]
async fn a_keyed_stop_or_clear_whose_answer_was_lost_is_not_carried_out_again_by_its_retry() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    lose_answers(&app).await;
    let keyed = |key: &'static str| {
        app.request(Method::DELETE, IMPORT)
            .header("Idempotency-Key", key)
    };
    let (status, body) = upload(
        &app,
        &format!(r#"{{"lists":[{list}]}}"#),
        &rows(100_000, "many"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The stop committed with its key marked: the retry learns its answer was lost, and asks nothing again.
    let (status, body) = read(keyed("lost-stop").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(key_state(&app, "lost-stop").await, "committed");
    let stopped = ended(&app).await;
    age_claim(&app, "lost-stop").await;
    let (status, body) = read(keyed("lost-stop").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains("lost"), "{body}");
    assert_eq!(
        job(&app).await,
        stopped,
        "a retried stop must not clear the job"
    );

    // The same for the DELETE that clears the ended job.
    let (status, body) = read(keyed("lost-clear").send().await.unwrap()).await;
    assert_eq!(
        (status, &body["data"]["status"]),
        (StatusCode::OK, &json!("none"))
    );
    assert_eq!(key_state(&app, "lost-clear").await, "committed");
    age_claim(&app, "lost-clear").await;
    let (status, body) = read(keyed("lost-clear").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn a_job_whose_instance_died_reads_failed_with_its_progress_and_another_may_start() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    // As a dead instance leaves it: running, its heartbeat a minute old.
    let old = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    app.execute_sql(&format!(
        "INSERT INTO import_jobs (id, token, name, mode, status, total, imported, created, updated, skipped, \
         logged, caller, started_at, heartbeat_at) VALUES (1, 'gone', 'crm.csv', 'subscribe', 'importing', \
         50000, 15000, 15000, 0, 3, 0, 'admin', '{old}', '{old}')"
    ))
    .await;
    let job = job(&app).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(
        (&job["name"], &job["imported"]),
        (&json!("crm.csv"), &json!(15000))
    );
    assert!(
        log(&app)
            .await
            .contains("stopped answering; 15000 rows had been imported")
    );
    let job = import(&app, &format!(r#"{{"lists":[{list}]}}"#), &rows(2, "next")).await;
    assert_eq!(
        (&job["status"], &job["imported"]),
        (&json!("finished"), &json!(2))
    );
}

#[tokio::test]
async fn importing_needs_its_permission_and_manage_on_every_target_list() {
    let app = TestApp::spawn().await;
    let a = app.create_named("A").await;
    let b = app.create_named("B").await;
    let accounts = AccountService::new(app.db.clone());
    let mut tokens = Vec::new();
    for (name, user, manage) in [
        (
            "none",
            vec![
                UserPermission::SubscribersManage,
                UserPermission::SubscribersGetAll,
            ],
            vec![a, b],
        ),
        (
            "narrow",
            vec![
                UserPermission::SubscribersImport,
                UserPermission::SubscribersGet,
            ],
            vec![a, b],
        ),
        (
            "importer-a",
            vec![
                UserPermission::SubscribersImport,
                UserPermission::SubscribersGetAll,
            ],
            vec![a],
        ),
    ] {
        accounts.create_role(name, RoleKind::User).await.unwrap();
        accounts
            .set_user_permissions(name, &user, true)
            .await
            .unwrap();
        let lists = format!("{name}-lists");
        accounts.create_role(&lists, RoleKind::List).await.unwrap();
        accounts
            .set_list_permissions(&lists, ListPermission::Manage, &manage, true)
            .await
            .unwrap();
        let token = accounts
            .create_user(name, name, Some(&lists))
            .await
            .unwrap()
            .token;
        tokens.push(format!("token {name}:{token}"));
    }
    let (without, narrow, importer) = (&tokens[0], &tokens[1], &tokens[2]);
    let file = b"email\nperm@example.com\n";
    for (who, params) in [
        (without, format!(r#"{{"lists":[{a}]}}"#)),
        // `subscribers:import` finds subscribers by e-mail whoever may read them: it needs `subscribers:get_all`.
        (narrow, format!(r#"{{"lists":[{a}]}}"#)),
        (importer, format!(r#"{{"lists":[{a},{b}]}}"#)),
        (importer, r#"{"mode":"blocklist"}"#.to_owned()),
    ] {
        let (status, body) = upload_as(&app, Some(who), &params, file, "p.csv").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{params}: {body}");
    }
    for path in [IMPORT, "/api/import/subscribers/logs"] {
        let response = app
            .anonymous(Method::GET, path)
            .header("Authorization", without)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let response = app
        .anonymous(Method::DELETE, IMPORT)
        .header("Authorization", without)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(job(&app).await["status"], "none");

    let (status, body) = upload_as(
        &app,
        Some(importer),
        &format!(r#"{{"lists":[{a}]}}"#),
        file,
        "p.csv",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = ended(&app).await;
    assert_eq!(job["imported"], 1, "{job}");
    let response = app
        .anonymous(Method::GET, IMPORT)
        .header("Authorization", importer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_import_racing_creates_edits_and_a_list_delete_keeps_every_invariant() {
    let app = TestApp::spawn().await;
    let keep = app.create_named("Keep").await;
    let doomed = app.create_named("Doomed").await;
    // Half the file's e-mails are created, blocklisted and edited by other requests while the job runs.
    let (status, body) = upload(
        &app,
        &format!(r#"{{"lists":[{keep}],"subscription_status":"confirmed","overwrite":true}}"#),
        &rows(20_000, "race"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut made = Vec::new();
    // From the file's end, so most creates come before the job reaches their rows.
    for i in (0..20_000).step_by(400).rev() {
        let body = json!({"email": format!("race{i}@example.com"), "lists": [doomed]});
        let (status, json) = read(app.post_json("/api/subscribers", &body).await).await;
        // Created first, or the import got there first.
        assert!(
            status == StatusCode::OK || status == StatusCode::CONFLICT,
            "{status} {json}"
        );
        if status == StatusCode::OK {
            made.push(json["data"]["id"].as_i64().unwrap());
        }
    }
    assert!(!made.is_empty(), "some creates came first");
    let (status, json) = read(
        app.request(Method::PUT, "/api/subscribers/blocklist")
            .json(&json!({"ids": made}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (status, json) = read(app.delete(&format!("/api/lists/{doomed}")).await).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let job = ended(&app).await;
    assert_eq!(job["status"], "finished", "{job}");
    assert_eq!(job["imported"], 20_000, "{job}");
    let (_, page) = read(app.get("/api/subscribers?per_page=1").await).await;
    assert_eq!(page["data"]["total"], 20_000, "one subscriber per e-mail");
    assert_sound(&app, "an import racing other writes").await;
}

#[tokio::test]
async fn an_import_meeting_a_stream_of_sign_ups_of_its_own_emails_finishes_exact() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let (status, body) = upload(
        &app,
        &format!(r#"{{"lists":[{list}]}}"#),
        &rows(20_000, "flood"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Eight clients sign up e-mails of the file, spread over every batch, until the job ends: each batch keeps
    // finding some of its new e-mails inserted by them first.
    let running = std::sync::atomic::AtomicBool::new(true);
    let signer = |from: usize| {
        let (app, running) = (&app, &running);
        async move {
            let mut i = from;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                let body = json!({"email": format!("flood{i}@example.com"), "lists": [list]});
                let status = app.post_json("/api/subscribers", &body).await.status();
                assert!(
                    status == StatusCode::OK || status == StatusCode::CONFLICT,
                    "{status}"
                );
                i = (i + 8 * 37) % 20_000;
            }
        }
    };
    let ending = async {
        let job = ended(&app).await;
        running.store(false, std::sync::atomic::Ordering::Relaxed);
        job
    };
    let (job, ..) = tokio::join!(
        ending,
        signer(0),
        signer(37),
        signer(74),
        signer(111),
        signer(148),
        signer(185),
        signer(222),
        signer(259)
    );
    assert_eq!(job["status"], "finished", "{job}: {}", log(&app).await);
    assert_eq!(job["imported"], 20_000, "{job}");
    let (_, page) = read(app.get("/api/subscribers?per_page=1").await).await;
    assert_eq!(page["data"]["total"], 20_000, "one subscriber per e-mail");
    assert_sound(&app, "an import racing sign-ups").await;
}

#[tokio::test]
async fn a_row_whose_email_another_write_inserts_during_its_batch_is_still_applied_and_counted() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let template = subscriber_id(&app, "template@example.com", &[]).await;
    let uuid = crate::helpers::new_uuid_like_t(&app);
    // Inserted by another transaction, not yet committed when the batch looks for the file's existing e-mails
    // (on PostgreSQL the batch's insert then waits for it, and finds it there).
    let held = app.db.begin().await.unwrap();
    held.execute_unprepared(&format!(
        "INSERT INTO subscribers (uuid, email, name, name_folded, attribs, status, created_at, updated_at) \
         SELECT {uuid}, 'held3@example.com', t.name, t.name_folded, t.attribs, t.status, t.created_at, \
         t.updated_at FROM subscribers t WHERE t.id = {template}"
    ))
    .await
    .unwrap();
    let (params, file) = (format!(r#"{{"lists":[{list}]}}"#), rows(10, "held"));
    let upload = upload(&app, &params, &file);
    let commit = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        held.commit().await.unwrap();
    };
    let ((status, body), ()) = tokio::join!(upload, commit);
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = ended(&app).await;
    assert_eq!(
        (&job["status"], &job["imported"]),
        (&json!("finished"), &json!(10)),
        "{job}"
    );
    assert_eq!(job["created"], 9, "{job}");
    let held = subscriber_by_email(&app, "held3@example.com").await;
    assert_eq!(subscriptions(&held), [(list, "unconfirmed".to_owned())]);
    assert_sound(&app, "an import meeting an insert of one of its e-mails").await;
}

#[tokio::test]
async fn a_target_list_deleted_mid_import_fails_the_job_with_whole_batches_only() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let (status, body) = upload(
        &app,
        &format!(r#"{{"lists":[{list}]}}"#),
        &rows(60_000, "gone"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, json) = read(app.delete(&format!("/api/lists/{list}")).await).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let job = ended(&app).await;
    let imported = job["imported"].as_i64().unwrap();
    if job["status"] == "failed" {
        assert!(imported % 5_000 == 0, "{job}");
        assert!(
            log(&app).await.contains("unknown list ids"),
            "{}",
            log(&app).await
        );
    } else {
        // The job ended before the delete.
        assert_eq!(imported, 60_000, "{job}");
    }
    let (_, page) = read(app.get("/api/subscribers?per_page=1").await).await;
    assert_eq!(page["data"]["total"], imported);
    assert_sound(&app, "a list deleted mid-import").await;
}

/// A raw multipart upload with boundary `b`.
fn raw_upload(app: &TestApp, body: reqwest::Body) -> reqwest::RequestBuilder {
    app.request(Method::POST, IMPORT)
        .header("Content-Type", "multipart/form-data; boundary=b")
        .body(body)
}

#[tokio::test]
async fn a_multipart_body_cannot_make_the_parser_hold_more_than_a_mebibyte() {
    let app = TestApp::spawn().await;
    // A part whose headers never end, and a preamble before any boundary: read in 64 KiB pieces, refused at 1 MiB.
    let endless_header = {
        let mut parts =
            vec![b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\nX-Pad: ".to_vec()];
        parts.extend(std::iter::repeat_n(vec![b'a'; 64 * 1024], 40));
        parts
    };
    let endless_preamble: Vec<Vec<u8>> = std::iter::repeat_n(vec![b'p'; 64 * 1024], 40).collect();
    for parts in [endless_header, endless_preamble] {
        let body = crate::helpers::trickle(parts, Duration::from_millis(1));
        let (status, body) = read(raw_upload(&app, body).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("too long"),
            "{body}"
        );
    }
    assert_eq!(job(&app).await["status"], "none");
}

#[tokio::test]
async fn a_zip_with_more_than_ten_thousand_entries_is_refused_before_it_is_opened() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let names: Vec<String> = (0..10_001).map(|i| format!("{i}.txt")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    let (status, body) = upload(&app, &format!(r#"{{"lists":[{list}]}}"#), &zip(&entries)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("10001 entries"),
        "{body}"
    );
}

#[tokio::test]
async fn a_zipped_csv_that_differs_from_its_checksum_fails_the_job_and_a_saturated_directory_is_refused()
 {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let params = format!(r#"{{"lists":[{list}]}}"#);
    // Stored, so that the CSV's bytes can be changed in the file after its CRC-32 was written.
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut out);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer.start_file("s.csv", stored).unwrap();
    writer.write_all(b"email\ncrc@example.com\n").unwrap();
    writer.finish().unwrap();
    let mut file = out.into_inner();
    let at = file.windows(3).position(|w| w == b"crc").unwrap();
    file[at] = b'x';
    let job = import(&app, &params, &file).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(
        job["imported"], 0,
        "the checksum fails before any row is written: {job}"
    );
    let log = log(&app).await;
    assert!(log.contains("CRC-32"), "{log}");

    // The end record saying one entry but saturating the directory's offset, which sends a reader to a ZIP64
    // record (here declaring five million entries, and none there): refused, not read.
    let mut file = zip(&[("a.csv", b"email\na@example.com\n")]);
    let end = file.len() - 22;
    file[end + 16..end + 20].copy_from_slice(&u32::MAX.to_le_bytes());
    let (status, body) = upload(&app, &params, &file).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("ZIP64"),
        "{body}"
    );
}

#[tokio::test]
async fn a_second_upload_arriving_at_the_same_instance_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let list = app.create_named("L").await;
    let params = format!(r#"{{"lists":[{list}]}}"#);
    let head = format!(
        "--b\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n{params}\r\n\
         --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.csv\"\r\n\r\nemail\n"
    );
    let parts = vec![
        head.into_bytes(),
        b"slow1@example.com\n".to_vec(),
        b"slow2@example.com\n".to_vec(),
        b"\r\n--b--\r\n".to_vec(),
    ];
    let slow = tokio::spawn(
        raw_upload(
            &app,
            crate::helpers::trickle(parts, Duration::from_millis(400)),
        )
        .send(),
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let response = app
        .request(Method::POST, IMPORT)
        .multipart(form(&params, rows(1, "second"), "second.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "5");
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("being uploaded"),
        "{body}"
    );
    let (status, body) = read(slow.await.unwrap().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ended(&app).await["imported"], 2);
}

#[tokio::test]
async fn a_job_whose_importer_loses_its_grant_stops_before_its_next_batch() {
    use sea_orm::{ConnectionTrait, DatabaseBackend, TransactionTrait};
    let app = TestApp::spawn().await;
    if app.db.get_database_backend() != DatabaseBackend::Postgres {
        // SQLite has one writing connection: nothing can hold a batch back while the grant is revoked.
        return;
    }
    let (accounts, importer) = crate::helpers::api_user(
        &app,
        "importing",
        &[
            UserPermission::SubscribersImport,
            UserPermission::SubscribersGetAll,
            UserPermission::ListsManageAll,
        ],
    )
    .await;
    let list = app.create_named("L").await;
    // Every shard of `service::locks` held: the job's first batch waits at the start of its transaction.
    let hold = app.db.begin().await.unwrap();
    hold.execute_unprepared(
        "SELECT pg_advisory_xact_lock(x'526f7374'::int, s) FROM generate_series(0, 15) s",
    )
    .await
    .unwrap();
    let (status, body) = upload_as(
        &app,
        Some(&importer),
        &format!(r#"{{"lists":[{list}]}}"#),
        &rows(10, "revoked"),
        "r.csv",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    accounts
        .set_user_permissions("importing", &[UserPermission::SubscribersImport], false)
        .await
        .unwrap();
    hold.commit().await.unwrap();
    let job = ended(&app).await;
    assert_eq!(
        (&job["status"], &job["imported"]),
        (&json!("failed"), &json!(0)),
        "{job}"
    );
    assert!(log(&app).await.contains("roles or credentials changed"));
    assert_eq!(app.list("").await["total"], 1);
    assert_sound(&app, "an import stopped by a revoke").await;
}
