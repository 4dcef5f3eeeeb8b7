//! `GET /api/admin/stats`: the dashboard's numbers.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use keysync_shared::DashboardStats;

use crate::auth::AuthAdmin;
use crate::db::audit::{AuditStore, DOWNLOAD_ACTION, VALIDATION_ACTION};
use crate::db::store::now;
use crate::error::ApiError;
use crate::http::conditional_json;
use crate::startup::AppState;
use crate::with_store;

pub async fn get_stats(
    req: HttpRequest,
    state: web::Data<AppState>,
    _admin: AuthAdmin,
) -> Result<HttpResponse, ApiError> {
    let stats = state
        .db
        .run(|conn| {
            with_store!(conn, |store| {
                let since = now() - Duration::hours(24);
                let (validations_total, downloads_total) = store.usage_totals()?;
                Ok::<_, ApiError>(DashboardStats {
                    keys: store.key_counts_by_status()?,
                    customers: store.count_customers_all()?,
                    admins: store.count_admins_all()?,
                    validations_24h: store.count_action_since(VALIDATION_ACTION, since)?,
                    validations_total,
                    downloads_24h: store.count_action_since(DOWNLOAD_ACTION, since)?,
                    downloads_total,
                    validations_hourly: store.hourly_actions(VALIDATION_ACTION, 24)?,
                })
            })
        })
        .await?;
    conditional_json(&req, None, &stats)
}
