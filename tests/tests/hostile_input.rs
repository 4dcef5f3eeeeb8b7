//! Hostile input through the real server: arbitrary JSON, strings, path segments, query strings
//! and headers at every route of the OpenAPI document the server serves, anonymous and signed
//! in as the owner. Never a 5xx; the server is healthy afterwards; and a refused request (4xx)
//! writes nothing: the change feed's head does not move, and the only audit entries it may add
//! are the attempts the API documents as audited (failed sign-ins, license checks, downloads).

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use keysync_e2e::ServerProcess;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

const OWNER: &str = "owner@example.com";
const PASSWORD: &str = "hostile input password";

/// Refused attempts the API records on purpose.
const AUDITED_REFUSALS: &[&str] = &[
    "auth.login_failed",
    "license.validate",
    "license.deactivate",
    "release.download",
];

#[derive(Debug, Clone)]
struct Route {
    method: String,
    path: String,
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    Raw(String, &'static str),
}

#[derive(Debug, Clone)]
struct Case {
    route: usize,
    signed_in: bool,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    body: Body,
    if_match: Option<String>,
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        "[A-Z]{1,4}-[A-Z0-9]{4}(-[A-Z0-9]{4}){0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Field names the API knows, so the values behind them reach the parsers, and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "email",
            "password",
            "name",
            "role",
            "key",
            "fingerprint",
            "version",
            "notes",
            "status",
            "customer_id",
            "expires_at",
            "max_activations",
            "company",
            "event",
            "data",
            "action",
            "ids",
            "create",
            "count",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "-?[0-9]{1,25}",
        Just(String::new()),
        Just("../../etc/passwd".to_owned()),
        Just("%00%ff%".to_owned()),
        Just("9223372036854775808".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("2026-11-25T00:00:00Z".to_owned()),
        Just("'; DROP TABLE license_keys; --".to_owned()),
        "[a-zA-Z0-9=_-]{0,40}",
    ]
}

fn query_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "limit",
            "cursor",
            "sort",
            "since",
            "q",
            "status",
            "customer_id",
            "action",
            "actor",
            "role",
            "target",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

fn case(routes: usize) -> impl Strategy<Value = Case> {
    let body = prop_oneof![
        Just(Body::None),
        json_value().prop_map(Body::Json),
        json_value().prop_map(Body::Json),
        any::<String>().prop_map(|s| Body::Raw(s, "application/json")),
        any::<String>().prop_map(|s| Body::Raw(s, "text/plain")),
    ];
    (
        0..routes,
        any::<bool>(),
        prop::collection::vec(text(), 2),
        prop::collection::vec((query_key(), text()), 0..4),
        body,
        prop::option::of(prop_oneof![Just("*".to_owned()), "\"v[0-9]{1,3}\"", text()]),
    )
        .prop_map(|(route, signed_in, segments, query, body, if_match)| Case {
            route,
            signed_in,
            segments,
            query,
            body,
            if_match,
        })
}

#[derive(QueryableByName)]
struct Head {
    #[diesel(sql_type = BigInt)]
    head: i64,
}

#[derive(QueryableByName)]
struct AuditRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    action: String,
}

