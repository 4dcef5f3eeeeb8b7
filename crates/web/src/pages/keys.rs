use std::collections::BTreeSet;
use std::time::Duration;

use keysync_shared::keys::KeyBatchResult;
use keysync_shared::{KeyBatch, KeyStatus, LicenseKeyView, PatchKey};
use leptos::prelude::*;

use crate::api::{self, ApiFailure};
use crate::components::key_table::KeyAction;
use crate::components::{ConfirmDialog, ConfirmRequest, CreateKeyDialog, EditKeyDialog, KeyTable};
use crate::data::{AdminData, KeyQuery, NoticeKind, PAGE_SIZE};
use crate::format;
use crate::session::Session;
use crate::sync::config::LICENSE_KEYS;

/// What waits for confirmation.
#[derive(Debug, Clone, PartialEq)]
enum Pending {
    Revoke(LicenseKeyView),
    Delete(LicenseKeyView),
    Batch(BatchOp, Vec<i64>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BatchOp {
    Suspend,
    Revoke,
    Delete,
}

impl BatchOp {
    fn verb(self) -> &'static str {
        match self {
            Self::Suspend => "Suspend",
            Self::Revoke => "Revoke",
            Self::Delete => "Delete",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Self::Suspend => "suspended",
            Self::Revoke => "revoked",
            Self::Delete => "deleted",
        }
    }
}

fn if_match(key: &LicenseKeyView) -> String {
    format!("\"v{}\"", key.version)
}

fn explain(failure: &ApiFailure) -> String {
    if failure.status() == Some(412) {
        "Someone changed this key in the meantime; the list now shows its current state.".into()
    } else {
        failure.message()
    }
}

async fn patch_status(
    key: &LicenseKeyView,
    status: KeyStatus,
) -> Result<LicenseKeyView, ApiFailure> {
    let patch = PatchKey {
        status: Some(status),
        ..PatchKey::default()
    };
    api::send_json(
        "PATCH",
        &format!("/api/admin/keys/{}", key.id),
        &patch,
        Some(&if_match(key)),
    )
    .await
}

/// Runs a write, reports its outcome and refreshes the affected sources.
fn mutate<F>(data: AdminData, success: String, write: F)
where
    F: std::future::Future<Output = Result<(), ApiFailure>> + 'static,
{
    leptos::task::spawn_local(async move {
        match write.await {
            Ok(()) => data.say(NoticeKind::Success, success),
            Err(failure) => {
                if failure.is_unauthorized() {
                    Session::get().expire();
                }
                data.say(NoticeKind::Error, explain(&failure));
            }
        }
        data.after_mutation().await;
    });
}

/// `/admin/keys`: search, filter, sort, pages; create; suspend, revoke, delete, alone or in
/// batches. Viewers see the table without write controls.
#[component]
pub fn Keys() -> impl IntoView {
    let data = AdminData::get();
    let can_write = Session::get().can_write();
    let selected = RwSignal::new(BTreeSet::<i64>::new());
    let creating = RwSignal::new(false);
    let editing = RwSignal::new(None::<LicenseKeyView>);
    let confirm = RwSignal::new(None::<ConfirmRequest>);
    let pending = RwSignal::new(None::<Pending>);
    let search = RwSignal::new(data.keys_query.get_untracked().q);
    let debounce = StoredValue::new(None::<TimeoutHandle>);

    // Typing searches after a short pause; Enter searches at once.
    let apply_search = move || {
        let q = search.get_untracked();
        data.keys_query.update(|query| {
            if query.q != q {
                *query = KeyQuery { q, ..query.clone() }.restart();
            }
        });
    };
    let on_search = move |ev: leptos::ev::Event| {
        search.set(event_target_value(&ev));
        if let Some(handle) = debounce.get_value() {
            handle.clear();
        }
        debounce.set_value(set_timeout_with_handle(apply_search, Duration::from_millis(250)).ok());
    };
    on_cleanup(move || {
        if let Some(handle) = debounce.get_value() {
            handle.clear();
        }
    });

    let ask = move |p: Pending| {
        let request = match &p {
            Pending::Revoke(k) => ConfirmRequest {
                message: format!(
                    "Revoke {}? Software using it stops working, and this cannot be undone.",
                    k.key
                ),
                confirm_label: "Revoke key".into(),
                danger: true,
            },
            Pending::Delete(k) => ConfirmRequest {
                message: format!(
                    "Delete {}? It disappears from every list, and this cannot be undone.",
                    k.key
                ),
                confirm_label: "Delete key".into(),
                danger: true,
            },
            Pending::Batch(op, ids) => ConfirmRequest {
                message: format!(
                    "{} {} selected key{}?",
                    op.verb(),
                    ids.len(),
                    if ids.len() == 1 { "" } else { "s" }
                ),
                confirm_label: format!("{} {}", op.verb(), ids.len()),
                danger: *op != BatchOp::Suspend,
            },
        };
        pending.set(Some(p));
        confirm.set(Some(request));
    };
    let run_batch = move |op: BatchOp, ids: Vec<i64>| {
        let mut batch = KeyBatch::default();
        match op {
            BatchOp::Suspend => batch.suspend = ids.clone(),
            BatchOp::Revoke => batch.revoke = ids.clone(),
            BatchOp::Delete => batch.delete = ids.clone(),
        }
        let n = ids.len();
        mutate(
            data,
            format!("{n} key{} {}.", if n == 1 { "" } else { "s" }, op.past()),
            async move {
                let _: KeyBatchResult =
                    api::send_json("POST", "/api/admin/keys/batch", &batch, None).await?;
                selected.try_update(|s| s.clear());
                Ok(())
            },
        );
    };
    let on_confirm = move || {
        let Some(p) = pending.get_untracked() else {
            return;
        };
        pending.set(None);
        match p {
            Pending::Revoke(k) => mutate(data, format!("{} revoked.", k.key), async move {
                patch_status(&k, KeyStatus::Revoked).await.map(|_| ())
            }),
            Pending::Delete(k) => mutate(data, format!("{} deleted.", k.key), async move {
                let id = k.id;
                api::send_empty(
                    "DELETE",
                    &format!("/api/admin/keys/{id}"),
                    Some(&if_match(&k)),
                )
                .await?;
                selected.try_update(|s| {
                    s.remove(&id);
                });
                Ok(())
            }),
            Pending::Batch(op, ids) => run_batch(op, ids),
        }
    };
    let on_action = move |action: KeyAction| match action {
        KeyAction::Suspend(k) => mutate(data, format!("{} suspended.", k.key), async move {
            patch_status(&k, KeyStatus::Suspended).await.map(|_| ())
        }),
        KeyAction::Reactivate(k) => {
            mutate(data, format!("{} is active again.", k.key), async move {
                patch_status(&k, KeyStatus::Active).await.map(|_| ())
            })
        }
        KeyAction::Revoke(k) => ask(Pending::Revoke(k)),
        KeyAction::Delete(k) => ask(Pending::Delete(k)),
        KeyAction::Edit(k) => editing.set(Some(k)),
    };
    let batch = move |op: BatchOp| {
        let ids: Vec<i64> = selected.get_untracked().into_iter().collect();
        if !ids.is_empty() {
            ask(Pending::Batch(op, ids));
        }
    };

    let total = move || data.keys.with(|p| p.as_ref().map(|p| p.total));
    let range = move || {
        let page = data.keys_query.with(KeyQuery::page_number);
        data.keys.with(|p| {
            p.as_ref().map(|p| {
                if p.items.is_empty() {
                    "No keys".to_string()
                } else {
                    let first = (page - 1) * PAGE_SIZE as usize + 1;
                    format!(
                        "{}–{} of {}",
                        first,
                        first + p.items.len() - 1,
                        format::count(p.total)
                    )
                }
            })
        })
    };
    let next_cursor = move || {
        data.keys
            .with(|p| p.as_ref().and_then(|p| p.next_cursor.clone()))
    };

    view! {
        <section class="page" data-testid="keys-page">
            <header class="page-head">
                <h1>"License keys"</h1>
                {can_write
                    .then(|| {
                        view! {
                            <button
                                type="button"
                                class="btn btn-primary"
                                data-testid="new-key"
                                on:click=move |_| creating.set(true)
                            >
                                "New key"
                            </button>
                        }
                    })}
            </header>
            {move || {
                data.error_of(LICENSE_KEYS)
                    .map(|e| {
                        view! {
                            <p class="banner banner-error" role="alert" data-testid="keys-error">
                                "The list could not be refreshed: " {format::sentence(&e)}
                                " Showing the last keys received."
                            </p>
                        }
                    })
            }}
            <div class="toolbar">
                <div class="field">
                    <label for="keys-search">"Search"</label>
                    <input
                        id="keys-search"
                        type="search"
                        placeholder="Key or notes"
                        data-testid="keys-search"
                        prop:value=move || search.get()
                        on:input=on_search
                        on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                            if ev.key() == "Enter" {
                                apply_search();
                            }
                        }
                    />
                </div>
                <div class="field">
                    <label for="keys-status">"Status"</label>
                    <select
                        id="keys-status"
                        data-testid="keys-status-filter"
                        on:change=move |ev| {
                            let status = KeyStatus::parse(&event_target_value(&ev));
                            data.keys_query
                                .update(|q| *q = KeyQuery { status, ..q.clone() }.restart());
                        }
                    >
                        <option value="">"All statuses"</option>
                        {KeyStatus::ALL
                            .into_iter()
                            .map(|s| {
                                view! {
                                    <option
                                        value=s.as_str()
                                        selected=move || data.keys_query.with(|q| q.status == Some(s))
                                    >
                                        {s.as_str()}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </div>
                {move || {
                    data.keys_query
                        .with(|q| q.customer_id)
                        .map(|id| {
                            let name = data
                                .customer_name(Some(id))
                                .unwrap_or_else(|| format!("customer #{id}"));
                            view! {
                                <button
                                    type="button"
                                    class="btn btn-small chip"
                                    data-testid="keys-customer-filter"
                                    aria-label=format!("Show every customer's keys (now only {name}'s)")
                                    on:click=move |_| {
                                        data.keys_query
                                            .update(|q| *q = KeyQuery { customer_id: None, ..q.clone() }.restart())
                                    }
                                >
                                    {format!("Customer: {name} ×")}
                                </button>
                            }
                        })
                }}
                <span class="toolbar-count" data-testid="keys-count" data-total=move || total().map(|t| t.to_string()).unwrap_or_default()>
                    {range}
                </span>
            </div>
            {move || {
                let n = selected.with(BTreeSet::len);
                (can_write && n > 0)
                    .then(|| {
                        view! {
                            <div class="batch-bar" data-testid="batch-bar" role="region" aria-label="Selected keys">
                                <span>{format!("{n} selected")}</span>
                                <button type="button" class="btn btn-small" data-testid="batch-suspend" on:click=move |_| batch(BatchOp::Suspend)>
                                    "Suspend"
                                </button>
                                <button type="button" class="btn btn-small" data-testid="batch-revoke" on:click=move |_| batch(BatchOp::Revoke)>
                                    "Revoke"
                                </button>
                                <button type="button" class="btn btn-small btn-danger" data-testid="batch-delete" on:click=move |_| batch(BatchOp::Delete)>
                                    "Delete"
                                </button>
                                <button type="button" class="btn btn-small btn-link" on:click=move |_| selected.set(BTreeSet::new())>
                                    "Clear selection"
                                </button>
                            </div>
                        }
                    })
            }}
            <KeyTable selected=selected can_write=can_write on_action=on_action />
            <nav class="pager" aria-label="Pages">
                <button
                    type="button"
                    class="btn btn-small"
                    data-testid="keys-prev"
                    disabled=move || data.keys_query.with(|q| q.history.is_empty())
                    on:click=move |_| data.keys_query.update(|q| *q = q.clone().previous())
                >
                    "← Previous"
                </button>
                <span class="pager-page">{move || format!("Page {}", data.keys_query.with(KeyQuery::page_number))}</span>
                <button
                    type="button"
                    class="btn btn-small"
                    data-testid="keys-next"
                    disabled=move || next_cursor().is_none()
                    on:click=move |_| {
                        if let Some(cursor) = next_cursor() {
                            data.keys_query.update(|q| *q = q.clone().next(cursor));
                        }
                    }
                >
                    "Next →"
                </button>
            </nav>
            {can_write.then(|| view! { <CreateKeyDialog open=creating /> })}
            {can_write.then(|| view! { <EditKeyDialog editing=editing /> })}
            <ConfirmDialog request=confirm on_confirm=on_confirm />
        </section>
    }
}
