//! Time, injected: the engine reads "now" through [`Clock`] so native tests can move time by
//! hand instead of waiting.

use std::cell::Cell;
use std::rc::Rc;

/// Milliseconds since the Unix epoch (what `Date.now()` returns).
pub type Millis = u64;

/// Where the engine reads the current time.
pub trait Clock {
    fn now(&self) -> Millis;
}

/// The browser's clock: `Date.now()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrowserClock;

impl Clock for BrowserClock {
    #[cfg(target_arch = "wasm32")]
    fn now(&self) -> Millis {
        js_sys::Date::now() as Millis
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn now(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or_default()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Rc<Cell<Millis>>);

impl ManualClock {
    pub fn at(start: Millis) -> Self {
        Self(Rc::new(Cell::new(start)))
    }

    pub fn advance(&self, by: Millis) {
        self.0.set(self.0.get() + by);
    }

    pub fn set(&self, to: Millis) {
        self.0.set(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.get()
    }
}
