//! Rows as diesel reads and writes them. Wire shapes live in `keysync-shared`; these stay inside
//! the server.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{admin_users, audit_logs, changes};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = admin_users)]
pub struct AdminUserRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: String,
    pub last_login_at: Option<NaiveDateTime>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = admin_users)]
pub struct NewAdminUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Who did something, as recorded in `audit_logs` and the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Admin { id: i64, email: String },
    LicenseClient,
    Webhook,
    System,
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Admin { .. } => "admin",
            Self::LicenseClient => "license_client",
            Self::Webhook => "webhook",
            Self::System => "system",
        }
    }

    pub fn id(&self) -> Option<i64> {
        match self {
            Self::Admin { id, .. } => Some(*id),
            _ => None,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Admin { email, .. } => email.clone(),
            other => other.kind().to_owned(),
        }
    }
}

/// `None` is stored as NULL (not "the column's default", which is NULL too) so the INSERT has one
/// shape and PostgreSQL can keep it prepared: it runs for every license validation.
#[derive(Debug, Insertable)]
#[diesel(table_name = audit_logs, treat_none_as_default_value = false)]
pub struct NewAuditLog {
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_label: String,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub summary: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = changes)]
pub struct ChangeRow {
    pub cursor: i64,
    pub resource: String,
    pub resource_id: i64,
    pub op: String,
    pub version: i64,
    pub actor: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = changes)]
pub struct NewChange<'a> {
    pub resource: &'a str,
    pub resource_id: i64,
    pub op: &'a str,
    pub version: i64,
    pub actor: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}
