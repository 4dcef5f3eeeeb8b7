//! keysync's API server as a library: `main.rs` parses the command line and calls in here, and
//! the integration tests start the same [`startup::Application`] on port 0.

pub mod admins;
pub mod analytics;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod expiry;
pub mod feed;
pub mod fuzzing;
pub mod http;
pub mod license_key;
pub mod licensing;
pub mod memory;
pub mod mutations;
pub mod pagination;
pub mod password;
pub mod rate_limit;
pub mod releases;
pub mod retention;
pub mod routes;
pub mod schema;
pub mod spa;
pub mod sse;
pub mod startup;
pub mod telemetry;
