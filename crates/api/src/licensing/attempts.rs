//! What one license-client attempt does inside the writer's transaction: read the key fresh,
//! decide the code, move counters and seats, and note the audit entry (and, when the key changed,
//! the change-feed entry) in the batch's [`BatchContext`], which writes them all with a few
//! multi-row INSERTs just before commit. Every function here runs inside `Store::write_tx`, after
//! the batch's keys were locked, so the row it reads cannot change until commit.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use keysync_shared::{DeactivationCode, KeyStatus, ValidationCode};
use serde_json::{json, Value};

use crate::db::audit::{DOWNLOAD_ACTION, VALIDATION_ACTION};
use crate::db::keys::KeyRow;
use crate::db::licensing::KeyUse;
use crate::db::models::{Actor, NewAuditLog, NewChange};
use crate::db::store::{now, AuditEntry};
use crate::db::Db;
use crate::error::ApiError;
use crate::http::RequestMeta;
use crate::mutations::Op;

/// The audit action of a deactivation.
pub const DEACTIVATION_ACTION: &str = "license.deactivate";
/// The code an audit entry carries for an attempt refused by a rate limit.
pub const RATE_LIMITED_CODE: &str = "RATE_LIMITED";
/// How precisely a seat's `last_seen_at` follows its machine's validations.
pub const LAST_SEEN_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The key text of an attempt, as far as it may be kept.
#[derive(Debug, Clone)]
pub struct KeyText {
    /// Trimmed and upper-cased; `None` when it cannot be a key (it is then `NOT_FOUND` without a
    /// lookup).
    pub lookup: Option<String>,
    /// What logs and audit entries may show (`SCO-AB12...`).
    pub prefix: String,
}

/// A download the attempt would authorise.
#[derive(Debug, Clone)]
pub struct DownloadTarget {
    pub release_id: i64,
    pub tag_name: String,
    pub asset: String,
}

#[derive(Debug, Clone)]
pub struct ValidateAttempt {
    pub key: KeyText,
    /// Lower-case hex SHA-256 of the normalised key text, for the signed answer.
    pub key_hash: String,
    pub fingerprint: Option<String>,
    pub client_version: Option<String>,
    /// Set for a portal download: status and expiry rules apply, seats do not, and a valid
    /// attempt moves the download counters.
    pub download: Option<DownloadTarget>,
    pub meta: RequestMeta,
}

#[derive(Debug, Clone)]
pub struct DeactivateAttempt {
    pub key: KeyText,
    pub fingerprint: String,
    pub meta: RequestMeta,
}

/// An attempt a rate limit refused: only audited.
#[derive(Debug, Clone)]
pub struct RateLimitedAttempt {
    pub key: KeyText,
    /// The action the attempt would have been ([`VALIDATION_ACTION`], [`DEACTIVATION_ACTION`]).
    pub action: &'static str,
    /// Which limit refused it: `ip` or `key`.
    pub limit: &'static str,
    pub meta: RequestMeta,
}

/// An attempt that got no answer from the database (the queue was full, or its own transaction
/// failed): only audited, so that every attempt still leaves exactly one audit entry.
#[derive(Debug, Clone)]
pub struct UnansweredAttempt {
    pub key: KeyText,
    /// The action the attempt would have been.
    pub action: &'static str,
    /// [`UNAVAILABLE_CODE`] or [`ERROR_CODE`].
    pub code: &'static str,
    pub meta: RequestMeta,
}

/// The audit code of an attempt refused with a 503 because the validation queue was full.
pub const UNAVAILABLE_CODE: &str = "UNAVAILABLE";
/// The audit code of an attempt answered 500 because its transaction failed.
pub const ERROR_CODE: &str = "ERROR";

#[derive(Debug, Clone)]
pub enum Attempt {
    Validate(ValidateAttempt),
    Deactivate(DeactivateAttempt),
    RateLimited(RateLimitedAttempt),
    Unanswered(UnansweredAttempt),
}

impl Attempt {
    /// The key to lock before the batch runs.
    pub fn lookup_key(&self) -> Option<&str> {
        match self {
            Self::Validate(a) => a.key.lookup.as_deref(),
            Self::Deactivate(a) => a.key.lookup.as_deref(),
            // Only audited: no need to hold its row.
            Self::RateLimited(_) | Self::Unanswered(_) => None,
        }
    }

