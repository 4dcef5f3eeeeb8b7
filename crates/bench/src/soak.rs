//! `cargo xtask soak --minutes N [--engine sqlite|postgres]`: mixed load on one server for N
//! minutes, then checks.
//!
//! Load: license validations at a steady rate (existing keys, unknown keys, a seat-limited key
//! from many machines), admin mutations (create, patch, delete keys; create customers), signed
//! webhook deliveries, and 1,000 event-stream subscribers that each keep a view of what the
//! change events told them. The server's memory is sampled every second.
//!
//! The validations are paced by a thread of their own, with its own single-threaded runtime and
//! HTTP client: on the shared runtime the pacer queued behind a thousand subscriber tasks and
//! sent fewer validations than asked. Tick k is due at `start + k / rate` (absolute deadlines,
//! so a late tick does not push the later ones back); a tick that is late is sent as soon as the
//! pacer wakes, and nothing is sent after the load window closes.
//!
//! Checks, printed at the end (the command fails when one fails):
//! - the validation rate held: validations answered within the window ≥ 95 % of
//!   `rate × window`
//!   (the printout gives requested and achieved rates and the late ticks);
//! - no 5xx answer to any request;
//! - every request answered as expected: no transport error or timeout, every validation a 200
//!   with the code its key must get, every admin write and webhook delivery a 2xx;
//! - the activity log holds exactly one `license.validate` row per validation answered;
//! - every subscriber's view equals the database (each row it heard of is at its current
//!   version, or gone if it heard `deleted`; every row changed since it subscribed is in it);
//! - memory flat after warm-up: the warm-up is the first quarter of the load window; the
//!   server's anonymous RSS (`RssAnon`: heap and stacks, not the SQLite file SQLite maps into
//!   memory) grows by at most 5 % from the median of the 30 s after warm-up to the median of
//!   the last 30 s of the window.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{Args, BenchServer, Engine};

/// How long the load's clients keep an idle connection: less than the server's keep-alive
/// (actix-web's default, 5 s), so a client never sends on a connection the server is closing.
/// (A 10-minute PostgreSQL soak once lost one validation to that race with reqwest's 90 s.)
const CLIENT_IDLE: Duration = Duration::from_secs(4);
const WEBHOOK_SECRET: &str = "soak-webhook-secret";

/// The share of the requested validation rate a soak must reach to count.
const MIN_RATE_SHARE: f64 = 0.95;
/// A tick sent later than this after its due time counts as late.
const LATE_AFTER: Duration = Duration::from_millis(10);
/// No request of the load may take longer: a hung answer is a failure, not a stalled soak.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest allowed growth of anonymous RSS from the end of warm-up to the end of the run.
const MAX_RSS_GROWTH: f64 = 0.05;
/// Width of the two windows whose median RSS are compared (at most a quarter of the run).
const RSS_WINDOW: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct SoakArgs {
    pub minutes: f64,
    pub engine: Engine,
    pub subscribers: usize,
    /// Validations per second.
    pub rate: u64,
    /// Where to record the result (`--record`: the engine's section of `docs/soak.md`, which
    /// `cargo xtask bench` includes in `docs/benchmarks.md`).
    pub record: Option<std::path::PathBuf>,
}

/// What one subscriber learnt: (resource, id) → (version, op), and its last event id.
#[derive(Default)]
struct View {
    rows: HashMap<(String, i64), (i64, String)>,
    last: i64,
    start: i64,
    reset: bool,
}

/// Which part of the load a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Validation,
    Write,
    Webhook,
}

/// Tallies of every request the load sent.
#[derive(Default)]
struct Tally {
    statuses: Mutex<BTreeMap<Kind, BTreeMap<u16, u64>>>,
    /// Validation answers by `code`.
    codes: Mutex<BTreeMap<String, u64>>,
    transport_errors: AtomicU64,
    /// Answers other than the one the request must get (wrong status or validation code).
    unexpected: AtomicU64,
    first_problem: Mutex<Option<String>>,
    validations_answered: AtomicU64,
    /// Validations whose answer arrived before the load window closed.
    validations_in_window: AtomicU64,
    writes_accepted: AtomicU64,
    webhooks_accepted: AtomicU64,
}

