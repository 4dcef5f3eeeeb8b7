//! The group-commit writer: the one path by which license-client attempts reach the database.
//!
//! Why: one transaction per validation costs a commit each, and on SQLite commits are serialised
//! anyway. A dedicated thread instead drains a bounded channel of pending attempts and applies as
//! many as are waiting (up to [`MAX_BATCH`]) in ONE write transaction. It then hands the
//! committed batch to a second thread, the answerer, which signs the batch's validation answers
//! together ([`Sealer`], one signature per batch) and answers every waiter through its oneshot,
//! while the writer already runs its next transaction. Each attempt still reads its key fresh
//! inside that transaction, so a key suspended a moment ago is seen as suspended; and because
//! every seat change goes through this serialised path (plus row locks and the `activations`
//! unique constraint on PostgreSQL, where several instances may run), seats are never
//! over-allocated.
//!
//! Guarantees:
//! - Backpressure: the channel holds at most `capacity` attempts; when it is full a new attempt
//!   is refused at once with a 503 instead of queueing without bound.
//! - No accepted attempt is lost: each gets an answer. If a batch's transaction fails, every
//!   attempt of it is retried alone, so one bad item cannot fail the others. If the caller went
//!   away meanwhile, the attempt is still applied and audited.
//! - Every attempt leaves exactly one audit entry, answered or not. One refused because the queue
//!   was full goes to a small side list of audit-only records (no reply awaited) that the writer
//!   commits with its next batch (code `UNAVAILABLE`); one whose own transaction failed even
//!   alone is audited in a transaction of its own (code `ERROR`) before its 500 goes out. The
//!   side list is bounded too ([`MAX_UNANSWERED`]); past that, a refusal is only logged.
//! - The threads stop when the last [`ValidationWriter`] handle is dropped, after draining what
//!   was queued: the writer first, then the answerer with the batches the writer handed it.
//! - A panic while a committed batch is being answered leaves that batch's waiters without an
//!   answer (they see a 500); what they attempted is committed and audited, and the answerer
//!   goes on with the next batch.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::attempts::{self, Attempt, BatchContext, Deactivation, Outcome, Validation};
use super::attempts::{ERROR_CODE, UNAVAILABLE_CODE};
use super::Sealer;
use crate::db::{Database, Db};
use crate::error::ApiError;
use crate::with_store;

/// The most attempts applied in one transaction; bounds how long the write lock is held.
pub const MAX_BATCH: usize = 256;
/// The most refused attempts waiting to be audited. Each is a few hundred bytes; only a writer
/// stalled for long (the database gone) fills it, and then the refusals are logged instead.
pub const MAX_UNANSWERED: usize = 65_536;

// Boxing the attempt would cost an allocation per validation to shrink the rare wake-up job.
#[allow(clippy::large_enum_variant)]
enum Job {
    Attempt {
        attempt: Attempt,
        reply: oneshot::Sender<Result<Outcome, ApiError>>,
    },
    /// Only wakes the writer so that it audits the refused attempts in [`Unanswered`].
    Wake,
}

/// Attempts refused without reaching the writer, waiting to be audited with its next batch.
type Unanswered = Arc<Mutex<Vec<Attempt>>>;

fn take_unanswered(list: &Unanswered) -> Vec<Attempt> {
    std::mem::take(&mut *list.lock().unwrap_or_else(|p| p.into_inner()))
}

/// A handle to the writer thread; cheap to share behind the app state.
#[derive(Debug, Clone)]
pub struct ValidationWriter {
    sender: mpsc::Sender<Job>,
    unanswered: Unanswered,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl ValidationWriter {
    /// Starts the writer and answerer threads on `db`; at most `capacity` attempts wait at a
    /// time, and `sealer` signs the answers of each batch.
    pub fn start(db: Database, capacity: usize, sealer: Sealer) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let unanswered = Unanswered::default();
        let list = unanswered.clone();
        let answerer = Answerer::start(sealer)?;
        std::thread::Builder::new()
            .name("keysync-validation-writer".into())
            .spawn(move || run(db, answerer, receiver, list))?;
        Ok(Self { sender, unanswered })
    }

    /// Queues `attempt` and waits until it is committed (or refused).
    pub async fn submit(&self, attempt: Attempt) -> Result<Outcome, ApiError> {
        let (reply, answer) = oneshot::channel();
        match self.sender.try_send(Job::Attempt { attempt, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                tracing::warn!("validation queue full; answering 503");
                if let Job::Attempt { attempt, .. } = job {
                    self.audit_refused(attempt.unanswered(UNAVAILABLE_CODE));
                }
                return Err(ApiError::Unavailable(
                    "too many license checks are waiting; retry shortly".into(),
                ));
            }
            Err(TrySendError::Closed(_)) => {
                return Err(ApiError::Unavailable(
                    "the license service is stopping".into(),
                ))
            }
        }
        answer.await.map_err(|_| {
            ApiError::internal(anyhow::anyhow!(
                "the validation writer dropped an attempt without answering"
            ))
        })?
    }

