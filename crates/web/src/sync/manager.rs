//! The DataSyncManager: the browser adapter around [`Registry`]. It owns the one timer that
//! wakes the next due source, the visibility and online/offline listeners, the push stream and
//! its reconnect backoff, and runs the registered fetchers. It holds no view code: components
//! register fetchers that write into their own signals, and subscribe to be told when the
//! status changes.
//!
//! Lifetime: the first `register` starts the listeners and the push stream, the last
//! `unregister` stops them and cancels the timer, so unmounting every component that registered
//! leaves nothing running.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};

use futures_channel::oneshot;
use gloo_timers::callback::{Interval, Timeout};
use keysync_shared::Change;
use wasm_bindgen::JsCast;

use super::clock::{BrowserClock, Clock, Millis};
use super::config::{self, Overrides};
use super::dom::{self, Listener};
use super::log::{Level, Logger};
use super::push::{PushHandlers, PushStream};
use super::registry::{Backoff, Begin, Indicator, Registry, SourceStatus, SyncOptions};

/// Why a fetcher runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// First load or a changed view (new filter, page): a fresh cache entry may answer.
    Load,
    /// A poll, a manual refresh, a pushed change: ask the server (conditionally, with the
    /// cached `ETag`, so an unchanged resource is a 304).
    Revalidate,
}

pub type FetchFuture = Pin<Box<dyn Future<Output = Result<(), String>>>>;
pub type Fetcher = Rc<dyn Fn(Trigger) -> FetchFuture>;

type Waiter = oneshot::Sender<Result<(), String>>;
type Observer = (u64, Rc<dyn Fn()>);

/// Push stream reconnect backoff: 1 s doubling to 30 s.
const PUSH_RETRY_BASE: Millis = 1_000;
const PUSH_RETRY_CAP: Millis = 30_000;

/// What the view shows of the manager.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSnapshot {
    pub indicator: Indicator,
    pub last_updated: Option<Millis>,
    pub auto_sync: bool,
    pub sources: Vec<SourceStatus>,
    pub refreshing: bool,
}

struct Inner {
    registry: RefCell<Registry<BrowserClock>>,
    fetchers: RefCell<HashMap<String, Fetcher>>,
    waiters: RefCell<HashMap<String, Vec<Waiter>>>,
    timer: RefCell<Option<Timeout>>,
    listeners: RefCell<Vec<Listener>>,
    push: RefCell<Option<PushStream>>,
    push_retry: RefCell<Option<Timeout>>,
    push_backoff: RefCell<Backoff>,
    /// The stream dropped since it was last live: on reconnect, refresh what may have been missed.
    push_dropped: Cell<bool>,
    /// While push is not live: the timer that reads `/api/admin/sync`, and where it resumes.
    feed: RefCell<Option<Interval>>,
    feed_cursor: RefCell<Option<String>>,
    overrides: Overrides,
    /// The signed-in admin's intervals (source key -> ms); the `localStorage` overrides win.
    preferred: RefCell<HashMap<String, Millis>>,
    /// The admin's "push on" preference.
    push_wanted: Cell<bool>,
    /// The signed-in admin's id: push needs a session, and a `sync_preferences` change of this
    /// id means this admin saved preferences in another browser.
    admin_id: Cell<Option<i64>>,
    on_preferences_changed: RefCell<Option<Rc<dyn Fn()>>>,
    observers: RefCell<Vec<Observer>>,
    next_observer: Cell<u64>,
    refreshing_all: Cell<u32>,
    log: Logger,
}

/// A cheap handle on the page's one manager (see [`manager`]).
#[derive(Clone)]
pub struct SyncManager {
    inner: Rc<Inner>,
}

thread_local! {
    static MANAGER: SyncManager = SyncManager::from_storage();
}

/// The page's DataSyncManager.
pub fn manager() -> SyncManager {
    MANAGER.with(Clone::clone)
}