impl Tally {
    fn record(&self, kind: Kind, status: u16) {
        *self
            .statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    fn note_problem(&self, what: String) {
        self.first_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(what);
    }

    fn unexpected(&self, what: String) {
        self.unexpected.fetch_add(1, Ordering::Relaxed);
        self.note_problem(what);
    }

    fn transport(&self, kind: Kind, error: &reqwest::Error) {
        self.transport_errors.fetch_add(1, Ordering::Relaxed);
        self.note_problem(format!("{kind:?}: {error}"));
    }

    /// An admin write or webhook answer: any 2xx is what the load expects.
    fn answered(&self, kind: Kind, what: &str, result: &Result<reqwest::Response, reqwest::Error>) {
        match result {
            Ok(r) => {
                let status = r.status();
                self.record(kind, status.as_u16());
                if status.is_success() {
                    match kind {
                        Kind::Webhook => &self.webhooks_accepted,
                        _ => &self.writes_accepted,
                    }
                    .fetch_add(1, Ordering::Relaxed);
                } else {
                    self.unexpected(format!("{what}: {status}"));
                }
            }
            Err(e) => self.transport(kind, e),
        }
    }

    fn statuses(&self) -> BTreeMap<Kind, BTreeMap<u16, u64>> {
        self.statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn fivexx(&self) -> u64 {
        self.statuses()
            .values()
            .flat_map(|by_status| by_status.iter())
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum()
    }
}

pub(crate) async fn scrape(client: &reqwest::Client, url: &str) -> reqwest::Result<String> {
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

/// The value of the unlabelled Prometheus gauge `name` in `text`.
pub(crate) fn gauge(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The server's (VmRSS, RssAnon) in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("RssAnon:")?))
}

/// What the validation pacer did.
struct Paced {
    /// Ticks due in the load window: `ceil(rate × window)`.
    due: u64,
    sent: u64,
    /// Ticks sent more than `LATE_AFTER` after their due time.
    late: u64,
    worst_late: Duration,
    most_in_flight: usize,
}

/// Starts the validation pacer on a thread of its own (see the module's documentation).
fn start_pacer(
    rate: u64,
    window: (Instant, Instant),
    url: String,
    keys: Vec<String>,
    tally: Arc<Tally>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<Paced>>> {
    Ok(std::thread::Builder::new()
        .name("soak-pacer".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(pace(rate, window, url, keys, tally))
        })?)
}

async fn pace(
    rate: u64,
    (start, end): (Instant, Instant),
    url: String,
    keys: Vec<String>,
    tally: Arc<Tally>,
) -> anyhow::Result<Paced> {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(CLIENT_IDLE)
        .build()?;
    let period = 1.0 / rate as f64;
    let due = ((end - start).as_secs_f64() * rate as f64).ceil() as u64;
    let mut requests = tokio::task::JoinSet::new();
    let mut paced = Paced {
        due,
        sent: 0,
        late: 0,
        worst_late: Duration::ZERO,
        most_in_flight: 0,
    };
    while paced.sent < due {
        let tick = start + Duration::from_secs_f64(paced.sent as f64 * period);
        tokio::time::sleep_until(tick.into()).await;
        let now = Instant::now();
        if now >= end {
            // The window is over: what was not sent in it does not count.
            break;
        }
        let late = now - tick;
        if late > LATE_AFTER {
            paced.late += 1;
        }
        paced.worst_late = paced.worst_late.max(late);
        let i = paced.sent as usize;
        paced.sent += 1;
        // Each kind of key with the only code it may get.
        let (body, expected): (Value, &'static [&'static str]) = match i % 10 {
            0 => (json!({"key": "SCO-ZZZZ-ZZZZ-ZZZZ-ZZZZ"}), &["NOT_FOUND"]),
            1 => (
                json!({"key": keys[0], "fingerprint": format!("machine-{}", i % 7)}),
                &["VALID", "TOO_MANY_ACTIVATIONS"],
            ),
            _ => (
                json!({"key": keys[i % keys.len()], "fingerprint": "m"}),
                &["VALID"],
            ),
        };
        requests.spawn(validate(
            client.clone(),
            url.clone(),
            body,
            expected,
            end,
            tally.clone(),
        ));
        while requests.try_join_next().is_some() {}
        paced.most_in_flight = paced.most_in_flight.max(requests.len());
    }
    while requests.join_next().await.is_some() {}
    Ok(paced)
}

async fn validate(
    client: reqwest::Client,
    url: String,
    body: Value,
    expected: &'static [&'static str],
    end: Instant,
    tally: Arc<Tally>,
) {
    let response = match client.post(&url).json(&body).send().await {
        Ok(r) => r,
        Err(e) => return tally.transport(Kind::Validation, &e),
    };
    let status = response.status().as_u16();
    tally.record(Kind::Validation, status);
    tally.validations_answered.fetch_add(1, Ordering::Relaxed);
    if Instant::now() < end {
        tally.validations_in_window.fetch_add(1, Ordering::Relaxed);
    }
    let code = match response.json::<Value>().await {
        Ok(v) => v["code"].as_str().map(str::to_owned),
        Err(e) => return tally.transport(Kind::Validation, &e),
    };
    match code {
        Some(code) if status == 200 && expected.contains(&code.as_str()) => {
            *tally
                .codes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(code)
                .or_default() += 1;
        }
        other => tally.unexpected(format!(
            "validation: {status} {other:?}, expected 200 with one of {expected:?}"
        )),
    }
}

/// Median of the samples taken in `[from, to)` into the run, and how many there were.
fn median_between(samples: &[(Duration, u64)], from: Duration, to: Duration) -> (u64, usize) {
    let mut part: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .map(|(_, v)| *v)
        .collect();
    part.sort_unstable();
    (part.get(part.len() / 2).copied().unwrap_or(0), part.len())
}

async fn subscriber(
    client: reqwest::Client,
    url: String,
    view: Arc<Mutex<View>>,
    ready: tokio::sync::mpsc::UnboundedSender<bool>,
) {
    let Ok(mut response) = client.get(&url).send().await else {
        let _ = ready.send(false);
        return;
    };
    if response.status() != 200 {
        let _ = ready.send(false);
        return;
    }
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut kind = "";
            let mut data = "";
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.trim().parse::<i64>().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.trim();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v;
                }
            }
            let mut view = view.lock().unwrap_or_else(|p| p.into_inner());
            match kind {
                "ready" => {
                    view.start = id.unwrap_or(0);
                    view.last = view.start;
                    let _ = ready.send(true);
                }
                "change" => {
                    if let Ok(change) = serde_json::from_str::<Value>(data) {
                        let key = (
                            change["resource"].as_str().unwrap_or("").to_owned(),
                            change["id"].as_i64().unwrap_or(0),
                        );
                        view.rows.insert(
                            key,
                            (
                                change["version"].as_i64().unwrap_or(0),
                                change["op"].as_str().unwrap_or("").to_owned(),
                            ),
                        );
                    }
                    if let Some(id) = id {
                        view.last = view.last.max(id);
                    }
                }
                "reset" => view.reset = true,
                _ => {}
            }
        }
    }
}

