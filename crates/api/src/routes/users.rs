//! `/api/admin/users`: admin accounts. Everyone signed in may read; only owners change them,
//! and the last owner can be neither deleted nor demoted.

use actix_web::{web, HttpRequest, HttpResponse};
use keysync_shared::{AdminRole, AdminView, CreateAdmin, Page, PatchAdmin};
use serde_json::json;

use super::license_keys::check_precondition;
use crate::admins::create_admin;
use crate::auth::{admin_view, AuthAdmin};
use crate::db::admin_users::{AdminChanges, AdminStore};
use crate::db::models::AdminUserRow;
use crate::db::sessions::SessionStore;
use crate::db::{Db, Store};
use crate::domain::{Email, NewPassword};
use crate::error::ApiError;
use crate::http::{
    conditional_json, json_with_version, require_if_match, version_etag, RequestMeta,
};
use crate::mutations::{record, Op, Recorded};
use crate::startup::AppState;
use crate::{password, with_store};

const MAX_NAME: usize = 200;

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("admin {id} does not exist"))
}

fn summary(row: &AdminUserRow) -> serde_json::Value {
    json!({"email": row.email, "name": row.name, "role": row.role, "version": row.version})
}

fn last_owner() -> ApiError {
    ApiError::Conflict {
        code: "last_owner",
        message: "this is the last owner; make another admin an owner first".into(),
    }
}

pub async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    _admin: AuthAdmin,
) -> Result<HttpResponse, ApiError> {
    let rows = state
        .db
        .run(|conn| with_store!(conn, |store| store.list_admins().map_err(ApiError::from)))
        .await?;
    let page = Page {
        total: rows.len() as i64,
        items: rows.iter().map(admin_view).collect::<Vec<AdminView>>(),
        next_cursor: None,
    };
    conditional_json(&req, None, &page)
}

pub async fn get_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    _admin: AuthAdmin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let row = state
        .db
        .run(move |conn| with_store!(conn, |store| store.find_admin(id).map_err(ApiError::from)))
        .await?
        .ok_or_else(|| not_found(id))?;
    conditional_json(&req, Some(version_etag(row.version)), &admin_view(&row))
}

pub async fn create_user(
    state: web::Data<AppState>,
    admin: AuthAdmin,
    meta: RequestMeta,
    body: web::Json<CreateAdmin>,
) -> Result<HttpResponse, ApiError> {
    admin.require(AdminRole::Owner)?;
    let body = body.into_inner();
    let email = Email::parse(&body.email).map_err(|e| ApiError::unprocessable("email", e))?;
    let password =
        NewPassword::parse(body.password).map_err(|e| ApiError::unprocessable("password", e))?;
    let name = body.name.unwrap_or_default().trim().to_owned();
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::unprocessable(
            "name",
            format!("name may have at most {MAX_NAME} characters"),
        ));
    }
    let actor = admin.actor();
    let role = body.role;
    let row = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| create_admin(
                store, &actor, &meta, &email, &name, &password, role
            ))
        })
        .await?;
    Ok(json_with_version(
        HttpResponse::Created(),
        row.version,
        &admin_view(&row),
    ))
}

pub async fn update_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AuthAdmin,
    meta: RequestMeta,
    id: web::Path<i64>,
    body: web::Json<PatchAdmin>,
) -> Result<HttpResponse, ApiError> {
    admin.require(AdminRole::Owner)?;
    let id = id.into_inner();
    let precondition = require_if_match(&req)?;
    let patch = body.into_inner();
    let name = patch.name.map(|n| n.trim().to_owned());
    if name.as_ref().is_some_and(|n| n.chars().count() > MAX_NAME) {
        return Err(ApiError::unprocessable(
            "name",
            format!("name may have at most {MAX_NAME} characters"),
        ));
    }
    let password_hash = patch
        .password
        .map(|p| NewPassword::parse(p).map_err(|e| ApiError::unprocessable("password", e)))
        .transpose()?
        .map(|p| password::hash(p.expose()).map_err(ApiError::internal))
        .transpose()?;
    let resets_password = password_hash.is_some();
    let changes = AdminChanges {
        name,
        role: patch.role.map(|r| r.as_str().to_owned()),
        password_hash,
    };
    let actor = admin.actor();
    let row = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| store.write_tx(|tx| {
                // Serialise admin changes so two owners demoting each other cannot both pass
                // the last-owner check.
                tx.lock_change_feed()?;
                let current = tx.find_admin(id)?.ok_or_else(|| not_found(id))?;
                check_precondition(precondition, current.version, || admin_view(&current))?;
                let demotes_owner = current.role == "owner"
                    && changes.role.as_deref().is_some_and(|r| r != "owner");
                if demotes_owner && tx.count_owners()? <= 1 {
                    return Err(last_owner());
                }
                let updated = tx
                    .update_admin(id, current.version, &changes)?
                    .ok_or_else(|| {
                        ApiError::internal(anyhow::anyhow!(
                            "admin {id} changed inside its own transaction"
                        ))
                    })?;
                if resets_password {
                    tx.delete_sessions_of(id)?;
                }
                record(
                    tx,
                    &actor,
                    &meta,
                    Recorded {
                        action: if resets_password {
                            "admin.password_reset"
                        } else {
                            "admin.updated"
                        },
                        resource: "admin_users",
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
        &admin_view(&row),
    ))
}

pub async fn delete_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AuthAdmin,
    meta: RequestMeta,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    admin.require(AdminRole::Owner)?;
    let id = id.into_inner();
    let precondition = require_if_match(&req)?;
    let actor = admin.actor();
    state
        .db
        .run(move |conn| {
            with_store!(conn, |store| store.write_tx(|tx| delete_admin_in(
                tx,
                &actor,
                &meta,
                id,
                precondition
            )))
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn delete_admin_in<S: Db>(
    tx: &mut S,
    actor: &crate::db::models::Actor,
    meta: &RequestMeta,
    id: i64,
    precondition: crate::http::Precondition,
) -> Result<(), ApiError> {
    tx.lock_change_feed()?;
    let current = tx.find_admin(id)?.ok_or_else(|| not_found(id))?;
    check_precondition(precondition, current.version, || admin_view(&current))?;
    if current.role == "owner" && tx.count_owners()? <= 1 {
        return Err(last_owner());
    }
    tx.delete_admin(id)?;
    record(
        tx,
        actor,
        meta,
        Recorded {
            action: "admin.deleted",
            resource: "admin_users",
            id,
            op: Op::Deleted,
            version: current.version + 1,
            summary: json!({"before": summary(&current)}),
        },
    )?;
    Ok(())
}
