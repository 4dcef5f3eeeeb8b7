//! The customers page in headless Chromium against the real server and database: create,
//! search, edit (including an edit that meets someone else's change), a customer's keys, and
//! delete with and without keys.
//!
//! Polling is slowed to ten minutes and push is off (the app's test hooks), so what changes on
//! screen comes from the page's own invalidation after each write.

use std::time::{Duration, Instant};

use keysync_e2e::{built_dist, Browser, ServerProcess};
use serde_json::{json, Value};

const OWNER: &str = "owner@example.com";
const PASSWORD: &str = "correct horse battery staple";
const WAIT: Duration = Duration::from_secs(20);
const SLOW: u64 = 600_000;

fn start_server() -> ServerProcess {
    let dist = built_dist().unwrap();
    ServerProcess::start(&[
        ("KEYSYNC_DIST_DIR", dist.to_str().unwrap()),
        ("KEYSYNC_ADMIN_EMAIL", OWNER),
        ("KEYSYNC_ADMIN_PASSWORD", PASSWORD),
        ("KEYSYNC_LOG", "warn"),
    ])
    .unwrap()
}

async fn open_slow(browser: &Browser, address: &str, email: &str, password: &str) {
    browser
        .client
        .goto(&format!("{address}/login"))
        .await
        .unwrap();
    browser
        .wait_for("[data-testid=app-root]", WAIT)
        .await
        .unwrap();
    let intervals = json!({"dashboard-stats": SLOW, "license-keys": SLOW, "customers": SLOW,
                           "customer-list": SLOW, "admin-users": SLOW});
    browser
        .js(&format!(
            "localStorage.setItem('keysync.sync.intervals', {:?}); \
             localStorage.setItem('keysync.sync.push', 'off');",
            intervals.to_string()
        ))
        .await
        .unwrap();
    browser.sign_in(address, email, password).await.unwrap();
}

