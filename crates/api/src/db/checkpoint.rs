//! SQLite WAL checkpoints on a thread of their own.
//!
//! Why: by default the connection whose commit pushes the write-ahead log past 1,000 pages copies
//! the log back into the database file and `fsync`s it, inside that commit. On the license
//! validation path that connection is the group-commit writer, so every few seconds a batch of
//! waiting clients paid for a checkpoint (the writer's slowest batches, and the p99). Here a
//! background thread runs a `PASSIVE` checkpoint (which never blocks writers or readers) a few
//! times a second, and the pool's connections only checkpoint themselves as a fallback, once the
//! log is far larger than this thread lets it grow.

use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::connection::SimpleConnection;

use super::SqlitePool;

/// How often the thread checkpoints. At the writer's peak rate the log grows a few MB in this
/// time; an idle database costs one cheap pragma per tick.
const INTERVAL: Duration = Duration::from_millis(250);

/// Pages after which a committing connection checkpoints by itself (the fallback; SQLite's
/// default is 1,000). 10,000 pages of 4 KiB bound the log at about 40 MB.
pub const FALLBACK_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Keeps the checkpoint thread running; it stops within [`INTERVAL`] of the last clone's drop.
#[derive(Debug)]
pub struct Checkpointer {
    _private: (),
}

/// Starts the checkpoint thread for `pool`.
pub fn start(pool: SqlitePool) -> Arc<Checkpointer> {
    let token = Arc::new(Checkpointer { _private: () });
    let alive = Arc::downgrade(&token);
    let spawned = std::thread::Builder::new()
        .name("keysync-sqlite-checkpoint".into())
        .spawn(move || run(&pool, &alive));
    if let Err(err) = spawned {
        // The fallback autocheckpoint still bounds the log.
        tracing::warn!(error = %err, "cannot start the SQLite checkpoint thread");
    }
    token
}

fn run(pool: &SqlitePool, alive: &Weak<Checkpointer>) {
    loop {
        std::thread::sleep(INTERVAL);
        if alive.upgrade().is_none() {
            return;
        }
        // A busy pool means requests are waiting: skip this tick rather than queue behind them.
        let Ok(mut conn) = pool.get_timeout(INTERVAL) else {
            continue;
        };
        if let Err(err) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::debug!(error = %err, "SQLite checkpoint failed; retrying next tick");
        }
    }
}
