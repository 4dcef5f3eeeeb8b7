//! The real SPA in headless Chromium against the real server.

use std::time::Duration;

use fantoccini::Locator;
use keysync_e2e::{built_dist, Browser, ServerProcess};

#[tokio::test]
async fn the_spa_mounts_in_chromium_and_shows_the_server_healthy() {
    let dist = built_dist().unwrap();
    let server = ServerProcess::start(&[("KEYSYNC_DIST_DIR", dist.to_str().unwrap())]).unwrap();
    let browser = Browser::start().await.unwrap();

    browser.client.goto(&server.address).await.unwrap();
    let root = browser
        .client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=app-root]"))
        .await
        .expect("the app mounts");
    let status = browser
        .client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(
            "//*[@data-testid='server-status'][contains(., 'Server healthy')]",
        ))
        .await
        .expect("the app reaches /api/health");
    browser.screenshot("home").await.unwrap();

    assert!(root.text().await.unwrap().contains("keysync"));
    assert!(status.text().await.unwrap().contains("sqlite"));

    browser
        .client
        .goto(&format!("{}/admin", server.address))
        .await
        .unwrap();
    let deep = browser
        .client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=app-root]"))
        .await;
    assert!(
        deep.is_ok(),
        "a deep link loads the app through the SPA fallback"
    );
    browser.close().await.unwrap();
}