async fn owner_api(server: &ServerProcess) -> reqwest::Client {
    let api = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = api
        .post(format!("{}/api/auth/login", server.address))
        .json(&json!({"email": OWNER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success());
    api
}

async fn post(api: &reqwest::Client, server: &ServerProcess, path: &str, body: Value) -> Value {
    let response = api
        .post(format!("{}{path}", server.address))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    response.json().await.unwrap()
}

async fn get(api: &reqwest::Client, server: &ServerProcess, path: &str) -> (u16, Value) {
    let response = api
        .get(format!("{}{path}", server.address))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn click(browser: &Browser, css: &str) {
    browser
        .wait_for(css, WAIT)
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Replaces an input's value the way typing does (an `input` event), whatever it held.
async fn fill(browser: &Browser, css: &str, value: &str) {
    browser.wait_for(css, WAIT).await.unwrap();
    browser
        .js(&format!(
            "const el = document.querySelector({css:?}); el.value = {value:?}; \
             el.dispatchEvent(new Event('input', {{bubbles: true}}));"
        ))
        .await
        .unwrap();
}

async fn wait_until(browser: &Browser, script: &str) {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if browser.js(script).await.unwrap() == json!(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never true within {WAIT:?}: {script}");
}

fn row(email: &str) -> String {
    format!("[data-testid=customer-row][data-email=\"{email}\"]")
}

/// The customers shown, as `[email, text of the row]`.
async fn rows(browser: &Browser) -> Vec<(String, String)> {
    let rows = browser
        .js(
            "return [...document.querySelectorAll('[data-testid=customer-row]')] \
             .map(r => [r.dataset.email, r.textContent]);",
        )
        .await
        .unwrap();
    serde_json::from_value(rows).unwrap()
}

async fn wait_for_rows(browser: &Browser, emails: &[&str]) {
    let start = Instant::now();
    loop {
        let shown: Vec<String> = rows(browser).await.into_iter().map(|(e, _)| e).collect();
        if shown == emails {
            return;
        }
        if start.elapsed() > WAIT {
            let messages = browser
                .js(
                    "return [...document.querySelectorAll('[role=alert], [data-testid=notice]')] \
                     .map(e => e.textContent);",
                )
                .await
                .unwrap();
            panic!("rows {shown:?}, expected {emails:?}; messages on screen: {messages}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text_of(browser: &Browser, css: &str) -> String {
    browser
        .wait_for(css, WAIT)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn customers_are_created_searched_edited_through_a_conflict_and_deleted_with_their_keys() {
    // Arrange: one customer with a key, made through the API.
    let server = start_server();
    let api = owner_api(&server).await;
    let acme = post(
        &api,
        &server,
        "/api/admin/customers",
        json!({"name": "Acme Ltd", "email": "it@acme.example", "company": "Acme"}),
    )
    .await;
    let key = post(
        &api,
        &server,
        "/api/admin/keys",
        json!({"customer_id": acme["id"], "notes": "acme key"}),
    )
    .await;
    let browser = Browser::start().await.unwrap();
    open_slow(&browser, &server.address, OWNER, PASSWORD).await;
    click(&browser, "[data-testid=nav-customers]").await;
    wait_for_rows(&browser, &["it@acme.example"]).await;
    browser.js("window.__sameDocument = true;").await.unwrap();

    // Act 1: create.
    click(&browser, "[data-testid=new-customer]").await;
    fill(&browser, "[data-testid=customer-name]", "Globex").await;
    fill(
        &browser,
        "[data-testid=customer-email]",
        "ops@globex.example",
    )
    .await;
    fill(&browser, "[data-testid=customer-company]", "Globex Corp").await;
    click(&browser, "[data-testid=customer-save]").await;
    wait_for_rows(&browser, &["it@acme.example", "ops@globex.example"]).await;
    let (_, created) = get(&api, &server, "/api/admin/customers?q=globex").await;

    // Act 2: search, then clear it.
    fill(&browser, "[data-testid=customers-search]", "glob").await;
    click(&browser, "[data-testid=customers-search-go]").await;
    wait_for_rows(&browser, &["ops@globex.example"]).await;
    fill(&browser, "[data-testid=customers-search]", "nobody-here").await;
    click(&browser, "[data-testid=customers-search-go]").await;
    let empty = text_of(&browser, "[data-testid=customers-empty]").await;
    fill(&browser, "[data-testid=customers-search]", "").await;
    click(&browser, "[data-testid=customers-search-go]").await;
    wait_for_rows(&browser, &["it@acme.example", "ops@globex.example"]).await;

    // Act 3: edit, while someone else changes the same customer.
    click(
        &browser,
        &format!("{} [data-testid=customer-edit]", row("ops@globex.example")),
    )
    .await;
    fill(
        &browser,
        "[data-testid=customer-company]",
        "Globex International",
    )
    .await;
    let id = created["items"][0]["id"].as_i64().unwrap();
    let theirs = api
        .patch(format!("{}/api/admin/customers/{id}", server.address))
        .header("If-Match", "*")
        .json(&json!({"notes": "changed elsewhere"}))
        .send()
        .await
        .unwrap();
    assert!(theirs.status().is_success(), "{theirs:?}");
    click(&browser, "[data-testid=customer-save]").await;
    let conflict = text_of(&browser, "[data-testid=customer-form-error]").await;
    let notes_after_conflict = browser
        .js("return document.querySelector('[data-testid=customer-notes]').value;")
        .await
        .unwrap();
    browser.screenshot("customers-conflict").await.unwrap();
    fill(
        &browser,
        "[data-testid=customer-company]",
        "Globex International",
    )
    .await;
    click(&browser, "[data-testid=customer-save]").await;
    wait_until(
        &browser,
        &format!(
            "const r = document.querySelector({:?}); \
             return !!r && r.textContent.includes('Globex International');",
            row("ops@globex.example")
        ),
    )
    .await;
    let (_, edited) = get(&api, &server, &format!("/api/admin/customers/{id}")).await;

    // Act 4: a customer's keys.
    click(
        &browser,
        &format!("{} [data-testid=customer-keys]", row("it@acme.example")),
    )
    .await;
    browser
        .wait_for("[data-testid=keys-customer-filter]", WAIT)
        .await
        .unwrap();
    wait_until(
        &browser,
        &format!(
            "const rows = [...document.querySelectorAll('[data-testid=key-row]')]; \
             return rows.length === 1 && rows[0].dataset.key === {:?};",
            key["key"].as_str().unwrap()
        ),
    )
    .await;
    let filter = text_of(&browser, "[data-testid=keys-customer-filter]").await;
    browser.screenshot("customer-keys").await.unwrap();
    click(&browser, "[data-testid=nav-customers]").await;
    wait_for_rows(&browser, &["it@acme.example", "ops@globex.example"]).await;
    browser.screenshot("customers").await.unwrap();

    // Act 5: delete the customer with a key (its key is revoked), then the one without.
    click(
        &browser,
        &format!("{} [data-testid=customer-delete]", row("it@acme.example")),
    )
    .await;
    let warning = text_of(&browser, "[data-testid=customer-delete-keys]").await;
    click(&browser, "[data-testid=customer-delete-confirm]").await;
    wait_for_rows(&browser, &["ops@globex.example"]).await;
    click(
        &browser,
        &format!(
            "{} [data-testid=customer-delete]",
            row("ops@globex.example")
        ),
    )
    .await;
    let plain_delete = text_of(&browser, "[data-testid=customer-delete-confirm]").await;
    click(&browser, "[data-testid=customer-delete-confirm]").await;
    browser
        .wait_for("[data-testid=customers-empty]", WAIT)
        .await
        .unwrap();
    let same_document = browser
        .js("return window.__sameDocument === true;")
        .await
        .unwrap();
    let (acme_status, _) = get(
        &api,
        &server,
        &format!("/api/admin/customers/{}", acme["id"]),
    )
    .await;
    let (_, acme_key) = get(&api, &server, &format!("/api/admin/keys/{}", key["id"])).await;

    // Assert
    assert_eq!(created["total"], json!(1), "{created}");
    assert_eq!(created["items"][0]["company"], json!("Globex Corp"));
    assert_eq!(empty, "No customer matches this search.");
    assert!(conflict.contains("changed elsewhere"), "{conflict}");
    assert_eq!(
        notes_after_conflict,
        json!("changed elsewhere"),
        "their version is loaded"
    );
    assert_eq!(edited["company"], json!("Globex International"));
    assert_eq!(
        edited["notes"],
        json!("changed elsewhere"),
        "their change is kept"
    );
    assert!(filter.contains("Acme Ltd"), "{filter}");
    assert!(warning.contains("1 license key"), "{warning}");
    assert_eq!(plain_delete, "Delete");
    assert_eq!(same_document, json!(true), "no page reload");
    assert_eq!(acme_status, 404);
    assert_eq!(acme_key["status"], json!("revoked"));
    assert_eq!(acme_key["customer_id"], Value::Null);
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_viewer_sees_customers_but_no_write_controls() {
    // Arrange
    let server = start_server();
    server
        .create_admin("viewer@example.com", "viewer", PASSWORD)
        .unwrap();
    let api = owner_api(&server).await;
    post(
        &api,
        &server,
        "/api/admin/customers",
        json!({"name": "Acme Ltd", "email": "it@acme.example"}),
    )
    .await;
    let browser = Browser::start().await.unwrap();
    open_slow(&browser, &server.address, "viewer@example.com", PASSWORD).await;

    // Act
    click(&browser, "[data-testid=nav-customers]").await;
    wait_for_rows(&browser, &["it@acme.example"]).await;
    let controls = browser
        .js(
            "return ['new-customer', 'customer-edit', 'customer-delete'] \
             .filter(id => document.querySelector(`[data-testid=${id}]`));",
        )
        .await
        .unwrap();

    // Assert
    assert_eq!(controls, json!([]), "a viewer has no write controls");
    browser.close().await.unwrap();
}
