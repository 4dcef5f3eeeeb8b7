//! License keys as the admin API shows them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A key's state. `expired` is reported for an active key whose `expires_at` has passed, as well
/// as for keys set to it explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Suspended,
    Revoked,
    Expired,
}

impl KeyStatus {
    pub const ALL: [KeyStatus; 4] = [
        KeyStatus::Active,
        KeyStatus::Suspended,
        KeyStatus::Revoked,
        KeyStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseKeyView {
    pub id: i64,
    pub key: String,
    pub status: KeyStatus,
    pub customer_id: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_activations: Option<i32>,
    pub activation_count: i32,
    pub validation_count: i64,
    pub download_count: i64,
    pub last_used: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub notes: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /api/admin/keys`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[serde(default)]
    pub customer_id: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub max_activations: Option<i32>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// `POST /api/admin/keys/batch`: every part optional, all applied in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBatch {
    #[serde(default)]
    pub create: Option<BatchCreate>,
    #[serde(default)]
    pub revoke: Vec<i64>,
    #[serde(default)]
    pub suspend: Vec<i64>,
    #[serde(default)]
    pub delete: Vec<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchCreate {
    pub count: u32,
    #[serde(default)]
    pub customer_id: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub max_activations: Option<i32>,
    #[serde(default)]
    pub notes: Option<String>,
}

impl BatchCreate {
    /// The single-key request each created key is made from.
    pub fn template(&self) -> CreateKey {
        CreateKey {
            customer_id: self.customer_id,
            expires_at: self.expires_at,
            max_activations: self.max_activations,
            notes: self.notes.clone(),
        }
    }
}

/// What a batch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyBatchResult {
    pub created: Vec<LicenseKeyView>,
    pub revoked: Vec<i64>,
    pub suspended: Vec<i64>,
    pub deleted: Vec<i64>,
}

/// Why one item of a refused batch could not be applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchItemError {
    pub op: String,
    pub id: Option<i64>,
    pub code: String,
    pub message: String,
}

/// `PATCH /api/admin/keys/{id}`: only the fields present change; `null` clears a nullable one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<KeyStatus>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::patch::double_option"
    )]
    pub customer_id: Option<Option<i64>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::patch::double_option"
    )]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::patch::double_option"
    )]
    pub max_activations: Option<Option<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}
