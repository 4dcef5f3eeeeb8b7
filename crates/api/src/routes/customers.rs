//! `/api/admin/customers`.

use actix_web::{web, HttpRequest, HttpResponse};
use keysync_shared::{AdminRole, CreateCustomer, CustomerView, KeyStatus, Page, PatchCustomer};
use serde::Deserialize;
use serde_json::json;

use super::license_keys::{check_precondition, set_status_in};
use crate::auth::AuthAdmin;
use crate::db::customers::{
    CustomerChanges, CustomerPageRequest, CustomerRow, CustomerSort, CustomerStore, NewCustomer,
};
use crate::db::keys::KeyStore;
use crate::db::store::now;
use crate::db::{Db, Store};
use crate::domain::Email;
use crate::error::ApiError;
use crate::http::{
    client_has, conditional_json, current_feed_etag, json_with_version, not_modified,
    require_if_match, version_etag, RequestMeta,
};
use crate::mutations::{record, Op, Recorded};
use crate::pagination::{page_params, split_page, PageParams};
use crate::startup::AppState;
use crate::with_store;

const MAX_NAME: usize = 200;
const MAX_NOTES: usize = 2_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListCustomersQuery {
    pub q: Option<String>,
    pub sort: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("customer {id} does not exist"))
}

fn email_taken(email: &Email) -> ApiError {
    ApiError::Conflict {
        code: "email_taken",
        message: format!("a customer with email {email} already exists"),
    }
}

fn summary(row: &CustomerRow) -> serde_json::Value {
    json!({"name": row.name, "email": row.email, "company": row.company, "version": row.version})
}

fn check_text(field: &str, value: &str, max: usize, required: bool) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if required && trimmed.is_empty() {
        return Err(ApiError::unprocessable(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if trimmed.chars().count() > max {
        return Err(ApiError::unprocessable(
            field,
            format!("{field} may have at most {max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn parse_email(raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|e| ApiError::unprocessable("email", e))
}

pub async fn list_customers(
    req: HttpRequest,
    state: web::Data<AppState>,
    _admin: AuthAdmin,
    query: web::Query<ListCustomersQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page: PageParams<CustomerSort> = page_params(
        query.sort.as_deref(),
        query.cursor.as_deref(),
        query.limit,
        query.q.as_deref(),
    )?;
    let (sort, sort_name, limit) = (page.sort, page.sort_name.clone(), page.limit);
    let request = CustomerPageRequest {
        q: query.q,
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
    let (rows, counts, total) = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| {
                let rows = store.list_customers(&request)?;
                let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                let counts = store.key_counts(&ids)?;
                let total = store.count_customers(request.q.as_deref())?;
                Ok::<_, ApiError>((rows, counts, total))
            })
        })
        .await?;
    let (rows, next_cursor) = split_page(rows, limit, |row| sort.cursor_of(row).encode(&sort_name));
    let page = Page {
        items: rows
            .iter()
            .map(|r| r.view(counts.get(&r.id).copied().unwrap_or(0)))
            .collect::<Vec<CustomerView>>(),
        next_cursor,
        total,
    };
    conditional_json(&req, Some(etag), &page)
}

pub async fn get_customer(
    req: HttpRequest,
    state: web::Data<AppState>,
    _admin: AuthAdmin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (row, count) = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| {
                let row = store.find_customer(id)?.ok_or_else(|| not_found(id))?;
                let count = store.key_counts(&[id])?.get(&id).copied().unwrap_or(0);
                Ok::<_, ApiError>((row, count))
            })
        })
        .await?;
    conditional_json(&req, Some(version_etag(row.version)), &row.view(count))
}

pub async fn create_customer(
    state: web::Data<AppState>,
    admin: AuthAdmin,
    meta: RequestMeta,
    body: web::Json<CreateCustomer>,
) -> Result<HttpResponse, ApiError> {
    admin.require(AdminRole::Admin)?;
    let body = body.into_inner();
    let name = check_text("name", &body.name, MAX_NAME, true)?;
    let email = parse_email(&body.email)?;
    let company = check_text(
        "company",
        body.company.as_deref().unwrap_or(""),
        MAX_NAME,
        false,
    )?;
    let notes = check_text(
        "notes",
        body.notes.as_deref().unwrap_or(""),
        MAX_NOTES,
        false,
    )?;
    let actor = admin.actor();
    let row = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| store.write_tx(|tx| {
                if tx.find_customer_by_email(email.as_str())?.is_some() {
                    return Err(email_taken(&email));
                }
                let at = now();
                let row = tx.insert_customer(&NewCustomer {
                    name,
                    email: email.as_str().to_owned(),
                    company,
                    notes,
                    version: 1,
                    created_at: at,
                    updated_at: at,
                })?;
                record(
                    tx,
                    &actor,
                    &meta,
                    Recorded {
                        action: "customer.created",
                        resource: "customers",
                        id: row.id,
                        op: Op::Created,
                        version: row.version,
                        summary: json!({"after": summary(&row)}),
                    },
                )?;
                Ok(row)
            }))
        })
        .await?;
    Ok(json_with_version(
        HttpResponse::Created(),
        row.version,
        &row.view(0),
    ))
}

