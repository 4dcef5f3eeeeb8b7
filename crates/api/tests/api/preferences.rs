//! Per-admin sync preferences and sync analytics, on both engines.

use keysync_shared::{
    AdminRole, ErrorBody, MetricsAccepted, SyncHealth, SyncLogLevel, SyncPreferences, SyncResponse,
};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Backend, Session, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    preferences_are_the_defaults_until_saved_and_then_follow_the_admin,
    preferences_out_of_range_are_refused_and_nothing_is_written,
    saving_preferences_is_audited_and_on_the_change_feed_with_its_data,
    sync_metrics_reports_add_up_in_the_health_view_and_prometheus,
    malformed_sync_metrics_reports_are_refused,
);

async fn sign_in(app: &TestApp, email: &str) -> Session {
    let session = Session::anonymous(app);
    let response = session
        .post(
            "/api/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200, "sign-in as {email}");
    session
}

async fn put_preferences(session: &Session, body: &serde_json::Value) -> reqwest::Response {
    session
        .client
        .put(format!("{}/api/admin/me/preferences", session.base))
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn get_preferences(session: &Session) -> SyncPreferences {
    let response = session.get("/api/admin/me/preferences").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn preferences_are_the_defaults_until_saved_and_then_follow_the_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_admin("roaming@example.com", AdminRole::Viewer);
    let laptop = sign_in(&app, "roaming@example.com").await;
    let phone = sign_in(&app, "roaming@example.com").await;
    let someone_else = app.signed_in(AdminRole::Owner).await;

    let before = get_preferences(&laptop).await;
    assert_eq!(before, SyncPreferences::default());
    assert_eq!(before.intervals.keys_ms, 15_000, "the spec's interval");
    let response = put_preferences(
        &laptop,
        &json!({
            "intervals": {"stats_ms": 60000, "keys_ms": 5000, "customers_ms": 30000,
                          "users_ms": 120000, "activity_ms": 10000, "releases_ms": 600000},
            "pause_when_hidden": false, "push_enabled": false, "log_level": "debug"
        }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let saved: SyncPreferences = response.json().await.unwrap();

    let on_phone = get_preferences(&phone).await;
    assert_eq!(on_phone, saved);
    assert_eq!(on_phone.intervals.keys_ms, 5_000);
    assert!(!on_phone.push_enabled && !on_phone.pause_when_hidden);
    assert_eq!(on_phone.log_level, SyncLogLevel::Debug);
    assert!(on_phone.updated_at.is_some());
    assert_eq!(
        get_preferences(&someone_else).await,
        SyncPreferences::default(),
        "preferences are per admin"
    );
}

async fn preferences_out_of_range_are_refused_and_nothing_is_written(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let changes_before = app.count_rows("changes");

    let too_fast = put_preferences(&admin, &json!({"intervals": {"keys_ms": 10}})).await;
    assert_eq!(too_fast.status(), 422);
    let body: ErrorBody = too_fast.json().await.unwrap();
    assert_eq!(body.error.details["field"], "intervals.keys_ms");
    let unknown = put_preferences(&admin, &json!({"push": true})).await;
    assert_eq!(
        unknown.status(),
        400,
        "a misspelt field is not silently dropped"
    );
    let bad_level = put_preferences(&admin, &json!({"log_level": "loud"})).await;
    assert_eq!(bad_level.status(), 400);

    assert_eq!(app.count_rows("admin_preferences"), 0);
    assert_eq!(app.count_rows("changes"), changes_before);
    assert_eq!(get_preferences(&admin).await, SyncPreferences::default());
}

async fn saving_preferences_is_audited_and_on_the_change_feed_with_its_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Viewer).await;
    let me: serde_json::Value = admin.get("/api/auth/me").await.json().await.unwrap();
    let start: SyncResponse = admin.get("/api/admin/sync").await.json().await.unwrap();

    for keys_ms in [20_000, 25_000] {
        let response = put_preferences(&admin, &json!({"intervals": {"keys_ms": keys_ms}})).await;
        assert_eq!(response.status(), 200);
    }

    let page: SyncResponse = admin
        .get(&format!("/api/admin/sync?since={}", start.next))
        .await
        .json()
        .await
        .unwrap();
    let ops: Vec<(&str, i64, &str, i64)> = page
        .changes
        .iter()
        .map(|c| (c.resource.as_str(), c.id, c.op.as_str(), c.version))
        .collect();
    let id = me["id"].as_i64().unwrap();
    assert_eq!(
        ops,
        [
            ("sync_preferences", id, "created", 1),
            ("sync_preferences", id, "updated", 2)
        ]
    );
    let data = page.changes[1].data.clone().expect("current preferences");
    assert_eq!(data["intervals"]["keys_ms"], 25_000);
    let audited = page
        .activity
        .iter()
        .filter(|e| e.action == "sync_preferences.updated")
        .count();
    assert_eq!(audited, 2);
}

async fn sync_metrics_reports_add_up_in_the_health_view_and_prometheus(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.metrics_token = Some("scrape-me".into())).await;
    let browser_a = app.signed_in(AdminRole::Viewer).await;
    let browser_b = app.signed_in(AdminRole::Admin).await;

    for (session, durations) in [(&browser_a, vec![2.0, 3.0, 4.0]), (&browser_b, vec![400.0])] {
        let response = session
            .post(
                "/api/admin/sync/metrics",
                &json!({
                    "samples": [{"source": "license-keys", "fetches": durations.len(),
                                 "not_modified": 1, "errors": 1, "bytes": 1000,
                                 "durations_ms": durations}],
                    "push": {"connected_ms": 30000, "window_ms": 60000, "reconnects": 1}
                }),
            )
            .await;
        assert_eq!(response.status(), 202);
        let accepted: MetricsAccepted = response.json().await.unwrap();
        assert_eq!(accepted.accepted, 1);
    }

    let health: SyncHealth = browser_a
        .get("/api/admin/sync/metrics")
        .await
        .json()
        .await
        .unwrap();
    let keys = &health.sources[0];
    assert_eq!(keys.source, "license-keys");
    assert_eq!((keys.fetches, keys.not_modified, keys.errors), (4, 2, 2));
    assert_eq!(keys.bytes, 2000);
    assert_eq!(keys.not_modified_ratio, 0.5);
    assert!(
        keys.p50_ms.unwrap() <= 5.0,
        "three of four fetches took under 5 ms"
    );
    assert!(keys.p95_ms.unwrap() > 250.0, "one of four took 400 ms");
    assert_eq!(health.push.connected_ratio, 0.5);
    assert_eq!(health.push.reconnects, 2);

    let client = reqwest::Client::new();
    let refused = client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let scraped = client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = scraped.text().await.unwrap();
    assert!(
        text.contains("keysync_sync_fetches_total{source=\"license-keys\"} 4\n"),
        "{text}"
    );
    assert!(text.contains("keysync_sync_errors_total{source=\"license-keys\"} 2\n"));
    assert!(text.contains(
        "keysync_sync_fetch_duration_ms_bucket{source=\"license-keys\",le=\"+Inf\"} 4\n"
    ));
    assert!(text.contains("keysync_sync_push_reconnects_total 2\n"));
    let gauge = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(|v| v.parse::<i64>().unwrap())
    };
    assert!(gauge("keysync_heap_in_use_bytes").unwrap() > 0, "{text}");
    match backend {
        // This process has SQLite connections open: their caches and statements count.
        Backend::Sqlite => assert!(gauge("keysync_sqlite_heap_bytes").unwrap() > 0),
        Backend::Postgres => assert_eq!(gauge("keysync_sqlite_heap_bytes"), None),
    }
}

