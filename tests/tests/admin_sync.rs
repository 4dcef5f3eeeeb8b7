//! The admin app's real-time sync, in headless Chromium against the real server and database:
//! the spec's "Testing Real-Time Sync" checklist, two sessions, a hidden tab, the console API.
//!
//! Tests shorten polling through the app's own test hooks (see docs/architecture.md, "Web
//! app"): `localStorage["keysync.sync.intervals"]` and `localStorage["keysync.sync.push"] = "off"`,
//! set before the page that reads them is loaded. Requests are counted in the page with the
//! Resource Timing API (every `/api/admin/...` fetch except the event stream) and with
//! `dataSyncManager.getStatus()`'s `fetchCount`.

use std::time::{Duration, Instant};

use keysync_e2e::admin::*;
use keysync_e2e::{built_dist, Browser, ServerProcess};
use serde_json::{json, Value};

/// Sets the hooks, then signs in on a fresh page load so the manager reads them.
async fn open_with(browser: &Browser, address: &str, intervals: Value, push: bool) {
    set_hooks(browser, address, &intervals, push).await;
    browser.sign_in(address, OWNER, PASSWORD).await.unwrap();
    browser
        .js("performance.setResourceTimingBufferSize(100000);")
        .await
        .unwrap();
}

fn every_source(ms: u64) -> Value {
    json!({"dashboard-stats": ms, "license-keys": ms, "customers": ms, "admin-users": ms})
}

