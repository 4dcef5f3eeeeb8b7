//! `GET /api/admin/audit-logs`: the activity log, newest first.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use keysync_shared::{AuditLogView, Page};
use serde::Deserialize;

use crate::auth::AuthAdmin;
use crate::db::audit::{AuditFilter, AuditRow, AuditStore};
use crate::error::ApiError;
use crate::http::conditional_json;
use crate::pagination::{self, split_page, KeysetCursor};
use crate::startup::AppState;
use crate::with_store;

const CURSOR_SORT: &str = "-id";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListAuditQuery {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

fn bounded(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.len() > 200 => Err(ApiError::unprocessable(
            field,
            format!("{field} may have at most 200 characters"),
        )),
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

pub async fn list_audit_logs(
    req: HttpRequest,
    state: web::Data<AppState>,
    _admin: AuthAdmin,
    query: web::Query<ListAuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = pagination::limit(query.limit)?;
    let before = query
        .cursor
        .as_deref()
        .map(|raw| KeysetCursor::decode(raw, CURSOR_SORT))
        .transpose()?
        .map(|c| c.id);
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if from > to {
            return Err(ApiError::unprocessable("from", "from must not be after to"));
        }
    }
    let filter = AuditFilter {
        action: bounded("action", query.action)?,
        actor: bounded("actor", query.actor)?,
        target_kind: bounded("target_kind", query.target_kind)?,
        target_id: bounded("target_id", query.target_id)?,
        from: query.from.map(|t| t.naive_utc()),
        to: query.to.map(|t| t.naive_utc()),
    };
    let (rows, total) = state
        .db
        .run(move |conn| {
            with_store!(conn, |store| {
                let rows = store.list_audit(&filter, before, limit + 1)?;
                let total = store.count_audit(&filter)?;
                Ok::<_, ApiError>((rows, total))
            })
        })
        .await?;
    let (rows, next_cursor) = split_page(rows, limit, |row| {
        KeysetCursor {
            value: String::new(),
            id: row.id,
        }
        .encode(CURSOR_SORT)
    });
    let page = Page {
        items: rows
            .iter()
            .map(AuditRow::view)
            .collect::<Vec<AuditLogView>>(),
        next_cursor,
        total,
    };
    conditional_json(&req, None, &page)
}
