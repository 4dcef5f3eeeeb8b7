//! `cargo xtask soak --minutes N [--engine sqlite|postgres]`: mixed load on one server for N
//! minutes, then checks.
//!
//! Load: license validations at a steady rate (existing keys, unknown keys, a seat-limited key
//! from many machines), admin mutations (create, patch, delete keys; create customers), signed
//! webhook deliveries, and 1,000 event-stream subscribers that each keep a view of what the
//! change events told them. The server's RSS is sampled every few seconds.
//!
//! Checks, printed at the end (the command fails when one fails):
//! - no 5xx answer to any request;
//! - the activity log holds exactly one `license.validate` row per validation answered;
//! - every subscriber's view equals the database (each row it heard of is at its current
//!   version, or gone if it heard `deleted`; every row changed since it subscribed is in it);
//! - RSS flat after warm-up: the last quarter's median within 10 % (+ 8 MiB) of the median of
//!   the quarter after warm-up.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{Args, BenchServer, Engine};

const WEBHOOK_SECRET: &str = "soak-webhook-secret";

#[derive(Debug, Clone)]
pub struct SoakArgs {
    pub minutes: f64,
    pub engine: Engine,
    pub subscribers: usize,
    /// Validations per second.
    pub rate: u64,
}

/// What one subscriber learnt: (resource, id) → (version, op), and its last event id.
#[derive(Default)]
struct View {
    rows: HashMap<(String, i64), (i64, String)>,
    last: i64,
    start: i64,
    reset: bool,
}

/// Status tallies of every request the load sent.
#[derive(Default)]
struct Tally {
    statuses: Mutex<BTreeMap<u16, u64>>,
    transport_errors: AtomicU64,
    validations_answered: AtomicU64,
}

impl Tally {
    fn record(&self, status: u16) {
        *self
            .statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_default() += 1;
    }

