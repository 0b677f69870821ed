//! The real `roster` binary, configured through its environment, as an operator runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::helpers::{TestDatabase, free_port, read, wait_until_up};

#[tokio::test]
async fn the_binary_serves_from_its_environment_masks_secrets_and_stops_cleanly_on_sigterm() {
    // Also: API users made by `roster users` work at once, and their tokens stay out of the logs.
    let database = TestDatabase::create().await;
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .env_clear()
        .env("ROSTER_ADDRESS", format!("127.0.0.1:{port}"))
        .env("ROSTER_DATABASE_URL", &database.url)
        .env("ROSTER_ADMIN_USERNAME", "boss")
        .env("ROSTER_ADMIN_PASSWORD", "s3cret-Admin-Pw")
        .env("RUST_LOG", "debug")
        .env("ROSTER_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(lines_tx);

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base).await;
    let response = client
        .get(format!("{base}/api/lists"))
        .basic_auth("boss", Some("s3cret-Admin-Pw"))
        .header("X-Request-Id", "smoke-request-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "smoke-request-1");

    // An API user created with the management commands, against the same database.
    let roster = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(args)
            .env("ROSTER_DATABASE_URL", &database.url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    roster(&["roles", "create", "readers", "--kind", "user"]);
    roster(&["roles", "grant", "readers", "lists:get_all"]);
    let created: serde_json::Value = serde_json::from_str(&roster(&[
        "users", "create", "bot", "--role", "readers", "--json",
    ]))
    .unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let response = client
        .get(format!("{base}/api/lists"))
        .header("Authorization", format!("token bot:{token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(!roster(&["users", "list", "--json"]).contains(&token));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status after SIGTERM: {exit}");

    let output: Vec<String> = lines_rx.iter().collect();
    let text = output.join("\n");
    let mut request_lines = 0;
    for line in &output {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            // stdout carries the one non-log line: the generated password (not generated here).
            panic!("a log line that is not JSON: {line}");
        };
        if entry.to_string().contains("smoke-request-1") {
            request_lines += 1;
            assert_eq!(entry["span"]["request_id"], "smoke-request-1", "{line}");
        }
    }
    assert!(
        request_lines >= 1,
        "no log line carries the request id:\n{text}"
    );
    assert!(text.contains("listening on"), "{text}");
    assert!(
        !text.contains("s3cret-Admin-Pw"),
        "the admin password leaked into the logs"
    );
    if let Ok(url) = url::Url::parse(&database.url)
        && let Some(password) = url.password()
    {
        assert!(
            !text.contains(&format!(":{password}@")),
            "the database password leaked"
        );
    }
}

#[test]
fn help_explains_every_option_and_its_environment_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for variable in [
        "ROSTER_ADDRESS",
        "ROSTER_DATABASE_URL",
        "ROSTER_ADMIN_USERNAME",
        "ROSTER_ADMIN_PASSWORD",
        "ROSTER_BODY_LIMIT",
        "ROSTER_SHUTDOWN_GRACE",
        "ROSTER_DB_MAX_CONNECTIONS",
        "ROSTER_DB_ACQUIRE_TIMEOUT",
        "ROSTER_LOG_FORMAT",
    ] {
        assert!(
            help.contains(variable),
            "--help does not mention {variable}:\n{help}"
        );
    }
    for command in ["serve", "migrate", "users", "roles", "openapi"] {
        assert!(
            help.contains(command),
            "--help does not mention `{command}`"
        );
    }
}

/// Starts the binary on `database_url`; returns the child and its base URL once it answers.
async fn start_binary(database_url: &str) -> (std::process::Child, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .env("ROSTER_ADDRESS", format!("127.0.0.1:{port}"))
        .env("ROSTER_DATABASE_URL", database_url)
        .env("ROSTER_ADMIN_PASSWORD", crate::helpers::ADMIN_PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base).await;
    (child, base)
}

#[tokio::test]
async fn two_processes_on_one_database_read_each_others_writes() {
    let database = TestDatabase::create().await;
    let (mut one, first) = start_binary(&database.url).await;
    let (mut two, second) = start_binary(&database.url).await;
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, url: String| {
        client.request(method, url).basic_auth(
            crate::helpers::ADMIN_USER,
            Some(crate::helpers::ADMIN_PASSWORD),
        )
    };
    let (_, created) = read(
        call(reqwest::Method::POST, format!("{first}/api/lists"))
            .json(&serde_json::json!({"name": "across processes"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let id = &created["data"]["id"];
    let (_, seen) = read(
        call(reqwest::Method::GET, format!("{second}/api/lists/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen["data"], created["data"]);
    let deleted = call(reqwest::Method::DELETE, format!("{second}/api/lists/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let gone = call(reqwest::Method::GET, format!("{first}/api/lists/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    for child in [&mut one, &mut two] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
