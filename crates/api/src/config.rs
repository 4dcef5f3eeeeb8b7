//! Settings: built-in defaults < optional `keysync.toml` < environment.
//!
//! Every setting has a default, so a fresh checkout runs with none given. The environment uses
//! `KEYSYNC_<NAME>` (for example `KEYSYNC_PORT=9000`); `DATABASE_URL` is also read, and
//! `KEYSYNC_DATABASE_URL` wins over it. The file is `keysync.toml` in the working directory, or the
//! path in `KEYSYNC_CONFIG`. Settings are a value handed to [`crate::startup::Application::build`],
//! never a global, so tests start servers with their own.

use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Which engine a database URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A SQLite file (created, with its directory, when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL, passed to libpq as given.
    Postgres(String),
}

impl DatabaseTarget {
    /// Reads `DATABASE_URL`'s forms: `postgres://…`/`postgresql://…`, `sqlite://path`,
    /// `sqlite:path`, or a bare file path.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("database_url is empty".into());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err(format!("database_url `{url}` names no file"));
        }
        if path.contains("://") {
            return Err(format!(
                "database_url `{url}` is neither a SQLite path nor a postgres:// URL"
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Everything the server can be told. Field docs are the reference for `docs/configuration`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on; 0 picks a free one (tests use this).
    pub port: u16,
    /// SQLite path/URL (the default) or a `postgres://` URL.
    pub database_url: String,
    /// Connections kept in the pool.
    pub pool_size: u32,
    /// Seconds a request waits for a pooled connection before it is answered 503.
    pub pool_timeout_secs: u64,
    /// Directory of the built SPA, served at `/`.
    pub dist_dir: PathBuf,
    /// Log filter in `tracing` syntax (`info`, `debug`, `keysync_api=debug,actix_web=info`).
    pub log: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Email of the owner created at start when no owner exists.
    pub admin_email: String,
    /// Password of that owner; when unset a random one is generated and printed once.
    pub admin_password: Option<String>,
    /// Prefix of generated license keys (1 to 16 letters or digits).
    pub key_prefix: String,
    /// Hours a session lasts after its last use.
    pub session_ttl_hours: u32,
    /// Sign-in attempts allowed per email per minute (also the burst); 0 disables.
    pub login_attempts_per_email_per_minute: u32,
    /// Sign-in attempts allowed per client IP per minute (also the burst); 0 disables.
    pub login_attempts_per_ip_per_minute: u32,
    /// Take the client IP from `Forwarded`/`X-Forwarded-For` (only behind a trusted proxy).
    pub trust_proxy_headers: bool,
    /// Shared secret for signed webhook deliveries (`X-Keysync-Signature`); unset refuses them.
    pub webhook_secret: Option<String>,
    /// Bearer token `GET /metrics` requires; unset leaves the endpoint open (it holds counts only).
    pub metrics_token: Option<String>,
    /// Days change-feed entries are kept.
    pub change_retention_days: u32,
    /// Days audit-log entries are kept.
    pub audit_retention_days: u32,
    /// Milliseconds between looks at the change feed on SQLite.
    pub feed_poll_ms: u64,
    /// Milliseconds between safety-net looks at the feed on PostgreSQL, where LISTEN/NOTIFY
    /// wakes the follower.
    pub feed_fallback_poll_ms: u64,
    /// At most one push event per row per this many milliseconds.
    pub feed_coalesce_ms: u64,
    /// Seconds between heartbeat comments on an event stream.
    pub sse_heartbeat_secs: u64,
    /// License validations (and deactivations) allowed per client IP per minute (also the
    /// burst); 0 disables.
    pub validations_per_ip_per_minute: u32,
    /// License validations (and deactivations) allowed per license key per minute (also the
    /// burst); 0 disables.
    pub validations_per_key_per_minute: u32,
    /// License checks that may wait for the database writer at once; beyond it they get 503.
    pub validation_queue_capacity: usize,
    /// Hours a client may trust a signed `VALID` answer while offline (never past the key's
    /// expiry).
    pub license_grace_period_hours: u32,
    /// File holding the Ed25519 signing key (base64 of the 32-byte seed), created when missing;
    /// when unset the key pair is kept in the database.
    pub license_signing_key_file: Option<PathBuf>,
    /// GitHub repository (`owner/name`) whose latest release the portal offers; unset disables
    /// the portal's release endpoints.
    pub releases_repo: Option<String>,
    /// Base URL of the GitHub API (or a compatible server).
    pub releases_api_url: String,
    /// Token sent to the GitHub API (raises its rate limit; needed for private repositories).
    pub releases_token: Option<String>,
    /// Seconds the latest release is served before it is revalidated upstream.
    pub releases_cache_secs: u64,
    /// Seconds the upstream is left alone after it failed (longer when it asks for longer).
    pub releases_retry_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            database_url: "data/keysync.db".into(),
            pool_size: 8,
            pool_timeout_secs: 5,
            dist_dir: PathBuf::from("dist"),
            log: "info".into(),
            log_format: LogFormat::Text,
            admin_email: "admin@localhost".into(),
            admin_password: None,
            key_prefix: "SCO".into(),
            session_ttl_hours: 12,
            login_attempts_per_email_per_minute: 5,
            login_attempts_per_ip_per_minute: 30,
            trust_proxy_headers: false,
            webhook_secret: None,
            metrics_token: None,
            change_retention_days: 7,
            audit_retention_days: 90,
            feed_poll_ms: 20,
            feed_fallback_poll_ms: 1_000,
            feed_coalesce_ms: 250,
            sse_heartbeat_secs: 15,
            validations_per_ip_per_minute: 600,
            validations_per_key_per_minute: 120,
            validation_queue_capacity: 8192,
            license_grace_period_hours: 7 * 24,
            license_signing_key_file: None,
            releases_repo: None,
            releases_api_url: "https://api.github.com".into(),
            releases_token: None,
            releases_cache_secs: 300,
            releases_retry_secs: 60,
        }
    }
}

