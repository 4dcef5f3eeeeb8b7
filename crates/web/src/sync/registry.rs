//! The scheduling core of the DataSyncManager, in plain Rust: which source is due, which is in
//! flight, how long to back off after a failure, how visibility, connectivity, the auto-sync
//! switch and live push change the pace, and what `getStatus()` reports.
//!
//! It never awaits and never touches the browser: the adapter in `manager.rs` asks it what to do
//! (`due`, `begin`), runs the fetchers, and reports back (`finish`). Native tests drive it with a
//! [`ManualClock`](super::clock::ManualClock).

use std::collections::BTreeMap;
use std::rc::Rc;

use super::clock::{Clock, Millis};
use super::log::Logger;

/// While the push stream is live, polling continues only as a safety net at this multiple of a
/// source's interval.
pub const PUSH_SAFETY_FACTOR: Millis = 8;
/// While the tab is hidden and the admin chose not to pause, polling slows to this multiple.
pub const HIDDEN_SLOW_FACTOR: Millis = 4;
/// First retry after a failure; each further failure doubles it, up to [`RETRY_CAP`].
pub const RETRY_BASE: Millis = 1_000;
pub const RETRY_CAP: Millis = 60_000;

/// Called with `(source key, error message)` after every failed fetch.
pub type ErrorCallback = Rc<dyn Fn(&str, &str)>;

/// How a source is kept fresh.
#[derive(Clone)]
pub struct SyncOptions {
    /// Polling interval in milliseconds.
    pub interval: Millis,
    /// A disabled source is only fetched by an explicit refresh.
    pub enabled: bool,
    pub on_error: Option<ErrorCallback>,
}

impl SyncOptions {
    pub fn every(interval: Millis) -> Self {
        Self {
            interval,
            enabled: true,
            on_error: None,
        }
    }
}

impl std::fmt::Debug for SyncOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncOptions")
            .field("interval", &self.interval)
            .field("enabled", &self.enabled)
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}

/// The delay before retry number `failures` (1-based): 1 s, 2 s, 4 s, … capped at 60 s.
pub fn retry_delay(failures: u32) -> Millis {
    let exp = failures.saturating_sub(1).min(16);
    (RETRY_BASE << exp).min(RETRY_CAP)
}

/// Capped exponential backoff for reconnecting the push stream.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Millis,
    cap: Millis,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Millis, cap: Millis) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The wait before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Millis {
        let delay = self
            .base
            .saturating_mul(1 << self.attempt.min(20))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// Why polling is paused, most deliberate first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseReason {
    AutoSyncOff,
    Offline,
    Hidden,
}

/// The live sync indicator's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indicator {
    /// Push stream connected (pulsing green).
    Live,
    /// Polling at the spec's intervals (amber).
    Polling,
    /// Nothing runs by itself (grey).
    Paused(PauseReason),
    /// The last fetch of some source failed (red).
    Failing,
}

impl Indicator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Polling => "polling",
            Self::Paused(_) => "paused",
            Self::Failing => "failing",
        }
    }
}

/// One row of `getStatus()`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStatus {
    pub key: String,
    /// Polled by itself right now (enabled and not paused).
    pub active: bool,
    pub last_sync: Option<Millis>,
    /// The configured interval.
    pub interval: Millis,
    /// The interval in force (longer while push is live; `None` while paused).
    pub effective_interval: Option<Millis>,
    pub in_flight: bool,
    pub last_error: Option<String>,
    /// How many times the fetcher ran.
    pub fetch_count: u64,
}

/// What `finish` decided.
#[derive(Default)]
pub struct Finished {
    pub rerun: bool,
    report: Option<(ErrorCallback, String, String)>,
}

impl Finished {
    /// Calls the source's `on_error`, if the fetch failed and it has one.
    pub fn report(self) -> bool {
        match self.report {
            Some((callback, key, message)) => {
                callback(&key, &message);
                true
            }
            None => false,
        }
    }
}

/// What `begin` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Run the fetcher now.
    Started,
    /// A fetch is already running: it will run once more when it ends, so the caller's
    /// request is honoured without a second concurrent request.
    Joined,
    /// No such source.
    Unknown,
}

struct Source {
    options: SyncOptions,
    next_due: Millis,
    in_flight: bool,
    rerun: bool,
    last_sync: Option<Millis>,
    last_error: Option<String>,
    failures: u32,
    fetch_count: u64,
}

