//! The admin users page and roles in headless Chromium against the real server and database:
//! an owner adds an admin, changes a role, resets a password and deletes an account; the last
//! owner is protected and the refusal is shown; admins and viewers see no owner controls.

use std::time::{Duration, Instant};

use keysync_e2e::admin::*;
use keysync_e2e::{Browser, ServerProcess};
use serde_json::{json, Value};

async fn users(api: &reqwest::Client, server: &ServerProcess) -> Vec<(String, String)> {
    let page: Value = api
        .get(format!("{}/api/admin/users?limit=200", server.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["email"].as_str().unwrap().to_owned(),
                u["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row(email: &str) -> String {
    format!("[data-testid=user-row][data-email=\"{email}\"]")
}

/// Waits until the rows shown are exactly `expected` (`[email, role]`, in order).
async fn wait_for_rows(browser: &Browser, expected: &[(&str, &str)]) {
    let start = Instant::now();
    loop {
        let shown: Vec<(String, String)> = serde_json::from_value(
            browser
                .js(
                    "return [...document.querySelectorAll('[data-testid=user-row]')] \
                     .map(r => [r.dataset.email, r.dataset.role]);",
                )
                .await
                .unwrap(),
        )
        .unwrap();
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(e, r)| (e.to_string(), r.to_string()))
            .collect();
        if shown == want {
            return;
        }
        assert!(start.elapsed() < WAIT, "rows {shown:?}, expected {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn notice_containing(browser: &Browser, text: &str) -> String {
    let start = Instant::now();
    loop {
        let notice = browser
            .js("const n = document.querySelector('[data-testid=notice]'); return n ? n.textContent : '';")
            .await
            .unwrap();
        let notice = notice.as_str().unwrap_or_default().to_owned();
        if notice.contains(text) {
            return notice;
        }
        assert!(
            start.elapsed() < WAIT,
            "no notice with {text:?}; last: {notice:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_owner_adds_changes_resets_and_deletes_admins_and_the_last_owner_is_protected() {
    // Arrange
    let server = start_server(&[]);
    let (_, owner_api) = api_login(&server, OWNER, PASSWORD).await;
    let browser = Browser::start().await.unwrap();
    open_slow(&browser, &server.address, OWNER, PASSWORD).await;
    click(&browser, "[data-testid=nav-users]").await;
    wait_for_rows(&browser, &[(OWNER, "owner")]).await;

    // Act 1: add an admin.
    click(&browser, "[data-testid=new-user]").await;
    fill(&browser, "[data-testid=user-email]", "ada@example.com").await;
    fill(&browser, "[data-testid=user-name]", "Ada").await;
    fill(&browser, "[data-testid=user-password]", "first password 1").await;
    fill(&browser, "[data-testid=user-new-role]", "admin").await;
    click(&browser, "[data-testid=user-save]").await;
    let added = notice_containing(&browser, "added").await;
    let after_add = users(&owner_api, &server).await;

    // Act 2: make her a viewer.
    fill(
        &browser,
        &format!("{} [data-testid=user-role]", row("ada@example.com")),
        "viewer",
    )
    .await;
    notice_containing(&browser, "is now viewer").await;
    let after_role = users(&owner_api, &server).await;

    // Act 3: reset her password.
    click(
        &browser,
        &format!(
            "{} [data-testid=user-reset-password]",
            row("ada@example.com")
        ),
    )
    .await;
    fill(
        &browser,
        "[data-testid=reset-password]",
        "second password 2",
    )
    .await;
    click(&browser, "[data-testid=reset-save]").await;
    notice_containing(&browser, "was reset").await;
    let (old_login, _) = api_login(&server, "ada@example.com", "first password 1").await;
    let (new_login, _) = api_login(&server, "ada@example.com", "second password 2").await;

    // Act 4: the last owner tries to step down, then to delete themself.
    fill(
        &browser,
        &format!("{} [data-testid=user-role]", row(OWNER)),
        "admin",
    )
    .await;
    let demote_refused = notice_containing(&browser, "last owner").await;
    click(&browser, "[data-testid=notice] .notice-close").await;
    wait_for_rows(&browser, &[(OWNER, "owner"), ("ada@example.com", "viewer")]).await;
    let role_shown = browser
        .js(&format!(
            "return document.querySelector({:?}).value;",
            format!("{} [data-testid=user-role]", row(OWNER))
        ))
        .await
        .unwrap();
    click(
        &browser,
        &format!("{} [data-testid=user-delete]", row(OWNER)),
    )
    .await;
    click(&browser, "[data-testid=user-delete-confirm]").await;
    let delete_refused = notice_containing(&browser, "last owner").await;
    browser.screenshot("users-last-owner").await.unwrap();

    // Act 5: delete Ada.
    click(
        &browser,
        &format!("{} [data-testid=user-delete]", row("ada@example.com")),
    )
    .await;
    click(&browser, "[data-testid=user-delete-confirm]").await;
    wait_for_rows(&browser, &[(OWNER, "owner")]).await;
    browser.screenshot("users").await.unwrap();
    let at_end = users(&owner_api, &server).await;

    // Assert
    assert!(added.contains("ada@example.com added as admin"), "{added}");
    assert!(after_add.contains(&("ada@example.com".into(), "admin".into())));
    assert!(after_role.contains(&("ada@example.com".into(), "viewer".into())));
    assert_eq!(old_login, 401, "the old password no longer works");
    assert_eq!(new_login, 200, "the new one does");
    assert!(demote_refused.contains("last owner"), "{demote_refused}");
    assert_eq!(
        role_shown,
        json!("owner"),
        "the select shows the role the server kept"
    );
    assert!(delete_refused.contains("last owner"), "{delete_refused}");
    assert_eq!(at_end, vec![(OWNER.to_owned(), "owner".to_owned())]);
    browser.close().await.unwrap();
}

#[tokio::test]
async fn admins_and_viewers_read_the_users_but_reach_no_owner_action() {
    // Arrange
    let server = start_server(&[]);
    server
        .create_admin("admin@example.com", "admin", PASSWORD)
        .unwrap();
    server
        .create_admin("viewer@example.com", "viewer", PASSWORD)
        .unwrap();
    let mut seen = Vec::new();

    for email in ["admin@example.com", "viewer@example.com"] {
        // Act
        let browser = Browser::start().await.unwrap();
        open_slow(&browser, &server.address, email, PASSWORD).await;
        click(&browser, "[data-testid=nav-users]").await;
        browser
            .wait_for("[data-testid=user-row]", WAIT)
            .await
            .unwrap();
        let rows = browser
            .js("return document.querySelectorAll('[data-testid=user-row]').length;")
            .await
            .unwrap();
        let controls = browser
            .js(
                "return ['new-user', 'user-role', 'user-reset-password', 'user-delete'] \
                 .filter(id => document.querySelector(`[data-testid=${id}]`));",
            )
            .await
            .unwrap();
        let read_only = browser
            .wait_for("[data-testid=users-read-only]", WAIT)
            .await
            .is_ok();
        browser
            .screenshot(&format!("users-as-{}", email.split('@').next().unwrap()))
            .await
            .unwrap();
        browser.close().await.unwrap();
        seen.push((email, rows, controls, read_only));
    }

    // Assert
    for (email, rows, controls, read_only) in seen {
        assert_eq!(rows, json!(3), "{email} reads every account");
        assert_eq!(controls, json!([]), "{email} has no owner controls");
        assert!(read_only, "{email} is told why");
    }
}

#[tokio::test]
async fn admin_user_changes_offline_are_refused_with_a_message_and_never_stored() {
    // Arrange
    let server = start_server(&[]);
    server
        .create_admin("ada@example.com", "admin", PASSWORD)
        .unwrap();
    let (_, owner_api) = api_login(&server, OWNER, PASSWORD).await;
    let browser = Browser::start().await.unwrap();
    open_slow(&browser, &server.address, OWNER, PASSWORD).await;
    click(&browser, "[data-testid=nav-users]").await;
    wait_for_rows(&browser, &[(OWNER, "owner"), ("ada@example.com", "admin")]).await;
    set_offline(&browser, true).await;
    wait_until(&browser, "return navigator.onLine === false;").await;

    // Act: add an admin (with a password), and change a role.
    click(&browser, "[data-testid=new-user]").await;
    fill(&browser, "[data-testid=user-email]", "grace@example.com").await;
    fill(
        &browser,
        "[data-testid=user-password]",
        "offline password 3",
    )
    .await;
    click(&browser, "[data-testid=user-save]").await;
    let form_error = text_of(&browser, "[data-testid=user-form-error]").await;
    click(&browser, "[data-testid=user-form] .btn:not(.btn-primary)").await;
    fill(
        &browser,
        &format!("{} [data-testid=user-role]", row("ada@example.com")),
        "viewer",
    )
    .await;
    let role_refused = notice_containing(&browser, "offline").await;
    let stored = browser
        .js("return Object.keys(localStorage).map(k => localStorage.getItem(k)).join(' ');")
        .await
        .unwrap();
    let pending = browser
        .js("return !!document.querySelector('[data-testid=pending-count]');")
        .await
        .unwrap();
    set_offline(&browser, false).await;
    wait_until(&browser, "return navigator.onLine === true;").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_end = users(&owner_api, &server).await;

    // Assert
    assert!(form_error.contains("offline"), "{form_error}");
    assert!(form_error.contains("not queued"), "{form_error}");
    assert!(role_refused.contains("not queued"), "{role_refused}");
    let stored = stored.as_str().unwrap();
    assert!(!stored.contains("offline password"), "no password at rest");
    assert!(!stored.contains("grace@example.com"), "nothing queued");
    assert_eq!(pending, json!(false), "nothing pending");
    assert_eq!(
        at_end,
        vec![
            (OWNER.to_owned(), "owner".to_owned()),
            ("ada@example.com".to_owned(), "admin".to_owned())
        ],
        "nothing was sent, then or later"
    );
    browser.close().await.unwrap();
}
