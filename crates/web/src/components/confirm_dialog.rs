use leptos::prelude::*;

use super::Modal;

/// What a confirmation asks.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmRequest {
    pub message: String,
    pub confirm_label: String,
    pub danger: bool,
}

/// "Are you sure?" for destructive actions. `on_confirm` runs when the person agrees.
#[component]
pub fn ConfirmDialog(
    request: RwSignal<Option<ConfirmRequest>>,
    on_confirm: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    // The dialog is open while there is a request; closing it (Escape, Cancel) drops the
    // request. Both directions only write on a real change: a signal notifies on every write,
    // and two effects writing each other unconditionally would loop forever.
    let open = RwSignal::new(false);
    Effect::new(move |_| {
        let want = request.with(Option::is_some);
        if open.get_untracked() != want {
            open.set(want);
        }
    });
    Effect::new(move |_| {
        if !open.get() && request.with_untracked(Option::is_some) {
            request.set(None);
        }
    });
    let on_confirm = std::sync::Arc::new(on_confirm);
    view! {
        <Modal open=open title="Please confirm" testid="confirm-dialog">
            {
                let on_confirm = on_confirm.clone();
                move || {
                    let on_confirm = on_confirm.clone();
                    request
                        .get()
                        .map(|r| {
                            view! {
                                <p class="confirm-message">{r.message.clone()}</p>
                                <div class="modal-actions">
                                    <button
                                        type="button"
                                        class="btn"
                                        data-testid="confirm-cancel"
                                        on:click=move |_| open.set(false)
                                    >
                                        "Cancel"
                                    </button>
                                    <button
                                        type="button"
                                        class=if r.danger { "btn btn-danger" } else { "btn btn-primary" }
                                        data-testid="confirm-ok"
                                        autofocus
                                        on:click=move |_| {
                                            on_confirm();
                                            open.set(false);
                                        }
                                    >
                                        {r.confirm_label.clone()}
                                    </button>
                                </div>
                            }
                        })
                }
            }
        </Modal>
    }
}