async fn malformed_sync_metrics_reports_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Viewer).await;
    let post = |body: serde_json::Value| {
        let admin = &admin;
        async move { admin.post("/api/admin/sync/metrics", &body).await }
    };

    let bad_name = post(json!({"samples": [{"source": "<script>", "fetches": 1,
        "not_modified": 0, "errors": 0, "bytes": 0}]}))
    .await;
    assert_eq!(bad_name.status(), 422);
    let too_many = post(
        json!({"samples": (0..65).map(|i| json!({"source": format!("s{i}"),
        "fetches": 0, "not_modified": 0, "errors": 0, "bytes": 0})).collect::<Vec<_>>()}),
    )
    .await;
    assert_eq!(too_many.status(), 422);
    let not_json = admin
        .client
        .post(app.url("/api/admin/sync/metrics"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let anonymous = Session::anonymous(&app)
        .post("/api/admin/sync/metrics", &json!({"samples": []}))
        .await;
    assert_eq!(anonymous.status(), 401);

    let health: SyncHealth = admin
        .get("/api/admin/sync/metrics")
        .await
        .json()
        .await
        .unwrap();
    assert!(health.sources.is_empty(), "nothing refused was counted");
    let open = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(
        open.status(),
        200,
        "no token configured: the endpoint is open"
    );
}
