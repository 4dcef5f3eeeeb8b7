//! Faults: the real `keysync` binary when the ground moves under it.
//!
//! - `kill -9` during a burst of admin writes and license validations (SQLite file): after a
//!   restart every acknowledged write is there, the file passes `PRAGMA integrity_check`, the
//!   change feed has no gap, and event-stream subscribers resume from `Last-Event-ID` and end up
//!   agreeing with the database.
//! - PostgreSQL stopped under load (a private server this test starts, never the shared one):
//!   requests fail with 503 and the JSON error instead of hanging, `/api/health` says the
//!   database is down, and the server recovers by itself when PostgreSQL is back.
//! - The GitHub upstream down or slow: the portal keeps serving the last good release, marked
//!   stale, and a slow upstream holds a request no longer than `releases_timeout_secs`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use keysync_e2e::{free_port, ServerProcess};
use serde_json::{json, Value};

const OWNER: &str = "owner@example.com";
const PASSWORD: &str = "fault test password";

/// A client with a cookie jar, signed in as the owner.
async fn signed_in(address: &str) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let login = client
        .post(format!("{address}/api/auth/login"))
        .json(&json!({"email": OWNER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "sign in");
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (client, cookie)
}

/// One server-sent event.
#[derive(Debug, Clone)]
struct Event {
    id: Option<i64>,
    kind: String,
    data: String,
}

/// A minimal `text/event-stream` reader over a streaming response.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(address: &str, cookie: &str, last_event_id: Option<i64>) -> Self {
        let client = reqwest::Client::new();
        let mut request = client
            .get(format!("{address}/api/admin/events"))
            .header("cookie", cookie);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "open the event stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, `None` when the stream ends or fails (the server was killed).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    kind: "message".into(),
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = v.trim().parse().ok();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.kind = v.trim().to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data.push_str(v);
                        any = true;
                    }
                }
                if any {
                    return Some(event);
                }
                continue;
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}

/// What a subscriber learnt from its change events: (resource, id) → (version, op).
type View = BTreeMap<(String, i64), (i64, String)>;

fn apply(view: &mut View, event: &Event) {
    let change: Value = serde_json::from_str(&event.data).unwrap();
    view.insert(
        (
            change["resource"].as_str().unwrap().to_owned(),
            change["id"].as_i64().unwrap(),
        ),
        (
            change["version"].as_i64().unwrap(),
            change["op"].as_str().unwrap().to_owned(),
        ),
    );
}

#[derive(QueryableByName, Debug)]
struct ChangeRow {
    #[diesel(sql_type = BigInt)]
    cursor: i64,
    #[diesel(sql_type = Text)]
    resource: String,
    #[diesel(sql_type = BigInt)]
    resource_id: i64,
    #[diesel(sql_type = Text)]
    op: String,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

#[derive(QueryableByName, Debug)]
struct Versioned {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

#[derive(QueryableByName, Debug)]
struct KeyCount {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    validation_count: i64,
}

#[derive(QueryableByName, Debug)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName, Debug)]
struct Check {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

/// The current version of every row a change event can name.
fn versions(conn: &mut diesel::SqliteConnection) -> HashMap<(String, i64), i64> {
    let mut out = HashMap::new();
    for table in ["license_keys", "customers", "admin_users"] {
        let rows: Vec<Versioned> = diesel::sql_query(format!("SELECT id, version FROM {table}"))
            .load(conn)
            .unwrap();
        for row in rows {
            out.insert((table.to_owned(), row.id), row.version);
        }
    }
    out
}

/// Every write acknowledged with a 2xx before the kill.
/// What one request of the burst came to.
enum Answer {
    /// The expected status, with its body.
    Acknowledged(Value),
    /// A 503, "busy, retry" by contract: not acknowledged, not a fault.
    Busy,
    /// The connection failed (the server was killed) or the status was wrong (counted as a
    /// failure): the worker stops.
    Stop,
}

async fn answer(
    request: reqwest::RequestBuilder,
    expected: u16,
    acked: &Mutex<Acknowledged>,
) -> Answer {
    let Ok(response) = request.send().await else {
        return Answer::Stop;
    };
    if response.status() == 503 {
        return Answer::Busy;
    }
    if response.status() != expected {
        acked.lock().unwrap().failures += 1;
        return Answer::Stop;
    }
    match response.json::<Value>().await {
        Ok(body) => Answer::Acknowledged(body),
        Err(_) => Answer::Stop,
    }
}

#[derive(Debug, Default)]
struct Acknowledged {
    /// Key id → the version the client was told.
    keys: HashMap<i64, i64>,
    customers: HashMap<i64, i64>,
    /// Key string → validations answered 200.
    validations: HashMap<String, i64>,
    failures: usize,
}

#[tokio::test]
async fn kill_9_during_a_write_burst_loses_no_acknowledged_write_and_subscribers_converge() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("faults.db");
    let db = db_path.to_str().unwrap().to_owned();
    let env = [
        ("KEYSYNC_DATABASE_URL", db.as_str()),
        ("KEYSYNC_ADMIN_EMAIL", OWNER),
        ("KEYSYNC_ADMIN_PASSWORD", PASSWORD),
        // The burst is far above a customer's pace; the limits are not under test here.
        ("KEYSYNC_VALIDATIONS_PER_IP_PER_MINUTE", "0"),
        ("KEYSYNC_VALIDATIONS_PER_KEY_PER_MINUTE", "0"),
    ];
    let mut server = ServerProcess::start(&env).unwrap();
    let address = server.address.clone();
    let (admin, cookie) = signed_in(&address).await;

