//! `/api/admin/keys`: list, create, read, update, delete, and batches.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use keysync_shared::keys::{BatchItemError, KeyBatchResult};
use keysync_shared::{AdminRole, CreateKey, KeyBatch, KeyStatus, LicenseKeyView, Page, PatchKey};
use serde::Deserialize;
use serde_json::json;

use crate::auth::AuthAdmin;
use crate::db::keys::{KeyChanges, KeyFilter, KeyPageRequest, KeyRow, KeySort, KeyStore, NewKey};
use crate::db::models::Actor;
use crate::db::store::now;
use crate::db::{Db, Store};
use crate::error::ApiError;
use crate::http::{
    client_has, conditional_json, current_feed_etag, json_with_version, not_modified,
    require_if_match, version_etag, Precondition, RequestMeta,
};
use crate::license_key::LicenseKey;
use crate::mutations::{record, Op, Recorded};
use crate::pagination::{page_params, split_page, PageParams};
use crate::startup::AppState;
use crate::with_store;

pub const MAX_NOTES: usize = 2_000;
pub const MAX_ACTIVATIONS: i32 = 100_000;
pub const MAX_BATCH: usize = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListKeysQuery {
    pub q: Option<String>,
    pub status: Option<String>,
    pub customer_id: Option<i64>,
    pub sort: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub async fn list_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
    _admin: AuthAdmin,
    query: web::Query<ListKeysQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page: PageParams<KeySort> = page_params(
        query.sort.as_deref(),
        query.cursor.as_deref(),
        query.limit,
        query.q.as_deref(),
    )?;
    let status = match query.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(KeyStatus::parse(s).ok_or_else(|| {
            ApiError::unprocessable(
                "status",
                "status must be active, suspended, revoked or expired",
            )
        })?),
    };
    let filter = KeyFilter {
        q: query.q,
        status,
        customer_id: query.customer_id,
    };
    let (sort, sort_name, limit) = (page.sort, page.sort_name.clone(), page.limit);
    let page_request = KeyPageRequest {
        sort,
        order: page.order,
        after: page.after,
        limit: limit + 1,
    };
    // Everything this list shows is tracked by the change feed (expiry included, see
    // `crate::expiry`), so an unchanged feed means an unchanged answer.
    let etag = current_feed_etag(&state, &req).await?;
    if client_has(&req, &etag) {
        return Ok(not_modified(etag));
    }
    let (rows, total) = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| {
                let rows = store.list_keys(&filter, &page_request)?;
                let total = store.count_keys(&filter)?;
                Ok::<_, ApiError>((rows, total))
            })
        })
        .await?;
    let (rows, next_cursor) = split_page(rows, limit, |row| sort.cursor_of(row).encode(&sort_name));
    let page = Page {
        items: rows
            .iter()
            .map(KeyRow::view)
            .collect::<Vec<LicenseKeyView>>(),
        next_cursor,
        total,
    };
    conditional_json(&req, Some(etag), &page)
}

pub async fn get_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    _admin: AuthAdmin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let row = state
        .db
        .run(move |conn| with_store!(conn, |store| store.find_key(id).map_err(ApiError::from)))
        .await?
        .ok_or_else(|| not_found(id))?;
    conditional_json(&req, Some(version_etag(row.version)), &row.view())
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("license key {id} does not exist"))
}

/// Checks a create request's fields; the customer's existence is checked in the transaction.
fn validate_create(body: &CreateKey) -> Result<(), ApiError> {
    validate_expiry(body.expires_at)?;
    validate_max_activations(body.max_activations)?;
    validate_notes(body.notes.as_deref())
}

fn validate_expiry(expires_at: Option<DateTime<Utc>>) -> Result<(), ApiError> {
    match expires_at {
        Some(t) if t.naive_utc() <= now() => Err(ApiError::unprocessable(
            "expires_at",
            "expires_at must be in the future",
        )),
        _ => Ok(()),
    }
}

