//! The cost of `GET /api/admin/sync?since=…` with 100 pending changes when the feed holds
//! 10,000 entries and when it holds 1,000,000: it must grow with the changes returned, not with
//! the history kept (issue: sync and push).

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::Connection;

use crate::report::{Report, Row};
use crate::stats::ms;
use crate::{Args, BenchServer, Engine};

const PENDING: i64 = 100;
/// Requests measured per run (their p99 is the 10th slowest), after `WARM_UP` unmeasured ones.
const SAMPLES: usize = 1_000;
const WARM_UP: usize = 50;

/// Appends `n` synthetic entries straight into the feed table (seeding a million through the
/// API would take an hour; the read path under test is the same).
fn fill(engine: Engine, url: &str, n: i64) -> anyhow::Result<()> {
    match engine {
        Engine::Sqlite => {
            // The insert goes through the WAL; copying it into the database file would be the
            // server's checkpoint thread's work during the measurement unless done here: what
            // is measured is a feed at rest, not a bulk load's aftermath.
            let mut conn = diesel::SqliteConnection::establish(url)?;
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = 10000;
                 WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})
                 INSERT INTO changes (resource, resource_id, op, version, actor, created_at, updated_at)
                 SELECT 'license_keys', 1000000 + i, 'updated', 1, 'bench', datetime('now'), datetime('now') FROM seq;
                 PRAGMA wal_checkpoint(TRUNCATE);"
            ))?;
        }
        Engine::Postgres => {
            let mut conn = diesel::PgConnection::establish(url)?;
            conn.batch_execute(&format!(
                "INSERT INTO changes (resource, resource_id, op, version, actor, created_at, updated_at)
                 SELECT 'license_keys', 1000000 + g, 'updated', 1, 'bench', now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc'
                 FROM generate_series(1, {n}) AS g;"
            ))?;
            // Likewise at rest: a bulk insert this size wakes autovacuum, whose scan of the
            // table would run during the measurement. VACUUM cannot run in a transaction, so
            // it is a statement of its own.
            conn.batch_execute("VACUUM ANALYZE changes;")?;
        }
    }
    Ok(())
}

/// Waits until the server's change-feed follower has read the entries just inserted (it
/// publishes them to push subscribers), so the measurement sees a feed at rest, not a catch-up.
async fn settle(server: &BenchServer, client: &reqwest::Client) -> anyhow::Result<()> {
    let latest: serde_json::Value = client
        .get(server.url("/api/admin/sync"))
        .send()
        .await?
        .json()
        .await?;
    let target: i64 = latest["next"].as_str().unwrap_or("0").parse()?;
    let mut stream = client.get(server.url("/api/admin/events")).send().await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut buffer = String::new();
    loop {
        if let Some(start) = buffer.find("id: ") {
            let id: i64 = buffer[start + 4..]
                .lines()
                .next()
                .unwrap_or("0")
                .trim()
                .parse()
                .unwrap_or(0);
            if id >= target {
                return Ok(());
            }
            buffer.drain(..start + 4);
            continue;
        }
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .map_err(|_| anyhow::anyhow!("the feed follower did not catch up in time"))??;
        match chunk {
            Some(bytes) => buffer.push_str(&String::from_utf8_lossy(&bytes)),
            None => anyhow::bail!("the event stream ended"),
        }
    }
}

async fn p99_of_sync(
    server: &BenchServer,
    client: &reqwest::Client,
    runs: usize,
) -> anyhow::Result<Duration> {
    let start: serde_json::Value = client
        .get(server.url("/api/admin/sync"))
        .send()
        .await?
        .json()
        .await?;
    let latest: i64 = start["next"].as_str().unwrap_or("0").parse()?;
    let path = format!("/api/admin/sync?since={}&limit=1000", latest - PENDING);
    let mut p99s = Vec::new();
    for _ in 0..runs {
        let mut samples = Vec::new();
        for i in 0..SAMPLES + WARM_UP {
            let started = std::time::Instant::now();
            let response = client.get(server.url(&path)).send().await?;
            let body: serde_json::Value = response.json().await?;
            let took = started.elapsed();
            anyhow::ensure!(
                body["changes"].as_array().map_or(0, Vec::len) as i64 == PENDING,
                "expected {PENDING} changes"
            );
            if i >= WARM_UP {
                samples.push(took);
            }
        }
        p99s.push(crate::stats::percentiles(samples).1);
    }
    Ok(crate::stats::median(p99s))
}

pub async fn run(args: &Args, engine: Engine, report: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let sqlite_path = dir.join("feed.db");
    let sqlite_url = sqlite_path.to_string_lossy().into_owned();
    let extra: Vec<(&str, &str)> = match engine {
        Engine::Sqlite => vec![("KEYSYNC_DATABASE_URL", sqlite_url.as_str())],
        Engine::Postgres => vec![],
    };
    let server = BenchServer::start(args, engine, &extra)?;
    let url = match engine {
        Engine::Sqlite => sqlite_url.clone(),
        Engine::Postgres => server.database_url().unwrap_or_default(),
    };
    let client = server.owner_client().await?;
    fill(engine, &url, 10_000)?;
    settle(&server, &client).await?;
    let small = p99_of_sync(&server, &client, args.runs).await?;
    fill(engine, &url, 990_000)?;
    settle(&server, &client).await?;
    let large = p99_of_sync(&server, &client, args.runs).await?;
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-9);
    let name = "`sync?since` with 100 pending changes".to_string();
    for (figure, value) in [
        ("feed of 10,000 entries, p99", small),
        ("feed of 1,000,000 entries, p99", large),
    ] {
        report.add(Row {
            benchmark: name.clone(),
            engine: engine.name().into(),
            figure: figure.into(),
            value: ms(value),
            target: "—".into(),
            met: None,
        });
    }
    report.add(Row {
        benchmark: name,
        engine: engine.name().into(),
        figure: "p99 ratio, 1M / 10k".into(),
        value: format!("{ratio:.2}"),
        target: "≤ 1.5".into(),
        met: Some(ratio <= 1.5),
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("keysync-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
