//! The license-client API's contract (`/api/validate-license`, `/api/deactivate-license`,
//! `/api/license/public-key`), on both engines.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use keysync_api::licensing::signing::root_from_proof;
use keysync_shared::{
    AdminRole, AuditLogView, DeactivateLicenseResponse, DeactivationCode, ErrorBody,
    LicenseKeyView, Page, ProofStep, PublicKeyView, SignedPayload, ValidateLicenseResponse,
    ValidationCode,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app, spawn_app_with, Backend, Session, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_valid_key_activates_counts_and_is_signed_with_the_published_key,
    every_refusal_is_a_200_with_its_code,
    a_key_suspended_a_moment_ago_validates_as_suspended,
    malformed_requests_get_the_shared_error_shape_and_are_not_counted,
    a_known_fingerprint_keeps_its_seat_and_deactivation_frees_one,
    concurrent_activations_of_one_key_never_over_allocate_seats,
    answers_signed_together_each_verify_through_their_own_proof,
    every_attempt_is_audited_with_the_key_prefix_only,
    validations_are_rate_limited_per_key_and_per_ip_and_still_audited,
    one_failing_attempt_does_not_fail_the_others_queued_with_it,
    attempts_refused_by_a_full_queue_are_answered_503_and_still_audited,
    the_signing_key_is_kept_in_the_database_across_restarts,
);

const USER_AGENT: &str = "acme-tool/2.1 (license check)";

async fn new_key(admin: &Session, body: Value) -> LicenseKeyView {
    let response = admin.post("/api/admin/keys", &body).await;
    assert_eq!(response.status(), 201, "create a key");
    response.json().await.unwrap()
}