    /// The audit-only record of this attempt when it gets no answer of its own (`code`:
    /// [`UNAVAILABLE_CODE`] or [`ERROR_CODE`]). An attempt that was audit-only already stays
    /// itself: its entry says what it was.
    pub fn unanswered(self, code: &'static str) -> Attempt {
        let (key, action, meta) = match self {
            Self::Validate(a) => (a.key, VALIDATION_ACTION, a.meta),
            Self::Deactivate(a) => (a.key, DEACTIVATION_ACTION, a.meta),
            audit_only @ (Self::RateLimited(_) | Self::Unanswered(_)) => return audit_only,
        };
        Self::Unanswered(UnansweredAttempt {
            key,
            action,
            code,
            meta,
        })
    }
}

/// The result of a validation, as committed.
#[derive(Debug, Clone)]
pub struct Validation {
    pub code: ValidationCode,
    pub checked_at: NaiveDateTime,
    /// The key after the attempt; `None` when unknown.
    pub key: Option<KeyRow>,
    /// This attempt was the key's first valid one.
    pub newly_activated: bool,
    /// This attempt took a new seat.
    pub new_seat: bool,
    /// The signed answer, once the writer has signed the batch (not for portal downloads).
    pub signed: Option<SignedAnswer>,
}

/// A validation's signed answer: its payload and where it sits in its batch's tree.
#[derive(Debug, Clone)]
pub struct SignedAnswer {
    /// The JSON text of the [`keysync_shared::SignedPayload`], as signed.
    pub payload: String,
    pub grace_until: Option<chrono::DateTime<chrono::Utc>>,
    pub tree: std::sync::Arc<super::signing::BatchTree>,
    /// The payload's leaf in `tree`.
    pub leaf: usize,
}

#[derive(Debug, Clone)]
pub struct Deactivation {
    pub code: DeactivationCode,
    pub key: Option<KeyRow>,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Validation(Validation),
    Deactivation(Deactivation),
    /// A rate-limited attempt was audited.
    Audited,
}

/// What the attempts of one batch share: the keys read for it, and the audit and change-feed
/// entries they produce. Writing those entries at the end, a few rows per statement, costs far
/// less than one INSERT each (on PostgreSQL every statement is a round trip); nothing in the
/// batch reads them back, and they commit with everything else or not at all.
#[derive(Debug, Default)]
pub struct BatchContext {
    /// The batch's keys by text, when the engine read them all at once while locking them
    /// (PostgreSQL); kept current as attempts change them. `None`: look each up (SQLite, where
    /// a lookup is a function call, not a round trip).
    keys: Option<HashMap<String, KeyRow>>,
    audits: Vec<NewAuditLog>,
    changes: Vec<NewChange<'static>>,
}

impl BatchContext {
    /// `preloaded`: the locked rows of every key the batch looks up, if the engine read them.
    pub fn new(preloaded: Option<Vec<KeyRow>>) -> Self {
        Self {
            keys: preloaded.map(|rows| rows.into_iter().map(|r| (r.key.clone(), r)).collect()),
            audits: Vec::new(),
            changes: Vec::new(),
        }
    }

    fn find<S: Db>(&self, tx: &mut S, key: &KeyText) -> Result<Option<KeyRow>, ApiError> {
        let Some(text) = key.lookup.as_deref() else {
            return Ok(None);
        };
        match self.keys.as_ref().and_then(|keys| keys.get(text)) {
            Some(row) => Ok(Some(row.clone())),
            // Not read with the batch: an unknown key, or the key of an audit-only record
            // (those are not locked).
            None => Ok(tx.find_key_by_value(text)?),
        }
    }

    /// `row` is now as stored: later attempts of the batch on the same key must see it so.
    fn updated(&mut self, row: &KeyRow) {
        if let Some(keys) = &mut self.keys {
            keys.insert(row.key.clone(), row.clone());
        }
    }

    fn audit(&mut self, entry: AuditEntry, at: NaiveDateTime) {
        self.audits
            .push(NewAuditLog::of(&Actor::LicenseClient, entry, at));
    }

    /// The audit entry and the change-feed entry of a change to a key (as
    /// [`crate::mutations::record`] writes them for admin mutations).
    fn record(
        &mut self,
        action: &str,
        meta: &RequestMeta,
        id: i64,
        version: i64,
        summary: Value,
        at: NaiveDateTime,
    ) {
        self.audit(
            AuditEntry {
                action: action.to_owned(),
                target_kind: Some("license_key".into()),
                target_id: Some(id.to_string()),
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                summary: Some(summary),
            },
            at,
        );
        self.changes.push(NewChange {
            resource: "license_keys",
            resource_id: id,
            op: Op::Updated.as_str(),
            version,
            actor: Actor::LicenseClient.label(),
            created_at: at,
            updated_at: at,
        });
    }