/// Polling requests made so far: `/api/admin/...` fetches, not the event stream.
async fn admin_requests(browser: &Browser) -> u64 {
    browser
        .js(
            "return performance.getEntriesByType('resource').filter(e => \
             e.name.includes('/api/admin/') && !e.name.includes('/api/admin/events')).length;",
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

async fn fetch_counts(browser: &Browser) -> Vec<(String, u64)> {
    let status = browser
        .js("return dataSyncManager.getStatus().map(s => [s.key, s.fetchCount]);")
        .await
        .unwrap();
    serde_json::from_value(status).unwrap()
}

async fn attribute(browser: &Browser, css: &str, name: &str) -> Option<String> {
    let element = browser.wait_for(css, WAIT).await.unwrap();
    element.attr(name).await.unwrap()
}

async fn wait_for_state(browser: &Browser, state: &str) {
    browser
        .wait_for(
            &format!("[data-testid=sync-indicator][data-state={state}]"),
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("the sync indicator never showed {state}: {e}"));
}

/// Creates a key through the "New key" dialog on the keys page and returns it.
async fn create_key_in_ui(browser: &Browser, notes: &str) -> String {
    click(browser, "[data-testid=new-key]").await;
    browser
        .wait_for("[data-testid=create-notes]", WAIT)
        .await
        .unwrap()
        .send_keys(notes)
        .await
        .unwrap();
    browser
        .wait_for("[data-testid=create-max-activations]", WAIT)
        .await
        .unwrap()
        .send_keys("3")
        .await
        .unwrap();
    click(browser, "[data-testid=create-submit]").await;
    let key = browser
        .wait_for("[data-testid=new-key-value]", WAIT)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        key.starts_with("SCO-"),
        "a generated key is shown once: {key}"
    );
    key
}

async fn row_present(browser: &Browser, key: &str) -> bool {
    browser
        .js(&format!(
            "return !!document.querySelector('[data-testid=key-row][data-key=\"{key}\"]');"
        ))
        .await
        .unwrap()
        .as_bool()
        .unwrap_or(false)
}

/// How long until `key`'s row shows up in `browser` (checked every 20 ms), at most `limit`.
async fn time_until_row(browser: &Browser, key: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if row_present(browser, key).await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn the_spec_checklist_indicator_last_updated_live_changes_auto_sync_and_refresh_now() {
    // Arrange: short intervals so the safety-net polling under push is visible in seconds.
    let server = start_server(&[]);
    let browser = Browser::start().await.unwrap();
    open_with(&browser, &server.address, every_source(300), true).await;

    // 1. Open the admin dashboard.
    browser
        .wait_for("[data-testid=stat-total-keys]", WAIT)
        .await
        .unwrap();
    browser.screenshot("dashboard").await.unwrap();

    // 2. The live sync indicator: green, pushed.
    wait_for_state(&browser, "live").await;

    // 3. "Last updated" is a relative time that follows the syncs.
    let first_sync = attribute(&browser, "[data-testid=last-updated]", "data-last-sync").await;
    let text = browser
        .wait_for("[data-testid=last-updated]", WAIT)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text == "Last updated just now" || text.ends_with(" s ago"),
        "a relative time: {text}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later_sync = attribute(&browser, "[data-testid=last-updated]", "data-last-sync").await;
    assert_ne!(
        first_sync, later_sync,
        "the safety-net poll keeps it current"
    );

    // 4-5. Create a key, then delete it: both show with no reload.
    click(&browser, "[data-testid=nav-keys]").await;
    browser
        .wait_for("[data-testid=keys-empty]", WAIT)
        .await
        .unwrap();
    browser.js("window.__sameDocument = true;").await.unwrap();
    let key = create_key_in_ui(&browser, "checklist").await;
    browser.screenshot("keys-create-dialog").await.unwrap();
    click(&browser, "[data-testid=create-done]").await;
    browser
        .wait_for(&format!("[data-testid=key-row][data-key=\"{key}\"]"), WAIT)
        .await
        .unwrap();
    browser.screenshot("keys").await.unwrap();
    click(&browser, "[data-testid=nav-dashboard]").await;
    wait_until(
        &browser,
        "return document.querySelector('[data-testid=stat-total-keys] .stat-value')\
         ?.textContent.trim() === '1';",
    )
    .await;
    click(&browser, "[data-testid=nav-keys]").await;
    click(
        &browser,
        &format!("[data-testid=key-row][data-key=\"{key}\"] [data-testid=key-delete]"),
    )
    .await;
    browser
        .wait_for("[data-testid=confirm-ok]", WAIT)
        .await
        .unwrap();
    browser.screenshot("keys-confirm-delete").await.unwrap();
    click(&browser, "[data-testid=confirm-ok]").await;
    browser
        .wait_for("[data-testid=keys-empty]", WAIT)
        .await
        .unwrap();
    let same_document = browser
        .js("return window.__sameDocument === true;")
        .await
        .unwrap();
    assert_eq!(same_document, json!(true), "no page reload happened");

    // 6. Auto-sync off: requests stop; on: they resume.
    let before = admin_requests(&browser).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let while_on = admin_requests(&browser).await - before;
    click(&browser, "[data-testid=auto-sync-toggle]").await;
    wait_for_state(&browser, "paused").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paused_at = admin_requests(&browser).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let while_off = admin_requests(&browser).await - paused_at;
    click(&browser, "[data-testid=auto-sync-toggle]").await;
    wait_for_state(&browser, "live").await;
    let resumed_at = admin_requests(&browser).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_on = admin_requests(&browser).await - paused_at;
    assert!(
        while_on >= 4,
        "polling runs with auto-sync on: {while_on} requests in 3 s"
    );
    assert_eq!(while_off, 0, "no request while auto-sync is off");
    assert!(
        after_on >= 4 && resumed_at > paused_at,
        "turning it on refreshes at once and polling resumes: {after_on}"
    );

    // 7. Refresh Now: a loading state, then every source fetched again.
    browser
        .js("window.__sawBusy = false; const b = document.querySelector('[data-testid=refresh-now]'); \
             new MutationObserver(() => { if (b.getAttribute('aria-busy') === 'true') window.__sawBusy = true; }) \
             .observe(b, {attributes: true});")
        .await
        .unwrap();
    let counts_before = fetch_counts(&browser).await;
    click(&browser, "[data-testid=refresh-now]").await;
    browser
        .wait_for("[data-testid=refresh-now][aria-busy=false]", WAIT)
        .await
        .unwrap();
    let counts_after = fetch_counts(&browser).await;
    let saw_busy = browser.js("return window.__sawBusy;").await.unwrap();
    assert_eq!(saw_busy, json!(true), "Refresh Now shows its loading state");
    assert_eq!(counts_before.len(), 4);
    for ((key, before), (_, after)) in counts_before.iter().zip(&counts_after) {
        assert!(after > before, "{key} was fetched by Refresh Now");
    }
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_key_created_in_one_session_shows_in_another_within_a_second_by_push_and_within_one_interval_by_polling(
) {
    // Arrange: A creates keys; B watches the list. B polls keys every 15 s (the spec's interval),
    // so a row showing within a second can only have been pushed.
    let server = start_server(&[]);
    let a = Browser::start().await.unwrap();
    let b = Browser::start().await.unwrap();
    a.sign_in(&server.address, OWNER, PASSWORD).await.unwrap();
    click(&a, "[data-testid=nav-keys]").await;
    open_with(&b, &server.address, json!({}), true).await;
    click(&b, "[data-testid=nav-keys]").await;
    b.wait_for("[data-testid=keys-empty]", WAIT).await.unwrap();
    wait_for_state(&b, "live").await;

    // Act
    let pushed_key = create_key_in_ui(&a, "pushed").await;
    let pushed = time_until_row(&b, &pushed_key, Duration::from_secs(5)).await;
    click(&a, "[data-testid=create-done]").await;

    // Assert
    assert!(
        pushed.is_some_and(|t| t <= Duration::from_secs(1)),
        "with push the other session shows the key within 1 s, took {pushed:?}"
    );

    // Arrange: B without push, polling keys every 1.5 s.
    let interval = Duration::from_millis(1500);
    set_hooks(&b, &server.address, &json!({"license-keys": 1500}), false).await;
    b.client
        .goto(&format!("{}/admin/keys", server.address))
        .await
        .unwrap();
    b.wait_for(
        &format!("[data-testid=key-row][data-key=\"{pushed_key}\"]"),
        WAIT,
    )
    .await
    .unwrap();
    wait_for_state(&b, "polling").await;

    // Act
    let polled_key = create_key_in_ui(&a, "polled").await;
    let polled = time_until_row(&b, &polled_key, Duration::from_secs(10)).await;
    b.screenshot("keys-second-session").await.unwrap();

    eprintln!("pushed: {pushed:?}, polled: {polled:?} (interval {interval:?})");

    // Assert: one interval, plus the time a request and a render take.
    let slack = Duration::from_millis(500);
    assert!(
        polled.is_some_and(|t| t <= interval + slack),
        "without push the key shows within one polling interval ({interval:?}), took {polled:?}"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn get_status_in_the_page_lists_every_registered_source_and_signing_out_leaves_nothing_running(
) {
    // Arrange
    let server = start_server(&[]);
    let browser = Browser::start().await.unwrap();
    browser
        .client
        .goto(&format!("{}/login", server.address))
        .await
        .unwrap();
    browser
        .wait_for("[data-testid=login-form]", WAIT)
        .await
        .unwrap();
    browser.screenshot("login").await.unwrap();
    // Record the console from here on; signing in below navigates without a reload.
    browser
        .js("window.__logs = []; for (const level of ['log', 'info', 'debug', 'warn']) { \
               const original = console[level].bind(console); \
               console[level] = (...args) => { window.__logs.push(args.join(' ')); original(...args); }; }")
        .await
        .unwrap();
    for (field, text) in [("login-email", OWNER), ("login-password", PASSWORD)] {
        browser
            .wait_for(&format!("[data-testid={field}]"), WAIT)
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    click(&browser, "[data-testid=login-submit]").await;
    browser
        .wait_for("[data-testid=dashboard]", WAIT)
        .await
        .unwrap();
    wait_until(
        &browser,
        "return dataSyncManager.getStatus().length === 4 && \
         dataSyncManager.getStatus().every(s => s.lastSync !== null);",
    )
    .await;

    // Act
    let status = browser
        .js(
            "return dataSyncManager.getStatus().map(s => ({key: s.key, active: s.active, \
             lastSyncIsDate: s.lastSync instanceof Date, interval: s.interval, \
             inFlight: typeof s.inFlight, lastError: s.lastError, fetchCount: s.fetchCount}));",
        )
        .await
        .unwrap();
    let refreshed = browser
        .js("return dataSyncManager.refresh('license-keys').then(() => \
             dataSyncManager.getStatus().find(s => s.key === 'license-keys').fetchCount);")
        .await
        .unwrap();
    // An unchanged dataset: every revalidation is a 304 (Resource Timing's responseStatus;
    // entries are queued a moment after a fetch resolves, hence the pause).
    let statuses = browser
        .js(
            "performance.clearResourceTimings(); return dataSyncManager.refreshAll() \
             .then(() => new Promise(done => setTimeout(done, 300))).then(() => \
             performance.getEntriesByType('resource').filter(e => e.name.includes('/api/admin/') \
               && !e.name.includes('/api/admin/events')).map(e => e.responseStatus));",
        )
        .await
        .unwrap();
    let logs = browser.js("return window.__logs;").await.unwrap();
    let cleared = browser
        .js("dataCache.clear(); return dataCache.keys().length;")
        .await
        .unwrap();

    // Assert
    let rows = status.as_array().unwrap();
    let keys: Vec<_> = rows.iter().map(|s| s["key"].as_str().unwrap()).collect();
    let intervals: Vec<_> = rows
        .iter()
        .map(|s| s["interval"].as_u64().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "admin-users",
            "customers",
            "dashboard-stats",
            "license-keys"
        ]
    );
    assert_eq!(
        intervals,
        [60_000, 30_000, 30_000, 15_000],
        "the spec's intervals"
    );
    for s in rows {
        assert_eq!(s["active"], json!(true), "{s}");
        assert_eq!(s["lastSyncIsDate"], json!(true), "{s}");
        assert_eq!(s["inFlight"], json!("boolean"), "{s}");
        assert_eq!(s["lastError"], Value::Null, "{s}");
        assert!(s["fetchCount"].as_u64().unwrap() >= 1, "{s}");
    }
    let keys_count = rows[3]["fetchCount"].as_u64().unwrap();
    assert!(
        refreshed.as_u64().unwrap() > keys_count,
        "refresh(key) fetched"
    );
    assert_eq!(
        statuses,
        json!([304, 304, 304, 304]),
        "idle polls cost no body"
    );
    let logs: Vec<String> = serde_json::from_value(logs).unwrap();
    for line in [
        "[DataSync] Registered license-keys with 15000ms interval",
        "[DataSync] Registered dashboard-stats with 30000ms interval",
        "[Cache] Miss for dashboard-stats, fetching...",
        "[DataSync] Manual refresh completed for license-keys",
    ] {
        assert!(
            logs.iter().any(|l| l == line),
            "console shows {line:?}: {logs:?}"
        );
    }
    assert_eq!(cleared, json!(0));

    // Act: sign out, which unmounts every component that registered a source.
    click(&browser, "[data-testid=sign-out]").await;
    browser
        .wait_for("[data-testid=login-form]", WAIT)
        .await
        .unwrap();
    let after = browser
        .js("return [dataSyncManager.getStatus().length, dataSyncManager.activeResources()];")
        .await
        .unwrap();

    // Assert
    assert_eq!(
        after,
        json!([0, 0]),
        "no source, timer, listener or stream is left"
    );
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_viewer_sees_the_keys_but_no_write_controls() {
    // Arrange: a key made by the owner through the API, and a viewer.
    let server = start_server(&[]);
    server
        .create_admin("viewer@example.com", "viewer", "viewer password 1")
        .unwrap();
    let api = owner_api(&server).await;
    let created: Value = api
        .post(format!("{}/api/admin/keys", server.address))
        .json(&json!({"notes": "for the viewer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let browser = Browser::start().await.unwrap();

    // Act
    browser
        .sign_in(&server.address, "viewer@example.com", "viewer password 1")
        .await
        .unwrap();
    click(&browser, "[data-testid=nav-keys]").await;
    browser
        .wait_for(&format!("[data-testid=key-row][data-key=\"{key}\"]"), WAIT)
        .await
        .unwrap();
    let write_controls = browser
        .js(
            "return document.querySelectorAll('[data-testid=new-key], [data-testid=key-select], \
             [data-testid=select-all], [data-testid=key-delete], [data-testid=key-suspend], \
             [data-testid=key-revoke]').length;",
        )
        .await
        .unwrap();
    browser.screenshot("keys-viewer").await.unwrap();
    // The same page on a phone-sized screen (DevTools device emulation): the page itself never
    // scrolls sideways; only the table does, inside its own container.
    browser
        .cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page_width = browser
        .js("return document.documentElement.scrollWidth;")
        .await
        .unwrap();
    browser.screenshot("keys-viewer-mobile").await.unwrap();

    // Assert
    assert_eq!(write_controls, json!(0));
    assert!(
        page_width.as_u64().unwrap() <= 390,
        "no sideways page scroll: {page_width}"
    );
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_hidden_tab_makes_no_polling_requests_and_every_source_refreshes_when_it_is_visible_again(
) {
    // Arrange: poll every source every 400 ms, push off, so polling is all there is.
    let server = start_server(&[]);
    let browser = Browser::start().await.unwrap();
    open_with(&browser, &server.address, every_source(400), false).await;
    wait_for_state(&browser, "polling").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    browser
        // A capturing listener on window runs before the app's own listener on document, so
        // the recorded times precede anything the app does about the change.
        .js("window.__vis = []; window.addEventListener('visibilitychange', () => \
               window.__vis.push([document.visibilityState, performance.now()]), true); \
             window.__states = []; const el = document.querySelector('[data-testid=sync-indicator]'); \
             new MutationObserver(() => window.__states.push(el.dataset.state)) \
               .observe(el, {attributes: true, attributeFilter: ['data-state']});")
        .await
        .unwrap();
    let polled_before = admin_requests(&browser).await;

    // Act: hide the tab for 3 s. How: open a second tab and switch WebDriver to it, which makes
    // ChromeDriver activate that target over the DevTools protocol. In this Chromium (headless)
    // the first tab then really is hidden (`visibilitychange`, `visibilityState == "hidden"`)
    // while its timers keep running, so only the manager's own pause can stop the polling.
    // (`Page.setWebLifecycleState {"state":"frozen"}` also hides a page, but freezes its timers
    // too, which would prove nothing about the app.)
    let app_tab = browser.client.window().await.unwrap();
    let other = browser.client.new_window(true).await.unwrap();
    browser.client.switch_to_window(other.handle).await.unwrap();
    let api = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    api.post(format!("{}/api/auth/login", server.address))
        .json(&json!({"email": OWNER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let created = api
        .post(format!("{}/api/admin/keys", server.address))
        .json(&json!({"notes": "made while hidden"}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    tokio::time::sleep(Duration::from_secs(3)).await;
    browser.client.close_window().await.unwrap();
    browser.client.switch_to_window(app_tab).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Assert
    let report = browser
        .js("const [hidden, visible] = [window.__vis[0], window.__vis[1]]; \
             const polls = performance.getEntriesByType('resource').filter(e => \
               e.name.includes('/api/admin/') && !e.name.includes('/api/admin/events')); \
             const during = polls.filter(e => e.startTime > hidden[1] + 50 && e.startTime < visible[1]).length; \
             const after = polls.filter(e => e.startTime >= visible[1] && e.startTime < visible[1] + 300) \
               .map(e => new URL(e.name).pathname); \
             return {transitions: window.__vis.map(v => v[0]), hiddenMs: visible[1] - hidden[1], \
                     during, after: [...new Set(after)].sort(), states: window.__states};")
        .await
        .unwrap();
    assert_eq!(
        report["transitions"],
        json!(["hidden", "visible"]),
        "{report}"
    );
    assert!(report["hiddenMs"].as_f64().unwrap() > 2500.0, "{report}");
    assert_eq!(
        report["during"],
        json!(0),
        "no request while hidden: {report}"
    );
    assert_eq!(
        report["after"],
        json!([
            "/api/admin/customers",
            "/api/admin/keys",
            "/api/admin/stats",
            "/api/admin/users"
        ]),
        "every source refreshes at once on visible: {report}"
    );
    assert_eq!(report["states"][0], json!("paused"), "{report}");
    assert!(
        admin_requests(&browser).await > polled_before,
        "polling resumed"
    );
    wait_until(
        &browser,
        "return document.querySelector('[data-testid=stat-total-keys] .stat-value')\
         ?.textContent.trim() === '1';",
    )
    .await;
    browser.close().await.unwrap();
}

async fn batch_create(api: &reqwest::Client, server: &ServerProcess, count: u32, notes: &str) {
    let response = api
        .post(format!("{}/api/admin/keys/batch", server.address))
        .json(&json!({"create": {"count": count, "notes": notes}}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
}

async fn visible_rows(browser: &Browser) -> Vec<(String, String)> {
    let rows = browser
        .js(
            "return [...document.querySelectorAll('[data-testid=key-row]')] \
             .map(r => [r.dataset.key, r.dataset.status]);",
        )
        .await
        .unwrap();
    serde_json::from_value(rows).unwrap()
}

#[tokio::test]
async fn an_admin_pages_searches_filters_sorts_and_acts_on_several_keys_at_once() {
    // Arrange: 23 bulk keys and 2 to find, made through the API by the owner.
    let server = start_server(&[]);
    let api = owner_api(&server).await;
    batch_create(&api, &server, 23, "bulk").await;
    batch_create(&api, &server, 2, "findme").await;
    let browser = Browser::start().await.unwrap();
    browser
        .sign_in(&server.address, OWNER, PASSWORD)
        .await
        .unwrap();
    click(&browser, "[data-testid=nav-keys]").await;
    browser
        .wait_for("[data-testid=key-row]", WAIT)
        .await
        .unwrap();
    browser.js("window.__sameDocument = true;").await.unwrap();

    // Pages of 20.
    wait_until(
        &browser,
        "return document.querySelectorAll('[data-testid=key-row]').length === 20;",
    )
    .await;
    assert_eq!(
        text_of(&browser, "[data-testid=keys-count]").await,
        "1–20 of 25"
    );
    click(&browser, "[data-testid=keys-next]").await;
    wait_until(
        &browser,
        "return document.querySelectorAll('[data-testid=key-row]').length === 5;",
    )
    .await;
    assert_eq!(
        text_of(&browser, "[data-testid=keys-count]").await,
        "21–25 of 25"
    );
    click(&browser, "[data-testid=keys-prev]").await;
    wait_until(
        &browser,
        "return document.querySelectorAll('[data-testid=key-row]').length === 20;",
    )
    .await;

    // Sorting by key, ascending.
    click(&browser, "[data-testid=sort-key]").await;
    wait_until(
        &browser,
        "const k = [...document.querySelectorAll('[data-testid=key-row]')].map(r => r.dataset.key); \
         return k.length === 20 && k.every((x, i) => i === 0 || k[i - 1] < x);",
    )
    .await;

    // Search.
    browser
        .wait_for("[data-testid=keys-search]", WAIT)
        .await
        .unwrap()
        .send_keys("findme")
        .await
        .unwrap();
    wait_until(
        &browser,
        "return document.querySelectorAll('[data-testid=key-row]').length === 2;",
    )
    .await;
    let found = visible_rows(&browser).await;

    // Act: select both and suspend them in one batch.
    click(&browser, "[data-testid=select-all]").await;
    assert_eq!(
        text_of(&browser, "[data-testid=batch-bar] span").await,
        "2 selected"
    );
    click(&browser, "[data-testid=batch-suspend]").await;
    click(&browser, "[data-testid=confirm-ok]").await;
    wait_until(
        &browser,
        "const r = [...document.querySelectorAll('[data-testid=key-row]')]; \
         return r.length === 2 && r.every(x => x.dataset.status === 'suspended');",
    )
    .await;
    browser.screenshot("keys-batch-suspended").await.unwrap();

    // The status filter shows exactly them; a batch delete empties it.
    browser
        .wait_for("[data-testid=keys-search]", WAIT)
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    browser
        .js("document.querySelector('[data-testid=keys-search]').dispatchEvent(new Event('input', {bubbles: true}));")
        .await
        .unwrap();
    browser
        .wait_for("[data-testid=keys-status-filter]", WAIT)
        .await
        .unwrap()
        .select_by_value("suspended")
        .await
        .unwrap();
    wait_until(
        &browser,
        "return document.querySelectorAll('[data-testid=key-row]').length === 2;",
    )
    .await;
    let suspended = visible_rows(&browser).await;
    click(&browser, "[data-testid=select-all]").await;
    click(&browser, "[data-testid=batch-delete]").await;
    click(&browser, "[data-testid=confirm-ok]").await;
    browser
        .wait_for("[data-testid=keys-empty]", WAIT)
        .await
        .unwrap();
    let empty_text = text_of(&browser, "[data-testid=keys-empty]").await;
    let stats: Value = api
        .get(format!("{}/api/admin/stats", server.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let same_document = browser
        .js("return window.__sameDocument === true;")
        .await
        .unwrap();

    // Assert
    let mut found_keys: Vec<_> = found.iter().map(|(k, _)| k.clone()).collect();
    let mut suspended_keys: Vec<_> = suspended.iter().map(|(k, _)| k.clone()).collect();
    found_keys.sort();
    suspended_keys.sort();
    assert_eq!(
        found_keys, suspended_keys,
        "the filter shows the two suspended keys"
    );
    assert_eq!(empty_text, "No keys match this search or filter.");
    assert_eq!(
        stats["keys"]["total"],
        json!(23),
        "the batch delete reached the database"
    );
    assert_eq!(same_document, json!(true), "no page reload happened");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn when_the_server_goes_away_the_indicator_turns_red_and_the_last_good_data_stays() {
    // Arrange
    let mut server = start_server(&[]);
    let api = owner_api(&server).await;
    batch_create(&api, &server, 3, "kept").await;
    let browser = Browser::start().await.unwrap();
    open_with(&browser, &server.address, every_source(300), true).await;
    click(&browser, "[data-testid=nav-keys]").await;
    wait_until(
        &browser,
        "return document.querySelectorAll('[data-testid=key-row]').length === 3;",
    )
    .await;
    wait_for_state(&browser, "live").await;
    let before = visible_rows(&browser).await;

    // Act
    server
        .signal_and_wait("KILL", Duration::from_secs(10))
        .unwrap();
    wait_for_state(&browser, "failing").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = visible_rows(&browser).await;
    let banner = text_of(&browser, "[data-testid=keys-error]").await;
    browser.screenshot("keys-server-unreachable").await.unwrap();

    // Assert
    assert_eq!(after, before, "the last good data stays on screen");
    assert!(
        banner.contains("Showing the last keys received"),
        "{banner}"
    );
    browser.close().await.unwrap();
}

async fn effective_interval(browser: &Browser, key: &str) -> Value {
    browser
        .js(&format!(
            "return dataSyncManager.getStatus().find(s => s.key === '{key}').effectiveInterval;"
        ))
        .await
        .unwrap()
}

#[tokio::test]
async fn when_the_push_stream_drops_polling_takes_over_at_the_intervals_and_the_stream_reconnects()
{
    // Arrange: a server on a fixed port, so a second one can take its place on the same database.
    let port = keysync_e2e::free_port().to_string();
    let dist = built_dist().unwrap();
    let env = [
        ("KEYSYNC_DIST_DIR", dist.to_str().unwrap()),
        ("KEYSYNC_ADMIN_EMAIL", OWNER),
        ("KEYSYNC_ADMIN_PASSWORD", PASSWORD),
        ("KEYSYNC_LOG", "warn"),
        ("KEYSYNC_PORT", port.as_str()),
    ];
    let mut first = ServerProcess::start(&env).unwrap();
    let browser = Browser::start().await.unwrap();
    open_with(&browser, &first.address, every_source(500), true).await;
    click(&browser, "[data-testid=nav-keys]").await;
    browser
        .wait_for("[data-testid=keys-empty]", WAIT)
        .await
        .unwrap();
    wait_for_state(&browser, "live").await;
    let while_live = effective_interval(&browser, "license-keys").await;

    // Act: the server goes away (the stream drops), then comes back with a change made meanwhile.
    first
        .signal_and_wait("KILL", Duration::from_secs(10))
        .unwrap();
    wait_for_state(&browser, "failing").await;
    let while_dropped = effective_interval(&browser, "license-keys").await;
    let db = first.database_path();
    let mut env_again = env.to_vec();
    env_again.push(("KEYSYNC_DATABASE_URL", db.to_str().unwrap()));
    let second = ServerProcess::start(&env_again).unwrap();
    let api = owner_api(&second).await;
    batch_create(&api, &second, 1, "made while the stream was down").await;

    // Assert: polling picks the key up, and the stream is live again after its backoff.
    wait_until(
        &browser,
        "return document.querySelectorAll('[data-testid=key-row]').length === 1;",
    )
    .await;
    wait_for_state(&browser, "live").await;
    assert_eq!(
        while_live,
        json!(4000),
        "push live: polling is a safety net at 8x"
    );
    assert_eq!(
        while_dropped,
        json!(500),
        "stream down: back to the configured interval"
    );
    drop(second);
    browser.close().await.unwrap();
}
