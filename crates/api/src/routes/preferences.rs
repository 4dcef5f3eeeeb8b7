//! `GET/PUT /api/admin/me/preferences`: the signed-in admin's own sync preferences.
//!
//! Stored as one JSON document per admin; fields added later read as their defaults. A save is
//! a mutation like any other: row, audit entry and change entry (resource `sync_preferences`,
//! id = the admin's id) commit together, so the admin's other browsers hear of it by push.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use keysync_shared::preferences::{MAX_INTERVAL_MS, MIN_INTERVAL_MS};
use keysync_shared::SyncPreferences;
use serde_json::json;

use crate::auth::AuthAdmin;
use crate::db::preferences::{PreferenceStore, PreferencesRow};
use crate::db::Store;
use crate::error::ApiError;
use crate::http::RequestMeta;
use crate::mutations::{record, Op, Recorded};
use crate::startup::AppState;
use crate::with_store;

/// The change feed's resource name for preferences.
pub const RESOURCE: &str = "sync_preferences";

/// Reads a stored document; one that no longer parses (it was written by a newer version with
/// a value this one does not know) falls back to the defaults rather than locking the admin out.
pub fn preferences_of(row: Option<&PreferencesRow>) -> SyncPreferences {
    let Some(row) = row else {
        return SyncPreferences::default();
    };
    let mut prefs = serde_json::from_str::<SyncPreferences>(&row.preferences).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "stored sync preferences do not parse; using the defaults");
        SyncPreferences::default()
    });
    prefs.updated_at = Some(row.updated_at.and_utc());
    prefs
}

fn check(prefs: &SyncPreferences) -> Result<(), ApiError> {
    for (field, ms) in prefs.intervals.named() {
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) {
            return Err(ApiError::unprocessable(
                field,
                format!(
                    "must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS} milliseconds, not {ms}"
                ),
            ));
        }
    }
    Ok(())
}

fn no_cache(prefs: &SyncPreferences) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .json(prefs)
}

pub async fn get_my_preferences(
    state: web::Data<AppState>,
    admin: AuthAdmin,
) -> Result<HttpResponse, ApiError> {
    let id = admin.id;
    let row = state
        .db
        .run(move |conn| with_store!(conn, |store| Ok(store.find_preferences(id)?)))
        .await?;
    Ok(no_cache(&preferences_of(row.as_ref())))
}

pub async fn put_my_preferences(
    state: web::Data<AppState>,
    admin: AuthAdmin,
    meta: RequestMeta,
    body: web::Json<SyncPreferences>,
) -> Result<HttpResponse, ApiError> {
    let mut prefs = body.into_inner();
    prefs.updated_at = None;
    check(&prefs)?;
    let document = serde_json::to_string(&prefs).map_err(ApiError::internal)?;
    let id = admin.id;
    let actor = admin.actor();
    let row = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| store.write_tx(|tx| {
                let before = tx.find_preferences(id)?;
                let saved = tx.save_preferences(id, &document)?;
                record(
                    tx,
                    &actor,
                    &meta,
                    Recorded {
                        action: "sync_preferences.updated",
                        resource: RESOURCE,
                        id,
                        op: if before.is_some() {
                            Op::Updated
                        } else {
                            Op::Created
                        },
                        version: saved.version,
                        summary: json!({ "after": prefs }),
                    },
                )?;
                Ok::<_, ApiError>(saved)
            }))
        })
        .await?;
    Ok(no_cache(&preferences_of(Some(&row))))
}
