//! Sync analytics: `POST /api/admin/sync/metrics` (browsers report), `GET /api/admin/sync/metrics`
//! (the dashboard's sync-health panel) and `GET /metrics` (Prometheus).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use keysync_shared::{DatabaseKind, MetricsAccepted, SyncMetricsBatch};
use sha2::{Digest, Sha256};

use crate::analytics::check_batch;
use crate::auth::AuthAdmin;
use crate::error::ApiError;
use crate::memory;
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
        .body(
            state.analytics.prometheus(state.feed.subscribers()) + &memory_gauges(state.db.kind()),
        ))
}

/// The process's heap and, on SQLite, the part of it SQLite holds.
fn memory_gauges(engine: DatabaseKind) -> String {
    let mut out = String::new();
    if let Some(bytes) = memory::heap_in_use() {
        out.push_str(&format!(
            "# HELP keysync_heap_in_use_bytes Heap memory allocated and not freed.\n\
             # TYPE keysync_heap_in_use_bytes gauge\nkeysync_heap_in_use_bytes {bytes}\n"
        ));
    }
    if engine == DatabaseKind::Sqlite {
        out.push_str(&format!(
            "# HELP keysync_sqlite_heap_bytes Memory SQLite holds (page caches, statements).\n\
             # TYPE keysync_sqlite_heap_bytes gauge\nkeysync_sqlite_heap_bytes {}\n",
            memory::sqlite_heap()
        ));
    }
    out
}