impl SyncManager {
    fn from_storage() -> Self {
        let overrides = Overrides::parse(
            dom::storage_get(config::STORAGE_INTERVALS).as_deref(),
            dom::storage_get(config::STORAGE_PUSH).as_deref(),
        );
        let log = super::logger();
        Self {
            inner: Rc::new(Inner {
                registry: RefCell::new(Registry::new(BrowserClock, log.clone())),
                fetchers: RefCell::new(HashMap::new()),
                waiters: RefCell::new(HashMap::new()),
                timer: RefCell::new(None),
                listeners: RefCell::new(Vec::new()),
                push: RefCell::new(None),
                push_retry: RefCell::new(None),
                push_backoff: RefCell::new(Backoff::new(PUSH_RETRY_BASE, PUSH_RETRY_CAP)),
                push_dropped: Cell::new(false),
                feed: RefCell::new(None),
                feed_cursor: RefCell::new(None),
                overrides,
                preferred: RefCell::new(HashMap::new()),
                push_wanted: Cell::new(true),
                admin_id: Cell::new(None),
                on_preferences_changed: RefCell::new(None),
                observers: RefCell::new(Vec::new()),
                next_observer: Cell::new(0),
                refreshing_all: Cell::new(0),
                log,
            }),
        }
    }

    /// The interval for `key`: a `localStorage` override, else the admin's preference, else
    /// the spec's, else `fallback`.
    pub fn interval_for(&self, key: &str, fallback: Millis) -> Millis {
        let default = self
            .inner
            .preferred
            .borrow()
            .get(key)
            .copied()
            .or_else(|| config::default_interval(key))
            .unwrap_or(fallback);
        self.inner.overrides.interval(key, default)
    }

    /// Who is signed in (`None`: nobody; push and analytics need a session).
    pub fn set_admin(&self, id: Option<i64>) {
        let before = self.inner.admin_id.replace(id);
        if id.is_some() {
            self.inner.connect_push();
        } else if before.is_some() {
            self.inner.disconnect_push();
            self.inner.reschedule();
            self.inner.notify();
        }
    }

    /// What to run when this admin's preferences changed elsewhere (a `sync_preferences` push).
    pub fn on_preferences_changed(&self, hook: Option<Rc<dyn Fn()>>) {
        *self.inner.on_preferences_changed.borrow_mut() = hook;
    }

    /// Whether the push stream is connected (`ready` received and not dropped since).
    pub fn push_live(&self) -> bool {
        self.inner.registry.borrow().push_live()
    }

    /// Applies the admin's sync preferences to the running engine: each registered source is
    /// re-armed at its new interval, the hidden-tab rule, push and the log level switch at once.
    pub fn apply_preferences(&self, prefs: &keysync_shared::SyncPreferences) {
        let preferred = config::preferred_intervals(&prefs.intervals);
        let resumed = {
            let mut registry = self.inner.registry.borrow_mut();
            for (key, ms) in &preferred {
                registry.set_interval(key, self.inner.overrides.interval(key, *ms));
            }
            registry.set_pause_when_hidden(prefs.pause_when_hidden)
        };
        *self.inner.preferred.borrow_mut() = preferred
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        self.set_log_level(config::log_level(prefs.log_level));
        self.inner.push_wanted.set(prefs.push_enabled);
        if prefs.push_enabled {
            self.inner.connect_push();
        } else {
            self.inner.disconnect_push();
        }
        self.inner
            .log
            .info(|| "[DataSync] Preferences applied".into());
        self.inner.after_resume(resumed);
    }

    /// Whether push is wanted now (preference on, not turned off by a test override).
    pub fn push_enabled(&self) -> bool {
        self.inner.push_wanted.get() && !self.inner.overrides.push_disabled
    }

    pub fn push_disabled(&self) -> bool {
        self.inner.overrides.push_disabled
    }

    pub fn set_log_level(&self, level: Level) {
        self.inner.log.set_level(level);
    }