fn validate_max_activations(max: Option<i32>) -> Result<(), ApiError> {
    match max {
        Some(n) if !(1..=MAX_ACTIVATIONS).contains(&n) => Err(ApiError::unprocessable(
            "max_activations",
            format!("max_activations must be between 1 and {MAX_ACTIVATIONS}"),
        )),
        _ => Ok(()),
    }
}

fn validate_notes(notes: Option<&str>) -> Result<(), ApiError> {
    match notes {
        Some(n) if n.chars().count() > MAX_NOTES => Err(ApiError::unprocessable(
            "notes",
            format!("notes may have at most {MAX_NOTES} characters"),
        )),
        _ => Ok(()),
    }
}

fn ensure_customer<S: Db>(tx: &mut S, customer_id: Option<i64>) -> Result<(), ApiError> {
    if let Some(id) = customer_id {
        if tx.find_customer(id)?.is_none() {
            return Err(ApiError::unprocessable(
                "customer_id",
                format!("customer {id} does not exist"),
            ));
        }
    }
    Ok(())
}

/// Inserts one new key with a fresh value and records it.
pub fn create_key_in<S: Db>(
    tx: &mut S,
    actor: &Actor,
    meta: &RequestMeta,
    prefix: &str,
    body: &CreateKey,
) -> Result<KeyRow, ApiError> {
    let key = loop {
        let candidate = LicenseKey::generate(prefix);
        if !tx.key_exists(candidate.as_str())? {
            break candidate;
        }
    };
    let at = now();
    let row = tx.insert_key(&NewKey {
        key: key.as_str().to_owned(),
        status: KeyStatus::Active.as_str().to_owned(),
        customer_id: body.customer_id,
        expires_at: body.expires_at.map(|t| t.naive_utc()),
        max_activations: body.max_activations,
        notes: body.notes.clone().unwrap_or_default(),
        version: 1,
        created_at: at,
        updated_at: at,
    })?;
    record(
        tx,
        actor,
        meta,
        Recorded {
            action: "license_key.created",
            resource: "license_keys",
            id: row.id,
            op: Op::Created,
            version: row.version,
            summary: json!({"after": summary(&row)}),
        },
    )?;
    Ok(row)
}

/// What the audit log keeps of a key: never the key itself, only its prefix.
fn summary(row: &KeyRow) -> serde_json::Value {
    json!({
        "key": row.log_prefix(),
        "status": row.status,
        "customer_id": row.customer_id,
        "expires_at": row.expires_at.map(|t| t.and_utc()),
        "max_activations": row.max_activations,
        "notes_len": row.notes.chars().count(),
        "version": row.version,
    })
}

pub async fn create_key(
    state: web::Data<AppState>,
    admin: AuthAdmin,
    meta: RequestMeta,
    body: web::Json<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    admin.require(AdminRole::Admin)?;
    let body = body.into_inner();
    validate_create(&body)?;
    let prefix = state.settings.key_prefix.clone();
    let actor = admin.actor();
    let row = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| store.write_tx(|tx| {
                ensure_customer(tx, body.customer_id)?;
                create_key_in(tx, &actor, &meta, &prefix, &body)
            }))
        })
        .await?;
    tracing::info!(key = %row.log_prefix(), id = row.id, "license key created");
    Ok(json_with_version(
        HttpResponse::Created(),
        row.version,
        &row.view(),
    ))
}

