//! Helpers for the end-to-end tests: the real `keysync` binary as a child process and headless
//! Chromium driven through ChromeDriver.
//!
//! `cargo xtask test` builds the binary and the SPA first and points `KEYSYNC_TEST_DIST` at the
//! build; the helpers fail with a sentence saying so when either is missing.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

/// The workspace's `target/` directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The debug `keysync` binary.
pub fn keysync_binary() -> anyhow::Result<PathBuf> {
    let path = target_dir().join("debug/keysync");
    if path.is_file() {
        Ok(path)
    } else {
        bail!(
            "{} is missing: run `cargo build -p keysync-api` (cargo xtask test does)",
            path.display()
        )
    }
}

/// The built SPA (`dist/`), from `KEYSYNC_TEST_DIST` or the workspace default.
pub fn built_dist() -> anyhow::Result<PathBuf> {
    let dist = std::env::var_os("KEYSYNC_TEST_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist"));
    if dist.join("index.html").is_file() {
        Ok(dist)
    } else {
        bail!(
            "{} has no index.html: build the SPA with `cargo xtask spa`",
            dist.display()
        )
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running `keysync serve` with its own SQLite file; killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub address: String,
    output: mpsc::Receiver<String>,
    startup_output: Vec<String>,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `keysync serve` on a free port with a fresh SQLite database and `extra_env`.
    pub fn start(extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_binary(&keysync_binary()?, extra_env)
    }

    /// Like [`Self::start`], with a given `keysync` binary (the benchmarks use a release build).
    pub fn start_binary(binary: &Path, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .current_dir(dir.path())
            .env("KEYSYNC_PORT", "0")
            .env("KEYSYNC_DATABASE_URL", dir.path().join("keysync.db"))
            .env("KEYSYNC_DIST_DIR", dir.path().join("no-dist"))
            .env("KEYSYNC_LOG", "info")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("start keysync")?;
        let (tx, rx) = mpsc::channel();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let serving = line
                        .strip_prefix("keysync is serving on ")
                        .map(|addr| addr.trim().to_owned());
                    seen.push(line);
                    if let Some(address) = serving {
                        return Ok(Self {
                            child,
                            address,
                            output: rx,
                            startup_output: seen,
                            _dir: dir,
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = child.try_wait()? {
                        bail!(
                            "keysync exited with {status} before serving:\n{}",
                            seen.join("\n")
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = child.kill();
        Err(anyhow!(
            "keysync did not start serving:\n{}",
            seen.join("\n")
        ))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `TERM`) and waits up to `timeout` for the process to exit.
    pub fn signal_and_wait(
        &mut self,
        signal: &str,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("keysync did not exit within {timeout:?} of SIG{signal}")
    }

    /// Everything the process has printed so far, from its first line.
    pub fn drain_output(&mut self) -> Vec<String> {
        let mut lines = self.startup_output.clone();
        lines.extend(self.output.try_iter());
        self.startup_output = lines.clone();
        lines
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium behind a ChromeDriver child process; both end when dropped.
pub struct Browser {
    pub client: fantoccini::Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> anyhow::Result<Self> {
        let port = free_port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start chromedriver (cargo xtask test installs chromium-driver)")?;
        let profile = tempfile::tempdir()?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match fantoccini::ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => {
                    let _ = driver.kill();
                    bail!("cannot start a Chromium session: {e}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Ok(Self {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Saves a PNG of the page under `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = target_dir().join("screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(path)
    }

    pub async fn close(self) -> anyhow::Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
