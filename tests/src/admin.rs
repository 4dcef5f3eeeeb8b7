//! Steps the admin SPA's browser tests share: a server with a known owner, signing in with the
//! sync test hooks, clicking, typing, waiting, and going offline through the DevTools protocol.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{built_dist, Browser, ServerProcess};

pub const OWNER: &str = "owner@example.com";
pub const PASSWORD: &str = "correct horse battery staple";
/// How long any one step may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(20);
/// A polling interval no test lasts long enough to reach.
pub const SLOW: u64 = 600_000;

/// `keysync serve` with the built SPA and the owner [`OWNER`]/[`PASSWORD`], plus `extra` env.
pub fn start_server(extra: &[(&str, &str)]) -> ServerProcess {
    let dist = built_dist().unwrap();
    let mut env = vec![
        ("KEYSYNC_DIST_DIR", dist.to_str().unwrap()),
        ("KEYSYNC_ADMIN_EMAIL", OWNER),
        ("KEYSYNC_ADMIN_PASSWORD", PASSWORD),
        ("KEYSYNC_LOG", "warn"),
    ];
    env.extend_from_slice(extra);
    ServerProcess::start(&env).unwrap()
}

/// Writes the sync test hooks (see docs/architecture.md) into the origin's storage; the next
/// page load reads them.
pub async fn set_hooks(browser: &Browser, address: &str, intervals: &Value, push: bool) {
    browser
        .client
        .goto(&format!("{address}/login"))
        .await
        .unwrap();
    browser
        .wait_for("[data-testid=app-root]", WAIT)
        .await
        .unwrap();
    browser
        .js(&format!(
            "localStorage.setItem('keysync.sync.intervals', {intervals:?}); \
             localStorage.setItem('keysync.sync.push', {:?});",
            if push { "on" } else { "off" },
            intervals = intervals.to_string()
        ))
        .await
        .unwrap();
}

/// Every source (and the manager's change-feed read) at [`SLOW`].
pub fn slow_intervals() -> Value {
    json!({"dashboard-stats": SLOW, "license-keys": SLOW, "customers": SLOW,
           "customer-list": SLOW, "admin-users": SLOW, "change-feed": SLOW})
}

/// Signs in with slow polling and no push, so whatever changes on screen comes from the action
/// under test, not from a poll.
pub async fn open_slow(browser: &Browser, address: &str, email: &str, password: &str) {
    set_hooks(browser, address, &slow_intervals(), false).await;
    browser.sign_in(address, email, password).await.unwrap();
}

/// Signs in through the API; the status of the attempt and the client holding its cookie.
pub async fn api_login(
    server: &ServerProcess,
    email: &str,
    password: &str,
) -> (u16, reqwest::Client) {
    let api = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = api
        .post(format!("{}/api/auth/login", server.address))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    (login.status().as_u16(), api)
}

/// A client signed in as the owner, for arranging and checking data the way another admin would.
pub async fn owner_api(server: &ServerProcess) -> reqwest::Client {
    let (status, api) = api_login(server, OWNER, PASSWORD).await;
    assert_eq!(status, 200, "the owner signs in");
    api
}

pub async fn click(browser: &Browser, css: &str) {
    browser
        .wait_for(css, WAIT)
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Sets a form control's value the way a person does (`input` and `change` events), whatever
/// it held.
pub async fn fill(browser: &Browser, css: &str, value: &str) {
    browser.wait_for(css, WAIT).await.unwrap();
    browser
        .js(&format!(
            "const el = document.querySelector({css:?}); el.value = {value:?}; \
             el.dispatchEvent(new Event('input', {{bubbles: true}})); \
             el.dispatchEvent(new Event('change', {{bubbles: true}}));"
        ))
        .await
        .unwrap();
}

/// Clears the input matching `css` and types `text` into it with key events.
pub async fn type_text(browser: &Browser, css: &str, text: &str) {
    let input = browser.wait_for(css, WAIT).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// Polls `script` (which returns a boolean) until it is true.
pub async fn wait_until(browser: &Browser, script: &str) {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if browser.js(script).await.unwrap() == json!(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never true within {WAIT:?}: {script}");
}

pub async fn text_of(browser: &Browser, css: &str) -> String {
    browser
        .wait_for(css, WAIT)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A JavaScript expression: how many writes wait in the offline queue of the admin signed in
/// (each admin's queue is `localStorage["keysync.sync.queue.<admin id>"]`; these tests sign in
/// one admin per browser).
pub const QUEUED_WRITES: &str = "(() => { \
    const key = Object.keys(localStorage).find(k => k.startsWith('keysync.sync.queue.')); \
    return key ? JSON.parse(localStorage.getItem(key)).items.length : 0; })()";

/// Takes the page off the network (or back on) through the DevTools protocol: requests fail
/// and `navigator.onLine` follows.
pub async fn set_offline(browser: &Browser, offline: bool) {
    browser
        .cdp(
            "Network.emulateNetworkConditions",
            json!({"offline": offline, "latency": 0, "downloadThroughput": -1,
                   "uploadThroughput": -1}),
        )
        .await
        .unwrap();
}

/// Reads `path` through `api` until `check` holds for the JSON answer (the server's view, not
/// the page's); returns it. Fails naming `what` after [`WAIT`].
pub async fn api_until(
    api: &reqwest::Client,
    server: &ServerProcess,
    path: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let now: Value = api
            .get(format!("{}{path}", server.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        if check(&now) {
            return now;
        }
        assert!(start.elapsed() < WAIT, "{what} never happened: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Leaves the page while still offline, goes back online and loads `url` afresh: what the
/// offline queue must survive.
pub async fn come_back_online_at(browser: &Browser, url: &str) {
    browser.client.goto("about:blank").await.unwrap();
    set_offline(browser, false).await;
    browser.client.goto(url).await.unwrap();
}
