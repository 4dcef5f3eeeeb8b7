//! Expiry as an event: when an active key's `expires_at` passes, its status becomes `expired`
//! through an ordinary mutation (version bump, audit entry by `system`, change-feed entry).
//!
//! So dashboards hear about expiry through push like any other change, and list ETags, which
//! follow the change feed, stay truthful. The sweeper sleeps until the next expiry it knows of,
//! and looks again at least every `RECHECK` for keys created or changed meanwhile. Between an
//! expiry instant and the sweep, reads already report the key as `expired` (derived from
//! `expires_at`), and license validation always checks `expires_at` itself.

use std::time::Duration;

use keysync_shared::KeyStatus;

use crate::db::keys::KeyStore;
use crate::db::models::Actor;
use crate::db::store::now;
use crate::db::{Database, Store};
use crate::error::ApiError;
use crate::http::RequestMeta;
use crate::routes::license_keys::set_status_in;
use crate::with_store;

const RECHECK: Duration = Duration::from_secs(5);
const BATCH: i64 = 500;

pub fn spawn(db: Database) {
    tokio::spawn(async move {
        loop {
            let wait = match sweep_once(&db).await {
                Ok((swept, next)) => {
                    if swept > 0 {
                        tracing::info!(swept, "license keys expired");
                    }
                    next.map_or(RECHECK, |next| next.min(RECHECK))
                }
                Err(err) => {
                    tracing::warn!(error = %err, "expiry sweep failed");
                    RECHECK
                }
            };
            tokio::time::sleep(wait).await;
        }
    });
}

/// Expires every lapsed key; returns how many, and how long until the next expiry.
pub async fn sweep_once(db: &Database) -> Result<(usize, Option<Duration>), ApiError> {
    let mut swept = 0;
    loop {
        let n = db
            .run(|conn| {
                with_store!(conn, |store| store.write_tx(|tx| {
                    let lapsed = tx.lapsed_keys(now(), BATCH)?;
                    for key in &lapsed {
                        set_status_in(
                            tx,
                            &Actor::System,
                            &RequestMeta::default(),
                            key,
                            KeyStatus::Expired,
                            "license_key.expired",
                            false,
                        )?;
                    }
                    Ok::<_, ApiError>(lapsed.len())
                }))
            })
            .await?;
        swept += n;
        if (n as i64) < BATCH {
            break;
        }
    }
    let next = db
        .run(|conn| {
            with_store!(conn, |store| store
                .next_expiry_after(now())
                .map_err(ApiError::from))
        })
        .await?;
    let wait = next.map(|at| (at - now()).to_std().unwrap_or_default() + Duration::from_millis(5));
    Ok((swept, wait))
}
