//! License validation throughput against the same server's `/api/health` ceiling, with 64
//! concurrent connections, each request a different existing key; then a check that the audit
//! log holds exactly one row per attempt (issue: license clients).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::report::{Report, Row};
use crate::stats::{cpu_time, ms, percentiles};
use crate::{Args, BenchServer, Engine};

const CONNECTIONS: usize = 64;
const KEYS: usize = 10_000;
const WINDOW: Duration = Duration::from_secs(10);

struct LoadResult {
    requests: usize,
    /// CPU time the server and this load generator used during the run.
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
    elapsed: Duration,
    latencies: Vec<Duration>,
    failures: usize,
}

impl LoadResult {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Microseconds of CPU per request, server and load generator.
    fn cpu_per_request(&self) -> String {
        let per = |cpu: Option<Duration>| {
            cpu.map_or("?".to_owned(), |cpu| {
                format!(
                    "{:.0}",
                    cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
                )
            })
        };
        format!(
            "server {} µs, load generator {} µs",
            per(self.server_cpu),
            per(self.client_cpu)
        )
    }
}

/// `CONNECTIONS` workers send requests built by `make` for `WINDOW` to the server `pid`.
async fn load<F>(pid: u32, make: F) -> anyhow::Result<LoadResult>
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let counter = Arc::new(AtomicUsize::new(0));
    let cpu_before = (cpu_time(pid), cpu_time(0));
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
    let elapsed = started.elapsed();
    let used = |before: Option<Duration>, after: Option<Duration>| {
        before.zip(after).map(|(b, a)| a.saturating_sub(b))
    };
    Ok(LoadResult {
        server_cpu: used(cpu_before.0, cpu_time(pid)),
        client_cpu: used(cpu_before.1, cpu_time(0)),
        requests: latencies.len() + failures,
        elapsed,
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
    let pid = server.process.pid();
    let health = load(pid, move |client, _| client.get(&health_url)).await?;
    let validate_url = server.url("/api/validate-license");
    // Bodies are serialised before the clock starts, as a load generator replaying requests
    // would: the run measures the server, not JSON encoding in the client.
    let bodies: Vec<String> = keys
        .iter()
        .map(|key| json!({ "key": key }).to_string())
        .collect();
    let validation = load(pid, move |client, n| {
        client
            .post(&validate_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bodies[n % bodies.len()].clone())
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
            "CPU per health request".to_string(),
            health.cpu_per_request(),
            "—".to_string(),
            None,
        ),
        (
            "CPU per validation".to_string(),
            validation.cpu_per_request(),
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
