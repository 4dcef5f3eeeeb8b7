//! The live change feed: one follower task per server reads new change-feed rows from the
//! database and fans them out to every push subscriber and long-polling client.
//!
//! Policy:
//! - The database table is the source of truth; the follower only ever reads committed rows, in
//!   cursor order, so every instance (behind a load balancer, on one PostgreSQL) sees the same
//!   sequence. Wake-ups come from PostgreSQL `LISTEN keysync_changes` (writers `NOTIFY` in their
//!   transaction) or, on SQLite, from a short poll of the feed's newest cursor; a slow poll is
//!   the safety net on both.
//! - Fan-out uses one bounded broadcast ring shared by all subscribers, so an idle subscriber
//!   costs no queue of its own. A subscriber that falls a whole ring behind is told `reset` and
//!   must resynchronise through `/api/admin/sync`; nothing buffers without bound.
//! - Coalescing: within one read, only the last change of each row is published (last state
//!   wins). While some row is "hot" (published less than `coalesce` ago), the follower waits out
//!   the rest of that window before its next read, so no row is published more than once per
//!   window and published cursors stay in increasing order, which keeps `Last-Event-ID`
//!   resumption gap-free.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use keysync_shared::Change;
use tokio::sync::{broadcast, watch};

use crate::db::changes::ChangeStore;
use crate::db::models::ChangeRow;
use crate::db::Database;
use crate::error::ApiError;
use crate::with_store;

/// The followers of this process, woken right after any local write commits, so a change made
/// through this instance is published without waiting for a poll or a notification round trip.
static LOCAL_FOLLOWERS: std::sync::Mutex<Vec<std::sync::Weak<tokio::sync::Notify>>> =
    std::sync::Mutex::new(Vec::new());

/// Wakes every follower in this process (called after a write transaction commits).
pub fn wake_local_followers() {
    let mut followers = LOCAL_FOLLOWERS.lock().unwrap_or_else(|p| p.into_inner());
    followers.retain(|weak| match weak.upgrade() {
        Some(notify) => {
            notify.notify_one();
            true
        }
        None => false,
    });
}

/// The PostgreSQL channel writers notify on commit.
pub const CHANNEL: &str = "keysync_changes";
/// Cursors covered per follower query (so at most this many rows).
const READ_BATCH: i64 = 1_000;
/// The least time between two reads of the follower. Under a stream of commits (license
/// validations commit in groups, hundreds of times a second) the follower would otherwise read
/// after every one; waiting this long first lets one read carry many commits' rows, for at most
/// this much added delay on a push event.
const MIN_READ_GAP: Duration = Duration::from_millis(5);

/// A change as pushed: its cursor, and its server-sent-event frame, encoded once for every
/// subscriber.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub cursor: i64,
    pub frame: Bytes,
}

impl Pushed {
    pub fn of(change: &Change) -> Self {
        Self {
            cursor: change.cursor,
            frame: crate::sse::change_frame(change),
        }
    }
}

/// A published batch of changes, oldest first.
pub type Batch = Arc<Vec<Pushed>>;

pub fn change_of(row: &ChangeRow) -> Change {
    Change {
        cursor: row.cursor,
        resource: row.resource.clone(),
        op: row.op.clone(),
        id: row.resource_id,
        version: row.version,
        at: row.created_at.and_utc(),
        actor: row.actor.clone(),
        data: None,
    }
}

/// Tuning of the follower.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// How often to look for new rows when nothing woke the follower.
    pub poll: Duration,
    /// At most one event per row per this window.
    pub coalesce: Duration,
    /// Batches kept for subscribers that are behind.
    pub ring: usize,
}

/// The handle handlers use: subscribe to batches, or watch the newest published cursor.
#[derive(Clone)]
pub struct Feed {
    sender: broadcast::Sender<Batch>,
    latest: watch::Receiver<i64>,
}

impl Feed {
    /// Starts the follower (and, on PostgreSQL, its listener thread) from the feed's current end.
    pub async fn start(db: Database, options: FeedOptions) -> Result<Self, ApiError> {
        let start = db
            .run(|conn| with_store!(conn, |store| store.latest_cursor().map_err(ApiError::from)))
            .await?;
        let (sender, _) = broadcast::channel(options.ring.max(16));
        let (latest_tx, latest) = watch::channel(start);
        let wake = Arc::new(tokio::sync::Notify::new());
        LOCAL_FOLLOWERS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&wake));
        if let Some(url) = db.postgres_url() {
            listen::spawn(url, Arc::downgrade(&wake));
        }
        let follower = Follower {
            db,
            options,
            sender: sender.clone(),
            latest: latest_tx,
            wake,
            last: start,
            last_published: HashMap::new(),
        };
        tokio::spawn(follower.run());
        Ok(Self { sender, latest })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Batch> {
        self.sender.subscribe()
    }

    pub fn latest(&self) -> watch::Receiver<i64> {
        self.latest.clone()
    }

    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }
}

struct Follower {
    db: Database,
    options: FeedOptions,
    sender: broadcast::Sender<Batch>,
    latest: watch::Sender<i64>,
    wake: Arc<tokio::sync::Notify>,
    last: i64,
    last_published: HashMap<(String, i64), Instant>,
}

