use keysync_shared::{CreateKey, LicenseKeyView};
use leptos::prelude::*;

use super::Modal;
use crate::api;
use crate::data::{AdminData, NoticeKind};
use crate::format;

/// "New key": customer, expiry, seat limit and notes; on success the new key is shown once,
/// with a copy button.
#[component]
pub fn CreateKeyDialog(open: RwSignal<bool>) -> impl IntoView {
    let data = AdminData::get();
    view! {
        <Modal open=open title="New license key" testid="create-dialog">
            {move || view! { <CreateKeyForm open=open data=data /> }}
        </Modal>
    }
}

#[component]
fn CreateKeyForm(open: RwSignal<bool>, data: AdminData) -> impl IntoView {
    let customer = RwSignal::new(String::new());
    let expiry = RwSignal::new(String::new());
    let seats = RwSignal::new(String::new());
    let notes = RwSignal::new(String::new());
    let error = RwSignal::new(None::<(Option<String>, String)>);
    let saving = RwSignal::new(false);
    let created = RwSignal::new(None::<LicenseKeyView>);
    let copied = RwSignal::new(false);

    let invalid = move |field: &'static str| {
        error.with(|e| {
            e.as_ref()
                .is_some_and(|(f, _)| f.as_deref() == Some(field))
                .to_string()
        })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if saving.get_untracked() {
            return;
        }
        let expires_at = match expiry.get_untracked().trim() {
            "" => None,
            day => match format::end_of_day(day) {
                Some(at) => Some(at),
                None => {
                    error.set(Some((
                        Some("expires_at".into()),
                        "Give the expiry as a date.".into(),
                    )));
                    return;
                }
            },
        };
        let max_activations = match seats.get_untracked().trim() {
            "" => None,
            n => match n.parse::<i32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    error.set(Some((
                        Some("max_activations".into()),
                        "Seats must be a whole number.".into(),
                    )));
                    return;
                }
            },
        };
        let body = CreateKey {
            customer_id: customer.get_untracked().parse().ok(),
            expires_at,
            max_activations,
            notes: Some(notes.get_untracked()).filter(|n| !n.trim().is_empty()),
        };
        saving.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let result: Result<LicenseKeyView, _> =
                api::send_json("POST", "/api/admin/keys", &body, None).await;
            saving.try_set(false);
            match result {
                Ok(key) => {
                    created.try_set(Some(key));
                    data.after_mutation().await;
                }
                Err(failure) => {
                    let field = match &failure {
                        api::ApiFailure::Server { body, .. } => body
                            .error
                            .details
                            .get("field")
                            .and_then(|f| f.as_str())
                            .map(str::to_owned),
                        api::ApiFailure::Network(_) => None,
                    };
                    error.try_set(Some((field, failure.message())));
                }
            }
        });
    };
    let copy = move |_| {
        let Some(key) = created.get_untracked() else {
            return;
        };
        if let Some(window) = web_sys::window() {
            let promise = window.navigator().clipboard().write_text(&key.key);
            leptos::task::spawn_local(async move {
                if wasm_bindgen_futures::JsFuture::from(promise).await.is_ok() {
                    copied.try_set(true);
                } else {
                    data.say(
                        NoticeKind::Error,
                        "Copying was refused by the browser: select the key and copy it by hand.",
                    );
                }
            });
        }
    };
    let customers = move || {
        data.customers
            .with(|c| c.as_ref().map(|p| p.items.clone()).unwrap_or_default())
    };

    move || {
        match created.get() {
        Some(key) => {
            view! {
                <div class="created-key">
                    <p>
                        "The key was created. Copy it now and hand it to the customer."
                    </p>
                    <div class="key-output">
                        <output class="mono" data-testid="new-key-value">
                            {key.key.clone()}
                        </output>
                        <button
                            type="button"
                            class="btn btn-small"
                            data-testid="copy-key"
                            on:click=copy
                        >
                            {move || if copied.get() { "Copied" } else { "Copy" }}
                        </button>
                    </div>
                    <div class="modal-actions">
                        <button
                            type="button"
                            class="btn btn-primary"
                            data-testid="create-done"
                            autofocus
                            on:click=move |_| open.set(false)
                        >
                            "Done"
                        </button>
                    </div>
                </div>
            }
                .into_any()
        }
        None => {
            view! {
                <form class="form" on:submit=submit novalidate>
                    <label for="create-customer">"Customer"</label>
                    <select
                        id="create-customer"
                        data-testid="create-customer"
                        aria-invalid=move || invalid("customer_id")
                        on:change=move |ev| customer.set(event_target_value(&ev))
                    >
                        <option value="">"No customer"</option>
                        <For
                            each=customers
                            key=|c| c.id
                            children=move |c| {
                                view! { <option value=c.id.to_string()>{format!("{} ({})", c.name, c.email)}</option> }
                            }
                        />
                    </select>
                    <label for="create-expiry">"Expires on " <span class="optional">"(optional)"</span></label>
                    <input
                        id="create-expiry"
                        type="date"
                        data-testid="create-expiry"
                        aria-invalid=move || invalid("expires_at")
                        bind:value=expiry
                    />
                    <label for="create-seats">"Seats " <span class="optional">"(most activations, optional)"</span></label>
                    <input
                        id="create-seats"
                        type="number"
                        min="1"
                        max="100000"
                        inputmode="numeric"
                        data-testid="create-max-activations"
                        aria-invalid=move || invalid("max_activations")
                        bind:value=seats
                    />
                    <label for="create-notes">"Notes " <span class="optional">"(optional)"</span></label>
                    <textarea
                        id="create-notes"
                        rows="3"
                        maxlength="2000"
                        data-testid="create-notes"
                        aria-invalid=move || invalid("notes")
                        bind:value=notes
                    ></textarea>
                    {move || {
                        error
                            .get()
                            .map(|(_, message)| {
                                view! {
                                    <p class="form-error" role="alert" data-testid="create-error">
                                        {message}
                                    </p>
                                }
                            })
                    }}
                    <div class="modal-actions">
                        <button type="button" class="btn" on:click=move |_| open.set(false)>
                            "Cancel"
                        </button>
                        <button
                            type="submit"
                            class="btn btn-primary"
                            data-testid="create-submit"
                            aria-busy=move || saving.get().to_string()
                            disabled=move || saving.get()
                        >
                            {move || if saving.get() { "Creating…" } else { "Create key" }}
                        </button>
                    </div>
                </form>
            }
                .into_any()
        }
    }
    }
}
