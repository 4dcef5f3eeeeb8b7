//! Reusable pieces of the admin screens.

mod chart;
mod confirm_dialog;
pub mod conflict_dialog;
mod create_dialog;
pub mod key_edit;
pub mod key_table;
mod modal;
mod pending_badge;
mod stat_card;
pub mod sync_health;
mod sync_indicator;

pub use chart::ValidationsChart;
pub use confirm_dialog::{ConfirmDialog, ConfirmRequest};
pub use conflict_dialog::ConflictHost;
pub use create_dialog::CreateKeyDialog;
pub use key_edit::EditKeyDialog;
pub use key_table::KeyTable;
pub use modal::Modal;
pub use pending_badge::PendingBadge;
pub use stat_card::StatCard;
pub use sync_health::SyncHealthPanel;
pub use sync_indicator::SyncBar;
