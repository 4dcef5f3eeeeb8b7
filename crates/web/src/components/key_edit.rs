//! "Edit key": notes, expiry and seat limit, sent as a `PATCH` with `If-Match` through the
//! [`Outbox`] (queued when offline; a 412 opens the conflict dialog).

use keysync_shared::{LicenseKeyView, PatchKey};
use leptos::prelude::*;

use super::Modal;
use crate::format;
use crate::outbox::{NewWrite, Outbox};
use crate::sync::config::LICENSE_KEYS;

/// The patch that turns `original` into what the form holds: only changed fields.
pub fn key_patch(
    original: &LicenseKeyView,
    notes: &str,
    expiry: &str,
    seats: &str,
) -> Result<PatchKey, (&'static str, &'static str)> {
    let expires_at = match expiry.trim() {
        "" => None,
        day => Some(format::end_of_day(day).ok_or(("expires_at", "Give the expiry as a date."))?),
    };
    let max_activations = match seats.trim() {
        "" => None,
        n => Some(
            n.parse::<i32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(("max_activations", "Seats must be a whole number above 0."))?,
        ),
    };
    let same_day = |a: &Option<chrono::DateTime<chrono::Utc>>,
                    b: &Option<chrono::DateTime<chrono::Utc>>| {
        a.map(|d| d.date_naive()) == b.map(|d| d.date_naive())
    };
    Ok(PatchKey {
        notes: (notes != original.notes).then(|| notes.to_owned()),
        expires_at: (!same_day(&expires_at, &original.expires_at)).then_some(expires_at),
        max_activations: (max_activations != original.max_activations).then_some(max_activations),
        ..PatchKey::default()
    })
}

#[component]
pub fn EditKeyDialog(editing: RwSignal<Option<LicenseKeyView>>) -> impl IntoView {
    let open = RwSignal::new(false);
    Effect::new(move |_| {
        let want = editing.with(Option::is_some);
        if open.get_untracked() != want {
            open.set(want);
        }
    });
    Effect::new(move |_| {
        if !open.get() {
            editing.set(None);
        }
    });
    view! {
        <Modal open=open title="Edit license key" testid="edit-dialog">
            {move || editing.get().map(|key| view! { <EditForm key=key editing=editing /> })}
        </Modal>
    }
}

#[component]
fn EditForm(key: LicenseKeyView, editing: RwSignal<Option<LicenseKeyView>>) -> impl IntoView {
    let notes = RwSignal::new(key.notes.clone());
    let expiry = RwSignal::new(key.expires_at.map(|d| format::date(&d)).unwrap_or_default());
    let seats = RwSignal::new(
        key.max_activations
            .map(|n| n.to_string())
            .unwrap_or_default(),
    );
    let error = RwSignal::new(None::<String>);
    let saving = RwSignal::new(false);
    let original = StoredValue::new(key.clone());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if saving.get_untracked() {
            return;
        }
        let key = original.get_value();
        let patch = match key_patch(
            &key,
            &notes.get_untracked(),
            &expiry.get_untracked(),
            &seats.get_untracked(),
        ) {
            Ok(p) => p,
            Err((_, message)) => {
                error.set(Some(message.into()));
                return;
            }
        };
        if patch == PatchKey::default() {
            editing.set(None);
            return;
        }
        let Some(outbox) = Outbox::get() else {
            return;
        };
        let write = NewWrite {
            method: "PATCH".into(),
            path: format!("/api/admin/keys/{}", key.id),
            body: serde_json::to_string(&patch).ok(),
            if_match: format!("\"v{}\"", key.version),
            label: format!("Edit {}", key.key),
            source: LICENSE_KEYS.into(),
        };
        outbox.submit(
            write,
            saving,
            move || {
                editing.try_set(None);
            },
            move |failure| {
                error.try_set(Some(failure.message()));
            },
        );
    };
    view! {
        <form class="form" on:submit=submit data-testid="edit-form">
            <p class="mono">{key.key.clone()}</p>
            <div class="field">
                <label for="edit-notes">"Notes"</label>
                <textarea
                    id="edit-notes"
                    data-testid="edit-notes"
                    prop:value=move || notes.get()
                    on:input=move |ev| notes.set(event_target_value(&ev))
                ></textarea>
            </div>
            <div class="field">
                <label for="edit-expiry">"Expires on (empty: never)"</label>
                <input
                    id="edit-expiry"
                    type="date"
                    data-testid="edit-expiry"
                    prop:value=move || expiry.get()
                    on:input=move |ev| expiry.set(event_target_value(&ev))
                />
            </div>
            <div class="field">
                <label for="edit-seats">"Max activations (empty: unlimited)"</label>
                <input
                    id="edit-seats"
                    type="number"
                    min="1"
                    data-testid="edit-seats"
                    prop:value=move || seats.get()
                    on:input=move |ev| seats.set(event_target_value(&ev))
                />
            </div>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert" data-testid="edit-error">{e}</p> })}
            <div class="modal-actions">
                <button type="button" class="btn" on:click=move |_| editing.set(None)>
                    "Cancel"
                </button>
                <button type="submit" class="btn btn-primary" data-testid="edit-save" disabled=move || saving.get()>
                    {move || if saving.get() { "Saving…" } else { "Save" }}
                </button>
            </div>
        </form>
    }
}
