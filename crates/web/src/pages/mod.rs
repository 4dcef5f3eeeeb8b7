//! Routed screens.

mod dashboard;
mod home;
mod keys;
mod login;
mod not_found;
mod shell;

pub use dashboard::Dashboard;
pub use home::Home;
pub use keys::Keys;
pub use login::Login;
pub use not_found::NotFound;
pub use shell::AdminShell;