pub async fn update_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AuthAdmin,
    meta: RequestMeta,
    id: web::Path<i64>,
    body: web::Json<PatchKey>,
) -> Result<HttpResponse, ApiError> {
    admin.require(AdminRole::Admin)?;
    let id = id.into_inner();
    let precondition = require_if_match(&req)?;
    let patch = body.into_inner();
    if let Some(Some(t)) = patch.expires_at {
        validate_expiry(Some(t))?;
    }
    validate_max_activations(patch.max_activations.flatten())?;
    validate_notes(patch.notes.as_deref())?;
    let changes = KeyChanges {
        status: patch.status.map(|s| s.as_str().to_owned()),
        customer_id: patch.customer_id,
        expires_at: patch.expires_at.map(|o| o.map(|t| t.naive_utc())),
        max_activations: patch.max_activations,
        notes: patch.notes,
    };
    let actor = admin.actor();
    let row = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| store.write_tx(|tx| {
                let current = tx.find_key(id)?.ok_or_else(|| not_found(id))?;
                check_precondition(precondition, current.version, || current.view())?;
                if let Some(customer) = changes.customer_id {
                    ensure_customer(tx, customer)?;
                }
                let updated = tx
                    .update_key(id, current.version, &changes)?
                    .ok_or_else(|| {
                        ApiError::internal(anyhow::anyhow!(
                            "key {id} changed inside its own transaction"
                        ))
                    })?;
                record(
                    tx,
                    &actor,
                    &meta,
                    Recorded {
                        action: "license_key.updated",
                        resource: "license_keys",
                        id,
                        op: Op::Updated,
                        version: updated.version,
                        summary: json!({"before": summary(&current), "after": summary(&updated)}),
                    },
                )?;
                Ok::<_, ApiError>(updated)
            }))
        })
        .await?;
    Ok(json_with_version(
        HttpResponse::Ok(),
        row.version,
        &row.view(),
    ))
}

/// 412 with the current representation when `If-Match` names another version.
pub fn check_precondition<T: serde::Serialize>(
    precondition: Precondition,
    current_version: i64,
    current: impl FnOnce() -> T,
) -> Result<(), ApiError> {
    if precondition.allows(current_version) {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed {
            current: serde_json::to_value(current()).unwrap_or_default(),
        })
    }
}

pub async fn delete_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AuthAdmin,
    meta: RequestMeta,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    admin.require(AdminRole::Admin)?;
    let id = id.into_inner();
    let precondition = require_if_match(&req)?;
    let actor = admin.actor();
    state
        .db
        .run(move |conn| {
            with_store!(conn, |store| store.write_tx(|tx| {
                let current = tx.find_key(id)?.ok_or_else(|| not_found(id))?;
                check_precondition(precondition, current.version, || current.view())?;
                delete_key_in(tx, &actor, &meta, &current)
            }))
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn delete_key_in<S: Db>(
    tx: &mut S,
    actor: &Actor,
    meta: &RequestMeta,
    current: &KeyRow,
) -> Result<(), ApiError> {
    tx.delete_key(current.id)?;
    record(
        tx,
        actor,
        meta,
        Recorded {
            action: "license_key.deleted",
            resource: "license_keys",
            id: current.id,
            op: Op::Deleted,
            version: current.version + 1,
            summary: json!({"before": summary(current)}),
        },
    )?;
    Ok(())
}

/// Sets `status` on `row` (revoke, suspend) and records it.
pub fn set_status_in<S: Db>(
    tx: &mut S,
    actor: &Actor,
    meta: &RequestMeta,
    row: &KeyRow,
    status: KeyStatus,
    action: &str,
    unlink_customer: bool,
) -> Result<KeyRow, ApiError> {
    let changes = KeyChanges {
        status: Some(status.as_str().to_owned()),
        customer_id: unlink_customer.then_some(None),
        ..KeyChanges::default()
    };
    let updated = tx
        .update_key(row.id, row.version, &changes)?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "key {} changed inside its own transaction",
                row.id
            ))
        })?;
    record(
        tx,
        actor,
        meta,
        Recorded {
            action,
            resource: "license_keys",
            id: row.id,
            op: Op::Updated,
            version: updated.version,
            summary: json!({"before": summary(row), "after": summary(&updated)}),
        },
    )?;
    Ok(updated)
}

