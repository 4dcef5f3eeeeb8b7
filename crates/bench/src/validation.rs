//! License validation throughput against the same server's `/api/health` ceiling, with 64
//! concurrent connections, each request a different existing key; then a check that the audit
//! log holds exactly one row per attempt (issue: license clients).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::http1;
use crate::report::{Report, Row};
use crate::stats::{cpu_time, median_f64, ms, percentiles};
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

    /// Microseconds of CPU per request, server and load generator (NaN where unreadable).
    fn cpu_per_request(&self) -> (f64, f64) {
        let per = |cpu: Option<Duration>| {
            cpu.map_or(f64::NAN, |cpu| {
                cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
            })
        };
        (per(self.server_cpu), per(self.client_cpu))
    }
}

/// `CONNECTIONS` workers, each on its own keep-alive connection, send the prepared
/// `requests` (worker after worker, round-robin) to the server `pid` at `address` for
/// `WINDOW`, with the lean client of [`http1`] on one thread of its own.
async fn load(
    pid: u32,
    address: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<LoadResult> {
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(load_on_this_thread(pid, address, requests))
    })
    .await?
}

async fn load_on_this_thread(
    pid: u32,
    address: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<LoadResult> {
    let counter = Arc::new(AtomicUsize::new(0));
    let cpu_before = (cpu_time(pid), cpu_time(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (requests, counter) = (requests.clone(), counter.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            let mut connection = None;
            while started.elapsed() < WINDOW {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                let answered = match connection.as_mut() {
                    Some(open) => Ok(open),
                    None => http1::Connection::open(address)
                        .await
                        .map(|c| connection.insert(c)),
                };
                let status = match answered {
                    Ok(open) => open.exchange(&requests[n % requests.len()]).await,
                    Err(err) => Err(err),
                };
                match status {
                    Ok(status) if (200..300).contains(&status) => latencies.push(t.elapsed()),
                    Ok(_) => failures += 1,
                    Err(_) => {
                        // The connection is unusable: the next request opens a new one.
                        connection = None;
                        failures += 1;
                    }
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

/// One run's figures, in seconds, requests per second and microseconds.
struct RunFigures {
    health_rps: f64,
    health_p50: f64,
    health_p99: f64,
    validation_rps: f64,
    ratio: f64,
    p50: f64,
    p99: f64,
    health_cpu: (f64, f64),
    validation_cpu: (f64, f64),
}

impl RunFigures {
    fn of(health: &LoadResult, validation: &LoadResult) -> Self {
        let (health_p50, health_p99) = percentiles(health.latencies.clone());
        let (p50, p99) = percentiles(validation.latencies.clone());
        Self {
            health_rps: health.per_second(),
            health_p50: health_p50.as_secs_f64(),
            health_p99: health_p99.as_secs_f64(),
            validation_rps: validation.per_second(),
            ratio: validation.per_second() / health.per_second(),
            p50: p50.as_secs_f64(),
            p99: p99.as_secs_f64(),
            health_cpu: health.cpu_per_request(),
            validation_cpu: validation.cpu_per_request(),
        }
    }
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

    let pid = server.process.pid();
    let host = server
        .process
        .address
        .trim_start_matches("http://")
        .to_owned();
    let address: SocketAddr = host.parse()?;
    // Requests are prepared before the clock starts, as a load generator replaying them would:
    // the run measures the server, not request building in the client.
    let health = Arc::new(vec![http1::request("GET", "/api/health", &host, None)]);
    let validations: Arc<Vec<Vec<u8>>> = Arc::new(
        keys.iter()
            .map(|key| {
                let body = json!({ "key": key }).to_string();
                http1::request("POST", "/api/validate-license", &host, Some(&body))
            })
            .collect(),
    );
    // Each run measures the ceiling and the validations back to back; every figure reported is
    // the median over the runs.
    let mut runs = Vec::new();
    let mut answered = 0i64;
    let mut failures = 0usize;
    for _ in 0..args.runs.max(1) {
        let health = load(pid, address, health.clone()).await?;
        let validation = load(pid, address, validations.clone()).await?;
        answered += validation.latencies.len() as i64;
        failures += validation.failures;
        runs.push(RunFigures::of(&health, &validation));
    }

    // Every attempt of every run must have left one audit row.
    let audited: serde_json::Value = owner
        .get(server.url("/api/admin/audit-logs?action=license.validate&limit=1"))
        .send()
        .await?
        .json()
        .await?;
    let audited = audited["total"].as_i64().unwrap_or(-1);

    let mid = |f: fn(&RunFigures) -> f64| median_f64(runs.iter().map(f).collect());
    let ratio = mid(|r| r.ratio);
    let p50 = Duration::from_secs_f64(mid(|r| r.p50));
    let p99 = Duration::from_secs_f64(mid(|r| r.p99));
    let health_p50 = Duration::from_secs_f64(mid(|r| r.health_p50));
    let health_p99 = Duration::from_secs_f64(mid(|r| r.health_p99));
    let cpu = |server: fn(&RunFigures) -> f64, client: fn(&RunFigures) -> f64| {
        format!(
            "server {:.0} µs, load generator {:.0} µs",
            mid(server),
            mid(client)
        )
    };
    let sqlite = engine == Engine::Sqlite;
    let name = format!("Validation, {CONNECTIONS} connections, {KEYS} keys");
    let rows = [
        (
            "`/api/health` ceiling".to_string(),
            format!(
                "{:.0} req/s (p50 {}, p99 {})",
                mid(|r| r.health_rps),
                ms(health_p50),
                ms(health_p99)
            ),
            "—".to_string(),
            None,
        ),
        (
            "validations".to_string(),
            format!("{:.0} req/s", mid(|r| r.validation_rps)),
            "—".to_string(),
            None,
        ),
        (
            "CPU per health request".to_string(),
            cpu(|r| r.health_cpu.0, |r| r.health_cpu.1),
            "—".to_string(),
            None,
        ),
        (
            "CPU per validation".to_string(),
            cpu(|r| r.validation_cpu.0, |r| r.validation_cpu.1),
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
            format!("{audited} / {answered} ({failures} failed requests)"),
            "equal".to_string(),
            Some(audited == answered && failures == 0),
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
