//! The sources the admin app keeps in sync, their polling intervals (from the design spec), and
//! the overrides browser tests use to shorten them without recompiling.

use std::collections::HashMap;

use super::clock::Millis;

/// Source keys: the registry names and the cache-key prefixes.
pub const DASHBOARD_STATS: &str = "dashboard-stats";
pub const LICENSE_KEYS: &str = "license-keys";
pub const CUSTOMERS: &str = "customers";
/// The customers page's own view (search and pages), registered only while it is shown.
pub const CUSTOMER_LIST: &str = "customer-list";
pub const ADMIN_USERS: &str = "admin-users";
/// The activity page's audit log, registered only while it is shown.
pub const ACTIVITY: &str = "activity";
pub const RELEASES: &str = "releases";
/// The interval key of the manager's own read of `/api/admin/sync` while push is not live (not
/// a registered source: see `SyncManager::feed_change`).
pub const CHANGE_FEED: &str = "change-feed";
/// The change-feed resource of an admin's saved sync preferences.
pub const SYNC_PREFERENCES: &str = "sync_preferences";

/// The spec's intervals.
pub const STATS_INTERVAL: Millis = 30_000;
pub const KEYS_INTERVAL: Millis = 15_000;
pub const CUSTOMERS_INTERVAL: Millis = 30_000;
pub const ADMIN_USERS_INTERVAL: Millis = 60_000;
pub const RELEASES_INTERVAL: Millis = 5 * 60_000;
/// Not in the spec: the log is "live", and validations and downloads are logged without a
/// change-feed entry, so polling is what brings those.
pub const ACTIVITY_INTERVAL: Millis = 10_000;

/// The shortest interval an override may set, so a typo cannot hammer the server.
pub const MIN_INTERVAL: Millis = 100;

/// `localStorage` keys read at start (see docs/architecture.md, "Web app").
pub const STORAGE_INTERVALS: &str = "keysync.sync.intervals";
pub const STORAGE_PUSH: &str = "keysync.sync.push";
pub const STORAGE_LOG: &str = "keysync.sync.log";

/// The spec's interval for a source key, if it is one of ours.
pub fn default_interval(key: &str) -> Option<Millis> {
    match key {
        DASHBOARD_STATS => Some(STATS_INTERVAL),
        LICENSE_KEYS => Some(KEYS_INTERVAL),
        CUSTOMERS | CUSTOMER_LIST => Some(CUSTOMERS_INTERVAL),
        ADMIN_USERS => Some(ADMIN_USERS_INTERVAL),
        RELEASES => Some(RELEASES_INTERVAL),
        ACTIVITY => Some(ACTIVITY_INTERVAL),
        _ => None,
    }
}

/// The admin's preferred interval for each source key.
pub fn preferred_intervals(
    intervals: &keysync_shared::SourceIntervals,
) -> [(&'static str, Millis); 6] {
    [
        (DASHBOARD_STATS, intervals.stats_ms.into()),
        (LICENSE_KEYS, intervals.keys_ms.into()),
        (CUSTOMERS, intervals.customers_ms.into()),
        (ADMIN_USERS, intervals.users_ms.into()),
        (ACTIVITY, intervals.activity_ms.into()),
        (RELEASES, intervals.releases_ms.into()),
    ]
}

/// The engine's log level for the preference.
pub fn log_level(level: keysync_shared::SyncLogLevel) -> super::log::Level {
    use super::log::Level;
    use keysync_shared::SyncLogLevel as L;
    match level {
        L::Off => Level::Off,
        L::Error => Level::Error,
        L::Warn => Level::Warn,
        L::Info => Level::Info,
        L::Debug => Level::Debug,
    }
}

/// Which sources a change-feed entry for `resource` makes stale. The dashboard's numbers count
/// keys, customers and admins, so every data change also touches the stats.
pub fn sources_touched_by(resource: &str) -> &'static [&'static str] {
    match resource {
        // A key's customer changes that customer's key count.
        // Every change is also an audit-log entry: the activity page follows all of them.
        "license_keys" => &[LICENSE_KEYS, DASHBOARD_STATS, CUSTOMER_LIST, ACTIVITY],
        "customers" => &[
            CUSTOMERS,
            CUSTOMER_LIST,
            LICENSE_KEYS,
            DASHBOARD_STATS,
            ACTIVITY,
        ],
        "admin_users" => &[ADMIN_USERS, DASHBOARD_STATS, ACTIVITY],
        "webhooks" => &[RELEASES, DASHBOARD_STATS, ACTIVITY],
        _ => &[],
    }
}

