//! HTTP conventions shared by the handlers: who is asking (IP, user agent), ETags and
//! conditional requests.
//!
//! - Single resources carry `ETag: "v<version>"`. `PATCH`/`DELETE` must send it back in
//!   `If-Match` (missing: 428; stale: 412 with the current representation).
//! - Lists and aggregates carry an ETag hashed from the response body; `If-None-Match` that
//!   matches is a 304 with no body.
//! - Admin reads are `Cache-Control: private, no-cache`: browsers keep them but always revalidate.

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::startup::AppState;

/// Where a request came from, as recorded in the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    pub fn of(req: &HttpRequest) -> Self {
        let trust_proxy = req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|s| s.settings.trust_proxy_headers);
        let ip = if trust_proxy {
            req.connection_info().realip_remote_addr().map(strip_port)
        } else {
            req.peer_addr().map(|a| a.ip().to_string())
        };
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        Self { ip, user_agent }
    }
}

fn strip_port(addr: &str) -> String {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(sa) => sa.ip().to_string(),
        Err(_) => addr.to_owned(),
    }
}

impl FromRequest for RequestMeta {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self::of(req)))
    }
}

/// The ETag of version `v` of a resource.
pub fn version_etag(version: i64) -> String {
    format!("\"v{version}\"")
}

/// The ETag of a response body.
pub fn body_etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

fn etag_list_matches(list: &str, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    list.split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == bare)
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|list| etag_list_matches(list, etag))
}

/// The ETag of a read whose answer depends only on rows the change feed tracks: the feed's
/// newest cursor and the request's path and query. It is computed before the read, with one
/// index lookup, so an unchanged list costs a 304 without running its query. (A change that
/// commits between the cursor lookup and the read only makes the next request miss, never
/// answer 304 with stale data.)
pub fn feed_etag(cursor: i64, req: &HttpRequest) -> String {
    let mut hasher = Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.update(req.uri().to_string().as_bytes());
    let digest = hasher.finalize();
    format!("\"f{cursor}-{}\"", hex::encode(&digest[..8]))
}

/// [`feed_etag`] for `req` at the feed's current position (one index lookup).
pub async fn current_feed_etag(state: &AppState, req: &HttpRequest) -> Result<String, ApiError> {
    use crate::db::changes::ChangeStore;
    let position = state
        .db
        .run(|conn| crate::with_store!(conn, |store| store.feed_position().map_err(ApiError::from)))
        .await?;
    Ok(feed_etag(position, req))
}

/// `true` when the request's `If-None-Match` already names `etag`.
pub fn client_has(req: &HttpRequest, etag: &str) -> bool {
    if_none_match(req.headers(), etag)
}

/// The 304 answer for `etag`.
pub fn not_modified(etag: String) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .finish()
}

/// A JSON answer to an admin read, or a 304 when the client already has it.
/// `etag` defaults to a hash of the body.
pub fn conditional_json<T: Serialize>(
    req: &HttpRequest,
    etag: Option<String>,
    body: &T,
) -> Result<HttpResponse, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::internal)?;
    let etag = etag.unwrap_or_else(|| body_etag(&bytes));
    if if_none_match(req.headers(), &etag) {
        return Ok(not_modified(etag));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .content_type("application/json")
        .body(bytes))
}

/// A JSON answer to a write, with the resource's new ETag.
pub fn json_with_version<T: Serialize>(
    mut builder: actix_web::HttpResponseBuilder,
    version: i64,
    body: &T,
) -> HttpResponse {
    builder
        .insert_header((header::ETAG, version_etag(version)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// What `If-Match` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// `If-Match: *`: any current version.
    Any,
    /// `If-Match: "v<n>"`.
    Version(i64),
}

impl Precondition {
    pub fn allows(self, current: i64) -> bool {
        match self {
            Self::Any => true,
            Self::Version(v) => v == current,
        }
    }
}

/// Reads `If-Match`; missing is a 428, unreadable a 412 (it can match no version).
pub fn require_if_match(req: &HttpRequest) -> Result<Precondition, ApiError> {
    let raw = req
        .headers()
        .get(header::IF_MATCH)
        .ok_or(ApiError::PreconditionRequired)?
        .to_str()
        .map_err(|_| ApiError::bad_request("If-Match is not readable text"))?
        .trim();
    if raw == "*" {
        return Ok(Precondition::Any);
    }
    raw.trim_start_matches("W/")
        .trim_matches('"')
        .strip_prefix('v')
        .and_then(|v| v.parse::<i64>().ok())
        .map(Precondition::Version)
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_if_match",
            message: "If-Match must be an ETag this API handed out, like \"v3\"".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_lists_match_weak_and_strong_forms_and_star() {
        assert!(etag_list_matches("\"abc\"", "\"abc\""));
        assert!(etag_list_matches("W/\"abc\", \"def\"", "\"abc\""));
        assert!(etag_list_matches("*", "\"abc\""));
        assert!(!etag_list_matches("\"abd\"", "\"abc\""));
    }

    #[test]
    fn if_match_reads_versions_and_star() {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::IF_MATCH, "\"v7\""))
            .to_http_request();
        assert_eq!(require_if_match(&req).unwrap(), Precondition::Version(7));
        let star = actix_web::test::TestRequest::default()
            .insert_header((header::IF_MATCH, "*"))
            .to_http_request();
        assert_eq!(require_if_match(&star).unwrap(), Precondition::Any);
        let missing = actix_web::test::TestRequest::default().to_http_request();
        assert!(matches!(
            require_if_match(&missing),
            Err(ApiError::PreconditionRequired)
        ));
        let junk = actix_web::test::TestRequest::default()
            .insert_header((header::IF_MATCH, "\"abc\""))
            .to_http_request();
        assert!(require_if_match(&junk).is_err());
    }
}
