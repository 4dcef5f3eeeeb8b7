use leptos::prelude::*;

/// One number on the dashboard. Keeps its size while loading so nothing jumps.
#[component]
pub fn StatCard(
    label: &'static str,
    testid: &'static str,
    #[prop(into)] value: Signal<Option<String>>,
    /// A second line, e.g. the all-time figure under a 24-hour one.
    #[prop(optional, into)]
    hint: Option<Signal<String>>,
    #[prop(optional)] tone: Option<&'static str>,
) -> impl IntoView {
    view! {
        <div class=format!("stat-card {}", tone.unwrap_or("")) data-testid=testid>
            <div class="stat-label">{label}</div>
            <div class="stat-value" aria-busy=move || value.with(Option::is_none).to_string()>
                {move || value.get().unwrap_or_else(|| "—".into())}
            </div>
            {hint.map(|h| view! { <div class="stat-hint">{move || h.get()}</div> })}
        </div>
    }
}
