//! Project automation, in plain Rust with no dependencies so it builds in seconds:
//!
//! - `cargo xtask run`   install what is missing, build the SPA, migrate, serve on :8080
//! - `cargo xtask test`  the whole suite: format, lints, wasm checks, unit, integration, browser
//! - `cargo xtask setup` only the installs (idempotent)
//! - `cargo xtask spa`   only the SPA build
//!
//! Policy: every tool the project needs is installed here, idempotently, at the pinned versions
//! that are known to work (see docs/architecture.md, "Toolchain"), so a fresh machine needs
//! nothing but cargo.

mod fuzz;
mod postgres;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("setup") => tools::ensure_all(&root()),
        Some("spa") => tools::ensure_all(&root()).and_then(|_| build_spa(&root())),
        Some("pg") => postgres::ensure_server().map(|url| println!("{url}")),
        Some("bench") => bench(&args[1..]),
        Some("schema") => check_schema(),
        Some("soak") => soak(&args[1..]),
        Some("fuzz") => fuzz::run(&root(), &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 run    install tools, build the web app, migrate the SQLite default, serve on http://127.0.0.1:8080\n  \
                 test   run the whole test suite (what CI runs)\n  \
                 setup  install the tools only\n  \
                 spa    build the web app only\n  \
                 bench  run every benchmark on a release build and rewrite docs/benchmarks.md\n  \
                 soak   mixed load for --minutes N (default 10) on --engine sqlite|postgres, then checks\n  \
                 fuzz   run every fuzz target for --seconds N each (default 300; cargo-fuzz)\n  \
                 pg     start the local PostgreSQL 15 server and print a URL for tests\n  \
                 schema check that crates/api/src/schema.rs equals diesel print-schema"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

pub type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

/// Prints a step heading so long runs show where they are.
pub fn step(what: &str) {
    println!("\n==> {what}");
}

/// Runs `cmd`, streaming its output; an error names the command.
pub fn run_cmd(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed with {status}"))
    }
}

pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    if in_ci() {
        // A CI run builds once from a fresh clone: incremental state would only take gigabytes
        // of disk (2.2 GB for the workspace) without ever being reused.
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

/// `CI=true` (or `1`): the run is the project's CI, in a fresh clone.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn build_spa(root: &Path) -> Result {
    step("Building the web app (trunk build --release)");
    let mut cmd = Command::new(tools::trunk_path());
    cmd.current_dir(root)
        .env("PATH", tools::path_with_tools(root))
        .args(["build", "--release", "--offline"]);
    run_cmd(&mut cmd)
}

fn run(extra: &[String]) -> Result {
    let root = root();
    tools::ensure_all(&root)?;
    build_spa(&root)?;
    step("Building the server");
    build_server(&root)?;
    step("Migrating the database and serving on http://127.0.0.1:8080 (Ctrl-C stops)");
    run_cmd(
        Command::new(target_dir(&root).join("debug/keysync"))
            .current_dir(&root)
            .arg("serve")
            .args(extra),
    )
}

