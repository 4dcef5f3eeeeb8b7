//! `GET /api/health`: is this instance able to serve, and on which engine.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use keysync_shared::Health;

use crate::db::Store;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::with_store;

pub async fn get_health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let kind = state.db.kind();
    state
        .db
        .run(|conn| with_store!(conn, |store| store.ping().map_err(ApiError::from)))
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "health check: database unreachable");
            ApiError::Unavailable(format!("the {} database is unreachable", kind.as_str()))
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Health {
            status: "ok".into(),
            database: kind,
            version: env!("CARGO_PKG_VERSION").into(),
        }))
}