    let mut keys = Vec::new();
    for i in 0..8 {
        let created: Value = admin
            .post(format!("{address}/api/admin/keys"))
            .json(&json!({"notes": format!("seed {i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        keys.push(created["key"].as_str().unwrap().to_owned());
    }

    // Subscribers connected before the burst record every event until the stream dies.
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let mut stream = EventStream::open(&address, &cookie, None).await;
        let ready = stream.next().await.unwrap();
        assert_eq!(ready.kind, "ready");
        let start = ready.id.unwrap();
        let seen = Arc::new(Mutex::new(Vec::<Event>::new()));
        let sink = seen.clone();
        let reader = tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                sink.lock().unwrap().push(event);
            }
        });
        subscribers.push((start, seen, reader));
    }

    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (admin, address, acked) = (admin.clone(), address.clone(), acked.clone());
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let create = admin
                    .post(format!("{address}/api/admin/keys"))
                    .json(&json!({"notes": format!("burst {worker}/{i}")}));
                let key = match answer(create, 201, &acked).await {
                    Answer::Acknowledged(key) => key,
                    Answer::Busy => continue,
                    Answer::Stop => break,
                };
                let id = key["id"].as_i64().unwrap();
                acked
                    .lock()
                    .unwrap()
                    .keys
                    .insert(id, key["version"].as_i64().unwrap());
                let patch = admin
                    .patch(format!("{address}/api/admin/keys/{id}"))
                    .header("if-match", "*")
                    .json(&json!({"notes": format!("patched {worker}/{i}")}));
                let key = match answer(patch, 200, &acked).await {
                    Answer::Acknowledged(key) => key,
                    Answer::Busy => continue,
                    Answer::Stop => break,
                };
                acked
                    .lock()
                    .unwrap()
                    .keys
                    .insert(id, key["version"].as_i64().unwrap());
                let customer = admin
                    .post(format!("{address}/api/admin/customers"))
                    .json(&json!({"name": format!("C {worker}/{i}"),
                                  "email": format!("c{worker}-{i}@example.com")}));
                let customer = match answer(customer, 201, &acked).await {
                    Answer::Acknowledged(customer) => customer,
                    Answer::Busy => continue,
                    Answer::Stop => break,
                };
                acked.lock().unwrap().customers.insert(
                    customer["id"].as_i64().unwrap(),
                    customer["version"].as_i64().unwrap(),
                );
            }
        }));
    }
    let public = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for worker in 0..6 {
        let (client, address, acked, keys) =
            (public.clone(), address.clone(), acked.clone(), keys.clone());
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let key = &keys[(worker + i) % keys.len()];
                let validate = client
                    .post(format!("{address}/api/validate-license"))
                    .json(&json!({"key": key, "fingerprint": format!("machine-{worker}")}));
                match answer(validate, 200, &acked).await {
                    Answer::Acknowledged(_) => {}
                    Answer::Busy => continue,
                    Answer::Stop => break,
                }
                *acked
                    .lock()
                    .unwrap()
                    .validations
                    .entry(key.clone())
                    .or_default() += 1;
            }
        }));
    }

    // Let the burst run, then pull the plug while it is in full flight.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server
        .signal_and_wait("KILL", Duration::from_secs(10))
        .unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    let mut before_kill = Vec::new();
    for (start, seen, reader) in subscribers {
        reader.await.unwrap();
        let events = seen.lock().unwrap().clone();
        before_kill.push((start, events));
    }
    drop(server);

    let acked = Arc::try_unwrap(acked).unwrap().into_inner().unwrap();
    eprintln!(
        "acknowledged before the kill: {} keys, {} customers, {} validations",
        acked.keys.len(),
        acked.customers.len(),
        acked.validations.values().sum::<i64>()
    );
    assert_eq!(
        acked.failures, 0,
        "before the kill every request succeeded: {acked:?}"
    );
    assert!(
        acked.keys.len() > 8 && acked.validations.values().sum::<i64>() > 8,
        "the burst made progress before the kill: {} keys, {:?} validations",
        acked.keys.len(),
        acked.validations
    );

    // Restart on the same file.
    let server = ServerProcess::start(&env).unwrap();
    let address = server.address.clone();
    let mut conn = diesel::SqliteConnection::establish(&db).unwrap();
    let check: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        check
            .iter()
            .map(|c| c.integrity_check.as_str())
            .collect::<Vec<_>>(),
        ["ok"]
    );

    let now = versions(&mut conn);
    for (id, version) in &acked.keys {
        let stored = now.get(&("license_keys".to_owned(), *id));
        assert!(
            stored.is_some_and(|v| v >= version),
            "acknowledged key {id} v{version} is stored as {stored:?}"
        );
    }
    for (id, version) in &acked.customers {
        let stored = now.get(&("customers".to_owned(), *id));
        assert!(
            stored.is_some_and(|v| v >= version),
            "acknowledged customer {id} v{version} is stored as {stored:?}"
        );
    }
    let counts: Vec<KeyCount> = diesel::sql_query("SELECT key, validation_count FROM license_keys")
        .load(&mut conn)
        .unwrap();
    for (key, answered) in &acked.validations {
        let counted = counts
            .iter()
            .find(|c| &c.key == key)
            .map(|c| c.validation_count);
        assert!(
            counted.is_some_and(|c| c >= *answered),
            "{answered} validations of a key were answered, {counted:?} are counted"
        );
    }
    let audited: Vec<Count> =
        diesel::sql_query("SELECT COUNT(*) AS n FROM audit_logs WHERE action = 'license.validate'")
            .load(&mut conn)
            .unwrap();
    let answered: i64 = acked.validations.values().sum();
    assert!(
        audited[0].n >= answered,
        "{answered} validations answered, {} audited",
        audited[0].n
    );

    // The feed: cursors contiguous (SQLite hands them out under one writer and nothing was
    // pruned), and every acknowledged write has its entry at (at least) the acknowledged version.
    let changes: Vec<ChangeRow> = diesel::sql_query(
        "SELECT cursor, resource, resource_id, op, version FROM changes ORDER BY cursor",
    )
    .load(&mut conn)
    .unwrap();
    for pair in changes.windows(2) {
        assert_eq!(
            pair[1].cursor,
            pair[0].cursor + 1,
            "a gap in the change feed"
        );
    }
    let head = changes.last().unwrap().cursor;
    for (resource, acked_rows) in [
        ("license_keys", &acked.keys),
        ("customers", &acked.customers),
    ] {
        for (id, version) in acked_rows {
            assert!(
                changes.iter().any(|c| c.resource == resource
                    && c.resource_id == *id
                    && c.version >= *version),
                "no change entry for acknowledged {resource} {id} v{version}"
            );
            assert!(changes
                .iter()
                .any(|c| c.resource == resource && c.resource_id == *id && c.op == "created"));
        }
    }

    // Subscribers come back with the last id they saw and converge on the database.
    let (_, cookie) = signed_in(&address).await;
    for (start, events) in before_kill {
        let mut view = View::new();
        let mut last = start;
        for event in events.iter().filter(|e| e.kind == "change") {
            let id = event.id.unwrap();
            assert!(id > last, "event ids only increase ({id} after {last})");
            last = id;
            apply(&mut view, event);
        }
        let mut stream = EventStream::open(&address, &cookie, Some(last)).await;
        while last < head {
            let event = tokio::time::timeout(Duration::from_secs(20), stream.next())
                .await
                .expect("the replay reaches the feed's head")
                .expect("the stream stays open");
            if event.kind != "change" {
                continue;
            }
            let id = event.id.unwrap();
            assert!(id > last, "no duplicate on resume ({id} after {last})");
            last = id;
            apply(&mut view, &event);
        }
        eprintln!(
            "subscriber from cursor {start}: {} events before the kill, resumed to {last}",
            events.len()
        );
        for change in changes.iter().filter(|c| c.cursor > start) {
            if change.resource == "webhooks" {
                continue;
            }
            let name = (change.resource.clone(), change.resource_id);
            let (version, op) = view
                .get(&name)
                .unwrap_or_else(|| panic!("the subscriber never heard of {name:?}"));
            match now.get(&name) {
                Some(current) => assert_eq!(version, current, "{name:?} ({op})"),
                None => assert_eq!(op, "deleted", "{name:?} is gone"),
            }
        }
    }
    drop(server);
}