async fn key_view(admin: &Session, id: i64) -> LicenseKeyView {
    let response = admin.get(&format!("/api/admin/keys/{id}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("User-Agent", USER_AGENT)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn validate(app: &TestApp, body: Value) -> ValidateLicenseResponse {
    let response = post(app, "/api/validate-license", &body).await;
    assert_eq!(response.status(), 200, "validation answers 200");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.expect("the validation shape")
}

async fn deactivate(app: &TestApp, key: &str, fingerprint: &str) -> DeactivateLicenseResponse {
    let response = post(
        app,
        "/api/deactivate-license",
        &json!({"key": key, "fingerprint": fingerprint}),
    )
    .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn audit_entries(admin: &Session, action: &str) -> Vec<AuditLogView> {
    let page: Page<AuditLogView> = admin
        .get(&format!("/api/admin/audit-logs?action={action}&limit=200"))
        .await
        .json()
        .await
        .unwrap();
    page.items
}

async fn published_key(app: &TestApp) -> VerifyingKey {
    let response = app.get("/api/license/public-key").await;
    assert_eq!(response.status(), 200);
    let body: PublicKeyView = response.json().await.unwrap();
    assert_eq!(body.algorithm, "ed25519");
    let bytes: [u8; 32] = BASE64.decode(&body.public_key).unwrap().try_into().unwrap();
    VerifyingKey::from_bytes(&bytes).unwrap()
}

fn verifies(key: &VerifyingKey, payload: &[u8], proof: &[ProofStep], signature_b64: &str) -> bool {
    // The tree itself is checked against a hand computation in `licensing::signing`.
    let Some(root) = root_from_proof(payload, proof) else {
        return false;
    };
    let Ok(bytes) = BASE64.decode(signature_b64) else {
        return false;
    };
    let Ok(bytes) = <[u8; 64]>::try_from(bytes) else {
        return false;
    };
    let message = [&b"keysync license batch v1\n"[..], &root].concat();
    key.verify(&message, &Signature::from_bytes(&bytes)).is_ok()
}

/// Sends one validation of `key` per fingerprint, all at once; each response with its
/// fingerprint, in the order given.
async fn validate_all_at_once(
    app: &TestApp,
    key: &str,
    fingerprints: Vec<String>,
) -> Vec<(String, reqwest::Response)> {
    let url = app.url("/api/validate-license");
    let mut tasks = tokio::task::JoinSet::new();
    for fingerprint in fingerprints {
        let (client, url, key) = (app.client.clone(), url.clone(), key.to_owned());
        tasks.spawn(async move {
            let response = client
                .post(url)
                .json(&json!({"key": key, "fingerprint": fingerprint}))
                .send()
                .await
                .unwrap();
            (fingerprint, response)
        });
    }
    tasks.join_all().await
}

/// A well-formed key no server issued.
const UNKNOWN_KEY: &str = "SCO-ZZZZ-ZZZZ-ZZZZ-ZZZZ";

async fn a_valid_key_activates_counts_and_is_signed_with_the_published_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let key = new_key(
        &admin,
        json!({"max_activations": 2, "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let changes_before = app.count_rows("changes");

    let answer = validate(
        &app,
        json!({"key": key.key.to_lowercase(), "fingerprint": "machine-1", "version": "2.1.0"}),
    )
    .await;

    assert!(answer.valid);
    assert_eq!(answer.code, ValidationCode::Valid);
    let license = answer.license.as_ref().expect("license details");
    assert_eq!(
        (license.activation_count, license.max_activations),
        (1, Some(2))
    );
    assert!(license.activated_at.is_some());
    let public = published_key(&app).await;
    assert!(verifies(
        &public,
        answer.payload.as_bytes(),
        &answer.proof,
        &answer.signature
    ));
    let tampered = answer.payload.replace("\"valid\":true", "\"valid\":false");
    assert_ne!(tampered, answer.payload);
    assert!(!verifies(
        &public,
        tampered.as_bytes(),
        &answer.proof,
        &answer.signature
    ));
    let payload: SignedPayload = serde_json::from_str(&answer.payload).unwrap();
    assert_eq!(
        payload.key_hash,
        hex::encode(Sha256::digest(key.key.as_bytes()))
    );
    assert_eq!(payload.fingerprint.as_deref(), Some("machine-1"));
    assert_eq!((payload.code, payload.valid), (ValidationCode::Valid, true));
    assert_eq!(payload.checked_at, answer.checked_at);
    assert_eq!(payload.expires_at, key.expires_at);
    assert_eq!(
        payload.grace_until,
        Some(answer.checked_at + chrono::Duration::days(7))
    );
    let after = key_view(&admin, key.id).await;
    assert_eq!(after.validation_count, 1);
    assert_eq!(after.activation_count, 1);
    assert_eq!(after.version, key.version + 1, "a validation is a mutation");
    assert!(after.updated_at > key.updated_at);
    assert_eq!(after.last_used, Some(answer.checked_at));
    assert_eq!(after.activated_at, Some(answer.checked_at));
    assert_eq!(app.count_rows("activations"), 1);
    assert_eq!(app.count_rows("changes"), changes_before + 1, "on the feed");

    let again = validate(&app, json!({"key": key.key, "fingerprint": "machine-1"})).await;
    let soon = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let short_lived = new_key(&admin, json!({"expires_at": soon})).await;
    let capped = validate(&app, json!({"key": short_lived.key})).await;

    assert_eq!(again.code, ValidationCode::Valid);
    assert_eq!(
        capped.grace_until, short_lived.expires_at,
        "offline grace never outlives the key"
    );
    let later = key_view(&admin, key.id).await;
    assert_eq!(later.validation_count, 2);
    assert_eq!(
        later.activated_at, after.activated_at,
        "only the first valid attempt activates"
    );
}

async fn every_refusal_is_a_200_with_its_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let suspended = new_key(&admin, json!({})).await;
    let revoked = new_key(&admin, json!({})).await;
    let expired = new_key(&admin, json!({})).await;
    let seated = new_key(&admin, json!({"max_activations": 1})).await;
    for (key, status) in [(&suspended, "suspended"), (&revoked, "revoked")] {
        let response = admin
            .patch(
                &format!("/api/admin/keys/{}", key.id),
                Some("*"),
                &json!({"status": status}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    app.execute_sql(&format!(
        "UPDATE license_keys SET expires_at = '2001-01-01 00:00:00' WHERE id = {}",
        expired.id
    ));
    let taken = validate(&app, json!({"key": seated.key, "fingerprint": "first"})).await;
    assert_eq!(taken.code, ValidationCode::Valid);

    let cases = [
        (json!({"key": UNKNOWN_KEY}), ValidationCode::NotFound),
        (json!({"key": "not a key at all"}), ValidationCode::NotFound),
        (json!({"key": suspended.key}), ValidationCode::Suspended),
        (json!({"key": revoked.key}), ValidationCode::Revoked),
        (json!({"key": expired.key}), ValidationCode::Expired),
        (
            json!({"key": seated.key}),
            ValidationCode::FingerprintRequired,
        ),
        (
            json!({"key": seated.key, "fingerprint": "second"}),
            ValidationCode::TooManyActivations,
        ),
    ];
    for (body, expected) in cases {
        let answer = validate(&app, body.clone()).await;

        assert_eq!(answer.code, expected, "{body}");
        assert!(!answer.valid, "{body}");
        assert!(answer.grace_until.is_none(), "no offline grace for {body}");
        assert_eq!(
            answer.license.is_none(),
            expected == ValidationCode::NotFound,
            "{body}"
        );
        let payload: SignedPayload = serde_json::from_str(&answer.payload).unwrap();
        assert_eq!((payload.code, payload.valid), (expected, false));
    }
    assert_eq!(app.count_rows("activations"), 1);
    let refused = key_view(&admin, suspended.id).await;
    assert_eq!(refused.validation_count, 1, "refused attempts are counted");
    assert!(
        refused.activated_at.is_none(),
        "a refused attempt activates nothing"
    );
}

async fn a_key_suspended_a_moment_ago_validates_as_suspended(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let key = new_key(&admin, json!({})).await;
    let before = validate(&app, json!({"key": key.key})).await;
    assert_eq!(before.code, ValidationCode::Valid);

    let suspended = admin
        .patch(
            &format!("/api/admin/keys/{}", key.id),
            Some("*"),
            &json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(suspended.status(), 200);
    let after = validate(&app, json!({"key": key.key})).await;
    let reactivated = admin
        .patch(
            &format!("/api/admin/keys/{}", key.id),
            Some("*"),
            &json!({"status": "active"}),
        )
        .await;
    assert_eq!(reactivated.status(), 200);
    let again = validate(&app, json!({"key": key.key})).await;

    assert_eq!(after.code, ValidationCode::Suspended);
    assert_eq!(again.code, ValidationCode::Valid);
}

async fn malformed_requests_get_the_shared_error_shape_and_are_not_counted(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let key = new_key(&admin, json!({})).await;
    let audits_before = app.count_rows("audit_logs");

    let not_json = app
        .client
        .post(app.url("/api/validate-license"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let cases = [
        (json!({"fingerprint": "m"}), 400),
        (json!({"key": 42}), 400),
        (json!({"key": "   "}), 422),
        (json!({"key": "A".repeat(10_000)}), 422),
        (json!({"key": key.key, "fingerprint": "f".repeat(300)}), 422),
        (json!({"key": key.key, "version": "v".repeat(65)}), 422),
    ];

    assert_eq!(not_json.status(), 400);
    let body: ErrorBody = not_json.json().await.unwrap();
    assert_eq!(body.error.code, "malformed_json");
    for (body, status) in cases {
        let response = post(&app, "/api/validate-license", &body).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        let error: ErrorBody = response.json().await.expect("the shared error shape");
        assert!(!error.error.code.is_empty());
    }
    let missing_fingerprint = post(&app, "/api/deactivate-license", &json!({"key": key.key})).await;
    assert_eq!(missing_fingerprint.status(), 400);
    assert_eq!(app.count_rows("audit_logs"), audits_before);
    assert_eq!(key_view(&admin, key.id).await.validation_count, 0);
}

async fn a_known_fingerprint_keeps_its_seat_and_deactivation_frees_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let key = new_key(&admin, json!({"max_activations": 2})).await;
    let check = |fp: &'static str| validate(&app, json!({"key": key.key, "fingerprint": fp}));

    let a = check("machine-a").await;
    let a_again = check("machine-a").await;
    let b = check("machine-b").await;
    let c = check("machine-c").await;
    let seats_full = key_view(&admin, key.id).await.activation_count;
    let freed = deactivate(&app, &key.key, "machine-a").await;
    let freed_twice = deactivate(&app, &key.key, "machine-a").await;
    let unknown = deactivate(&app, UNKNOWN_KEY, "machine-a").await;
    let c_after = check("machine-c").await;

    assert_eq!(
        [a.code, a_again.code, b.code, c.code],
        [
            ValidationCode::Valid,
            ValidationCode::Valid,
            ValidationCode::Valid,
            ValidationCode::TooManyActivations
        ]
    );
    assert_eq!(seats_full, 2, "a known fingerprint reuses its seat");
    assert_eq!(
        (freed.code, freed.released, freed.activation_count),
        (DeactivationCode::Released, true, Some(1))
    );
    assert_eq!(
        (freed_twice.code, freed_twice.released),
        (DeactivationCode::NotActivated, false)
    );
    assert_eq!(
        (unknown.code, unknown.activation_count),
        (DeactivationCode::NotFound, None)
    );
    assert_eq!(c_after.code, ValidationCode::Valid);
    assert_eq!(key_view(&admin, key.id).await.activation_count, 2);
    assert_eq!(app.count_rows("activations"), 2);
    assert_eq!(
        audit_entries(&admin, "license.deactivate").await.len(),
        3,
        "deactivations are audited"
    );
}

async fn answers_signed_together_each_verify_through_their_own_proof(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let key = new_key(&admin, json!({})).await;
    let public = published_key(&app).await;

    let fingerprints = (0..40).map(|m| format!("machine-{m}")).collect();
    let mut answers = Vec::new();
    for (fingerprint, response) in validate_all_at_once(&app, &key.key, fingerprints).await {
        assert_eq!(response.status(), 200);
        let answer: ValidateLicenseResponse = response.json().await.unwrap();
        answers.push((fingerprint, answer));
    }

    for (fingerprint, answer) in &answers {
        assert!(verifies(
            &public,
            answer.payload.as_bytes(),
            &answer.proof,
            &answer.signature
        ));
        let payload: SignedPayload = serde_json::from_str(&answer.payload).unwrap();
        assert_eq!(payload.fingerprint.as_ref(), Some(fingerprint));
        assert_eq!(payload.code, ValidationCode::Valid);
    }
    // Answers of one batch share a signature, and each needs its own proof: another answer's
    // payload does not lead to the signed root through it.
    for (i, (_, a)) in answers.iter().enumerate() {
        for (_, b) in &answers[i + 1..] {
            let root_a = root_from_proof(a.payload.as_bytes(), &a.proof).unwrap();
            let root_b = root_from_proof(b.payload.as_bytes(), &b.proof).unwrap();
            assert_eq!(a.signature == b.signature, root_a == root_b);
            assert!(!verifies(
                &public,
                b.payload.as_bytes(),
                &a.proof,
                &a.signature
            ));
        }
    }
    assert_eq!(key_view(&admin, key.id).await.validation_count, 40);
}

async fn concurrent_activations_of_one_key_never_over_allocate_seats(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let key = new_key(&admin, json!({"max_activations": 5})).await;

    let fingerprints = (0..20).map(|m| format!("machine-{m}")).collect();
    let mut codes = Vec::new();
    for (_, response) in validate_all_at_once(&app, &key.key, fingerprints).await {
        assert_eq!(response.status(), 200);
        codes.push(
            response
                .json::<ValidateLicenseResponse>()
                .await
                .unwrap()
                .code,
        );
    }

    let valid = codes
        .iter()
        .filter(|c| **c == ValidationCode::Valid)
        .count();
    let full = codes
        .iter()
        .filter(|c| **c == ValidationCode::TooManyActivations)
        .count();
    assert_eq!((valid, full), (5, 15), "{codes:?}");
    let after = key_view(&admin, key.id).await;
    assert_eq!(after.activation_count, 5);
    assert_eq!(after.validation_count, 20);
    assert_eq!(app.count_rows("activations"), 5);
}

async fn every_attempt_is_audited_with_the_key_prefix_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let good = new_key(&admin, json!({})).await;
    let seated = new_key(&admin, json!({"max_activations": 1})).await;
    let changes_before = app.count_rows("changes");
    let bodies = [
        json!({"key": good.key}),
        json!({"key": good.key, "fingerprint": "fp-1", "version": "1.0"}),
        json!({"key": UNKNOWN_KEY}),
        json!({"key": "garbage"}),
        json!({"key": seated.key}),
        json!({"key": seated.key, "fingerprint": "fp-1"}),
        json!({"key": seated.key, "fingerprint": "fp-2"}),
    ];

    let mut tasks = tokio::task::JoinSet::new();
    for body in bodies.clone() {
        let (client, url) = (app.client.clone(), app.url("/api/validate-license"));
        tasks.spawn(async move {
            let response = client
                .post(url)
                .header("User-Agent", USER_AGENT)
                .json(&body)
                .send()
                .await
                .unwrap();
            response
                .json::<ValidateLicenseResponse>()
                .await
                .unwrap()
                .code
        });
    }
    let mut codes: Vec<&str> = tasks
        .join_all()
        .await
        .into_iter()
        .map(ValidationCode::as_str)
        .collect();

    let entries = audit_entries(&admin, "license.validate").await;
    assert_eq!(entries.len(), bodies.len(), "one audit entry per attempt");
    let mut audited: Vec<&str> = entries
        .iter()
        .map(|e| e.summary.as_ref().unwrap()["code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    audited.sort_unstable();
    assert_eq!(audited, codes);
    for entry in &entries {
        let text = serde_json::to_string(entry).unwrap();
        for key in [&good.key, &seated.key, &UNKNOWN_KEY.to_owned()] {
            assert!(!text.contains(key.as_str()), "a whole key in {text}");
        }
        assert_eq!(entry.actor, "license_client");
        assert_eq!(entry.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(entry.user_agent.as_deref(), Some(USER_AGENT));
        let prefix = entry.summary.as_ref().unwrap()["key"].as_str().unwrap();
        assert!(prefix.ends_with("..."), "{prefix}");
    }
    let good_prefix = format!("{}...", &good.key[..8]);
    assert!(entries.iter().any(
        |e| e.summary.as_ref().unwrap()["key"] == good_prefix.as_str()
            && e.target_id == Some(good.id.to_string())
    ));
    assert_eq!(
        app.count_rows("changes"),
        changes_before + 5,
        "each attempt on an existing key is on the change feed"
    );
}

async fn validations_are_rate_limited_per_key_and_per_ip_and_still_audited(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.validations_per_key_per_minute = 3;
        s.validations_per_ip_per_minute = 5;
    })
    .await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let first = new_key(&admin, json!({})).await;
    let second = new_key(&admin, json!({})).await;
    let attempt = |key: &str| {
        app.client
            .post(app.url("/api/validate-license"))
            .json(&json!({"key": key}))
            .send()
    };

    let mut statuses = Vec::new();
    for key in [&first.key, &first.key, &first.key, &first.key] {
        statuses.push(attempt(key).await.unwrap().status().as_u16());
    }
    let per_key = attempt(&first.key).await.unwrap();
    let other_key = attempt(&second.key).await.unwrap();
    let per_ip = attempt(&second.key).await.unwrap();

    assert_eq!(statuses, [200, 200, 200, 429], "the key's limit is 3");
    assert_eq!(per_key.status(), 429, "still over the key's limit");
    assert_eq!(other_key.status(), 429, "the IP's limit of 5 is spent");
    let retry_after: u64 = per_ip.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    let error: ErrorBody = per_ip.json().await.unwrap();
    assert_eq!(error.error.code, "rate_limited");
    let entries = audit_entries(&admin, "license.validate").await;
    assert_eq!(entries.len(), 7, "refused attempts are audited too");
    let limited: Vec<&str> = entries
        .iter()
        .filter(|e| e.summary.as_ref().unwrap()["code"] == "RATE_LIMITED")
        .map(|e| e.summary.as_ref().unwrap()["limit"].as_str().unwrap())
        .collect();
    assert_eq!(limited.len(), 4);
    assert!(
        limited.contains(&"key") && limited.contains(&"ip"),
        "{limited:?}"
    );
    assert_eq!(
        key_view(&admin, first.id).await.validation_count,
        3,
        "a refused attempt moves no counter"
    );
}

/// A database trigger makes one fingerprint's seat insert fail; the attempts queued beside it
/// (most likely in the same batch) must still succeed.
async fn one_failing_attempt_does_not_fail_the_others_queued_with_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let key = new_key(&admin, json!({})).await;
    match backend {
        Backend::Sqlite => app.execute_sql(
            "CREATE TRIGGER poison BEFORE INSERT ON activations
             WHEN NEW.fingerprint = 'poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned fingerprint'); END;",
        ),
        Backend::Postgres => app.execute_sql(
            "CREATE FUNCTION poison() RETURNS trigger AS $$
             BEGIN
               IF NEW.fingerprint = 'poison' THEN RAISE EXCEPTION 'poisoned fingerprint'; END IF;
               RETURN NEW;
             END $$ LANGUAGE plpgsql;
             CREATE TRIGGER poison BEFORE INSERT ON activations
             FOR EACH ROW EXECUTE FUNCTION poison();",
        ),
    }

    let fingerprints = (0..12)
        .map(|m| match m {
            6 => "poison".to_owned(),
            m => format!("machine-{m}"),
        })
        .collect();
    let results = validate_all_at_once(&app, &key.key, fingerprints).await;

    for (fingerprint, response) in &results {
        let expected = if fingerprint == "poison" { 500 } else { 200 };
        assert_eq!(response.status(), expected, "{fingerprint}");
    }
    assert_eq!(app.count_rows("activations"), 11);
    assert_eq!(key_view(&admin, key.id).await.activation_count, 11);
    let entries = audit_entries(&admin, "license.validate").await;
    assert_eq!(entries.len(), 12, "the failed attempt is audited too");
    let failed: Vec<&AuditLogView> = entries
        .iter()
        .filter(|e| e.summary.as_ref().unwrap()["code"] == "ERROR")
        .collect();
    assert_eq!(failed.len(), 1, "exactly one entry for the failed attempt");
    assert_eq!(failed[0].target_id, Some(key.id.to_string()));
    assert_eq!(
        failed[0].summary.as_ref().unwrap()["key"],
        format!("{}...", &key.key[..8]).as_str()
    );
}

/// With a queue of one and the writer held up by a lock the test holds, all but a few of a burst
/// of attempts are refused with a 503; every attempt, refused or not, is audited once.
async fn attempts_refused_by_a_full_queue_are_answered_503_and_still_audited(backend: Backend) {
    const ATTEMPTS: usize = 16;
    let app = spawn_app_with(backend, |s| {
        s.validation_queue_capacity = 1;
        s.validations_per_ip_per_minute = 0;
        s.validations_per_key_per_minute = 0;
    })
    .await;
    let admin = app.signed_in(AdminRole::Admin).await;
    let key = new_key(&admin, json!({})).await;
    // Holds the writer up: the whole SQLite file, or the key's row on PostgreSQL.
    let mut blocker = app.db.get_blocking().expect("a connection");
    {
        use diesel::connection::SimpleConnection;
        let lock = match backend {
            Backend::Sqlite => "BEGIN IMMEDIATE".to_owned(),
            Backend::Postgres => format!(
                "BEGIN; SELECT id FROM license_keys WHERE id = {} FOR UPDATE",
                key.id
            ),
        };
        keysync_api::with_store!(&mut blocker, |c| c.batch_execute(&lock)).expect("lock");
    }

    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..ATTEMPTS {
        let (client, url, key, done) = (
            app.client.clone(),
            app.url("/api/validate-license"),
            key.key.clone(),
            done_tx.clone(),
        );
        tokio::spawn(async move {
            let response = client
                .post(url)
                .json(&json!({"key": key}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            let _ = done.send((status, body));
        });
    }
    drop(done_tx);
    let mut results = Vec::new();
    // The refused answers come while the writer is still held up; the accepted ones (the one or
    // few the writer took, and the one in the queue) only after the lock is released.
    while let Ok(Some(result)) =
        tokio::time::timeout(std::time::Duration::from_secs(2), done_rx.recv()).await
    {
        results.push(result);
    }
    {
        use diesel::connection::SimpleConnection;
        keysync_api::with_store!(&mut blocker, |c| c.batch_execute("ROLLBACK")).expect("unlock");
    }
    drop(blocker);
    while let Some(result) = done_rx.recv().await {
        results.push(result);
    }

    let refused: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == 503)
        .map(|(_, body)| body)
        .collect();
    let answered = results.iter().filter(|(status, _)| *status == 200).count();
    assert!(refused.len() >= ATTEMPTS / 2, "{results:?}");
    assert_eq!(refused.len() + answered, ATTEMPTS, "{results:?}");
    for body in &refused {
        assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
    }
    // The refused attempts' entries are committed with the writer's next batch, which a wake-up
    // starts; give it the time a batch takes.
    let mut entries = Vec::new();
    for _ in 0..100 {
        entries = audit_entries(&admin, "license.validate").await;
        if entries.len() >= ATTEMPTS {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(entries.len(), ATTEMPTS, "one audit entry per attempt");
    let codes: Vec<&str> = entries
        .iter()
        .map(|e| e.summary.as_ref().unwrap()["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "UNAVAILABLE").count(),
        refused.len(),
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == "VALID").count(),
        answered,
        "{codes:?}"
    );
    for entry in entries
        .iter()
        .filter(|e| e.summary.as_ref().unwrap()["code"] == "UNAVAILABLE")
    {
        assert_eq!(entry.target_id, Some(key.id.to_string()));
        assert_eq!(entry.ip.as_deref(), Some("127.0.0.1"));
    }
    assert_eq!(
        key_view(&admin, key.id).await.validation_count,
        answered as i64
    );
}

async fn the_signing_key_is_kept_in_the_database_across_restarts(backend: Backend) {
    let app = spawn_app(backend).await;
    let published = published_key(&app).await;

    let restarted = spawn_app_with(backend, |s| s.database_url = app.database_url.clone()).await;
    let after_restart = published_key(&restarted).await;
    let other = spawn_app(backend).await;

    assert_eq!(published, after_restart, "the pair survives a restart");
    assert_ne!(
        published,
        published_key(&other).await,
        "each database gets its own pair"
    );
    assert_eq!(app.count_rows("server_settings"), 2);
}
