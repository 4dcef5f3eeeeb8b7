//! Integration tests: the real server on port 0, a fresh database per test, on SQLite and on
//! PostgreSQL. One binary (this file's modules) keeps link time down.

mod helpers;

mod admin_api;
mod fake_github;
mod foundation;
mod licensing;
mod portal;
mod preferences;
mod sync;
