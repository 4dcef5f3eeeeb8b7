//! The console API: `window.dataSyncManager` and `window.dataCache`, as in the spec's
//! Monitoring section.
//!
//! ```js
//! dataSyncManager.getStatus()   // [{key, active, lastSync: Date|null, interval, inFlight, lastError, fetchCount}]
//! await dataSyncManager.refresh('license-keys')
//! await dataSyncManager.refreshAll()
//! dataSyncManager.setLogLevel('debug')   // off | error | warn | info | debug
//! dataCache.invalidate('dashboard-stats'); dataCache.invalidatePrefix('license-keys'); dataCache.clear()
//! ```

use js_sys::{Array, Date, Object, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;

use super::log::Level;
use super::manager::manager;
use super::registry::SourceStatus;

fn set(target: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(name), value);
}

fn status_object(s: &SourceStatus) -> Object {
    let o = Object::new();
    set(&o, "key", &JsValue::from_str(&s.key));
    set(&o, "active", &JsValue::from_bool(s.active));
    let last_sync = s
        .last_sync
        .map(|ms| Date::new(&JsValue::from_f64(ms as f64)).into())
        .unwrap_or(JsValue::NULL);
    set(&o, "lastSync", &last_sync);
    set(&o, "interval", &JsValue::from_f64(s.interval as f64));
    set(
        &o,
        "effectiveInterval",
        &s.effective_interval
            .map_or(JsValue::NULL, |ms| JsValue::from_f64(ms as f64)),
    );
    set(&o, "inFlight", &JsValue::from_bool(s.in_flight));
    set(
        &o,
        "lastError",
        &s.last_error
            .as_deref()
            .map_or(JsValue::NULL, JsValue::from_str),
    );
    set(&o, "fetchCount", &JsValue::from_f64(s.fetch_count as f64));
    o
}

fn promise_of(result: Result<(), String>) -> Result<JsValue, JsValue> {
    result
        .map(|()| JsValue::UNDEFINED)
        .map_err(|e| JsValue::from_str(&e))
}

/// Installs both objects on `window`. Called once at start; the functions reach the page's
/// one manager and cache, so they stay valid across sign-in and sign-out.
pub fn install() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let sync = Object::new();
    let get_status = Closure::<dyn Fn() -> JsValue>::new(|| {
        manager()
            .status()
            .iter()
            .map(status_object)
            .collect::<Array>()
            .into()
    });
    set(&sync, "getStatus", &get_status.into_js_value());
    let refresh = Closure::<dyn Fn(String) -> js_sys::Promise>::new(|key: String| {
        wasm_bindgen_futures::future_to_promise(
            async move { promise_of(manager().refresh(&key).await) },
        )
    });
    set(&sync, "refresh", &refresh.into_js_value());
    let refresh_all = Closure::<dyn Fn() -> js_sys::Promise>::new(|| {
        wasm_bindgen_futures::future_to_promise(
            async move { promise_of(manager().refresh_all().await) },
        )
    });
    set(&sync, "refreshAll", &refresh_all.into_js_value());
    let set_level =
        Closure::<dyn Fn(String) -> bool>::new(|level: String| match Level::parse(&level) {
            Some(level) => {
                super::logger().set_level(level);
                true
            }
            None => false,
        });
    set(&sync, "setLogLevel", &set_level.into_js_value());
    let resources =
        Closure::<dyn Fn() -> f64>::new(|| manager().resources() as f64).into_js_value();
    set(&sync, "activeResources", &resources);
    set(window.as_ref(), "dataSyncManager", &sync);

    let cache = Object::new();
    let clear = Closure::<dyn Fn()>::new(|| super::shared_cache().borrow_mut().clear());
    set(&cache, "clear", &clear.into_js_value());
    let invalidate = Closure::<dyn Fn(String) -> bool>::new(|key: String| {
        super::shared_cache().borrow_mut().invalidate(&key)
    });
    set(&cache, "invalidate", &invalidate.into_js_value());
    let invalidate_prefix = Closure::<dyn Fn(String) -> f64>::new(|prefix: String| {
        super::shared_cache()
            .borrow_mut()
            .invalidate_prefix(&prefix) as f64
    });
    set(
        &cache,
        "invalidatePrefix",
        &invalidate_prefix.into_js_value(),
    );
    let keys = Closure::<dyn Fn() -> JsValue>::new(|| {
        super::shared_cache()
            .borrow()
            .keys()
            .into_iter()
            .map(JsValue::from)
            .collect::<Array>()
            .into()
    });
    set(&cache, "keys", &keys.into_js_value());
    set(window.as_ref(), "dataCache", &cache);
}
