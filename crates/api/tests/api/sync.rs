//! The change feed, long polling, the webhook and push, on both engines.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use keysync_api::routes::sync::sign;
use keysync_shared::{AdminRole, ErrorBody, LicenseKeyView, SyncResponse};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Backend, EventStream, Session};
use crate::on_both_backends;

on_both_backends!(
    sync_returns_changes_after_a_cursor_with_current_data_and_deletions_as_null,
    sync_accepts_an_rfc3339_timestamp_and_refuses_garbage,
    sync_pages_with_limit_and_has_more,
    a_long_poll_returns_as_soon_as_a_change_commits,
    a_cursor_older_than_the_retained_history_is_410,
    a_signed_webhook_is_accepted_audited_and_on_the_feed,
    webhook_deliveries_with_bad_stale_or_replayed_signatures_are_refused,
    webhook_bodies_over_64_kib_or_malformed_are_refused,
    push_sends_one_event_per_change_and_resumes_without_gap_or_duplicate,
    push_coalesces_a_hot_row_to_few_events_with_the_last_state,
    push_sends_heartbeats,
    changes_made_while_no_stream_is_open_move_the_ready_cursor_and_replay,
    concurrent_writers_never_make_a_lower_cursor_appear_later,
    subscribers_that_drop_and_resume_converge_on_the_database,
);

const SECRET: &str = "webhook-test-secret";

