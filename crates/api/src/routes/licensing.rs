//! The license-client endpoints: `POST /api/validate-license`, `POST /api/deactivate-license`,
//! `GET /api/license/public-key`. The work is in [`crate::licensing`]; these only carry it over
//! HTTP. Every outcome of a well-formed request is a 200; answers are never cached.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use keysync_shared::{DeactivateLicenseRequest, ValidateLicenseRequest};

use crate::error::ApiError;
use crate::http::RequestMeta;
use crate::startup::AppState;

pub async fn validate_license(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<ValidateLicenseRequest>,
) -> Result<HttpResponse, ApiError> {
    let answer = state.licensing.validate(meta, body.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

pub async fn deactivate_license(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<DeactivateLicenseRequest>,
) -> Result<HttpResponse, ApiError> {
    let answer = state.licensing.deactivate(meta, body.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

pub async fn public_key(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .json(state.licensing.public_key())
}
