//! The activity page in headless Chromium against the real server and database: entries made
//! elsewhere (an admin's change, a license validation) appear live through push, and the
//! action, actor, target and time filters narrow the log.
//!
//! Every polling interval is ten minutes (the app's test hooks), so an entry that appears while
//! the page is open came by push.

use std::time::{Duration, Instant};

use keysync_e2e::admin::*;
use keysync_e2e::Browser;
use serde_json::{json, Value};

/// The entries shown, as `[action, actor]`.
async fn entries(browser: &Browser) -> Vec<(String, String)> {
    serde_json::from_value(
        browser
            .js(
                "return [...document.querySelectorAll('[data-testid=activity-row]')] \
                 .map(r => [r.dataset.action, r.dataset.actor]);",
            )
            .await
            .unwrap(),
    )
    .unwrap()
}

/// Waits until `check` holds for the entries shown; returns them.
async fn wait_for_entries(
    browser: &Browser,
    what: &str,
    check: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let start = Instant::now();
    loop {
        let shown = entries(browser).await;
        if check(&shown) {
            return shown;
        }
        assert!(start.elapsed() < WAIT, "never {what}: {shown:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_activity_log_is_live_and_filters_by_action_actor_target_and_time() {
    // Arrange
    let server = start_server(&[]);
    let browser = Browser::start().await.unwrap();
    let intervals = json!({"dashboard-stats": SLOW, "license-keys": SLOW, "customers": SLOW,
                           "admin-users": SLOW, "activity": SLOW});
    set_hooks(&browser, &server.address, &intervals, true).await;
    browser
        .sign_in(&server.address, OWNER, PASSWORD)
        .await
        .unwrap();
    click(&browser, "[data-testid=nav-activity]").await;
    browser
        .wait_for("[data-testid=sync-indicator][data-state=live]", WAIT)
        .await
        .unwrap();
    let at_start = wait_for_entries(&browser, "showing the sign-in", |e| {
        e.iter().any(|(action, _)| action == "auth.login")
    })
    .await;

    // Act 1: changes made elsewhere.
    let api = owner_api(&server).await;
    let customer: Value = api
        .post(format!("{}/api/admin/customers", server.address))
        .json(&json!({"name": "Acme Ltd", "email": "it@acme.example"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key: Value = api
        .post(format!("{}/api/admin/keys", server.address))
        .json(&json!({"customer_id": customer["id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let validation = reqwest::Client::new()
        .post(format!("{}/api/validate-license", server.address))
        .json(&json!({"key": key["key"], "fingerprint": "machine-1"}))
        .send()
        .await
        .unwrap();
    assert!(validation.status().is_success());
    let live = wait_for_entries(&browser, "showing the new entries", |e| {
        [
            "customer.created",
            "license_key.created",
            "license.validate",
        ]
        .iter()
        .all(|a| e.iter().any(|(action, _)| action == a))
    })
    .await;
    browser.screenshot("activity").await.unwrap();

    // Act 2: filters.
    fill(&browser, "[data-testid=activity-action]", "license.").await;
    let validations = wait_for_entries(&browser, "only validations", |e| {
        !e.is_empty() && e.iter().all(|(action, _)| action == "license.validate")
    })
    .await;
    fill(&browser, "[data-testid=activity-action]", "").await;
    fill(&browser, "[data-testid=activity-target]", "customer").await;
    let customers = wait_for_entries(&browser, "only customer entries", |e| {
        !e.is_empty() && e.iter().all(|(action, _)| action.starts_with("customer."))
    })
    .await;
    fill(&browser, "[data-testid=activity-target]", "").await;
    fill(&browser, "[data-testid=activity-actor]", OWNER).await;
    let by_owner = wait_for_entries(&browser, "only the owner's entries", |e| {
        e.len() >= 3 && e.iter().all(|(_, actor)| actor == OWNER)
    })
    .await;
    fill(&browser, "[data-testid=activity-actor]", "").await;
    fill(&browser, "[data-testid=activity-from]", "2099-01-01").await;
    browser
        .wait_for("[data-testid=activity-empty]", WAIT)
        .await
        .expect("no entry lies in the future");
    fill(&browser, "[data-testid=activity-from]", "").await;
    let all_again =
        wait_for_entries(&browser, "every entry again", |e| e.len() == live.len()).await;

    // Assert
    assert!(!at_start.is_empty());
    assert!(validations.len() == 1, "{validations:?}");
    assert_eq!(
        customers,
        vec![("customer.created".to_owned(), OWNER.to_owned())]
    );
    assert!(
        !by_owner.iter().any(|(a, _)| a == "license.validate"),
        "a validation is the license client's, not the owner's: {by_owner:?}"
    );
    assert_eq!(all_again, live);
    browser.close().await.unwrap();
}
