//! The change feed as clients see it: `GET /api/admin/sync` and the server-sent events of
//! `GET /api/admin/events`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{AuditLogView, CustomerView, LicenseKeyView};

/// One change-feed entry. `cursor` increases in commit order; `data` is the resource as it is
/// now (`null` once deleted) in `/sync` answers and absent from push events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub cursor: i64,
    /// `license_keys`, `customers`, `admin_users`, `webhooks`, ...
    pub resource: String,
    /// `created`, `updated` or `deleted`.
    pub op: String,
    pub id: i64,
    pub version: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// `GET /api/admin/sync?since=…`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub changes: Vec<Change>,
    /// Current state of the keys touched by `changes` (deleted ones are absent).
    pub keys: Vec<LicenseKeyView>,
    /// Current state of the customers touched by `changes`.
    pub customers: Vec<CustomerView>,
    /// Audit entries written after `since`, newest first (at most 100).
    pub activity: Vec<AuditLogView>,
    /// Where to resume: pass it back as `since`.
    pub next: String,
    pub has_more: bool,
}

/// `POST /api/admin/sync`: an event from a CI/CD system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    pub event: String,
    #[serde(default)]
    pub data: Value,
}
