//! Sync analytics: `POST /api/admin/sync/metrics` (browsers report), `GET /api/admin/sync/metrics`
//! (the dashboard's sync-health panel) and `GET /metrics` (Prometheus).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use keysync_shared::{MetricsAccepted, SyncMetricsBatch};
use sha2::{Digest, Sha256};

use crate::analytics::check_batch;
use crate::auth::AuthAdmin;
use crate::error::ApiError;
use crate::startup::AppState;

pub async fn post_sync_metrics(
    state: web::Data<AppState>,
    _admin: AuthAdmin,
    body: web::Json<SyncMetricsBatch>,
) -> Result<HttpResponse, ApiError> {
    let batch = body.into_inner();
    check_batch(&batch)?;
    let accepted = state.analytics.record(&batch);
    Ok(HttpResponse::Accepted().json(MetricsAccepted { accepted }))
}

pub async fn get_sync_metrics(
    state: web::Data<AppState>,
    _admin: AuthAdmin,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(state.analytics.health()))
}

/// `GET /metrics`. When a `metrics_token` is configured the scraper must send it as a bearer
/// token; the comparison is over hashes so its time does not depend on where they differ.
pub async fn prometheus(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(expected) = state.settings.metrics_token.as_deref() {
        let sent = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if Sha256::digest(sent.as_bytes()) != Sha256::digest(expected.as_bytes()) {
            return Err(ApiError::Unauthorized(
                "send the metrics token as `Authorization: Bearer <token>`".into(),
            ));
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.analytics.prometheus(state.feed.subscribers())))
}
