//! The group-commit writer: the one path by which license-client attempts reach the database.
//!
//! Why: one transaction per validation costs a commit each, and on SQLite commits are serialised
//! anyway. A dedicated thread instead drains a bounded channel of pending attempts and applies as
//! many as are waiting (up to [`MAX_BATCH`]) in ONE write transaction, then answers every waiter
//! through its oneshot. Each attempt still reads its key fresh inside that transaction, so a key
//! suspended a moment ago is seen as suspended; and because every seat change goes through this
//! serialised path (plus row locks and the `activations` unique constraint on PostgreSQL, where
//! several instances may run), seats are never over-allocated.
//!
//! Guarantees:
//! - Backpressure: the channel holds at most `capacity` attempts; when it is full a new attempt
//!   is refused at once with a 503 instead of queueing without bound.
//! - No accepted attempt is lost: each gets an answer. If a batch's transaction fails, every
//!   attempt of it is retried alone, so one bad item cannot fail the others. If the caller went
//!   away meanwhile, the attempt is still applied and audited.
//! - The thread stops when the last [`ValidationWriter`] handle is dropped, after draining what
//!   was queued.

use std::panic::AssertUnwindSafe;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::attempts::{self, Attempt, Deactivation, Outcome, Validation};
use crate::db::{Database, Db};
use crate::error::ApiError;
use crate::with_store;

/// The most attempts applied in one transaction; bounds how long the write lock is held.
pub const MAX_BATCH: usize = 256;

struct Job {
    attempt: Attempt,
    reply: oneshot::Sender<Result<Outcome, ApiError>>,
}

/// A handle to the writer thread; cheap to share behind the app state.
#[derive(Debug, Clone)]
pub struct ValidationWriter {
    sender: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl ValidationWriter {
    /// Starts the writer thread on `db`; at most `capacity` attempts wait at a time.
    pub fn start(db: Database, capacity: usize) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        std::thread::Builder::new()
            .name("keysync-validation-writer".into())
            .spawn(move || run(db, receiver))?;
        Ok(Self { sender })
    }

    /// Queues `attempt` and waits until it is committed (or refused).
    pub async fn submit(&self, attempt: Attempt) -> Result<Outcome, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .try_send(Job { attempt, reply })
            .map_err(|err| match err {
                TrySendError::Full(_) => {
                    tracing::warn!("validation queue full; answering 503");
                    ApiError::Unavailable(
                        "too many license checks are waiting; retry shortly".into(),
                    )
                }
                TrySendError::Closed(_) => {
                    ApiError::Unavailable("the license service is stopping".into())
                }
            })?;
        answer.await.map_err(|_| {
            ApiError::internal(anyhow::anyhow!(
                "the validation writer dropped an attempt without answering"
            ))
        })?
    }

    pub async fn validate(
        &self,
        attempt: attempts::ValidateAttempt,
    ) -> Result<Validation, ApiError> {
        match self.submit(Attempt::Validate(attempt)).await? {
            Outcome::Validation(v) => Ok(v),
            other => Err(mismatch(&other)),
        }
    }

    pub async fn deactivate(
        &self,
        attempt: attempts::DeactivateAttempt,
    ) -> Result<Deactivation, ApiError> {
        match self.submit(Attempt::Deactivate(attempt)).await? {
            Outcome::Deactivation(d) => Ok(d),
            other => Err(mismatch(&other)),
        }
    }

    /// Audits an attempt a rate limit refused.
    pub async fn record_rate_limited(
        &self,
        attempt: attempts::RateLimitedAttempt,
    ) -> Result<(), ApiError> {
        self.submit(Attempt::RateLimited(attempt)).await.map(|_| ())
    }
}

fn mismatch(outcome: &Outcome) -> ApiError {
    ApiError::internal(anyhow::anyhow!(
        "the validation writer answered with the wrong kind of outcome: {outcome:?}"
    ))
}

fn run(db: Database, mut receiver: mpsc::Receiver<Job>) {
    while let Some(first) = receiver.blocking_recv() {
        // Everything that queued while the previous batch was committing goes into this one.
        let mut jobs = Vec::with_capacity(receiver.len().min(MAX_BATCH) + 1);
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // A panic would otherwise end the thread and with it every later validation; its own
        // waiters see their oneshot dropped and answer 500.
        if std::panic::catch_unwind(AssertUnwindSafe(|| process(&db, jobs))).is_err() {
            tracing::error!("a validation batch panicked; its attempts were answered 500");
        }
    }
    tracing::debug!("validation writer stopped");
}

fn process(db: &Database, jobs: Vec<Job>) {
    let mut conn = match db.get_blocking() {
        Ok(conn) => conn,
        Err(_) => {
            for job in jobs {
                let _ = job.reply.send(Err(ApiError::Unavailable(
                    "the database is unavailable; try again shortly".into(),
                )));
            }
            return;
        }
    };
    with_store!(&mut conn, |store| process_on(store, jobs))
}

fn process_on<S: Db>(store: &mut S, jobs: Vec<Job>) {
    let batch: Vec<&Attempt> = jobs.iter().map(|job| &job.attempt).collect();
    match apply_batch(store, &batch) {
        Ok(outcomes) => {
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                // A waiter that went away no longer needs its answer; the attempt is committed.
                let _ = job.reply.send(Ok(outcome));
            }
        }
        Err(err) if jobs.len() == 1 => {
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.reply.send(Err(err));
            }
        }
        Err(err) => {
            tracing::warn!(
                error = %err,
                attempts = jobs.len(),
                "validation batch failed; retrying its attempts one by one"
            );
            for job in jobs {
                let result = apply_batch(store, &[&job.attempt]).and_then(|mut outcomes| {
                    outcomes.pop().ok_or_else(|| {
                        ApiError::internal(anyhow::anyhow!("a batch of one had no outcome"))
                    })
                });
                let _ = job.reply.send(result);
            }
        }
    }
}

/// Applies `batch` in one write transaction: all of it commits, or none of it.
fn apply_batch<S: Db>(store: &mut S, batch: &[&Attempt]) -> Result<Vec<Outcome>, ApiError> {
    store.write_tx(|tx| {
        let mut keys: Vec<&str> = batch.iter().filter_map(|a| a.lookup_key()).collect();
        keys.sort_unstable();
        keys.dedup();
        // Row locks first, change-feed lock (taken by `append_change`) after: the same order as
        // every admin mutation, so the two never wait on each other in a cycle.
        tx.lock_keys(&keys)?;
        batch
            .iter()
            .map(|attempt| attempts::apply(tx, attempt))
            .collect()
    })
}