    fn fivexx(&self) -> u64 {
        self.statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum()
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
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
    let mut load = Vec::new();

    // Validations at a steady rate, each on its own task so a slow answer does not slow the pace.
    {
        let (tally, keys, url) = (
            tally.clone(),
            keys.clone(),
            server.url("/api/validate-license"),
        );
        let client = reqwest::Client::new();
        let period = Duration::from_micros(1_000_000 / soak.rate.max(1));
        load.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut inflight = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                tick.tick().await;
                i += 1;
                let body = match i % 10 {
                    0 => json!({"key": "SCO-ZZZZ-ZZZZ-ZZZZ-ZZZZ"}),
                    1 => json!({"key": keys[0], "fingerprint": format!("machine-{}", i % 7)}),
                    _ => json!({"key": keys[i % keys.len()], "fingerprint": "m"}),
                };
                let (client, url, tally) = (client.clone(), url.clone(), tally.clone());
                inflight.push(tokio::spawn(async move {
                    match client.post(&url).json(&body).send().await {
                        Ok(r) => {
                            tally.record(r.status().as_u16());
                            tally.validations_answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
                if inflight.len() > 256 {
                    inflight.retain(|h: &tokio::task::JoinHandle<()>| !h.is_finished());
                }
            }
            for h in inflight {
                let _ = h.await;
            }
        }));
    }
    // Admin mutations: create, patch, sometimes delete keys; create customers.
    let mutations = Arc::new(AtomicUsize::new(0));
    for worker in 0..2 {
        let (tally, admin, mutations) = (tally.clone(), admin.clone(), mutations.clone());
        let base = server.process.address.clone();
        load.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let record = |r: &Result<reqwest::Response, reqwest::Error>| match r {
                    Ok(r) => tally.record(r.status().as_u16()),
                    Err(_) => {
                        tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                    }
                };
                let created = admin
                    .post(format!("{base}/api/admin/keys"))
                    .json(&json!({"notes": format!("soak {worker}/{i}")}))
                    .send()
                    .await;
                record(&created);
                let id = match created {
                    Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["id"].as_i64()),
                    Err(_) => None,
                };
                if let Some(id) = id {
                    let patched = admin
                        .patch(format!("{base}/api/admin/keys/{id}"))
                        .header("if-match", "*")
                        .json(&json!({"notes": format!("patched {worker}/{i}")}))
                        .send()
                        .await;
                    record(&patched);
                    if i % 4 == 0 {
                        let deleted = admin
                            .delete(format!("{base}/api/admin/keys/{id}"))
                            .header("if-match", "*")
                            .send()
                            .await;
                        record(&deleted);
                    }
                }
                if i % 3 == 0 {
                    let customer = admin
                        .post(format!("{base}/api/admin/customers"))
                        .json(&json!({"name": format!("Soak {worker}/{i}"),
                                      "email": format!("soak-{worker}-{i}@example.com")}))
                        .send()
                        .await;
                    record(&customer);
                }
                mutations.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    // Signed webhook deliveries, one a second.
    {
        let (tally, url) = (tally.clone(), server.url("/api/admin/sync"));
        let client = reqwest::Client::new();
        load.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let body = json!({"event": "deployment_complete", "data": {"n": i}}).to_string();
                let signature = sign(chrono::Utc::now().timestamp(), &body);
                match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-keysync-signature", signature)
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => tally.record(r.status().as_u16()),
                    Err(_) => {
                        tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }

    // RSS every 5 s, with progress.
    let mut rss = Vec::new();
    while Instant::now() < deadline {
        if let Some(kib) = rss_kib(pid) {
            rss.push((started.elapsed(), kib));
        }
        let statuses = tally
            .statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        println!(
            "  {:>5.0} s  RSS {:>7} KiB  statuses {:?}",
            started.elapsed().as_secs_f64(),
            rss.last().map_or(0, |r| r.1),
            statuses
        );
        tokio::time::sleep(
            Duration::from_secs(5).min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    }
    for h in load {
        let _ = h.await;
    }
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
        since = page["next"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(since);
        if page["has_more"] != true {
            break;
        }
    }

    let mut diverged = 0usize;
    let mut first_divergence = None;
    for (n, view) in views.iter().enumerate() {
        let view = view.lock().unwrap_or_else(|p| p.into_inner());
        let mut ok = !view.reset && view.last >= head;
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

    // Memory: skip the first quarter (warm-up), compare the second quarter with the last.
    let quarter = |q: usize| -> u64 {
        let n = rss.len();
        let mut part: Vec<u64> = rss[n * q / 4..(n * (q + 1) / 4).max(n * q / 4 + 1).min(n)]
            .iter()
            .map(|r| r.1)
            .collect();
        part.sort_unstable();
        part.get(part.len() / 2).copied().unwrap_or(0)
    };
    let (after_warmup, end) = if rss.len() >= 4 {
        (quarter(1), quarter(3))
    } else {
        (0, 0)
    };
    let flat = rss.len() >= 4 && (end as f64) <= after_warmup as f64 * 1.10 + 8.0 * 1024.0;

    let statuses = tally
        .statuses
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let fivexx = tally.fivexx();
    let checks = [
        (
            "no 5xx",
            fivexx == 0,
            format!(
                "{fivexx} of {} answers; statuses {statuses:?}; transport errors {}",
                statuses.values().sum::<u64>(),
                tally.transport_errors.load(Ordering::Relaxed)
            ),
        ),
        (
            "one audit row per validation",
            audited == answered,
            format!("{answered} validations answered, {audited} license.validate rows"),
        ),
        (
            "every subscriber's view equals the database",
            diverged == 0,
            format!(
                "{} of {} subscribers agree at cursor {head}; {} changes since the first subscribed{}",
                views.len() - diverged,
                views.len(),
                changed.len(),
                first_divergence.map_or(String::new(), |d| format!("; first: {d}"))
            ),
        ),
        (
            "RSS flat after warm-up",
            flat,
            format!(
                "median {after_warmup} KiB in the 2nd quarter, {end} KiB in the last ({} samples; peak {} KiB)",
                rss.len(),
                rss.iter().map(|r| r.1).max().unwrap_or(0)
            ),
        ),
    ];
    println!(
        "\nsoak on {} for {:.1} min: {} validations answered, {} admin mutation rounds, {} subscribers",
        soak.engine.name(),
        soak.minutes,
        answered,
        mutations.load(Ordering::Relaxed),
        soak.subscribers
    );
    let mut all = true;
    for (name, ok, detail) in &checks {
        println!("  [{}] {name}: {detail}", if *ok { "ok" } else { "FAIL" });
        all &= ok;
    }
    Ok(all)
}
