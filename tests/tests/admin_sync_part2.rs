//! The admin app, part 2, in headless Chromium against the real server and database: sync
//! preferences that follow the admin to another browser, the public portal against a local
//! GitHub-compatible upstream, the conflict dialog, the offline queue, and sync analytics
//! reaching `/metrics`.

use std::time::{Duration, Instant};

use keysync_e2e::admin::*;
use keysync_e2e::fake_github::{FakeGithub, REPO};
use keysync_e2e::{Browser, ServerProcess};
use serde_json::{json, Value};

async fn get_json(api: &reqwest::Client, url: String) -> Value {
    let response = api.get(url).send().await.unwrap();
    assert!(response.status().is_success(), "{response:?}");
    response.json().await.unwrap()
}

async fn create_key(api: &reqwest::Client, server: &ServerProcess, notes: &str) -> Value {
    let response = api
        .post(format!("{}/api/admin/keys", server.address))
        .json(&json!({"notes": notes}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn key(api: &reqwest::Client, server: &ServerProcess, id: i64) -> Value {
    get_json(api, format!("{}/api/admin/keys/{id}", server.address)).await
}

async fn interval_of(browser: &Browser, key: &str) -> Value {
    browser
        .js(&format!(
            "const s = dataSyncManager.getStatus().find(s => s.key === {key:?}); \
             return s ? s.interval : null;"
        ))
        .await
        .unwrap()
}

/// Opens the edit dialog of the key row `key`.
async fn open_edit(browser: &Browser, key: &str) {
    click(
        browser,
        &format!("[data-testid=key-row][data-key='{key}'] [data-testid=key-edit]"),
    )
    .await;
    browser
        .wait_for("[data-testid=edit-notes]", WAIT)
        .await
        .unwrap();
}

async fn open_keys_page(browser: &Browser, address: &str, key: &str) {
    browser
        .client
        .goto(&format!("{address}/admin/keys"))
        .await
        .unwrap();
    browser
        .wait_for(&format!("[data-testid=key-row][data-key='{key}']"), WAIT)
        .await
        .unwrap();
}

#[tokio::test]
async fn preferences_saved_in_one_browser_are_applied_in_another_at_once_and_after_a_reload() {
    let server = start_server(&[]);
    let a = Browser::start().await.unwrap();
    let b = Browser::start().await.unwrap();
    a.sign_in(&server.address, OWNER, PASSWORD).await.unwrap();
    b.sign_in(&server.address, OWNER, PASSWORD).await.unwrap();
    // B runs on the defaults, with the push stream live.
    b.wait_for("[data-testid=sync-indicator][data-state=live]", WAIT)
        .await
        .unwrap();
    assert_eq!(interval_of(&b, "license-keys").await, json!(15_000));

    a.client
        .goto(&format!("{}/admin/settings", server.address))
        .await
        .unwrap();
    type_text(&a, "[data-testid=pref-keys_ms]", "4").await;
    type_text(&a, "[data-testid=pref-stats_ms]", "7.5").await;
    click(&a, "[data-testid=pref-push]").await;
    a.screenshot("settings").await.unwrap();
    click(&a, "[data-testid=settings-save]").await;
    a.wait_for("[data-testid=notice]", WAIT).await.unwrap();

    // Applied in A's own running manager...
    assert_eq!(interval_of(&a, "license-keys").await, json!(4_000));
    assert_eq!(interval_of(&a, "dashboard-stats").await, json!(7_500));
    // ...and in B, told by the push of `sync_preferences` for this admin: new intervals, and
    // push switched off (the indicator turns to polling).
    wait_until(
        &b,
        "return dataSyncManager.getStatus().some(s => s.key === 'license-keys' && s.interval === 4000);",
    )
    .await;
    b.wait_for("[data-testid=sync-indicator][data-state=polling]", WAIT)
        .await
        .unwrap();
    assert_eq!(interval_of(&b, "dashboard-stats").await, json!(7_500));

    // A fresh page load applies them at startup, after sign-in.
    b.client.refresh().await.unwrap();
    b.wait_for("[data-testid=dashboard]", WAIT).await.unwrap();
    wait_until(
        &b,
        "return dataSyncManager.getStatus().some(s => s.key === 'license-keys' && s.interval === 4000);",
    )
    .await;
    b.wait_for("[data-testid=sync-indicator][data-state=polling]", WAIT)
        .await
        .unwrap();

    // The server kept them.
    let api = owner_api(&server).await;
    let saved = get_json(&api, format!("{}/api/admin/me/preferences", server.address)).await;
    assert_eq!(saved["intervals"]["keys_ms"], 4_000);
    assert_eq!(saved["push_enabled"], false);

    // A value out of range is refused with the field named, and nothing changes.
    type_text(&a, "[data-testid=pref-keys_ms]", "0.5").await;
    click(&a, "[data-testid=settings-save]").await;
    let error = text_of(&a, "[data-testid=settings-error]").await;
    assert!(!error.is_empty());
    assert_eq!(interval_of(&a, "license-keys").await, json!(4_000));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn without_push_preferences_saved_elsewhere_arrive_through_the_polled_change_feed() {
    let server = start_server(&[]);
    let api = owner_api(&server).await;
    let b = Browser::start().await.unwrap();
    // B never opens the event stream and reads the change feed every half second.
    set_hooks(&b, &server.address, &json!({"change-feed": 500}), false).await;
    b.sign_in(&server.address, OWNER, PASSWORD).await.unwrap();
    b.wait_for("[data-testid=sync-indicator][data-state=polling]", WAIT)
        .await
        .unwrap();
    assert_eq!(interval_of(&b, "license-keys").await, json!(15_000));

    // The same admin saves preferences elsewhere.
    let saved = api
        .put(format!("{}/api/admin/me/preferences", server.address))
        .json(&json!({"intervals": {"stats_ms": 30_000, "keys_ms": 4_000,
                      "customers_ms": 30_000, "users_ms": 60_000, "activity_ms": 10_000,
                      "releases_ms": 300_000}}))
        .send()
        .await
        .unwrap();
    assert!(saved.status().is_success(), "{saved:?}");

    wait_until(
        &b,
        "return dataSyncManager.getStatus().some(s => s.key === 'license-keys' && s.interval === 4000);",
    )
    .await;
    let read_feed = b
        .js("return performance.getEntriesByType('resource') \
             .some(e => e.name.includes('/api/admin/sync?since='));")
        .await
        .unwrap();
    assert_eq!(read_feed, json!(true), "it came through /api/admin/sync");
    b.close().await.unwrap();
}

#[tokio::test]
async fn two_sessions_editing_one_key_meet_the_conflict_dialog_and_keep_mine_or_merge() {
    let server = start_server(&[]);
    let api = owner_api(&server).await;
    let created = create_key(&api, &server, "original notes").await;
    let (id, name) = (
        created["id"].as_i64().unwrap(),
        created["key"].as_str().unwrap().to_owned(),
    );
    let a = Browser::start().await.unwrap();
    let b = Browser::start().await.unwrap();
    a.sign_in(&server.address, OWNER, PASSWORD).await.unwrap();
    b.sign_in(&server.address, OWNER, PASSWORD).await.unwrap();
    open_keys_page(&a, &server.address, &name).await;
    open_keys_page(&b, &server.address, &name).await;

    // Both open the editor on version 1; B saves first.
    open_edit(&a, &name).await;
    open_edit(&b, &name).await;
    type_text(&b, "[data-testid=edit-notes]", "theirs").await;
    type_text(&b, "[data-testid=edit-seats]", "9").await;
    click(&b, "[data-testid=edit-save]").await;
    b.wait_for("[data-testid=notice]", WAIT).await.unwrap();
    assert_eq!(key(&api, &server, id).await["notes"], "theirs");

    type_text(&a, "[data-testid=edit-notes]", "mine").await;
    type_text(&a, "[data-testid=edit-seats]", "3").await;
    click(&a, "[data-testid=edit-save]").await;
    a.wait_for("[data-testid=conflict-dialog][open]", WAIT)
        .await
        .unwrap();
    let rows = a
        .js(
            "return [...document.querySelectorAll('[data-testid=conflict-row]')].map(r => \
             [r.dataset.field, r.querySelector('[data-testid=conflict-mine]').innerText.trim(), \
              r.querySelector('[data-testid=conflict-theirs]').innerText.trim()]);",
        )
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> = serde_json::from_value(rows).unwrap();
    assert!(rows.contains(&("notes".into(), "mine".into(), "theirs".into())));
    assert!(rows.contains(&("max_activations".into(), "3".into(), "9".into())));
    a.screenshot("conflict-dialog").await.unwrap();

    // Merge: my notes, their seat limit.
    click(
        &a,
        "[data-testid=conflict-row][data-field=max_activations] [data-testid=conflict-pick-theirs]",
    )
    .await;
    click(&a, "[data-testid=conflict-merge]").await;
    let path = format!("/api/admin/keys/{id}");
    let merged = api_until(&api, &server, &path, "the merge", |k| k["notes"] == "mine").await;
    assert_eq!(merged["max_activations"], 9);
    assert_eq!(merged["version"], 3, "exactly one more write");

    // Again, B first (both now showing version 3); this time A keeps its whole change.
    for browser in [&a, &b] {
        browser
            .js("return dataSyncManager.refresh('license-keys');")
            .await
            .unwrap();
    }
    open_edit(&b, &name).await;
    type_text(&b, "[data-testid=edit-notes]", "theirs again").await;
    open_edit(&a, &name).await;
    click(&b, "[data-testid=edit-save]").await;
    api_until(&api, &server, &path, "B's save", |k| k["version"] == 4).await;
    type_text(&a, "[data-testid=edit-notes]", "mine again").await;
    click(&a, "[data-testid=edit-save]").await;
    click(
        &a,
        "[data-testid=conflict-dialog][open] [data-testid=conflict-keep-mine]",
    )
    .await;
    let kept = api_until(&api, &server, &path, "keep mine", |k| {
        k["notes"] == "mine again"
    })
    .await;
    assert_eq!(kept["version"], 5);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// Creates a key (notes "before") and opens the keys page showing it in a browser signed in as
/// the owner; returns the owner's API client, the key's id and name, and the browser.
async fn owner_on_keys_page_with_a_key(
    server: &ServerProcess,
) -> (reqwest::Client, i64, String, Browser) {
    let api = owner_api(server).await;
    let created = create_key(&api, server, "before").await;
    let (id, name) = (
        created["id"].as_i64().unwrap(),
        created["key"].as_str().unwrap().to_owned(),
    );
    let browser = Browser::start().await.unwrap();
    browser
        .sign_in(&server.address, OWNER, PASSWORD)
        .await
        .unwrap();
    open_keys_page(&browser, &server.address, &name).await;
    (api, id, name, browser)
}

#[tokio::test]
async fn edits_made_offline_survive_a_reload_and_land_exactly_once_when_back_online() {
    let server = start_server(&[]);
    let (api, id, name, browser) = owner_on_keys_page_with_a_key(&server).await;

    set_offline(&browser, true).await;
    wait_until(&browser, "return navigator.onLine === false;").await;
    // Two edits of the same key while offline: the second builds on the first.
    edit_notes(&browser, &name, "edited offline", 1).await;
    open_edit(&browser, &name).await;
    type_text(&browser, "[data-testid=edit-seats]", "5").await;
    click(&browser, "[data-testid=edit-save]").await;
    browser
        .wait_for("[data-testid=pending-count][data-count='2']", WAIT)
        .await
        .unwrap();
    browser.screenshot("offline-pending").await.unwrap();
    let queued = browser
        .js(&format!("return {QUEUED_WRITES};"))
        .await
        .unwrap();
    assert_eq!(queued, json!(2));
    assert_eq!(
        key(&api, &server, id).await["version"],
        1,
        "nothing sent yet"
    );

    // Leave the page while still offline, then come back online and load the app again.
    come_back_online_at(&browser, &format!("{}/admin/keys", server.address)).await;
    let landed = api_until(
        &api,
        &server,
        &format!("/api/admin/keys/{id}"),
        "the queued edits' landing",
        |k| k["max_activations"] == 5,
    )
    .await;
    assert_eq!(landed["notes"], "edited offline");
    assert_eq!(landed["version"], 3, "two writes, each exactly once");
    wait_until(
        &browser,
        &format!(
            "return !document.querySelector('[data-testid=pending-count]') && \
             {QUEUED_WRITES} === 0;"
        ),
    )
    .await;
    // A reload replays nothing more.
    browser.client.refresh().await.unwrap();
    browser
        .wait_for(&format!("[data-testid=key-row][data-key='{name}']"), WAIT)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(key(&api, &server, id).await["version"], 3);
    let audit = get_json(
        &api,
        format!(
            "{}/api/admin/audit-logs?action=license_key.updated&limit=200",
            server.address
        ),
    )
    .await;
    let updates = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target_id"] == json!(id) || e["target_id"] == json!(id.to_string()))
        .count();
    assert_eq!(updates, 2, "{audit}");
    browser.close().await.unwrap();
}

/// Makes requests to the single-key endpoints fail in the page (as a dropped connection does)
/// while `navigator.onLine` stays true, or lets them through again.
async fn block_key_writes(browser: &Browser, blocked: bool) {
    browser.cdp("Network.enable", json!({})).await.unwrap();
    let urls = if blocked {
        json!(["*/api/admin/keys/*"])
    } else {
        json!([])
    };
    browser
        .cdp("Network.setBlockedURLs", json!({ "urls": urls }))
        .await
        .unwrap();
}

async fn edit_notes(browser: &Browser, key: &str, notes: &str, pending: usize) {
    open_edit(browser, key).await;
    type_text(browser, "[data-testid=edit-notes]", notes).await;
    click(browser, "[data-testid=edit-save]").await;
    browser
        .wait_for(
            &format!("[data-testid=pending-count][data-count='{pending}']"),
            WAIT,
        )
        .await
        .unwrap();
}

async fn sign_out(browser: &Browser) {
    click(browser, "[data-testid=sign-out]").await;
    browser
        .wait_for("[data-testid=login-email]", WAIT)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_write_that_failed_while_online_is_retried_and_only_in_its_own_admins_session() {
    let server = start_server(&[]);
    server
        .create_admin("second@example.com", "admin", PASSWORD)
        .unwrap();
    let (api, id, name, browser) = owner_on_keys_page_with_a_key(&server).await;

    // Act 1: the request fails but the browser never goes offline, so no `online` event will
    // come: the queue's own back-off must send it once the server can be reached.
    block_key_writes(&browser, true).await;
    edit_notes(&browser, &name, "sent on retry", 1).await;
    assert_eq!(
        browser.js("return navigator.onLine;").await.unwrap(),
        json!(true)
    );
    assert_eq!(
        key(&api, &server, id).await["version"],
        1,
        "nothing landed yet"
    );
    block_key_writes(&browser, false).await;
    let landed = api_until(
        &api,
        &server,
        &format!("/api/admin/keys/{id}"),
        "the retried write",
        |k| k["notes"] == "sent on retry",
    )
    .await;
    assert_eq!(landed["version"], 2);
    wait_until(
        &browser,
        "return !document.querySelector('[data-testid=pending-count]');",
    )
    .await;

    // Act 2: a write queued by the owner is not sent in another admin's session on this
    // browser, and lands when the owner signs in again.
    block_key_writes(&browser, true).await;
    edit_notes(&browser, &name, "the owner's", 1).await;
    sign_out(&browser).await;
    block_key_writes(&browser, false).await;
    browser
        .sign_in(&server.address, "second@example.com", PASSWORD)
        .await
        .unwrap();
    open_keys_page(&browser, &server.address, &name).await;
    assert!(
        browser
            .js("return !document.querySelector('[data-testid=pending-count]');")
            .await
            .unwrap()
            .as_bool()
            .unwrap(),
        "the second admin sees no pending writes of the owner"
    );
    // Longer than the first retries' back-off (1 s, 2 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        key(&api, &server, id).await["version"],
        2,
        "the owner's write was not sent in the second admin's session"
    );
    sign_out(&browser).await;
    browser
        .sign_in(&server.address, OWNER, PASSWORD)
        .await
        .unwrap();
    let landed = api_until(
        &api,
        &server,
        &format!("/api/admin/keys/{id}"),
        "the owner's queued write after signing in again",
        |k| k["notes"] == "the owner's",
    )
    .await;
    assert_eq!(landed["version"], 3);
    let audit = get_json(
        &api,
        format!(
            "{}/api/admin/audit-logs?action=license_key.updated&limit=200",
            server.address
        ),
    )
    .await;
    let actors: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        actors,
        vec![OWNER, OWNER],
        "each write once, by its author: {audit}"
    );
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_portal_shows_the_release_refuses_and_accepts_keys_and_says_when_it_is_stale() {
    let fake = FakeGithub::start(
        "v2.1.0",
        "## Highlights\n\n- **Faster** sync\n- <script>window.injected = 1</script> stays text\n\nThanks.",
    );
    let server = start_server(&[
        ("KEYSYNC_RELEASES_REPO", REPO),
        ("KEYSYNC_RELEASES_API_URL", &fake.base_url),
        ("KEYSYNC_RELEASES_CACHE_SECS", "1"),
        ("KEYSYNC_RELEASES_RETRY_SECS", "1"),
    ]);
    let api = owner_api(&server).await;
    let valid = create_key(&api, &server, "technician").await;
    let suspended = create_key(&api, &server, "suspended").await;
    let patch = api
        .patch(format!(
            "{}/api/admin/keys/{}",
            server.address, suspended["id"]
        ))
        .header("If-Match", "*")
        .json(&json!({"status": "suspended"}))
        .send()
        .await
        .unwrap();
    assert!(patch.status().is_success());

    // No sign-in: the portal is public.
    let browser = Browser::start().await.unwrap();
    browser
        .client
        .goto(&format!("{}/portal", server.address))
        .await
        .unwrap();
    assert_eq!(
        text_of(&browser, "[data-testid=release-name]").await,
        "Tool v2.1.0"
    );
    assert_eq!(
        text_of(&browser, "[data-testid=release-tag]").await,
        "v2.1.0"
    );
    assert_eq!(
        text_of(&browser, "[data-testid=release-published]").await,
        "2026-11-20"
    );
    browser
        .wait_for("[data-testid=portal-fresh]", WAIT)
        .await
        .unwrap();
    let notes = text_of(&browser, "[data-testid=release-notes]").await;
    assert!(
        notes.contains("<script>window.injected = 1</script> stays text"),
        "{notes}"
    );
    assert_eq!(
        browser
            .js(
                "return [document.querySelectorAll('[data-testid=release-notes] script').length, \
                 window.injected === undefined, \
                 document.querySelector('[data-testid=release-notes] strong').innerText];"
            )
            .await
            .unwrap(),
        json!([0, true, "Faster"])
    );
    let sizes = browser
        .js("return [...document.querySelectorAll('[data-testid=asset-size]')].map(e => e.innerText);")
        .await
        .unwrap();
    assert_eq!(sizes, json!(["1.0 MiB", "2.5 MiB"]));
    browser.screenshot("portal").await.unwrap();

    let asset = "[data-testid=asset][data-asset='tool-linux-x86_64.tar.gz']";
    // Refused: unknown key, then a suspended one, each with its own sentence.
    type_text(&browser, "[data-testid=portal-key]", "NOPE-NOPE-NOPE-NOPE").await;
    click(&browser, &format!("{asset} [data-testid=asset-download]")).await;
    let unknown = text_of(&browser, &format!("{asset} [data-testid=download-refused]")).await;
    assert!(unknown.contains("does not exist"), "{unknown}");
    type_text(
        &browser,
        "[data-testid=portal-key]",
        suspended["key"].as_str().unwrap(),
    )
    .await;
    click(&browser, &format!("{asset} [data-testid=asset-download]")).await;
    wait_until(
        &browser,
        &format!("return document.querySelector(\"{asset} [data-testid=download-refused]\").innerText.includes('suspended');"),
    )
    .await;
    // Accepted: a link to the file, and the key's download counter moves.
    type_text(
        &browser,
        "[data-testid=portal-key]",
        valid["key"].as_str().unwrap(),
    )
    .await;
    click(&browser, &format!("{asset} [data-testid=asset-download]")).await;
    let link = browser
        .wait_for(&format!("{asset} [data-testid=download-link]"), WAIT)
        .await
        .unwrap();
    assert_eq!(
        link.attr("href").await.unwrap().as_deref(),
        Some("https://github.com/acme/tool/releases/download/v2.1.0/tool-linux-x86_64.tar.gz")
    );
    let counted = key(&api, &server, valid["id"].as_i64().unwrap()).await;
    assert_eq!(counted["download_count"], 1);

    // The upstream fails: the server serves its last good copy marked stale, and the page says
    // so when it next refreshes (here at once through the console API).
    fake.set_failing(true);
    let calls = fake.calls();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let start = Instant::now();
    while browser
        .js("return !!document.querySelector('[data-testid=portal-stale]');")
        .await
        .unwrap()
        != json!(true)
    {
        assert!(start.elapsed() < WAIT, "the page never said stale");
        browser
            .js("dataSyncManager.refresh('releases');")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(fake.calls() > calls);
    assert_eq!(
        text_of(&browser, "[data-testid=release-name]").await,
        "Tool v2.1.0",
        "the last good copy stays on screen"
    );
    let freshness = text_of(&browser, "[data-testid=portal-freshness]").await;
    assert!(freshness.contains("UTC"), "{freshness}");
    browser.screenshot("portal-stale").await.unwrap();
    browser.close().await.unwrap();
}

#[tokio::test]
async fn sync_analytics_reach_the_server_the_dashboard_panel_and_prometheus() {
    let server = start_server(&[]);
    let browser = Browser::start().await.unwrap();
    browser
        .sign_in(&server.address, OWNER, PASSWORD)
        .await
        .unwrap();
    // Some polls to report.
    browser
        .js("return dataSyncManager.refreshAll();")
        .await
        .unwrap();
    browser
        .wait_for("[data-testid=sync-indicator][data-state=live]", WAIT)
        .await
        .unwrap();
    // Leaving the page sends the batch (pagehide, fetch keepalive).
    browser.client.refresh().await.unwrap();
    browser
        .wait_for("[data-testid=dashboard]", WAIT)
        .await
        .unwrap();

    let http = reqwest::Client::new();
    let start = Instant::now();
    let text = loop {
        let text = http
            .get(format!("{}/metrics", server.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("keysync_sync_fetches_total{source=\"license-keys\"}") {
            break text;
        }
        assert!(
            start.elapsed() < WAIT,
            "no sync figures in /metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let fetches: f64 = text
        .lines()
        .find(|l| l.starts_with("keysync_sync_fetches_total{source=\"license-keys\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(fetches >= 2.0, "{text}");
    assert!(text.contains("keysync_sync_fetch_duration_ms_bucket{source=\"license-keys\""));
    assert!(text.contains("keysync_sync_push_connected_ms_total"));

    // The dashboard's panel shows the same source.
    let start = Instant::now();
    while browser
        .js("return !!document.querySelector('[data-testid=sync-health-row][data-source=license-keys]');")
        .await
        .unwrap()
        != json!(true)
    {
        assert!(start.elapsed() < WAIT, "the sync-health panel never showed license-keys");
        // The panel loads when the dashboard mounts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        browser.client.refresh().await.unwrap();
        browser
            .wait_for("[data-testid=sync-health]", WAIT)
            .await
            .unwrap();
    }
    browser.screenshot("dashboard-sync-health").await.unwrap();
    browser.close().await.unwrap();
}
