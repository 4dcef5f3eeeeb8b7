//! Writes of keys and customers (`PATCH`/`DELETE` with `If-Match`, and customer creates)
//! through the offline queue and the conflict dialog. Admin-user writes never come here: they
//! carry passwords, which must not rest in `localStorage` (the users page refuses them offline).
//!
//! [`Outbox::write`] sends a write now when it can; offline, or when the request fails on the
//! network, or while older writes still wait, it goes into the [`WriteQueue`] persisted in
//! `localStorage`, shown as pending, and is replayed in order when the connection returns, when
//! the admin signs in, and, while writes still wait, after a back-off (1 s doubling to 30 s:
//! a server that answered 503 or a request that failed while the browser stayed online fires
//! no `online` event). A 412, now or on replay, becomes a [`Conflict`] for the dialog.

use std::cell::{Cell, RefCell};

use keysync_shared::ErrorBody;
use leptos::prelude::*;
use serde_json::{Map, Value};
use wasm_bindgen::JsCast;

use crate::api::{self, ApiFailure};
use crate::data::{AdminData, NoticeKind};
use crate::session::Session;
use crate::sync::dom::{self, Listener};
pub use crate::sync::queue::NewWrite;
use crate::sync::queue::{
    already_applied, classify, current_of, storage_key, QueuedWrite, ReplayOutcome, WriteQueue,
};
use crate::sync::{BrowserClock, Clock};

/// A write that met a newer version on the server: the admin's change and the server's copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// What the admin did ("Edit SCO-7K2M").
    pub label: String,
    pub method: String,
    pub path: String,
    pub source: String,
    /// The admin's change (empty for a delete).
    pub mine: Map<String, Value>,
    /// The resource as it is on the server now.
    pub current: Map<String, Value>,
}

impl Conflict {
    /// The `If-Match` that targets the server's current version.
    pub fn current_etag(&self) -> Option<String> {
        self.current
            .get("version")
            .and_then(Value::as_i64)
            .map(|v| format!("\"v{v}\""))
    }
}

/// How the admin settled a conflict.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Re-send the whole change on top of the current version.
    KeepMine,
    /// Drop the change.
    TakeTheirs,
    /// Re-send only these fields of the change.
    Merge(Vec<String>),
}

/// What became of a write.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// It landed; the answer body.
    Done(String),
    /// Offline: queued for later.
    Queued,
    /// 412: the conflict dialog is open.
    Conflict,
}

#[derive(Debug, Clone, Copy)]
pub struct Outbox {
    pub pending: RwSignal<Vec<QueuedWrite>>,
    pub conflicts: RwSignal<Vec<Conflict>>,
    data: AdminData,
    session: Session,
}

/// Back-off before the first retry of a stalled replay, and its ceiling.
const RETRY_FIRST_MS: u32 = 1_000;
const RETRY_MAX_MS: u32 = 30_000;

thread_local! {
    /// The signed-in admin's queue, and whose it is.
    static QUEUE: RefCell<WriteQueue> = RefCell::new(WriteQueue::default());
    static OWNER: Cell<Option<i64>> = const { Cell::new(None) };
    static REPLAYING: Cell<bool> = const { Cell::new(false) };
    /// Retries since the queue last moved, and whether one is scheduled.
    static RETRIES: Cell<u32> = const { Cell::new(0) };
    static RETRY_SCHEDULED: Cell<bool> = const { Cell::new(false) };
    static ONLINE: RefCell<Option<Listener>> = const { RefCell::new(None) };
}

fn save_queue() {
    let Some(owner) = OWNER.with(Cell::get) else {
        return;
    };
    let json = QUEUE.with(|q| q.borrow().to_json());
    if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = storage.set_item(&storage_key(owner), &json);
    }
}

/// The wait before retry number `attempt` (0-based): doubling from one second, at most 30.
fn retry_delay_ms(attempt: u32) -> u32 {
    RETRY_FIRST_MS
        .saturating_mul(1 << attempt.min(5))
        .min(RETRY_MAX_MS)
}

