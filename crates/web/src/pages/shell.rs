use leptos::prelude::*;

use crate::api;
use crate::components::{ConflictHost, PendingBadge, SyncBar};
use crate::data::{provide_admin_data, AdminData, NoticeKind};
use crate::session::{Auth, Session};
use leptos_router::components::{Outlet, Redirect, A};
use leptos_router::NavigateOptions;

/// `/admin/*`: signed-in admins only. Everyone else goes to `/login`.
#[component]
pub fn AdminShell() -> impl IntoView {
    let session = Session::get();
    let state = Memo::new(move |_| match session.0.get() {
        Auth::Checking => 0u8,
        Auth::SignedOut => 1,
        Auth::SignedIn(_) => 2,
    });
    move || match state.get() {
        0 => view! { <p class="loading-page" aria-busy="true">"Loading…"</p> }.into_any(),
        1 => view! { <Redirect path="/login" options=replace() /> }.into_any(),
        _ => view! { <SignedInShell session=session /> }.into_any(),
    }
}

#[component]
fn SignedInShell(session: Session) -> impl IntoView {
    let data = provide_admin_data(session);
    crate::outbox::Outbox::provide(data, session);
    let sign_out = move |_| {
        leptos::task::spawn_local(async move {
            let _ = api::send_empty("POST", "/api/auth/logout", None).await;
            crate::sync::shared_cache().borrow_mut().clear();
            session.0.set(Auth::SignedOut);
        });
    };
    let who = move || session.admin();
    view! {
        <div class="shell">
            <aside class="sidebar">
                <nav aria-label="Admin">
                    <A href="/admin" exact=true attr:data-testid="nav-dashboard">
                        "Dashboard"
                    </A>
                    <A href="/admin/keys" attr:data-testid="nav-keys">
                        "License keys"
                    </A>
                    <A href="/admin/customers" attr:data-testid="nav-customers">
                        "Customers"
                    </A>
                    <A href="/admin/users" attr:data-testid="nav-users">
                        "Admin users"
                    </A>
                    <A href="/admin/activity" attr:data-testid="nav-activity">
                        "Activity"
                    </A>
                    <A href="/admin/settings" attr:data-testid="nav-settings">
                        "Settings"
                    </A>
                </nav>
                <div class="sidebar-user" data-testid="current-user">
                    <span class="user-email">{move || who().map(|a| a.email).unwrap_or_default()}</span>
                    <span class="badge badge-role">
                        {move || who().map(|a| a.role.as_str()).unwrap_or_default()}
                    </span>
                    <button type="button" class="btn btn-small" data-testid="sign-out" on:click=sign_out>
                        "Sign out"
                    </button>
                </div>
            </aside>
            <div class="shell-main">
                <div class="shell-bar">
                    <SyncBar />
                    <PendingBadge />
                </div>
                <Notice data=data />
                <Outlet />
            </div>
            <ConflictHost />
        </div>
    }
}

#[component]
fn Notice(data: AdminData) -> impl IntoView {
    view! {
        <div class="notice-area" role="status" aria-live="polite">
            {move || {
                data.notice
                    .get()
                    .map(|n| {
                        let class = match n.kind {
                            NoticeKind::Success => "notice notice-success",
                            NoticeKind::Error => "notice notice-error",
                        };
                        view! {
                            <div class=class data-testid="notice">
                                <span>{n.text}</span>
                                <button
                                    type="button"
                                    class="notice-close"
                                    aria-label="Dismiss"
                                    on:click=move |_| data.notice.set(None)
                                >
                                    "×"
                                </button>
                            </div>
                        }
                    })
            }}
        </div>
    }
}

/// Guards replace the history entry, so Back does not bounce into the redirect again.
pub(crate) fn replace() -> NavigateOptions {
    NavigateOptions {
        replace: true,
        ..NavigateOptions::default()
    }
}