pub async fn batch_keys(
    state: web::Data<AppState>,
    admin: AuthAdmin,
    meta: RequestMeta,
    body: web::Json<KeyBatch>,
) -> Result<HttpResponse, ApiError> {
    admin.require(AdminRole::Admin)?;
    let batch = body.into_inner();
    let create_count = batch.create.as_ref().map_or(0, |c| c.count as usize);
    let total = create_count + batch.revoke.len() + batch.suspend.len() + batch.delete.len();
    if total == 0 {
        return Err(ApiError::unprocessable("batch", "the batch is empty"));
    }
    if total > MAX_BATCH {
        return Err(ApiError::unprocessable(
            "batch",
            format!("a batch may hold at most {MAX_BATCH} operations"),
        ));
    }
    if let Some(create) = &batch.create {
        validate_create(&create.template())?;
    }
    let prefix = state.settings.key_prefix.clone();
    let actor = admin.actor();
    let result = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| store
                .write_tx(|tx| apply_batch(tx, &actor, &meta, &prefix, &batch)))
        })
        .await?;
    tracing::info!(
        created = result.created.len(),
        revoked = result.revoked.len(),
        suspended = result.suspended.len(),
        deleted = result.deleted.len(),
        "key batch applied"
    );
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(result))
}

/// Applies a whole batch or, when any item cannot be applied, nothing (the caller's
/// transaction rolls back on the error, which lists every refused item).
fn apply_batch<S: Db>(
    tx: &mut S,
    actor: &Actor,
    meta: &RequestMeta,
    prefix: &str,
    batch: &KeyBatch,
) -> Result<KeyBatchResult, ApiError> {
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (op, ids) in [
        ("revoke", &batch.revoke),
        ("suspend", &batch.suspend),
        ("delete", &batch.delete),
    ] {
        for &id in ids {
            if !seen.insert(id) {
                errors.push(BatchItemError {
                    op: op.into(),
                    id: Some(id),
                    code: "duplicate".into(),
                    message: format!("key {id} appears more than once in the batch"),
                });
            }
        }
    }
    let all_ids: Vec<i64> = seen.iter().copied().collect();
    let rows: std::collections::HashMap<i64, KeyRow> = tx
        .find_keys(&all_ids)?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    for (op, ids) in [
        ("revoke", &batch.revoke),
        ("suspend", &batch.suspend),
        ("delete", &batch.delete),
    ] {
        for &id in ids {
            if !rows.contains_key(&id) {
                errors.push(BatchItemError {
                    op: op.into(),
                    id: Some(id),
                    code: "not_found".into(),
                    message: format!("license key {id} does not exist"),
                });
            }
        }
    }
    if let Some(create) = &batch.create {
        if let Some(customer) = create.customer_id {
            if tx.find_customer(customer)?.is_none() {
                errors.push(BatchItemError {
                    op: "create".into(),
                    id: None,
                    code: "customer_not_found".into(),
                    message: format!("customer {customer} does not exist"),
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::BatchRefused { errors });
    }
    let mut result = KeyBatchResult {
        created: Vec::new(),
        revoked: Vec::new(),
        suspended: Vec::new(),
        deleted: Vec::new(),
    };
    if let Some(create) = &batch.create {
        let template = create.template();
        for _ in 0..create.count {
            result
                .created
                .push(create_key_in(tx, actor, meta, prefix, &template)?.view());
        }
    }
    for &id in &batch.revoke {
        set_status_in(
            tx,
            actor,
            meta,
            &rows[&id],
            KeyStatus::Revoked,
            "license_key.revoked",
            false,
        )?;
        result.revoked.push(id);
    }
    for &id in &batch.suspend {
        set_status_in(
            tx,
            actor,
            meta,
            &rows[&id],
            KeyStatus::Suspended,
            "license_key.suspended",
            false,
        )?;
        result.suspended.push(id);
    }
    for &id in &batch.delete {
        delete_key_in(tx, actor, meta, &rows[&id])?;
        result.deleted.push(id);
    }
    Ok(result)
}
