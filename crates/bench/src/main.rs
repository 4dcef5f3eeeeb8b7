//! `keysync-bench`: every benchmark keysync's issues name, run against a release build of the
//! real server on loopback, written to `docs/benchmarks.md`.
//!
//! Run it through `cargo xtask bench`, which builds the server and the web app and starts
//! PostgreSQL first. Timings are taken on the client side of a real HTTP connection; each figure
//! is the median over several runs, and every run starts from the same seeded data.

mod feed_cost;
mod http1;
mod idle;
mod listing;
mod push;
mod report;
mod soak;
mod stats;
mod validation;

use std::path::PathBuf;

use anyhow::Context;
use keysync_e2e::ServerProcess;

use crate::report::Report;

pub const ADMIN_EMAIL: &str = "bench@example.com";
pub const ADMIN_PASSWORD: &str = "benchmark password";

#[derive(Debug, Clone)]
pub struct Args {
    pub server: PathBuf,
    pub pg_url: Option<String>,
    pub out: PathBuf,
    pub dist: Option<PathBuf>,
    pub runs: usize,
    pub keys: usize,
    /// Benchmarks to run (`listing`, `validation`, `push`, `push-memory` (its memory part
    /// alone), `idle`, `feed`); all when empty.
    pub only: Vec<String>,
}

/// `keysync-bench soak --minutes N --engine sqlite|postgres [--subscribers N] [--rate N]
/// [--record]`,
/// with the same `--server` and `--pg-url` as the benchmarks.
fn parse_soak_args(raw: Vec<String>) -> anyhow::Result<(Args, soak::SoakArgs)> {
    let mut common = Vec::new();
    let mut soak = soak::SoakArgs {
        minutes: 10.0,
        engine: Engine::Sqlite,
        subscribers: 1_000,
        rate: 100,
        record: None,
    };
    let mut it = raw.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--minutes" => soak.minutes = value()?.parse()?,
            "--engine" => {
                soak.engine = match value()?.as_str() {
                    "sqlite" => Engine::Sqlite,
                    "postgres" | "postgresql" => Engine::Postgres,
                    other => anyhow::bail!("--engine is sqlite or postgres, not {other}"),
                }
            }
            "--subscribers" => soak.subscribers = value()?.parse()?,
            "--rate" => soak.rate = value()?.parse()?,
            "--record" => soak.record = Some(PathBuf::from("docs/soak.md")),
            _ => {
                common.push(flag.clone());
                if let Some(v) = it.next() {
                    common.push(v);
                }
            }
        }
    }
    Ok((parse_args_from(common)?, soak))
}

fn parse_args() -> anyhow::Result<Args> {
    parse_args_from(std::env::args().skip(1).collect())
}

fn parse_args_from(raw: Vec<String>) -> anyhow::Result<Args> {
    let mut args = Args {
        server: PathBuf::from("target/release-server/keysync"),
        pg_url: std::env::var("KEYSYNC_TEST_PG_URL").ok(),
        out: PathBuf::from("docs/benchmarks.md"),
        dist: None,
        runs: 5,
        keys: 100_000,
        only: Vec::new(),
    };
    let mut it = raw.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => args.server = value()?.into(),
            "--pg-url" => args.pg_url = Some(value()?),
            "--out" => args.out = value()?.into(),
            "--dist" => args.dist = Some(value()?.into()),
            "--runs" => args.runs = value()?.parse()?,
            "--keys" => args.keys = value()?.parse()?,
            "--only" => args.only = value()?.split(',').map(str::to_owned).collect(),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

/// Which engine a benchmark server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// A benchmark server with its own fresh database (a PostgreSQL database is dropped after).
pub struct BenchServer {
    pub process: ServerProcess,
    pub engine: Engine,
    pg: Option<pg::TempDatabase>,
}

impl BenchServer {
    pub fn start(args: &Args, engine: Engine, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut env: Vec<(&str, String)> = vec![
            ("KEYSYNC_ADMIN_EMAIL", ADMIN_EMAIL.into()),
            ("KEYSYNC_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
            ("KEYSYNC_LOG", "warn".into()),
            ("KEYSYNC_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE", "0".into()),
            ("KEYSYNC_LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE", "0".into()),
        ];
        let pg = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => {
                let url = args
                    .pg_url
                    .as_deref()
                    .context("PostgreSQL benchmarks need --pg-url")?;
                let db = pg::TempDatabase::create(url)?;
                env.push(("KEYSYNC_DATABASE_URL", db.url.clone()));
                Some(db)
            }
        };
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra_env);
        let process = ServerProcess::start_binary(&args.server, &all)?;
        Ok(Self {
            process,
            engine,
            pg,
        })
    }

    /// The PostgreSQL database's URL (SQLite servers get theirs from the caller).
    pub fn database_url(&self) -> Option<String> {
        self.pg.as_ref().map(|db| db.url.clone())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.process.address)
    }

    /// An HTTP client signed in as the bench owner.
    pub async fn owner_client(&self) -> anyhow::Result<reqwest::Client> {
        let client = reqwest::Client::builder().cookie_store(true).build()?;
        let response = client
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 200,
            "bench sign-in failed: {}",
            response.status()
        );
        Ok(client)
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        // Stop the server before its database is dropped.
        let _ = self
            .process
            .signal_and_wait("TERM", std::time::Duration::from_secs(10));
        self.pg.take();
    }
}

