//! Installing the toolchain, idempotently. Each `ensure_*` checks what is there first, so a
//! second run costs a few process spawns.
//!
//! Pins (why each one, see docs/architecture.md):
//! - Trunk 0.21.14: 0.22 needs a newer rustc than the machines have.
//! - wasm-bindgen CLI: exactly the `wasm-bindgen` version in Cargo.lock; installed without
//!   `--locked`, which fails to resolve on the registry mirror.
//! - wasm-opt from npm `binaryen@132`: Debian's binaryen 108 emits modules Chromium rejects.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, run_cmd, step, Result};

pub const TRUNK_VERSION: &str = "0.21.14";
pub const BINARYEN_VERSION: &str = "132";
/// diesel's CLI, for `print-schema` in the schema check; the 2.2 line matches the diesel crate.
pub const DIESEL_CLI_VERSION: &str = "2.2.12";

pub fn ensure_all(root: &Path) -> Result {
    ensure_wasm_target()?;
    ensure_trunk()?;
    ensure_wasm_bindgen(root)?;
    ensure_wasm_opt(root)?;
    Ok(())
}

fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
        .join("bin")
}

fn npm_prefix(root: &Path) -> PathBuf {
    root.join("target/tools/npm")
}

/// `PATH` with the project's tool directories first, for Trunk to find wasm-bindgen and wasm-opt.
pub fn path_with_tools(root: &Path) -> std::ffi::OsString {
    let mut dirs = vec![npm_prefix(root).join("node_modules/.bin"), cargo_bin_dir()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

pub fn trunk_path() -> PathBuf {
    cargo_bin_dir().join("trunk")
}

/// The first line a `--version` call prints, or `None` when the program is missing.
fn version_of(program: &Path, arg: &str) -> Option<String> {
    let output = Command::new(program).arg(arg).output().ok()?;
    output.status.success().then(|| {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    })
}

/// Installs `diesel` (PostgreSQL only: the committed `schema.rs` is PostgreSQL's print-schema).
pub fn ensure_diesel_cli() -> Result<PathBuf> {
    let diesel = cargo_bin_dir().join("diesel");
    let output = Command::new(&diesel).arg("--version").output();
    let wanted = format!("Version: {DIESEL_CLI_VERSION}");
    if output.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&wanted)) {
        return Ok(diesel);
    }
    step(&format!(
        "Installing diesel_cli {DIESEL_CLI_VERSION} for the schema check (a few minutes, once)"
    ));
    run_cmd(cargo().args([
        "install",
        "--locked",
        "diesel_cli",
        "--version",
        DIESEL_CLI_VERSION,
        "--no-default-features",
        "--features",
        "postgres",
    ]))?;
    Ok(diesel)
}

fn ensure_wasm_target() -> Result {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    step("Installing the wasm32-unknown-unknown target");
    run_cmd(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

fn ensure_trunk() -> Result {
    let wanted = format!("trunk {TRUNK_VERSION}");
    if version_of(&trunk_path(), "--version").as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    step(&format!(
        "Installing Trunk {TRUNK_VERSION} (a few minutes, once)"
    ));
    run_cmd(cargo().args(["install", "--locked", "trunk", "--version", TRUNK_VERSION]))
}

/// The `wasm-bindgen` version Cargo.lock resolved; the CLI must match it exactly.
pub fn locked_wasm_bindgen_version(root: &Path) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            if let Some(version) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
            {
                return Ok(version.to_owned());
            }
        }
    }
    Err("Cargo.lock has no wasm-bindgen package".into())
}

fn ensure_wasm_bindgen(root: &Path) -> Result {
    let version = locked_wasm_bindgen_version(root)?;
    let trunk_toml = std::fs::read_to_string(root.join("Trunk.toml")).unwrap_or_default();
    if !trunk_toml.contains(&format!("wasm_bindgen = \"{version}\"")) {
        return Err(format!(
            "Trunk.toml's [tools] wasm_bindgen must equal Cargo.lock's wasm-bindgen ({version})"
        ));
    }
    let wanted = format!("wasm-bindgen {version}");
    if version_of(&cargo_bin_dir().join("wasm-bindgen"), "--version").as_deref()
        == Some(wanted.as_str())
    {
        return Ok(());
    }
    step(&format!(
        "Installing wasm-bindgen-cli {version} (about two minutes, once)"
    ));
    run_cmd(cargo().args(["install", "wasm-bindgen-cli", "--version", &version]))
}

fn ensure_wasm_opt(root: &Path) -> Result {
    let prefix = npm_prefix(root);
    let bin = prefix.join("node_modules/.bin/wasm-opt");
    if version_of(&bin, "--version")
        .is_some_and(|v| v.contains(&format!("version {BINARYEN_VERSION}")))
    {
        return Ok(());
    }
    step(&format!(
        "Installing wasm-opt (npm binaryen@{BINARYEN_VERSION})"
    ));
    std::fs::create_dir_all(&prefix)
        .map_err(|e| format!("cannot create {}: {e}", prefix.display()))?;
    run_cmd(Command::new("npm").args([
        "install",
        "--no-audit",
        "--no-fund",
        "--prefix",
        &prefix.to_string_lossy(),
        &format!("binaryen@{BINARYEN_VERSION}"),
    ]))
}

/// Debian's Chromium and ChromeDriver, for the browser tests.
pub fn ensure_browser() -> Result {
    if Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists() {
        return Ok(());
    }
    step("Installing chromium and chromium-driver from Debian");
    run_cmd(Command::new("apt-get").args(["update", "-qq"]))?;
    run_cmd(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "chromium", "chromium-driver"]),
    )
}
