//! The header's count of writes waiting in the offline queue, with the list behind it.

use leptos::prelude::*;

use crate::outbox::Outbox;

#[component]
pub fn PendingBadge() -> impl IntoView {
    let Some(outbox) = Outbox::get() else {
        return ().into_any();
    };
    let count = move || outbox.pending.with(Vec::len);
    let any = move || count() > 0;
    view! {
        <Show when=any>
            <details class="pending" data-testid="pending">
                <summary class="badge badge-pending" data-testid="pending-count" data-count=move || count().to_string()>
                    {move || format!("{} pending", count())}
                </summary>
                <ul class="pending-list" aria-label="Changes waiting to be sent">
                    <For
                        each=move || outbox.pending.get()
                        key=|w| w.id
                        children=move |w| {
                            let id = w.id;
                            view! {
                                <li data-testid="pending-item">
                                    <span>{w.label.clone()}</span>
                                    <button
                                        type="button"
                                        class="btn btn-small btn-link"
                                        on:click=move |_| outbox.discard(id)
                                    >
                                        "Discard"
                                    </button>
                                </li>
                            }
                        }
                    />
                </ul>
            </details>
        </Show>
    }
    .into_any()
}
