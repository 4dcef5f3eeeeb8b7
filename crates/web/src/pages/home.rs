use leptos::prelude::*;

use crate::api;

/// The start page: what this is, and whether the server behind it is healthy.
#[component]
pub fn Home() -> impl IntoView {
    let health = LocalResource::new(api::health);
    view! {
        <section class="card">
            <h1>"keysync"</h1>
            <p>"License keys, customers and releases, always in step with the database."</p>
            <p class="status" data-testid="server-status">
                <Suspense fallback=|| view! { <span>"Checking the server…"</span> }>
                    {move || {
                        health
                            .get()
                            .map(|result| match result {
                                Ok(h) => {
                                    format!("Server healthy: {} {}", h.database.as_str(), h.version)
                                }
                                Err(e) => format!("Server unavailable: {e}"),
                            })
                    }}
                </Suspense>
            </p>
        </section>
    }
}
