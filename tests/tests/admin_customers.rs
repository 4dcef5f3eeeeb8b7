//! The customers page in headless Chromium against the real server and database: create,
//! search, edit, a customer's keys, delete with and without keys, two sessions editing one
//! customer (the conflict dialog), and edits made offline (the queue).
//!
//! Polling is slowed to ten minutes and push is off (the app's test hooks), so what changes on
//! screen comes from the page's own invalidation after each write.

use std::time::{Duration, Instant};

use keysync_e2e::admin::*;
use keysync_e2e::{Browser, ServerProcess};
use serde_json::{json, Value};

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

fn row(email: &str) -> String {
    format!("[data-testid=customer-row][data-email=\"{email}\"]")
}

/// Waits until the row of `email` shows `text`.
async fn wait_for_row_text(browser: &Browser, email: &str, text: &str) {
    let script = format!(
        "const r = document.querySelector({:?}); return !!r && r.textContent.includes({text:?});",
        row(email)
    );
    wait_until(browser, &script).await;
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

/// A server with `customers` made through the owner's API client; the client and what it made.
async fn server_with(customers: &[Value]) -> (ServerProcess, reqwest::Client, Vec<Value>) {
    let server = start_server(&[]);
    let api = owner_api(&server).await;
    let mut made = Vec::new();
    for customer in customers {
        made.push(post(&api, &server, "/api/admin/customers", customer.clone()).await);
    }
    (server, api, made)
}

/// Signs `email` in (slow polling, no push) and opens the customers page, showing `emails`.
async fn open_customers(browser: &Browser, server: &ServerProcess, email: &str, emails: &[&str]) {
    open_slow(browser, &server.address, email, PASSWORD).await;
    click(browser, "[data-testid=nav-customers]").await;
    wait_for_rows(browser, emails).await;
}

#[tokio::test]
async fn customers_are_created_searched_edited_and_deleted_with_their_keys() {
    // Arrange: one customer with a key, made through the API.
    let (server, api, made) =
        server_with(&[json!({"name": "Acme Ltd", "email": "it@acme.example", "company": "Acme"})])
            .await;
    let acme = &made[0];
    let key = post(
        &api,
        &server,
        "/api/admin/keys",
        json!({"customer_id": acme["id"], "notes": "acme key"}),
    )
    .await;
    let browser = Browser::start().await.unwrap();
    open_customers(&browser, &server, OWNER, &["it@acme.example"]).await;
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

    // Act 3: edit.
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
    click(&browser, "[data-testid=customer-save]").await;
    wait_for_row_text(&browser, "ops@globex.example", "Globex International").await;
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
    assert_eq!(edited["company"], json!("Globex International"));
    assert_eq!(edited["version"], json!(2), "one write");
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
    let (server, _, _) =
        server_with(&[json!({"name": "Acme Ltd", "email": "it@acme.example"})]).await;
    server
        .create_admin("viewer@example.com", "viewer", PASSWORD)
        .unwrap();
    let browser = Browser::start().await.unwrap();

    // Act
    open_customers(
        &browser,
        &server,
        "viewer@example.com",
        &["it@acme.example"],
    )
    .await;
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

/// The conflict dialog's rows: `[field, label, mine, theirs]`.
async fn conflict_rows(browser: &Browser) -> Vec<[String; 4]> {
    browser
        .wait_for("[data-testid=conflict-dialog][open]", WAIT)
        .await
        .unwrap();
    let rows = browser
        .js(
            "return [...document.querySelectorAll('[data-testid=conflict-row]')].map(r => \
             [r.dataset.field, r.querySelector('th').innerText.trim(), \
              r.querySelector('[data-testid=conflict-mine]').innerText.trim(), \
              r.querySelector('[data-testid=conflict-theirs]').innerText.trim()]);",
        )
        .await
        .unwrap();
    serde_json::from_value(rows).unwrap()
}

#[tokio::test]
async fn two_sessions_editing_one_customer_meet_the_conflict_dialog_and_merge_or_take_theirs() {
    // Arrange: one customer; two browsers of the owner show it at version 1.
    let (server, api, made) = server_with(&[json!({"name": "Globex",
        "email": "ops@globex.example", "company": "Globex Corp", "notes": "original"})])
    .await;
    let path = format!("/api/admin/customers/{}", made[0]["id"]);
    let a = Browser::start().await.unwrap();
    let b = Browser::start().await.unwrap();
    for browser in [&a, &b] {
        open_customers(browser, &server, OWNER, &["ops@globex.example"]).await;
    }
    let edit = format!("{} [data-testid=customer-edit]", row("ops@globex.example"));

    // Act 1: both open the form; B saves first, then A meets the dialog and merges.
    click(&a, &edit).await;
    click(&b, &edit).await;
    fill(&b, "[data-testid=customer-company]", "Globex Theirs").await;
    fill(&b, "[data-testid=customer-notes]", "theirs").await;
    click(&b, "[data-testid=customer-save]").await;
    api_until(&api, &server, &path, "B's save", |c| c["version"] == 2).await;
    fill(&a, "[data-testid=customer-company]", "Globex Mine").await;
    fill(&a, "[data-testid=customer-notes]", "mine").await;
    click(&a, "[data-testid=customer-save]").await;
    let first_rows = conflict_rows(&a).await;
    a.screenshot("customer-conflict").await.unwrap();
    click(
        &a,
        "[data-testid=conflict-row][data-field=notes] [data-testid=conflict-pick-theirs]",
    )
    .await;
    click(&a, "[data-testid=conflict-merge]").await;
    let merged = api_until(&api, &server, &path, "the merge", |c| c["version"] == 3).await;
    wait_for_row_text(&a, "ops@globex.example", "Globex Mine").await;

    // Act 2: B first again (on version 3); this time A takes theirs.
    b.js("return dataSyncManager.refresh('customer-list');")
        .await
        .unwrap();
    click(&b, &edit).await;
    fill(&b, "[data-testid=customer-name]", "Globex Renamed").await;
    click(&b, "[data-testid=customer-save]").await;
    api_until(&api, &server, &path, "B's rename", |c| c["version"] == 4).await;
    click(&a, &edit).await;
    fill(&a, "[data-testid=customer-name]", "Globex Mine Again").await;
    click(&a, "[data-testid=customer-save]").await;
    let second_rows = conflict_rows(&a).await;
    click(
        &a,
        "[data-testid=conflict-dialog][open] [data-testid=conflict-take-theirs]",
    )
    .await;
    wait_for_row_text(&a, "ops@globex.example", "Globex Renamed").await;
    let notice = text_of(&a, "[data-testid=notice]").await;
    let (_, at_end) = get(&api, &server, &path).await;

    // Assert
    let row_of = |field: &str, label: &str, mine: &str, theirs: &str| {
        [field, label, mine, theirs].map(str::to_owned)
    };
    assert_eq!(
        first_rows,
        vec![
            row_of("company", "Company", "Globex Mine", "Globex Theirs"),
            row_of("notes", "Notes", "mine", "theirs"),
        ],
        "the changed fields, in the form's order and words"
    );
    assert_eq!(merged["company"], json!("Globex Mine"), "mine where picked");
    assert_eq!(merged["notes"], json!("theirs"), "theirs where picked");
    assert_eq!(
        second_rows,
        vec![row_of(
            "name",
            "Name",
            "Globex Mine Again",
            "Globex Renamed"
        )]
    );
    assert!(notice.contains("kept the current version"), "{notice}");
    assert_eq!(at_end["name"], json!("Globex Renamed"));
    assert_eq!(at_end["version"], json!(4), "taking theirs writes nothing");
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn customer_writes_made_offline_survive_a_reload_and_land_once_when_back_online() {
    // Arrange
    let (server, api, made) = server_with(&[
        json!({"name": "Acme Ltd", "email": "it@acme.example"}),
        json!({"name": "Initech", "email": "bill@initech.example"}),
    ])
    .await;
    let (acme_id, initech) = (made[0]["id"].as_i64().unwrap(), &made[1]);
    let browser = Browser::start().await.unwrap();
    let emails = ["it@acme.example", "bill@initech.example"];
    open_customers(&browser, &server, OWNER, &emails).await;

    // Act 1: offline, edit one customer, add one and delete another.
    set_offline(&browser, true).await;
    wait_until(&browser, "return navigator.onLine === false;").await;
    click(
        &browser,
        &format!("{} [data-testid=customer-edit]", row("it@acme.example")),
    )
    .await;
    fill(&browser, "[data-testid=customer-company]", "Edited offline").await;
    click(&browser, "[data-testid=customer-save]").await;
    browser
        .wait_for("[data-testid=pending-count][data-count='1']", WAIT)
        .await
        .unwrap();
    let queued_notice = text_of(&browser, "[data-testid=notice]").await;
    click(&browser, "[data-testid=new-customer]").await;
    fill(&browser, "[data-testid=customer-name]", "Offline Co").await;
    fill(
        &browser,
        "[data-testid=customer-email]",
        "hello@offline.example",
    )
    .await;
    click(&browser, "[data-testid=customer-save]").await;
    browser
        .wait_for("[data-testid=pending-count][data-count='2']", WAIT)
        .await
        .unwrap();
    click(
        &browser,
        &format!(
            "{} [data-testid=customer-delete]",
            row("bill@initech.example")
        ),
    )
    .await;
    click(&browser, "[data-testid=customer-delete-confirm]").await;
    browser
        .wait_for("[data-testid=pending-count][data-count='3']", WAIT)
        .await
        .unwrap();
    browser
        .screenshot("customers-offline-pending")
        .await
        .unwrap();
    let queued = browser
        .js(&format!("return {QUEUED_WRITES};"))
        .await
        .unwrap();
    let (_, while_offline) = get(&api, &server, "/api/admin/customers?limit=200").await;

    // Act 2: leave while offline, come back online and load the app again.
    come_back_online_at(&browser, &format!("{}/admin/customers", server.address)).await;
    let edited = api_until(
        &api,
        &server,
        &format!("/api/admin/customers/{acme_id}"),
        "the offline edit",
        |c| c["company"] == "Edited offline",
    )
    .await;
    wait_until(
        &browser,
        &format!(
            "return !document.querySelector('[data-testid=pending-count]') && \
             {QUEUED_WRITES} === 0;"
        ),
    )
    .await;
    wait_for_rows(&browser, &["it@acme.example", "hello@offline.example"]).await;
    // A reload replays nothing more.
    browser.client.refresh().await.unwrap();
    wait_for_rows(&browser, &["it@acme.example", "hello@offline.example"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, at_end) = get(&api, &server, "/api/admin/customers?limit=200&sort=name").await;
    let (initech_status, _) = get(
        &api,
        &server,
        &format!("/api/admin/customers/{}", initech["id"]),
    )
    .await;
    let (_, audit) = get(
        &api,
        &server,
        "/api/admin/audit-logs?action=customer.&limit=200",
    )
    .await;

    // Assert
    assert!(queued_notice.contains("Offline"), "{queued_notice}");
    assert_eq!(queued, json!(3));
    assert_eq!(
        while_offline["total"],
        json!(2),
        "nothing sent while offline"
    );
    assert_eq!(edited["version"], json!(2), "the edit landed once");
    assert_eq!(initech_status, 404, "the delete landed");
    let emails: Vec<&str> = at_end["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["it@acme.example", "hello@offline.example"]);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let count = |action: &str| actions.iter().filter(|a| **a == action).count();
    // Two made through the API, one offline.
    assert_eq!(count("customer.created"), 3, "{actions:?}");
    assert_eq!(count("customer.updated"), 1, "{actions:?}");
    assert_eq!(count("customer.deleted"), 1, "{actions:?}");
    browser.close().await.unwrap();
}
