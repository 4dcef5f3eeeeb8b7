//! The license-client API: what customer software sends to validate or release a key, and the
//! signed answer it gets back.
//!
//! The answer's `payload` is a JSON document serialised once by the server. The server answers
//! the validations it commits together in one batch and signs them together: their payloads are
//! the leaves of a Merkle tree, and `signature` (Ed25519, base64) is over that tree's root. Each
//! answer carries the `proof` that ties its own payload to the root. A client hashes the bytes
//! of `payload` as received, folds in the proof's hashes, verifies the signature over the root,
//! and only then parses `payload` into [`SignedPayload`]; it never re-serialises anything.
//!
//! The tree, with SHA-256 and the two prefixes of RFC 6962 so that a leaf can never pass for an
//! inner node:
//!
//! - a leaf is `SHA-256(0x00 || payload)`;
//! - an inner node is `SHA-256(0x01 || left || right)`; a node without a sibling on its level
//!   moves up unchanged;
//! - the signed message is [`BATCH_ROOT_CONTEXT`] followed by the root's 32 bytes.
//!
//! A batch of one has an empty proof: its root is its leaf.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::KeyStatus;

/// What precedes a batch root in the message the server signs.
pub const BATCH_ROOT_CONTEXT: &[u8] = b"keysync license batch v1\n";

/// `POST /api/validate-license`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidateLicenseRequest {
    pub key: String,
    /// The machine's fingerprint; required for keys limited to a number of machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The client software's version, kept in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The outcome of a validation. Every outcome is an HTTP 200; only `VALID` is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValidationCode {
    Valid,
    NotFound,
    Suspended,
    Revoked,
    Expired,
    /// The key is limited to a number of machines and the request named none.
    FingerprintRequired,
    /// Every seat of the key is taken by other machines.
    TooManyActivations,
}

impl ValidationCode {
    pub const ALL: [ValidationCode; 7] = [
        ValidationCode::Valid,
        ValidationCode::NotFound,
        ValidationCode::Suspended,
        ValidationCode::Revoked,
        ValidationCode::Expired,
        ValidationCode::FingerprintRequired,
        ValidationCode::TooManyActivations,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::NotFound => "NOT_FOUND",
            Self::Suspended => "SUSPENDED",
            Self::Revoked => "REVOKED",
            Self::Expired => "EXPIRED",
            Self::FingerprintRequired => "FINGERPRINT_REQUIRED",
            Self::TooManyActivations => "TOO_MANY_ACTIVATIONS",
        }
    }

    pub fn is_valid(self) -> bool {
        self == Self::Valid
    }

    /// A sentence for people, sent as `detail`.
    pub fn detail(self) -> &'static str {
        match self {
            Self::Valid => "the license key is valid",
            Self::NotFound => "no such license key",
            Self::Suspended => "the license key is suspended",
            Self::Revoked => "the license key has been revoked",
            Self::Expired => "the license key has expired",
            Self::FingerprintRequired => {
                "this license key is limited to a number of machines: send the machine's fingerprint"
            }
            Self::TooManyActivations => {
                "every seat of this license key is taken; deactivate another machine first"
            }
        }
    }
}

/// What a client may know about the key it validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseInfo {
    pub status: KeyStatus,
    pub expires_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    /// Seats the key has; `None` is unlimited.
    pub max_activations: Option<i32>,
    /// Seats taken.
    pub activation_count: i32,
}

/// The answer to `POST /api/validate-license`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateLicenseResponse {
    pub valid: bool,
    pub code: ValidationCode,
    pub detail: String,
    /// `None` when the key is unknown.
    pub license: Option<LicenseInfo>,
    pub checked_at: DateTime<Utc>,
    /// Until when a client that cannot reach the server may keep trusting this answer; `None`
    /// unless `valid`.
    pub grace_until: Option<DateTime<Utc>>,
    /// The signed document: a JSON text of a [`SignedPayload`]. Verify these exact bytes.
    pub payload: String,
    /// The sibling hashes from `payload`'s leaf up to the batch root, lowest first (see the
    /// module's documentation); empty when the answer was signed alone.
    pub proof: Vec<ProofStep>,
    /// Base64 (standard alphabet, padded) of the Ed25519 signature over [`BATCH_ROOT_CONTEXT`]
    /// followed by the batch root.
    pub signature: String,
}

/// One step from a node up to its parent: the sibling's hash and on which side it sits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofStep {
    pub side: ProofSide,
    /// Base64 (standard alphabet, padded) of the sibling's 32-byte SHA-256.
    pub hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProofSide {
    /// The parent is `SHA-256(0x01 || sibling || node)`.
    Left,
    /// The parent is `SHA-256(0x01 || node || sibling)`.
    Right,
}

/// What `payload` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedPayload {
    /// Lower-case hex SHA-256 of the key as the server stores it (trimmed, upper-case), so a
    /// client can tie the answer to its key without the key being in it.
    pub key_hash: String,
    /// The machine fingerprint the answer is for, if one was sent.
    pub fingerprint: Option<String>,
    pub code: ValidationCode,
    pub valid: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub checked_at: DateTime<Utc>,
    /// `checked_at` plus the server's grace period, never past `expires_at`; `None` unless
    /// `valid`.
    pub grace_until: Option<DateTime<Utc>>,
}

/// `POST /api/deactivate-license`: frees the seat `fingerprint` holds on `key`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeactivateLicenseRequest {
    pub key: String,
    pub fingerprint: String,
}

/// The outcome of a deactivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeactivationCode {
    /// The machine's seat was freed.
    Released,
    /// The machine held no seat on this key; nothing changed.
    NotActivated,
    NotFound,
}

impl DeactivationCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Released => "RELEASED",
            Self::NotActivated => "NOT_ACTIVATED",
            Self::NotFound => "NOT_FOUND",
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            Self::Released => "the machine's seat was freed",
            Self::NotActivated => "this machine held no seat on the license key",
            Self::NotFound => "no such license key",
        }
    }
}

/// The answer to `POST /api/deactivate-license` (always 200 for a well-formed request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeactivateLicenseResponse {
    pub released: bool,
    pub code: DeactivationCode,
    pub detail: String,
    /// Seats still taken; `None` when the key is unknown.
    pub activation_count: Option<i32>,
}

/// `GET /api/license/public-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyView {
    /// Always `ed25519`.
    pub algorithm: String,
    /// Base64 (standard alphabet, padded) of the 32-byte public key.
    pub public_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_documented_names() {
        for code in ValidationCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
        }
        assert_eq!(
            serde_json::to_value(DeactivationCode::NotActivated).unwrap(),
            "NOT_ACTIVATED"
        );
    }

    #[test]
    fn a_request_without_optional_fields_parses() {
        let req: ValidateLicenseRequest = serde_json::from_str(r#"{"key":"SCO-A"}"#).unwrap();
        assert_eq!(req.fingerprint, None);
        assert!(serde_json::from_str::<ValidateLicenseRequest>("{}").is_err());
    }
}