fn test(extra: &[String]) -> Result {
    let root = root();
    let ci = in_ci();
    tools::ensure_all(&root)?;

    step("cargo fmt --check");
    run_cmd(cargo().current_dir(&root).args(["fmt", "--all", "--check"]))?;

    step("cargo clippy (native, all targets)");
    run_cmd(cargo().current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("cargo clippy (wasm32: the web app and the shared wire types)");
    run_cmd(cargo().current_dir(&root).args([
        "clippy",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "keysync-web",
        "-p",
        "keysync-shared",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("keysync-shared pulls in no server crate");
    check_shared_dependencies(&root)?;

    build_spa(&root)?;

    step("Starting PostgreSQL 15 for the tests");
    let pg_url = match postgres::ensure_server() {
        Ok(url) => Some(url),
        Err(e) if ci => return Err(format!("PostgreSQL is required in CI: {e}")),
        Err(e) => {
            eprintln!("warning: PostgreSQL unavailable, its tests will fail: {e}");
            None
        }
    };

    step("Installing Chromium and ChromeDriver for the browser tests");
    tools::ensure_browser()?;

    step("Building the keysync binary for the end-to-end tests");
    build_server(&root)?;

    if let Some(url) = &pg_url {
        step("schema.rs equals diesel print-schema of the migrated PostgreSQL database");
        postgres::check_schema(&root, url, &target_dir(&root).join("debug/keysync"))?;
    }

    step("cargo test (unit, integration on SQLite and PostgreSQL, end-to-end in Chromium)");
    let mut cmd = cargo();
    cmd.current_dir(&root)
        .args(["test", "--workspace"])
        .args(extra)
        .env("KEYSYNC_TEST_DIST", root.join("dist"));
    if let Some(url) = pg_url {
        cmd.env("KEYSYNC_TEST_PG_URL", url);
    }
    let totals = run_counting_tests(&mut cmd)?;

    step("Fuzzing every parser of outside input briefly (cargo xtask fuzz runs longer)");
    fuzz::run_all(&root, fuzz::SHORT_RUN_SECS, fuzz::TARGETS)?;

    // The totals come last, so the run's final line is its count.
    println!(
        "\nall test binaries: {} passed, {} failed, {} ignored",
        totals.passed, totals.failed, totals.ignored
    );
    println!("{} passed, {} failed", totals.passed, totals.failed);
    Ok(())
}

#[derive(Debug, Default)]
struct TestTotals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

/// Runs `cargo test`, echoing its output, and adds up the `test result:` lines of every test
/// binary so the run ends with one total instead of the last binary's count.
fn run_counting_tests(cmd: &mut Command) -> Result<TestTotals> {
    use std::io::{BufRead, BufReader};
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    let mut totals = TestTotals::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            println!("{line}");
            if let Some(rest) = line.trim().strip_prefix("test result: ") {
                for part in rest.split(['.', ';']) {
                    let mut words = part.split_whitespace();
                    if let (Some(n), Some(what)) = (words.next(), words.next()) {
                        let n: u64 = n.parse().unwrap_or(0);
                        match what {
                            "passed" => totals.passed += n,
                            "failed" => totals.failed += n,
                            "ignored" => totals.ignored += n,
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    let status = child.wait().map_err(|e| format!("{shown}: {e}"))?;
    if status.success() && totals.failed == 0 {
        Ok(totals)
    } else {
        println!("{} passed, {} failed", totals.passed, totals.failed.max(1));
        Err(format!("{shown} failed with {status}"))
    }
}

/// Builds the debug `keysync` binary; returns its path.
fn build_server(root: &Path) -> Result<PathBuf> {
    run_cmd(cargo().current_dir(root).args([
        "build",
        "--package",
        "keysync-api",
        "--bin",
        "keysync",
    ]))?;
    Ok(target_dir(root).join("debug/keysync"))
}

/// Where cargo puts what it builds: `CARGO_TARGET_DIR` (relative to the workspace root when
/// relative), else the workspace's `target/`.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
}

/// Builds the `release-server` profile's `keysync` and `keysync-bench`. Both binaries are named:
/// `--bin keysync` alone would leave the load generator unbuilt (or stale).
fn build_release_server_and_bench(root: &Path) -> Result {
    step("Building the server and the load generator (release-server profile)");
    run_cmd(cargo().current_dir(root).args([
        "build",
        "--profile",
        "release-server",
        "-p",
        "keysync-api",
        "--bin",
        "keysync",
        "-p",
        "keysync-bench",
        "--bin",
        "keysync-bench",
    ]))
}

fn check_schema() -> Result {
    let root = root();
    let url = postgres::ensure_server()?;
    let keysync = build_server(&root)?;
    postgres::check_schema(&root, &url, &keysync)?;
    println!("schema.rs is up to date");
    Ok(())
}

fn bench(extra: &[String]) -> Result {
    let root = root();
    tools::ensure_all(&root)?;
    build_spa(&root)?;
    build_release_server_and_bench(&root)?;
    step("Starting PostgreSQL 15");
    let pg_url = postgres::ensure_server()?;
    step("Running the benchmarks (several minutes)");
    let built = target_dir(&root).join("release-server");
    run_cmd(
        Command::new(built.join("keysync-bench"))
            .current_dir(&root)
            .arg("--server")
            .arg(built.join("keysync"))
            .args(["--pg-url", &pg_url, "--dist", "dist"])
            .args(extra),
    )
}

/// `cargo xtask soak --minutes N [--engine sqlite|postgres] [--subscribers N] [--rate N]`: the
/// release server under mixed load, then the checks `keysync-bench soak` prints.
fn soak(extra: &[String]) -> Result {
    let root = root();
    build_release_server_and_bench(&root)?;
    let postgres = extra
        .windows(2)
        .any(|w| w[0] == "--engine" && w[1].starts_with("postgres"));
    let built = target_dir(&root).join("release-server");
    let mut cmd = Command::new(built.join("keysync-bench"));
    cmd.current_dir(&root)
        .arg("soak")
        .arg("--server")
        .arg(built.join("keysync"))
        .args(extra);
    if postgres {
        step("Starting PostgreSQL 15");
        cmd.args(["--pg-url", &postgres::ensure_server()?]);
    }
    step("Soaking");
    run_cmd(&mut cmd)
}

/// `keysync-shared` must stay a wire-types crate: no actix, diesel, tokio or other server
/// dependency may appear in its tree.
fn check_shared_dependencies(root: &Path) -> Result {
    let output = cargo()
        .current_dir(root)
        .args([
            "tree",
            "-p",
            "keysync-shared",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let forbidden = [
        "actix",
        "diesel",
        "tokio",
        "hyper",
        "libsqlite3",
        "pq-sys",
        "keysync-api",
    ];
    let leaks: Vec<&str> = tree
        .lines()
        .filter(|line| forbidden.iter().any(|f| line.starts_with(f)))
        .collect();
    if leaks.is_empty() {
        println!(
            "ok: {} crates, none of them a server crate",
            tree.lines().count()
        );
        Ok(())
    } else {
        Err(format!(
            "keysync-shared depends on server crates: {leaks:?}"
        ))
    }
}
