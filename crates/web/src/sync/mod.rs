//! The sync engine (a port of the spec's `lib/dataSync.ts`): no view code.
//!
//! - [`registry`]: which source is due, dedup, backoff, visibility/offline/auto-sync pauses,
//!   the push safety-net pace, status. Plain Rust, tested natively.
//! - [`cache`]: `DataCache`, a TTL + LRU cache that keeps `ETag`s for conditional requests.
//! - [`clock`], [`log`], [`config`]: injected time, leveled console lines, the spec's
//!   intervals and the `localStorage` test overrides.
//! - [`manager`], [`push`], [`console`], [`dom`]: the thin browser adapters (timers,
//!   listeners, `EventSource`, `window.dataSyncManager` / `window.dataCache`).
//! - [`use_source`]: the hook a page registers its own synced view with.

pub mod analytics;
pub mod cache;
pub mod clock;
pub mod config;
pub mod console;
pub mod dom;
mod hook;
pub mod log;
pub mod manager;
pub mod push;
pub mod queue;
pub mod registry;
pub mod reporter;

use std::cell::RefCell;
use std::rc::Rc;

pub use cache::{fetch_with_cache, DataCache};
pub use clock::{BrowserClock, Clock, Millis};
pub use hook::use_source;
pub use manager::{manager, SyncManager, SyncSnapshot, Trigger};
pub use registry::{Indicator, PauseReason, SourceStatus, SyncOptions};

/// What the cache holds: a response body as received (parsed on use).
pub type Body = Rc<str>;
pub type SharedCache = Rc<RefCell<DataCache<Body, BrowserClock>>>;

thread_local! {
    static LOGGER: log::Logger = {
        let logger = log::Logger::console();
        if let Some(level) = dom::storage_get(config::STORAGE_LOG).as_deref().and_then(log::Level::parse) {
            logger.set_level(level);
        }
        logger
    };
    static CACHE: SharedCache = Rc::new(RefCell::new(DataCache::new(
        cache::DEFAULT_CAPACITY,
        BrowserClock,
        logger(),
    )));
}

/// The page's logger (level from `localStorage["keysync.sync.log"]`, default `info`).
pub fn logger() -> log::Logger {
    LOGGER.with(Clone::clone)
}

/// The page's one `DataCache`.
pub fn shared_cache() -> SharedCache {
    CACHE.with(Clone::clone)
}
