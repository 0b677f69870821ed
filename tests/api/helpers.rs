use std::sync::LazyLock;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use roster::config::{DatabaseSettings, DatabaseUrl, Secret, Settings};
use roster::{Application, telemetry};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// The admin's `Authorization` value, for requests written by hand.
pub fn admin_authorization() -> String {
    use base64::Engine;
    let credentials = format!("{ADMIN_USER}:{ADMIN_PASSWORD}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        telemetry::init(roster::cli::LogFormat::Text);
    }
});

/// A database for one test: a temporary SQLite file, or a fresh Postgres database.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// Another handle on a database owned elsewhere (the owner keeps it alive).
    pub fn shared(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            _dir: None,
        }
    }

    pub async fn create() -> Self {
        match std::env::var("ROSTER_TEST_POSTGRES_URL") {
            Ok(admin_url) => Self::create_postgres(&admin_url, "").await,
            Err(_) => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("roster.db").display()
                );
                Self {
                    url,
                    _dir: Some(dir),
                }
            }
        }
    }

    /// A fresh PostgreSQL database created with `options` (after `CREATE DATABASE name`).
    async fn create_postgres(admin_url: &str, options: &str) -> Self {
        let name = format!("roster_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url)
            .await
            .expect("cannot reach the test Postgres server");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\" {options}"))
            .await
            .expect("cannot create a test database");
        admin.close().await.ok();
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&name);
        Self {
            url: url.to_string(),
            _dir: None,
        }
    }
}

pub fn settings(database_url: &str, admin_password: Option<&str>) -> Settings {
    Settings {
        address: "127.0.0.1:0".into(),
        database: DatabaseSettings {
            url: DatabaseUrl::new(database_url),
            max_connections: 5,
            min_connections: 1,
            acquire_timeout: std::time::Duration::from_secs(3),
            statement_timeout: std::time::Duration::from_secs(10),
        },
        admin_username: ADMIN_USER.into(),
        admin_password: admin_password.map(Secret::new),
        shutdown_grace: std::time::Duration::from_secs(2),
        http: roster::config::HttpSettings {
            body_limit: 256 * 1024,
            request_timeout: std::time::Duration::from_secs(30),
            rate_limit: 0,
            rate_limit_burst: 0,
            login_failures_per_minute: 0,
            login_failure_burst: 0,
            metrics_token: None,
            // Other tests send bursts from one caller on a machine that may be busy: the gate's refusals are
            // tested in fairness.rs, with a wait of their own.
            fair_share_wait: std::time::Duration::from_secs(10),
            import_limit: 128 * 1024 * 1024,
            import_upload_timeout: std::time::Duration::from_secs(60),
            idempotency: roster::config::IdempotencySettings {
                ttl: std::time::Duration::from_secs(86_400),
                keys_per_caller: 10_000,
                lease: std::time::Duration::from_secs(60),
            },
        },
        connections: Default::default(),
    }
}

