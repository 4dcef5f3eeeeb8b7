use leptos::prelude::*;

use crate::api;

/// The start page: what this is, and whether the server behind it is healthy.
#[component]
pub fn Home() -> impl IntoView {
    // A plain signal and a task rather than a resource: the async-resource machinery costs the
    // bundle more than this page is worth.
    let health = RwSignal::new(None::<String>);
    leptos::task::spawn_local(async move {
        let text = match api::health().await {
            Ok(h) => format!("Server healthy: {} {}", h.database.as_str(), h.version),
            Err(e) => format!("Server unavailable: {e}"),
        };
        health.try_set(Some(text));
    });
    view! {
        <section class="card">
            <h1>"keysync"</h1>
            <p>"License keys, customers and releases, always in step with the database."</p>
            <p class="status" data-testid="server-status">
                {move || health.get().unwrap_or_else(|| "Checking the server…".into())}
            </p>
            <p>
                <a href="/admin">"Open the admin dashboard"</a>
            </p>
        </section>
    }
}