mod pg {
    use diesel::{Connection, RunQueryDsl};

    pub struct TempDatabase {
        admin_url: String,
        name: String,
        pub url: String,
    }

    impl TempDatabase {
        pub fn create(admin_url: &str) -> anyhow::Result<Self> {
            let name = format!("keysync_bench_{}", uuid::Uuid::new_v4().simple());
            let mut conn = diesel::PgConnection::establish(admin_url)?;
            diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut conn)?;
            let base = admin_url.split('?').next().unwrap_or(admin_url);
            let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
            Ok(Self {
                admin_url: admin_url.to_owned(),
                url: format!("{root}/{name}"),
                name,
            })
        }
    }

    impl Drop for TempDatabase {
        fn drop(&mut self) {
            if let Ok(mut conn) = diesel::PgConnection::establish(&self.admin_url) {
                let _ = diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ))
                .execute(&mut conn);
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("soak") {
        let (mut args, soak) = parse_soak_args(raw[1..].to_vec())?;
        anyhow::ensure!(
            args.server.is_file(),
            "{} is missing: run `cargo xtask soak`, which builds it",
            args.server.display()
        );
        args.server = std::fs::canonicalize(&args.server)?;
        let passed = soak::run(&args, &soak).await?;
        anyhow::ensure!(passed, "a soak check failed");
        return Ok(());
    }
    let mut args = parse_args()?;
    anyhow::ensure!(
        args.server.is_file(),
        "{} is missing: run `cargo xtask bench`, which builds it",
        args.server.display()
    );
    // The server runs in a temporary directory of its own.
    args.server = std::fs::canonicalize(&args.server)?;
    let mut report = Report::new(&args);
    let mut engines = vec![Engine::Sqlite];
    if args.pg_url.is_some() {
        engines.push(Engine::Postgres);
    } else {
        eprintln!("warning: no PostgreSQL URL; PostgreSQL figures are skipped");
    }
    // `--only` (not an environment variable: every `KEYSYNC_` variable reaches the server, whose
    // configuration refuses unknown ones).
    let only = args.only.clone();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|x| x == name);
    for engine in engines {
        if wanted("listing") {
            listing::run(&args, engine, &mut report).await?;
        }
        if wanted("validation") {
            validation::run(&args, engine, &mut report).await?;
        }
        if wanted("push") || wanted("push-memory") {
            push::run(&args, engine, &mut report, wanted("push")).await?;
        }
        if wanted("idle") {
            idle::run(&args, engine, &mut report).await?;
        }
        if wanted("feed") {
            feed_cost::run(&args, engine, &mut report).await?;
        }
    }
    if let Some(dist) = &args.dist {
        report::bundle_size(dist, &mut report)?;
    }
    report.write(&args.out)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
