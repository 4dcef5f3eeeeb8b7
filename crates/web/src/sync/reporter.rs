//! The browser side of sync analytics: the page's one [`Analytics`] recorder, a batch sent to
//! `POST /api/admin/sync/metrics` every [`BATCH_INTERVAL`] and on `pagehide` (a `fetch` with
//! `keepalive`, so it outlives the page; not `sendBeacon`, which cannot send JSON with the
//! `Content-Type` the API reads).
//!
//! Runs only while an admin is signed in ([`start`] / [`stop`]): the endpoint needs a session.

use std::cell::RefCell;

use gloo_timers::callback::Interval;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::analytics::{source_of, Analytics, FetchResult, MetricsBatch, BATCH_INTERVAL};
use super::clock::BrowserClock;
use super::dom::Listener;

pub const METRICS_URL: &str = "/api/admin/sync/metrics";

struct Running {
    _timer: Interval,
    _pagehide: Option<Listener>,
}

thread_local! {
    static ANALYTICS: RefCell<Analytics<BrowserClock>> = RefCell::new(Analytics::new(BrowserClock));
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// Records one fetch of the source behind `cache_key`.
pub fn record(cache_key: &str, duration_ms: f64, result: FetchResult) {
    ANALYTICS.with(|a| {
        a.borrow_mut()
            .record_fetch(&source_of(cache_key), duration_ms, result)
    });
}

/// The push stream connected or dropped.
pub fn push_state(live: bool) {
    ANALYTICS.with(|a| a.borrow_mut().push_state(live));
}

/// Milliseconds on the page's monotonic clock, for durations.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

/// Starts batching (idempotent).
pub fn start() {
    RUNNING.with(|r| {
        if r.borrow().is_some() {
            return;
        }
        let timer = Interval::new(BATCH_INTERVAL as u32, || flush(false));
        let pagehide = web_sys::window()
            .and_then(|w| Listener::new(w.unchecked_ref(), "pagehide", |_| flush(true)));
        *r.borrow_mut() = Some(Running {
            _timer: timer,
            _pagehide: pagehide,
        });
    });
}

/// Sends what is recorded and stops batching (on sign-out, while the session still exists).
pub fn stop() {
    flush(true);
    RUNNING.with(|r| r.borrow_mut().take());
}

/// Sends the figures gathered since the last batch. With `leaving`, the request is sent with
/// `keepalive` and nobody waits for the answer.
pub fn flush(leaving: bool) {
    let Some(batch) = ANALYTICS.with(|a| a.borrow_mut().take_batch()) else {
        return;
    };
    let Ok(body) = serde_json::to_string(&batch) else {
        return;
    };
    let Some(request) = post(&body, leaving) else {
        ANALYTICS.with(|a| a.borrow_mut().restore(batch));
        return;
    };
    if leaving {
        return;
    }
    leptos::task::spawn_local(async move {
        let delivered = match JsFuture::from(request).await {
            Ok(response) => response
                .dyn_into::<web_sys::Response>()
                .is_ok_and(|r| r.status() == 202 || (400..500).contains(&r.status())),
            Err(_) => false,
        };
        // A refused batch (4xx) is not retried: it would be refused again.
        if !delivered {
            restore(batch);
        }
    });
}

fn restore(batch: MetricsBatch) {
    ANALYTICS.with(|a| a.borrow_mut().restore(batch));
}

fn post(body: &str, keepalive: bool) -> Option<js_sys::Promise> {
    let window = web_sys::window()?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    let headers = web_sys::Headers::new().ok()?;
    headers.set("Content-Type", "application/json").ok()?;
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(body));
    if keepalive {
        // Not in web-sys' RequestInit yet; the browser reads the plain property.
        js_sys::Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE).ok()?;
    }
    Some(window.fetch_with_str_and_init(METRICS_URL, &init))
}