/// The registry of sources and the state that paces them.
pub struct Registry<C: Clock> {
    clock: C,
    log: Logger,
    sources: BTreeMap<String, Source>,
    visible: bool,
    online: bool,
    auto_sync: bool,
    push_live: bool,
    /// The admin's preference: a hidden tab pauses (`true`) or only slows polling.
    pause_when_hidden: bool,
}

impl<C: Clock> Registry<C> {
    pub fn new(clock: C, log: Logger) -> Self {
        Self {
            clock,
            log,
            sources: BTreeMap::new(),
            visible: true,
            online: true,
            auto_sync: true,
            push_live: false,
            pause_when_hidden: true,
        }
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    pub fn logger(&self) -> &Logger {
        &self.log
    }

    /// Adds (or replaces) a source; it is due at once.
    pub fn register(&mut self, key: &str, options: SyncOptions) {
        let interval = options.interval;
        self.sources.insert(
            key.to_owned(),
            Source {
                options,
                next_due: self.clock.now(),
                in_flight: false,
                rerun: false,
                last_sync: None,
                last_error: None,
                failures: 0,
                fetch_count: 0,
            },
        );
        self.log
            .info(|| format!("[DataSync] Registered {key} with {interval}ms interval"));
    }

    pub fn unregister(&mut self, key: &str) -> bool {
        let removed = self.sources.remove(key).is_some();
        if removed {
            self.log.info(|| format!("[DataSync] Unregistered {key}"));
        }
        removed
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.sources.contains_key(key)
    }

    pub fn keys(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }

    pub fn is_in_flight(&self, key: &str) -> bool {
        self.sources.get(key).is_some_and(|s| s.in_flight)
    }

    pub fn pause_reason(&self) -> Option<PauseReason> {
        if !self.auto_sync {
            Some(PauseReason::AutoSyncOff)
        } else if !self.online {
            Some(PauseReason::Offline)
        } else if !self.visible && self.pause_when_hidden {
            Some(PauseReason::Hidden)
        } else {
            None
        }
    }

    pub fn paused(&self) -> bool {
        self.pause_reason().is_some()
    }

    pub fn auto_sync(&self) -> bool {
        self.auto_sync
    }

    pub fn push_live(&self) -> bool {
        self.push_live
    }

    /// Returns whether this change resumed syncing (the caller then refreshes everything).
    fn set_flag(&mut self, change: impl FnOnce(&mut Self)) -> bool {
        let was_paused = self.paused();
        change(self);
        was_paused && !self.paused()
    }

    /// The page became visible (`true`) or hidden. Hidden pauses polling entirely.
    pub fn set_visible(&mut self, visible: bool) -> bool {
        let was_visible = self.visible;
        let mut resumed = self.set_flag(|r| r.visible = visible);
        if !self.pause_when_hidden {
            // Not paused, only slowed: move the polls to the new pace; coming back still
            // refreshes everything at once.
            self.rearm_all();
            resumed |= visible && !was_visible && !self.paused();
        }
        self.log.debug(|| {
            format!(
                "[DataSync] Page {}",
                if visible { "visible" } else { "hidden" }
            )
        });
        resumed
    }

    pub fn set_online(&mut self, online: bool) -> bool {
        let resumed = self.set_flag(|r| r.online = online);
        self.log.info(|| {
            format!(
                "[DataSync] {}",
                if online {
                    "Back online"
                } else {
                    "Offline: paused"
                }
            )
        });
        resumed
    }

    pub fn set_auto_sync(&mut self, on: bool) -> bool {
        let resumed = self.set_flag(|r| r.auto_sync = on);
        self.log.info(|| {
            format!(
                "[DataSync] Auto-sync {}",
                if on { "enabled" } else { "disabled" }
            )
        });
        resumed
    }

    /// The push stream connected (`true`) or dropped. Each source's next poll moves to its new
    /// pace, counted from its last sync (so a drop polls at once whatever is overdue).
    pub fn set_push_live(&mut self, live: bool) {
        if self.push_live == live {
            return;
        }
        self.push_live = live;
        self.rearm_all();
        self.log.info(|| {
            if live {
                "[DataSync] Push connected: polling slowed to a safety net".into()
            } else {
                "[DataSync] Push unavailable: polling at the normal intervals".into()
            }
        });
    }

    /// Moves every idle source's next poll to the current pace, counted from its last sync.
    fn rearm_all(&mut self) {
        let now = self.clock.now();
        let factor = self.pace_factor();
        for source in self.sources.values_mut() {
            if source.in_flight || source.failures > 0 {
                continue;
            }
            let every = source.options.interval.saturating_mul(factor);
            source.next_due = source.last_sync.map_or(now, |t| t + every);
        }
    }

    /// How much slower than its interval each source polls now: a live push stream makes
    /// polling a safety net, a hidden tab that is not paused slows it.
    fn pace_factor(&self) -> Millis {
        let push = if self.push_live {
            PUSH_SAFETY_FACTOR
        } else {
            1
        };
        let hidden = if self.visible { 1 } else { HIDDEN_SLOW_FACTOR };
        push * hidden
    }

    /// The admin's preference for a hidden tab: pause (`true`) or slow down. Returns whether
    /// this resumed syncing.
    pub fn set_pause_when_hidden(&mut self, pause: bool) -> bool {
        let resumed = self.set_flag(|r| r.pause_when_hidden = pause);
        self.rearm_all();
        resumed
    }

    /// Changes `key`'s interval; its next poll moves to the new pace from its last sync.
    pub fn set_interval(&mut self, key: &str, interval: Millis) -> bool {
        let factor = self.pace_factor();
        let now = self.clock.now();
        let Some(source) = self.sources.get_mut(key) else {
            return false;
        };
        if source.options.interval == interval {
            return false;
        }
        source.options.interval = interval;
        if !source.in_flight && source.failures == 0 {
            source.next_due = source
                .last_sync
                .map_or(now, |t| t + interval.saturating_mul(factor));
        }
        self.log
            .info(|| format!("[DataSync] {key} now syncs every {interval}ms"));
        true
    }

    /// The interval in force for `key`, `None` while paused or disabled.
    pub fn effective_interval(&self, key: &str) -> Option<Millis> {
        let source = self.sources.get(key)?;
        (!self.paused() && source.options.enabled)
            .then(|| source.options.interval.saturating_mul(self.pace_factor()))
    }

    /// Sources whose poll is due now. Empty while paused.
    pub fn due(&self) -> Vec<String> {
        if self.paused() {
            return Vec::new();
        }
        let now = self.clock.now();
        self.sources
            .iter()
            .filter(|(_, s)| s.options.enabled && !s.in_flight && s.next_due <= now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// When the next poll falls due, `None` when nothing will run by itself.
    pub fn next_wake(&self) -> Option<Millis> {
        if self.paused() {
            return None;
        }
        self.sources
            .values()
            .filter(|s| s.options.enabled && !s.in_flight)
            .map(|s| s.next_due)
            .min()
    }

    /// A fetch of `key` is about to run (dedup: at most one per source at a time).
    pub fn begin(&mut self, key: &str) -> Begin {
        match self.sources.get_mut(key) {
            None => Begin::Unknown,
            Some(s) if s.in_flight => {
                s.rerun = true;
                Begin::Joined
            }
            Some(s) => {
                s.in_flight = true;
                s.fetch_count += 1;
                Begin::Started
            }
        }
    }

    /// A fetch of `key` ended. Says whether it must run once more (someone asked for fresh data
    /// while it was in flight) and, after a failure, which `on_error` to call: the caller calls
    /// [`Finished::report`] once it holds no borrow of the registry. Failures are retried after
    /// [`retry_delay`].
    pub fn finish(&mut self, key: &str, result: Result<(), String>) -> Finished {
        let now = self.clock.now();
        let factor = self.pace_factor();
        let Some(source) = self.sources.get_mut(key) else {
            return Finished::default();
        };
        source.in_flight = false;
        let rerun = std::mem::take(&mut source.rerun);
        match result {
            Ok(()) => {
                source.last_sync = Some(now);
                source.last_error = None;
                source.failures = 0;
                source.next_due = now + source.options.interval.saturating_mul(factor);
                self.log.debug(|| format!("[DataSync] Synced {key}"));
                Finished {
                    rerun,
                    report: None,
                }
            }
            Err(message) => {
                source.failures = source.failures.saturating_add(1);
                let delay = retry_delay(source.failures);
                source.next_due = now + delay;
                source.last_error = Some(message.clone());
                let on_error = source.options.on_error.clone();
                self.log.warn(|| {
                    format!("[DataSync] Sync failed for {key}: {message} (retry in {delay}ms)")
                });
                Finished {
                    rerun: false,
                    report: on_error.map(|cb| (cb, key.to_owned(), message)),
                }
            }
        }
    }

    /// Sources to refetch after a change to `resource` arrived by push: those registered and
    /// touched by it; none while paused (resuming refreshes everything anyway).
    pub fn touched_by(&self, resource: &str) -> Vec<String> {
        if self.paused() {
            return Vec::new();
        }
        super::config::sources_touched_by(resource)
            .iter()
            .filter(|k| self.sources.contains_key(**k))
            .map(|k| (*k).to_owned())
            .collect()
    }

    pub fn indicator(&self) -> Indicator {
        if let Some(reason) = self.pause_reason() {
            Indicator::Paused(reason)
        } else if self.sources.values().any(|s| s.last_error.is_some()) {
            Indicator::Failing
        } else if self.push_live {
            Indicator::Live
        } else {
            Indicator::Polling
        }
    }

    /// The most recent successful sync of any source.
    pub fn last_updated(&self) -> Option<Millis> {
        self.sources.values().filter_map(|s| s.last_sync).max()
    }

    pub fn status(&self) -> Vec<SourceStatus> {
        let paused = self.paused();
        self.sources
            .iter()
            .map(|(key, s)| SourceStatus {
                key: key.clone(),
                active: s.options.enabled && !paused,
                last_sync: s.last_sync,
                interval: s.options.interval,
                effective_interval: self.effective_interval(key),
                in_flight: s.in_flight,
                last_error: s.last_error.clone(),
                fetch_count: s.fetch_count,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::sync::clock::ManualClock;
    use crate::sync::log::Level;

    fn registry() -> (Registry<ManualClock>, ManualClock) {
        let clock = ManualClock::at(1_000_000);
        (Registry::new(clock.clone(), Logger::default()), clock)
    }

    /// Runs every due source to a successful end, as the adapter's timer would.
    fn tick(r: &mut Registry<ManualClock>) -> Vec<String> {
        let due = r.due();
        for key in &due {
            assert_eq!(r.begin(key), Begin::Started);
            r.finish(key, Ok(())).report();
        }
        due
    }

    #[test]
    fn a_registered_source_is_due_at_once_then_every_interval() {
        let (mut r, clock) = registry();
        r.register("license-keys", SyncOptions::every(15_000));

        let first = tick(&mut r);
        clock.advance(14_999);
        let early = tick(&mut r);
        clock.advance(1);
        let on_time = tick(&mut r);

        assert_eq!(first, vec!["license-keys"]);
        assert!(early.is_empty());
        assert_eq!(on_time, vec!["license-keys"]);
        assert_eq!(r.status()[0].fetch_count, 2);
    }

    #[test]
    fn registering_logs_the_spec_line() {
        let (log, lines) = Logger::recording(Level::Info);
        let mut r = Registry::new(ManualClock::at(0), log);

        r.register("license-keys", SyncOptions::every(15_000));

        assert_eq!(
            lines.borrow()[0],
            "[DataSync] Registered license-keys with 15000ms interval"
        );
    }

    #[test]
    fn sources_keep_their_own_intervals() {
        let (mut r, clock) = registry();
        r.register("dashboard-stats", SyncOptions::every(30_000));
        r.register("license-keys", SyncOptions::every(15_000));
        tick(&mut r);

        clock.advance(15_000);
        let at_15 = tick(&mut r);
        clock.advance(15_000);
        let at_30 = tick(&mut r);

        assert_eq!(at_15, vec!["license-keys"]);
        assert_eq!(at_30, vec!["dashboard-stats", "license-keys"]);
        assert_eq!(r.next_wake(), Some(clock.now() + 15_000));
    }

    #[test]
    fn a_second_request_while_one_is_in_flight_joins_it_and_reruns_once() {
        let (mut r, _) = registry();
        r.register("license-keys", SyncOptions::every(15_000));

        let first = r.begin("license-keys");
        let second = r.begin("license-keys");
        let third = r.begin("license-keys");
        let rerun = r.finish("license-keys", Ok(())).rerun;

        assert_eq!(first, Begin::Started);
        assert_eq!(second, Begin::Joined);
        assert_eq!(third, Begin::Joined);
        assert!(
            rerun,
            "the joined requests asked for data newer than the running fetch"
        );
        assert_eq!(r.status()[0].fetch_count, 1, "only one request was made");
        assert!(r.due().is_empty(), "an in-flight source is never due twice");
    }

    #[test]
    fn failures_back_off_exponentially_up_to_a_cap_and_reach_on_error() {
        let (mut r, clock) = registry();
        let errors = Rc::new(RefCell::new(Vec::new()));
        let seen = errors.clone();
        r.register(
            "dashboard-stats",
            SyncOptions {
                interval: 30_000,
                enabled: true,
                on_error: Some(Rc::new(move |key: &str, msg: &str| {
                    seen.borrow_mut().push(format!("{key}: {msg}"))
                })),
            },
        );
        let mut delays = Vec::new();

        for _ in 0..8 {
            let start = clock.now();
            r.begin("dashboard-stats");
            r.finish("dashboard-stats", Err("503".into())).report();
            let wake = r.next_wake().unwrap_or_default();
            delays.push(wake - start);
            clock.set(wake);
        }

        assert_eq!(
            delays,
            vec![1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
        assert_eq!(errors.borrow().len(), 8);
        assert_eq!(errors.borrow()[0], "dashboard-stats: 503");
        assert_eq!(r.indicator(), Indicator::Failing);
    }

    #[test]
    fn a_success_after_failures_restores_the_interval_and_keeps_the_last_good_sync() {
        let (mut r, clock) = registry();
        r.register("license-keys", SyncOptions::every(15_000));
        tick(&mut r);
        let good = clock.now();
        clock.advance(15_000);

        r.begin("license-keys");
        r.finish("license-keys", Err("network".into())).report();
        let failing = r.status()[0].clone();
        clock.advance(1_000);
        tick(&mut r);

        assert_eq!(failing.last_sync, Some(good), "last good data stays");
        assert_eq!(failing.last_error.as_deref(), Some("network"));
        assert_eq!(r.status()[0].last_error, None);
        assert_eq!(r.next_wake(), Some(clock.now() + 15_000));
        assert_eq!(r.indicator(), Indicator::Polling);
    }

    #[test]
    fn a_hidden_page_polls_nothing_and_becoming_visible_asks_for_a_full_refresh() {
        let (mut r, clock) = registry();
        r.register("license-keys", SyncOptions::every(15_000));
        tick(&mut r);

        let resumed_on_hide = r.set_visible(false);
        clock.advance(10 * 15_000);
        let due_while_hidden = r.due();
        let wake_while_hidden = r.next_wake();
        let resumed = r.set_visible(true);

        assert!(!resumed_on_hide);
        assert!(due_while_hidden.is_empty());
        assert_eq!(wake_while_hidden, None, "no timer needed while hidden");
        assert!(resumed);
        assert_eq!(r.indicator(), Indicator::Polling);
        assert_eq!(
            r.due(),
            vec!["license-keys"],
            "overdue sources run on return"
        );
    }

    #[test]
    fn offline_and_auto_sync_off_pause_and_resuming_asks_for_a_refresh() {
        let (mut r, _) = registry();
        r.register("license-keys", SyncOptions::every(15_000));

        r.set_online(false);
        let offline = r.indicator();
        let offline_due = r.due();
        let back = r.set_online(true);
        r.set_auto_sync(false);
        let off = r.indicator();
        let status = r.status();
        let on = r.set_auto_sync(true);

        assert_eq!(offline, Indicator::Paused(PauseReason::Offline));
        assert!(offline_due.is_empty());
        assert!(back);
        assert_eq!(off, Indicator::Paused(PauseReason::AutoSyncOff));
        assert!(!status[0].active);
        assert!(on);
    }

    #[test]
    fn live_push_slows_polling_to_a_safety_net_and_a_drop_restores_the_intervals() {
        let (mut r, clock) = registry();
        r.register("license-keys", SyncOptions::every(15_000));
        tick(&mut r);
        let synced = clock.now();

        r.set_push_live(true);
        let live = (r.indicator(), r.next_wake());
        clock.advance(20_000);
        let due_live = r.due();
        r.set_push_live(false);
        let dropped_due = r.due();

        assert_eq!(
            live,
            (Indicator::Live, Some(synced + 15_000 * PUSH_SAFETY_FACTOR))
        );
        assert!(due_live.is_empty());
        assert_eq!(
            dropped_due,
            vec!["license-keys"],
            "an overdue poll runs as soon as push drops"
        );
        assert_eq!(r.effective_interval("license-keys"), Some(15_000));
    }

    #[test]
    fn a_pushed_change_touches_only_the_registered_sources_it_concerns() {
        let (mut r, _) = registry();
        r.register("license-keys", SyncOptions::every(15_000));
        r.register("dashboard-stats", SyncOptions::every(30_000));
        r.register("admin-users", SyncOptions::every(60_000));

        let keys = r.touched_by("license_keys");
        r.set_visible(false);
        let hidden = r.touched_by("license_keys");

        assert_eq!(keys, vec!["license-keys", "dashboard-stats"]);
        assert!(hidden.is_empty());
    }

    #[test]
    fn disabled_sources_only_run_on_request_and_unregistered_ones_vanish() {
        let (mut r, clock) = registry();
        r.register(
            "admin-users",
            SyncOptions {
                enabled: false,
                ..SyncOptions::every(60_000)
            },
        );
        r.register("license-keys", SyncOptions::every(15_000));
        clock.advance(1);

        let due = r.due();
        let manual = r.begin("admin-users");
        r.unregister("license-keys");
        let late = r.finish("license-keys", Ok(())).rerun;

        assert_eq!(due, vec!["license-keys"]);
        assert_eq!(manual, Begin::Started);
        assert!(!late, "a fetch ending after unregister is dropped");
        assert_eq!(r.keys(), vec!["admin-users"]);
        assert_eq!(r.begin("license-keys"), Begin::Unknown);
    }

    #[test]
    fn reconnect_backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(1_000, 30_000);

        let delays: Vec<_> = (0..7).map(|_| b.next_delay()).collect();
        b.reset();

        assert_eq!(
            delays,
            vec![1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]
        );
        assert_eq!(b.next_delay(), 1_000);
    }

    #[test]
    fn a_new_interval_rearms_the_source_from_its_last_sync() {
        let (mut r, clock) = registry();
        r.register("license-keys", SyncOptions::every(15_000));
        tick(&mut r);

        clock.advance(4_000);
        assert!(r.set_interval("license-keys", 5_000));
        assert!(!r.set_interval("license-keys", 5_000));
        assert!(tick(&mut r).is_empty());
        clock.advance(1_000);

        assert_eq!(tick(&mut r), vec!["license-keys"]);
        assert_eq!(r.status()[0].interval, 5_000);
        assert!(!r.set_interval("nope", 1_000));
    }

    #[test]
    fn without_pause_when_hidden_a_hidden_tab_polls_four_times_slower() {
        let (mut r, clock) = registry();
        r.register("license-keys", SyncOptions::every(10_000));
        r.set_pause_when_hidden(false);
        tick(&mut r);

        assert!(!r.set_visible(false));
        assert_eq!(r.indicator(), Indicator::Polling);
        assert_eq!(r.effective_interval("license-keys"), Some(40_000));
        clock.advance(39_999);
        assert!(tick(&mut r).is_empty());
        clock.advance(1);
        assert_eq!(tick(&mut r), vec!["license-keys"]);

        // Visible again: everything refreshes at once and the normal pace returns.
        assert!(r.set_visible(true));
        assert_eq!(r.effective_interval("license-keys"), Some(10_000));
    }

    #[test]
    fn with_pause_when_hidden_a_hidden_tab_polls_nothing() {
        let (mut r, clock) = registry();
        r.register("license-keys", SyncOptions::every(10_000));
        tick(&mut r);

        r.set_visible(false);
        clock.advance(100_000);

        assert!(tick(&mut r).is_empty());
        assert_eq!(r.indicator(), Indicator::Paused(PauseReason::Hidden));
        // Switching the preference off while hidden resumes (slowly).
        assert!(r.set_pause_when_hidden(false));
        assert_eq!(tick(&mut r), vec!["license-keys"]);
    }
}
