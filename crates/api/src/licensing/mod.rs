//! The license-client service: validating keys for customer software, freeing seats, and signing
//! the answers so clients can trust them offline.
//!
//! The path of a validation: the handler's input is checked ([`KeyInput`]), the per-IP and
//! per-key rate limits are taken, the attempt goes to the group-commit [`writer`] (which decides
//! and records it in the database, then signs the batch's answers together with [`Sealer`]), and
//! the signed outcome becomes a [`ValidateLicenseResponse`]. Refused attempts (rate limits) are
//! audited through the same writer. Logs carry a key's prefix only (`SCO-AB12...`), never the key.

pub mod attempts;
pub mod signing;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use keysync_shared::{
    DeactivateLicenseRequest, DeactivateLicenseResponse, LicenseInfo, PublicKeyView, SignedPayload,
    ValidateLicenseRequest, ValidateLicenseResponse,
};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::db::audit::VALIDATION_ACTION;
use crate::db::keys::KeyRow;
use crate::db::Database;
use crate::error::ApiError;
use crate::http::RequestMeta;
use crate::license_key::{log_prefix, LicenseKey, MAX_KEY_LEN};
use crate::rate_limit::{retry_after_secs, RateLimiter};
use attempts::{
    Attempt, DeactivateAttempt, DownloadTarget, KeyText, Outcome, RateLimitedAttempt, SignedAnswer,
    ValidateAttempt, Validation, DEACTIVATION_ACTION,
};
use signing::{BatchTree, LicenseSigner};
use writer::ValidationWriter;

/// Longest machine fingerprint accepted.
pub const MAX_FINGERPRINT_LEN: usize = 256;
/// Longest client version accepted.
pub const MAX_VERSION_LEN: usize = 64;

/// A key as received, checked for shape and reduced to what may be kept of it.
#[derive(Debug, Clone)]
pub struct KeyInput {
    text: KeyText,
    /// Lower-case hex SHA-256 of the normalised key: the signed payload's `key_hash` and the
    /// per-key rate limit's bucket (so the limiter never holds keys).
    hash: String,
}

impl KeyInput {
    /// Empty or over-long text is a 422; text that merely is not a key is kept and will be
    /// answered `NOT_FOUND`.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ApiError::unprocessable("key", "key is required"));
        }
        if trimmed.len() > MAX_KEY_LEN {
            return Err(ApiError::unprocessable(
                "key",
                format!("a license key has at most {MAX_KEY_LEN} characters"),
            ));
        }
        let normalised = trimmed.to_ascii_uppercase();
        let hash = hex::encode(Sha256::digest(normalised.as_bytes()));
        Ok(Self {
            text: KeyText {
                prefix: log_prefix(&normalised),
                lookup: LicenseKey::parse(&normalised)
                    .ok()
                    .map(|k| k.as_str().to_owned()),
            },
            hash,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.text.prefix
    }
}

fn optional_text(
    value: Option<String>,
    field: &str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > max => Err(ApiError::unprocessable(
            field,
            format!("{field} may have at most {max} characters"),
        )),
        other => Ok(other),
    }
}

/// Everything the license-client endpoints need, built once at start.
#[derive(Debug)]
pub struct LicensingService {
    writer: ValidationWriter,
    signer: Arc<LicenseSigner>,
    per_ip: RateLimiter,
    per_key: RateLimiter,
}

/// Signs the answers of a writer batch: builds each validation's payload, and the batch's tree
/// ([`BatchTree`]) with one signature for all of them. Each handler then takes its answer's
/// proof from the tree on its own worker thread.
#[derive(Debug, Clone)]
pub struct Sealer {
    signer: Arc<LicenseSigner>,
    grace: chrono::Duration,
}

impl Sealer {
    pub fn new(signer: Arc<LicenseSigner>, grace: chrono::Duration) -> Self {
        Self { signer, grace }
    }

    /// Sets `signed` on every validation among `outcomes` (the outcomes of `attempts`, in
    /// order) that is answered to customer software; portal downloads are not signed.
    pub fn seal(&self, attempts: &[&Attempt], outcomes: &mut [Outcome]) {
        let mut sealed: Vec<(&mut Validation, String, Option<DateTime<Utc>>)> = Vec::new();
        for (attempt, outcome) in attempts.iter().zip(outcomes.iter_mut()) {
            let (Attempt::Validate(attempt), Outcome::Validation(validation)) = (attempt, outcome)
            else {
                continue;
            };
            if attempt.download.is_some() {
                continue;
            }
            let payload = self.payload(attempt, validation);
            let grace_until = payload.grace_until;
            // Strings, timestamps and an enum always serialise; should that ever change, the
            // answer goes out unsigned, which its handler turns into a 500.
            match serde_json::to_string(&payload) {
                Ok(text) => sealed.push((validation, text, grace_until)),
                Err(err) => tracing::error!(error = %err, "a validation payload did not serialise"),
            }
        }
        if sealed.is_empty() {
            return;
        }
        let texts: Vec<&[u8]> = sealed.iter().map(|(_, text, _)| text.as_bytes()).collect();
        let Some(tree) = BatchTree::new(&self.signer, &texts) else {
            return;
        };
        let tree = Arc::new(tree);
        for (leaf, (validation, payload, grace_until)) in sealed.into_iter().enumerate() {
            validation.signed = Some(SignedAnswer {
                payload,
                grace_until,
                tree: tree.clone(),
                leaf,
            });
        }
    }

