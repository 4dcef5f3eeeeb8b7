//! `GET /api/admin/stats`: the dashboard's numbers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyCounts {
    pub total: i64,
    pub active: i64,
    pub suspended: i64,
    pub revoked: i64,
    pub expired: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourlyCount {
    /// The start of the hour (UTC).
    pub hour: DateTime<Utc>,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardStats {
    pub keys: KeyCounts,
    pub customers: i64,
    pub admins: i64,
    pub validations_24h: i64,
    pub validations_total: i64,
    pub downloads_24h: i64,
    pub downloads_total: i64,
    /// 24 entries, oldest first, the last one being the current hour.
    pub validations_hourly: Vec<HourlyCount>,
}
