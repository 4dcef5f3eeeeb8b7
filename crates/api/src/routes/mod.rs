//! HTTP handlers, one module per resource. Handlers parse input, call persistence through
//! [`crate::db::Database::run`], and shape the response; they never build SQL.

pub mod health;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;

/// Mounts every `/api` route on `cfg`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .route("/health", web::get().to(health::get_health))
            .default_service(web::to(api_not_found)),
    );
}

/// Unknown `/api/...` paths answer JSON, never the SPA's HTML.
async fn api_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no API route for {} {}",
        req.method(),
        req.path()
    )))
}
