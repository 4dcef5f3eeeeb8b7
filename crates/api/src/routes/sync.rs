//! `GET /api/admin/sync` (what changed since a cursor, optionally long-polled) and
//! `POST /api/admin/sync` (the webhook for CI/CD systems).

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use keysync_shared::{Change, SyncResponse, WebhookEvent};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::auth::{admin_view, AuthAdmin};
use crate::db::changes::ChangeStore;
use crate::db::models::Actor;
use crate::db::store::{now, AuditEntry};
use crate::db::{Db, Store};
use crate::error::ApiError;
use crate::feed::change_of;
use crate::http::RequestMeta;
use crate::startup::{AppState, MAX_BODY_BYTES};
use crate::with_store;

pub const MAX_SYNC_LIMIT: i64 = 1_000;
const DEFAULT_SYNC_LIMIT: i64 = 500;
const MAX_WAIT_SECS: u64 = 30;
const ACTIVITY_LIMIT: i64 = 100;
/// How far a webhook timestamp may be from the server's clock.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncQuery {
    pub since: Option<String>,
    pub limit: Option<i64>,
    pub wait: Option<u64>,
}

/// Where a client resumes from: a cursor, or (the older form of this API) a time. With no
/// `since` at all, a client starts from now: it gets no changes, the newest cursor as `next`,
/// and the latest activity, after loading the lists themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Now,
    Cursor(i64),
    Time(NaiveDateTime),
}

impl Since {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
            return Ok(Self::Now);
        };
        if raw.len() > 64 {
            return Err(invalid_since());
        }
        if let Ok(cursor) = raw.parse::<i64>() {
            return if cursor >= 0 {
                Ok(Self::Cursor(cursor))
            } else {
                Err(invalid_since())
            };
        }
        DateTime::parse_from_rfc3339(raw)
            .map(|t| Self::Time(t.with_timezone(&Utc).naive_utc()))
            .map_err(|_| invalid_since())
    }
}

fn invalid_since() -> ApiError {
    ApiError::BadRequest {
        code: "invalid_since",
        message: "since must be a cursor this API handed out or an RFC 3339 timestamp".into(),
    }
}

fn cursor_expired() -> ApiError {
    ApiError::Gone {
        code: "cursor_expired",
        message: "that cursor is older than the retained change history; reload everything and resume from the new cursor".into(),
    }
}

pub async fn get_sync(
    state: web::Data<AppState>,
    _admin: AuthAdmin,
    query: web::Query<SyncQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let since = Since::parse(query.since.as_deref())?;
    let limit = match query.limit {
        None => DEFAULT_SYNC_LIMIT,
        Some(n) if (1..=MAX_SYNC_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::unprocessable(
                "limit",
                format!("limit must be between 1 and {MAX_SYNC_LIMIT}"),
            ))
        }
    };
    let wait = match query.wait {
        None => 0,
        Some(w) if w <= MAX_WAIT_SECS => w,
        Some(_) => {
            return Err(ApiError::unprocessable(
                "wait",
                format!("wait may be at most {MAX_WAIT_SECS} seconds"),
            ))
        }
    };
    let retention = state.settings.change_retention();
    let mut response = read_sync(&state, since, limit, retention).await?;
    if response.changes.is_empty() && wait > 0 {
        if let Since::Cursor(cursor) = since {
            let mut latest = state.feed.latest();
            let arrived =
                tokio::time::timeout(Duration::from_secs(wait), latest.wait_for(|c| *c > cursor))
                    .await;
            if matches!(arrived, Ok(Ok(_))) {
                response = read_sync(&state, since, limit, retention).await?;
            }
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(response))
}

async fn read_sync(
    state: &AppState,
    since: Since,
    limit: i64,
    retention: chrono::Duration,
) -> Result<SyncResponse, ApiError> {
    state
        .db
        .run(move |conn| with_store!(conn, |store| sync_page(store, since, limit, retention)))
        .await
}

