//! The local PostgreSQL 15 server the tests run against.
//!
//! Starts the Debian cluster (`pg_ctlcluster 15 main start`) when it is not running, creates a
//! `keysync_test` role that may create databases, and returns a URL for it. Each test then
//! creates and drops its own database. `KEYSYNC_TEST_PG_URL` already set means "use that server".

use std::process::Command;

use crate::Result;

const ROLE: &str = "keysync_test";

pub fn ensure_server() -> Result<String> {
    if let Ok(url) = std::env::var("KEYSYNC_TEST_PG_URL") {
        return Ok(url);
    }
    let port = cluster_port()?;
    if !is_ready(port) {
        let status = Command::new("pg_ctlcluster")
            .args(["15", "main", "start"])
            .status()
            .map_err(|e| format!("cannot run pg_ctlcluster (is postgresql-15 installed?): {e}"))?;
        if !status.success() && !is_ready(port) {
            return Err(format!("pg_ctlcluster 15 main start failed with {status}"));
        }
        for _ in 0..50 {
            if is_ready(port) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        if !is_ready(port) {
            return Err(format!(
                "PostgreSQL did not accept connections on port {port}"
            ));
        }
    }
    let sql = format!(
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN \
             CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{ROLE}'; \
           END IF; \
         END $$;"
    );
    let status = Command::new("runuser")
        .args([
            "-u",
            "postgres",
            "--",
            "psql",
            "-q",
            "-p",
            &port.to_string(),
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &sql,
        ])
        .status()
        .map_err(|e| format!("cannot run psql as postgres: {e}"))?;
    if !status.success() {
        return Err(format!("creating the {ROLE} role failed with {status}"));
    }
    Ok(format!(
        "postgres://{ROLE}:{ROLE}@127.0.0.1:{port}/postgres"
    ))
}

/// The port of cluster 15/main from `pg_lsclusters`, 5432 when it cannot be read.
fn cluster_port() -> Result<u16> {
    let output = Command::new("pg_lsclusters")
        .arg("-h")
        .output()
        .map_err(|e| format!("cannot run pg_lsclusters (is postgresql-15 installed?): {e}"))?;
    let listing = String::from_utf8_lossy(&output.stdout);
    Ok(listing
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.len() > 2 && cols[0] == "15" && cols[1] == "main")
        .and_then(|cols| cols[2].parse().ok())
        .unwrap_or(5432))
}

fn is_ready(port: u16) -> bool {
    Command::new("pg_isready")
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// `crates/api/src/schema.rs` must be exactly what `diesel print-schema` prints for a PostgreSQL
/// database migrated by the `keysync` binary at `keysync`: the file is generated, never edited
/// by hand, and this catches a migration that the schema forgot (the SQLite migrations declare
/// the same columns, which the tests on both engines exercise).
pub fn check_schema(root: &std::path::Path, server_url: &str, keysync: &std::path::Path) -> Result {
    let diesel = crate::tools::ensure_diesel_cli()?;
    let name = format!("keysync_schema_check_{}", std::process::id());
    let db_url = match server_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => return Err(format!("not a database URL: {server_url}")),
    };
    let psql = |sql: &str| {
        Command::new("psql")
            .args([server_url, "-qc", sql])
            .env("PGOPTIONS", "--client-min-messages=warning")
            .status()
            .map_err(|e| format!("cannot run psql: {e}"))
    };
    psql(&format!("DROP DATABASE IF EXISTS {name}"))?;
    if !psql(&format!("CREATE DATABASE {name}"))?.success() {
        return Err(format!("cannot create database {name}"));
    }
    let result = (|| {
        let migrated = Command::new(keysync)
            .arg("migrate")
            .env("KEYSYNC_DATABASE_URL", &db_url)
            .output()
            .map_err(|e| format!("cannot run keysync migrate: {e}"))?;
        if !migrated.status.success() {
            return Err(format!(
                "keysync migrate failed: {}",
                String::from_utf8_lossy(&migrated.stderr)
            ));
        }
        let printed = Command::new(&diesel)
            .args(["print-schema", "--database-url", &db_url])
            .current_dir(std::env::temp_dir())
            .output()
            .map_err(|e| format!("cannot run diesel print-schema: {e}"))?;
        if !printed.status.success() {
            return Err(format!(
                "diesel print-schema failed: {}",
                String::from_utf8_lossy(&printed.stderr)
            ));
        }
        let committed = std::fs::read_to_string(root.join("crates/api/src/schema.rs"))
            .map_err(|e| format!("cannot read schema.rs: {e}"))?;
        let generated = String::from_utf8_lossy(&printed.stdout);
        if committed != generated {
            let path = root.join("target/schema.generated.rs");
            let _ = std::fs::write(&path, generated.as_bytes());
            return Err(format!(
                "crates/api/src/schema.rs differs from `diesel print-schema` of the migrated \
                 database; the generated file is at {}",
                path.display()
            ));
        }
        Ok(())
    })();
    psql(&format!("DROP DATABASE IF EXISTS {name}"))?;
    result
}
