//! The admin API's contract, on both engines.

use keysync_api::routes::{Access, ROUTES};
use keysync_shared::{
    AdminRole, AdminView, CustomerView, DashboardStats, ErrorBody, LicenseKeyView, Page,
};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Backend, Session, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    login_sets_a_strict_http_only_cookie_and_me_returns_the_admin_without_its_hash,
    unknown_email_and_wrong_password_get_the_same_401,
    sign_in_is_rate_limited_per_email_with_retry_after,
    every_admin_route_answers_401_without_a_session,
    viewers_cannot_write_and_admins_cannot_manage_admins,
    a_created_key_has_the_documented_shape_and_is_audited_and_on_the_feed,
    writes_need_if_match_and_a_stale_one_gets_412_with_the_current_version,
    unchanged_lists_items_and_stats_revalidate_as_304,
    bad_input_gets_the_shared_error_shape_and_writes_nothing,
    lists_search_filter_sort_and_page_with_cursors,
    customers_refuse_duplicate_emails_and_deleting_with_keys_unless_cascading,
    the_last_owner_can_be_neither_deleted_nor_demoted,
    a_batch_applies_everything_or_nothing,
    a_failure_mid_transaction_leaves_no_row_audit_entry_or_change,
    stats_count_keys_by_status_with_a_24_hour_series,
    the_audit_log_filters_and_lists_newest_first,
    signing_out_ends_the_session_and_a_new_sign_in_gets_a_new_id,
    cross_site_writes_are_refused,
    a_lapsed_key_expires_as_a_versioned_change_that_list_etags_notice,
);

async fn error_of(response: reqwest::Response) -> ErrorBody {
    response
        .json::<ErrorBody>()
        .await
        .expect("the shared error shape")
}

async fn create_key(session: &Session, body: Value) -> (LicenseKeyView, String) {
    let response = session.post("/api/admin/keys", &body).await;
    assert_eq!(response.status(), 201, "create key");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    (response.json().await.unwrap(), etag)
}

