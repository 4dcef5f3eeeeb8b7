//! Sync analytics: the figures browsers report about their sync (fetch times, bytes, 304s,
//! errors, push uptime), aggregated in memory per server instance.
//!
//! Policy: per instance, like any Prometheus target: each instance exposes what it received at
//! `GET /metrics`, and a scraper sums instances. Memory is bounded: fetch times go into fixed
//! histogram buckets (no raw samples are kept), and at most [`MAX_SOURCES`] distinct source names
//! are tracked; reports about further names are counted under [`OVERFLOW_SOURCE`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use keysync_shared::sync_metrics::{MAX_DURATIONS, MAX_SAMPLES, MAX_SOURCE_LEN};
use keysync_shared::{PushHealth, SourceHealth, SyncHealth, SyncMetricsBatch};

use crate::error::ApiError;

/// Upper bounds of the fetch-time histogram buckets, in milliseconds (`+Inf` is implied).
pub const BUCKETS_MS: [f64; 12] = [
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0, 30_000.0,
];
pub const MAX_SOURCES: usize = 256;
pub const OVERFLOW_SOURCE: &str = "_other";

#[derive(Debug, Clone, Default)]
struct SourceTotals {
    fetches: u64,
    not_modified: u64,
    errors: u64,
    bytes: u64,
    /// Counts per bucket of [`BUCKETS_MS`], plus one for `+Inf`; not cumulative.
    buckets: [u64; BUCKETS_MS.len() + 1],
    duration_sum_ms: f64,
    duration_count: u64,
}

impl SourceTotals {
    fn observe(&mut self, ms: f64) {
        let slot = BUCKETS_MS
            .iter()
            .position(|upper| ms <= *upper)
            .unwrap_or(BUCKETS_MS.len());
        self.buckets[slot] += 1;
        self.duration_sum_ms += ms;
        self.duration_count += 1;
    }

    /// The `q` quantile, interpolated linearly inside its bucket (as Prometheus'
    /// `histogram_quantile` does); the `+Inf` bucket answers its lower bound.
    fn quantile(&self, q: f64) -> Option<f64> {
        if self.duration_count == 0 {
            return None;
        }
        let rank = q * self.duration_count as f64;
        let mut seen = 0.0;
        for (i, count) in self.buckets.iter().enumerate() {
            let count = *count as f64;
            if count > 0.0 && seen + count >= rank {
                let lower = if i == 0 { 0.0 } else { BUCKETS_MS[i - 1] };
                let Some(upper) = BUCKETS_MS.get(i) else {
                    return Some(lower);
                };
                return Some(lower + (upper - lower) * ((rank - seen) / count).clamp(0.0, 1.0));
            }
            seen += count;
        }
        BUCKETS_MS.last().copied()
    }
}

#[derive(Debug, Default)]
struct Totals {
    sources: BTreeMap<String, SourceTotals>,
    push: PushHealth,
}

/// This instance's aggregate of every report since it started.
#[derive(Debug)]
pub struct SyncAnalytics {
    since: DateTime<Utc>,
    totals: Mutex<Totals>,
}

impl Default for SyncAnalytics {
    fn default() -> Self {
        Self {
            since: Utc::now(),
            totals: Mutex::new(Totals::default()),
        }
    }
}

/// Checks a report against the limits of the API; the first broken rule is the error.
pub fn check_batch(batch: &SyncMetricsBatch) -> Result<(), ApiError> {
    if batch.samples.len() > MAX_SAMPLES {
        return Err(ApiError::unprocessable(
            "samples",
            format!("at most {MAX_SAMPLES} samples per report"),
        ));
    }
    for (i, sample) in batch.samples.iter().enumerate() {
        let name_ok = !sample.source.is_empty()
            && sample.source.len() <= MAX_SOURCE_LEN
            && sample
                .source
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if !name_ok {
            return Err(ApiError::unprocessable(
                format!("samples[{i}].source"),
                format!("1 to {MAX_SOURCE_LEN} characters of A-Z, a-z, 0-9, _ . : -"),
            ));
        }
        if sample.durations_ms.len() > MAX_DURATIONS {
            return Err(ApiError::unprocessable(
                format!("samples[{i}].durations_ms"),
                format!("at most {MAX_DURATIONS} durations per sample"),
            ));
        }
        if sample
            .durations_ms
            .iter()
            .any(|ms| !ms.is_finite() || *ms < 0.0)
        {
            return Err(ApiError::unprocessable(
                format!("samples[{i}].durations_ms"),
                "durations must be finite and not negative",
            ));
        }
        if sample.not_modified > sample.fetches {
            return Err(ApiError::unprocessable(
                format!("samples[{i}].not_modified"),
                "cannot exceed fetches",
            ));
        }
    }
    if let Some(push) = &batch.push {
        if push.connected_ms > push.window_ms {
            return Err(ApiError::unprocessable(
                "push.connected_ms",
                "cannot exceed window_ms",
            ));
        }
    }
    Ok(())
}

