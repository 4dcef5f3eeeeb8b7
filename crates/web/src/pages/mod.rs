//! Routed screens.

mod dashboard;
mod home;
mod keys;
mod login;
mod not_found;
mod portal;
mod settings;
mod shell;

pub use dashboard::Dashboard;
pub use home::Home;
pub use keys::Keys;
pub use login::Login;
pub use not_found::NotFound;
pub use portal::Portal;
pub use settings::Settings;
pub use shell::AdminShell;
