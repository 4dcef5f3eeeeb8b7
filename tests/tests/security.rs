//! Security through the real binary: role escalation, session fixation, cross-site requests,
//! sign-in throttling per IP, and no secret in a debug-level log of a full run.
//!
//! (Every admin route's 401 without a session, per-email sign-in limits and the SPA's security
//! headers are covered in `crates/api/tests`.)

use std::time::Duration;

use hmac::{Hmac, Mac};
use keysync_e2e::ServerProcess;
use serde_json::{json, Value};
use sha2::Sha256;

const OWNER: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "owner password 7f3a9c";

fn server(extra: &[(&str, &str)]) -> ServerProcess {
    let mut env = vec![
        ("KEYSYNC_ADMIN_EMAIL", OWNER),
        ("KEYSYNC_ADMIN_PASSWORD", OWNER_PASSWORD),
    ];
    env.extend_from_slice(extra);
    ServerProcess::start(&env).unwrap()
}

/// Signs in; returns the cookie pair (`keysync_session=…`) and the full `Set-Cookie`.
async fn sign_in(
    address: &str,
    email: &str,
    password: &str,
    cookie: Option<&str>,
) -> (String, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{address}/api/auth/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "sign in as {email}");
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    (pair, set_cookie)
}

async fn call(
    address: &str,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(method, format!("{address}{path}"))
        .header("cookie", cookie)
        .header("if-match", "*");
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn me(address: &str, cookie: &str) -> (u16, Value) {
    let response = call(address, reqwest::Method::GET, "/api/auth/me", cookie, None).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn admins_and_viewers_cannot_raise_their_role_or_act_as_owner() {
    let server = server(&[]);
    let address = server.address.clone();
    server
        .create_admin("admin@example.com", "admin", "admin password 1234")
        .unwrap();
    server
        .create_admin("viewer@example.com", "viewer", "viewer password 1234")
        .unwrap();
    let (owner, _) = sign_in(&address, OWNER, OWNER_PASSWORD, None).await;
    let (admin, _) = sign_in(&address, "admin@example.com", "admin password 1234", None).await;
    let (viewer, _) = sign_in(&address, "viewer@example.com", "viewer password 1234", None).await;
    let ids = |users: &Value, email: &str| {
        users["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let users: Value = call(
        &address,
        reqwest::Method::GET,
        "/api/admin/users",
        &owner,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let (owner_id, admin_id, viewer_id) = (
        ids(&users, OWNER),
        ids(&users, "admin@example.com"),
        ids(&users, "viewer@example.com"),
    );

    use reqwest::Method;
    let attempts: Vec<(&str, &str, Method, String, Option<Value>)> = vec![
        (
            "admin",
            &admin,
            Method::PATCH,
            format!("/api/admin/users/{admin_id}"),
            Some(json!({"role": "owner"})),
        ),
        (
            "admin",
            &admin,
            Method::PATCH,
            format!("/api/admin/users/{owner_id}"),
            Some(json!({"role": "viewer"})),
        ),
        (
            "admin",
            &admin,
            Method::PATCH,
            format!("/api/admin/users/{viewer_id}"),
            Some(json!({"role": "admin"})),
        ),
        (
            "admin",
            &admin,
            Method::DELETE,
            format!("/api/admin/users/{owner_id}"),
            None,
        ),
        (
            "admin",
            &admin,
            Method::POST,
            "/api/admin/users".into(),
            Some(
                json!({"email": "new@example.com", "password": "a new password 123", "role": "owner"}),
            ),
        ),
        (
            "viewer",
            &viewer,
            Method::PATCH,
            format!("/api/admin/users/{viewer_id}"),
            Some(json!({"role": "admin"})),
        ),
        (
            "viewer",
            &viewer,
            Method::PATCH,
            format!("/api/admin/users/{viewer_id}"),
            Some(json!({"role": "owner"})),
        ),
        (
            "viewer",
            &viewer,
            Method::POST,
            "/api/admin/keys".into(),
            Some(json!({})),
        ),
        (
            "viewer",
            &viewer,
            Method::POST,
            "/api/admin/customers".into(),
            Some(json!({"name": "V", "email": "v@example.com"})),
        ),
        (
            "viewer",
            &viewer,
            Method::POST,
            "/api/admin/sync".into(),
            Some(json!({"event": "deployment_complete"})),
        ),
    ];
    for (who, cookie, method, path, body) in attempts {
        let shown = format!("{who} {method} {path} {body:?}");
        let response = call(&address, method, &path, cookie, body).await;
        assert_eq!(response.status(), 403, "{shown}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "forbidden", "{shown}");
    }
    assert_eq!(me(&address, &admin).await.1["role"], "admin");
    assert_eq!(me(&address, &viewer).await.1["role"], "viewer");
    assert_eq!(me(&address, &owner).await.1["role"], "owner");
    let users_after: Value = call(&address, Method::GET, "/api/admin/users", &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users_after["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn signing_in_issues_a_new_session_and_ends_the_one_the_request_carried() {
    let server = server(&[]);
    let address = server.address.clone();

    // A cookie planted by someone else before sign-in is neither adopted nor made valid.
    let planted = "keysync_session=attacker-chosen-session-value";
    let (fresh, set_cookie) = sign_in(&address, OWNER, OWNER_PASSWORD, Some(planted)).await;
    assert_ne!(fresh, planted);
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert_eq!(me(&address, planted).await.0, 401);
    assert_eq!(me(&address, &fresh).await.0, 200);

    // Signing in again with a live session rotates it: the old id stops working.
    let (rotated, _) = sign_in(&address, OWNER, OWNER_PASSWORD, Some(&fresh)).await;
    assert_ne!(rotated, fresh);
    assert_eq!(me(&address, &fresh).await.0, 401, "the old session ended");
    assert_eq!(me(&address, &rotated).await.0, 200);
}

#[tokio::test]
async fn state_changing_requests_from_another_site_are_refused_and_write_nothing() {
    let server = server(&[]);
    let address = server.address.clone();
    let (owner, _) = sign_in(&address, OWNER, OWNER_PASSWORD, None).await;
    let created: Value = call(
        &address,
        reqwest::Method::POST,
        "/api/admin/keys",
        &owner,
        Some(json!({})),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = created["id"].as_i64().unwrap();
    let count = || async {
        let keys: Value = call(
            &address,
            reqwest::Method::GET,
            "/api/admin/keys",
            &owner,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        (
            keys["total"].as_i64().unwrap(),
            keys["items"][0]["version"].as_i64().unwrap(),
        )
    };
    let before = count().await;
    let client = reqwest::Client::new();
    let attempts = [
        (
            reqwest::Method::POST,
            "/api/admin/keys".to_owned(),
            Some(json!({})),
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/admin/keys/{id}"),
            Some(json!({"status": "revoked"})),
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/admin/keys/{id}"),
            None,
        ),
        (reqwest::Method::POST, "/api/auth/logout".to_owned(), None),
    ];
    for (method, path, body) in &attempts {
        for (header, value) in [
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let mut request = client
                .request(method.clone(), format!("{address}{path}"))
                .header("cookie", &owner)
                .header("if-match", "*")
                .header(header, value);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                403,
                "{method} {path} with {header}: {value}"
            );
        }
    }
    assert_eq!(count().await, before, "nothing was written");
    assert_eq!(
        me(&address, &owner).await.0,
        200,
        "the session survived the cross-site logout"
    );

    // The same request from the app's own origin goes through.
    let same_origin = client
        .post(format!("{address}/api/admin/keys"))
        .header("cookie", &owner)
        .header("origin", &address)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 201);
}

#[tokio::test]
async fn sign_in_attempts_from_one_address_are_throttled_across_emails() {
    let server = server(&[
        ("KEYSYNC_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE", "8"),
        ("KEYSYNC_LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE", "0"),
    ]);
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..12 {
        let response = client
            .post(format!("{}/api/auth/login", server.address))
            .json(&json!({"email": format!("guess{i}@example.com"), "password": "wrong password"}))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").cloned();
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..8], &[401; 8], "{statuses:?}");
    assert!(statuses[8..].iter().all(|s| *s == 429), "{statuses:?}");
    assert!(retry_after.is_some_and(|v| v.to_str().unwrap().parse::<u64>().unwrap() > 0));
    // Even the right password is refused while the address is throttled.
    let response = client
        .post(format!("{}/api/auth/login", server.address))
        .json(&json!({"email": OWNER, "password": OWNER_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn a_debug_log_of_a_full_run_holds_no_key_password_session_or_webhook_secret() {
    const WEBHOOK_SECRET: &str = "whsec-4f9a1c7e2b8d6035";
    const SECOND_PASSWORD: &str = "second admin password 93kd";
    let mut server = server(&[
        ("KEYSYNC_LOG", "debug"),
        ("KEYSYNC_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("KEYSYNC_VALIDATIONS_PER_KEY_PER_MINUTE", "3"),
    ]);
    let address = server.address.clone();
    let (owner, _) = sign_in(&address, OWNER, OWNER_PASSWORD, None).await;
    let mut secrets = vec![
        OWNER_PASSWORD.to_owned(),
        SECOND_PASSWORD.to_owned(),
        WEBHOOK_SECRET.to_owned(),
        owner.split_once('=').unwrap().1.to_owned(),
    ];

    let created = call(
        &address,
        reqwest::Method::POST,
        "/api/admin/users",
        &owner,
        Some(json!({"email": "second@example.com", "password": SECOND_PASSWORD, "role": "admin"})),
    )
    .await;
    assert_eq!(created.status(), 201);
    let (second, _) = sign_in(&address, "second@example.com", SECOND_PASSWORD, None).await;
    secrets.push(second.split_once('=').unwrap().1.to_owned());
    // A failed sign-in with a password that is almost right.
    let failed = reqwest::Client::new()
        .post(format!("{address}/api/auth/login"))
        .json(&json!({"email": OWNER, "password": format!("{OWNER_PASSWORD}x")}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);

    let client = reqwest::Client::new();
    let mut keys = Vec::new();
    for i in 0..3 {
        let key: Value = call(
            &address,
            reqwest::Method::POST,
            "/api/admin/keys",
            &owner,
            Some(json!({"notes": format!("log scan {i}"), "max_activations": 1})),
        )
        .await
        .json()
        .await
        .unwrap();
        let key = key["key"].as_str().unwrap().to_owned();
        // Valid, a second machine (refused), past the per-key limit (429), deactivation.
        for fingerprint in ["machine-a", "machine-b", "machine-a", "machine-a"] {
            client
                .post(format!("{address}/api/validate-license"))
                .json(&json!({"key": key, "fingerprint": fingerprint}))
                .send()
                .await
                .unwrap();
        }
        client
            .post(format!("{address}/api/deactivate-license"))
            .json(&json!({"key": key, "fingerprint": "machine-a"}))
            .send()
            .await
            .unwrap();
        keys.push(key.clone());
        secrets.push(key);
    }
    // A key that does not exist, in the same format.
    let unknown = "SCO-ZZZZ-YYYY-XXXX-WWWW";
    client
        .post(format!("{address}/api/validate-license"))
        .json(&json!({"key": unknown}))
        .send()
        .await
        .unwrap();
    secrets.push(unknown.to_owned());

    // A signed webhook, and one with a bad signature.
    let body = json!({"event": "deployment_complete", "data": {"version": "1.2.3"}}).to_string();
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    for sig in [signature.clone(), "00".repeat(32)] {
        client
            .post(format!("{address}/api/admin/sync"))
            .header("content-type", "application/json")
            .header("x-keysync-signature", format!("t={t},v1={sig}"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
    }
    // Sign out.
    call(
        &address,
        reqwest::Method::POST,
        "/api/auth/logout",
        &second,
        None,
    )
    .await;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = server.drain_output().join("\n");
    assert!(log.lines().count() > 20, "a debug log was captured:\n{log}");
    // Keys are logged by prefix (the policy), which also shows the scan looks at the right text.
    assert!(
        keys.iter().any(|k| log.contains(&k[..8])),
        "no key prefix in the log:\n{log}"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log holds a secret ({}...):\n{log}",
            &secret[..4]
        );
        assert!(
            !log.to_lowercase().contains(&secret.to_lowercase()),
            "the log holds a secret in another case ({}...)",
            &secret[..4]
        );
    }
}
