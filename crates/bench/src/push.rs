//! Push: how long a change takes to reach every subscriber at 1, 100 and 1,000 subscribers, and
//! what an idle subscriber costs the server in memory at 1,000 and 10,000 (issue: sync and push).

use std::time::{Duration, Instant};

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

/// Server RSS growth per idle subscriber when `n` streams are open.
async fn memory_per_subscriber(args: &Args, engine: Engine, n: usize) -> anyhow::Result<f64> {
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
    // Warm the server up (worker buffers, pools) before the baseline.
    let warm = subscribe(&server, &client, 50, None).await?;
    for h in warm {
        h.abort();
    }
    // The server trims its heap once 2 s after start (`memory`): the baseline comes after that,
    // or the trim would return start-up memory during the measurement and hide growth.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = rss_kib(server.process.pid())?;
    let handles = subscribe(&server, &client, n, None).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(server.process.pid())?;
    for handle in handles {
        handle.abort();
    }
    Ok(after.saturating_sub(before) as f64 / n as f64)
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
    for n in [1_000, 10_000] {
        let mut per = Vec::new();
        for _ in 0..args.runs {
            per.push(memory_per_subscriber(args, engine, n).await?);
        }
        per.sort_by(|a, b| a.total_cmp(b));
        let median = per[per.len() / 2];
        report.add(Row {
            benchmark: format!("Memory per idle subscriber, {n} open"),
            engine: engine.name().into(),
            figure: "server RSS growth / subscribers".into(),
            value: format!("{median:.1} KiB"),
            target: "≤ 16 KiB".into(),
            met: Some(median <= 16.0),
        });
    }
    Ok(())
}
