//! SQLite WAL checkpoints on a thread of their own.
//!
//! Why: by default the connection whose commit pushes the write-ahead log past 1,000 pages copies
//! the log back into the database file and `fsync`s it, inside that commit. On the license
//! validation path that connection is the group-commit writer, so every few seconds a batch of
//! waiting clients paid for a checkpoint (the writer's slowest batches, and the p99). Here a
//! background thread runs `PASSIVE` checkpoints (which never block writers or readers), and the
//! pool's connections only checkpoint themselves as a fallback, once the log is far larger than
//! this thread lets it grow.
//!
//! While writes keep coming the thread checkpoints every [`BUSY_INTERVAL`]: each pass then has
//! little to copy and `fsync`, and the fallback, which still runs under a sustained stream of
//! writes (see `docs/architecture.md`), has less left to copy. When a pass finds nothing new it
//! slows to [`IDLE_INTERVAL`], so an idle database costs a few cheap pragmas a second.

use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::sql_types::Integer;
use diesel::{QueryableByName, RunQueryDsl};

use super::SqlitePool;

/// How often the thread checkpoints while the log keeps growing. In repeated runs of the
/// validation benchmark (SQLite, 64 connections) 20 ms instead of 250 ms lowered the median p99
/// from about 25 ms (7 runs) to 18.7 ms (13 runs), at the same throughput; run-to-run spread
/// on the benchmark machine is wide (13.5 to 25.2 ms at 20 ms).
pub const BUSY_INTERVAL: Duration = Duration::from_millis(20);
/// How often it looks when the last pass found nothing new to copy.
pub const IDLE_INTERVAL: Duration = Duration::from_millis(250);

/// Pages after which a committing connection checkpoints by itself (the fallback; SQLite's
/// default is 1,000). 40,000 pages of 4 KiB bound the log at about 160 MB.
///
/// Under a sustained stream of batches this is also how often the log starts over: the passes
/// above copy most of it back but never catch up with the writer, and a restart needs every
/// frame copied back and the database file `fsync`ed before the next write transaction begins.
/// The writer then waits for what is left, some milliseconds per restart. In the validation
/// benchmark the log reached 10,000 pages every 0.4 s; at 40,000 it restarts four times less
/// often, and the median p99 of three back-to-back runs on one server went from 10.2 and
/// 11.0 ms to 8.4 and 7.3 ms (20,000 pages: 8.1 and 8.4 ms).
pub const FALLBACK_AUTOCHECKPOINT_PAGES: u32 = 40_000;

/// Keeps the checkpoint thread running; it stops within [`IDLE_INTERVAL`] of the last clone's
/// drop.
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

/// What `PRAGMA wal_checkpoint` reports: frames in the log, and how many of them are now copied
/// back into the database file.
#[derive(Debug, QueryableByName)]
struct Checkpointed {
    #[diesel(sql_type = Integer)]
    log: i32,
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

/// The wait before the next pass: short while the log grows (this pass copied frames, or left
/// some behind), long once a pass finds the log as the previous one left it.
fn next_interval(previous: Option<&Checkpointed>, now: &Checkpointed) -> Duration {
    let unchanged =
        previous.is_some_and(|p| p.log == now.log && p.checkpointed == now.checkpointed);
    if unchanged && now.checkpointed >= now.log {
        IDLE_INTERVAL
    } else {
        BUSY_INTERVAL
    }
}

fn run(pool: &SqlitePool, alive: &Weak<Checkpointer>) {
    let mut previous: Option<Checkpointed> = None;
    let mut interval = IDLE_INTERVAL;
    loop {
        std::thread::sleep(interval);
        if alive.upgrade().is_none() {
            return;
        }
        // A busy pool means requests are waiting: skip this tick rather than queue behind them.
        let Ok(mut conn) = pool.get_timeout(IDLE_INTERVAL) else {
            continue;
        };
        match diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
            .get_result::<Checkpointed>(&mut *conn)
        {
            Ok(now) => {
                interval = next_interval(previous.as_ref(), &now);
                previous = Some(now);
            }
            Err(err) => {
                tracing::debug!(error = %err, "SQLite checkpoint failed; retrying later");
                interval = IDLE_INTERVAL;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(log: i32, checkpointed: i32) -> Checkpointed {
        Checkpointed { log, checkpointed }
    }

    #[test]
    fn a_growing_or_unfinished_log_is_checkpointed_again_soon() {
        assert_eq!(next_interval(None, &pass(10, 10)), BUSY_INTERVAL);
        assert_eq!(
            next_interval(Some(&pass(10, 10)), &pass(40, 40)),
            BUSY_INTERVAL
        );
        assert_eq!(
            next_interval(Some(&pass(40, 40)), &pass(40, 30)),
            BUSY_INTERVAL
        );
        // The log restarted from its beginning and holds new frames.
        assert_eq!(
            next_interval(Some(&pass(900, 900)), &pass(12, 12)),
            BUSY_INTERVAL
        );
    }

    #[test]
    fn a_log_left_as_it_was_slows_the_thread_down() {
        assert_eq!(
            next_interval(Some(&pass(40, 40)), &pass(40, 40)),
            IDLE_INTERVAL
        );
        assert_eq!(next_interval(Some(&pass(0, 0)), &pass(0, 0)), IDLE_INTERVAL);
    }

    #[test]
    fn the_pragma_reports_a_passive_pass_on_a_real_database() {
        let dir = tempfile::tempdir().unwrap();
        let target = crate::config::DatabaseTarget::Sqlite(dir.path().join("c.db"));
        let db = super::super::Database::connect(&target, 2, Duration::from_secs(5)).unwrap();
        let super::super::Database::Sqlite(pool, _) = &db else {
            panic!("a SQLite target opens a SQLite pool");
        };
        let mut conn = pool.get().unwrap();
        diesel::sql_query("CREATE TABLE t (x INTEGER)")
            .execute(&mut *conn)
            .unwrap();
        diesel::sql_query("INSERT INTO t VALUES (1)")
            .execute(&mut *conn)
            .unwrap();

        let first = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
            .get_result::<Checkpointed>(&mut *conn)
            .unwrap();
        let again = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
            .get_result::<Checkpointed>(&mut *conn)
            .unwrap();

        assert!(first.log > 0, "the writes are in the log: {first:?}");
        assert_eq!(first.checkpointed, first.log);
        assert_eq!(next_interval(Some(&first), &again), IDLE_INTERVAL);
    }
}