/// Settings a test (or a curious admin) can put in `localStorage`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub intervals: HashMap<String, Millis>,
    /// `false` when `keysync.sync.push` is `"off"`: poll only.
    pub push_disabled: bool,
}

impl Overrides {
    /// Reads the raw `localStorage` values. Unreadable JSON or non-numbers are ignored, values
    /// below [`MIN_INTERVAL`] are raised to it.
    pub fn parse(intervals_json: Option<&str>, push: Option<&str>) -> Self {
        let intervals = intervals_json
            .and_then(|raw| serde_json::from_str::<HashMap<String, serde_json::Value>>(raw).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.as_u64().map(|ms| (k, ms.max(MIN_INTERVAL))))
            .collect();
        Self {
            intervals,
            push_disabled: push.is_some_and(|p| p.trim().eq_ignore_ascii_case("off")),
        }
    }

    /// The interval to use for `key`: the override, else `default`.
    pub fn interval(&self, key: &str, default: Millis) -> Millis {
        self.intervals.get(key).copied().unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_intervals_are_the_defaults() {
        assert_eq!(default_interval("dashboard-stats"), Some(30_000));
        assert_eq!(default_interval("license-keys"), Some(15_000));
        assert_eq!(default_interval("customers"), Some(30_000));
        assert_eq!(default_interval("admin-users"), Some(60_000));
        assert_eq!(default_interval("releases"), Some(300_000));
    }

    #[test]
    fn overrides_shorten_intervals_but_never_below_the_floor() {
        let o = Overrides::parse(
            Some(r#"{"license-keys": 1000, "dashboard-stats": 5, "customers": "x"}"#),
            Some("off"),
        );

        assert_eq!(o.interval(LICENSE_KEYS, KEYS_INTERVAL), 1000);
        assert_eq!(o.interval(DASHBOARD_STATS, STATS_INTERVAL), MIN_INTERVAL);
        assert_eq!(
            o.interval(CUSTOMERS, CUSTOMERS_INTERVAL),
            CUSTOMERS_INTERVAL
        );
        assert!(o.push_disabled);
    }

    #[test]
    fn preferences_map_onto_the_source_keys() {
        let intervals = keysync_shared::SourceIntervals {
            keys_ms: 2_000,
            ..Default::default()
        };
        let mapped = preferred_intervals(&intervals);

        assert!(mapped.contains(&(LICENSE_KEYS, 2_000)));
        assert!(mapped.contains(&(DASHBOARD_STATS, STATS_INTERVAL)));
        assert_eq!(
            log_level(keysync_shared::SyncLogLevel::Debug),
            super::super::log::Level::Debug
        );
    }

    #[test]
    fn unreadable_overrides_change_nothing() {
        let o = Overrides::parse(Some("not json"), Some("on"));

        assert_eq!(o, Overrides::default());
    }

    #[test]
    fn a_key_change_touches_keys_stats_the_customer_list_and_activity() {
        assert_eq!(
            sources_touched_by("license_keys"),
            &[LICENSE_KEYS, DASHBOARD_STATS, CUSTOMER_LIST, ACTIVITY]
        );
        assert!(sources_touched_by("something_new").is_empty());
    }
}
