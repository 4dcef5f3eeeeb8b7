//! Wire types shared by the keysync API (`keysync-api`) and its browser client (`keysync-web`).
//!
//! Policy: this crate holds data shapes only. It depends on serde, serde_json and chrono and on
//! nothing that cannot compile to `wasm32-unknown-unknown`; `cargo xtask test` checks both.

pub mod admins;
pub mod audit;
pub mod customers;
pub mod error;
pub mod health;
pub mod keys;
pub mod license;
pub mod page;
pub mod patch;
pub mod preferences;
pub mod releases;
pub mod roles;
pub mod stats;
pub mod sync;
pub mod sync_metrics;

pub use admins::{AdminView, CreateAdmin, LoginRequest, PatchAdmin};
pub use audit::AuditLogView;
pub use customers::{CreateCustomer, CustomerView, PatchCustomer};
pub use error::{ErrorBody, ErrorDetail};
pub use health::{DatabaseKind, Health};
pub use keys::{CreateKey, KeyBatch, KeyBatchResult, KeyStatus, LicenseKeyView, PatchKey};
pub use license::{
    DeactivateLicenseRequest, DeactivateLicenseResponse, DeactivationCode, LicenseInfo, ProofSide,
    ProofStep, PublicKeyView, SignedPayload, ValidateLicenseRequest, ValidateLicenseResponse,
    ValidationCode, BATCH_ROOT_CONTEXT,
};
pub use page::Page;
pub use preferences::{SourceIntervals, SyncLogLevel, SyncPreferences};
pub use releases::{DownloadLink, DownloadRequest, LatestRelease, ReleaseAsset};
pub use roles::AdminRole;
pub use stats::DashboardStats;
pub use sync::{Change, SyncResponse, WebhookEvent};
pub use sync_metrics::{
    MetricsAccepted, PushHealth, PushSample, SourceHealth, SourceSample, SyncHealth,
    SyncMetricsBatch,
};