/// The change feed's head and the newest audit id.
fn marks(conn: &mut diesel::SqliteConnection) -> (i64, i64) {
    let head: Vec<Head> = diesel::sql_query("SELECT COALESCE(MAX(cursor), 0) AS head FROM changes")
        .load(conn)
        .unwrap();
    let audit: Vec<Head> = diesel::sql_query("SELECT COALESCE(MAX(id), 0) AS head FROM audit_logs")
        .load(conn)
        .unwrap();
    (head[0].head, audit[0].head)
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Target {
    address: String,
    routes: Vec<Route>,
    anonymous: reqwest::Client,
    owner: tokio::sync::Mutex<reqwest::Client>,
}

impl Target {
    async fn sign_in(address: &str) -> reqwest::Client {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let response = client
            .post(format!("{address}/api/auth/login"))
            .json(&json!({"email": OWNER, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        client
    }

    /// The owner's client, signed in again if a generated request ended its session.
    async fn owner(&self) -> reqwest::Client {
        let mut owner = self.owner.lock().await;
        let me = owner
            .get(format!("{}/api/auth/me", self.address))
            .send()
            .await
            .unwrap();
        if me.status() != 200 {
            *owner = Self::sign_in(&self.address).await;
        }
        owner.clone()
    }

    /// The client for `case`, resolved (and signed in again if needed) before the case's marks
    /// are taken, so a sign-in of ours is not blamed on the case.
    async fn client(&self, case: &Case) -> reqwest::Client {
        if case.signed_in {
            self.owner().await
        } else {
            self.anonymous.clone()
        }
    }

    async fn send(&self, client: reqwest::Client, case: &Case) -> (String, u16, String) {
        let route = &self.routes[case.route];
        let mut segments = case.segments.iter();
        let path: String = route
            .path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    encode(segments.next().map_or("", String::as_str))
                } else {
                    seg.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let query: Vec<String> = case
            .query
            .iter()
            // A valid `wait` holds the request open by design; anything else about it is fair game.
            .filter(|(k, v)| !(k == "wait" && v.parse::<u32>().is_ok_and(|n| n > 0)))
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let url = if query.is_empty() {
            format!("{}{path}", self.address)
        } else {
            format!("{}{path}?{}", self.address, query.join("&"))
        };
        let method = reqwest::Method::from_bytes(route.method.to_uppercase().as_bytes()).unwrap();
        let mut request = client.request(method, &url);
        if let Some(tag) = &case.if_match {
            if let Ok(value) = reqwest::header::HeaderValue::from_str(tag) {
                request = request
                    .header("if-match", value.clone())
                    .header("last-event-id", value);
            }
        }
        request = match &case.body {
            Body::None => request,
            Body::Json(v) => request.json(v),
            Body::Raw(s, content_type) => request
                .header("content-type", *content_type)
                .body(s.clone()),
        };
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        // The event stream answers 200 and then streams: its headers are the answer here.
        let body = if path == "/api/admin/events" && status == 200 {
            String::new()
        } else {
            response.text().await.unwrap_or_default()
        };
        (
            format!("{} {url}", route.method.to_uppercase()),
            status,
            body,
        )
    }
}

#[test]
fn arbitrary_input_at_every_route_is_never_a_5xx_and_a_refusal_writes_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = ServerProcess::start(&[
        ("KEYSYNC_ADMIN_EMAIL", OWNER),
        ("KEYSYNC_ADMIN_PASSWORD", PASSWORD),
        ("KEYSYNC_LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE", "0"),
        ("KEYSYNC_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE", "0"),
        ("KEYSYNC_WEBHOOK_SECRET", "hostile-input-webhook-secret"),
        ("KEYSYNC_LOG", "warn"),
    ])
    .unwrap();
    let address = server.address.clone();
    let target = runtime.block_on(async {
        let document: Value = reqwest::get(format!("{address}/api/openapi.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut routes = Vec::new();
        for (path, methods) in document["paths"].as_object().unwrap() {
            for method in methods.as_object().unwrap().keys() {
                routes.push(Route {
                    method: method.clone(),
                    path: path.clone(),
                });
            }
        }
        assert!(
            routes.len() > 20,
            "the document lists the routes: {routes:?}"
        );
        // Something for the parsers to find: a key and a customer.
        let owner = Target::sign_in(&address).await;
        owner
            .post(format!("{address}/api/admin/keys"))
            .json(&json!({"notes": "seed"}))
            .send()
            .await
            .unwrap();
        owner
            .post(format!("{address}/api/admin/customers"))
            .json(&json!({"name": "Seed", "email": "seed@example.com"}))
            .send()
            .await
            .unwrap();
        Arc::new(Target {
            anonymous: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            owner: tokio::sync::Mutex::new(owner),
            address: address.clone(),
            routes,
        })
    });
    // The runner takes a `Fn`; the connection and the tally are used one case at a time.
    let conn = std::cell::RefCell::new(
        diesel::SqliteConnection::establish(server.database_path().to_str().unwrap()).unwrap(),
    );

    let cases: u32 = std::env::var("HOSTILE_INPUT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    runner
        .run(&case(target.routes.len()), |case| {
            let client = runtime.block_on(target.client(&case));
            let (before_head, before_audit) = marks(&mut conn.borrow_mut());
            let (request, status, body) = runtime.block_on(target.send(client, &case));
            *statuses.borrow_mut().entry(status).or_default() += 1;
            prop_assert!(status < 500, "{request} → {status} {body}\n{case:?}");
            if (400..500).contains(&status) {
                // One error shape for every refusal (a 304 or 2xx has its own body).
                let error: Value = serde_json::from_str(&body).map_err(|e| {
                    TestCaseError::fail(format!("{request} → {status} not JSON ({e}): {body}"))
                })?;
                prop_assert!(
                    error["error"]["code"].is_string() && error["error"]["message"].is_string(),
                    "{request} → {status} {body}"
                );
                let (after_head, _) = marks(&mut conn.borrow_mut());
                prop_assert_eq!(
                    after_head,
                    before_head,
                    "{} → {} moved the feed",
                    request,
                    status
                );
                let added: Vec<AuditRow> =
                    diesel::sql_query("SELECT id, action FROM audit_logs WHERE id > ?")
                        .bind::<BigInt, _>(before_audit)
                        .load(&mut *conn.borrow_mut())
                        .unwrap();
                for row in added {
                    prop_assert!(
                        AUDITED_REFUSALS.contains(&row.action.as_str()),
                        "{request} → {status} wrote audit entry {} `{}`",
                        row.id,
                        row.action
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!("statuses over {cases} cases: {:?}", statuses.borrow());

    runtime.block_on(async {
        let health = reqwest::get(format!("{address}/api/health")).await.unwrap();
        assert_eq!(health.status(), 200, "the server is healthy afterwards");
    });
    let mut server = server;
    let output = server.drain_output().join("\n");
    assert!(
        !output.contains("panicked"),
        "a handler panicked:\n{output}"
    );
}
