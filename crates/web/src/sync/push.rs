//! The push transport: an `EventSource` on `/api/admin/events` (server-sent events `ready`,
//! `change`, `reset`). It only reports what happens; the manager decides what to refetch and
//! when to reconnect. Dropping a [`PushStream`] closes the connection and removes its listeners.

use std::rc::Rc;

use keysync_shared::Change;
use wasm_bindgen::JsCast;

use super::dom::Listener;

pub const EVENTS_URL: &str = "/api/admin/events";

/// What the stream reports. Each handler runs in its own task, never inside the browser's
/// callback, so it may drop the stream.
#[derive(Clone)]
pub struct PushHandlers {
    /// The stream is open and current (`ready` carries the newest cursor).
    pub on_ready: Rc<dyn Fn()>,
    pub on_change: Rc<dyn Fn(Change)>,
    /// The server says this client is too far behind: resynchronise and reopen.
    pub on_reset: Rc<dyn Fn()>,
    /// The connection failed or dropped.
    pub on_error: Rc<dyn Fn()>,
}

pub struct PushStream {
    source: web_sys::EventSource,
    _listeners: Vec<Listener>,
}

fn later(f: impl FnOnce() + 'static) {
    leptos::task::spawn_local(async move { f() });
}

impl PushStream {
    pub fn open(handlers: PushHandlers) -> Option<Self> {
        let source = web_sys::EventSource::new(EVENTS_URL).ok()?;
        let target: &web_sys::EventTarget = source.as_ref();
        let mut listeners = Vec::new();
        let h = handlers.clone();
        listeners.extend(Listener::new(target, "ready", move |_| {
            let f = h.on_ready.clone();
            later(move || f())
        }));
        let h = handlers.clone();
        listeners.extend(Listener::new(target, "change", move |event| {
            let data = event
                .dyn_ref::<web_sys::MessageEvent>()
                .and_then(|m| m.data().as_string());
            if let Some(change) = data.and_then(|d| serde_json::from_str::<Change>(&d).ok()) {
                let f = h.on_change.clone();
                later(move || f(change))
            }
        }));
        let h = handlers.clone();
        listeners.extend(Listener::new(target, "reset", move |_| {
            let f = h.on_reset.clone();
            later(move || f())
        }));
        let h = handlers;
        listeners.extend(Listener::new(target, "error", move |_| {
            let f = h.on_error.clone();
            later(move || f())
        }));
        Some(Self {
            source,
            _listeners: listeners,
        })
    }
}

impl Drop for PushStream {
    fn drop(&mut self) {
        self.source.close();
    }
}
