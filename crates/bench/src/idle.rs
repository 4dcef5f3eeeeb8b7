//! Idle cost: one open dashboard for an hour with nothing changing, 10,000 keys in the
//! database. Requests and bytes on the wire for keysync's design (the event stream connected, the
//! sync engine's safety-net polls answered 304) against the spec's original design (a full
//! refetch of stats, keys, customers and admins every 30/15/30/60 s).
//!
//! Method: every byte figure is measured on the real server over a raw HTTP/1.1 connection
//! (request and response bytes as they cross the socket: status line, headers, chunked framing,
//! gzip-encoded bodies since the request accepts gzip, as a browser's does). The hour is then
//! computed: measured bytes per request × requests per hour at each design's intervals. The
//! event stream's cost is measured too: its opening, and the bytes per heartbeat over a stream
//! with 1 s heartbeats, multiplied by the heartbeats of an hour at the default 15 s. Requests
//! carry the same headers in both designs (Host, Cookie, Accept, Accept-Encoding), so a
//! browser's further headers (User-Agent and the like) would add the same amount per request
//! to both, which only widens the gap since the original design sends more requests.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::report::{Report, Row};
use crate::{Args, BenchServer, Engine};

const KEYS: usize = 10_000;
const HOUR_SECS: f64 = 3600.0;
/// The web app's sync engine slows polling to this multiple while push is connected
/// (crates/web/src/sync/registry.rs, `PUSH_SAFETY_FACTOR`).
const PUSH_SAFETY_FACTOR: f64 = 8.0;
/// The server's default heartbeat interval on event streams.
const HEARTBEAT_SECS: f64 = 15.0;

/// The dashboard's sources, their URLs as the web app asks for them (crates/web/src/data.rs)
/// and the spec's intervals (crates/web/src/sync/config.rs).
const SOURCES: &[(&str, &str, f64)] = &[
    ("dashboard-stats", "/api/admin/stats", 30.0),
    (
        "license-keys",
        "/api/admin/keys?limit=20&sort=-created_at",
        15.0,
    ),
    (
        "customers",
        "/api/admin/customers?limit=200&sort=name",
        30.0,
    ),
    ("admin-users", "/api/admin/users?limit=200", 60.0),
];

/// One exchange's bytes on the wire.
struct Exchange {
    sent: usize,
    received: usize,
    status: u16,
    etag: Option<String>,
}

fn request(host: &str, path: &str, cookie: &str, if_none_match: Option<&str>) -> String {
    let mut out = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nAccept: application/json\r\n\
         Accept-Encoding: gzip\r\nConnection: close\r\n"
    );
    if let Some(tag) = if_none_match {
        out.push_str(&format!("If-None-Match: {tag}\r\n"));
    }
    out.push_str("\r\n");
    out
}

/// Sends one GET and reads the whole answer (the server closes the connection after it).
async fn exchange(
    host: &str,
    path: &str,
    cookie: &str,
    if_none_match: Option<&str>,
) -> anyhow::Result<Exchange> {
    let mut socket = tokio::net::TcpStream::connect(host).await?;
    let req = request(host, path, cookie, if_none_match);
    socket.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut raw))
        .await
        .context("the answer did not end")??;
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header end")?;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let etag = head.lines().find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case("etag"))
            .map(|(_, v)| v.trim().to_owned())
    });
    Ok(Exchange {
        sent: req.len(),
        received: raw.len(),
        status,
        etag,
    })
}

