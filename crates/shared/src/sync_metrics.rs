//! Sync analytics: what browsers report about their fetches and push connection
//! (`POST /api/admin/sync/metrics`) and the aggregate the server answers with
//! (`GET /api/admin/sync/metrics`; the same figures are at `GET /metrics` for Prometheus).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Limits on one report, so a browser cannot make the server hold unbounded data.
pub const MAX_SAMPLES: usize = 64;
pub const MAX_DURATIONS: usize = 1_000;
pub const MAX_SOURCE_LEN: usize = 64;

/// One report from a browser: what happened since its previous report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncMetricsBatch {
    pub samples: Vec<SourceSample>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSample>,
}

/// Fetches of one data source (a sync-manager key such as `license-keys`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSample {
    pub source: String,
    /// Completed fetches, 304s included.
    pub fetches: u32,
    /// Fetches answered `304 Not Modified`.
    pub not_modified: u32,
    pub errors: u32,
    /// Response body bytes received.
    pub bytes: u64,
    /// Duration of each completed fetch, in milliseconds.
    #[serde(default)]
    pub durations_ms: Vec<f64>,
}

/// The push (server-sent events) connection over the report's window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSample {
    pub connected_ms: u64,
    pub window_ms: u64,
    pub reconnects: u32,
}

/// `POST /api/admin/sync/metrics` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsAccepted {
    pub accepted: usize,
}

/// `GET /api/admin/sync/metrics`: every report this server instance received since `since`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncHealth {
    pub since: DateTime<Utc>,
    pub sources: Vec<SourceHealth>,
    pub push: PushHealth,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceHealth {
    pub source: String,
    pub fetches: u64,
    pub not_modified: u64,
    pub errors: u64,
    pub bytes: u64,
    /// `errors / (fetches + errors)`; 0 when nothing was fetched.
    pub error_rate: f64,
    /// `not_modified / fetches`; 0 when nothing was fetched.
    pub not_modified_ratio: f64,
    /// Median and 95th percentile fetch time, estimated from histogram buckets; `null` before
    /// the first timed fetch.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PushHealth {
    pub connected_ms: u64,
    pub window_ms: u64,
    /// `connected_ms / window_ms`; 0 before the first report.
    pub connected_ratio: f64,
    pub reconnects: u64,
}
