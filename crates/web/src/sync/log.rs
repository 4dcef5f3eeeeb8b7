//! The engine's console lines (`[DataSync] ...`, `[Cache] ...`), behind a level.
//!
//! In the browser they go to the console; natively they go nowhere unless a test installs a sink
//! to read them.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Off,
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => Some(Self::Off),
            "error" => Some(Self::Error),
            "warn" => Some(Self::Warn),
            "info" => Some(Self::Info),
            "debug" => Some(Self::Debug),
            _ => None,
        }
    }
}

type Sink = Rc<dyn Fn(Level, &str)>;

/// A shared logger: clones write to the same sink at the same level.
#[derive(Clone)]
pub struct Logger {
    level: Rc<Cell<Level>>,
    sink: Rc<RefCell<Option<Sink>>>,
}

impl Default for Logger {
    fn default() -> Self {
        Self {
            level: Rc::new(Cell::new(Level::Info)),
            sink: Rc::new(RefCell::new(None)),
        }
    }
}

impl Logger {
    /// A logger that writes to the browser console (natively: nowhere).
    pub fn console() -> Self {
        let logger = Self::default();
        #[cfg(target_arch = "wasm32")]
        logger.set_sink(|level, line| {
            let line = wasm_bindgen::JsValue::from_str(line);
            match level {
                Level::Error => web_sys::console::error_1(&line),
                Level::Warn => web_sys::console::warn_1(&line),
                Level::Debug => web_sys::console::debug_1(&line),
                _ => web_sys::console::log_1(&line),
            }
        });
        logger
    }

    /// A logger that keeps every line it is given at or below `level`, for tests.
    pub fn recording(level: Level) -> (Self, Rc<RefCell<Vec<String>>>) {
        let logger = Self::default();
        logger.set_level(level);
        let lines = Rc::new(RefCell::new(Vec::new()));
        let store = lines.clone();
        logger.set_sink(move |_, line| store.borrow_mut().push(line.to_owned()));
        (logger, lines)
    }

    pub fn set_sink(&self, sink: impl Fn(Level, &str) + 'static) {
        *self.sink.borrow_mut() = Some(Rc::new(sink));
    }

    pub fn level(&self) -> Level {
        self.level.get()
    }

    pub fn set_level(&self, level: Level) {
        self.level.set(level);
    }

    pub fn enabled(&self, level: Level) -> bool {
        level != Level::Off && level <= self.level.get()
    }

    pub fn log(&self, level: Level, line: impl FnOnce() -> String) {
        if !self.enabled(level) {
            return;
        }
        let sink = self.sink.borrow().clone();
        if let Some(sink) = sink {
            sink(level, &line());
        }
    }

    pub fn info(&self, line: impl FnOnce() -> String) {
        self.log(Level::Info, line);
    }

    pub fn debug(&self, line: impl FnOnce() -> String) {
        self.log(Level::Debug, line);
    }

    pub fn warn(&self, line: impl FnOnce() -> String) {
        self.log(Level::Warn, line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_above_the_level_are_dropped() {
        let (log, lines) = Logger::recording(Level::Info);

        log.debug(|| "[Cache] Hit for x".into());
        log.info(|| "[DataSync] Registered x with 1ms interval".into());
        log.set_level(Level::Off);
        log.info(|| "silenced".into());

        assert_eq!(
            *lines.borrow(),
            vec!["[DataSync] Registered x with 1ms interval".to_owned()]
        );
    }

    #[test]
    fn levels_parse_from_the_words_people_type() {
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse("off"), Some(Level::Off));
        assert_eq!(Level::parse("loud"), None);
    }
}
