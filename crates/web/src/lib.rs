//! keysync's single-page app: the admin dashboard and the technician portal.
//!
//! Layout: `pages/` holds routed screens, `components/` reusable pieces, `api` the typed client
//! for the JSON API.

pub mod api;
pub mod pages;
pub mod sync;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

/// The root component: the router and the page shell.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <div class="app" data-testid="app-root">
                <header class="topbar">
                    <a class="brand" href="/">"keysync"</a>
                    <nav>
                        <a href="/admin">"Admin"</a>
                        <a href="/portal">"Portal"</a>
                    </nav>
                </header>
                <main>
                    <Routes fallback=pages::NotFound>
                        <Route path=path!("/") view=pages::Home />
                        <Route path=path!("/admin") view=pages::Home />
                        <Route path=path!("/portal") view=pages::Home />
                    </Routes>
                </main>
            </div>
        </Router>
    }
}
