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
pub mod session;
pub mod sync;

use keysync_shared::AdminView;
use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;
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
    view! {
        <Router>
            <div class="app" data-testid="app-root">
                <header class="topbar">
                    <a class="brand" href="/">
                        <span class="brand-mark" aria-hidden="true">"◆"</span>
                        "keysync"
                    </a>
                    <nav aria-label="Site">
                        <A href="/admin" attr:data-testid="top-admin">
                            "Admin"
                        </A>
                        <A href="/portal" attr:data-testid="top-portal">
                            "Portal"
                        </A>
                    </nav>
                </header>
                <main>
                    <Routes fallback=pages::NotFound>
                        <Route path=path!("/") view=pages::Home />
                        <Route path=path!("/portal") view=pages::Portal />
                        <Route path=path!("/login") view=pages::Login />
                        <pages::AdminRoutes />
                    </Routes>
                </main>
            </div>
        </Router>
    }
}