    /// Registers `fetcher` under `key` and loads it at once. Replaces a source of that name.
    pub fn register<F, Fut>(&self, key: &str, fetcher: F, options: SyncOptions)
    where
        F: Fn(Trigger) -> Fut + 'static,
        Fut: Future<Output = Result<(), String>> + 'static,
    {
        let starting = self.inner.registry.borrow().is_empty();
        let fetcher: Fetcher = Rc::new(move |trigger| Box::pin(fetcher(trigger)) as FetchFuture);
        self.inner
            .fetchers
            .borrow_mut()
            .insert(key.to_owned(), fetcher);
        self.inner.registry.borrow_mut().register(key, options);
        if starting {
            self.inner.start();
        }
        drop(self.inner.launch(key, Trigger::Load));
        self.inner.reschedule();
        self.inner.notify();
    }

    /// Removes `key`. The last removal stops every timer, listener and the push stream.
    pub fn unregister(&self, key: &str) {
        let removed = self.inner.registry.borrow_mut().unregister(key);
        self.inner.fetchers.borrow_mut().remove(key);
        if removed && self.inner.registry.borrow().is_empty() {
            self.inner.stop();
        } else {
            self.inner.reschedule();
        }
        self.inner.notify();
    }

    /// Fetches `key` now (asking the server), resolving when fresh data is in place.
    pub async fn refresh(&self, key: &str) -> Result<(), String> {
        let result = self
            .inner
            .launch(key, Trigger::Revalidate)
            .await
            .unwrap_or(Ok(()));
        if result.is_ok() {
            self.inner
                .log
                .info(|| format!("[DataSync] Manual refresh completed for {key}"));
        }
        result
    }

    /// Loads `key` for a changed view; a fresh cache entry may answer without a request.
    pub fn load(&self, key: &str) {
        drop(self.inner.launch(key, Trigger::Load));
    }

    /// Refreshes every source in parallel; resolves when all are done.
    pub async fn refresh_all(&self) -> Result<(), String> {
        self.inner.refresh_all().await
    }

    /// Drops the cached responses of `keys` and refetches them in parallel: what every
    /// mutation calls so the screen shows its effect with no reload.
    pub async fn invalidate_and_refresh(&self, keys: &[&str]) -> Result<(), String> {
        let receivers: Vec<_> = keys
            .iter()
            .filter(|k| self.inner.registry.borrow().contains(k))
            .map(|k| {
                super::shared_cache().borrow_mut().invalidate_prefix(k);
                self.inner.launch(k, Trigger::Revalidate)
            })
            .collect();
        let mut outcome = Ok(());
        for rx in receivers {
            if let Err(e) = rx.await.unwrap_or(Ok(())) {
                outcome = Err(e);
            }
        }
        outcome
    }

    pub fn set_auto_sync(&self, on: bool) {
        let resumed = self.inner.registry.borrow_mut().set_auto_sync(on);
        if on {
            self.inner.connect_push();
        } else {
            self.inner.disconnect_push();
        }
        self.inner.after_resume(resumed);
    }

    pub fn status(&self) -> Vec<SourceStatus> {
        self.inner.registry.borrow().status()
    }

    pub fn snapshot(&self) -> SyncSnapshot {
        let registry = self.inner.registry.borrow();
        SyncSnapshot {
            indicator: registry.indicator(),
            last_updated: registry.last_updated(),
            auto_sync: registry.auto_sync(),
            sources: registry.status(),
            refreshing: self.inner.refreshing_all.get() > 0,
        }
    }

    /// Calls `observer` after every change of status; returns an id for [`Self::unsubscribe`].
    pub fn subscribe(&self, observer: impl Fn() + 'static) -> u64 {
        let id = self.inner.next_observer.get() + 1;
        self.inner.next_observer.set(id);
        self.inner
            .observers
            .borrow_mut()
            .push((id, Rc::new(observer)));
        id
    }

    pub fn unsubscribe(&self, id: u64) {
        self.inner.observers.borrow_mut().retain(|(i, _)| *i != id);
    }

    /// How many timers, listeners and streams are alive (0 when nothing is registered); the
    /// browser tests read it to prove unmounting leaves nothing behind.
    pub fn resources(&self) -> usize {
        usize::from(self.inner.timer.borrow().is_some())
            + self.inner.listeners.borrow().len()
            + usize::from(self.inner.push.borrow().is_some())
            + usize::from(self.inner.push_retry.borrow().is_some())
            + usize::from(self.inner.feed.borrow().is_some())
    }
}

