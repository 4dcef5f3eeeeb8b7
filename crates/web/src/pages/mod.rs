//! Routed screens.

mod activity;
mod customers;
mod dashboard;
mod home;
mod keys;
mod login;
mod not_found;
mod portal;
mod settings;
mod shell;
mod users;

pub use activity::Activity;
pub use customers::Customers;
pub use dashboard::Dashboard;
pub use home::Home;
pub use keys::Keys;
pub use login::Login;
pub use not_found::NotFound;
pub use portal::Portal;
pub use settings::Settings;
pub use shell::AdminShell;
pub use users::Users;

use leptos::prelude::*;
use leptos_router::components::{ParentRoute, Route};
use leptos_router::path;

/// Every page under `/admin`, inside the signed-in shell (which stays mounted while its pages
/// change). New admin pages are added here and in the shell's navigation.
#[component(transparent)]
pub fn AdminRoutes() -> impl leptos_router::MatchNestedRoutes + Clone {
    view! {
        <ParentRoute path=path!("/admin") view=AdminShell>
            <Route path=path!("") view=Dashboard />
            <Route path=path!("/keys") view=Keys />
            <Route path=path!("/customers") view=Customers />
            <Route path=path!("/users") view=Users />
            <Route path=path!("/activity") view=Activity />
            <Route path=path!("/settings") view=Settings />
            <Route path=path!("/*any") view=NotFound />
        </ParentRoute>
    }
    .into_inner()
}
