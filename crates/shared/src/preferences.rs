//! Per-admin sync preferences: `GET/PUT /api/admin/me/preferences`. Stored on the server so they
//! follow an admin to every browser; the web app applies them to its running sync manager.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The shortest and longest polling interval an admin may choose, in milliseconds.
pub const MIN_INTERVAL_MS: u32 = 1_000;
pub const MAX_INTERVAL_MS: u32 = 3_600_000;

/// Polling interval per data source, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceIntervals {
    pub stats_ms: u32,
    pub keys_ms: u32,
    pub customers_ms: u32,
    pub users_ms: u32,
    pub activity_ms: u32,
    pub releases_ms: u32,
}

impl Default for SourceIntervals {
    /// The intervals of the product spec.
    fn default() -> Self {
        Self {
            stats_ms: 30_000,
            keys_ms: 15_000,
            customers_ms: 30_000,
            users_ms: 60_000,
            activity_ms: 30_000,
            releases_ms: 300_000,
        }
    }
}

impl SourceIntervals {
    /// Every interval with the field name the API reports when one is out of range.
    pub fn named(&self) -> [(&'static str, u32); 6] {
        [
            ("intervals.stats_ms", self.stats_ms),
            ("intervals.keys_ms", self.keys_ms),
            ("intervals.customers_ms", self.customers_ms),
            ("intervals.users_ms", self.users_ms),
            ("intervals.activity_ms", self.activity_ms),
            ("intervals.releases_ms", self.releases_ms),
        ]
    }
}

/// How much the browser's sync engine writes to the console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncLogLevel {
    Off,
    Error,
    Warn,
    #[default]
    Info,
    Debug,
}

/// One admin's sync preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncPreferences {
    pub intervals: SourceIntervals,
    /// Slow or pause polling while the tab is hidden.
    pub pause_when_hidden: bool,
    /// Listen to server-sent events; when off, the app polls at `intervals`.
    pub push_enabled: bool,
    pub log_level: SyncLogLevel,
    /// When the admin last saved them; `null` while they are the defaults. Ignored on `PUT`.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Default for SyncPreferences {
    fn default() -> Self {
        Self {
            intervals: SourceIntervals::default(),
            pause_when_hidden: true,
            push_enabled: true,
            log_level: SyncLogLevel::default(),
            updated_at: None,
        }
    }
}
