//! Push: how long a change takes to reach every subscriber at 1, 100 and 1,000 subscribers, and
//! what an idle subscriber costs the server in memory at 1,000 and 10,000 (issue: sync and push).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::sync::mpsc;

use crate::report::{Report, Row};
use crate::stats::{median, ms, percentiles};
use crate::{Args, BenchServer, Engine};

const MUTATIONS: usize = 60;

/// Opens `n` event streams; each reports `(key id, arrival)` for every key event it reads.
async fn subscribe(
    server: &BenchServer,
    client: &reqwest::Client,
    n: usize,
    tx: Option<mpsc::UnboundedSender<(i64, Instant)>>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut handles = Vec::with_capacity(n);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    for _ in 0..n {
        let request = client.get(server.url("/api/admin/events"));
        let tx = tx.clone();
        let ready = ready_tx.clone();
        handles.push(tokio::spawn(async move {
            let Ok(mut response) = request.send().await else {
                let _ = ready.send(false);
                return;
            };
            let mut buffer = String::new();
            let mut announced = false;
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if !announced && block.contains("event: ready") {
                        announced = true;
                        let _ = ready.send(true);
                    }
                    if let (Some(tx), Some(data)) =
                        (&tx, block.lines().find_map(|l| l.strip_prefix("data: ")))
                    {
                        if block.contains("event: change") {
                            if let Ok(change) = serde_json::from_str::<serde_json::Value>(data) {
                                if change["resource"] == "license_keys" {
                                    let _ = tx
                                        .send((change["id"].as_i64().unwrap_or(0), Instant::now()));
                                }
                            }
                        }
                    }
                }
            }
        }));
    }
    drop(ready_tx);
    let mut ready = 0;
    while ready < n {
        match tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await {
            Ok(Some(true)) => ready += 1,
            Ok(Some(false)) | Ok(None) => {
                anyhow::bail!("an event stream failed to open ({ready} of {n} open)")
            }
            Err(_) => anyhow::bail!("event streams did not open in time ({ready} of {n})"),
        }
    }
    Ok(handles)
}

/// p50/p99 over mutations of the time from a mutation's response to its event at the last
/// of `subscribers` subscribers.
async fn propagation(
    server: &BenchServer,
    subscribers: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let writer = server.owner_client().await?;
    let reader = server.owner_client().await?;
    let mut keys = Vec::with_capacity(MUTATIONS);
    for _ in 0..MUTATIONS {
        let key: serde_json::Value = writer
            .post(server.url("/api/admin/keys"))
            .json(&json!({}))
            .send()
            .await?
            .json()
            .await?;
        keys.push(key["id"].as_i64().unwrap_or(0));
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handles = subscribe(server, &reader, subscribers, Some(tx)).await?;
    // The keys' creation events were just published; a row published less than the coalescing
    // window ago is held back on purpose, which is not what this measures.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut samples = Vec::with_capacity(MUTATIONS);
    for id in keys {
        let response = writer
            .patch(server.url(&format!("/api/admin/keys/{id}")))
            .header("If-Match", "\"v1\"")
            .json(&json!({"notes": "propagation"}))
            .send()
            .await?;
        let acknowledged = Instant::now();
        anyhow::ensure!(
            response.status() == 200,
            "PATCH failed: {}",
            response.status()
        );
        let mut arrived = 0;
        let mut last = acknowledged;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while arrived < subscribers {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((event_id, at))) if event_id == id => {
                    arrived += 1;
                    last = last.max(at);
                }
                Ok(Some(_)) => {}
                _ => anyhow::bail!(
                    "only {arrived} of {subscribers} subscribers got the change to key {id}"
                ),
            }
        }
        samples.push(last.saturating_duration_since(acknowledged));
        // Distinct keys are never coalesced; the pause keeps mutations from overlapping.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for handle in handles {
        handle.abort();
    }
    Ok(percentiles(samples))
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    crate::soak::rss_kib(pid)
        .map(|(total, _anonymous)| total)
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
}

/// Streams opened on a fresh server before the subscribers measured, and kept open. A server's
/// first burst of handshakes costs it once, whatever comes after: threads for the blocking pool,
/// actix's pools of request objects (up to 128 per worker), code paged in for the first time,
/// a few MiB together. Measured on top of these streams, each subscriber's share is its own;
/// what the first ones cost is reported apart. They stay open so that the subscribers measured
/// cannot move into memory the warm-up freed and still holds resident.
const WARM_UP_STREAMS: usize = 1_000;

/// Memory growth per subscriber over one step of a run.
#[derive(Debug, Clone, Copy)]
struct Growth {
    /// Resident memory (`VmRSS`), KiB.
    rss_kib: f64,
    /// Heap the allocator has handed out, resident or not (`keysync_heap_in_use_bytes`), KiB;
    /// `None` where the server cannot tell.
    heap_kib: Option<f64>,
}

/// The server's resident memory (KiB) and allocated heap (bytes, when it reports it).
async fn memory(
    server: &BenchServer,
    client: &reqwest::Client,
) -> anyhow::Result<(u64, Option<u64>)> {
    let rss = rss_kib(server.process.pid())?;
    let heap = crate::soak::scrape(client, &server.url("/metrics"))
        .await
        .ok()
        .and_then(|text| crate::soak::gauge(&text, "keysync_heap_in_use_bytes"));
    Ok((rss, heap))
}