    /// Puts `attempt` on the side list the writer audits with its next batch.
    fn audit_refused(&self, attempt: Attempt) {
        {
            let mut list = self.unanswered.lock().unwrap_or_else(|p| p.into_inner());
            if list.len() >= MAX_UNANSWERED {
                tracing::error!("too many refused license checks waiting; one is not audited");
                return;
            }
            list.push(attempt);
        }
        // The writer reads the side list after taking jobs off the channel. If this wake-up
        // does not fit, the channel holds jobs the writer has yet to take, and it reads the list
        // (with this attempt on it) after taking them.
        let _ = self.sender.try_send(Job::Wake);
    }

    /// Attempts waiting in the queue right now.
    pub fn queued(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
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

/// One attempt of a batch: what to apply, and whom to answer (`None` for audit-only records of
/// refused attempts, which nobody waits for).
struct Pending {
    attempt: Attempt,
    reply: Option<oneshot::Sender<Result<Outcome, ApiError>>>,
}

impl Pending {
    fn answer(&mut self, result: Result<Outcome, ApiError>) {
        if let Some(reply) = self.reply.take() {
            // A waiter that went away no longer needs its answer; the attempt is committed.
            let _ = reply.send(result);
        }
    }
}

/// How many committed batches may wait for the answerer before the writer waits for it. It signs
/// and answers a batch in a fraction of the time the writer takes to commit one, so this only
/// bounds the queue should that ever change.
const ANSWER_QUEUE: usize = 8;

/// A committed batch: its attempts (with their waiters) and their outcomes, in order.
struct Committed {
    batch: Vec<Pending>,
    outcomes: Vec<Outcome>,
}

impl Committed {
    fn answer(mut self, sealer: &Sealer) {
        let attempts: Vec<&Attempt> = self.batch.iter().map(|p| &p.attempt).collect();
        sealer.seal(&attempts, &mut self.outcomes);
        for (pending, outcome) in self.batch.iter_mut().zip(self.outcomes) {
            pending.answer(Ok(outcome));
        }
    }
}

/// The handle to the answerer thread, held by the writer thread. Its `sealer` also signs what the
/// writer answers itself: attempts retried alone after their batch failed.
struct Answerer {
    sender: std::sync::mpsc::SyncSender<Committed>,
    sealer: Sealer,
}

impl Answerer {
    fn start(sealer: Sealer) -> std::io::Result<Self> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Committed>(ANSWER_QUEUE);
        let own = sealer.clone();
        std::thread::Builder::new()
            .name("keysync-validation-answerer".into())
            .spawn(move || {
                // Ends once the writer thread has stopped and every batch it handed over is
                // answered.
                while let Ok(committed) = receiver.recv() {
                    let answered =
                        std::panic::catch_unwind(AssertUnwindSafe(|| committed.answer(&own)));
                    if answered.is_err() {
                        tracing::error!(
                            "answering a committed validation batch panicked; its waiters get a 500"
                        );
                    }
                }
            })?;
        Ok(Self { sender, sealer })
    }

    fn answer(&self, committed: Committed) {
        if let Err(std::sync::mpsc::SendError(committed)) = self.sender.send(committed) {
            // The answerer is gone (it only stops with the writer); answer here instead.
            committed.answer(&self.sealer);
        }
    }
}

fn run(
    db: Database,
    answerer: Answerer,
    mut receiver: mpsc::Receiver<Job>,
    unanswered: Unanswered,
) {
    while let Some(first) = receiver.blocking_recv() {
        // Everything that queued while the previous batch was committing goes into this one.
        let mut batch = Vec::with_capacity(receiver.len().min(MAX_BATCH) + 1);
        let mut push = |job: Job| {
            if let Job::Attempt { attempt, reply } = job {
                batch.push(Pending {
                    attempt,
                    reply: Some(reply),
                });
            }
        };
        push(first);
        let mut taken = 1;
        while taken < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => push(job),
                Err(_) => break,
            }
            taken += 1;
        }
        // Read after taking the jobs (see `audit_refused`).
        batch.extend(
            take_unanswered(&unanswered)
                .into_iter()
                .map(|attempt| Pending {
                    attempt,
                    reply: None,
                }),
        );
        if batch.is_empty() {
            continue;
        }
        // A panic would otherwise end the thread and with it every later validation. Its
        // waiters see their oneshot dropped and answer 500; what they attempted is then audited
        // on its own.
        let processed =
            std::panic::catch_unwind(AssertUnwindSafe(|| process(&db, &answerer, &mut batch)));
        if processed.is_err() {
            tracing::error!("a validation batch panicked; its attempts were answered 500");
            let mut records: Vec<Pending> = batch
                .into_iter()
                .filter(|p| p.reply.is_some())
                .map(|p| Pending {
                    attempt: p.attempt.unanswered(ERROR_CODE),
                    reply: None,
                })
                .collect();
            let audited = std::panic::catch_unwind(AssertUnwindSafe(|| {
                process(&db, &answerer, &mut records)
            }));
            if audited.is_err() {
                tracing::error!("auditing a panicked batch panicked too; its attempts are lost");
            }
        }
    }
    tracing::debug!("validation writer stopped");
}