/// A running Roster and an HTTP client pointed at it. The server stops when this is dropped.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub database: TestDatabase,
    pub db: DatabaseConnection,
    /// The application's pool for reads (SQLite's read-only connections; `db` again on PostgreSQL).
    pub reads: DatabaseConnection,
    pub password: String,
    pub generated_password: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        let database = TestDatabase::create().await;
        Self::spawn_on(database, Some(ADMIN_PASSWORD)).await
    }

    /// A running Roster with adjusted settings.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let database = TestDatabase::create().await;
        let mut settings = settings(&database.url, Some(ADMIN_PASSWORD));
        adjust(&mut settings);
        Self::start(database, settings, Some(ADMIN_PASSWORD)).await
    }

    /// A running Roster on a database that someone else provides.
    pub async fn spawn_with_url(url: &str, adjust: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = settings(url, Some(ADMIN_PASSWORD));
        adjust(&mut settings);
        Self::start(TestDatabase::shared(url), settings, Some(ADMIN_PASSWORD)).await
    }

    pub async fn spawn_on(database: TestDatabase, admin_password: Option<&str>) -> Self {
        let settings = settings(&database.url, admin_password);
        Self::start(database, settings, admin_password).await
    }

    async fn start(
        database: TestDatabase,
        settings: Settings,
        admin_password: Option<&str>,
    ) -> Self {
        LazyLock::force(&TRACING);
        let app = Application::build(settings)
            .await
            .expect("the application starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let generated_password = app.generated_admin_password().map(str::to_owned);
        let db = app.db();
        let reads = app.reads();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        Self {
            address,
            client: Client::builder().build().unwrap(),
            password: admin_password
                .map(str::to_owned)
                .or_else(|| generated_password.clone())
                .unwrap_or_default(),
            generated_password,
            database,
            db,
            reads,
            shutdown: Some(tx),
        }
    }

    /// Stops the server and hands back its database, for a restart on the same data.
    pub fn stop(mut self) -> TestDatabase {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let dir = self.database._dir.take();
        TestDatabase {
            url: self.database.url.clone(),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A client whose connections come from another loopback address (`127.0.0.N`), as another host would.
    pub fn client_from(&self, n: u8) -> Client {
        Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, n]))
            .build()
            .unwrap()
    }

    /// A request with no credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with the admin's credentials.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path)
            .basic_auth(ADMIN_USER, Some(&self.password))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::PUT, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a list and returns its JSON.
    pub async fn create_list(&self, body: Value) -> Value {
        let response = self.post_json("/api/lists", &body).await;
        let (status, json) = read(response).await;
        assert_eq!(status, StatusCode::OK, "creating {}: {json}", brief(&body));
        json["data"].clone()
    }

    /// Creates a list with just a name and returns its id.
    pub async fn create_named(&self, name: &str) -> i64 {
        self.create_list(json!({ "name": name })).await["id"]
            .as_i64()
            .unwrap()
    }

    /// Lists with the given query string, asserting success; returns `data`.
    pub async fn list(&self, query: &str) -> Value {
        let (status, json) = read(self.get(&format!("/api/lists?{query}")).await).await;
        assert_eq!(status, StatusCode::OK, "GET /api/lists?{query}: {json}");
        assert_eq!(json["status"], "success");
        json["data"].clone()
    }

    /// The names on one page of a listing.
    pub async fn names(&self, query: &str) -> Vec<String> {
        self.list(query).await["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Runs raw SQL on the application's database (to break it on purpose).
    pub async fn execute_sql(&self, sql: &str) {
        self.db.execute_unprepared(sql).await.unwrap();
    }
}

/// A value shortened for failure messages.
pub fn brief(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 300 {
        format!(
            "{}… ({} bytes)",
            &text[..text.floor_char_boundary(300)],
            text.len()
        )
    } else {
        text
    }
}

/// Status and JSON body of a response; asserts the body is JSON.
pub async fn read(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "expected JSON, got {content_type:?}: {text}"
    );
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {}", &text[..text.floor_char_boundary(300)]));
    (status, json)
}

/// Asserts an error status with a non-empty JSON message, and returns the message.
pub async fn expect_error(response: Response, expected: StatusCode) -> String {
    let (status, json) = read(response).await;
    assert_eq!(status, expected, "body: {}", brief(&json));
    let message = json["message"]
        .as_str()
        .expect("an error carries a message");
    assert!(!message.is_empty());
    assert_eq!(json.as_object().unwrap().len(), 1, "only `message`: {json}");
    message.to_owned()
}

/// The ids in a page of results.
pub fn ids(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect()
}

/// A port that was free a moment ago, for a process that binds it itself.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something answers `GET {base}/health`.
pub async fn wait_until_up(base: &str) {
    let client = Client::new();
    for _ in 0..100 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("nothing answers at {base}");
}

