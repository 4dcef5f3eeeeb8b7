//! Fuzzing with cargo-fuzz (libFuzzer): `cargo xtask fuzz [--seconds N] [target…]` runs each
//! target in `fuzz/` for N seconds (default 300); `cargo xtask test` runs each for
//! [`SHORT_RUN_SECS`].
//!
//! The machine has stable Rust only. cargo-fuzz's build passes flags that stable rustc accepts
//! only with `RUSTC_BOOTSTRAP=1`, and without a sanitizer (`--sanitizer none`; AddressSanitizer
//! needs a nightly standard library). The targets are safe Rust, so what is looked for is a panic
//! (a parser breaking a promise), which libFuzzer reports as a crash with the input saved under
//! `fuzz/artifacts/<target>/`. The build is the dev profile (debug assertions and overflow checks
//! on), which also keeps CI's cold build short.

use crate::{cargo, run_cmd, step, Result};
use std::path::Path;

/// The pinned cargo-fuzz (works with rustc 1.95 stable and `RUSTC_BOOTSTRAP=1`).
const CARGO_FUZZ_VERSION: &str = "0.12.0";
/// Seconds per target in `cargo xtask test`.
pub const SHORT_RUN_SECS: u64 = 20;

pub const TARGETS: &[&str] = &["license_key", "since", "signature_header", "list_query"];

/// Installs cargo-fuzz when `cargo fuzz` is missing or another version.
pub fn ensure_cargo_fuzz() -> Result {
    let installed = cargo()
        .args(["fuzz", "--version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION))
        .unwrap_or(false);
    if installed {
        return Ok(());
    }
    step(&format!("Installing cargo-fuzz {CARGO_FUZZ_VERSION}"));
    run_cmd(cargo().args(["install", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION]))
}

fn fuzz_target(root: &Path, target: &str, seconds: u64) -> Result {
    let fuzz_dir = root.join("fuzz");
    let corpus = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| format!("create {}: {e}", corpus.display()))?;
    let seeds = fuzz_dir.join("seeds").join(target);
    let mut cmd = cargo();
    cmd.current_dir(&fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        // The fuzz crate has its own workspace and flags; a shared target dir would only thrash.
        .env_remove("CARGO_TARGET_DIR")
        .args(["fuzz", "run", "--sanitizer", "none", "--dev", target])
        .arg(&corpus);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    cmd.args([
        "--",
        &format!("-max_total_time={seconds}"),
        "-max_len=4096",
        "-print_final_stats=1",
    ]);
    run_cmd(&mut cmd)
}

/// Every target for `seconds` each.
pub fn run_all(root: &Path, seconds: u64, targets: &[&str]) -> Result {
    ensure_cargo_fuzz()?;
    step("Building the fuzz targets (cargo fuzz build --sanitizer none --dev)");
    run_cmd(
        cargo()
            .current_dir(root.join("fuzz"))
            .env("RUSTC_BOOTSTRAP", "1")
            .env_remove("CARGO_TARGET_DIR")
            .args(["fuzz", "build", "--sanitizer", "none", "--dev"]),
    )?;
    for target in targets {
        step(&format!("Fuzzing {target} for {seconds} s"));
        fuzz_target(root, target, seconds)?;
    }
    Ok(())
}

/// `cargo xtask fuzz [--seconds N] [target…]`.
pub fn run(root: &Path, args: &[String]) -> Result {
    let mut seconds = 300;
    let mut targets: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seconds needs a number")?;
            }
            name if TARGETS.contains(&name) => targets.push(name),
            other => {
                return Err(format!(
                    "unknown fuzz argument {other}; targets are {TARGETS:?}"
                ))
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    run_all(root, seconds, &targets)
}