impl Inner {
    fn start(self: &Rc<Self>) {
        {
            let mut registry = self.registry.borrow_mut();
            registry.set_visible(!dom::document_hidden());
            registry.set_online(dom::navigator_online());
        }
        let mut listeners = Vec::new();
        if let Some(document) = web_sys::window().and_then(|w| w.document()) {
            let weak = Rc::downgrade(self);
            listeners.extend(Listener::new(
                document.unchecked_ref(),
                "visibilitychange",
                move |_| {
                    if let Some(inner) = weak.upgrade() {
                        let resumed = inner
                            .registry
                            .borrow_mut()
                            .set_visible(!dom::document_hidden());
                        inner.after_resume(resumed);
                    }
                },
            ));
        }
        if let Some(window) = web_sys::window() {
            for (kind, online) in [("online", true), ("offline", false)] {
                let weak = Rc::downgrade(self);
                listeners.extend(Listener::new(window.unchecked_ref(), kind, move |_| {
                    if let Some(inner) = weak.upgrade() {
                        let resumed = inner.registry.borrow_mut().set_online(online);
                        if online {
                            inner.connect_push();
                        }
                        inner.after_resume(resumed);
                    }
                }));
            }
        }
        *self.listeners.borrow_mut() = listeners;
        self.connect_push();
    }

    fn stop(self: &Rc<Self>) {
        self.timer.borrow_mut().take();
        self.feed.borrow_mut().take();
        self.listeners.borrow_mut().clear();
        self.disconnect_push();
        self.log
            .debug(|| "[DataSync] Stopped: no sources registered".into());
    }

    /// After a visibility/online/auto-sync change: a resume refreshes everything at once.
    fn after_resume(self: &Rc<Self>, resumed: bool) {
        if resumed {
            let inner = self.clone();
            leptos::task::spawn_local(async move {
                let _ = inner.refresh_all().await;
            });
        }
        self.reschedule();
        self.notify();
    }