/// A PostgreSQL 15 server of this test's own, in a temporary directory on a free port, so
/// stopping it disturbs no one else.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    const BIN: &'static str = "/usr/lib/postgresql/15/bin";

    /// `Ok(None)` when the binaries are missing outside CI (the caller skips); an error in CI.
    fn create() -> anyhow::Result<Option<Self>> {
        let bin = PathBuf::from(Self::BIN);
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        if !bin.join("initdb").is_file() {
            anyhow::ensure!(!ci, "{} is missing and CI requires this test", Self::BIN);
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        // PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
        let pg = Self {
            port: free_port(),
            bin,
            dir,
        };
        pg.run(&[
            &pg.tool("initdb"),
            "-D",
            &pg.data(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ])?;
        pg.start()?;
        Ok(Some(pg))
    }

    fn tool(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let mut cmd = if as_root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).args(args);
            cmd
        } else {
            let mut cmd = Command::new(args[0]);
            cmd.args(&args[1..]);
            cmd
        };
        let output = cmd.current_dir(self.dir.path()).output()?;
        anyhow::ensure!(
            output.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.run(&[
            &self.tool("pg_ctl"),
            "-D",
            &self.data(),
            "-l",
            &log,
            "-o",
            &options,
            "-w",
            "start",
        ])
    }

    fn stop(&self) -> anyhow::Result<()> {
        self.run(&[
            &self.tool("pg_ctl"),
            "-D",
            &self.data(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ])
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Asserts a response is the 503 of the shared error shape.
async fn assert_unavailable(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 503, "{what}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["code"], "service_unavailable",
        "{what}: {body}"
    );
    assert!(
        body["error"]["message"].as_str().is_some(),
        "{what}: {body}"
    );
}

#[tokio::test]
async fn postgres_stopped_under_load_gives_fast_503s_and_the_server_recovers_by_itself() {
    let Some(pg) = PrivatePostgres::create().unwrap() else {
        eprintln!(
            "skipped: no PostgreSQL 15 binaries in {} (CI runs this test)",
            PrivatePostgres::BIN
        );
        return;
    };
    let url = pg.url();
    let server = ServerProcess::start(&[
        ("KEYSYNC_DATABASE_URL", url.as_str()),
        ("KEYSYNC_ADMIN_EMAIL", OWNER),
        ("KEYSYNC_ADMIN_PASSWORD", PASSWORD),
        ("KEYSYNC_POOL_TIMEOUT_SECS", "2"),
        ("KEYSYNC_VALIDATIONS_PER_IP_PER_MINUTE", "0"),
        ("KEYSYNC_VALIDATIONS_PER_KEY_PER_MINUTE", "0"),
    ])
    .unwrap();
    let address = server.address.clone();
    let (admin, _) = signed_in(&address).await;
    let created: Value = admin
        .post(format!("{address}/api/admin/keys"))
        .json(&json!({"notes": "before the outage"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();

    // Load that runs through the outage: every answer must be a success or the JSON 503.
    let stop = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, usize>::new()));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (admin, address, key, stop, statuses) = (
            admin.clone(),
            address.clone(),
            key.clone(),
            stop.clone(),
            statuses.clone(),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let response = if worker % 2 == 0 {
                    admin
                        .post(format!("{address}/api/validate-license"))
                        .json(&json!({"key": key, "fingerprint": "m"}))
                        .send()
                        .await
                } else {
                    admin.get(format!("{address}/api/admin/keys")).send().await
                };
                let response = response.expect("an answer within the client timeout");
                let status = response.status().as_u16();
                if status >= 500 {
                    assert_unavailable(response, "a request during the outage").await;
                }
                *statuses.lock().unwrap().entry(status).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.stop().unwrap();

    // While it is down, each kind of request is a 503 with the JSON error, well inside the
    // client's 30 s timeout (a hang would surface as a timeout error here).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health = admin
        .get(format!("{address}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["error"]["code"], "service_unavailable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("postgres"),
        "{body}"
    );
    assert_unavailable(
        admin
            .get(format!("{address}/api/admin/keys"))
            .send()
            .await
            .unwrap(),
        "a list",
    )
    .await;
    assert_unavailable(
        admin
            .post(format!("{address}/api/admin/keys"))
            .json(&json!({"notes": "during the outage"}))
            .send()
            .await
            .unwrap(),
        "a write",
    )
    .await;
    assert_unavailable(
        admin
            .post(format!("{address}/api/validate-license"))
            .json(&json!({"key": key}))
            .send()
            .await
            .unwrap(),
        "a validation",
    )
    .await;

    pg.start().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = admin
            .get(format!("{address}/api/health"))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if status.as_ref().is_ok_and(|s| *s == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "health did not recover after PostgreSQL returned: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.await.unwrap();
    }
    let statuses = statuses.lock().unwrap().clone();
    eprintln!("statuses through the outage: {statuses:?}");
    assert!(
        statuses.get(&503).is_some_and(|n| *n > 0),
        "the load met the outage: {statuses:?}"
    );
    assert!(
        statuses.keys().all(|s| [200, 503].contains(s)),
        "only successes and 503s: {statuses:?}"
    );

    // The same session still works (sessions live in the database) and writes go through.
    let response = admin
        .post(format!("{address}/api/admin/keys"))
        .json(&json!({"notes": "after the outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response: Value = admin
        .post(format!("{address}/api/validate-license"))
        .json(&json!({"key": key, "fingerprint": "m"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["code"], "VALID", "{response}");
    drop(server);
}

/// How the fake GitHub answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Upstream {
    Up,
    Down,
    /// Accepts the request and never answers.
    Hanging,
}

/// A GitHub-compatible `releases/latest` endpoint on a loopback port, in raw HTTP/1.1 so the
/// end-to-end crate needs no web framework.
async fn fake_github(mode: Arc<Mutex<Upstream>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mode = *mode.lock().unwrap();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, body) = match mode {
                    Upstream::Up => (
                        "200 OK",
                        json!({
                            "tag_name": "v1.4.0", "name": "Tool 1.4.0", "body": "What changed.",
                            "draft": false, "prerelease": false,
                            "published_at": "2026-11-20T12:00:00Z",
                            "assets": [{"name": "tool.tar.gz", "size": 1024, "download_count": 3,
                                        "browser_download_url": "https://example.com/tool.tar.gz"}]
                        })
                        .to_string(),
                    ),
                    Upstream::Down => (
                        "502 Bad Gateway",
                        json!({"message": "upstream down"}).to_string(),
                    ),
                    Upstream::Hanging => {
                        tokio::time::sleep(Duration::from_secs(600)).await;
                        return;
                    }
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\netag: \"r1\"\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    address
}

#[tokio::test]
async fn an_upstream_down_or_hanging_leaves_the_portal_serving_the_last_good_release_stale() {
    let mode = Arc::new(Mutex::new(Upstream::Up));
    let github = fake_github(mode.clone()).await;
    let server = ServerProcess::start(&[
        ("KEYSYNC_RELEASES_REPO", "acme/tool"),
        ("KEYSYNC_RELEASES_API_URL", github.as_str()),
        ("KEYSYNC_RELEASES_CACHE_SECS", "0"),
        ("KEYSYNC_RELEASES_RETRY_SECS", "0"),
        ("KEYSYNC_RELEASES_TIMEOUT_SECS", "2"),
    ])
    .unwrap();
    // Generous: the configured upstream timeout is 2 s; a request held by a hanging upstream
    // would hit this instead and fail the test.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let latest = || async {
        let response = client
            .get(format!("{}/api/releases/latest", server.address))
            .send()
            .await
            .expect("an answer within the client timeout");
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };

    let fresh = latest().await;
    assert_eq!(fresh["tag_name"], "v1.4.0");
    assert_eq!(fresh["stale"], false);

    *mode.lock().unwrap() = Upstream::Down;
    let down = latest().await;
    assert_eq!(down["tag_name"], "v1.4.0");
    assert_eq!(down["stale"], true, "{down}");
    assert_eq!(down["fetched_at"], fresh["fetched_at"]);

    *mode.lock().unwrap() = Upstream::Hanging;
    // Several at once: they share the one hanging call and all get the stale copy.
    let answers = futures_util::future::join_all((0..4).map(|_| latest())).await;
    for answer in answers {
        assert_eq!(answer["tag_name"], "v1.4.0");
        assert_eq!(answer["stale"], true, "{answer}");
    }

    *mode.lock().unwrap() = Upstream::Up;
    let back = latest().await;
    assert_eq!(back["stale"], false, "{back}");
    drop(server);
}
