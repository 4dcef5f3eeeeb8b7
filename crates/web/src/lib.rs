//! keysync's single-page app: the admin dashboard and the technician portal.
//!
//! Layout: `sync/` is the data-sync engine (no view code), `api` the typed client for the JSON
//! API, `data` the signed-in app's synced signals, `pages/` the routed screens, `components/`
//! reusable pieces.

pub mod api;
pub mod components;
pub mod data;
pub mod format;
pub mod notes;
pub mod outbox;
pub mod pages;
pub mod prefs;
pub mod router;
pub mod session;
pub mod sync;

use keysync_shared::AdminView;
use leptos::prelude::*;
use router::{Location, Section};
use session::{Auth, Session};

/// The root component: the router and the page shell.
#[component]
pub fn App() -> impl IntoView {
    let session = Session::provide();
    leptos::task::spawn_local(async move {
        let me = api::get_json::<AdminView>("/api/auth/me").await;
        session.0.set(match me {
            Ok(admin) => Auth::SignedIn(admin),
            Err(_) => Auth::SignedOut,
        });
    });
    let location = Location::provide();
    let section = Memo::new(move |_| router::section(&location.path()));
    view! {
        <div class="app" data-testid="app-root">
                <header class="topbar">
                    <a class="brand" href="/">
                        <span class="brand-mark" aria-hidden="true">"◆"</span>
                        "keysync"
                    </a>
                    <nav aria-label="Site">
                        <router::Link href="/admin" testid="top-admin" prefix=true>
                            "Admin"
                        </router::Link>
                        <router::Link href="/portal" testid="top-portal">
                            "Portal"
                        </router::Link>
                    </nav>
                </header>
                <main>
                    {move || match section.get() {
                        Section::Home => view! { <pages::Home /> }.into_any(),
                        Section::Portal => view! { <pages::Portal /> }.into_any(),
                        Section::Login => view! { <pages::Login /> }.into_any(),
                        Section::Admin => view! { <pages::AdminShell /> }.into_any(),
                        Section::NotFound => view! { <pages::NotFound /> }.into_any(),
                    }}
                </main>
            </div>
    }
}