impl Settings {
    /// Defaults, then the config file, then the environment.
    pub fn load() -> Result<Self, Box<figment::Error>> {
        let file = std::env::var_os("KEYSYNC_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("keysync.toml"));
        Self::figment(file).extract().map_err(Box::new)
    }

    fn figment(file: PathBuf) -> Figment {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .merge(
                Env::prefixed("KEYSYNC_")
                    .ignore(&["config"])
                    .filter(|key| !key.as_str().to_ascii_lowercase().starts_with("test_")),
            )
    }

    /// The database URL with any password replaced, for log lines.
    pub fn database_url_for_log(&self) -> String {
        redact_url_password(&self.database_url)
    }

    pub fn session_ttl(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.session_ttl_hours.max(1)))
    }

    pub fn change_retention(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.change_retention_days.max(1)))
    }

    pub fn audit_retention(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.audit_retention_days.max(1)))
    }

    /// The parsed database target.
    pub fn database(&self) -> Result<DatabaseTarget, String> {
        DatabaseTarget::parse(&self.database_url)
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail fixes its closures' error type"
)]
mod tests {
    #[test]
    fn passwords_in_database_urls_are_redacted_for_logs() {
        assert_eq!(
            redact_url_password("postgres://ks:s3cret@127.0.0.1:5432/db"),
            "postgres://ks:***@127.0.0.1:5432/db"
        );
        assert_eq!(redact_url_password("data/keysync.db"), "data/keysync.db");
        assert_eq!(
            redact_url_password("postgres://ks@h/db"),
            "postgres://ks@h/db"
        );
    }

    use super::*;

    #[test]
    fn database_urls_pick_their_engine() {
        assert_eq!(
            DatabaseTarget::parse("postgres://u:p@localhost/db"),
            Ok(DatabaseTarget::Postgres(
                "postgres://u:p@localhost/db".into()
            ))
        );
        assert_eq!(
            DatabaseTarget::parse("sqlite://data/k.db"),
            Ok(DatabaseTarget::Sqlite("data/k.db".into()))
        );
        assert_eq!(
            DatabaseTarget::parse("sqlite:/tmp/k.db"),
            Ok(DatabaseTarget::Sqlite("/tmp/k.db".into()))
        );
        assert_eq!(
            DatabaseTarget::parse("k.db"),
            Ok(DatabaseTarget::Sqlite("k.db".into()))
        );
        assert!(DatabaseTarget::parse("mysql://x").is_err());
        assert!(DatabaseTarget::parse("  ").is_err());
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("keysync.toml", "port = 9000\nlog = \"debug\"")?;
            jail.set_env("KEYSYNC_PORT", "9100");
            jail.set_env("DATABASE_URL", "postgres://a@b/c");

            let settings: Settings = Settings::figment("keysync.toml".into()).extract()?;

            assert_eq!(settings.port, 9100);
            assert_eq!(settings.log, "debug");
            assert_eq!(settings.database_url, "postgres://a@b/c");
            assert_eq!(settings.host, "127.0.0.1");
            Ok(())
        });
    }

    #[test]
    fn keysync_database_url_wins_over_database_url() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://a@b/c");
            jail.set_env("KEYSYNC_DATABASE_URL", "other.db");

            let settings: Settings = Settings::figment("absent.toml".into()).extract()?;

            assert_eq!(settings.database_url, "other.db");
            Ok(())
        });
    }

    #[test]
    fn a_misspelt_setting_in_the_file_is_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("keysync.toml", "prot = 9000")?;

            let result: Result<Settings, _> = Settings::figment("keysync.toml".into()).extract();

            assert!(result.is_err());
            Ok(())
        });
    }
}
