//! Retention: change-feed entries older than `change_retention_days` and audit entries older
//! than `audit_retention_days` are deleted in small batches, each its own short transaction with
//! a pause between, so writers are never held up for long. Runs a minute after start, then hourly.

use std::time::Duration;

use crate::db::changes::ChangeStore;
use crate::db::store::now;
use crate::db::Database;
use crate::error::ApiError;
use crate::with_store;

const BATCH: i64 = 1_000;
const PAUSE: Duration = Duration::from_millis(50);

pub fn spawn(db: Database, changes: chrono::Duration, audit: chrono::Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        loop {
            match prune_once(&db, changes, audit).await {
                Ok((c, a)) if c + a > 0 => {
                    tracing::info!(changes = c, audit_logs = a, "retention pruned old entries")
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "retention pass failed"),
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

/// One full pass; returns (change entries, audit entries) removed.
pub async fn prune_once(
    db: &Database,
    changes: chrono::Duration,
    audit: chrono::Duration,
) -> Result<(usize, usize), ApiError> {
    let mut removed = (0, 0);
    loop {
        let before = now() - changes;
        let n = db
            .run(move |conn| {
                with_store!(conn, |store| store
                    .prune_changes(before, BATCH)
                    .map_err(ApiError::from))
            })
            .await?;
        removed.0 += n;
        if n < BATCH as usize {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    loop {
        let before = now() - audit;
        let n = db
            .run(move |conn| {
                with_store!(conn, |store| store
                    .prune_audit(before, BATCH)
                    .map_err(ApiError::from))
            })
            .await?;
        removed.1 += n;
        if n < BATCH as usize {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    let signatures_before =
        now() - chrono::Duration::seconds(2 * crate::routes::sync::SIGNATURE_TOLERANCE_SECS);
    db.run(move |conn| {
        with_store!(conn, |store| store
            .forget_webhook_signatures_before(signatures_before)
            .map_err(ApiError::from))
    })
    .await?;
    Ok(removed)
}