async fn create_customer(session: &Session, name: &str, email: &str) -> CustomerView {
    let response = session
        .post(
            "/api/admin/customers",
            &json!({"name": name, "email": email}),
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn login_sets_a_strict_http_only_cookie_and_me_returns_the_admin_without_its_hash(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.seed_admin("ada@example.com", AdminRole::Admin);
    let session = Session::anonymous(&app);

    let response = session
        .post(
            "/api/auth/login",
            &json!({"email": "ADA@example.com", "password": PASSWORD}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("keysync_session="));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let body: Value = response.json().await.unwrap();
    assert!(body.get("password_hash").is_none());
    let me: AdminView = session.get("/api/auth/me").await.json().await.unwrap();
    assert_eq!(
        (me.email.as_str(), me.role),
        ("ada@example.com", AdminRole::Admin)
    );
    assert!(me.last_login_at.is_some());
}

async fn unknown_email_and_wrong_password_get_the_same_401(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_admin("ada@example.com", AdminRole::Admin);
    let session = Session::anonymous(&app);

    let wrong = session
        .post(
            "/api/auth/login",
            &json!({"email": "ada@example.com", "password": "not the password"}),
        )
        .await;
    let unknown = session
        .post(
            "/api/auth/login",
            &json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;

    assert_eq!(
        (wrong.status().as_u16(), unknown.status().as_u16()),
        (401, 401)
    );
    assert_eq!(
        error_of(wrong).await.error.message,
        error_of(unknown).await.error.message
    );
    assert_eq!(app.count_rows("sessions"), 0);
}

async fn sign_in_is_rate_limited_per_email_with_retry_after(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.login_attempts_per_email_per_minute = 3).await;
    app.seed_admin("ada@example.com", AdminRole::Admin);
    let session = Session::anonymous(&app);
    let wrong = json!({"email": "ada@example.com", "password": "wrong password"});
    let attempt = || session.post("/api/auth/login", &wrong);

    for _ in 0..3 {
        assert_eq!(attempt().await.status(), 401);
    }
    let limited = attempt().await;

    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(error_of(limited).await.error.code, "rate_limited");
}

/// Walks the route table itself, so a route added later is covered without editing this test.
async fn every_admin_route_answers_401_without_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = Session::anonymous(&app);
    let signed: Vec<_> = ROUTES
        .iter()
        .filter(|r| matches!(r.access, Access::Admin(_)))
        .collect();
    assert!(signed.len() >= 15, "the table lists the admin routes");

    for route in signed {
        let url = format!("{}/api{}", app.address, route.path.replace("{id}", "1"));
        let method = reqwest::Method::from_bytes(route.method.to_uppercase().as_bytes()).unwrap();
        let response = anonymous
            .client
            .request(method, &url)
            .header("If-Match", "\"v1\"")
            .json(&json!({}))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 401, "{} {}", route.method, route.path);
        assert_eq!(error_of(response).await.error.code, "unauthorized");
    }
}

async fn viewers_cannot_write_and_admins_cannot_manage_admins(backend: Backend) {
    let app = spawn_app(backend).await;
    let viewer = app.signed_in(AdminRole::Viewer).await;
    let admin = app.signed_in(AdminRole::Admin).await;

    let viewer_reads = viewer.get("/api/admin/keys").await;
    let viewer_creates = viewer.post("/api/admin/keys", &json!({})).await;
    let admin_creates_admin = admin
        .post(
            "/api/admin/users",
            &json!({"email": "x@example.com", "password": PASSWORD, "role": "owner"}),
        )
        .await;
    let admin_creates_key = admin.post("/api/admin/keys", &json!({})).await;

    assert_eq!(viewer_reads.status(), 200);
    assert_eq!(viewer_creates.status(), 403);
    assert_eq!(error_of(admin_creates_admin).await.error.code, "forbidden");
    assert_eq!(admin_creates_key.status(), 201);
    assert_eq!(app.count_rows("license_keys"), 1);
}

async fn a_created_key_has_the_documented_shape_and_is_audited_and_on_the_feed(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let customer = create_customer(&admin, "Acme", "ops@acme.test").await;
    let audits_before = app.count_rows("audit_logs");
    let changes_before = app.count_rows("changes");

    let (key, etag) = create_key(
        &admin,
        json!({"customer_id": customer.id, "expires_at": "2099-01-01T00:00:00Z", "max_activations": 3, "notes": "pilot"}),
    )
    .await;

    let parts: Vec<&str> = key.key.split('-').collect();
    assert_eq!(parts.len(), 5);
    assert_eq!(parts[0], "SCO");
    assert!(parts[1..].iter().all(|g| g.len() == 4));
    assert_eq!(etag, "\"v1\"");
    assert_eq!(
        (key.version, key.customer_id, key.max_activations),
        (1, Some(customer.id), Some(3))
    );
    assert_eq!(key.status, keysync_shared::KeyStatus::Active);
    assert_eq!(app.count_rows("audit_logs"), audits_before + 1);
    assert_eq!(app.count_rows("changes"), changes_before + 1);
    let log: Page<keysync_shared::AuditLogView> = admin
        .get("/api/admin/audit-logs?action=license_key.created")
        .await
        .json()
        .await
        .unwrap();
    let summary = log.items[0].summary.as_ref().unwrap().to_string();
    assert!(
        !summary.contains(&key.key),
        "the audit log keeps the key's prefix only"
    );
    assert!(summary.contains(&format!("{}-{}...", parts[0], parts[1])));
}

async fn writes_need_if_match_and_a_stale_one_gets_412_with_the_current_version(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let (key, etag) = create_key(&admin, json!({})).await;
    let path = format!("/api/admin/keys/{}", key.id);

    let missing = admin.patch(&path, None, &json!({"notes": "a"})).await;
    let first = admin
        .patch(
            &path,
            Some(&etag),
            &json!({"notes": "first", "status": "suspended"}),
        )
        .await;
    let stale = admin
        .patch(&path, Some(&etag), &json!({"notes": "second"}))
        .await;
    let stale_delete = admin.delete(&path, Some(&etag)).await;

    assert_eq!(missing.status(), 428);
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["etag"], "\"v2\"");
    let updated: LicenseKeyView = first.json().await.unwrap();
    assert_eq!((updated.version, updated.notes.as_str()), (2, "first"));
    assert_eq!(updated.status, keysync_shared::KeyStatus::Suspended);
    assert_eq!(stale.status(), 412);
    let conflict = error_of(stale).await;
    assert_eq!(conflict.error.details["current"]["notes"], "first");
    assert_eq!(conflict.error.details["current"]["version"], 2);
    assert_eq!(stale_delete.status(), 412);
    let deleted = admin.delete(&path, Some("\"v2\"")).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(admin.get(&path).await.status(), 404);
}

