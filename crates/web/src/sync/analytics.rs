//! Sync analytics: what each source's fetches cost (durations, bytes, 304s, errors) and how
//! long the push stream was connected, gathered in the page and sent to the server in batches
//! (`POST /api/admin/sync/metrics`, see docs/api.md).
//!
//! Plain Rust with an injected clock (tested natively); the browser side (the batch timer,
//! `pagehide` + `sendBeacon`) is in `sync::reporter`.

use std::collections::BTreeMap;

use super::clock::{Clock, Millis};

pub use keysync_shared::sync_metrics::{MAX_DURATIONS, MAX_SAMPLES};
pub use keysync_shared::{PushSample, SourceSample, SyncMetricsBatch as MetricsBatch};

/// How often a batch is sent.
pub const BATCH_INTERVAL: Millis = 60_000;

/// What one fetch did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FetchResult {
    /// 2xx with `bytes` of body.
    Body { bytes: u64 },
    /// 304: the cached copy is still current.
    NotModified,
    /// A network failure or an error status.
    Error,
}

/// The source name of a cache key (`license-keys?limit=20` → `license-keys`), kept to what the
/// server accepts.
pub fn source_of(cache_key: &str) -> String {
    let name = cache_key.split('?').next().unwrap_or(cache_key);
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
        .take(64)
        .collect();
    if clean.is_empty() {
        "unknown".into()
    } else {
        clean
    }
}

/// The recorder.
pub struct Analytics<C: Clock> {
    clock: C,
    sources: BTreeMap<String, SourceSample>,
    /// When the current window (since the last batch) started.
    window_start: Millis,
    /// Since when the push stream is connected, if it is.
    push_since: Option<Millis>,
    push_connected: Millis,
    reconnects: u32,
    /// Whether the stream was ever connected (a later connection is a reconnect).
    push_seen: bool,
    /// Whether push is part of this page's life at all (no push figures otherwise).
    push_used: bool,
}

impl<C: Clock> Analytics<C> {
    pub fn new(clock: C) -> Self {
        let now = clock.now();
        Self {
            clock,
            sources: BTreeMap::new(),
            window_start: now,
            push_since: None,
            push_connected: 0,
            reconnects: 0,
            push_seen: false,
            push_used: false,
        }
    }

    pub fn record_fetch(&mut self, source: &str, duration_ms: f64, result: FetchResult) {
        let sample = self
            .sources
            .entry(source.to_owned())
            .or_insert_with(|| SourceSample {
                source: source.to_owned(),
                ..SourceSample::default()
            });
        sample.fetches = sample.fetches.saturating_add(1);
        match result {
            FetchResult::Body { bytes } => sample.bytes = sample.bytes.saturating_add(bytes),
            FetchResult::NotModified => sample.not_modified = sample.not_modified.saturating_add(1),
            FetchResult::Error => sample.errors = sample.errors.saturating_add(1),
        }
        if duration_ms.is_finite()
            && duration_ms >= 0.0
            && sample.durations_ms.len() < MAX_DURATIONS
        {
            sample.durations_ms.push(duration_ms);
        }
    }

    /// The push stream connected (`true`) or dropped/closed.
    pub fn push_state(&mut self, live: bool) {
        let now = self.clock.now();
        self.push_used = true;
        match (live, self.push_since) {
            (true, None) => {
                if self.push_seen {
                    self.reconnects = self.reconnects.saturating_add(1);
                }
                self.push_seen = true;
                self.push_since = Some(now);
            }
            (false, Some(since)) => {
                self.push_connected += now.saturating_sub(since);
                self.push_since = None;
            }
            _ => {}
        }
    }