/// A request body that arrives in `parts`, each after `delay`, with no announced length.
pub fn trickle(parts: Vec<Vec<u8>>, delay: std::time::Duration) -> reqwest::Body {
    let stream = futures_util::stream::unfold(parts.into_iter(), move |mut parts| async move {
        let part = parts.next()?;
        tokio::time::sleep(delay).await;
        Some((Ok::<_, std::io::Error>(part), parts))
    });
    reqwest::Body::wrap_stream(stream)
}

impl TestDatabase {
    /// A database whose default collation is ICU's `en-US` on PostgreSQL (which sorts `ä@x.io` before `a+z@x.io`
    /// and ignores case first), for orderings that must not depend on the database's locale; on SQLite, a plain
    /// one (SQLite has no locales).
    pub async fn create_with_icu_collation() -> Self {
        match std::env::var("ROSTER_TEST_POSTGRES_URL") {
            Ok(admin_url) => {
                Self::create_postgres(
                    &admin_url,
                    "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
                )
                .await
            }
            Err(_) => Self::create().await,
        }
    }
}

/// Plants `n` subscribers with 60 KB attributes, as an attacker with write access could.
pub async fn plant_long_attribs(app: &TestApp, n: usize) {
    let text = "a".repeat(60_000);
    for i in 0..n {
        let body = json!({"email": format!("planted{i}@example.com"), "attribs": {"t": text}});
        let (status, body) = read(app.post_json("/api/subscribers", &body).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// A `query` within every bound that makes `LIKE` backtrack over the planted attributes: six patterns of 250
/// characters, none matching, so each row costs about 6 × 60,000 × 250 character steps on either backend.
pub fn expensive_query() -> String {
    let pattern = format!("%{}b%", "a_".repeat(124));
    vec![format!("subscribers.attribs->>'t' LIKE '{pattern}'"); 6].join(" OR ")
}

/// Inserts `n` copies of the row `template` of `table` straight in the database (the API would take minutes), in
/// SQL both backends run: `values` are expressions over the template `t` and the copy's number `v`, where `{uuid}`
/// stands for a fresh uuid stored as the template's is (SQLite keeps a blob or its text). Triggers keep the
/// counters exact.
/// SQL for a new UUID stored as that of the row the statement names `t` (SQLite keeps them as text or blobs).
pub fn new_uuid_like_t(app: &TestApp) -> &'static str {
    if app.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        return "gen_random_uuid()";
    }
    "CASE typeof(t.uuid) WHEN 'blob' THEN randomblob(16) ELSE lower(hex(randomblob(4)) || '-' || \
     hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) \
     || '-' || hex(randomblob(6))) END"
}

pub async fn insert_copies(
    app: &TestApp,
    table: &str,
    template: i64,
    n: u32,
    columns: &str,
    values: &str,
) {
    let backend = app.db.get_database_backend();
    let values = values.replace("{uuid}", new_uuid_like_t(app));
    let sql = format!(
        "WITH RECURSIVE i(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM i WHERE v < {n}) \
         INSERT INTO {table} ({columns}) SELECT {values} FROM i, {table} t WHERE t.id = {template}"
    );
    app.db
        .execute_raw(sea_orm::Statement::from_string(backend, sql))
        .await
        .unwrap();
}

/// An API user `name` holding a user role of the same name with `permissions`, and its `Authorization` header.
pub async fn api_user(
    app: &TestApp,
    name: &str,
    permissions: &[roster::domain::UserPermission],
) -> (roster::service::AccountService, String) {
    let accounts = roster::service::AccountService::new(app.db.clone());
    accounts
        .create_role(name, roster::service::RoleKind::User)
        .await
        .unwrap();
    accounts
        .set_user_permissions(name, permissions, true)
        .await
        .unwrap();
    let token = accounts.create_user(name, name, None).await.unwrap().token;
    (accounts, format!("token {name}:{token}"))
}