async fn unchanged_lists_items_and_stats_revalidate_as_304(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let (key, _) = create_key(&admin, json!({})).await;

    for path in [
        "/api/admin/keys",
        &format!("/api/admin/keys/{}", key.id),
        "/api/admin/stats",
        "/api/admin/users",
    ] {
        let first = admin.get(path).await;
        assert_eq!(first.status(), 200, "{path}");
        assert_eq!(first.headers()["cache-control"], "private, no-cache");
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();

        let again = admin.get_if_none_match(path, &etag).await;

        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }
    let list_etag = admin.get("/api/admin/keys").await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    create_key(&admin, json!({})).await;
    assert_eq!(
        admin
            .get_if_none_match("/api/admin/keys", &list_etag)
            .await
            .status(),
        200,
        "a change is a new payload"
    );
}

async fn bad_input_gets_the_shared_error_shape_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let before = (
        app.count_rows("license_keys"),
        app.count_rows("audit_logs"),
        app.count_rows("changes"),
    );
    let url = format!("{}/api/admin/keys", app.address);

    let malformed = admin
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let unknown_field = admin
        .post("/api/admin/keys", &json!({"colour": "red"}))
        .await;
    let past = admin
        .post(
            "/api/admin/keys",
            &json!({"expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    let no_customer = admin
        .post("/api/admin/keys", &json!({"customer_id": 999_999}))
        .await;
    let zero_seats = admin
        .post("/api/admin/keys", &json!({"max_activations": 0}))
        .await;
    let huge = admin
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(format!("{{\"notes\":\"{}\"}}", "x".repeat(70 * 1024)))
        .send()
        .await
        .unwrap();
    let missing = admin.get("/api/admin/keys/999999").await;
    let not_a_number = admin.get("/api/admin/keys/abc").await;
    let bad_limit = admin.get("/api/admin/keys?limit=1000").await;
    let bad_cursor = admin.get("/api/admin/keys?cursor=garbage").await;

    assert_eq!(malformed.status(), 400);
    assert_eq!(error_of(malformed).await.error.code, "malformed_json");
    assert_eq!(unknown_field.status(), 400);
    assert_eq!(past.status(), 422);
    assert_eq!(error_of(past).await.error.details["field"], "expires_at");
    assert_eq!(no_customer.status(), 422);
    assert_eq!(
        error_of(no_customer).await.error.details["field"],
        "customer_id"
    );
    assert_eq!(
        error_of(zero_seats).await.error.details["field"],
        "max_activations"
    );
    assert_eq!(huge.status(), 413);
    assert_eq!(error_of(huge).await.error.code, "payload_too_large");
    assert_eq!(missing.status(), 404);
    assert_eq!(not_a_number.status(), 404);
    assert_eq!(error_of(bad_limit).await.error.details["field"], "limit");
    assert_eq!(error_of(bad_cursor).await.error.code, "invalid_cursor");
    let after = (
        app.count_rows("license_keys"),
        app.count_rows("audit_logs"),
        app.count_rows("changes"),
    );
    assert_eq!(before, after, "refused requests write nothing");
}

async fn lists_search_filter_sort_and_page_with_cursors(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let mut created = Vec::new();
    for i in 0..7 {
        let notes = if i % 2 == 0 {
            format!("Even batch {i}")
        } else {
            format!("odd {i}")
        };
        created.push(create_key(&admin, json!({"notes": notes})).await.0);
    }
    let (to_suspend, etag) = (&created[1], "\"v1\"");
    admin
        .patch(
            &format!("/api/admin/keys/{}", to_suspend.id),
            Some(etag),
            &json!({"status": "suspended"}),
        )
        .await;

    let search: Page<LicenseKeyView> = admin
        .get("/api/admin/keys?q=EVEN%20batch")
        .await
        .json()
        .await
        .unwrap();
    let suspended: Page<LicenseKeyView> = admin
        .get("/api/admin/keys?status=suspended")
        .await
        .json()
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/admin/keys?sort=created_at&limit=3&cursor={c}"),
            None => "/api/admin/keys?sort=created_at&limit=3".to_string(),
        };
        let page: Page<LicenseKeyView> = admin.get(&path).await.json().await.unwrap();
        assert_eq!(page.total, 7);
        seen.extend(page.items.iter().map(|k| k.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let by_key_desc: Page<LicenseKeyView> = admin
        .get("/api/admin/keys?sort=-key")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(search.total, 4);
    assert!(search.items.iter().all(|k| k.notes.starts_with("Even")));
    assert_eq!(
        suspended.items.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![to_suspend.id]
    );
    assert_eq!(
        seen,
        created.iter().map(|k| k.id).collect::<Vec<_>>(),
        "pages cover every key once, in order"
    );
    let keys: Vec<&str> = by_key_desc.items.iter().map(|k| k.key.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted);
    let wildcard: Page<LicenseKeyView> = admin
        .get("/api/admin/keys?q=%25")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(wildcard.total, 0, "LIKE wildcards in a search are literal");
}

async fn customers_refuse_duplicate_emails_and_deleting_with_keys_unless_cascading(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let acme = create_customer(&admin, "Acme", "ops@acme.test").await;
    let (key, _) = create_key(&admin, json!({"customer_id": acme.id})).await;

    let duplicate = admin
        .post(
            "/api/admin/customers",
            &json!({"name": "Other", "email": "OPS@acme.test"}),
        )
        .await;
    let path = format!("/api/admin/customers/{}", acme.id);
    let fetched: CustomerView = admin.get(&path).await.json().await.unwrap();
    let refused = admin.delete(&path, Some("\"v1\"")).await;
    let bad_cascade = admin
        .delete(&format!("{path}?cascade=everything"), Some("\"v1\""))
        .await;
    let renamed = admin
        .patch(&path, Some("\"v1\""), &json!({"company": "Acme Corp"}))
        .await;
    let cascaded = admin
        .delete(&format!("{path}?cascade=revoke"), Some("\"v2\""))
        .await;

    assert_eq!(duplicate.status(), 409);
    assert_eq!(error_of(duplicate).await.error.code, "email_taken");
    assert_eq!(fetched.key_count, 1);
    assert_eq!(refused.status(), 409);
    assert_eq!(error_of(refused).await.error.code, "customer_has_keys");
    assert_eq!(bad_cascade.status(), 422);
    assert_eq!(renamed.status(), 200);
    assert_eq!(cascaded.status(), 204);
    let revoked: LicenseKeyView = admin
        .get(&format!("/api/admin/keys/{}", key.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revoked.status, keysync_shared::KeyStatus::Revoked);
    assert_eq!(revoked.customer_id, None);
    assert_eq!(
        revoked.version, 2,
        "the revocation is a versioned change of the key"
    );
}

async fn the_last_owner_can_be_neither_deleted_nor_demoted(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.signed_in(AdminRole::Owner).await;
    let me: AdminView = owner.get("/api/auth/me").await.json().await.unwrap();
    let path = format!("/api/admin/users/{}", me.id);

    let demote = owner
        .patch(&path, Some("\"v1\""), &json!({"role": "admin"}))
        .await;
    let delete = owner.delete(&path, Some("\"v1\"")).await;
    let second = owner
        .post(
            "/api/admin/users",
            &json!({"email": "two@example.com", "password": PASSWORD, "role": "owner"}),
        )
        .await;
    let demote_now = owner
        .patch(&path, Some("\"v1\""), &json!({"role": "admin"}))
        .await;

    assert_eq!(demote.status(), 409);
    assert_eq!(error_of(demote).await.error.code, "last_owner");
    assert_eq!(delete.status(), 409);
    assert_eq!(second.status(), 201);
    let created: AdminView = second.json().await.unwrap();
    assert_eq!(created.role, AdminRole::Owner);
    assert_eq!(
        demote_now.status(),
        200,
        "with a second owner the first may step down"
    );
}

async fn a_batch_applies_everything_or_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let (a, _) = create_key(&admin, json!({})).await;
    let (b, _) = create_key(&admin, json!({})).await;
    let (c, _) = create_key(&admin, json!({})).await;
    let before = (
        app.count_rows("license_keys"),
        app.count_rows("audit_logs"),
        app.count_rows("changes"),
    );

    let refused = admin
        .post(
            "/api/admin/keys/batch",
            &json!({"create": {"count": 5}, "revoke": [a.id, 424242], "delete": [b.id]}),
        )
        .await;
    let after_refusal = (
        app.count_rows("license_keys"),
        app.count_rows("audit_logs"),
        app.count_rows("changes"),
    );
    let applied = admin
        .post("/api/admin/keys/batch", &json!({"create": {"count": 2, "notes": "bulk"}, "revoke": [a.id], "suspend": [c.id], "delete": [b.id]}))
        .await;

    assert_eq!(refused.status(), 422);
    let body = error_of(refused).await;
    assert_eq!(body.error.code, "batch_refused");
    assert_eq!(body.error.details["errors"][0]["id"], 424242);
    assert_eq!(before, after_refusal, "a refused batch writes nothing");
    assert_eq!(applied.status(), 200);
    let result: keysync_shared::KeyBatchResult = applied.json().await.unwrap();
    assert_eq!(
        (
            result.created.len(),
            result.revoked.clone(),
            result.suspended.clone(),
            result.deleted.clone()
        ),
        (2, vec![a.id], vec![c.id], vec![b.id])
    );
    assert_eq!(app.count_rows("license_keys"), 4);
    assert_eq!(app.count_rows("changes"), before.2 + 5);
}

/// A trigger makes the change-feed insert fail: the key row and its audit entry, written
/// earlier in the same transaction, must vanish with it.
async fn a_failure_mid_transaction_leaves_no_row_audit_entry_or_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let before = (
        app.count_rows("license_keys"),
        app.count_rows("audit_logs"),
        app.count_rows("changes"),
    );
    inject_change_feed_failure(&app, backend);

    let response = admin
        .post("/api/admin/keys", &json!({"notes": "doomed"}))
        .await;

    assert_eq!(response.status(), 500);
    let body = error_of(response).await;
    assert_eq!(body.error.code, "internal_error");
    assert!(
        !body.error.message.contains("injected"),
        "causes are not sent to clients"
    );
    assert_eq!(
        before,
        (
            app.count_rows("license_keys"),
            app.count_rows("audit_logs"),
            app.count_rows("changes")
        )
    );
}

fn inject_change_feed_failure(app: &TestApp, backend: Backend) {
    match backend {
        Backend::Sqlite => app.execute_sql(
            "CREATE TRIGGER fail_feed BEFORE INSERT ON changes WHEN NEW.resource = 'license_keys' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        ),
        Backend::Postgres => app.execute_sql(
            "CREATE FUNCTION fail_feed() RETURNS trigger AS $$ BEGIN \
               IF NEW.resource = 'license_keys' THEN RAISE EXCEPTION 'injected failure'; END IF; \
               RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER fail_feed BEFORE INSERT ON changes FOR EACH ROW EXECUTE FUNCTION fail_feed();",
        ),
    }
}

async fn stats_count_keys_by_status_with_a_24_hour_series(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let customer = create_customer(&admin, "Acme", "ops@acme.test").await;
    for _ in 0..3 {
        create_key(&admin, json!({"customer_id": customer.id})).await;
    }
    let (revoked, etag) = create_key(&admin, json!({})).await;
    admin
        .patch(
            &format!("/api/admin/keys/{}", revoked.id),
            Some(&etag),
            &json!({"status": "revoked"}),
        )
        .await;

    let stats: DashboardStats = admin.get("/api/admin/stats").await.json().await.unwrap();

    assert_eq!(
        (stats.keys.total, stats.keys.active, stats.keys.revoked),
        (4, 3, 1)
    );
    assert_eq!(stats.customers, 1);
    assert_eq!(stats.admins, 1);
    assert_eq!(stats.validations_hourly.len(), 24);
    assert!(stats
        .validations_hourly
        .windows(2)
        .all(|w| w[0].hour < w[1].hour));
}

async fn the_audit_log_filters_and_lists_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    create_customer(&admin, "A", "a@example.com").await;
    create_key(&admin, json!({})).await;
    create_key(&admin, json!({})).await;

    let audit_page = |query: String| {
        let admin = &admin;
        async move {
            let page: Page<keysync_shared::AuditLogView> = admin
                .get(&format!("/api/admin/audit-logs?{query}"))
                .await
                .json()
                .await
                .unwrap();
            page
        }
    };
    let keys = audit_page("action=license_key.".into()).await;
    let all = audit_page("limit=2".into()).await;
    let future = audit_page("from=2099-01-01T00:00:00Z".into()).await;

    assert_eq!(keys.total, 2);
    assert!(keys.items[0].id > keys.items[1].id, "newest first");
    assert_eq!(all.items.len(), 2);
    assert!(all.next_cursor.is_some());
    assert_eq!(future.total, 0);

    // By target: every entry of one kind newest first, a page at a time, and one target's.
    let (third, etag) = create_key(&admin, json!({})).await;
    admin
        .patch(
            &format!("/api/admin/keys/{}", third.id),
            Some(&etag),
            &json!({"notes": "moved"}),
        )
        .await;
    let first = audit_page("target_kind=license_key&limit=2".into()).await;
    let cursor = first.next_cursor.clone().expect("a second page");
    let rest = audit_page(format!("target_kind=license_key&limit=2&cursor={cursor}")).await;
    let ids: Vec<i64> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|e| e.id)
        .collect();
    assert_eq!((first.total, ids.len()), (4, 4), "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert!(rest.next_cursor.is_none());
    let customers = audit_page("target_kind=customer".into()).await;
    assert_eq!(customers.total, 1);
    assert_eq!(customers.items[0].target_kind.as_deref(), Some("customer"));

    let one = audit_page(format!("target_kind=license_key&target_id={}", third.id)).await;
    let actions: Vec<&str> = one.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["license_key.updated", "license_key.created"],
        "{:?}",
        one.items
    );
    assert_eq!(one.total, 2);
    assert!(one
        .items
        .iter()
        .all(|e| e.target_id == Some(third.id.to_string())));
}

async fn signing_out_ends_the_session_and_a_new_sign_in_gets_a_new_id(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_admin("ada@example.com", AdminRole::Viewer);
    let login = || async {
        let response = reqwest::Client::new()
            .post(format!("{}/api/auth/login", app.address))
            .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };

    let first = login().await;
    let second = login().await;
    let client = reqwest::Client::new();
    let me = |cookie: String| {
        client
            .get(format!("{}/api/auth/me", app.address))
            .header("cookie", cookie)
            .send()
    };
    let before_logout = me(first.clone()).await.unwrap().status();
    client
        .post(format!("{}/api/auth/logout", app.address))
        .header("cookie", first.clone())
        .send()
        .await
        .unwrap();
    let after_logout = me(first.clone()).await.unwrap().status();
    let other_session = me(second.clone()).await.unwrap().status();

    assert_ne!(first, second);
    assert_eq!(
        (
            before_logout.as_u16(),
            after_logout.as_u16(),
            other_session.as_u16()
        ),
        (200, 401, 200)
    );
}

async fn cross_site_writes_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;

    let response = admin
        .client
        .post(format!("{}/api/admin/keys", app.address))
        .header("Origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 403);
    assert_eq!(app.count_rows("license_keys"), 0);
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_with_its_access() {
    let app = spawn_app(Backend::Sqlite).await;

    let doc: Value = reqwest::get(app.url("/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(doc["openapi"], "3.0.3");
    for route in ROUTES {
        let op = &doc["paths"][format!("/api{}", route.path)][route.method];
        assert!(
            op.is_object(),
            "{} {} is documented",
            route.method,
            route.path
        );
        let secured = !op["security"].as_array().unwrap().is_empty();
        assert_eq!(
            secured,
            matches!(route.access, Access::Admin(_)),
            "{}",
            route.path
        );
    }
}

async fn a_lapsed_key_expires_as_a_versioned_change_that_list_etags_notice(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let (key, _) = create_key(&admin, json!({"expires_at": "2099-01-01T00:00:00Z"})).await;
    let list = admin.get("/api/admin/keys").await;
    let etag = list.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        admin
            .get_if_none_match("/api/admin/keys", &etag)
            .await
            .status(),
        304
    );
    app.execute_sql(&format!(
        "UPDATE license_keys SET expires_at = {} WHERE id = {}",
        match backend {
            Backend::Sqlite => "datetime('now', '-1 minute')",
            Backend::Postgres => "(now() AT TIME ZONE 'utc') - INTERVAL '1 minute'",
        },
        key.id
    ));

    let (swept, _) = keysync_api::expiry::sweep_once(&app.db).await.unwrap();
    let after: LicenseKeyView = admin
        .get(&format!("/api/admin/keys/{}", key.id))
        .await
        .json()
        .await
        .unwrap();
    let revalidated = admin.get_if_none_match("/api/admin/keys", &etag).await;
    let log: Page<keysync_shared::AuditLogView> = admin
        .get("/api/admin/audit-logs?action=license_key.expired")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(swept, 1);
    assert_eq!(
        (after.status, after.version),
        (keysync_shared::KeyStatus::Expired, 2)
    );
    assert_eq!(
        revalidated.status(),
        200,
        "the expiry is a change, so the cached list is stale"
    );
    assert_eq!(log.items[0].actor, "system");
}