    /// Whether there is anything to send.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && !self.push_used
    }

    /// The figures since the last batch, and a new window starts. `None` when there is nothing
    /// to report.
    pub fn take_batch(&mut self) -> Option<MetricsBatch> {
        let now = self.clock.now();
        if self.is_empty() {
            return None;
        }
        let mut connected = self.push_connected;
        if let Some(since) = self.push_since {
            connected += now.saturating_sub(since);
            self.push_since = Some(now);
        }
        let push = self.push_used.then(|| PushSample {
            connected_ms: connected,
            window_ms: now.saturating_sub(self.window_start),
            reconnects: self.reconnects,
        });
        let samples: Vec<_> = std::mem::take(&mut self.sources)
            .into_values()
            .take(MAX_SAMPLES)
            .collect();
        self.window_start = now;
        self.push_connected = 0;
        self.reconnects = 0;
        // Push stays "used" only while connected; a closed stream reports nothing more.
        self.push_used = self.push_since.is_some();
        Some(MetricsBatch { samples, push })
    }

    /// Puts a batch that could not be sent back, so its figures go out with the next one.
    pub fn restore(&mut self, batch: MetricsBatch) {
        for sample in batch.samples {
            let entry = self
                .sources
                .entry(sample.source.clone())
                .or_insert_with(|| SourceSample {
                    source: sample.source.clone(),
                    ..SourceSample::default()
                });
            entry.fetches = entry.fetches.saturating_add(sample.fetches);
            entry.not_modified = entry.not_modified.saturating_add(sample.not_modified);
            entry.errors = entry.errors.saturating_add(sample.errors);
            entry.bytes = entry.bytes.saturating_add(sample.bytes);
            let room = MAX_DURATIONS.saturating_sub(entry.durations_ms.len());
            entry
                .durations_ms
                .extend(sample.durations_ms.into_iter().take(room));
        }
        if let Some(push) = batch.push {
            self.push_used = true;
            self.push_connected += push.connected_ms;
            self.reconnects = self.reconnects.saturating_add(push.reconnects);
            self.window_start = self.window_start.saturating_sub(push.window_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::clock::ManualClock;

    #[test]
    fn fetches_add_up_per_source() {
        let clock = ManualClock::at(1_000);
        let mut a = Analytics::new(clock.clone());

        a.record_fetch("license-keys", 12.5, FetchResult::Body { bytes: 5000 });
        a.record_fetch("license-keys", 3.0, FetchResult::NotModified);
        a.record_fetch("license-keys", 40.0, FetchResult::Error);
        a.record_fetch("dashboard-stats", 2.0, FetchResult::NotModified);
        clock.advance(60_000);
        let batch = a.take_batch().expect("a batch");

        assert_eq!(batch.push, None);
        assert_eq!(
            batch.samples,
            vec![
                SourceSample {
                    source: "dashboard-stats".into(),
                    fetches: 1,
                    not_modified: 1,
                    errors: 0,
                    bytes: 0,
                    durations_ms: vec![2.0],
                },
                SourceSample {
                    source: "license-keys".into(),
                    fetches: 3,
                    not_modified: 1,
                    errors: 1,
                    bytes: 5000,
                    durations_ms: vec![12.5, 3.0, 40.0],
                },
            ]
        );
    }

    #[test]
    fn a_batch_starts_a_new_window() {
        let clock = ManualClock::at(0);
        let mut a = Analytics::new(clock.clone());
        a.record_fetch("releases", 1.0, FetchResult::Body { bytes: 10 });

        assert!(a.take_batch().is_some());
        assert_eq!(a.take_batch(), None);
    }

    #[test]
    fn push_connected_time_counts_only_while_connected() {
        let clock = ManualClock::at(0);
        let mut a = Analytics::new(clock.clone());

        clock.advance(1_000);
        a.push_state(true);
        clock.advance(20_000);
        a.push_state(false);
        clock.advance(5_000);
        a.push_state(true);
        clock.advance(34_000);
        let batch = a.take_batch().expect("a batch");

        assert_eq!(
            batch.push,
            Some(PushSample {
                connected_ms: 54_000,
                window_ms: 60_000,
                reconnects: 1,
            })
        );

        // Still connected: the next window counts from the cut.
        clock.advance(10_000);
        let next = a.take_batch().expect("a second batch");
        assert_eq!(
            next.push,
            Some(PushSample {
                connected_ms: 10_000,
                window_ms: 10_000,
                reconnects: 0,
            })
        );
    }

    #[test]
    fn an_unsent_batch_goes_out_with_the_next_one() {
        let clock = ManualClock::at(0);
        let mut a = Analytics::new(clock.clone());
        a.record_fetch("license-keys", 5.0, FetchResult::Body { bytes: 100 });
        clock.advance(1_000);
        let failed = a.take_batch().expect("a batch");

        a.record_fetch("license-keys", 7.0, FetchResult::NotModified);
        a.restore(failed);
        clock.advance(1_000);
        let batch = a.take_batch().expect("a batch");

        assert_eq!(batch.samples.len(), 1);
        assert_eq!(batch.samples[0].fetches, 2);
        assert_eq!(batch.samples[0].bytes, 100);
        assert_eq!(batch.samples[0].not_modified, 1);
        assert_eq!(batch.samples[0].durations_ms, vec![7.0, 5.0]);
    }

    #[test]
    fn durations_are_capped_and_bad_ones_dropped() {
        let clock = ManualClock::at(0);
        let mut a = Analytics::new(clock.clone());
        for _ in 0..(MAX_DURATIONS + 5) {
            a.record_fetch("x", 1.0, FetchResult::NotModified);
        }
        a.record_fetch("y", f64::NAN, FetchResult::Error);
        clock.advance(1);
        let batch = a.take_batch().expect("a batch");

        assert_eq!(batch.samples[0].durations_ms.len(), MAX_DURATIONS);
        assert_eq!(batch.samples[0].fetches as usize, MAX_DURATIONS + 5);
        assert!(batch.samples[1].durations_ms.is_empty());
    }

    #[test]
    fn source_names_come_from_cache_keys_and_fit_the_servers_rules() {
        assert_eq!(source_of("license-keys?limit=20&sort=key"), "license-keys");
        assert_eq!(source_of("dashboard-stats"), "dashboard-stats");
        assert_eq!(source_of("a b/c"), "abc");
        assert_eq!(source_of("??"), "unknown");
    }

    #[test]
    fn the_batch_serialises_to_the_wire_shape() {
        let batch = MetricsBatch {
            samples: vec![SourceSample {
                source: "license-keys".into(),
                fetches: 1,
                not_modified: 0,
                errors: 0,
                bytes: 3,
                durations_ms: vec![1.5],
            }],
            push: None,
        };

        assert_eq!(
            serde_json::to_string(&batch).unwrap(),
            r#"{"samples":[{"source":"license-keys","fetches":1,"not_modified":0,"errors":0,"bytes":3,"durations_ms":[1.5]}]}"#
        );
    }
}