impl SyncAnalytics {
    /// Adds a report checked by [`check_batch`]; returns how many samples it held.
    pub fn record(&self, batch: &SyncMetricsBatch) -> usize {
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        for sample in &batch.samples {
            let known = totals.sources.contains_key(&sample.source);
            let name = if known || totals.sources.len() < MAX_SOURCES {
                sample.source.as_str()
            } else {
                OVERFLOW_SOURCE
            };
            let entry = totals.sources.entry(name.to_owned()).or_default();
            entry.fetches += u64::from(sample.fetches);
            entry.not_modified += u64::from(sample.not_modified);
            entry.errors += u64::from(sample.errors);
            entry.bytes = entry.bytes.saturating_add(sample.bytes);
            for ms in &sample.durations_ms {
                entry.observe(*ms);
            }
        }
        if let Some(push) = &batch.push {
            totals.push.connected_ms = totals.push.connected_ms.saturating_add(push.connected_ms);
            totals.push.window_ms = totals.push.window_ms.saturating_add(push.window_ms);
            totals.push.reconnects += u64::from(push.reconnects);
        }
        batch.samples.len()
    }

    pub fn health(&self) -> SyncHealth {
        let totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let ratio = |part: u64, whole: u64| {
            if whole == 0 {
                0.0
            } else {
                part as f64 / whole as f64
            }
        };
        SyncHealth {
            since: self.since,
            sources: totals
                .sources
                .iter()
                .map(|(name, t)| SourceHealth {
                    source: name.clone(),
                    fetches: t.fetches,
                    not_modified: t.not_modified,
                    errors: t.errors,
                    bytes: t.bytes,
                    error_rate: ratio(t.errors, t.fetches + t.errors),
                    not_modified_ratio: ratio(t.not_modified, t.fetches),
                    p50_ms: t.quantile(0.50),
                    p95_ms: t.quantile(0.95),
                })
                .collect(),
            push: PushHealth {
                connected_ratio: ratio(totals.push.connected_ms, totals.push.window_ms),
                ..totals.push
            },
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of the totals, plus `extra` gauges.
    pub fn prometheus(&self, subscribers: usize) -> String {
        let totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::with_capacity(1024 + totals.sources.len() * 1024);
        let mut counter = |name: &str, help: &str, value: &dyn Fn(&SourceTotals) -> u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (source, t) in &totals.sources {
                let _ = writeln!(out, "{name}{{source=\"{source}\"}} {}", value(t));
            }
        };
        counter(
            "keysync_sync_fetches_total",
            "Completed fetches reported by browsers, 304s included.",
            &|t| t.fetches,
        );
        counter(
            "keysync_sync_not_modified_total",
            "Fetches answered 304 Not Modified.",
            &|t| t.not_modified,
        );
        counter(
            "keysync_sync_errors_total",
            "Failed fetches reported by browsers.",
            &|t| t.errors,
        );
        counter(
            "keysync_sync_bytes_total",
            "Response body bytes browsers received.",
            &|t| t.bytes,
        );
        let name = "keysync_sync_fetch_duration_ms";
        let _ = writeln!(
            out,
            "# HELP {name} Fetch time reported by browsers, in milliseconds.\n# TYPE {name} histogram"
        );
        for (source, t) in &totals.sources {
            let mut cumulative = 0;
            for (i, count) in t.buckets.iter().enumerate() {
                cumulative += count;
                let le = BUCKETS_MS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "{name}_bucket{{source=\"{source}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_sum{{source=\"{source}\"}} {}",
                t.duration_sum_ms
            );
            let _ = writeln!(
                out,
                "{name}_count{{source=\"{source}\"}} {}",
                t.duration_count
            );
        }
        let push = &totals.push;
        for (name, help, value) in [
            (
                "keysync_sync_push_connected_ms_total",
                "Time browsers reported their push stream connected, in milliseconds.",
                push.connected_ms,
            ),
            (
                "keysync_sync_push_window_ms_total",
                "Time covered by browsers' push reports, in milliseconds.",
                push.window_ms,
            ),
            (
                "keysync_sync_push_reconnects_total",
                "Push stream reconnections browsers reported.",
                push.reconnects,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP keysync_sse_subscribers Open server-sent event streams on this instance.\n# TYPE keysync_sse_subscribers gauge\nkeysync_sse_subscribers {subscribers}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use keysync_shared::{PushSample, SourceSample};

    use super::*;

    fn sample(source: &str, durations: &[f64]) -> SourceSample {
        SourceSample {
            source: source.into(),
            fetches: durations.len() as u32,
            not_modified: 0,
            errors: 0,
            bytes: 100,
            durations_ms: durations.to_vec(),
        }
    }

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let analytics = SyncAnalytics::default();
        // 10 fetches in (5, 10] ms and 10 in (100, 250] ms.
        let mut durations = vec![7.0; 10];
        durations.extend([200.0; 10]);
        analytics.record(&SyncMetricsBatch {
            samples: vec![sample("keys", &durations)],
            push: None,
        });

        let health = analytics.health();
        let keys = &health.sources[0];
        assert_eq!(keys.fetches, 20);
        assert_eq!(keys.p50_ms, Some(10.0));
        // Rank 19 of 20: 9 of the 10 in the (100, 250] bucket.
        assert_eq!(keys.p95_ms, Some(100.0 + 150.0 * 0.9));
    }

    #[test]
    fn ratios_and_push_uptime_add_up_across_reports() {
        let analytics = SyncAnalytics::default();
        for _ in 0..2 {
            analytics.record(&SyncMetricsBatch {
                samples: vec![SourceSample {
                    not_modified: 3,
                    errors: 1,
                    ..sample("stats", &[1.0, 2.0, 3.0, 4.0])
                }],
                push: Some(PushSample {
                    connected_ms: 45_000,
                    window_ms: 60_000,
                    reconnects: 1,
                }),
            });
        }

        let health = analytics.health();
        assert_eq!(health.sources[0].not_modified_ratio, 0.75);
        assert_eq!(health.sources[0].error_rate, 2.0 / 10.0);
        assert_eq!(health.push.connected_ratio, 0.75);
        assert_eq!(health.push.reconnects, 2);
    }

    #[test]
    fn source_names_beyond_the_limit_are_counted_together() {
        let analytics = SyncAnalytics::default();
        for i in 0..MAX_SOURCES + 10 {
            analytics.record(&SyncMetricsBatch {
                samples: vec![sample(&format!("s{i}"), &[1.0])],
                push: None,
            });
        }

        let health = analytics.health();
        assert_eq!(health.sources.len(), MAX_SOURCES + 1);
        let other = health
            .sources
            .iter()
            .find(|s| s.source == OVERFLOW_SOURCE)
            .expect("an overflow entry");
        assert_eq!(other.fetches, 10);
    }

    #[test]
    fn the_exposition_has_cumulative_buckets_and_every_family() {
        let analytics = SyncAnalytics::default();
        analytics.record(&SyncMetricsBatch {
            samples: vec![sample("license-keys", &[3.0, 30.0, 40_000.0])],
            push: None,
        });

        let text = analytics.prometheus(7);

        assert!(text.contains("keysync_sync_fetches_total{source=\"license-keys\"} 3\n"));
        assert!(text.contains(
            "keysync_sync_fetch_duration_ms_bucket{source=\"license-keys\",le=\"5\"} 1\n"
        ));
        assert!(text.contains(
            "keysync_sync_fetch_duration_ms_bucket{source=\"license-keys\",le=\"50\"} 2\n"
        ));
        assert!(text.contains(
            "keysync_sync_fetch_duration_ms_bucket{source=\"license-keys\",le=\"+Inf\"} 3\n"
        ));
        assert!(text.contains("keysync_sync_fetch_duration_ms_count{source=\"license-keys\"} 3\n"));
        assert!(text.contains("keysync_sse_subscribers 7\n"));
    }

    #[test]
    fn reports_breaking_the_limits_name_the_field() {
        let bad_name = SyncMetricsBatch {
            samples: vec![sample("has space", &[1.0])],
            push: None,
        };
        let negative = SyncMetricsBatch {
            samples: vec![sample("ok", &[-1.0])],
            push: None,
        };
        let too_connected = SyncMetricsBatch {
            samples: vec![],
            push: Some(PushSample {
                connected_ms: 2,
                window_ms: 1,
                reconnects: 0,
            }),
        };

        for (batch, field) in [
            (bad_name, "samples[0].source"),
            (negative, "samples[0].durations_ms"),
            (too_connected, "push.connected_ms"),
        ] {
            match check_batch(&batch) {
                Err(ApiError::Unprocessable { field: got, .. }) => assert_eq!(got, field),
                other => panic!("expected 422 on {field}, got {other:?}"),
            }
        }
    }
}