    /// Starts a fetch of `key` unless one is running (then it reruns once when done). The
    /// receiver resolves with the outcome of the fetch that satisfies this request.
    fn launch(
        self: &Rc<Self>,
        key: &str,
        trigger: Trigger,
    ) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        let begin = self.registry.borrow_mut().begin(key);
        match begin {
            Begin::Unknown => {
                let _ = tx.send(Err(format!("no source named {key}")));
                return rx;
            }
            Begin::Joined => {
                self.waiters
                    .borrow_mut()
                    .entry(key.to_owned())
                    .or_default()
                    .push(tx);
            }
            Begin::Started => {
                self.waiters
                    .borrow_mut()
                    .entry(key.to_owned())
                    .or_default()
                    .push(tx);
                let inner = self.clone();
                let key = key.to_owned();
                leptos::task::spawn_local(async move { inner.fetch_loop(key, trigger).await });
            }
        }
        self.notify();
        rx
    }

    async fn fetch_loop(self: Rc<Self>, key: String, mut trigger: Trigger) {
        loop {
            let fetcher = self.fetchers.borrow().get(&key).cloned();
            let result = match fetcher {
                Some(fetch) => fetch(trigger).await,
                None => Err(format!("{key} was unregistered")),
            };
            let finished = self.registry.borrow_mut().finish(&key, result.clone());
            let rerun = finished.rerun;
            finished.report();
            if rerun && self.registry.borrow_mut().begin(&key) == Begin::Started {
                trigger = Trigger::Revalidate;
                self.notify();
                continue;
            }
            let waiters = self.waiters.borrow_mut().remove(&key).unwrap_or_default();
            for waiter in waiters {
                let _ = waiter.send(result.clone());
            }
            self.reschedule();
            self.notify();
            return;
        }
    }

    async fn refresh_all(self: &Rc<Self>) -> Result<(), String> {
        let keys = self.registry.borrow().keys();
        self.refreshing_all.set(self.refreshing_all.get() + 1);
        let receivers: Vec<_> = keys
            .iter()
            .map(|k| self.launch(k, Trigger::Revalidate))
            .collect();
        let mut outcome = Ok(());
        for rx in receivers {
            if let Err(e) = rx.await.unwrap_or(Ok(())) {
                outcome = Err(e);
            }
        }
        self.refreshing_all
            .set(self.refreshing_all.get().saturating_sub(1));
        self.notify();
        outcome
    }

    /// Push's fallback for what only push would bring: while an admin is signed in, sources
    /// are registered and push is not live, `/api/admin/sync` is read every `change-feed`
    /// interval (30 s) from the last cursor, and this admin's `sync_preferences` changes are
    /// applied as their push event is (the data sources poll on their own). The cursor is kept
    /// across push periods, so what changed around a drop is read; a change seen twice only
    /// reloads the preferences twice.
    fn follow_feed(self: &Rc<Self>) {
        let wanted = self.admin_id.get().is_some()
            && !self.registry.borrow().is_empty()
            && !self.registry.borrow().push_live();
        if wanted == self.feed.borrow().is_some() {
            return;
        }
        if !wanted {
            self.feed.borrow_mut().take();
            return;
        }
        let period = self
            .overrides
            .interval(config::CHANGE_FEED, config::CUSTOMERS_INTERVAL);
        let weak = Rc::downgrade(self);
        let read = move || {
            if let Some(inner) = weak.upgrade() {
                leptos::task::spawn_local(async move { inner.read_feed().await });
            }
        };
        if self.feed_cursor.borrow().is_none() {
            // Learn where the feed stands now, so the first tick already has a cursor.
            read.clone()();
        }
        *self.feed.borrow_mut() = Some(Interval::new(period.min(i32::MAX as Millis) as u32, read));
    }

    async fn read_feed(self: Rc<Self>) {
        if self.registry.borrow().paused() || self.registry.borrow().push_live() {
            return;
        }
        let cursor = self.feed_cursor.borrow().clone();
        let url = match &cursor {
            Some(c) => format!("/api/admin/sync?since={c}&limit=500"),
            // Without a cursor the answer holds no changes, only the newest cursor.
            None => "/api/admin/sync?limit=1".to_owned(),
        };
        #[derive(serde::Deserialize)]
        struct FeedPage {
            changes: Vec<Change>,
            next: String,
        }
        match crate::api::get_json::<FeedPage>(&url).await {
            Ok(page) => {
                for change in &page.changes {
                    self.preferences_changed(change);
                }
                *self.feed_cursor.borrow_mut() = Some(page.next);
            }
            Err(failure) if failure.status() == Some(410) => {
                // Too far behind: start again from now, and reload what may have been missed.
                self.feed_cursor.borrow_mut().take();
                let hook = self.on_preferences_changed.borrow().clone();
                if let Some(hook) = hook {
                    hook();
                }
            }
            Err(failure) => self
                .log
                .debug(|| format!("[DataSync] Change feed: {}", failure.message())),
        }
    }

    /// Sets the one timer to the next due poll (or none while paused).
    fn reschedule(self: &Rc<Self>) {
        self.follow_feed();
        let wake = self.registry.borrow().next_wake();
        let timer = wake.map(|at| {
            let delay = at
                .saturating_sub(BrowserClock.now())
                .min(i32::MAX as Millis) as u32;
            let weak: Weak<Self> = Rc::downgrade(self);
            Timeout::new(delay, move || {
                leptos::task::spawn_local(async move {
                    if let Some(inner) = weak.upgrade() {
                        inner.tick();
                    }
                });
            })
        });
        *self.timer.borrow_mut() = timer;
    }

    fn tick(self: &Rc<Self>) {
        let due = self.registry.borrow().due();
        for key in due {
            drop(self.launch(&key, Trigger::Revalidate));
        }
        self.reschedule();
    }

    fn notify(&self) {
        let observers: Vec<_> = self
            .observers
            .borrow()
            .iter()
            .map(|(_, o)| o.clone())
            .collect();
        for observer in observers {
            observer();
        }
    }

    fn connect_push(self: &Rc<Self>) {
        let wanted = !self.overrides.push_disabled
            && self.push_wanted.get()
            && self.admin_id.get().is_some()
            && !self.registry.borrow().is_empty()
            && self.registry.borrow().auto_sync()
            && self.push.borrow().is_none();
        if !wanted {
            return;
        }
        self.push_retry.borrow_mut().take();
        let weak = Rc::downgrade(self);
        let handlers = PushHandlers {
            on_ready: Rc::new({
                let weak = weak.clone();
                move || {
                    if let Some(inner) = weak.upgrade() {
                        inner.push_ready();
                    }
                }
            }),
            on_change: Rc::new({
                let weak = weak.clone();
                move |change| {
                    if let Some(inner) = weak.upgrade() {
                        inner.push_change(change);
                    }
                }
            }),
            on_reset: Rc::new({
                let weak = weak.clone();
                move || {
                    if let Some(inner) = weak.upgrade() {
                        inner
                            .log
                            .info(|| "[DataSync] Push reset: resynchronising".into());
                        inner.push.borrow_mut().take();
                        let again = inner.clone();
                        leptos::task::spawn_local(async move {
                            super::shared_cache().borrow_mut().clear();
                            let _ = again.refresh_all().await;
                        });
                        inner.connect_push();
                    }
                }
            }),
            on_error: Rc::new(move || {
                if let Some(inner) = weak.upgrade() {
                    inner.push_failed();
                }
            }),
        };
        let stream = PushStream::open(handlers);
        if stream.is_none() {
            self.log
                .warn(|| "[DataSync] EventSource unavailable: polling only".into());
        }
        *self.push.borrow_mut() = stream;
    }

    fn disconnect_push(self: &Rc<Self>) {
        super::reporter::push_state(false);
        self.push.borrow_mut().take();
        self.push_retry.borrow_mut().take();
        self.registry.borrow_mut().set_push_live(false);
    }

    fn push_ready(self: &Rc<Self>) {
        super::reporter::push_state(true);
        self.push_backoff.borrow_mut().reset();
        self.registry.borrow_mut().set_push_live(true);
        if self.push_dropped.replace(false) {
            // Changes made while the stream was down were not pushed: catch up.
            let inner = self.clone();
            leptos::task::spawn_local(async move {
                let _ = inner.refresh_all().await;
            });
        }
        self.reschedule();
        self.notify();
    }

    /// Runs the preferences hook when `change` is this admin's `sync_preferences` saved
    /// elsewhere; says whether it was.
    fn preferences_changed(&self, change: &Change) -> bool {
        if change.resource != config::SYNC_PREFERENCES || Some(change.id) != self.admin_id.get() {
            return false;
        }
        let hook = self.on_preferences_changed.borrow().clone();
        if let Some(hook) = hook {
            hook();
        }
        true
    }

    fn push_change(self: &Rc<Self>, change: Change) {
        if self.preferences_changed(&change) {
            return;
        }
        let touched = self.registry.borrow().touched_by(&change.resource);
        self.log.debug(|| {
            format!(
                "[DataSync] Push: {} {} #{} touches {:?}",
                change.resource, change.op, change.id, touched
            )
        });
        for key in touched {
            super::shared_cache().borrow_mut().invalidate_prefix(&key);
            drop(self.launch(&key, Trigger::Revalidate));
        }
    }

    fn push_failed(self: &Rc<Self>) {
        super::reporter::push_state(false);
        self.push.borrow_mut().take();
        self.push_dropped.set(true);
        self.registry.borrow_mut().set_push_live(false);
        let delay = self.push_backoff.borrow_mut().next_delay();
        self.log
            .info(|| format!("[DataSync] Push stream dropped: polling, reconnecting in {delay}ms"));
        let weak = Rc::downgrade(self);
        *self.push_retry.borrow_mut() = Some(Timeout::new(delay as u32, move || {
            leptos::task::spawn_local(async move {
                if let Some(inner) = weak.upgrade() {
                    inner.push_retry.borrow_mut().take();
                    inner.connect_push();
                }
            });
        }));
        self.reschedule();
        self.notify();
    }
}
