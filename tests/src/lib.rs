//! Helpers for the end-to-end tests: the real `keysync` binary as a child process and headless
//! Chromium driven through ChromeDriver.
//!
//! `cargo xtask test` builds the binary and the SPA first and points `KEYSYNC_TEST_DIST` at the
//! build; the helpers fail with a sentence saying so when either is missing.

pub mod admin;
pub mod fake_github;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

/// The workspace's `target/` directory: `CARGO_TARGET_DIR` (relative to the workspace root, where
/// `cargo xtask test` runs cargo, when relative), else the workspace's `target/`. Tests run in
/// this crate's directory, so a relative path must not be taken as it is.
pub fn target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
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
    dir: tempfile::TempDir,
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
                            dir,
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

    /// The SQLite file this server uses, for CLI commands against the same database.
    pub fn database_path(&self) -> PathBuf {
        self.dir.path().join("keysync.db")
    }

    /// Creates an admin with `role` and `password` in this server's database, through
    /// `keysync admin create --password-stdin` as an operator would.
    pub fn create_admin(&self, email: &str, role: &str, password: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let mut child = Command::new(keysync_binary()?)
            .args(["admin", "create", "--email", email, "--role", role])
            .arg("--password-stdin")
            .env("KEYSYNC_DATABASE_URL", self.database_path())
            .env("KEYSYNC_LOG", "warn")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("run keysync admin create")?;
        child
            .stdin
            .take()
            .context("stdin of keysync admin create")?
            .write_all(format!("{password}\n").as_bytes())?;
        let output = child.wait_with_output()?;
        anyhow::ensure!(
            output.status.success(),
            "keysync admin create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
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

    /// Runs `script` (a function body; `return` a value) in the page.
    pub async fn js(&self, script: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Sends a Chrome DevTools protocol command through ChromeDriver's `goog/cdp/execute`.
    pub async fn cdp(
        &self,
        cmd: &str,
        params: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        Ok(self
            .client
            .issue_cmd(CdpCommand {
                cmd: cmd.to_owned(),
                params,
            })
            .await?)
    }

    /// Waits up to `timeout` for an element matching `css`.
    pub async fn wait_for(
        &self,
        css: &str,
        timeout: Duration,
    ) -> anyhow::Result<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(timeout)
            .for_element(fantoccini::Locator::Css(css))
            .await
            .with_context(|| format!("no element matching {css} within {timeout:?}"))
    }

    /// Signs in through the login form at `address` and waits for the dashboard.
    pub async fn sign_in(&self, address: &str, email: &str, password: &str) -> anyhow::Result<()> {
        self.client.goto(&format!("{address}/login")).await?;
        self.wait_for("[data-testid=login-email]", Duration::from_secs(20))
            .await?
            .send_keys(email)
            .await?;
        self.wait_for("[data-testid=login-password]", Duration::from_secs(5))
            .await?
            .send_keys(password)
            .await?;
        self.wait_for("[data-testid=login-submit]", Duration::from_secs(5))
            .await?
            .click()
            .await?;
        self.wait_for("[data-testid=dashboard]", Duration::from_secs(20))
            .await?;
        Ok(())
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

/// A raw `POST /session/{id}/goog/cdp/execute`: one Chrome DevTools protocol command.
#[derive(Debug)]
pub struct CdpCommand {
    pub cmd: String,
    pub params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for CdpCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}