fn sync_page<S: Db>(
    store: &mut S,
    since: Since,
    limit: i64,
    retention: chrono::Duration,
) -> Result<SyncResponse, ApiError> {
    let pruned = store.pruned_through()?;
    let (rows, since_time, start) = match since {
        Since::Now => (Vec::new(), None, store.latest_cursor()?),
        Since::Cursor(cursor) => {
            if cursor < pruned {
                return Err(cursor_expired());
            }
            let at = if cursor == 0 {
                None
            } else {
                store.change_time(cursor)?
            };
            (store.changes_after(cursor, limit)?, at, cursor)
        }
        Since::Time(at) => {
            if pruned > 0 && at < now() - retention {
                return Err(cursor_expired());
            }
            (store.changes_since_time(at, limit)?, Some(at), 0)
        }
    };
    let has_more = rows.len() as i64 == limit;
    let next = rows.last().map_or(start, |last| last.cursor);
    let ids_of = |resource: &str| -> Vec<i64> {
        let mut ids: Vec<i64> = rows
            .iter()
            .filter(|r| r.resource == resource)
            .map(|r| r.resource_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let keys: HashMap<i64, Value> = store
        .find_keys(&ids_of("license_keys"))?
        .iter()
        .map(|k| (k.id, serde_json::to_value(k.view()).unwrap_or_default()))
        .collect();
    let customer_ids = ids_of("customers");
    let counts = crate::db::customers::CustomerStore::key_counts(store, &customer_ids)?;
    let customers: HashMap<i64, Value> = store
        .find_customers(&customer_ids)?
        .iter()
        .map(|c| {
            (
                c.id,
                serde_json::to_value(c.view(counts.get(&c.id).copied().unwrap_or(0)))
                    .unwrap_or_default(),
            )
        })
        .collect();
    let admins: HashMap<i64, Value> = store
        .find_admins(&ids_of("admin_users"))?
        .iter()
        .map(|a| {
            (
                a.id,
                serde_json::to_value(admin_view(a)).unwrap_or_default(),
            )
        })
        .collect();
    let events: HashMap<i64, Value> = store
        .find_audit_entries(&ids_of("webhooks"))?
        .iter()
        .map(|e| (e.id, serde_json::to_value(e.view()).unwrap_or_default()))
        .collect();
    let mut preferences: HashMap<i64, Value> = HashMap::new();
    for id in ids_of(super::preferences::RESOURCE) {
        let row = crate::db::preferences::PreferenceStore::find_preferences(store, id)?;
        if let Some(row) = row {
            let prefs = super::preferences::preferences_of(Some(&row));
            preferences.insert(id, serde_json::to_value(prefs).unwrap_or_default());
        }
    }
    let changes: Vec<Change> = rows
        .iter()
        .map(|row| {
            let current = match row.resource.as_str() {
                "license_keys" => keys.get(&row.resource_id),
                "customers" => customers.get(&row.resource_id),
                "admin_users" => admins.get(&row.resource_id),
                "webhooks" => events.get(&row.resource_id),
                super::preferences::RESOURCE => preferences.get(&row.resource_id),
                _ => None,
            };
            Change {
                data: Some(current.cloned().unwrap_or(Value::Null)),
                ..change_of(row)
            }
        })
        .collect();
    let activity = store
        .audit_since(since_time, ACTIVITY_LIMIT)?
        .iter()
        .map(|e| e.view())
        .collect();
    Ok(SyncResponse {
        keys: keys
            .into_values()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        customers: customers
            .into_values()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        changes,
        activity,
        next: next.to_string(),
        has_more,
    })
}

type HmacSha256 = Hmac<Sha256>;

/// `X-Keysync-Signature: t=<unix>,v1=<hex>` parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub signatures: Vec<Vec<u8>>,
}

impl SignatureHeader {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > 1024 {
            return Err("signature header too long".into());
        }
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in raw.split(',') {
            let (key, value) = part
                .trim()
                .split_once('=')
                .ok_or("malformed signature header")?;
            match key {
                "t" => timestamp = Some(value.parse::<i64>().map_err(|_| "malformed timestamp")?),
                "v1" => signatures.push(hex::decode(value).map_err(|_| "malformed v1 signature")?),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or("the signature header has no timestamp")?;
        if signatures.is_empty() {
            return Err("the signature header has no v1 signature".into());
        }
        Ok(Self {
            timestamp,
            signatures,
        })
    }
}

/// Checks `header` against `body` with `secret` at time `now_unix`.
pub fn verify_signature(
    secret: &str,
    header: &SignatureHeader,
    body: &[u8],
    now_unix: i64,
) -> Result<(), String> {
    if (now_unix - header.timestamp).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err("the signature timestamp is outside the 5-minute window".into());
    }
    let valid = header.signatures.iter().any(|candidate| {
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(header.timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(candidate).is_ok()
    });
    if valid {
        Ok(())
    } else {
        Err("the signature does not match".into())
    }
}

/// The header value a sender computes: `t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

async fn read_body(mut payload: web::Payload) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn valid_event_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// Events that mean a new release may be out.
pub const RELEASE_EVENTS: [&str; 2] = ["deployment_complete", "release_published"];

pub async fn post_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES)
    {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let signature = req
        .headers()
        .get("x-keysync-signature")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::Unauthorized("unreadable signature".into()))
        })
        .transpose()?;
    let actor = match &signature {
        Some(_) => Actor::Webhook,
        None => {
            let admin = AuthAdmin::extract(&req).await.map_err(|_| {
                ApiError::Unauthorized("sign the request (X-Keysync-Signature) or sign in".into())
            })?;
            admin.require(keysync_shared::AdminRole::Admin)?;
            admin.actor()
        }
    };
    let body = read_body(payload).await?;
    if let Some(raw) = &signature {
        let secret = state.settings.webhook_secret.as_deref().ok_or_else(|| {
            ApiError::Unauthorized("webhook signing is not configured on this server".into())
        })?;
        let parsed = SignatureHeader::parse(raw).map_err(ApiError::Unauthorized)?;
        verify_signature(secret, &parsed, &body, Utc::now().timestamp()).map_err(|e| {
            tracing::warn!(ip = ?meta.ip, reason = %e, "webhook signature refused");
            ApiError::Unauthorized(e)
        })?;
    }
    let event: WebhookEvent = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        code: "malformed_json",
        message: format!("the body must be {{\"event\": \"...\", \"data\": {{...}}}}: {e}"),
    })?;
    if !valid_event_name(&event.event) {
        return Err(ApiError::unprocessable(
            "event",
            "event must be 1-100 characters of a-z, 0-9, _ . -",
        ));
    }
    let replay_key = signature.clone();
    let name = event.event.clone();
    let cursor = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| store.write_tx(|tx| {
                if let Some(sig) = &replay_key {
                    if !tx.remember_webhook_signature(sig)? {
                        return Err(ApiError::Unauthorized(
                            "this delivery was already received (replay)".into(),
                        ));
                    }
                }
                let audit_id = tx.append_audit(
                    &actor,
                    AuditEntry {
                        action: format!("webhook.{}", event.event),
                        target_kind: Some("webhook".into()),
                        target_id: None,
                        ip: meta.ip.clone(),
                        user_agent: meta.user_agent.clone(),
                        summary: Some(json!({"event": event.event, "data": event.data})),
                    },
                )?;
                let cursor = tx.append_change(&actor, "webhooks", audit_id, "created", 1)?;
                Ok::<_, ApiError>(cursor)
            }))
        })
        .await?;
    let known = RELEASE_EVENTS.contains(&name.as_str());
    if known {
        state.on_release_event();
    }
    tracing::info!(event = %name, known, "webhook accepted");
    Ok(HttpResponse::Accepted()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"accepted": true, "event": name, "cursor": cursor})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_cursors_timestamps_and_nothing_else() {
        assert_eq!(Since::parse(None).unwrap(), Since::Now);
        assert_eq!(Since::parse(Some("0")).unwrap(), Since::Cursor(0));
        assert_eq!(Since::parse(Some("42")).unwrap(), Since::Cursor(42));
        assert!(matches!(
            Since::parse(Some("2024-01-01T12:00:00Z")).unwrap(),
            Since::Time(_)
        ));
        for bad in ["-1", "yesterday", "12abc", &"9".repeat(80)] {
            assert!(Since::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn signatures_verify_only_with_the_secret_body_and_a_fresh_timestamp() {
        let body = br#"{"event":"deployment_complete"}"#;
        let header = SignatureHeader::parse(&sign("s3cret", 1_000, body)).unwrap();

        assert!(verify_signature("s3cret", &header, body, 1_100).is_ok());
        assert!(verify_signature("other", &header, body, 1_100).is_err());
        assert!(verify_signature("s3cret", &header, b"{}", 1_100).is_err());
        assert!(verify_signature("s3cret", &header, body, 1_000 + 301).is_err());
    }

    #[test]
    fn malformed_signature_headers_are_refused() {
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "garbage"] {
            assert!(SignatureHeader::parse(bad).is_err(), "{bad}");
        }
    }
}