    fn payload(&self, attempt: &ValidateAttempt, validation: &Validation) -> SignedPayload {
        let valid = validation.code.is_valid();
        let checked_at = validation.checked_at.and_utc();
        let expires_at = validation
            .key
            .as_ref()
            .and_then(|k| k.expires_at)
            .map(|t| t.and_utc());
        // Offline trust never outlives the key itself.
        let grace_until = valid.then(|| {
            let until = checked_at
                .checked_add_signed(self.grace)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            expires_at.map_or(until, |exp| exp.min(until))
        });
        SignedPayload {
            key_hash: attempt.key_hash.clone(),
            fingerprint: attempt.fingerprint.clone(),
            code: validation.code,
            valid,
            expires_at,
            checked_at,
            grace_until,
        }
    }
}

impl LicensingService {
    /// Starts the validation writer on `db`.
    pub fn start(
        db: Database,
        settings: &Settings,
        signer: LicenseSigner,
    ) -> std::io::Result<Self> {
        let per_ip = settings.validations_per_ip_per_minute;
        let per_key = settings.validations_per_key_per_minute;
        let signer = Arc::new(signer);
        let grace = chrono::Duration::hours(i64::from(settings.license_grace_period_hours));
        Ok(Self {
            writer: ValidationWriter::start(
                db,
                settings.validation_queue_capacity,
                Sealer::new(signer.clone(), grace),
            )?,
            signer,
            per_ip: RateLimiter::new(per_ip, per_ip),
            per_key: RateLimiter::new(per_key, per_key),
        })
    }

    pub fn writer(&self) -> &ValidationWriter {
        &self.writer
    }

    pub fn public_key(&self) -> PublicKeyView {
        PublicKeyView {
            algorithm: "ed25519".into(),
            public_key: self.signer.public_key_b64().to_owned(),
        }
    }

    /// Takes a token from the per-IP and the per-key limit; a refusal is audited, then a 429.
    async fn check_rate(
        &self,
        key: &KeyInput,
        action: &'static str,
        meta: &RequestMeta,
    ) -> Result<(), ApiError> {
        let ip = meta.ip.as_deref().unwrap_or_default();
        let refused = match self.per_ip.check(ip) {
            Err(wait) => Some(("ip", wait)),
            Ok(()) => self
                .per_key
                .check(&key.hash)
                .err()
                .map(|wait| ("key", wait)),
        };
        let Some((limit, wait)) = refused else {
            return Ok(());
        };
        tracing::warn!(
            "[License Validation] Rate limit ({limit}) reached for key: {}",
            key.prefix()
        );
        self.writer
            .record_rate_limited(RateLimitedAttempt {
                key: key.text.clone(),
                action,
                limit,
                meta: meta.clone(),
            })
            .await?;
        Err(ApiError::TooManyRequests {
            retry_after_secs: retry_after_secs(wait.max(Duration::from_millis(1))),
        })
    }

    /// `POST /api/validate-license`.
    pub async fn validate(
        &self,
        meta: RequestMeta,
        request: ValidateLicenseRequest,
    ) -> Result<ValidateLicenseResponse, ApiError> {
        let key = KeyInput::parse(&request.key)?;
        let fingerprint = optional_text(request.fingerprint, "fingerprint", MAX_FINGERPRINT_LEN)?;
        let client_version = optional_text(request.version, "version", MAX_VERSION_LEN)?;
        tracing::info!("[License Validation] Checking key: {}", key.prefix());
        self.check_rate(&key, VALIDATION_ACTION, &meta).await?;
        let validation = self
            .writer
            .validate(ValidateAttempt {
                key: key.text.clone(),
                key_hash: key.hash.clone(),
                fingerprint,
                client_version,
                download: None,
                meta,
            })
            .await?;
        log_outcome(&key, &validation);
        signed_response(validation)
    }

