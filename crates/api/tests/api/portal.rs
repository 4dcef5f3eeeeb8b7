//! The technicians' portal (`/api/releases/...`) against a local GitHub-compatible upstream, on
//! both engines: caching, revalidation, single flight, staleness, restarts, and key-gated
//! downloads.

use std::time::Duration;

use keysync_api::config::Settings;
use keysync_api::releases::ReleasesService;
use keysync_shared::{
    AdminRole, AuditLogView, DownloadLink, ErrorBody, LatestRelease, LicenseKeyView, Page,
};
use serde_json::{json, Value};

use crate::fake_github::{FakeGithub, Mode};
use crate::helpers::{spawn_app, spawn_app_with, Backend, Session, TestApp};
use crate::on_both_backends;

on_both_backends!(
    concurrent_requests_share_one_upstream_call,
    a_fresh_copy_is_served_as_is_and_an_old_one_revalidated_with_if_none_match,
    upstream_failures_and_rate_limits_serve_the_last_good_copy_as_stale,
    the_last_good_copy_survives_a_restart,
    a_forced_refresh_fetches_while_the_copy_is_still_fresh,
    a_download_with_a_valid_key_counts_and_answers_the_asset_url,
    a_refused_download_is_403_with_its_code_and_moves_no_counter,
    without_a_repository_or_a_published_release_the_portal_answers_404,
    a_release_webhook_makes_the_next_portal_request_fetch_upstream,
);

const ASSET: &str = "tool-linux-x86_64.tar.gz";

async fn portal_app(
    backend: Backend,
    fake: &FakeGithub,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    let base = fake.base_url.clone();
    spawn_app_with(backend, move |s| {
        s.releases_repo = Some("acme/tool".into());
        s.releases_api_url = base;
        s.releases_token = Some("test-token".into());
        customize(s);
    })
    .await
}

async fn latest(app: &TestApp) -> LatestRelease {
    let response = app.get("/api/releases/latest").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.expect("the release shape")
}