/// The event stream: bytes to open it (request, headers, `retry` and `ready`), and bytes per
/// heartbeat measured over `window` on a server sending one a second.
async fn stream_cost(host: &str, cookie: &str, window: Duration) -> anyhow::Result<(usize, f64)> {
    let mut socket = tokio::net::TcpStream::connect(host).await?;
    let req = format!(
        "GET /api/admin/events HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\
         Accept: text/event-stream\r\nAccept-Encoding: gzip\r\nCache-Control: no-cache\r\n\r\n"
    );
    socket.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    // Opening: until the `ready` event has arrived.
    let opened = Instant::now();
    while !String::from_utf8_lossy(&raw).contains("event: ready") {
        anyhow::ensure!(
            opened.elapsed() < Duration::from_secs(10),
            "no ready event (is the stream compressed?)"
        );
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await??;
        anyhow::ensure!(n > 0, "the stream closed");
        raw.extend_from_slice(&buf[..n]);
    }
    // The `ready` event's chunk may end a moment later; let it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(50), socket.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let open_bytes = req.len() + raw.len();
    let mut heartbeat_bytes = 0usize;
    let mut heartbeats = 0usize;
    let until = tokio::time::Instant::now() + window;
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, socket.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        heartbeat_bytes += n;
        heartbeats += String::from_utf8_lossy(&buf[..n])
            .matches(": heartbeat")
            .count();
    }
    anyhow::ensure!(heartbeats > 0, "no heartbeat in {window:?}");
    Ok((open_bytes, heartbeat_bytes as f64 / heartbeats as f64))
}

