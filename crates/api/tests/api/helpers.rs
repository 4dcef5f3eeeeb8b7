//! `spawn_app`: a real keysync server on a loopback port with its own fresh database.
//!
//! SQLite tests get a file in a temporary directory. PostgreSQL tests create a database named
//! after a random id on the server in `KEYSYNC_TEST_PG_URL` (which `cargo xtask test` starts and
//! sets) and drop it when the test ends. Without that variable PostgreSQL tests fail, loudly: a
//! skipped engine would look like a passing one.

use std::path::PathBuf;

use diesel::{Connection, RunQueryDsl};
use keysync_api::config::Settings;
use keysync_api::db::Database;
use keysync_api::startup::{connect_and_migrate, Application};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: Database,
    /// The database the server runs on, for a second server on the same data ("a restart").
    pub database_url: String,
    _sqlite_dir: Option<tempfile::TempDir>,
    pg_database: Option<PgTestDatabase>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request reaches the test server")
    }

    /// Drops the PostgreSQL database under the running server, to simulate an outage.
    pub fn drop_pg_database(&mut self) {
        if let Some(db) = self.pg_database.take() {
            db.drop_now();
        }
    }
}

/// A per-test PostgreSQL database, dropped (with its connections) when the test ends.
struct PgTestDatabase {
    admin_url: String,
    name: String,
}