    /// Writes the batch's audit and change-feed entries, in the order the attempts made them.
    pub fn write<S: Db>(self, tx: &mut S) -> Result<(), ApiError> {
        tx.append_audits(&self.audits)?;
        tx.append_changes(&self.changes)?;
        Ok(())
    }
}

pub fn apply<S: Db>(
    tx: &mut S,
    ctx: &mut BatchContext,
    attempt: &Attempt,
) -> Result<Outcome, ApiError> {
    match attempt {
        Attempt::Validate(a) => validate(tx, ctx, a).map(Outcome::Validation),
        Attempt::Deactivate(a) => deactivate(tx, ctx, a).map(Outcome::Deactivation),
        Attempt::RateLimited(a) => rate_limited(tx, ctx, a).map(|()| Outcome::Audited),
        Attempt::Unanswered(a) => unanswered(tx, ctx, a).map(|()| Outcome::Audited),
    }
}

fn audit_unknown(
    ctx: &mut BatchContext,
    action: &str,
    meta: &RequestMeta,
    summary: Value,
    at: NaiveDateTime,
) {
    ctx.audit(
        AuditEntry {
            action: action.to_owned(),
            target_kind: Some("license_key".into()),
            target_id: None,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            summary: Some(summary),
        },
        at,
    );
}

fn validate<S: Db>(
    tx: &mut S,
    ctx: &mut BatchContext,
    a: &ValidateAttempt,
) -> Result<Validation, ApiError> {
    let at = now();
    let mut summary = json!({
        "key": a.key.prefix,
        "fingerprint": a.fingerprint,
        "client_version": a.client_version,
    });
    if let Some(target) = &a.download {
        summary["download"] = json!({"tag_name": target.tag_name, "asset": target.asset});
    }
    let Some(row) = ctx.find(tx, &a.key)? else {
        summary["code"] = ValidationCode::NotFound.as_str().into();
        audit_unknown(ctx, VALIDATION_ACTION, &a.meta, summary, at);
        return Ok(Validation {
            code: ValidationCode::NotFound,
            checked_at: at,
            key: None,
            newly_activated: false,
            new_seat: false,
            signed: None,
        });
    };
    let (code, seats) = match row.effective_status(at) {
        KeyStatus::Revoked => (ValidationCode::Revoked, 0),
        KeyStatus::Suspended => (ValidationCode::Suspended, 0),
        KeyStatus::Expired => (ValidationCode::Expired, 0),
        KeyStatus::Active if a.download.is_some() => (ValidationCode::Valid, 0),
        KeyStatus::Active => take_seat(tx, &row, a.fingerprint.as_deref(), at)?,
    };
    let valid = code.is_valid();
    let newly_activated = valid && row.activated_at.is_none();
    let download = a.download.as_ref().filter(|_| valid);
    let updated = tx.record_key_use(
        &row,
        &KeyUse {
            at,
            validations: 1,
            downloads: i64::from(download.is_some()),
            seats,
            activated_at: if newly_activated {
                Some(at)
            } else {
                row.activated_at
            },
            last_used: Some(at),
        },
    )?;
    ctx.updated(&updated);
    if let Some(target) = download {
        tx.count_release_download(target.release_id, at)?;
        ctx.audit(
            AuditEntry {
                action: DOWNLOAD_ACTION.into(),
                target_kind: Some("release".into()),
                target_id: Some(target.release_id.to_string()),
                ip: a.meta.ip.clone(),
                user_agent: a.meta.user_agent.clone(),
                summary: Some(json!({
                    "key": a.key.prefix,
                    "tag_name": target.tag_name,
                    "asset": target.asset,
                })),
            },
            at,
        );
    }
    summary["code"] = code.as_str().into();
    if newly_activated {
        summary["activated"] = true.into();
    }
    if seats > 0 {
        summary["new_seat"] = true.into();
    }
    ctx.record(
        VALIDATION_ACTION,
        &a.meta,
        row.id,
        updated.version,
        summary,
        at,
    );
    Ok(Validation {
        code,
        checked_at: at,
        key: Some(updated),
        newly_activated,
        new_seat: seats > 0,
        signed: None,
    })
}