    /// Validates `raw_key` for a portal download of `target`: the same rules (seats aside), the
    /// same audit and rate limits; a valid answer has already moved the download counters.
    pub async fn validate_download(
        &self,
        meta: RequestMeta,
        raw_key: &str,
        target: DownloadTarget,
    ) -> Result<Validation, ApiError> {
        let key = KeyInput::parse(raw_key)?;
        tracing::info!(
            tag = %target.tag_name,
            asset = %target.asset,
            "[License Validation] Checking key: {}",
            key.prefix()
        );
        self.check_rate(&key, VALIDATION_ACTION, &meta).await?;
        let validation = self
            .writer
            .validate(ValidateAttempt {
                key: key.text.clone(),
                key_hash: key.hash.clone(),
                fingerprint: None,
                client_version: None,
                download: Some(target),
                meta,
            })
            .await?;
        log_outcome(&key, &validation);
        Ok(validation)
    }

    /// `POST /api/deactivate-license`.
    pub async fn deactivate(
        &self,
        meta: RequestMeta,
        request: DeactivateLicenseRequest,
    ) -> Result<DeactivateLicenseResponse, ApiError> {
        let key = KeyInput::parse(&request.key)?;
        let fingerprint = optional_text(
            Some(request.fingerprint),
            "fingerprint",
            MAX_FINGERPRINT_LEN,
        )?
        .ok_or_else(|| ApiError::unprocessable("fingerprint", "fingerprint is required"))?;
        tracing::info!("[License Validation] Deactivating key: {}", key.prefix());
        self.check_rate(&key, DEACTIVATION_ACTION, &meta).await?;
        let outcome = self
            .writer
            .deactivate(DeactivateAttempt {
                key: key.text.clone(),
                fingerprint,
                meta,
            })
            .await?;
        tracing::info!(
            code = outcome.code.as_str(),
            "[License Validation] Deactivation of key: {}",
            key.prefix()
        );
        Ok(DeactivateLicenseResponse {
            released: outcome.code == keysync_shared::DeactivationCode::Released,
            code: outcome.code,
            detail: outcome.code.detail().into(),
            activation_count: outcome.key.map(|k| k.activation_count),
        })
    }
}

/// The answer to customer software, from the committed and signed outcome.
fn signed_response(validation: Validation) -> Result<ValidateLicenseResponse, ApiError> {
    let signed = validation.signed.ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "the validation writer answered without signing"
        ))
    })?;
    let code = validation.code;
    Ok(ValidateLicenseResponse {
        valid: code.is_valid(),
        code,
        detail: code.detail().into(),
        license: validation
            .key
            .as_ref()
            .map(|row| license_info(row, validation.checked_at)),
        checked_at: validation.checked_at.and_utc(),
        grace_until: signed.grace_until,
        proof: signed.tree.proof(signed.leaf),
        signature: signed.tree.signature().to_owned(),
        payload: signed.payload,
    })
}

fn license_info(row: &KeyRow, at: chrono::NaiveDateTime) -> LicenseInfo {
    LicenseInfo {
        status: row.effective_status(at),
        expires_at: row.expires_at.map(|t| t.and_utc()),
        activated_at: row.activated_at.map(|t| t.and_utc()),
        max_activations: row.max_activations,
        activation_count: row.activation_count,
    }
}

fn log_outcome(key: &KeyInput, validation: &Validation) {
    if validation.newly_activated {
        tracing::info!("[License Validation] Key activated: {}", key.prefix());
    }
    if validation.new_seat {
        tracing::info!(
            seats = validation.key.as_ref().map(|k| k.activation_count),
            "[License Validation] New machine activated for key: {}",
            key.prefix()
        );
    }
    tracing::info!(
        code = validation.code.as_str(),
        "[License Validation] Result for key: {}",
        key.prefix()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_input_keeps_only_the_prefix_and_a_hash() {
        let input = KeyInput::parse("  sco-abcd-efgh-jkmn-pqrs ").unwrap();

        assert_eq!(input.prefix(), "SCO-ABCD...");
        assert_eq!(
            input.text.lookup.as_deref(),
            Some("SCO-ABCD-EFGH-JKMN-PQRS")
        );
        assert_eq!(
            input.hash,
            hex::encode(Sha256::digest(b"SCO-ABCD-EFGH-JKMN-PQRS"))
        );
    }

    #[test]
    fn text_that_is_no_key_is_looked_up_nowhere_but_absurd_text_is_refused() {
        assert!(KeyInput::parse("hello").unwrap().text.lookup.is_none());
        assert!(KeyInput::parse("   ").is_err());
        assert!(KeyInput::parse(&"A".repeat(MAX_KEY_LEN + 1)).is_err());
    }
}