impl Follower {
    async fn run(mut self) {
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.options.poll) => {}
            }
            match self.drain().await {
                Ok(true) => tokio::time::sleep(MIN_READ_GAP).await,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "change feed read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Reads and publishes everything after `self.last`; `true` when it published something.
    async fn drain(&mut self) -> Result<bool, ApiError> {
        if let Some(moved) = self.skip_unwatched().await? {
            return Ok(moved);
        }
        let mut published = false;
        loop {
            let after = self.last;
            let through = after.saturating_add(READ_BATCH);
            let rows = self
                .db
                .run(move |conn| {
                    with_store!(conn, |store| store
                        .changes_in_range(after, through)
                        .map_err(ApiError::from))
                })
                .await?;
            let Some(last) = rows.last().map(|r| r.cursor) else {
                return Ok(published);
            };
            // A row published less than a window ago waits out the window; the next read then
            // carries its latest state (and whatever else arrived meanwhile).
            if let Some(wait) = self.hot_wait(&rows) {
                tokio::time::sleep(wait).await;
                continue;
            }
            // The range may have been full up to its end: more may follow it. (A range ending
            // in a gap left by a rolled-back writer is read on the next wake-up or poll.)
            let full = last == through;
            self.publish(&rows);
            published = true;
            self.last = last;
            self.announce(last);
            if !full {
                return Ok(published);
            }
        }
    }

    /// With no event stream open, moves past every committed entry without reading or framing
    /// them (a server validating licenses with no admin watching would otherwise encode every
    /// change for nobody). `Some(moved)` when no stream is open, whether or not there was
    /// anything to move past; `None` when the entries must be read and published as usual.
    /// Long polls only need the newest cursor.
    ///
    /// A stream that opens meanwhile misses nothing. It subscribes, then reads the newest
    /// cursor (`events.rs`); this announces the new end, then counts subscribers again. Either
    /// that count sees the stream, and the entries are read and published as usual, or the
    /// stream subscribed after the count and so reads an end at least this new one, past which
    /// it is sent everything live (a resuming stream replays from the database after
    /// subscribing, which covers the skipped entries as well).
    async fn skip_unwatched(&mut self) -> Result<Option<bool>, ApiError> {
        if self.sender.receiver_count() > 0 {
            return Ok(None);
        }
        let end = self
            .db
            .run(|conn| with_store!(conn, |store| store.latest_cursor().map_err(ApiError::from)))
            .await?;
        if end <= self.last {
            // Nothing new: a stream opening now is sent whatever comes next.
            return Ok(Some(false));
        }
        self.announce(end);
        if self.sender.receiver_count() > 0 {
            // Someone subscribed before the count: the entries up to `end` still go out.
            return Ok(None);
        }
        self.last = end;
        Ok(Some(true))
    }

    /// Makes `cursor` the newest published position; it never moves back.
    fn announce(&self, cursor: i64) {
        self.latest.send_if_modified(|latest| {
            let newer = cursor > *latest;
            if newer {
                *latest = cursor;
            }
            newer
        });
    }

    /// How long until every row in `rows` may be published again, if any may not yet.
    fn hot_wait(&self, rows: &[ChangeRow]) -> Option<Duration> {
        let now = Instant::now();
        rows.iter()
            .filter_map(|row| {
                self.last_published
                    .get(&(row.resource.clone(), row.resource_id))
            })
            .map(|published| (*published + self.options.coalesce).saturating_duration_since(now))
            .filter(|wait| !wait.is_zero())
            .max()
    }

    /// Publishes the last change of each row in `rows`, in cursor order.
    fn publish(&mut self, rows: &[ChangeRow]) {
        let now = Instant::now();
        let mut last_of_row: HashMap<(String, i64), i64> = HashMap::new();
        for row in rows {
            last_of_row.insert((row.resource.clone(), row.resource_id), row.cursor);
        }
        let mut batch = Vec::with_capacity(last_of_row.len());
        for row in rows {
            let key = (row.resource.clone(), row.resource_id);
            if last_of_row.get(&key) == Some(&row.cursor) {
                self.last_published.insert(key, now);
                batch.push(Pushed::of(&change_of(row)));
            }
        }
        let window = self.options.coalesce;
        if self.last_published.len() > 10_000 {
            self.last_published
                .retain(|_, t| now.duration_since(*t) < window);
        }
        // No receivers is not an error: nobody is listening right now.
        let _ = self.sender.send(Arc::new(batch));
    }
}

/// PostgreSQL `LISTEN`, on a thread of its own with a dedicated connection.
mod listen {
    use std::sync::Weak;
    use std::time::Duration;

    use diesel::pg::PgConnection;
    use diesel::{Connection, RunQueryDsl};

    use super::CHANNEL;

    /// The thread ends when the follower (the only strong owner of `wake`) is gone.
    pub fn spawn(url: String, wake: Weak<tokio::sync::Notify>) {
        let spawned = std::thread::Builder::new()
            .name("keysync-listen".into())
            .spawn(move || loop {
                match listen_until_error(&url, &wake) {
                    Ok(()) => return,
                    Err(err) => {
                        let Some(waker) = wake.upgrade() else { return };
                        tracing::warn!(error = %err, "LISTEN connection lost; reconnecting");
                        // A missed notification only delays delivery to the next poll.
                        waker.notify_one();
                        drop(waker);
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::error!(error = %err, "cannot start the LISTEN thread; relying on polling");
        }
    }

    /// Listens until the connection fails (`Err`) or the follower is gone (`Ok`).
    fn listen_until_error(url: &str, wake: &Weak<tokio::sync::Notify>) -> anyhow::Result<()> {
        let mut conn = PgConnection::establish(url)?;
        diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn)?;
        let mut idle = Duration::ZERO;
        loop {
            let mut woke = false;
            for notification in conn.notifications_iter() {
                notification?;
                woke = true;
            }
            let Some(waker) = wake.upgrade() else {
                return Ok(());
            };
            if woke {
                waker.notify_one();
            }
            drop(waker);
            // Reading notifications only drains the socket; a periodic round trip notices a
            // dead server.
            idle += Duration::from_millis(5);
            if idle >= Duration::from_secs(10) {
                diesel::sql_query("SELECT 1").execute(&mut conn)?;
                idle = Duration::ZERO;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