fn growth(before: (u64, Option<u64>), after: (u64, Option<u64>), n: usize) -> Growth {
    Growth {
        rss_kib: after.0.saturating_sub(before.0) as f64 / n as f64,
        heap_kib: before
            .1
            .zip(after.1)
            .map(|(b, a)| a.saturating_sub(b) as f64 / 1024.0 / n as f64),
    }
}

/// Memory growth per idle subscriber: of the first [`WARM_UP_STREAMS`] on a fresh server, then
/// of `n` more.
async fn memory_per_subscriber(
    args: &Args,
    engine: Engine,
    n: usize,
) -> anyhow::Result<(Growth, Growth)> {
    let server = BenchServer::start(args, engine, &[("KEYSYNC_SSE_HEARTBEAT_SECS", "15")])?;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(0)
        .build()?;
    client
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": crate::ADMIN_EMAIL, "password": crate::ADMIN_PASSWORD}))
        .send()
        .await?;
    // The server trims its heap once 2 s after start (`memory`): the baseline comes after that,
    // or the trim would return start-up memory during the measurement and hide growth.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fresh = memory(&server, &client).await?;
    let warm = subscribe(&server, &client, WARM_UP_STREAMS, None).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let warmed = memory(&server, &client).await?;
    let measured = subscribe(&server, &client, n, None).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = memory(&server, &client).await?;
    for handle in warm.into_iter().chain(measured) {
        handle.abort();
    }
    Ok((
        growth(fresh, warmed, WARM_UP_STREAMS),
        growth(warmed, after, n),
    ))
}

fn median_of(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied()
}

/// Propagation and memory; `propagation: false` measures memory only (`--only push-memory`).
pub async fn run(
    args: &Args,
    engine: Engine,
    report: &mut Report,
    propagation_too: bool,
) -> anyhow::Result<()> {
    let sizes: &[usize] = if propagation_too {
        &[1, 100, 1_000]
    } else {
        &[]
    };
    for &subscribers in sizes {
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        for _ in 0..args.runs {
            let server = BenchServer::start(args, engine, &[])?;
            let (p50, p99) = propagation(&server, subscribers).await?;
            p50s.push(p50);
            p99s.push(p99);
        }
        let (p50, p99) = (median(p50s), median(p99s));
        let name = format!(
            "Push propagation, {subscribers} subscriber{}",
            if subscribers == 1 { "" } else { "s" }
        );
        report.add(Row {
            benchmark: name.clone(),
            engine: engine.name().into(),
            figure: "response → event at every subscriber, p50".into(),
            value: ms(p50),
            target: "—".into(),
            met: None,
        });
        let target = (subscribers == 1_000).then_some(Duration::from_millis(50));
        report.add(Row {
            benchmark: name,
            engine: engine.name().into(),
            figure: "response → event at every subscriber, p99".into(),
            value: ms(p99),
            target: target.map_or("—".into(), |t| format!("≤ {}", ms(t))),
            met: target.map(|t| p99 <= t),
        });
    }
    report.note(format!(
        "Memory per idle subscriber ({}): each run starts a fresh server, signs in, opens \
         {WARM_UP_STREAMS} event streams and keeps them open, then opens the 1,000 or 10,000 \
         measured. The figure with the target is the growth of the server's resident memory \
         (`VmRSS`, from /proc) over the measured streams, divided by their number. The first \
         {WARM_UP_STREAMS} streams are reported apart: they also pay what a server spends once \
         on its first burst of connections (blocking-pool threads, actix's request pools, code \
         paged in). The heap figure counts what the allocator handed out whether or not it is \
         resident; 16 KiB of it are actix-http's 8 KiB read and write buffers of each \
         connection, of which an idle stream touches only the first pages.",
        engine.name()
    ));
    for n in [1_000, 10_000] {
        let (mut first, mut rss, mut heap) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.runs {
            let (warm_up, measured) = memory_per_subscriber(args, engine, n).await?;
            first.push(warm_up.rss_kib);
            rss.push(measured.rss_kib);
            heap.extend(measured.heap_kib);
        }
        let benchmark = format!("Memory per idle subscriber, {n} open");
        let rss = median_of(rss).context("no memory run")?;
        report.add(Row {
            benchmark: benchmark.clone(),
            engine: engine.name().into(),
            figure: format!(
                "server RSS growth / subscribers (opened after the first {WARM_UP_STREAMS})"
            ),
            value: format!("{rss:.1} KiB"),
            target: "≤ 16 KiB".into(),
            met: Some(rss <= 16.0),
        });
        if let Some(heap) = median_of(heap) {
            report.add(Row {
                benchmark: benchmark.clone(),
                engine: engine.name().into(),
                figure: "heap allocated / subscribers, resident or not".into(),
                value: format!("{heap:.1} KiB"),
                target: "—".into(),
                met: None,
            });
        }
        if let Some(first) = median_of(first) {
            report.add(Row {
                benchmark,
                engine: engine.name().into(),
                figure: format!(
                    "the first {WARM_UP_STREAMS} on a fresh server: RSS growth / subscribers, one-time costs included"
                ),
                value: format!("{first:.1} KiB"),
                target: "—".into(),
                met: None,
            });
        }
    }
    Ok(())
}
