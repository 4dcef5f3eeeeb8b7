//! Two `keysync` processes behind one PostgreSQL database, as behind a load balancer: a session
//! made on one is honoured by the other, and a change committed through one reaches the push
//! subscribers of the other.

use std::time::Duration;

use diesel::{Connection, RunQueryDsl};
use keysync_e2e::ServerProcess;
use serde_json::json;

struct TempDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TempDatabase {
    fn create() -> Self {
        let admin_url = std::env::var("KEYSYNC_TEST_PG_URL")
            .expect("KEYSYNC_TEST_PG_URL is not set: run the suite with `cargo xtask test`");
        let name = format!("keysync_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut conn = diesel::PgConnection::establish(&admin_url).expect("reach PostgreSQL");
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .expect("create database");
        let base = admin_url.split('?').next().unwrap_or(&admin_url);
        let root = base
            .rsplit_once('/')
            .map_or(base, |(root, _)| root)
            .to_owned();
        Self {
            url: format!("{root}/{name}"),
            admin_url,
            name,
        }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

#[tokio::test]
async fn a_change_committed_through_one_instance_reaches_subscribers_of_the_other() {
    let db = TempDatabase::create();
    let env = [
        ("KEYSYNC_DATABASE_URL", db.url.as_str()),
        ("KEYSYNC_ADMIN_EMAIL", "owner@example.com"),
        ("KEYSYNC_ADMIN_PASSWORD", "multi instance password"),
    ];
    let a = ServerProcess::start(&env).unwrap();
    // B's safety-net poll is set beyond the test's patience, so only LISTEN/NOTIFY can wake it.
    let mut b_env = env.to_vec();
    b_env.push(("KEYSYNC_FEED_FALLBACK_POLL_MS", "600000"));
    let b = ServerProcess::start(&b_env).unwrap();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = client
        .post(format!("{}/api/auth/login", a.address))
        .json(&json!({"email": "owner@example.com", "password": "multi instance password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    let plain = reqwest::Client::new();
    let me_on_b = plain
        .get(format!("{}/api/auth/me", b.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let mut events = plain
        .get(format!("{}/api/admin/events", b.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let mut seen = String::new();
    while !seen.contains("event: ready") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let created: serde_json::Value = plain
        .post(format!("{}/api/admin/keys", a.address))
        .header("cookie", &cookie)
        .json(&json!({"notes": "made on A"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let wanted = format!("\"resource\":\"license_keys\",\"op\":\"created\",\"id\":{id}");
    let arrived = tokio::time::timeout(Duration::from_secs(5), async {
        while !seen.contains(&wanted) {
            let chunk = events.chunk().await.unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;

    assert_eq!(me_on_b.status(), 200, "a session made on A is valid on B");
    assert!(
        arrived.is_ok(),
        "B's subscriber received A's change; stream so far:\n{seen}"
    );
}