async fn key_view(admin: &Session, id: i64) -> LicenseKeyView {
    admin
        .get(&format!("/api/admin/keys/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

async fn new_key(admin: &Session, body: Value) -> LicenseKeyView {
    let response = admin.post("/api/admin/keys", &body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn audit_count(admin: &Session, action: &str) -> usize {
    let page: Page<AuditLogView> = admin
        .get(&format!("/api/admin/audit-logs?action={action}&limit=200"))
        .await
        .json()
        .await
        .unwrap();
    page.items.len()
}

async fn concurrent_latest(app: &TestApp, requests: usize) -> Vec<LatestRelease> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..requests {
        let (client, url) = (app.client.clone(), app.url("/api/releases/latest"));
        tasks.spawn(async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<LatestRelease>().await.unwrap()
        });
    }
    tasks.join_all().await
}

async fn concurrent_requests_share_one_upstream_call(backend: Backend) {
    let fake = FakeGithub::start("v1.0.0");
    fake.set_delay(Duration::from_millis(400));
    let app = portal_app(backend, &fake, |_| {}).await;
    // Even with no caching at all, requests that arrive during a fetch share it.
    let uncached_fake = FakeGithub::start("v1.0.0");
    uncached_fake.set_delay(Duration::from_millis(400));
    let uncached = portal_app(backend, &uncached_fake, |s| s.releases_cache_secs = 0).await;

    let answers = concurrent_latest(&app, 20).await;
    let uncached_answers = concurrent_latest(&uncached, 20).await;

    assert_eq!(
        fake.calls(),
        1,
        "one upstream call for 20 concurrent requests"
    );
    assert_eq!(
        uncached_fake.calls(),
        1,
        "one flight shared without a cache"
    );
    assert!(uncached_answers.iter().all(|a| a.tag_name == "v1.0.0"));
    for answer in &answers {
        assert_eq!(answer.tag_name, "v1.0.0");
        assert!(!answer.stale);
        assert_eq!(answer.assets.len(), 2);
    }
    let first = &answers[0];
    assert_eq!(first.name, "Tool v1.0.0");
    assert_eq!(first.assets[0].name, ASSET);
    assert_eq!(first.assets[0].size, 1_048_576);
    assert_eq!(first.assets[0].download_count, 42);
    assert!(first.published_at.is_some());
    assert_eq!(
        fake.authorization_seen(),
        vec![Some("Bearer test-token".to_owned())]
    );
    assert_eq!(app.count_rows("releases"), 1, "the copy is kept");
}

async fn a_fresh_copy_is_served_as_is_and_an_old_one_revalidated_with_if_none_match(
    backend: Backend,
) {
    let fake = FakeGithub::start("v1.0.0");
    let app = portal_app(backend, &fake, |s| s.releases_cache_secs = 1).await;

    let first = latest(&app).await;
    let fresh = latest(&app).await;
    let calls_while_fresh = fake.calls();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let revalidated = latest(&app).await;
    fake.publish("v1.1.0");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let changed = latest(&app).await;

    assert_eq!(calls_while_fresh, 1, "a fresh copy needs no upstream call");
    assert_eq!(fresh.fetched_at, first.fetched_at);
    assert_eq!(revalidated.tag_name, "v1.0.0");
    assert!(
        revalidated.fetched_at > first.fetched_at,
        "a 304 renews the copy"
    );
    assert_eq!(fake.not_modified(), 1);
    assert_eq!(
        fake.if_none_match_seen(),
        vec![
            None,
            Some("\"etag-v1.0.0\"".to_owned()),
            Some("\"etag-v1.0.0\"".to_owned())
        ]
    );
    assert_eq!(changed.tag_name, "v1.1.0");
    assert!(!changed.stale);
    assert_eq!(app.count_rows("releases"), 2);
    assert_eq!(
        app.count_rows("releases WHERE is_latest = TRUE"),
        1,
        "one latest"
    );
}

async fn upstream_failures_and_rate_limits_serve_the_last_good_copy_as_stale(backend: Backend) {
    let fake = FakeGithub::start("v1.0.0");
    let app = portal_app(backend, &fake, |s| {
        s.releases_cache_secs = 0;
        s.releases_retry_secs = 0;
    })
    .await;
    let good = latest(&app).await;

    fake.set_mode(Mode::ServerError);
    let during_outage = latest(&app).await;
    fake.set_mode(Mode::RateLimited { reset_in_secs: 120 });
    let rate_limited = latest(&app).await;
    let calls_after_rate_limit = fake.calls();
    let while_waiting = latest(&app).await;

    assert!(!good.stale);
    assert!(during_outage.stale);
    assert_eq!(during_outage.tag_name, "v1.0.0");
    assert_eq!(
        during_outage.fetched_at, good.fetched_at,
        "when it was fetched"
    );
    assert!(rate_limited.stale);
    assert_eq!(calls_after_rate_limit, 3);
    assert!(while_waiting.stale);
    assert_eq!(
        fake.calls(),
        calls_after_rate_limit,
        "the rate limit's reset is honoured"
    );

    let cold_fake = FakeGithub::start("v1.0.0");
    cold_fake.set_mode(Mode::ServerError);
    let cold = portal_app(backend, &cold_fake, |_| {}).await;
    let no_copy = cold.get("/api/releases/latest").await;
    assert_eq!(no_copy.status(), 503);
    let error: ErrorBody = no_copy.json().await.unwrap();
    assert_eq!(error.error.code, "service_unavailable");
}

async fn the_last_good_copy_survives_a_restart(backend: Backend) {
    let fake = FakeGithub::start("v1.0.0");
    let app = portal_app(backend, &fake, |_| {}).await;
    let before = latest(&app).await;
    fake.set_mode(Mode::ServerError);

    let url = app.database_url.clone();
    let restarted = portal_app(backend, &fake, |s| s.database_url = url.clone()).await;
    let fresh_from_db = latest(&restarted).await;
    let restarted_expired = portal_app(backend, &fake, |s| {
        s.database_url = url;
        s.releases_cache_secs = 0;
    })
    .await;
    let stale_from_db = latest(&restarted_expired).await;

    assert_eq!(fresh_from_db.tag_name, "v1.0.0");
    assert!(!fresh_from_db.stale);
    assert_eq!(fresh_from_db.fetched_at, before.fetched_at);
    assert!(stale_from_db.stale);
    assert_eq!(stale_from_db.fetched_at, before.fetched_at);
    assert_eq!(
        fake.calls(),
        2,
        "the fresh stored copy needed no call; the expired one tried once"
    );
}

async fn a_forced_refresh_fetches_while_the_copy_is_still_fresh(backend: Backend) {
    let fake = FakeGithub::start("v1.0.0");
    let app = spawn_app(backend).await;
    let settings = Settings {
        releases_repo: Some("acme/tool".into()),
        releases_api_url: fake.base_url.clone(),
        ..Settings::default()
    };
    let service = ReleasesService::new(app.db.clone(), &settings).unwrap();

    let first = service.latest().await.unwrap();
    fake.publish("v2.0.0");
    let still_cached = service.latest().await.unwrap();
    let refreshed = service.refresh_now().await.unwrap();
    let after = service.latest().await.unwrap();
    fake.publish("v3.0.0");
    service.invalidate();
    let after_invalidate = service.latest().await.unwrap();

    assert_eq!(first.tag_name, "v1.0.0");
    assert_eq!(still_cached.tag_name, "v1.0.0");
    assert_eq!(refreshed.tag_name, "v2.0.0");
    assert_eq!(after.tag_name, "v2.0.0");
    assert_eq!(after_invalidate.tag_name, "v3.0.0");
    assert_eq!(fake.calls(), 3);
}

async fn a_download_with_a_valid_key_counts_and_answers_the_asset_url(backend: Backend) {
    let fake = FakeGithub::start("v1.0.0");
    let app = portal_app(backend, &fake, |_| {}).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    // Seats are for machines running the product; a technician's download takes none.
    let key = new_key(&admin, json!({"max_activations": 1})).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let path = format!("/api/releases/v1.0.0/assets/{ASSET}/download");

    let response = app
        .client
        .post(app.url(&path))
        .json(&json!({"key": key.key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let link: DownloadLink = response.json().await.unwrap();
    let redirect = no_redirects
        .get(app.url(&path))
        .header("X-License-Key", &key.key)
        .send()
        .await
        .unwrap();

    let expected_url = format!("https://github.com/acme/tool/releases/download/v1.0.0/{ASSET}");
    assert_eq!(link.url, expected_url);
    assert_eq!((link.tag_name.as_str(), link.size), ("v1.0.0", 1_048_576));
    assert_eq!(redirect.status(), 302);
    assert_eq!(redirect.headers()["location"], expected_url.as_str());
    let after = key_view(&admin, key.id).await;
    assert_eq!((after.download_count, after.validation_count), (2, 2));
    assert_eq!(after.activation_count, 0);
    assert_eq!(
        app.count_rows("releases WHERE download_count = 2"),
        1,
        "the release's counter moved"
    );
    assert_eq!(audit_count(&admin, "release.download").await, 2);
    assert_eq!(audit_count(&admin, "license.validate").await, 2);
}

async fn a_refused_download_is_403_with_its_code_and_moves_no_counter(backend: Backend) {
    let fake = FakeGithub::start("v1.0.0");
    let app = portal_app(backend, &fake, |_| {}).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let key = new_key(&admin, json!({})).await;
    let suspend = admin
        .patch(
            &format!("/api/admin/keys/{}", key.id),
            Some("*"),
            &json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(suspend.status(), 200);
    let download = |tag: &str, asset: &str, key: &str| {
        app.client
            .post(app.url(&format!("/api/releases/{tag}/assets/{asset}/download")))
            .json(&json!({"key": key}))
            .send()
    };

    let suspended = download("v1.0.0", ASSET, &key.key).await.unwrap();
    let unknown = download("v1.0.0", ASSET, "SCO-ZZZZ-ZZZZ-ZZZZ-ZZZZ")
        .await
        .unwrap();
    let no_asset = download("v1.0.0", "nope.zip", &key.key).await.unwrap();
    let no_release = download("v9.9.9", ASSET, &key.key).await.unwrap();
    let no_header = app
        .get(&format!("/api/releases/v1.0.0/assets/{ASSET}/download"))
        .await;

    for (response, code) in [(suspended, "SUSPENDED"), (unknown, "NOT_FOUND")] {
        assert_eq!(response.status(), 403);
        let error: ErrorBody = response.json().await.unwrap();
        assert_eq!(error.error.code, "license_refused");
        assert_eq!(error.error.details["validation_code"], code);
    }
    assert_eq!(no_asset.status(), 404);
    assert_eq!(no_release.status(), 404);
    assert_eq!(no_header.status(), 422);
    assert_eq!(key_view(&admin, key.id).await.download_count, 0);
    assert_eq!(app.count_rows("releases WHERE download_count = 0"), 1);
    assert_eq!(audit_count(&admin, "release.download").await, 0);
    assert_eq!(
        audit_count(&admin, "license.validate").await,
        2,
        "refusals are audited"
    );
}

async fn without_a_repository_or_a_published_release_the_portal_answers_404(backend: Backend) {
    let unconfigured = spawn_app(backend).await;
    let fake = FakeGithub::start("v1.0.0");
    fake.set_mode(Mode::NotFound);
    let empty_repo = portal_app(backend, &fake, |_| {}).await;

    let no_repo = unconfigured.get("/api/releases/latest").await;
    let no_release = empty_repo.get("/api/releases/latest").await;

    for response in [no_repo, no_release] {
        assert_eq!(response.status(), 404);
        let error: ErrorBody = response.json().await.unwrap();
        assert_eq!(error.error.code, "not_found");
    }
}

async fn a_release_webhook_makes_the_next_portal_request_fetch_upstream(backend: Backend) {
    let fake = FakeGithub::start("v1.0.0");
    let app = portal_app(backend, &fake, |_| {}).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    assert_eq!(latest(&app).await.tag_name, "v1.0.0");
    fake.publish("v1.1.0");
    assert_eq!(
        latest(&app).await.tag_name,
        "v1.0.0",
        "still within the cache window"
    );

    let unrelated = admin
        .post("/api/admin/sync", &json!({"event": "tests_passed"}))
        .await;
    let still_cached = latest(&app).await;
    let announced = admin
        .post("/api/admin/sync", &json!({"event": "release_published"}))
        .await;
    let after = latest(&app).await;

    assert_eq!(
        (unrelated.status().as_u16(), announced.status().as_u16()),
        (202, 202)
    );
    assert_eq!(
        still_cached.tag_name, "v1.0.0",
        "other events leave the cache alone"
    );
    assert_eq!(after.tag_name, "v1.1.0");
}