impl PgTestDatabase {
    fn create() -> (Self, String) {
        let admin_url = std::env::var("KEYSYNC_TEST_PG_URL").expect(
            "KEYSYNC_TEST_PG_URL is not set: run the suite with `cargo xtask test`, which starts \
             PostgreSQL, or point it at a server whose user may create databases",
        );
        let name = format!("keysync_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = diesel::PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL server: {e}"));
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .expect("create the test database");
        let url = replace_database_in_url(&admin_url, &name);
        (Self { admin_url, name }, url)
    }

    fn drop_now(&self) {
        if let Ok(mut conn) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

impl Drop for PgTestDatabase {
    fn drop(&mut self) {
        self.drop_now();
    }
}

fn replace_database_in_url(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").expect("a postgres:// URL");
    let host_part = rest.split_once('/').map_or(rest, |(h, _)| h);
    let mut out = format!("{scheme}://{host_part}/{database}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Settings for a test server on `backend` with a fresh database; `dist` is a directory that
/// does not exist unless the test makes one.
fn test_settings(
    backend: Backend,
) -> (Settings, Option<tempfile::TempDir>, Option<PgTestDatabase>) {
    let mut settings = Settings {
        port: 0,
        log: std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
        pool_size: 4,
        ..Settings::default()
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    settings.dist_dir = dir.path().join("dist-not-built");
    match backend {
        Backend::Sqlite => {
            settings.database_url = dir.path().join("keysync.db").to_string_lossy().into_owned();
            (settings, Some(dir), None)
        }
        Backend::Postgres => {
            let (pg, url) = PgTestDatabase::create();
            settings.database_url = url;
            (settings, Some(dir), Some(pg))
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts a server after `customize` has adjusted its settings.
pub async fn spawn_app_with(backend: Backend, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let (mut settings, dir, pg_database) = test_settings(backend);
    customize(&mut settings);
    keysync_api::telemetry::init(&settings);
    let app = Application::build(settings.clone())
        .await
        .expect("the test server builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let db = connect_and_migrate(&settings)
        .await
        .expect("a second pool to inspect the database");
    TestApp {
        address,
        database_url: settings.database_url.clone(),
        client: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("an HTTP client"),
        db,
        _sqlite_dir: dir,
        pg_database,
    }
}

/// The built SPA for tests that need one: a tiny stand-in `index.html` in a temp directory.
pub fn fake_dist(marker: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let dist = dir.path().join("dist");
    std::fs::create_dir_all(&dist).expect("create dist");
    std::fs::write(
        dist.join("index.html"),
        format!("<!doctype html><html><body>{marker}</body></html>"),
    )
    .expect("write index.html");
    std::fs::write(dist.join("app.css"), "body { color: black; }").expect("write app.css");
    (dir, dist)
}

/// Generates one `#[tokio::test]` per engine for each listed `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )+
        }
    };
}

#[test]
fn database_names_are_swapped_in_postgres_urls() {
    assert_eq!(
        replace_database_in_url("postgres://u:p@h:5432/postgres", "t1"),
        "postgres://u:p@h:5432/t1"
    );
    assert_eq!(
        replace_database_in_url("postgres://u@h/postgres?sslmode=disable", "t2"),
        "postgres://u@h/t2?sslmode=disable"
    );
    assert_eq!(
        replace_database_in_url("postgres://h", "t3"),
        "postgres://h/t3"
    );
}

/// A signed-in (or anonymous) HTTP client with its own cookie jar.
pub struct Session {
    pub client: reqwest::Client,
    pub base: String,
}

pub const PASSWORD: &str = "correct horse battery";

impl Session {
    pub fn anonymous(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("an HTTP client"),
            base: app.address.clone(),
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_if_none_match(&self, path: &str, etag: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("If-None-Match", etag)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(
        &self,
        path: &str,
        if_match: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let mut req = self.client.patch(format!("{}{path}", self.base)).json(body);
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        req.send().await.expect("request")
    }

    pub async fn delete(&self, path: &str, if_match: Option<&str>) -> reqwest::Response {
        let mut req = self.client.delete(format!("{}{path}", self.base));
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        req.send().await.expect("request")
    }
}

impl TestApp {
    /// Creates an admin with [`PASSWORD`] directly in the database.
    pub fn seed_admin(&self, email: &str, role: keysync_shared::AdminRole) -> i64 {
        use keysync_api::domain::{Email, NewPassword};
        let mut conn = self.db.get_blocking().expect("a connection");
        let email = Email::parse(email).expect("a valid email");
        let password = NewPassword::parse(PASSWORD.into()).expect("a valid password");
        keysync_api::with_store!(&mut conn, |c| keysync_api::admins::create_admin(
            c,
            &keysync_api::db::models::Actor::System,
            &keysync_api::http::RequestMeta::default(),
            &email,
            "",
            &password,
            role
        ))
        .expect("seed an admin")
        .id
    }

    /// Seeds an admin of `role` and returns a session signed in as it.
    pub async fn signed_in(&self, role: keysync_shared::AdminRole) -> Session {
        let email = format!("{}-{}@example.com", role, uuid::Uuid::new_v4().simple());
        self.seed_admin(&email, role);
        let session = Session::anonymous(self);
        let response = session
            .post(
                "/api/auth/login",
                &serde_json::json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 200, "sign-in as a seeded {role}");
        session
    }

    /// Rows in `table` (a name from the schema), for atomicity checks.
    pub fn count_rows(&self, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.db.get_blocking().expect("a connection");
        let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}");
        keysync_api::with_store!(&mut conn, |c| diesel::sql_query(sql.clone())
            .get_result::<Count>(c))
        .expect("count rows")
        .n
    }

    /// Runs raw SQL against the test database (fault injection in atomicity tests).
    pub fn execute_sql(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        let mut conn = self.db.get_blocking().expect("a connection");
        keysync_api::with_store!(&mut conn, |c| c.batch_execute(sql)).expect("execute SQL");
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<i64>,
    pub event: String,
    pub data: String,
}

/// A reader of `GET /api/admin/events`.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    pub async fn open(session: &Session, last_event_id: Option<i64>) -> Self {
        let mut request = session
            .client
            .get(format!("{}/api/admin/events", session.base));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("open the event stream");
        assert_eq!(response.status(), 200, "event stream");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments included as `event == "comment"`), or `None` on timeout or end.
    pub async fn next(&mut self, timeout: std::time::Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                let mut meaningful = false;
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        event.event = "comment".into();
                        event.data = comment.trim().into();
                        meaningful = true;
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        event.id = v.parse().ok();
                        meaningful = true;
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.into();
                        meaningful = true;
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data = v.into();
                        meaningful = true;
                    } else if line.starts_with("retry: ") {
                        continue;
                    }
                }
                if meaningful {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next `change` event, skipping others.
    pub async fn next_change(
        &mut self,
        timeout: std::time::Duration,
    ) -> Option<keysync_shared::Change> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await?;
            if event.event == "change" {
                return serde_json::from_str(&event.data).ok();
            }
        }
    }
}