pub async fn run(args: &Args, engine: Engine, report: &mut Report) -> anyhow::Result<()> {
    let server = BenchServer::start(args, engine, &[("KEYSYNC_SSE_HEARTBEAT_SECS", "1")])?;
    let client = server.owner_client().await?;
    crate::listing::seed(&server, &client, KEYS).await?;
    for i in 0..50 {
        client
            .post(server.url("/api/admin/customers"))
            .json(
                &json!({"name": format!("Customer {i}"), "email": format!("c{i}@example.com"),
                          "company": "Example Ltd"}),
            )
            .send()
            .await?;
    }
    for i in 0..4 {
        client
            .post(server.url("/api/admin/users"))
            .json(&json!({"email": format!("admin{i}@example.com"),
                          "password": "an admin password", "role": "admin"}))
            .send()
            .await?;
    }
    let login = reqwest::Client::new()
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": crate::ADMIN_EMAIL, "password": crate::ADMIN_PASSWORD}))
        .send()
        .await?;
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("a session cookie")?
        .to_owned();
    let host = server
        .process
        .address
        .trim_start_matches("http://")
        .to_owned();

    let mut initial = 0usize;
    let mut original_hour = (0f64, 0f64);
    let mut keysync_hour = (0f64, 0f64);
    let mut details = Vec::new();
    for (name, path, interval) in SOURCES {
        let full = exchange(&host, path, &cookie, None).await?;
        anyhow::ensure!(full.status == 200, "{path}: {}", full.status);
        let tag = full
            .etag
            .clone()
            .with_context(|| format!("{path} has no ETag"))?;
        let revalidated = exchange(&host, path, &cookie, Some(&tag)).await?;
        anyhow::ensure!(
            revalidated.status == 304,
            "{path} with If-None-Match answered {}",
            revalidated.status
        );
        let full_bytes = (full.sent + full.received) as f64;
        let not_modified = (revalidated.sent + revalidated.received) as f64;
        initial += full.sent + full.received;
        let original_requests = HOUR_SECS / interval;
        let keysync_requests = HOUR_SECS / (interval * PUSH_SAFETY_FACTOR);
        original_hour.0 += original_requests;
        original_hour.1 += original_requests * full_bytes;
        keysync_hour.0 += keysync_requests;
        keysync_hour.1 += keysync_requests * not_modified;
        details.push(format!(
            "{name}: {full_bytes:.0} B per full answer, {not_modified:.0} B per 304"
        ));
    }
    // "Full refetch of keys" taken literally: every key, page by page at the API's largest page.
    let mut pages = vec!["/api/admin/keys?limit=200&sort=-created_at".to_owned()];
    loop {
        let last = pages.last().cloned().unwrap_or_default();
        let page: serde_json::Value = client.get(server.url(&last)).send().await?.json().await?;
        match page["next_cursor"].as_str() {
            Some(c) => pages.push(format!(
                "/api/admin/keys?limit=200&sort=-created_at&cursor={c}"
            )),
            None => break,
        }
    }
    let mut all_keys_bytes = 0usize;
    for page in &pages {
        let e = exchange(&host, page, &cookie, None).await?;
        anyhow::ensure!(e.status == 200, "{page}: {}", e.status);
        all_keys_bytes += e.sent + e.received;
    }
    let keys_interval = 15.0;
    let keys_page = SOURCES[1];
    let page_full = exchange(&host, keys_page.1, &cookie, None).await?;
    let page_bytes = (page_full.sent + page_full.received) as f64;
    let every_key_hour = (
        original_hour.0 + (pages.len() as f64 - 1.0) * HOUR_SECS / keys_interval,
        original_hour.1 + (all_keys_bytes as f64 - page_bytes) * HOUR_SECS / keys_interval,
    );
    details.push(format!(
        "every key: {} pages, {all_keys_bytes} B",
        pages.len()
    ));

    let (open_bytes, per_heartbeat) = stream_cost(&host, &cookie, Duration::from_secs(5)).await?;
    let heartbeats = HOUR_SECS / HEARTBEAT_SECS;
    keysync_hour.0 += 1.0;
    keysync_hour.1 += open_bytes as f64 + heartbeats * per_heartbeat;
    // Both designs load every source once when the dashboard opens.
    original_hour.1 += initial as f64;
    keysync_hour.1 += initial as f64;
    original_hour.0 += SOURCES.len() as f64;
    keysync_hour.0 += SOURCES.len() as f64;

    let every_key_hour = (
        every_key_hour.0 + SOURCES.len() as f64 + pages.len() as f64 - 1.0,
        every_key_hour.1 + initial as f64 + all_keys_bytes as f64 - page_bytes,
    );
    let ratio = every_key_hour.1 / keysync_hour.1;
    let page_ratio = original_hour.1 / keysync_hour.1;
    report.add(Row {
        benchmark: "Idle dashboard, 1 hour, 10,000 keys".into(),
        engine: engine.name().into(),
        figure: "spec's original design: full refetch (every key) at 30/15/30/60 s".into(),
        value: format!(
            "{:.0} requests, {:.1} MiB",
            every_key_hour.0,
            every_key_hour.1 / 1024.0 / 1024.0
        ),
        target: "—".into(),
        met: None,
    });
    report.add(Row {
        benchmark: "Idle dashboard, 1 hour, 10,000 keys".into(),
        engine: engine.name().into(),
        figure: "original intervals refetching only the page shown (20 keys)".into(),
        value: format!(
            "{:.0} requests, {:.1} KiB ({page_ratio:.0}× keysync's bytes)",
            original_hour.0,
            original_hour.1 / 1024.0
        ),
        target: "—".into(),
        met: None,
    });
    report.add(Row {
        benchmark: "Idle dashboard, 1 hour, 10,000 keys".into(),
        engine: engine.name().into(),
        figure: "keysync (push + 8× safety-net polls answered 304)".into(),
        value: format!(
            "{:.0} requests, {:.1} KiB",
            keysync_hour.0,
            keysync_hour.1 / 1024.0
        ),
        target: "—".into(),
        met: None,
    });
    report.add(Row {
        benchmark: "Idle dashboard, 1 hour, 10,000 keys".into(),
        engine: engine.name().into(),
        figure: "bytes: original (full refetch) ÷ keysync".into(),
        value: format!("{ratio:.0}×"),
        target: "≥ 100×".into(),
        met: Some(ratio >= 100.0),
    });
    report.note(format!(
        "Idle cost ({}): computed for one hour from bytes measured on the real server over raw \
         HTTP/1.1 (request + response, headers, chunked framing, gzip bodies): {}; event stream \
         {open_bytes} B to open and {per_heartbeat:.0} B per heartbeat (measured at 1 s, counted \
         at the default {HEARTBEAT_SECS:.0} s). Both designs include the first full load ({initial} B).",
        engine.name(),
        details.join("; ")
    ));
    Ok(())
}