pub async fn update_customer(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AuthAdmin,
    meta: RequestMeta,
    id: web::Path<i64>,
    body: web::Json<PatchCustomer>,
) -> Result<HttpResponse, ApiError> {
    admin.require(AdminRole::Admin)?;
    let id = id.into_inner();
    let precondition = require_if_match(&req)?;
    let patch = body.into_inner();
    let changes = CustomerChanges {
        name: patch
            .name
            .as_deref()
            .map(|v| check_text("name", v, MAX_NAME, true))
            .transpose()?,
        email: patch
            .email
            .as_deref()
            .map(|v| parse_email(v).map(|e| e.as_str().to_owned()))
            .transpose()?,
        company: patch
            .company
            .as_deref()
            .map(|v| check_text("company", v, MAX_NAME, false))
            .transpose()?,
        notes: patch
            .notes
            .as_deref()
            .map(|v| check_text("notes", v, MAX_NOTES, false))
            .transpose()?,
    };
    let actor = admin.actor();
    let (row, count) = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| store.write_tx(|tx| {
                let current = tx.find_customer(id)?.ok_or_else(|| not_found(id))?;
                let count = tx.key_counts(&[id])?.get(&id).copied().unwrap_or(0);
                check_precondition(precondition, current.version, || current.view(count))?;
                if let Some(email) = &changes.email {
                    if tx
                        .find_customer_by_email(email)?
                        .is_some_and(|other| other.id != id)
                    {
                        return Err(email_taken(&parse_email(email)?));
                    }
                }
                let updated = tx
                    .update_customer(id, current.version, &changes)?
                    .ok_or_else(|| {
                        ApiError::internal(anyhow::anyhow!(
                            "customer {id} changed inside its own transaction"
                        ))
                    })?;
                record(
                    tx,
                    &actor,
                    &meta,
                    Recorded {
                        action: "customer.updated",
                        resource: "customers",
                        id,
                        op: Op::Updated,
                        version: updated.version,
                        summary: json!({"before": summary(&current), "after": summary(&updated)}),
                    },
                )?;
                Ok((updated, count))
            }))
        })
        .await?;
    Ok(json_with_version(
        HttpResponse::Ok(),
        row.version,
        &row.view(count),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteCustomerQuery {
    pub cascade: Option<String>,
}

pub async fn delete_customer(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AuthAdmin,
    meta: RequestMeta,
    id: web::Path<i64>,
    query: web::Query<DeleteCustomerQuery>,
) -> Result<HttpResponse, ApiError> {
    admin.require(AdminRole::Admin)?;
    let id = id.into_inner();
    let precondition = require_if_match(&req)?;
    let revoke_keys = match query.cascade.as_deref() {
        None => false,
        Some("revoke") => true,
        Some(_) => {
            return Err(ApiError::unprocessable(
                "cascade",
                "cascade may only be `revoke`",
            ))
        }
    };
    let actor = admin.actor();
    state
        .db
        .run(move |conn| {
            with_store!(conn, |store| store.write_tx(|tx| {
                let current = tx.find_customer(id)?.ok_or_else(|| not_found(id))?;
                let keys = tx.keys_of_customer(id)?;
                check_precondition(precondition, current.version, || current.view(keys.len() as i64))?;
                if !keys.is_empty() && !revoke_keys {
                    return Err(ApiError::Conflict {
                        code: "customer_has_keys",
                        message: format!(
                            "customer {id} has {} license key(s); delete with ?cascade=revoke to revoke them",
                            keys.len()
                        ),
                    });
                }
                revoke_and_unlink(tx, &actor, &meta, &keys)?;
                tx.delete_customer(id)?;
                record(tx, &actor, &meta, Recorded {
                    action: "customer.deleted",
                    resource: "customers",
                    id,
                    op: Op::Deleted,
                    version: current.version + 1,
                    summary: json!({"before": summary(&current), "revoked_keys": keys.len()}),
                })?;
                Ok(())
            }))
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn revoke_and_unlink<S: Db>(
    tx: &mut S,
    actor: &crate::db::models::Actor,
    meta: &RequestMeta,
    keys: &[crate::db::keys::KeyRow],
) -> Result<(), ApiError> {
    for key in keys {
        set_status_in(
            tx,
            actor,
            meta,
            key,
            KeyStatus::Revoked,
            "license_key.revoked",
            true,
        )?;
    }
    Ok(())
}
