use std::collections::BTreeSet;
use std::sync::Arc;

use keysync_shared::{KeyStatus, LicenseKeyView};
use leptos::prelude::*;

use crate::data::{AdminData, KeyQuery};
use crate::format;

/// A row action the page carries out.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyAction {
    Suspend(LicenseKeyView),
    Reactivate(LicenseKeyView),
    Revoke(LicenseKeyView),
    Delete(LicenseKeyView),
    Edit(LicenseKeyView),
}

fn sort_state(query: &KeyQuery, field: &str) -> &'static str {
    if query.sort == field {
        "ascending"
    } else if query.sort.strip_prefix('-') == Some(field) {
        "descending"
    } else {
        "none"
    }
}

/// The license-key table: sortable headers, a status badge per key, selection for batches and
/// row actions for writers. Rows are keyed by id and version, so a refresh re-renders only the
/// keys that changed.
#[component]
pub fn KeyTable(
    selected: RwSignal<BTreeSet<i64>>,
    can_write: bool,
    on_action: impl Fn(KeyAction) + Send + Sync + 'static,
) -> impl IntoView {
    let data = AdminData::get();
    let on_action = Arc::new(on_action);
    let rows = move || data.keys.with(|p| p.as_ref().map(|p| p.items.clone()));
    let page_ids = move || {
        data.keys.with(|p| {
            p.as_ref()
                .map(|p| p.items.iter().map(|k| k.id).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    };
    let all_selected = move || {
        let ids = page_ids();
        !ids.is_empty() && selected.with(|s| ids.iter().all(|id| s.contains(id)))
    };
    let sort_header = move |field: &'static str, title: &'static str| {
        view! {
            <th aria-sort=move || data.keys_query.with(|q| sort_state(q, field))>
                <button
                    type="button"
                    class="sort"
                    data-testid=format!("sort-{field}")
                    on:click=move |_| data.keys_query.update(|q| *q = q.clone().sorted_by(field))
                >
                    {title}
                    <span class="sort-mark" aria-hidden="true">
                        {move || match data.keys_query.with(|q| sort_state(q, field)) {
                            "ascending" => "▲",
                            "descending" => "▼",
                            _ => "",
                        }}
                    </span>
                </button>
            </th>
        }
    };
    let columns = if can_write { 9 } else { 7 };
    // 0 loading, 1 empty, 2 rows: the body's shape changes only when this does, so a refresh
    // diffs rows in place instead of rebuilding the table.
    let shape = Memo::new(move |_| {
        data.keys.with(|p| match p {
            None => 0u8,
            Some(p) if p.items.is_empty() => 1,
            Some(_) => 2,
        })
    });
    let row = move |k: LicenseKeyView| {
        let id = k.id;
        let status = k.status.as_str();
        let customer = k.customer_id;
        let actions = can_write.then(|| {
            let act = on_action.clone();
            let (a, b, c, d, e) = (k.clone(), k.clone(), k.clone(), k.clone(), k.clone());
            let (act_a, act_b, act_c, act_e) = (act.clone(), act.clone(), act.clone(), act.clone());
            view! {
                <td class="row-actions">
                    <button
                        type="button"
                        class="btn btn-small"
                        data-testid="key-edit"
                        aria-label=format!("Edit {}", k.key)
                        on:click=move |_| act_e(KeyAction::Edit(e.clone()))
                    >
                        "Edit"
                    </button>
                    {(k.status == KeyStatus::Active)
                        .then(|| {
                            view! {
                                <button
                                    type="button"
                                    class="btn btn-small"
                                    data-testid="key-suspend"
                                    on:click=move |_| act_a(KeyAction::Suspend(a.clone()))
                                >
                                    "Suspend"
                                </button>
                            }
                        })}
                    {(k.status == KeyStatus::Suspended)
                        .then(|| {
                            view! {
                                <button
                                    type="button"
                                    class="btn btn-small"
                                    data-testid="key-reactivate"
                                    on:click=move |_| act_b(KeyAction::Reactivate(b.clone()))
                                >
                                    "Reactivate"
                                </button>
                            }
                        })}
                    {(k.status != KeyStatus::Revoked)
                        .then(|| {
                            view! {
                                <button
                                    type="button"
                                    class="btn btn-small"
                                    data-testid="key-revoke"
                                    on:click=move |_| act_c(KeyAction::Revoke(c.clone()))
                                >
                                    "Revoke"
                                </button>
                            }
                        })}
                    <button
                        type="button"
                        class="btn btn-small btn-danger-quiet"
                        data-testid="key-delete"
                        aria-label=format!("Delete {}", k.key)
                        on:click=move |_| act(KeyAction::Delete(d.clone()))
                    >
                        "Delete"
                    </button>
                </td>
            }
        });
        let select = can_write.then(|| {
            let label = format!("Select {}", k.key);
            view! {
                <td class="col-select">
                    <input
                        type="checkbox"
                        data-testid="key-select"
                        aria-label=label
                        prop:checked=move || selected.with(|s| s.contains(&id))
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            selected
                                .update(|s| {
                                    if on {
                                        s.insert(id);
                                    } else {
                                        s.remove(&id);
                                    }
                                });
                        }
                    />
                </td>
            }
        });
        let seats = format!(
            "{} / {}",
            k.activation_count,
            k.max_activations
                .map(|m| m.to_string())
                .unwrap_or_else(|| "∞".into())
        );
        view! {
            <tr
                data-testid="key-row"
                data-key=k.key.clone()
                data-status=status
                class:selected=move || selected.with(|s| s.contains(&id))
            >
                {select}
                <td class="mono" data-testid="key-value">
                    {k.key.clone()}
                </td>
                <td>
                    <span class=format!("badge badge-{status}") data-testid="key-status">
                        {status}
                    </span>
                </td>
                <td>{move || data.customer_name(customer).unwrap_or_else(|| "—".into())}</td>
                <td class="num">{seats}</td>
                <td class="num">{format::count(k.validation_count)}</td>
                <td>{k.expires_at.as_ref().map(format::date).unwrap_or_else(|| "Never".into())}</td>
                <td>
                    <time title=format::date_time(&k.created_at)>{format::date(&k.created_at)}</time>
                </td>
                {actions}
            </tr>
        }
    };
    view! {
        <div class="table-wrap">
            <table class="data-table" data-testid="keys-table">
                <caption class="sr-only">"License keys"</caption>
                <thead>
                    <tr>
                        {can_write
                            .then(|| {
                                view! {
                                    <th class="col-select">
                                        <input
                                            type="checkbox"
                                            data-testid="select-all"
                                            aria-label="Select every key on this page"
                                            prop:checked=all_selected
                                            on:change=move |ev| {
                                                let on = event_target_checked(&ev);
                                                let ids = page_ids();
                                                selected
                                                    .update(|s| {
                                                        for id in ids {
                                                            if on {
                                                                s.insert(id);
                                                            } else {
                                                                s.remove(&id);
                                                            }
                                                        }
                                                    });
                                            }
                                        />
                                    </th>
                                }
                            })}
                        {sort_header("key", "Key")}
                        <th>"Status"</th>
                        <th>"Customer"</th>
                        <th class="num">"Seats"</th>
                        <th class="num">"Validations"</th>
                        <th>"Expires"</th>
                        {sort_header("created_at", "Created")}
                        {can_write.then(|| view! { <th><span class="sr-only">"Actions"</span></th> })}
                    </tr>
                </thead>
                <tbody>
                    {move || match shape.get() {
                        0 => {
                            (0..5)
                                .map(|_| {
                                    view! {
                                        <tr class="skeleton-row" aria-hidden="true">
                                            <td colspan=columns>
                                                <span class="skeleton"></span>
                                            </td>
                                        </tr>
                                    }
                                })
                                .collect_view()
                                .into_any()
                        }
                        1 => {
                            let filtered = data
                                .keys_query
                                .with(|q| !q.q.trim().is_empty() || q.status.is_some());
                            view! {
                                <tr>
                                    <td colspan=columns class="empty" data-testid="keys-empty">
                                        {if filtered {
                                            "No keys match this search or filter."
                                        } else {
                                            "No license keys yet. Create the first one with “New key”."
                                        }}
                                    </td>
                                </tr>
                            }
                                .into_any()
                        }
                        _ => {
                            let row = row.clone();
                            view! {
                                <For
                                    each=move || rows().unwrap_or_default()
                                    key=|k| (k.id, k.version, k.status)
                                    children=move |k| row(k)
                                />
                            }
                                .into_any()
                        }
                    }}
                </tbody>
            </table>
        </div>
    }
}
