//! `docs/benchmarks.md`: the machine, the date, each figure beside its target.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::Args;

pub struct Row {
    pub benchmark: String,
    pub engine: String,
    pub figure: String,
    pub value: String,
    pub target: String,
    pub met: Option<bool>,
}

pub struct Report {
    header: String,
    rows: Vec<Row>,
    notes: Vec<String>,
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn memory() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default()
}

impl Report {
    pub fn new(args: &Args) -> Self {
        let mut header = String::new();
        let _ = writeln!(header, "# Benchmarks\n");
        let _ = writeln!(
            header,
            "Written by `cargo xtask bench` ({}). Do not edit by hand: rerun the command.\n",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
        );
        let _ = writeln!(header, "## Machine\n");
        let _ = writeln!(
            header,
            "- {} cores ({}), {} memory\n- {}\n- {}\n- commit `{}`\n",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model(),
            memory(),
            first_line("rustc", &["--version"]),
            first_line("psql", &["--version"]),
            first_line("git", &["rev-parse", "--short", "HEAD"]),
        );
        let _ = writeln!(header, "## Method\n");
        let _ = writeln!(
            header,
            "The server is the `release-server` build of `keysync`, started as its own process with a \
             fresh database (SQLite file, or a new PostgreSQL 15 database on the local cluster). The \
             load generator is `keysync-bench` over keep-alive connections on loopback (reqwest; \
             for the validation throughput runs, its own lean HTTP/1.1 client on one thread with \
             requests prepared in advance, because on two cores the generator shares the CPU with \
             the server), so every figure includes HTTP parsing, the session lookup, the query and \
             JSON encoding. Latencies are nearest-rank percentiles of {} requests per run after a \
             warm-up (throughput runs: every request of a 10 s window); each figure is the median \
             of {} runs.\n",
            crate::listing::REQUESTS_PER_RUN,
            args.runs
        );
        Self {
            header,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn add(&mut self, row: Row) {
        println!(
            "{} [{}] {}: {} (target {}){}",
            row.benchmark,
            row.engine,
            row.figure,
            row.value,
            row.target,
            match row.met {
                Some(true) => " met",
                Some(false) => " MISSED",
                None => "",
            }
        );
        self.rows.push(row);
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut out = self.header.clone();
        let _ = writeln!(out, "## Results\n");
        let _ = writeln!(
            out,
            "| benchmark | engine | figure | value | target | met |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.benchmark, r.engine, r.figure, r.value, r.target, met
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\n## Notes\n");
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        // Soak runs take ten minutes per engine, so they are recorded on their own and kept here.
        let soak = path.with_file_name("soak.md");
        if let Ok(record) = std::fs::read_to_string(&soak) {
            let body = record.split_once("\n### ").map_or("", |(_, rest)| rest);
            if !body.is_empty() {
                let _ = writeln!(
                    out,
                    "\n## Soak (`cargo xtask soak`, not part of `cargo xtask bench`)\n\n### {}",
                    body.trim_end()
                );
            }
        }
        let _ = writeln!(
            out,
            "\n## Reproduce\n\n```sh\ncargo xtask bench\ncargo xtask soak --minutes 10 --engine sqlite --record\ncargo xtask soak --minutes 10 --engine postgres --record\n```"
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, out)?;
        Ok(())
    }
}

/// The gzipped size of the web app's wasm, against its 250 KiB budget.
pub fn bundle_size(dist: &Path, report: &mut Report) -> anyhow::Result<()> {
    let wasm = std::fs::read_dir(dist)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| anyhow::anyhow!("no .wasm in {}", dist.display()))?;
    let raw = std::fs::metadata(&wasm)?.len();
    let output = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(&wasm)
        .output()?;
    anyhow::ensure!(output.status.success(), "gzip failed");
    let gz = output.stdout.len() as u64;
    report.add(Row {
        benchmark: "Web app bundle".into(),
        engine: "—".into(),
        figure: "wasm, gzip -9".into(),
        value: format!(
            "{:.1} KiB ({:.1} KiB raw)",
            gz as f64 / 1024.0,
            raw as f64 / 1024.0
        ),
        target: "≤ 250 KiB".into(),
        met: Some(gz <= 250 * 1024),
    });
    Ok(())
}