fn process(db: &Database, answerer: &Answerer, batch: &mut Vec<Pending>) {
    let mut conn = match db.get_blocking() {
        Ok(conn) => conn,
        Err(_) => {
            // Nothing can be written now, audit entries included.
            tracing::error!(
                attempts = batch.len(),
                "the database is unavailable; license checks answered 503 without an audit entry"
            );
            for pending in batch {
                pending.answer(Err(ApiError::Unavailable(
                    "the database is unavailable; try again shortly".into(),
                )));
            }
            return;
        }
    };
    with_store!(&mut conn, |store| process_on(store, answerer, batch))
}

fn process_on<S: Db>(store: &mut S, answerer: &Answerer, batch: &mut Vec<Pending>) {
    let attempts: Vec<&Attempt> = batch.iter().map(|p| &p.attempt).collect();
    let mut failed = match apply_batch(store, &attempts) {
        Ok(outcomes) => {
            answerer.answer(Committed {
                batch: std::mem::take(batch),
                outcomes,
            });
            return;
        }
        Err(err) => Some(err),
    };
    let single = batch.len() == 1;
    if !single {
        if let Some(err) = &failed {
            tracing::warn!(
                error = %err,
                attempts = batch.len(),
                "validation batch failed; retrying its attempts one by one"
            );
        }
    }
    for pending in batch.iter_mut() {
        // A batch of one already failed alone.
        let alone = match failed.take().filter(|_| single) {
            Some(err) => Err(err),
            None => apply_one(store, &pending.attempt),
        };
        let err = match alone {
            Ok(mut outcome) => {
                answerer
                    .sealer
                    .seal(&[&pending.attempt], std::slice::from_mut(&mut outcome));
                pending.answer(Ok(outcome));
                continue;
            }
            Err(err) => err,
        };
        // The attempt itself cannot be applied; its audit entry alone still can be (unless the
        // attempt was nothing but an audit entry).
        let not_audited = match &pending.attempt {
            Attempt::Validate(_) | Attempt::Deactivate(_) => {
                apply_one(store, &pending.attempt.clone().unanswered(ERROR_CODE))
                    .err()
                    .map(|e| format!("{e:?}"))
            }
            // What failed was its audit entry.
            Attempt::RateLimited(_) | Attempt::Unanswered(_) => Some(format!("{err:?}")),
        };
        if let Some(cause) = not_audited {
            tracing::error!(
                error = %cause,
                "a failed license-client attempt could not be audited"
            );
        }
        pending.answer(Err(err));
    }
}

/// Applies `attempt` alone, in a transaction of its own.
fn apply_one<S: Db>(store: &mut S, attempt: &Attempt) -> Result<Outcome, ApiError> {
    apply_batch(store, &[attempt])?
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a batch of one had no outcome")))
}

/// Applies `batch` in one write transaction: all of it commits, or none of it.
fn apply_batch<S: Db>(store: &mut S, batch: &[&Attempt]) -> Result<Vec<Outcome>, ApiError> {
    store.write_tx(|tx| {
        let mut keys: Vec<&str> = batch.iter().filter_map(|a| a.lookup_key()).collect();
        keys.sort_unstable();
        keys.dedup();
        // Row locks first, change-feed lock (taken by `append_change`) after: the same order as
        // every admin mutation, so the two never wait on each other in a cycle.
        let mut ctx = BatchContext::new(tx.lock_keys(&keys)?);
        let outcomes = batch
            .iter()
            .map(|attempt| attempts::apply(tx, &mut ctx, attempt))
            .collect::<Result<Vec<_>, _>>()?;
        ctx.write(tx)?;
        Ok(outcomes)
    })
}
