//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use keysync_shared::LoginRequest;
use serde_json::json;

use crate::auth::{
    admin_view, check_same_origin, clear_session_cookie, new_session_token, session_cookie,
    AuthAdmin, SESSION_COOKIE,
};
use crate::db::models::Actor;
use crate::db::sessions::{NewSession, SessionStore};
use crate::db::store::{now, AuditEntry};
use crate::db::Store;
use crate::domain::Email;
use crate::error::ApiError;
use crate::http::RequestMeta;
use crate::rate_limit::retry_after_secs;
use crate::startup::AppState;
use crate::{password, with_store};

const BAD_CREDENTIALS: &str = "the email or password is not right";

/// A hash to verify against when the email is unknown, so both failures take the same time.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| password::hash("decoy password never matches").unwrap_or_default())
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    check_same_origin(&req)?;
    let LoginRequest { email, password } = body.into_inner();
    let email_key = email.trim().to_lowercase();
    let ip_key = meta.ip.clone().unwrap_or_default();
    if let Err(wait) = state
        .login_per_ip
        .check(&ip_key)
        .and_then(|_| state.login_per_email.check(&email_key))
    {
        tracing::warn!(ip = %ip_key, "sign-in rate limit reached");
        return Err(ApiError::TooManyRequests {
            retry_after_secs: retry_after_secs(wait),
        });
    }
    if password.len() > 1024 || email.len() > 320 {
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()));
    }
    let ttl = state.settings.session_ttl();
    let (token, token_hash) = new_session_token();
    // Signing in rotates the session: whatever session the request's cookie names ends here, so
    // a cookie planted before sign-in (session fixation) or left from before is never upgraded.
    let previous = req
        .cookie(SESSION_COOKIE)
        .map(|c| crate::auth::hash_token(c.value()));
    let admin = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| {
                let found = match Email::parse(&email) {
                    Ok(email) => store.find_admin_by_email(email.as_str())?,
                    Err(_) => None,
                };
                let stored_hash = found
                    .as_ref()
                    .map_or(decoy_hash(), |a| a.password_hash.as_str());
                let verified = password::verify(&password, stored_hash);
                let admin = match found {
                    Some(admin) if verified => admin,
                    other => {
                        store.append_audit(
                            &Actor::System,
                            AuditEntry {
                                action: "auth.login_failed".into(),
                                target_kind: Some("admin_user".into()),
                                target_id: other.map(|a| a.id.to_string()),
                                ip: meta.ip.clone(),
                                user_agent: meta.user_agent.clone(),
                                summary: Some(json!({"email": email_key})),
                            },
                        )?;
                        return Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()));
                    }
                };
                store.write_tx(|tx| {
                    let at = now();
                    if let Some(previous) = &previous {
                        tx.delete_session(previous)?;
                    }
                    tx.insert_session(&NewSession {
                        token_hash: token_hash.clone(),
                        admin_id: admin.id,
                        ip: meta.ip.clone(),
                        user_agent: meta.user_agent.clone(),
                        expires_at: at + ttl,
                        last_seen_at: at,
                        created_at: at,
                        updated_at: at,
                    })?;
                    tx.record_login(admin.id)?;
                    tx.append_audit(
                        &Actor::Admin {
                            id: admin.id,
                            email: admin.email.clone(),
                        },
                        AuditEntry {
                            action: "auth.login".into(),
                            target_kind: Some("admin_user".into()),
                            target_id: Some(admin.id.to_string()),
                            ip: meta.ip.clone(),
                            user_agent: meta.user_agent.clone(),
                            summary: None,
                        },
                    )?;
                    Ok::<_, ApiError>(())
                })?;
                Ok(admin)
            })
        })
        .await?;
    tracing::info!(admin_id = admin.id, "admin signed in");
    Ok(HttpResponse::Ok()
        .cookie(session_cookie(&req, token, ttl))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(admin_view(&admin)))
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_same_origin(&req)?;
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        let hash = crate::auth::hash_token(cookie.value());
        state
            .db
            .run(move |conn| {
                with_store!(conn, |store| store
                    .delete_session(&hash)
                    .map_err(ApiError::from))
            })
            .await?;
    }
    Ok(HttpResponse::NoContent()
        .cookie(clear_session_cookie(&req))
        .finish())
}

pub async fn me(admin: AuthAdmin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .json(admin_view(&admin.row)))
}