fn object(json: Option<&str>) -> Map<String, Value> {
    match json.and_then(|j| serde_json::from_str(j).ok()) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn error_of(status: u16, body: &str) -> ApiFailure {
    let body = serde_json::from_str::<ErrorBody>(body).unwrap_or_else(|_| {
        ErrorBody::new("http_error", format!("The server answered HTTP {status}."))
    });
    ApiFailure::Server { status, body }
}

/// Sends one write; an empty `if_match` (a create) sends no `If-Match`.
async fn send(
    method: &str,
    path: &str,
    body: Option<String>,
    if_match: &str,
) -> Result<api::Raw, ApiFailure> {
    let header = [("If-Match", if_match)];
    let headers = if if_match.is_empty() {
        &[][..]
    } else {
        &header[..]
    };
    api::send(method, path, body, headers).await
}

impl Outbox {
    /// Creates the outbox for the signed-in shell, loads the signed-in admin's queue, replays
    /// what a previous page left in it, and replays again whenever the browser comes back online.
    pub fn provide(data: AdminData, session: Session) -> Self {
        let owner = session.0.with_untracked(|auth| match auth {
            crate::session::Auth::SignedIn(admin) => Some(admin.id),
            _ => None,
        });
        OWNER.with(|o| o.set(owner));
        let stored = owner.and_then(|id| dom::storage_get(&storage_key(id)));
        QUEUE.with(|q| *q.borrow_mut() = WriteQueue::load(stored.as_deref()));
        RETRIES.with(|r| r.set(0));
        let outbox = Self {
            pending: RwSignal::new(QUEUE.with(|q| q.borrow().items().cloned().collect())),
            conflicts: RwSignal::new(Vec::new()),
            data,
            session,
        };
        provide_context(outbox);
        if let Some(window) = web_sys::window() {
            let listener = Listener::new(window.unchecked_ref(), "online", move |_| {
                outbox.replay();
            });
            ONLINE.with(|o| *o.borrow_mut() = listener);
        }
        on_cleanup(|| {
            ONLINE.with(|o| drop(o.borrow_mut().take()));
            // Signed out: nothing of this admin's queue stays in memory or is replayed.
            OWNER.with(|o| o.set(None));
            QUEUE.with(|q| *q.borrow_mut() = WriteQueue::default());
        });
        outbox.replay();
        outbox
    }

    pub fn get() -> Option<Self> {
        use_context::<Outbox>()
    }

    fn show_pending(&self) {
        let items: Vec<_> = QUEUE.with(|q| q.borrow().items().cloned().collect());
        self.pending.try_set(items);
    }

    fn enqueue(&self, write: NewWrite) -> Written {
        QUEUE.with(|q| q.borrow_mut().push(write, BrowserClock.now()));
        save_queue();
        self.show_pending();
        Written::Queued
    }

    /// Sends a conditional write now, or queues it (see the module docs).
    pub async fn write(self, write: NewWrite) -> Result<Written, ApiFailure> {
        let waiting = QUEUE.with(|q| !q.borrow().is_empty());
        if waiting || !dom::navigator_online() {
            // Older writes first: this one may build on them.
            let queued = self.enqueue(write);
            self.replay();
            return Ok(queued);
        }
        match send(
            &write.method,
            &write.path,
            write.body.clone(),
            &write.if_match,
        )
        .await
        {
            Err(ApiFailure::Network(_)) => {
                let queued = self.enqueue(write);
                self.retry_later();
                Ok(queued)
            }
            Err(other) => Err(other),
            Ok(raw) if (200..300).contains(&raw.status) => Ok(Written::Done(raw.body)),
            Ok(raw) if raw.status == 412 => {
                self.open_conflict(
                    &write.label,
                    &write.method,
                    &write.path,
                    &write.source,
                    write.body.as_deref(),
                    current_of(&raw.body).as_deref(),
                );
                Ok(Written::Conflict)
            }
            Ok(raw) => Err(error_of(raw.status, &raw.body)),
        }
    }

    /// [`Self::write`], telling the admin what became of it: saved (and the lists refreshed),
    /// queued until the connection returns, or nothing when the conflict dialog opened. A
    /// refusal is the caller's to show.
    pub async fn write_and_tell(self, write: NewWrite) -> Result<(), ApiFailure> {
        let label = write.label.clone();
        match self.write(write).await? {
            Written::Done(_) => {
                self.data
                    .say(NoticeKind::Success, format!("{label}: saved."));
                self.data.after_mutation().await;
            }
            Written::Queued => self.data.say(
                NoticeKind::Success,
                format!("Offline: {label} will be sent when the connection returns."),
            ),
            Written::Conflict => {}
        }
        Ok(())
    }

    /// A dialog's write: [`Self::write_and_tell`] while `busy`, then `done` once it landed, was
    /// queued or went to the conflict dialog; a refusal goes to `refused` (a 401 also ends the
    /// session).
    pub fn submit(
        self,
        write: NewWrite,
        busy: RwSignal<bool>,
        done: impl Fn() + 'static,
        refused: impl Fn(ApiFailure) + 'static,
    ) {
        let session = crate::session::Session::get();
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = self.write_and_tell(write).await;
            busy.try_set(false);
            match result {
                Ok(()) => done(),
                Err(failure) => {
                    if failure.is_unauthorized() {
                        session.expire();
                    }
                    refused(failure);
                }
            }
        });
    }

    fn open_conflict(
        &self,
        label: &str,
        method: &str,
        path: &str,
        source: &str,
        mine: Option<&str>,
        current: Option<&str>,
    ) {
        let mine = object(mine);
        let Some(current_json) = current else {
            self.data.say(
                NoticeKind::Error,
                format!(
                    "{label}: it was changed or removed meanwhile; the list shows it as it is now."
                ),
            );
            return;
        };
        if already_applied(&mine, current_json) {
            // Landed earlier (its answer was lost): nothing to decide.
            return;
        }
        let conflict = Conflict {
            label: label.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            source: source.to_owned(),
            mine,
            current: object(Some(current_json)),
        };
        self.conflicts.try_update(|c| c.push(conflict));
    }

    /// Replays the queue in order until it is empty or the network fails again; then, while
    /// writes still wait, tries again after a back-off.
    pub fn replay(self) {
        if OWNER.with(Cell::get).is_none() || REPLAYING.with(|r| r.replace(true)) {
            return;
        }
        leptos::task::spawn_local(async move {
            let mut changed = false;
            let mut signed_out = false;
            while let Some(next) = QUEUE.with(|q| q.borrow().front().cloned()) {
                if !dom::navigator_online() {
                    break;
                }
                let outcome =
                    match send(&next.method, &next.path, next.body.clone(), &next.if_match).await {
                        Err(_) => ReplayOutcome::Network,
                        Ok(raw) => classify(Some(raw.status), raw.etag, &raw.body),
                    };
                match &outcome {
                    ReplayOutcome::Landed { .. } => changed = true,
                    ReplayOutcome::Conflict { current } => self.open_conflict(
                        &next.label,
                        &next.method,
                        &next.path,
                        &next.source,
                        next.body.as_deref(),
                        current.as_deref(),
                    ),
                    ReplayOutcome::Refused { message } => self.data.say(
                        NoticeKind::Error,
                        format!("{} could not be applied: {message}", next.label),
                    ),
                    ReplayOutcome::SignedOut => signed_out = true,
                    ReplayOutcome::Network => {}
                }
                if !matches!(outcome, ReplayOutcome::Network | ReplayOutcome::SignedOut) {
                    RETRIES.with(|r| r.set(0));
                }
                let next_step = QUEUE.with(|q| q.borrow_mut().settle(next.id, &outcome));
                save_queue();
                self.show_pending();
                if next_step == crate::sync::queue::Next::Stop {
                    break;
                }
            }
            REPLAYING.with(|r| r.set(false));
            if signed_out {
                // The writes wait for the same admin's next sign-in.
                self.session.expire();
            } else if QUEUE.with(|q| !q.borrow().is_empty()) {
                self.retry_later();
            }
            if changed {
                self.data
                    .say(NoticeKind::Success, "Changes made offline were saved.");
                self.data.after_mutation().await;
            }
        });
    }

    /// Schedules one more [`Self::replay`] after the back-off (at most one is waiting).
    fn retry_later(self) {
        if RETRY_SCHEDULED.with(|s| s.replace(true)) {
            return;
        }
        let delay = RETRIES.with(|r| {
            let attempt = r.get();
            r.set(attempt.saturating_add(1));
            retry_delay_ms(attempt)
        });
        leptos::task::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(delay).await;
            RETRY_SCHEDULED.with(|s| s.set(false));
            // The shell is gone (signed out): its queue waits for the next sign-in.
            if self.pending.try_with_untracked(|_| ()).is_some() {
                self.replay();
            }
        });
    }

    /// Drops a queued write the admin no longer wants.
    pub fn discard(self, id: u64) {
        QUEUE.with(|q| q.borrow_mut().discard(id));
        save_queue();
        self.show_pending();
    }

    /// Settles the first open conflict.
    pub fn resolve(self, resolution: Resolution) {
        let Some(conflict) = self.conflicts.with_untracked(|c| c.first().cloned()) else {
            return;
        };
        self.conflicts.update(|c| {
            c.remove(0);
        });
        let body = match &resolution {
            Resolution::TakeTheirs => None,
            Resolution::KeepMine => Some(conflict.mine.clone()),
            Resolution::Merge(fields) => Some(
                conflict
                    .mine
                    .iter()
                    .filter(|(k, _)| fields.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Map<_, _>>(),
            ),
        };
        let data = self.data;
        leptos::task::spawn_local(async move {
            let resend = match body {
                // A patch with nothing left to change, or "theirs": the server's copy stands.
                None => None,
                Some(b) if b.is_empty() && conflict.method != "DELETE" => None,
                Some(b) => Some(b),
            };
            let Some(body) = resend else {
                data.say(
                    NoticeKind::Success,
                    format!("{}: kept the current version.", conflict.label),
                );
                data.after_mutation().await;
                return;
            };
            let Some(etag) = conflict.current_etag() else {
                data.say(
                    NoticeKind::Error,
                    format!("{}: no version to write on.", conflict.label),
                );
                return;
            };
            let write = NewWrite {
                method: conflict.method.clone(),
                path: conflict.path.clone(),
                body: (conflict.method != "DELETE").then(|| Value::Object(body).to_string()),
                if_match: etag,
                label: conflict.label.clone(),
                source: conflict.source.clone(),
            };
            if let Err(failure) = self.write_and_tell(write).await {
                data.say(
                    NoticeKind::Error,
                    format!("{}: {}", conflict.label, failure.message()),
                );
            }
        });
    }
}
