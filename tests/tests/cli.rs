//! The `keysync` binary as an operator runs it.

use std::process::{Command, Stdio};
use std::time::Duration;

use keysync_e2e::{keysync_binary, ServerProcess};
use keysync_shared::Health;

#[tokio::test]
async fn serve_bootstraps_an_owner_serves_health_and_stops_gracefully_on_sigterm() {
    let mut server = ServerProcess::start(&[("KEYSYNC_ADMIN_EMAIL", "boss@example.com")]).unwrap();

    let health: Health = reqwest::get(format!("{}/api/health", server.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = server
        .signal_and_wait("TERM", Duration::from_secs(15))
        .unwrap();

    assert_eq!(health.status, "ok");
    assert_eq!(health.database.as_str(), "sqlite");
    assert!(status.success(), "a SIGTERM is a clean stop, got {status}");
    let output = server.drain_output().join("\n");
    assert!(
        output.contains("Created owner admin boss@example.com with generated password"),
        "the generated owner password is shown once: {output}"
    );
}

#[test]
fn admin_create_reads_the_password_from_stdin_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let create = |email: &str| {
        let mut child = Command::new(keysync_binary().unwrap())
            .args([
                "admin",
                "create",
                "--email",
                email,
                "--role",
                "viewer",
                "--password-stdin",
            ])
            .env("KEYSYNC_DATABASE_URL", &db)
            .env("KEYSYNC_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"a long enough secret\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };

    let first = create("viewer@example.com");
    let second = create("VIEWER@example.com");

    assert!(first.status.success(), "{first:?}");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("created viewer viewer@example.com"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("a long enough secret"),
        "a given password is never echoed"
    );
    assert!(
        !second.status.success(),
        "the same email (any case) is refused"
    );
    assert!(String::from_utf8_lossy(&second.stderr).contains("already exists"));
}

#[test]
fn migrate_creates_the_sqlite_file_and_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dir/keysync.db");

    let output = Command::new(keysync_binary().unwrap())
        .arg("migrate")
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env_remove("KEYSYNC_DATABASE_URL")
        .env("KEYSYNC_LOG", "warn")
        .output()
        .unwrap();

    assert!(output.status.success(), "{output:?}");
    assert!(db.is_file());
}

#[test]
fn an_unreadable_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keysync.toml"), "prot = 1").unwrap();

    let output = Command::new(keysync_binary().unwrap())
        .arg("migrate")
        .current_dir(dir.path())
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid configuration") && stderr.contains("prot"),
        "{stderr}"
    );
}
