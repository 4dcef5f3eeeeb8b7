//! Listing a 50-key page out of 100,000 keys, with and without a search filter, and the
//! 304 revalidation of an unchanged page (issue: admin API).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::report::{Report, Row};
use crate::stats::{median, ms, percentiles};
use crate::{Args, BenchServer, Engine};

pub const REQUESTS_PER_RUN: usize = 500;
const WARM_UP: usize = 50;
/// Keys per seeding batch; each batch shares one note, so a search for one note matches one batch.
const BATCH: usize = 100;

pub async fn run(args: &Args, engine: Engine, report: &mut Report) -> anyhow::Result<()> {
    let server = BenchServer::start(args, engine, &[])?;
    let client = server.owner_client().await?;
    let seeded = Instant::now();
    seed(&server, &client, args.keys).await?;
    report.note(format!(
        "{}: seeded {} keys through `POST /api/admin/keys/batch` in {:.1} s.",
        engine.name(),
        args.keys,
        seeded.elapsed().as_secs_f64()
    ));
    let term = format!("site {:05}", (args.keys / BATCH) / 2);
    let search_path = format!("/api/admin/keys?limit=50&q={}", term.replace(' ', "%20"));
    let first_page = "/api/admin/keys?limit=50".to_string();

    let search = measure(&server, &client, &search_path, None, args.runs).await?;
    let plain = measure(&server, &client, &first_page, None, args.runs).await?;
    let etag = client
        .get(server.url(&search_path))
        .send()
        .await?
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .context("list responses carry an ETag")?;
    let revalidate = measure(&server, &client, &search_path, Some(&etag), args.runs).await?;

    let name = format!("Key list, 50 of {} keys", args.keys);
    let sqlite = engine == Engine::Sqlite;
    let p99_target = |t: u64| sqlite.then_some(Duration::from_millis(t));
    for (figure, value, target) in [
        (format!("search `q={term}` p50"), search.0, None),
        (format!("search `q={term}` p99"), search.1, p99_target(5)),
        ("first page, no filter p50".to_string(), plain.0, None),
        (
            "first page, no filter p99".to_string(),
            plain.1,
            p99_target(5),
        ),
        ("304 revalidation p50".to_string(), revalidate.0, None),
        (
            "304 revalidation p99".to_string(),
            revalidate.1,
            p99_target(1),
        ),
    ] {
        report.add(Row {
            benchmark: name.clone(),
            engine: engine.name().into(),
            figure,
            value: ms(value),
            target: target.map_or("—".into(), |t| format!("≤ {}", ms(t))),
            met: target.map(|t| value <= t),
        });
    }
    Ok(())
}

pub async fn seed(
    server: &BenchServer,
    client: &reqwest::Client,
    keys: usize,
) -> anyhow::Result<()> {
    let batches = keys.div_ceil(BATCH);
    for b in 0..batches {
        let count = BATCH.min(keys - b * BATCH);
        let response = client
            .post(server.url("/api/admin/keys/batch"))
            .json(&json!({"create": {"count": count, "notes": format!("Acme site {b:05}")}}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 200,
            "seeding batch {b} failed: {}",
            response.status()
        );
        if b % 100 == 99 {
            println!("  seeded {} keys", (b + 1) * BATCH);
        }
    }
    Ok(())
}

/// Median p50 and median p99 over `runs` runs of sequential GETs of `path`.
async fn measure(
    server: &BenchServer,
    client: &reqwest::Client,
    path: &str,
    if_none_match: Option<&str>,
    runs: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let url = server.url(path);
    let expected = if if_none_match.is_some() { 304 } else { 200 };
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for _ in 0..runs {
        let mut samples = Vec::with_capacity(REQUESTS_PER_RUN);
        for i in 0..WARM_UP + REQUESTS_PER_RUN {
            let mut request = client.get(&url);
            if let Some(tag) = if_none_match {
                request = request.header("If-None-Match", tag);
            }
            let started = Instant::now();
            let response = request.send().await?;
            let status = response.status().as_u16();
            let _ = response.bytes().await?;
            let took = started.elapsed();
            anyhow::ensure!(
                status == expected,
                "GET {path}: {status}, expected {expected}"
            );
            if i >= WARM_UP {
                samples.push(took);
            }
        }
        let (p50, p99) = percentiles(samples);
        p50s.push(p50);
        p99s.push(p99);
    }
    Ok((median(p50s), median(p99s)))
}