/// The seat decision for an active key: a known fingerprint keeps its seat, a new one takes a
/// free seat if there is one. Returns the code and the change in seats taken.
fn take_seat<S: Db>(
    tx: &mut S,
    row: &KeyRow,
    fingerprint: Option<&str>,
    at: NaiveDateTime,
) -> Result<(ValidationCode, i32), ApiError> {
    let Some(fingerprint) = fingerprint else {
        return Ok(match row.max_activations {
            Some(_) => (ValidationCode::FingerprintRequired, 0),
            None => (ValidationCode::Valid, 0),
        });
    };
    if let Some(seat) = tx.find_activation(row.id, fingerprint)? {
        // A machine checking in every few seconds need not rewrite its seat every time.
        if at - seat.last_seen_at >= LAST_SEEN_RESOLUTION {
            tx.touch_activation(seat.id, at)?;
        }
        return Ok((ValidationCode::Valid, 0));
    }
    // The row was read under the batch's lock, so `activation_count` is the committed count and
    // no other writer can take a seat between this check and the insert.
    let has_free_seat = row
        .max_activations
        .is_none_or(|max| row.activation_count < max);
    if !has_free_seat {
        return Ok((ValidationCode::TooManyActivations, 0));
    }
    tx.insert_activation(row.id, fingerprint, at)?;
    Ok((ValidationCode::Valid, 1))
}

fn deactivate<S: Db>(
    tx: &mut S,
    ctx: &mut BatchContext,
    a: &DeactivateAttempt,
) -> Result<Deactivation, ApiError> {
    let at = now();
    let mut summary = json!({"key": a.key.prefix, "fingerprint": a.fingerprint});
    let Some(row) = ctx.find(tx, &a.key)? else {
        summary["code"] = DeactivationCode::NotFound.as_str().into();
        audit_unknown(ctx, DEACTIVATION_ACTION, &a.meta, summary, at);
        return Ok(Deactivation {
            code: DeactivationCode::NotFound,
            key: None,
        });
    };
    let freed = tx.delete_activation(row.id, &a.fingerprint)?;
    if freed == 0 {
        summary["code"] = DeactivationCode::NotActivated.as_str().into();
        ctx.audit(
            AuditEntry {
                action: DEACTIVATION_ACTION.into(),
                target_kind: Some("license_key".into()),
                target_id: Some(row.id.to_string()),
                ip: a.meta.ip.clone(),
                user_agent: a.meta.user_agent.clone(),
                summary: Some(summary),
            },
            at,
        );
        return Ok(Deactivation {
            code: DeactivationCode::NotActivated,
            key: Some(row),
        });
    }
    let updated = tx.record_key_use(
        &row,
        &KeyUse {
            at,
            validations: 0,
            downloads: 0,
            seats: -i32::try_from(freed).unwrap_or(1),
            activated_at: row.activated_at,
            last_used: row.last_used,
        },
    )?;
    ctx.updated(&updated);
    summary["code"] = DeactivationCode::Released.as_str().into();
    ctx.record(
        DEACTIVATION_ACTION,
        &a.meta,
        row.id,
        updated.version,
        summary,
        at,
    );
    Ok(Deactivation {
        code: DeactivationCode::Released,
        key: Some(updated),
    })
}

fn rate_limited<S: Db>(
    tx: &mut S,
    ctx: &mut BatchContext,
    a: &RateLimitedAttempt,
) -> Result<(), ApiError> {
    let target = ctx.find(tx, &a.key)?.map(|row| row.id.to_string());
    ctx.audit(
        AuditEntry {
            action: a.action.to_owned(),
            target_kind: Some("license_key".into()),
            target_id: target,
            ip: a.meta.ip.clone(),
            user_agent: a.meta.user_agent.clone(),
            summary: Some(json!({
                "key": a.key.prefix,
                "code": RATE_LIMITED_CODE,
                "limit": a.limit,
            })),
        },
        now(),
    );
    Ok(())
}

fn unanswered<S: Db>(
    tx: &mut S,
    ctx: &mut BatchContext,
    a: &UnansweredAttempt,
) -> Result<(), ApiError> {
    let target = ctx.find(tx, &a.key)?.map(|row| row.id.to_string());
    ctx.audit(
        AuditEntry {
            action: a.action.to_owned(),
            target_kind: Some("license_key".into()),
            target_id: target,
            ip: a.meta.ip.clone(),
            user_agent: a.meta.user_agent.clone(),
            summary: Some(json!({"key": a.key.prefix, "code": a.code})),
        },
        now(),
    );
    Ok(())
}
