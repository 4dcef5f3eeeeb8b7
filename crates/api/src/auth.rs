//! Admin sessions: sign-in, the session cookie, and the `AuthAdmin` extractor every admin
//! handler takes.
//!
//! Policy:
//! - The cookie holds 256 random bits; the database keeps only their SHA-256, so a leaked
//!   database or log cannot be replayed as a session. Sessions live in the database, so any API
//!   instance serves any admin.
//! - Cookie: `HttpOnly; SameSite=Strict; Path=/`, plus `Secure` when the request came over TLS.
//! - A new session id is issued at every sign-in (no fixation).
//! - State-changing requests carrying an `Origin` (or `Sec-Fetch-Site`) from another site are
//!   refused with 403 before anything else happens.
//! - No session → 401; a session whose role is too low → 403.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpRequest};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use keysync_shared::{AdminRole, AdminView};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::models::{Actor, AdminUserRow};
use crate::db::sessions::SessionStore;
use crate::db::store::now;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::with_store;

pub const SESSION_COOKIE: &str = "keysync_session";

/// A fresh session token and its stored hash.
pub fn new_session_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The `Set-Cookie` for a new session.
pub fn session_cookie(req: &HttpRequest, token: String, ttl: Duration) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.connection_info().scheme() == "https")
        .max_age(actix_web::cookie::time::Duration::seconds(
            ttl.num_seconds(),
        ))
        .finish()
}

/// The `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(req: &HttpRequest) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.connection_info().scheme() == "https")
        .finish();
    cookie.make_removal();
    cookie
}

pub fn admin_view(row: &AdminUserRow) -> AdminView {
    AdminView {
        id: row.id,
        email: row.email.clone(),
        name: row.name.clone(),
        role: row.role.parse().unwrap_or(AdminRole::Viewer),
        last_login_at: row.last_login_at.map(|t| t.and_utc()),
        version: row.version,
        created_at: row.created_at.and_utc(),
        updated_at: row.updated_at.and_utc(),
    }
}

/// The signed-in admin of this request.
#[derive(Debug, Clone)]
pub struct AuthAdmin {
    pub id: i64,
    pub email: String,
    pub role: AdminRole,
    pub row: AdminUserRow,
    pub token_hash: String,
}

impl AuthAdmin {
    /// 403 unless this admin's role is at least `role`.
    pub fn require(&self, role: AdminRole) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {role} role; you are {}",
                self.role
            )))
        }
    }

    pub fn actor(&self) -> Actor {
        Actor::Admin {
            id: self.id,
            email: self.email.clone(),
        }
    }
}

/// Refuses a state-changing request sent by another site's page.
pub fn check_same_origin(req: &HttpRequest) -> Result<(), ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Err(ApiError::Forbidden(
                "cross-site requests are refused".into(),
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = req.connection_info().host().to_owned();
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if origin == "null" || !origin_host.eq_ignore_ascii_case(&host) {
            return Err(ApiError::Forbidden(
                "cross-site requests are refused".into(),
            ));
        }
    }
    Ok(())
}

impl FromRequest for AuthAdmin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let origin_check = check_same_origin(req);
        Box::pin(async move {
            origin_check?;
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no app state")))?;
            let token = token
                .filter(|t| !t.is_empty() && t.len() <= 128)
                .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))?;
            let hash = hash_token(&token);
            let ttl = state.settings.session_ttl();
            let lookup_hash = hash.clone();
            let found = state
                .db
                .run(move |conn| {
                    with_store!(conn, |store| {
                        let found = store.session_admin(&lookup_hash)?;
                        if let Some((_, last_seen)) = &found {
                            // Sliding expiry, written at most once a minute per session.
                            if now() - *last_seen > Duration::seconds(60) {
                                store.touch_session(&lookup_hash, now() + ttl)?;
                            }
                        }
                        Ok::<_, ApiError>(found)
                    })
                })
                .await?;
            let (row, _) = found.ok_or_else(|| {
                ApiError::Unauthorized("your session has ended; sign in again".into())
            })?;
            Ok(AuthAdmin {
                id: row.id,
                email: row.email.clone(),
                role: row.role.parse().unwrap_or(AdminRole::Viewer),
                row,
                token_hash: hash,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, hash_a) = new_session_token();
        let (b, _) = new_session_token();

        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_a, hash_token(&a));
        assert!(!hash_a.contains(&a));
    }

    #[test]
    fn cross_site_writes_are_refused_and_same_site_ones_pass() {
        let cross = actix_web::test::TestRequest::post()
            .insert_header((header::HOST, "keysync.local"))
            .insert_header((header::ORIGIN, "https://evil.example"))
            .to_http_request();
        let same = actix_web::test::TestRequest::post()
            .insert_header((header::HOST, "keysync.local"))
            .insert_header((header::ORIGIN, "http://keysync.local"))
            .to_http_request();
        let fetch_cross = actix_web::test::TestRequest::delete()
            .insert_header(("sec-fetch-site", "cross-site"))
            .to_http_request();
        let read = actix_web::test::TestRequest::get()
            .insert_header((header::ORIGIN, "https://evil.example"))
            .to_http_request();

        assert!(matches!(
            check_same_origin(&cross),
            Err(ApiError::Forbidden(_))
        ));
        assert!(check_same_origin(&same).is_ok());
        assert!(check_same_origin(&fetch_cross).is_err());
        assert!(check_same_origin(&read).is_ok());
    }
}
