//! The foundation: health, errors, SPA serving, migrations, owner bootstrap.

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::MigrationHarness;
use keysync_api::admins::{ensure_owner, OwnerBootstrap};
use keysync_api::db::{AnyConnection, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
use keysync_api::schema::{admin_users, audit_logs, changes};
use keysync_api::{password, with_store};
use keysync_shared::{ErrorBody, Health};

use crate::helpers::{fake_dist, spawn_app, spawn_app_with, Backend};
use crate::on_both_backends;

on_both_backends!(
    health_reports_ok_with_the_engine_and_version,
    unknown_api_routes_answer_json_404,
    client_routes_fall_back_to_the_spa_shell,
    a_missing_build_serves_a_page_that_says_how_to_build_it,
    every_migration_reverts_cleanly_and_reapplies,
    the_first_start_creates_exactly_one_owner,
);

async fn health_reports_ok_with_the_engine_and_version(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get("/api/health").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let health: Health = response.json().await.unwrap();
    assert_eq!(health.status, "ok");
    assert_eq!(
        health.database.as_str(),
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
}

async fn unknown_api_routes_answer_json_404(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get("/api/no-such-thing").await;

    assert_eq!(response.status(), 404);
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error.code, "not_found");
    assert!(body.error.message.contains("/api/no-such-thing"));
}

async fn client_routes_fall_back_to_the_spa_shell(backend: Backend) {
    let (_dir, dist) = fake_dist("spa-shell-marker");
    let app = spawn_app_with(backend, |s| s.dist_dir = dist).await;

    let deep_link = app.get("/admin/keys").await;
    let asset = app.get("/app.css").await;
    let api_miss = app.get("/api/admin/nothing").await;

    assert_eq!(deep_link.status(), 200);
    let csp = deep_link.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src 'self' 'unsafe-inline'"));
    assert_eq!(deep_link.headers()["x-content-type-options"], "nosniff");
    assert!(deep_link.text().await.unwrap().contains("spa-shell-marker"));
    assert_eq!(asset.status(), 200);
    assert!(asset.text().await.unwrap().contains("color: black"));
    assert_eq!(
        api_miss.status(),
        404,
        "API misses never get the HTML shell"
    );
}

async fn a_missing_build_serves_a_page_that_says_how_to_build_it(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get("/admin").await;

    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("cargo xtask run"));
}

async fn every_migration_reverts_cleanly_and_reapplies(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut conn = app.db.get_blocking().unwrap();

    let (reverted, reapplied) = match &mut conn {
        AnyConnection::Sqlite(c) => (
            c.revert_all_migrations(SQLITE_MIGRATIONS).unwrap().len(),
            c.run_pending_migrations(SQLITE_MIGRATIONS).unwrap().len(),
        ),
        AnyConnection::Postgres(c) => (
            c.revert_all_migrations(POSTGRES_MIGRATIONS).unwrap().len(),
            c.run_pending_migrations(POSTGRES_MIGRATIONS).unwrap().len(),
        ),
    };

    assert!(reverted > 0);
    assert_eq!(reverted, reapplied);
    let tables_after_revert_and_reapply = with_store!(&mut conn, |c| admin_users::table
        .count()
        .get_result::<i64>(c));
    assert_eq!(tables_after_revert_and_reapply, Ok(0));
}

async fn the_first_start_creates_exactly_one_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut conn = app.db.get_blocking().unwrap();

    let first = with_store!(&mut conn, |c| ensure_owner(c, "Owner@Example.com", None)).unwrap();
    let second = with_store!(&mut conn, |c| ensure_owner(
        c,
        "other@example.com",
        Some("another password")
    ))
    .unwrap();

    let OwnerBootstrap::Generated {
        email,
        password: generated,
    } = first
    else {
        panic!("expected a generated password, got {first:?}");
    };
    assert_eq!(email, "owner@example.com");
    assert!(matches!(second, OwnerBootstrap::Existing));
    let (roles, hash): (Vec<String>, String) = with_store!(&mut conn, |c| {
        let roles = admin_users::table
            .select(admin_users::role)
            .load::<String>(c)
            .unwrap();
        let hash = admin_users::table
            .select(admin_users::password_hash)
            .first::<String>(c)
            .unwrap();
        (roles, hash)
    });
    assert_eq!(roles, vec!["owner".to_string()]);
    assert!(password::verify(&generated, &hash));
    let (audits, feed): (i64, i64) = with_store!(&mut conn, |c| (
        audit_logs::table
            .filter(audit_logs::action.eq("admin.created"))
            .count()
            .get_result(c)
            .unwrap(),
        changes::table
            .filter(changes::resource.eq("admin_users"))
            .count()
            .get_result(c)
            .unwrap()
    ));
    assert_eq!(
        (audits, feed),
        (1, 1),
        "the creation is audited and on the change feed"
    );
}

#[derive(QueryableByName)]
struct PragmaValue {
    #[diesel(sql_type = Text)]
    value: String,
}

#[tokio::test]
async fn sqlite_connections_use_wal_and_enforce_foreign_keys() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut conn = app.db.get_blocking().unwrap();
    let AnyConnection::Sqlite(c) = &mut conn else {
        unreachable!()
    };

    let journal: PragmaValue =
        diesel::sql_query("SELECT journal_mode AS value FROM pragma_journal_mode")
            .get_result(&mut **c)
            .unwrap();
    let fk: PragmaValue =
        diesel::sql_query("SELECT CAST(foreign_keys AS TEXT) AS value FROM pragma_foreign_keys")
            .get_result(&mut **c)
            .unwrap();
    let sync: PragmaValue =
        diesel::sql_query("SELECT CAST(synchronous AS TEXT) AS value FROM pragma_synchronous")
            .get_result(&mut **c)
            .unwrap();

    assert_eq!(journal.value, "wal");
    assert_eq!(fk.value, "1");
    assert_eq!(sync.value, "1", "synchronous = NORMAL");
}

#[tokio::test]
async fn health_is_503_with_the_json_error_when_postgres_is_gone() {
    let mut app = spawn_app(Backend::Postgres).await;
    assert_eq!(app.get("/api/health").await.status(), 200);

    app.drop_pg_database();
    let response = app.get("/api/health").await;

    assert_eq!(response.status(), 503);
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error.code, "service_unavailable");
    assert!(body.error.message.contains("postgres"));
}
