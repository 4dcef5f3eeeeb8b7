//! The bookkeeping every mutation does inside its transaction: one `audit_logs` entry and one
//! change-feed entry. Call [`record`] from within `Store::write_tx`, after the row is written, so
//! the row, its audit entry and its change entry commit together or not at all.

use diesel::result::QueryResult;
use serde_json::Value;

use crate::db::models::Actor;
use crate::db::store::AuditEntry;
use crate::db::Store;
use crate::http::RequestMeta;

/// What happened to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Created,
    Updated,
    Deleted,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }
}

/// One mutation, described for the audit log and the change feed.
pub struct Recorded<'a> {
    /// `license_key.created`, `customer.deleted`, ...
    pub action: &'a str,
    /// The change feed's resource name: `license_keys`, `customers`, `admin_users`.
    pub resource: &'a str,
    pub id: i64,
    pub op: Op,
    /// The row's version after the mutation (for a deletion, one past its last version).
    pub version: i64,
    /// Before/after summary for the audit log.
    pub summary: Value,
}

/// Writes the audit entry and the change entry of `what`; returns the change cursor.
pub fn record<S: Store>(
    tx: &mut S,
    actor: &Actor,
    meta: &RequestMeta,
    what: Recorded<'_>,
) -> QueryResult<i64> {
    let target_kind = what.resource.trim_end_matches('s').to_owned();
    tx.append_audit(
        actor,
        AuditEntry {
            action: what.action.to_owned(),
            target_kind: Some(target_kind),
            target_id: Some(what.id.to_string()),
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            summary: Some(what.summary),
        },
    )?;
    tx.append_change(
        actor,
        what.resource,
        what.id,
        what.op.as_str(),
        what.version,
    )
}
