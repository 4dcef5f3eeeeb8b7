//! The keys page's single-key actions, the copy button and offline/online, in headless Chromium
//! against the real server and database.
//!
//! Polling is slowed to ten minutes and push is off (the app's test hooks, see
//! docs/architecture.md), so whatever changes on screen comes from the action under test, not
//! from a poll.

use std::time::{Duration, Instant};

use keysync_e2e::admin::*;
use keysync_e2e::{Browser, ServerProcess};
use serde_json::{json, Value};

async fn batch_create(api: &reqwest::Client, server: &ServerProcess, count: u32) -> Vec<String> {
    let response = api
        .post(format!("{}/api/admin/keys/batch", server.address))
        .json(&json!({"create": {"count": count, "notes": "single"}}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    let body: Value = response.json().await.unwrap();
    body["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_owned())
        .collect()
}

/// The key's status as the server has it.
async fn server_status(api: &reqwest::Client, server: &ServerProcess, key: &str) -> String {
    let page: Value = api
        .get(format!("{}/api/admin/keys?q={key}", server.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"][0]["status"].as_str().unwrap().to_owned()
}

fn row(key: &str) -> String {
    format!("[data-testid=key-row][data-key=\"{key}\"]")
}

async fn row_status(browser: &Browser, key: &str) -> Value {
    browser
        .js(&format!(
            "const r = document.querySelector('{}'); return r && r.dataset.status;",
            row(key).replace('\'', "\\'")
        ))
        .await
        .unwrap()
}

async fn wait_for_row_status(browser: &Browser, key: &str, status: &str) {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if row_status(browser, key).await == json!(status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{key} never showed {status}; it shows {:?}",
        row_status(browser, key).await
    );
}

async fn fetch_counts(browser: &Browser) -> Vec<(String, u64)> {
    let status = browser
        .js("return dataSyncManager.getStatus().map(s => [s.key, s.fetchCount]);")
        .await
        .unwrap();
    serde_json::from_value(status).unwrap()
}

#[tokio::test]
async fn suspend_and_revoke_on_one_row_update_it_without_a_reload_and_the_server_agrees() {
    // Arrange
    let server = start_server(&[]);
    let api = owner_api(&server).await;
    let keys = batch_create(&api, &server, 2).await;
    let (to_suspend, to_revoke) = (&keys[0], &keys[1]);
    let browser = Browser::start().await.unwrap();
    open_slow(&browser, &server.address, OWNER, PASSWORD).await;
    click(&browser, "[data-testid=nav-keys]").await;
    wait_for_row_status(&browser, to_suspend, "active").await;
    wait_for_row_status(&browser, to_revoke, "active").await;
    // A reload would lose this.
    browser.js("window.__sameDocument = true;").await.unwrap();

    // Act: suspend one key, revoke the other (revoking asks first).
    click(
        &browser,
        &format!("{} [data-testid=key-suspend]", row(to_suspend)),
    )
    .await;
    wait_for_row_status(&browser, to_suspend, "suspended").await;
    click(
        &browser,
        &format!("{} [data-testid=key-revoke]", row(to_revoke)),
    )
    .await;
    click(&browser, "[data-testid=confirm-ok]").await;
    wait_for_row_status(&browser, to_revoke, "revoked").await;
    let reactivate_shown = browser
        .js(&format!(
            "return !!document.querySelector('{} [data-testid=key-reactivate]');",
            row(to_suspend).replace('\'', "\\'")
        ))
        .await
        .unwrap();
    let revoked_actions = browser
        .js(&format!(
            "return [...document.querySelectorAll('{} button')].map(b => b.dataset.testid);",
            row(to_revoke).replace('\'', "\\'")
        ))
        .await
        .unwrap();
    let same_document = browser
        .js("return window.__sameDocument === true;")
        .await
        .unwrap();
    browser.screenshot("keys-single-actions").await.unwrap();

    // Assert
    assert_eq!(same_document, json!(true), "no page reload");
    assert_eq!(
        reactivate_shown,
        json!(true),
        "a suspended key offers Reactivate"
    );
    assert_eq!(
        revoked_actions,
        json!(["key-edit", "key-delete"]),
        "a revoked key can be edited (notes, expiry) or deleted, never reactivated"
    );
    assert_eq!(server_status(&api, &server, to_suspend).await, "suspended");
    assert_eq!(server_status(&api, &server, to_revoke).await, "revoked");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_copy_button_puts_exactly_the_shown_key_on_the_clipboard() {
    // Arrange: the page may read and write the clipboard (granted through the DevTools protocol).
    let server = start_server(&[]);
    let browser = Browser::start().await.unwrap();
    open_slow(&browser, &server.address, OWNER, PASSWORD).await;
    browser
        .cdp(
            "Browser.grantPermissions",
            json!({"origin": server.address,
                   "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
        )
        .await
        .unwrap();
    click(&browser, "[data-testid=nav-keys]").await;
    click(&browser, "[data-testid=new-key]").await;
    browser
        .wait_for("[data-testid=create-notes]", WAIT)
        .await
        .unwrap()
        .send_keys("to copy")
        .await
        .unwrap();
    click(&browser, "[data-testid=create-submit]").await;
    let shown = browser
        .wait_for("[data-testid=new-key-value]", WAIT)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser
        .js("return navigator.clipboard.writeText('something else');")
        .await
        .unwrap();

    // Act
    click(&browser, "[data-testid=copy-key]").await;
    wait_until(
        &browser,
        "return document.querySelector('[data-testid=copy-key]').textContent.includes('Copied');",
    )
    .await;
    let copied = browser
        .js("return navigator.clipboard.readText();")
        .await
        .unwrap();
    browser.screenshot("keys-copied").await.unwrap();

    // Assert
    assert!(shown.starts_with("SCO-"), "{shown}");
    assert_eq!(copied, json!(shown));
    browser.close().await.unwrap();
}

#[tokio::test]
async fn offline_pauses_the_indicator_and_coming_back_online_refreshes_every_source() {
    // Arrange
    let server = start_server(&[]);
    let browser = Browser::start().await.unwrap();
    open_slow(&browser, &server.address, OWNER, PASSWORD).await;
    wait_until(
        &browser,
        "return dataSyncManager.getStatus().length === 4 && \
         dataSyncManager.getStatus().every(s => s.fetchCount >= 1 && !s.inFlight);",
    )
    .await;
    browser.cdp("Network.enable", json!({})).await.unwrap();

    // Act: offline.
    set_offline(&browser, true).await;
    browser
        .wait_for("[data-testid=sync-indicator][data-state=paused]", WAIT)
        .await
        .expect("the indicator shows paused while offline");
    let label = browser
        .wait_for("[data-testid=sync-indicator]", WAIT)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser.screenshot("dashboard-offline").await.unwrap();
    let before = fetch_counts(&browser).await;
    // Act: back online.
    set_offline(&browser, false).await;
    browser
        .wait_for("[data-testid=sync-indicator][data-state=polling]", WAIT)
        .await
        .expect("polling resumes when the network returns");
    let before_map: serde_json::Map<String, Value> =
        before.iter().map(|(k, n)| (k.clone(), json!(n))).collect();
    wait_until(
        &browser,
        &format!(
            "const before = {}; return dataSyncManager.getStatus().every(s => \
             s.fetchCount > before[s.key] && !s.inFlight && s.lastError === null);",
            Value::Object(before_map)
        ),
    )
    .await;

    // Assert
    assert!(label.contains("Offline"), "{label}");
    assert_eq!(before.len(), 4, "{before:?}");
    browser.close().await.unwrap();
}
