//! HTTP handlers, one module per resource, and the route table.
//!
//! Handlers parse input, call persistence through [`crate::db::Database::run`], and shape the
//! response; they never build SQL. Every route is declared once in [`api_routes!`], which both
//! registers it and lists it in [`ROUTES`], the source of `GET /api/openapi.json`, so the
//! document cannot drift from the router and tests can walk every route.

pub mod audit_logs;
pub mod auth;
pub mod customers;
pub mod events;
pub mod health;
pub mod license_keys;
pub mod licensing;
pub mod openapi;
pub mod preferences;
pub mod releases;
pub mod stats;
pub mod sync;
pub mod sync_metrics;
pub mod users;

use actix_web::{web, HttpRequest, HttpResponse};
use keysync_shared::AdminRole;

use crate::error::ApiError;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A signed-in admin with at least this role.
    Admin(AdminRole),
}

/// One route as documented: method, path below `/api`, access, one-line summary.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub operation: &'static str,
}

macro_rules! api_routes {
    ($( $method:ident $path:literal [$access:expr] $summary:literal => $handler:path; )*) => {
        /// Every `/api` route, in registration order.
        pub const ROUTES: &[RouteDoc] = &[
            $( RouteDoc {
                method: stringify!($method),
                path: $path,
                access: $access,
                summary: $summary,
                operation: stringify!($handler),
            }, )*
        ];

        fn register(scope: actix_web::Scope) -> actix_web::Scope {
            scope $( .route($path, web::$method().to($handler)) )*
        }
    };
}

use Access::{Admin as Signed, Public};
const VIEWER: AdminRole = AdminRole::Viewer;
const ADMIN: AdminRole = AdminRole::Admin;
const OWNER: AdminRole = AdminRole::Owner;

api_routes! {
    get "/health" [Public] "Is this instance able to serve, and on which database" => health::get_health;
    get "/openapi.json" [Public] "This document" => openapi::get_openapi;
    post "/validate-license" [Public] "Validate a license key (customer software); signed answer" => licensing::validate_license;
    post "/deactivate-license" [Public] "Free the seat a machine holds on a license key" => licensing::deactivate_license;
    get "/license/public-key" [Public] "The Ed25519 key that signs validation answers" => licensing::public_key;
    get "/releases/latest" [Public] "The latest published release of the product" => releases::latest_release;
    post "/releases/{tag}/assets/{asset}/download" [Public] "Validate a key and get an asset's download URL" => releases::download_asset;
    get "/releases/{tag}/assets/{asset}/download" [Public] "Validate the key in X-License-Key and redirect to the asset" => releases::download_asset_redirect;
    post "/auth/login" [Public] "Sign in; sets the session cookie" => auth::login;
    post "/auth/logout" [Public] "Sign out; ends the session" => auth::logout;
    get "/auth/me" [Signed(VIEWER)] "The signed-in admin" => auth::me;
    get "/admin/me/preferences" [Signed(VIEWER)] "Your sync preferences (defaults until saved)" => preferences::get_my_preferences;
    put "/admin/me/preferences" [Signed(VIEWER)] "Save your sync preferences; your other browsers apply them" => preferences::put_my_preferences;
    get "/admin/stats" [Signed(VIEWER)] "Dashboard statistics" => stats::get_stats;
    get "/admin/keys" [Signed(VIEWER)] "List license keys" => license_keys::list_keys;
    post "/admin/keys" [Signed(ADMIN)] "Create a license key" => license_keys::create_key;
    post "/admin/keys/batch" [Signed(ADMIN)] "Create, revoke, suspend and delete keys in one transaction" => license_keys::batch_keys;
    get "/admin/keys/{id}" [Signed(VIEWER)] "One license key" => license_keys::get_key;
    patch "/admin/keys/{id}" [Signed(ADMIN)] "Change a license key (If-Match required)" => license_keys::update_key;
    delete "/admin/keys/{id}" [Signed(ADMIN)] "Delete a license key (If-Match required)" => license_keys::delete_key;
    get "/admin/customers" [Signed(VIEWER)] "List customers" => customers::list_customers;
    post "/admin/customers" [Signed(ADMIN)] "Create a customer" => customers::create_customer;
    get "/admin/customers/{id}" [Signed(VIEWER)] "One customer" => customers::get_customer;
    patch "/admin/customers/{id}" [Signed(ADMIN)] "Change a customer (If-Match required)" => customers::update_customer;
    delete "/admin/customers/{id}" [Signed(ADMIN)] "Delete a customer; ?cascade=revoke revokes its keys" => customers::delete_customer;
    get "/admin/users" [Signed(VIEWER)] "List admin users" => users::list_users;
    post "/admin/users" [Signed(OWNER)] "Create an admin user" => users::create_user;
    get "/admin/users/{id}" [Signed(VIEWER)] "One admin user" => users::get_user;
    patch "/admin/users/{id}" [Signed(OWNER)] "Change an admin's name, role or password (If-Match required)" => users::update_user;
    delete "/admin/users/{id}" [Signed(OWNER)] "Delete an admin user (If-Match required)" => users::delete_user;
    get "/admin/audit-logs" [Signed(VIEWER)] "The activity log, newest first" => audit_logs::list_audit_logs;
    get "/admin/sync" [Signed(VIEWER)] "Changes since a cursor or time; ?wait= long-polls" => sync::get_sync;
    post "/admin/sync" [Signed(ADMIN)] "Webhook: HMAC-signed (X-Keysync-Signature) or an admin session" => sync::post_webhook;
    post "/admin/sync/metrics" [Signed(VIEWER)] "Report this browser's sync figures (fetch times, bytes, 304s, errors, push uptime)" => sync_metrics::post_sync_metrics;
    get "/admin/sync/metrics" [Signed(VIEWER)] "Sync health per source, from every browser's reports to this instance" => sync_metrics::get_sync_metrics;
    get "/admin/events" [Signed(VIEWER)] "Server-sent events, one per change" => events::get_events;
}

/// Mounts every `/api` route on `cfg`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(register(web::scope("/api")).default_service(web::to(api_not_found)))
        .route("/metrics", web::get().to(sync_metrics::prometheus));
}

/// Unknown `/api/...` paths answer JSON, never the SPA's HTML.
async fn api_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no API route for {} {}",
        req.method(),
        req.path()
    )))
}