async fn create_key(session: &Session) -> LicenseKeyView {
    let response = session.post("/api/admin/keys", &json!({})).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn sync(session: &Session, query: &str) -> SyncResponse {
    let response = session.get(&format!("/api/admin/sync{query}")).await;
    assert_eq!(response.status(), 200, "sync{query}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn sync_returns_changes_after_a_cursor_with_current_data_and_deletions_as_null(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let start = sync(&admin, "").await.next;
    let kept = create_key(&admin).await;
    let doomed = create_key(&admin).await;
    admin
        .delete(&format!("/api/admin/keys/{}", doomed.id), Some("\"v1\""))
        .await;

    let page = sync(&admin, &format!("?since={start}")).await;

    let ops: Vec<(&str, i64, &str)> = page
        .changes
        .iter()
        .map(|c| (c.resource.as_str(), c.id, c.op.as_str()))
        .collect();
    assert_eq!(
        ops,
        vec![
            ("license_keys", kept.id, "created"),
            ("license_keys", doomed.id, "created"),
            ("license_keys", doomed.id, "deleted")
        ]
    );
    assert!(page.changes.windows(2).all(|w| w[0].cursor < w[1].cursor));
    assert_eq!(
        page.changes[0].data.as_ref().unwrap()["key"],
        kept.key.as_str()
    );
    let raw: serde_json::Value = admin
        .get(&format!("/api/admin/sync?since={start}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        raw["changes"][2]["data"].is_null(),
        "a deleted row's data is null"
    );
    assert!(raw["changes"][2].as_object().unwrap().contains_key("data"));
    assert_eq!(
        page.keys.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![kept.id]
    );
    assert_eq!(page.next, page.changes[2].cursor.to_string());
    assert!(!page.has_more);
    assert!(page
        .activity
        .iter()
        .any(|a| a.action == "license_key.deleted"));
    let empty = sync(&admin, &format!("?since={}", page.next)).await;
    assert!(empty.changes.is_empty());
    assert_eq!(empty.next, page.next);
}

async fn sync_accepts_an_rfc3339_timestamp_and_refuses_garbage(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let before = chrono::Utc::now();
    create_key(&admin).await;

    let by_time = sync(
        &admin,
        &format!(
            "?since={}",
            before
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .replace('+', "%2B")
        ),
    )
    .await;
    let garbage = admin.get("/api/admin/sync?since=yesterday").await;
    let too_many = admin.get("/api/admin/sync?limit=1001").await;
    let too_long = admin.get("/api/admin/sync?wait=31").await;

    assert_eq!(by_time.changes.len(), 1);
    assert_eq!(garbage.status(), 400);
    assert_eq!(
        garbage.json::<ErrorBody>().await.unwrap().error.code,
        "invalid_since"
    );
    assert_eq!(too_many.status(), 422);
    assert_eq!(too_long.status(), 422);
}

async fn sync_pages_with_limit_and_has_more(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let start = sync(&admin, "").await.next;
    for _ in 0..5 {
        create_key(&admin).await;
    }

    let first = sync(&admin, &format!("?since={start}&limit=3")).await;
    let second = sync(&admin, &format!("?since={}&limit=3", first.next)).await;

    assert_eq!((first.changes.len(), first.has_more), (3, true));
    assert_eq!((second.changes.len(), second.has_more), (2, false));
}

async fn a_long_poll_returns_as_soon_as_a_change_commits(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let writer = app.signed_in(AdminRole::Admin).await;
    let start = sync(&admin, "").await.next;

    let idle = tokio::time::Instant::now();
    let nothing = sync(&admin, &format!("?since={start}&wait=1")).await;
    let waited = idle.elapsed();
    let poll = tokio::spawn(async move { sync(&admin, &format!("?since={start}&wait=20")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let key = create_key(&writer).await;
    let woke = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("the long poll returns well before its wait")
        .unwrap();

    assert!(nothing.changes.is_empty());
    assert!(
        waited >= Duration::from_millis(900),
        "an idle long poll waits"
    );
    assert_eq!(
        woke.changes.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![key.id]
    );
}

async fn a_cursor_older_than_the_retained_history_is_410(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    create_key(&admin).await;
    create_key(&admin).await;
    app.execute_sql(
        "UPDATE changes SET created_at = created_at - INTERVAL '30 days'"
            .replace(
                "created_at - INTERVAL '30 days'",
                match backend {
                    Backend::Sqlite => "datetime(created_at, '-30 days')",
                    Backend::Postgres => "created_at - INTERVAL '30 days'",
                },
            )
            .as_str(),
    );

    let (pruned, _) = keysync_api::retention::prune_once(
        &app.db,
        chrono::Duration::days(7),
        chrono::Duration::days(90),
    )
    .await
    .unwrap();
    let expired = admin.get("/api/admin/sync?since=1").await;
    let fresh = admin.get("/api/admin/sync").await;

    assert!(pruned >= 3, "the owner's and both keys' entries are pruned");
    assert_eq!(expired.status(), 410);
    assert_eq!(
        expired.json::<ErrorBody>().await.unwrap().error.code,
        "cursor_expired"
    );
    assert_eq!(
        fresh.status(),
        200,
        "a client starting from now (no since) still syncs"
    );
}

fn signed_post(app_address: &str, body: &str, signature: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{app_address}/api/admin/sync"))
        .header("content-type", "application/json")
        .header("X-Keysync-Signature", signature)
        .body(body.to_owned())
}

async fn a_signed_webhook_is_accepted_audited_and_on_the_feed(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.webhook_secret = Some(SECRET.into())).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let start = sync(&admin, "").await.next;
    let body = r#"{"event":"deployment_complete","data":{"version":"1.2.3"}}"#;
    let now = chrono::Utc::now().timestamp();

    let signed = signed_post(&app.address, body, &sign(SECRET, now, body.as_bytes()))
        .send()
        .await
        .unwrap();
    let unknown = signed_post(
        &app.address,
        r#"{"event":"something_new"}"#,
        &sign(SECRET, now, br#"{"event":"something_new"}"#),
    )
    .send()
    .await
    .unwrap();
    let by_session = admin
        .post("/api/admin/sync", &json!({"event": "manual_refresh"}))
        .await;
    let page = sync(&admin, &format!("?since={start}")).await;

    assert_eq!(signed.status(), 202);
    assert_eq!(
        unknown.status(),
        202,
        "unknown events are accepted and logged"
    );
    assert_eq!(by_session.status(), 202);
    let webhooks: Vec<_> = page
        .changes
        .iter()
        .filter(|c| c.resource == "webhooks")
        .collect();
    assert_eq!(webhooks.len(), 3);
    let first = webhooks[0].data.as_ref().unwrap();
    assert_eq!(first["action"], "webhook.deployment_complete");
    assert_eq!(first["actor"], "webhook");
    assert_eq!(first["summary"]["data"]["version"], "1.2.3");
}

async fn webhook_deliveries_with_bad_stale_or_replayed_signatures_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.webhook_secret = Some(SECRET.into())).await;
    let body = r#"{"event":"deployment_complete"}"#;
    let now = chrono::Utc::now().timestamp();
    let good = sign(SECRET, now, body.as_bytes());
    let audits_before = app.count_rows("audit_logs");

    let wrong_secret = signed_post(
        &app.address,
        body,
        &sign("not-the-secret", now, body.as_bytes()),
    )
    .send()
    .await
    .unwrap();
    let stale = signed_post(
        &app.address,
        body,
        &sign(SECRET, now - 301, body.as_bytes()),
    )
    .send()
    .await
    .unwrap();
    let tampered = signed_post(&app.address, r#"{"event":"release_published"}"#, &good)
        .send()
        .await
        .unwrap();
    let garbage = signed_post(&app.address, body, "t=abc")
        .send()
        .await
        .unwrap();
    let unsigned = reqwest::Client::new()
        .post(format!("{}/api/admin/sync", app.address))
        .json(&json!({"event": "x"}))
        .send()
        .await
        .unwrap();
    let first = signed_post(&app.address, body, &good).send().await.unwrap();
    let replay = signed_post(&app.address, body, &good).send().await.unwrap();

    for refused in [wrong_secret, stale, tampered, garbage, unsigned] {
        assert_eq!(refused.status(), 401);
        assert_eq!(
            refused.json::<ErrorBody>().await.unwrap().error.code,
            "unauthorized"
        );
    }
    assert_eq!(first.status(), 202);
    assert_eq!(replay.status(), 401, "a signature is accepted once");
    assert_eq!(app.count_rows("audit_logs"), audits_before + 1);
}

async fn webhook_bodies_over_64_kib_or_malformed_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.webhook_secret = Some(SECRET.into())).await;
    let now = chrono::Utc::now().timestamp();
    let huge = format!(r#"{{"event":"x","data":"{}"}}"#, "a".repeat(70 * 1024));
    let malformed = "{not json";

    let too_big = signed_post(&app.address, &huge, &sign(SECRET, now, huge.as_bytes()))
        .send()
        .await
        .unwrap();
    let bad = signed_post(
        &app.address,
        malformed,
        &sign(SECRET, now, malformed.as_bytes()),
    )
    .send()
    .await
    .unwrap();
    let bad_name = signed_post(
        &app.address,
        r#"{"event":"DROP TABLE"}"#,
        &sign(SECRET, now, br#"{"event":"DROP TABLE"}"#),
    )
    .send()
    .await
    .unwrap();

    assert_eq!(too_big.status(), 413);
    assert_eq!(bad.status(), 400);
    assert_eq!(bad_name.status(), 422);
    assert_eq!(
        app.count_rows("webhook_deliveries"),
        0,
        "refused deliveries are not remembered"
    );
}

async fn push_sends_one_event_per_change_and_resumes_without_gap_or_duplicate(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let viewer = app.signed_in(AdminRole::Viewer).await;
    let mut stream = EventStream::open(&viewer, None).await;
    let ready = stream.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(ready.event, "ready");

    let a = create_key(&admin).await;
    let first = stream
        .next_change(Duration::from_secs(5))
        .await
        .expect("an event for the first key");
    drop(stream);
    let b = create_key(&admin).await;
    let c = create_key(&admin).await;
    let mut resumed = EventStream::open(&viewer, Some(first.cursor)).await;
    let mut seen = Vec::new();
    while let Some(change) = resumed.next_change(Duration::from_secs(2)).await {
        seen.push(change.id);
        if seen.len() == 2 {
            break;
        }
    }
    let d = create_key(&admin).await;
    let live = resumed.next_change(Duration::from_secs(5)).await.unwrap();

    assert_eq!((first.id, first.op.as_str()), (a.id, "created"));
    assert_eq!(
        seen,
        vec![b.id, c.id],
        "the replay holds exactly what was missed"
    );
    assert_eq!(
        live.id, d.id,
        "then the stream continues live, with no duplicate"
    );
}

async fn push_coalesces_a_hot_row_to_few_events_with_the_last_state(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let key = create_key(&admin).await;
    let mut stream = EventStream::open(&admin, None).await;
    stream.next(Duration::from_secs(5)).await.unwrap();

    let path = format!("/api/admin/keys/{}", key.id);
    for version in 1..=20 {
        let response = admin
            .patch(
                &path,
                Some(&format!("\"v{version}\"")),
                &json!({"notes": format!("edit {version}")}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let mut versions = Vec::new();
    while let Some(change) = stream.next_change(Duration::from_secs(2)).await {
        versions.push(change.version);
        if change.version == 21 {
            break;
        }
    }

    assert_eq!(
        versions.last(),
        Some(&21),
        "the last state is always delivered"
    );
    assert!(
        versions.len() < 20,
        "20 rapid edits are coalesced, got {versions:?}"
    );
    assert!(versions.windows(2).all(|w| w[0] < w[1]));
}

async fn push_sends_heartbeats(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.sse_heartbeat_secs = 1).await;
    let viewer = app.signed_in(AdminRole::Viewer).await;
    let mut stream = EventStream::open(&viewer, None).await;

    let ready = stream.next(Duration::from_secs(5)).await.unwrap();
    let heartbeat = stream.next(Duration::from_secs(5)).await.unwrap();

    assert_eq!(ready.event, "ready");
    assert_eq!(heartbeat.event, "comment");
}

/// With no stream open the follower moves past new entries without publishing them; a stream
/// opened afterwards must start from the feed's end, and one resuming from before them must
/// still replay every one.
async fn changes_made_while_no_stream_is_open_move_the_ready_cursor_and_replay(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let start: i64 = sync(&admin, "").await.next.parse().unwrap();
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(create_key(&admin).await.id);
    }
    let end: i64 = sync(&admin, &format!("?since={start}"))
        .await
        .next
        .parse()
        .unwrap();
    // The follower is woken by every local commit (and polls besides); a second is ample for it
    // to pass the new entries.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut fresh = EventStream::open(&admin, None).await;
    let ready = fresh.next(Duration::from_secs(5)).await.unwrap();
    let mut resumed = EventStream::open(&admin, Some(start)).await;
    let mut replayed = Vec::new();
    while replayed.len() < created.len() {
        match resumed.next_change(Duration::from_secs(5)).await {
            Some(change) => replayed.push(change.id),
            None => break,
        }
    }
    let next = create_key(&admin).await;
    let live = fresh.next_change(Duration::from_secs(5)).await.unwrap();

    assert_eq!((ready.event.as_str(), ready.id), ("ready", Some(end)));
    assert_eq!(
        replayed, created,
        "a resumed stream replays what nobody watched"
    );
    assert_eq!(live.id, next.id, "the first live event is the next change");
    assert!(live.cursor > end);
}

/// A reader that has seen cursor N must never later find an entry below N: it reads the feed
/// incrementally while writers commit concurrently, and must end up with every entry.
async fn concurrent_writers_never_make_a_lower_cursor_appear_later(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.pool_size = 8).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let start: i64 = sync(&admin, "").await.next.parse().unwrap();
    let mut writers = Vec::new();
    for _ in 0..6 {
        let session = app.signed_in(AdminRole::Admin).await;
        writers.push(tokio::spawn(async move {
            for _ in 0..15 {
                let response = session.post("/api/admin/keys", &json!({})).await;
                assert_eq!(response.status(), 201);
            }
        }));
    }
    let mut seen = Vec::new();
    let mut cursor = start;
    let mut writers_done = false;
    loop {
        let page = sync(&admin, &format!("?since={cursor}&limit=1000")).await;
        for change in &page.changes {
            assert!(
                change.cursor > cursor,
                "entry {} appeared after the reader passed {}",
                change.cursor,
                cursor
            );
        }
        seen.extend(page.changes.iter().map(|c| c.cursor));
        cursor = page.next.parse().unwrap();
        if writers_done && page.changes.is_empty() {
            break;
        }
        writers_done = writers.iter().all(|w| w.is_finished());
    }
    for writer in writers {
        writer.await.unwrap();
    }

    let all = sync(&admin, &format!("?since={start}&limit=1000")).await;
    let every: Vec<i64> = all.changes.iter().map(|c| c.cursor).collect();
    assert_eq!(
        seen, every,
        "the incremental reader saw every entry, in order"
    );
    assert_eq!(
        every.len(),
        6 + 6 * 15,
        "six writers were created, then 15 keys each"
    );
}

/// Writers mutate keys at random while subscribers watch; some drop and resume with
/// Last-Event-ID. Afterwards each subscriber's view (key id → version, or deleted) equals the
/// database.
async fn subscribers_that_drop_and_resume_converge_on_the_database(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.feed_coalesce_ms = 50).await;
    let viewer = app.signed_in(AdminRole::Viewer).await;
    let start: i64 = sync(&viewer, "").await.next.parse().unwrap();
    let mut subscribers = Vec::new();
    for index in 0..6 {
        let session = Session {
            client: viewer.client.clone(),
            base: viewer.base.clone(),
        };
        subscribers.push(tokio::spawn(async move {
            let mut view: BTreeMap<i64, Option<i64>> = BTreeMap::new();
            let mut last = start;
            let mut stream = EventStream::open(&session, Some(last)).await;
            let mut received = 0;
            loop {
                // Quiet for this long means the writers are done (generous, for slow CI machines).
                match stream.next_change(Duration::from_secs(8)).await {
                    Some(change) => {
                        assert!(change.cursor > last, "no duplicate, in order");
                        last = change.cursor;
                        if change.resource == "license_keys" {
                            view.insert(
                                change.id,
                                (change.op != "deleted").then_some(change.version),
                            );
                        }
                        received += 1;
                        // Odd subscribers hang up now and then and resume where they were.
                        if index % 2 == 1 && received % 7 == 0 {
                            drop(stream);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            stream = EventStream::open(&session, Some(last)).await;
                        }
                    }
                    None => return view,
                }
            }
        }));
    }
    let mut writers = Vec::new();
    for seed in 0..3u64 {
        let session = app.signed_in(AdminRole::Admin).await;
        writers.push(tokio::spawn(async move {
            let mut mine: Vec<(i64, i64)> = Vec::new();
            let mut state = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            for _ in 0..40 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let choice = (state >> 33) % 4;
                if mine.is_empty() || choice == 0 {
                    let key: LicenseKeyView = session
                        .post("/api/admin/keys", &json!({}))
                        .await
                        .json()
                        .await
                        .unwrap();
                    mine.push((key.id, key.version));
                } else {
                    let index = ((state >> 40) as usize) % mine.len();
                    let (id, version) = mine[index];
                    let path = format!("/api/admin/keys/{id}");
                    if choice == 1 {
                        session
                            .delete(&path, Some(&format!("\"v{version}\"")))
                            .await;
                        mine.remove(index);
                    } else {
                        let updated: LicenseKeyView = session
                            .patch(
                                &path,
                                Some(&format!("\"v{version}\"")),
                                &json!({"notes": format!("n{state}")}),
                            )
                            .await
                            .json()
                            .await
                            .unwrap();
                        mine[index].1 = updated.version;
                    }
                }
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }

    let keys: keysync_shared::Page<LicenseKeyView> = viewer
        .get("/api/admin/keys?limit=200")
        .await
        .json()
        .await
        .unwrap();
    let database: HashMap<i64, i64> = keys.items.iter().map(|k| (k.id, k.version)).collect();
    for subscriber in subscribers {
        let view = subscriber.await.unwrap();
        let live: HashMap<i64, i64> = view
            .iter()
            .filter_map(|(id, v)| v.map(|v| (*id, v)))
            .collect();
        assert_eq!(live, database, "a subscriber's view equals the database");
    }
}

#[tokio::test]
async fn the_events_stream_needs_a_session_and_a_readable_last_event_id() {
    let app = spawn_app(Backend::Sqlite).await;
    let viewer = app.signed_in(AdminRole::Viewer).await;

    let anonymous = reqwest::get(app.url("/api/admin/events")).await.unwrap();
    let garbage = viewer
        .client
        .get(app.url("/api/admin/events"))
        .header("Last-Event-ID", "not-a-number")
        .send()
        .await
        .unwrap();

    assert_eq!(anonymous.status(), 401);
    assert_eq!(garbage.status(), 400);
}
