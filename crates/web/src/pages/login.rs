use keysync_shared::{AdminView, LoginRequest};
use leptos::prelude::*;

use crate::api;
use crate::session::{Auth, Session};
use leptos_router::components::Redirect;

/// `/login`: email and password; on success, the dashboard.
#[component]
pub fn Login() -> impl IntoView {
    let session = Session::get();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let body = LoginRequest {
            email: email.get_untracked().trim().to_owned(),
            password: password.get_untracked(),
        };
        if body.email.is_empty() || body.password.is_empty() {
            error.set(Some("Enter your email and password.".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let result: Result<AdminView, _> =
                api::send_json("POST", "/api/auth/login", &body, None).await;
            busy.try_set(false);
            match result {
                Ok(admin) => {
                    password.try_set(String::new());
                    session.0.try_set(Auth::SignedIn(admin));
                }
                Err(failure) => {
                    error.try_set(Some(failure.message()));
                }
            }
        });
    };
    view! {
        {move || {
            matches!(session.0.get(), Auth::SignedIn(_))
                .then(|| view! { <Redirect path="/admin" options=super::shell::replace() /> })
        }}
        <section class="login-page">
            <form class="card login-card" on:submit=submit data-testid="login-form" novalidate>
                <h1>"Sign in to keysync"</h1>
                <p class="muted">"License keys, customers and releases, always current."</p>
                <label for="login-email">"Email"</label>
                <input
                    id="login-email"
                    type="email"
                    autocomplete="username"
                    required
                    autofocus
                    data-testid="login-email"
                    bind:value=email
                />
                <label for="login-password">"Password"</label>
                <input
                    id="login-password"
                    type="password"
                    autocomplete="current-password"
                    required
                    data-testid="login-password"
                    bind:value=password
                />
                {move || {
                    error
                        .get()
                        .map(|e| {
                            view! {
                                <p class="form-error" role="alert" data-testid="login-error">
                                    {e}
                                </p>
                            }
                        })
                }}
                <button
                    type="submit"
                    class="btn btn-primary btn-block"
                    data-testid="login-submit"
                    aria-busy=move || busy.get().to_string()
                    disabled=move || busy.get()
                >
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </section>
    }
}