fn sign(t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Every page of a list, as (id, version).
async fn all_rows(
    client: &reqwest::Client,
    server: &BenchServer,
    path: &str,
) -> anyhow::Result<HashMap<i64, i64>> {
    let mut out = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = server.url(&format!("{path}?limit=200"));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client.get(&url).send().await?.json().await?;
        for item in page["items"].as_array().context("a list page")? {
            out.insert(
                item["id"].as_i64().unwrap_or(0),
                item["version"].as_i64().unwrap_or(0),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(out),
        }
    }
}

pub async fn run(args: &Args, soak: &SoakArgs) -> anyhow::Result<bool> {
    anyhow::ensure!(
        soak.rate > 0,
        "--rate is validations per second, at least 1"
    );
    anyhow::ensure!(soak.minutes > 0.0, "--minutes must be above 0");
    let duration = Duration::from_secs_f64(soak.minutes * 60.0);
    println!(
        "soak: {} for {:.1} min, {} validations/s, {} subscribers",
        soak.engine.name(),
        soak.minutes,
        soak.rate,
        soak.subscribers
    );
    let server = BenchServer::start(
        args,
        soak.engine,
        &[
            ("KEYSYNC_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("KEYSYNC_VALIDATIONS_PER_IP_PER_MINUTE", "0"),
            ("KEYSYNC_VALIDATIONS_PER_KEY_PER_MINUTE", "0"),
            ("KEYSYNC_POOL_SIZE", "16"),
        ],
    )?;
    let pid = server.process.pid();
    let admin = server.owner_client().await?;
    let mut keys = Vec::new();
    for i in 0..200 {
        let body = if i == 0 {
            json!({"notes": "seat-limited", "max_activations": 3})
        } else {
            json!({"notes": format!("soak {i}")})
        };
        let key: Value = admin
            .post(server.url("/api/admin/keys"))
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        keys.push(key["key"].as_str().context("a created key")?.to_owned());
    }

    // Subscribers first, over connections of their own.
    let streams = reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(0)
        .build()?;
    streams
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": crate::ADMIN_EMAIL, "password": crate::ADMIN_PASSWORD}))
        .send()
        .await?;
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut views = Vec::with_capacity(soak.subscribers);
    let mut handles = Vec::with_capacity(soak.subscribers);
    for _ in 0..soak.subscribers {
        let view = Arc::new(Mutex::new(View::default()));
        views.push(view.clone());
        handles.push(tokio::spawn(subscriber(
            streams.clone(),
            server.url("/api/admin/events"),
            view,
            ready_tx.clone(),
        )));
    }
    drop(ready_tx);
    for n in 0..soak.subscribers {
        match tokio::time::timeout(Duration::from_secs(120), ready_rx.recv()).await {
            Ok(Some(true)) => {}
            other => anyhow::bail!("subscriber {n} did not open: {other:?}"),
        }
    }
    println!("{} subscribers connected", soak.subscribers);

    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + duration;

    let pacer = start_pacer(
        soak.rate,
        (started, deadline),
        server.url("/api/validate-license"),
        keys.clone(),
        tally.clone(),
    )?;
    let mut load = Vec::new();
    // Admin mutations: create, patch, sometimes delete keys; create customers.
    let rounds = Arc::new(AtomicUsize::new(0));
    let admin_load = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(CLIENT_IDLE)
        .build()?;
    let signed_in = admin_load
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": crate::ADMIN_EMAIL, "password": crate::ADMIN_PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(
        signed_in.status() == 200,
        "soak sign-in failed: {}",
        signed_in.status()
    );
    for worker in 0..2 {
        let (tally, admin, rounds) = (tally.clone(), admin_load.clone(), rounds.clone());
        let base = server.process.address.clone();
        load.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let created = admin
                    .post(format!("{base}/api/admin/keys"))
                    .json(&json!({"notes": format!("soak {worker}/{i}")}))
                    .send()
                    .await;
                tally.answered(Kind::Write, "create key", &created);
                let id = match created {
                    Ok(r) if r.status().is_success() => {
                        r.json::<Value>().await.ok().and_then(|v| v["id"].as_i64())
                    }
                    _ => None,
                };
                if let Some(id) = id {
                    let patched = admin
                        .patch(format!("{base}/api/admin/keys/{id}"))
                        .header("if-match", "*")
                        .json(&json!({"notes": format!("patched {worker}/{i}")}))
                        .send()
                        .await;
                    tally.answered(Kind::Write, "patch key", &patched);
                    if i % 4 == 0 {
                        let deleted = admin
                            .delete(format!("{base}/api/admin/keys/{id}"))
                            .header("if-match", "*")
                            .send()
                            .await;
                        tally.answered(Kind::Write, "delete key", &deleted);
                    }
                }
                if i % 3 == 0 {
                    let customer = admin
                        .post(format!("{base}/api/admin/customers"))
                        .json(&json!({"name": format!("Soak {worker}/{i}"),
                                      "email": format!("soak-{worker}-{i}@example.com")}))
                        .send()
                        .await;
                    tally.answered(Kind::Write, "create customer", &customer);
                }
                rounds.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    // Signed webhook deliveries, one a second.
    {
        let (tally, url) = (tally.clone(), server.url("/api/admin/sync"));
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(CLIENT_IDLE)
            .build()?;
        load.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let body = json!({"event": "deployment_complete", "data": {"n": i}}).to_string();
                let signature = sign(chrono::Utc::now().timestamp(), &body);
                let delivered = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-keysync-signature", signature)
                    .body(body)
                    .send()
                    .await;
                tally.answered(Kind::Webhook, "webhook", &delivered);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }

    // Memory every second (elapsed, VmRSS, RssAnon), the server's own heap gauges every 5 s
    // (what of the RSS is live heap, and how much of that SQLite holds), progress every 10 s.
    let mut rss: Vec<(Duration, u64, u64)> = Vec::new();
    let mut heap: Vec<(Duration, u64)> = Vec::new();
    let mut sqlite_heap: Vec<(Duration, u64)> = Vec::new();
    let scraper = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut next_progress = Duration::ZERO;
    let mut next_scrape = Duration::ZERO;
    while Instant::now() < deadline {
        let at = started.elapsed();
        if let Some((total, anon)) = rss_kib(pid) {
            rss.push((at, total, anon));
        }
        if at >= next_scrape {
            next_scrape += Duration::from_secs(5);
            if let Ok(text) = scrape(&scraper, &server.url("/metrics")).await {
                if let Some(bytes) = gauge(&text, "keysync_heap_in_use_bytes") {
                    heap.push((at, bytes / 1024));
                }
                if let Some(bytes) = gauge(&text, "keysync_sqlite_heap_bytes") {
                    sqlite_heap.push((at, bytes / 1024));
                }
            }
        }
        if at >= next_progress {
            next_progress += Duration::from_secs(10);
            println!(
                "  {:>5.0} s  RSS {:>7} KiB (anonymous {:>7} KiB)  validations answered {:>7}  statuses {:?}",
                at.as_secs_f64(),
                rss.last().map_or(0, |r| r.1),
                rss.last().map_or(0, |r| r.2),
                tally.validations_answered.load(Ordering::Relaxed),
                tally.statuses()
            );
        }
        tokio::time::sleep(
            Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    }
    for h in load {
        let _ = h.await;
    }
    let paced = tokio::task::spawn_blocking(move || pacer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the validation pacer panicked"))??;
    println!("load stopped; checking");

    // The feed's head, then wait for every subscriber to reach it.
    let head: Value = admin
        .get(server.url("/api/admin/sync"))
        .send()
        .await?
        .json()
        .await?;
    let head: i64 = head["next"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("the feed's head")?;
    let wait_until = Instant::now() + Duration::from_secs(60);
    loop {
        let behind = views
            .iter()
            .filter(|v| v.lock().unwrap_or_else(|p| p.into_inner()).last < head)
            .count();
        if behind == 0 || Instant::now() > wait_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The database as it is now, and every row changed since the earliest subscriber started.
    let mut current: HashMap<(String, i64), i64> = HashMap::new();
    for (resource, path) in [
        ("license_keys", "/api/admin/keys"),
        ("customers", "/api/admin/customers"),
        ("admin_users", "/api/admin/users"),
    ] {
        for (id, version) in all_rows(&admin, &server, path).await? {
            current.insert((resource.to_owned(), id), version);
        }
    }
    let earliest = views
        .iter()
        .map(|v| v.lock().unwrap_or_else(|p| p.into_inner()).start)
        .min()
        .unwrap_or(0);
    let mut changed: Vec<(i64, String, i64)> = Vec::new();
    let mut since = earliest;
    loop {
        let page: Value = admin
            .get(server.url(&format!("/api/admin/sync?since={since}&limit=1000")))
            .send()
            .await?
            .json()
            .await?;
        for c in page["changes"].as_array().context("changes")? {
            changed.push((
                c["cursor"].as_i64().unwrap_or(0),
                c["resource"].as_str().unwrap_or("").to_owned(),
                c["id"].as_i64().unwrap_or(0),
            ));
        }
        let next = page["next"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .context("the feed's next cursor")?;
        if page["has_more"] != true {
            break;
        }
        anyhow::ensure!(next > since, "the change feed did not advance past {since}");
        since = next;
    }

    let mut diverged = 0usize;
    let mut first_divergence = None;
    for (n, view) in views.iter().enumerate() {
        let view = view.lock().unwrap_or_else(|p| p.into_inner());
        let mut ok = !view.reset && view.last >= head;
        if !ok && first_divergence.is_none() {
            first_divergence = Some(if view.reset {
                format!("subscriber {n} was reset")
            } else {
                format!("subscriber {n} stopped at cursor {}", view.last)
            });
        }
        for ((resource, id), (version, op)) in &view.rows {
            if resource == "webhooks" {
                continue;
            }
            let agrees = match current.get(&(resource.clone(), *id)) {
                Some(now) => now == version,
                None => op == "deleted",
            };
            if !agrees && first_divergence.is_none() {
                first_divergence = Some(format!(
                    "subscriber {n}: {resource} {id} v{version} {op}, database {:?}",
                    current.get(&(resource.clone(), *id))
                ));
            }
            ok &= agrees;
        }
        for (cursor, resource, id) in &changed {
            if *cursor > view.start
                && resource != "webhooks"
                && !view.rows.contains_key(&(resource.clone(), *id))
            {
                if first_divergence.is_none() {
                    first_divergence =
                        Some(format!("subscriber {n} never heard of {resource} {id}"));
                }
                ok = false;
            }
        }
        if !ok {
            diverged += 1;
        }
    }
    for h in handles {
        h.abort();
    }

    // Audit: one `license.validate` row per validation answered.
    let audit: Value = admin
        .get(server.url("/api/admin/audit-logs?action=license.validate&limit=1"))
        .send()
        .await?
        .json()
        .await?;
    let audited = audit["total"].as_u64().context("audit total")?;
    let answered = tally.validations_answered.load(Ordering::Relaxed);

    // The validation rate: answers that arrived within the window, against what was asked (a
    // server that queues requests and answers them after the window did not keep the pace).
    let window = duration.as_secs_f64();
    let in_window = tally.validations_in_window.load(Ordering::Relaxed);
    let achieved = in_window as f64 / window;
    let share = in_window as f64 / paced.due.max(1) as f64;
    let rate_held = share >= MIN_RATE_SHARE;

    // Memory: anonymous RSS, median of the window after warm-up vs median of the last window.
    let warm_up = duration / 4;
    let width = RSS_WINDOW.min(duration / 4);
    let anon: Vec<(Duration, u64)> = rss.iter().map(|r| (r.0, r.2)).collect();
    let (after_warm_up, n_after) = median_between(&anon, warm_up, warm_up + width);
    let (at_end, n_end) = median_between(&anon, duration - width, Duration::MAX);
    let growth = (at_end as f64 - after_warm_up as f64) / after_warm_up.max(1) as f64;
    let enough_samples = n_after >= 3 && n_end >= 3;
    let flat = enough_samples && growth <= MAX_RSS_GROWTH;
    // Where the growth is: live heap, and SQLite's share of it (same windows).
    let gauge_growth = |samples: &[(Duration, u64)], name: &str| {
        let (before, n_before) = median_between(samples, warm_up, warm_up + width);
        let (after, n_after) = median_between(samples, duration - width, Duration::MAX);
        if n_before == 0 || n_after == 0 {
            return String::new();
        }
        format!("; {name} {before} → {after} KiB")
    };
    let heap_detail =
        gauge_growth(&heap, "heap in use") + &gauge_growth(&sqlite_heap, "of it SQLite");

    let statuses = tally.statuses();
    let fivexx = tally.fivexx();
    let transport_errors = tally.transport_errors.load(Ordering::Relaxed);
    let unexpected = tally.unexpected.load(Ordering::Relaxed);
    let writes = tally.writes_accepted.load(Ordering::Relaxed);
    let webhooks = tally.webhooks_accepted.load(Ordering::Relaxed);
    let first_problem = tally
        .first_problem
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let codes = tally
        .codes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let checks = [
        (
            format!(
                "validation rate held (≥ {:.0} % of the requested rate)",
                MIN_RATE_SHARE * 100.0
            ),
            rate_held,
            format!(
                "requested {} /s, achieved {achieved:.1} /s ({:.1} %): {in_window} answered within the window of {} due in {window:.0} s ({} sent, {answered} answered in all); {} late ticks (sent > {} ms after due), worst {:.0} ms; at most {} in flight",
                soak.rate,
                share * 100.0,
                paced.due,
                paced.sent,
                paced.late,
                LATE_AFTER.as_millis(),
                paced.worst_late.as_secs_f64() * 1000.0,
                paced.most_in_flight
            ),
        ),
        (
            "no 5xx".to_owned(),
            fivexx == 0,
            format!(
                "{fivexx} of {} answers; statuses {statuses:?}",
                statuses.values().flat_map(|s| s.values()).sum::<u64>(),
            ),
        ),
        (
            "every request answered as expected".to_owned(),
            transport_errors == 0 && unexpected == 0 && writes > 0 && webhooks > 0,
            format!(
                "{transport_errors} transport errors or timeouts, {unexpected} unexpected answers; validation codes {codes:?}; {writes} admin writes and {webhooks} webhooks accepted{}",
                first_problem.map_or(String::new(), |p| format!("; first: {p}"))
            ),
        ),
        (
            "one audit row per validation".to_owned(),
            audited == answered && answered > 0,
            format!("{answered} validations answered, {audited} license.validate rows"),
        ),
        (
            "every subscriber's view equals the database".to_owned(),
            diverged == 0 && !changed.is_empty(),
            format!(
                "{} of {} subscribers agree at cursor {head}; {} changes since the first subscribed{}",
                views.len() - diverged,
                views.len(),
                changed.len(),
                first_divergence.map_or(String::new(), |d| format!("; first: {d}"))
            ),
        ),
        (
            format!(
                "memory flat after warm-up (anonymous RSS growth ≤ {:.0} %)",
                MAX_RSS_GROWTH * 100.0
            ),
            flat,
            format!(
                "median {after_warm_up} KiB over {:.0}–{:.0} s ({n_after} samples), {at_end} KiB over the last {:.0} s ({n_end} samples): {:+.1} %; total RSS peak {} KiB{heap_detail}",
                warm_up.as_secs_f64(),
                (warm_up + width).as_secs_f64(),
                width.as_secs_f64(),
                growth * 100.0,
                rss.iter().map(|r| r.1).max().unwrap_or(0)
            ),
        ),
    ];
    let summary = format!(
        "soak on {} for {:.1} min: {} validations answered, {} admin mutation rounds ({} writes accepted), {} webhooks accepted, {} subscribers",
        soak.engine.name(),
        soak.minutes,
        answered,
        rounds.load(Ordering::Relaxed),
        writes,
        webhooks,
        soak.subscribers
    );
    println!("\n{summary}");
    let mut all = true;
    let mut lines = Vec::new();
    for (name, ok, detail) in &checks {
        let line = format!("[{}] {name}: {detail}", if *ok { "ok" } else { "FAIL" });
        println!("  {line}");
        lines.push(line);
        all &= ok;
    }
    if let Some(path) = &soak.record {
        record(path, soak, &summary, &lines)?;
        println!("recorded in {}", path.display());
    }
    Ok(all)
}

/// Replaces the engine's section of the soak record at `path` with this run's result.
fn record(
    path: &std::path::Path,
    soak: &SoakArgs,
    summary: &str,
    lines: &[String],
) -> anyhow::Result<()> {
    let heading = format!("### {}", soak.engine.name());
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut section = format!(
        "{heading}\n\n`cargo xtask soak --minutes {} --engine {} --subscribers {} --rate {} --record`, \
         {}, commit `{commit}`:\n\n```text\n{summary}\n",
        soak.minutes,
        match soak.engine {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        },
        soak.subscribers,
        soak.rate,
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
    );
    for line in lines {
        section.push_str("  ");
        section.push_str(line);
        section.push('\n');
    }
    section.push_str("```\n");
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    // Sections in engine order; a rerun replaces its own engine's section only.
    let mut sections: Vec<String> = existing
        .split("\n### ")
        .skip(1)
        .map(|s| format!("### {}", s.trim_end()))
        .filter(|s| !s.starts_with(&heading))
        .collect();
    sections.push(section.trim_end().to_owned());
    sections.sort();
    let mut out = String::from(
        "# Soak results\n\nWritten by `cargo xtask soak ... --record`; included in `benchmarks.md` by \
         `cargo xtask bench`.\n",
    );
    for s in sections {
        out.push('\n');
        out.push_str(&s);
        out.push('\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, out)?;
    Ok(())
}
