//! Wire types shared by the keysync API (`keysync-api`) and its browser client (`keysync-web`).
//!
//! Policy: this crate holds data shapes only. It depends on serde, serde_json and chrono and on
//! nothing that cannot compile to `wasm32-unknown-unknown`; `cargo xtask test` checks both.

pub mod error;
pub mod health;
pub mod roles;

pub use error::{ErrorBody, ErrorDetail};
pub use health::{DatabaseKind, Health};
pub use roles::AdminRole;
