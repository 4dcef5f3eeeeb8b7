//! License validation throughput against the same server's `/api/health` ceiling, with 64
//! concurrent connections, each request a different existing key; then a check that the audit
//! log holds exactly one row per attempt (issue: license clients).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::report::{Report, Row};
use crate::stats::{ms, percentiles};
use crate::{Args, BenchServer, Engine};

const CONNECTIONS: usize = 64;
const KEYS: usize = 10_000;
const WINDOW: Duration = Duration::from_secs(10);

struct LoadResult {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    failures: usize,
}

impl LoadResult {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// `CONNECTIONS` workers send requests built by `make` for `WINDOW`.
async fn load<F>(make: F) -> anyhow::Result<LoadResult>
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let make = make.clone();
        let counter = counter.clone();
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::new();
            let mut failures = 0;
            while started.elapsed() < WINDOW {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                match make(&client, n).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (l, f) = worker.await?;
        latencies.extend(l);
        failures += f;
    }
    Ok(LoadResult {
        requests: latencies.len() + failures,
        elapsed: started.elapsed(),
        latencies,
        failures,
    })
}

async fn seed_keys(server: &BenchServer) -> anyhow::Result<Vec<String>> {
    let client = server.owner_client().await?;
    let mut keys = Vec::with_capacity(KEYS);
    while keys.len() < KEYS {
        let result: serde_json::Value = client
            .post(server.url("/api/admin/keys/batch"))
            .json(&json!({"create": {"count": 500}}))
            .send()
            .await?
            .json()
            .await?;
        for key in result["created"].as_array().into_iter().flatten() {
            keys.push(key["key"].as_str().unwrap_or_default().to_owned());
        }
    }
    Ok(keys)
}

pub async fn run(args: &Args, engine: Engine, report: &mut Report) -> anyhow::Result<()> {
    let server = BenchServer::start(
        args,
        engine,
        &[
            ("KEYSYNC_VALIDATIONS_PER_IP_PER_MINUTE", "0"),
            ("KEYSYNC_VALIDATIONS_PER_KEY_PER_MINUTE", "0"),
        ],
    )?;
    let keys = Arc::new(seed_keys(&server).await?);
    let owner = server.owner_client().await?;

    let health_url = server.url("/api/health");
    let health = load(move |client, _| client.get(&health_url)).await?;
    let validate_url = server.url("/api/validate-license");
    let chosen = keys.clone();
    let validation = load(move |client, n| {
        client
            .post(&validate_url)
            .json(&json!({"key": chosen[n % chosen.len()]}))
    })
    .await?;

    // Every attempt must have left one audit row.
    let audited: serde_json::Value = owner
        .get(server.url("/api/admin/audit-logs?action=license.validate&limit=1"))
        .send()
        .await?
        .json()
        .await?;
    let audited = audited["total"].as_i64().unwrap_or(-1);
    let answered = validation.latencies.len() as i64;

    let ratio = validation.per_second() / health.per_second();
    let (p50, p99) = percentiles(validation.latencies.clone());
    let (health_p50, health_p99) = percentiles(health.latencies.clone());
    let sqlite = engine == Engine::Sqlite;
    let name = format!("Validation, {CONNECTIONS} connections, {KEYS} keys");
    let rows = [
        (
            "`/api/health` ceiling".to_string(),
            format!(
                "{:.0} req/s (p50 {}, p99 {})",
                health.per_second(),
                ms(health_p50),
                ms(health_p99)
            ),
            "—".to_string(),
            None,
        ),
        (
            "validations".to_string(),
            format!("{:.0} req/s", validation.per_second()),
            "—".to_string(),
            None,
        ),
        (
            "ratio to the health ceiling".to_string(),
            format!("{:.0} %", ratio * 100.0),
            if sqlite {
                "≥ 50 %".into()
            } else {
                "—".into()
            },
            sqlite.then_some(ratio >= 0.5),
        ),
        ("validation p50".to_string(), ms(p50), "—".to_string(), None),
        (
            "validation p99".to_string(),
            ms(p99),
            if sqlite {
                "≤ 10.00 ms".into()
            } else {
                "—".into()
            },
            sqlite.then_some(p99 <= Duration::from_millis(10)),
        ),
        (
            "audit rows / answered attempts".to_string(),
            format!(
                "{audited} / {answered} ({} failed requests)",
                validation.failures
            ),
            "equal".to_string(),
            Some(audited == answered && validation.failures == 0),
        ),
    ];
    for (figure, value, target, met) in rows {
        report.add(Row {
            benchmark: name.clone(),
            engine: engine.name().into(),
            figure,
            value,
            target,
            met,
        });
    }
    Ok(())
}
