//! SQLite WAL checkpoints on a thread of their own.
//!
//! Why: by default the connection whose commit pushes the write-ahead log past 1,000 pages copies
//! the log back into the database file and `fsync`s it, inside that commit. On the license
//! validation path that connection is the group-commit writer, so every few seconds a batch of
//! waiting clients paid for a checkpoint (the writer's slowest batches, and the p99). Here a
//! background thread runs `PASSIVE` checkpoints (which never block writers or readers): four a
//! second while the database is quiet, and back to back, 10 ms apart, while writes keep coming.
//! The pool's connections only checkpoint themselves as a fallback, once the log is far larger
//! than this thread lets it grow, and by then there are only the last few frames left to copy.

use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::sql_types::Integer;
use diesel::{QueryableByName, RunQueryDsl, SqliteConnection};

use super::SqlitePool;

/// How often the thread checkpoints while the log is small. An idle database costs one cheap
/// pragma per tick.
const INTERVAL: Duration = Duration::from_millis(250);

/// How soon the thread checkpoints again when the last checkpoint found at least
/// [`BUSY_LOG_FRAMES`] new frames: under a steady stream of writes it keeps up with the writer
/// instead of letting a quarter of a second of writes pile up.
const BUSY_INTERVAL: Duration = Duration::from_millis(10);

/// New log frames since the previous checkpoint above which the database counts as busy.
const BUSY_LOG_FRAMES: i32 = 256;

/// Pages after which a committing connection checkpoints by itself (the fallback; SQLite's
/// default is 1,000). 40,000 pages of 4 KiB bound the log at about 160 MB; SQLite reuses the
/// file from its start rather than growing it further.
///
/// Under a steady stream of writes the log never empties between two of this thread's
/// checkpoints, so it can only start over from its beginning after a checkpoint that holds off
/// writers: the fallback one, in the connection that crosses this size. On the validation path
/// that is the group-commit writer, and its checkpoint still syncs the log and the database file
/// (tens of milliseconds for the whole batch waiting on it) even though this thread has copied
/// most frames back by then. So the bound is set high, to make that rare: at 10,000 pages it came
/// about once a second under the validation benchmark and set its p99.
pub const FALLBACK_AUTOCHECKPOINT_PAGES: u32 = 40_000;

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

/// The row `PRAGMA wal_checkpoint` answers with.
#[derive(Debug, QueryableByName)]
struct Progress {
    /// Frames in the log.
    #[diesel(sql_type = Integer)]
    log: i32,
    /// Frames of it now copied back into the database file.
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

fn checkpoint(conn: &mut SqliteConnection) -> diesel::QueryResult<Progress> {
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn)
}

fn run(pool: &SqlitePool, alive: &Weak<Checkpointer>) {
    let mut pause = INTERVAL;
    // Frames already copied back as of the previous checkpoint, to tell how many are new.
    let mut copied = 0;
    loop {
        std::thread::sleep(pause);
        if alive.upgrade().is_none() {
            return;
        }
        // A busy pool means requests are waiting: skip this tick rather than queue behind them.
        let Ok(mut conn) = pool.get_timeout(INTERVAL) else {
            pause = INTERVAL;
            continue;
        };
        pause = match checkpoint(&mut conn) {
            Ok(progress) => {
                // The log started over (or stayed empty): every frame counts as new.
                let new = if progress.checkpointed < copied {
                    progress.checkpointed
                } else {
                    progress.checkpointed - copied
                };
                copied = progress.checkpointed;
                tracing::trace!(
                    log = progress.log,
                    checkpointed = progress.checkpointed,
                    "SQLite checkpoint"
                );
                if new >= BUSY_LOG_FRAMES {
                    BUSY_INTERVAL
                } else {
                    INTERVAL
                }
            }
            Err(err) => {
                tracing::debug!(error = %err, "SQLite checkpoint failed; retrying next tick");
                INTERVAL
            }
        };
    }
}
