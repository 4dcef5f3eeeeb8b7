//! Logging: `tracing` to stdout, filtered by `KEYSYNC_LOG`, as text or JSON
//! (`KEYSYNC_LOG_FORMAT=json`).
//!
//! Policy: secrets never reach a log line. License keys are logged by prefix only, passwords and
//! session tokens never.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Installs the global subscriber; a second call (tests start many servers) is a no-op.
pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|err| {
        eprintln!(
            "invalid log filter `{}` ({err}); using `info`",
            settings.log
        );
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
