use keysync_shared::{CreateCustomer, CustomerView, Page, PatchCustomer};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::api;
use crate::components::Modal;
use crate::data::{AdminData, KeyQuery};
use crate::format;
use crate::outbox::{NewWrite, Outbox};
use crate::session::Session;
use crate::sync::config::CUSTOMER_LIST;
use crate::sync::use_source;

/// Rows per page of the customer table.
const PAGE_SIZE: u32 = 20;

/// The customer table's view: search and the keyset page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerQuery {
    pub q: String,
    pub cursor: Option<String>,
    /// Cursors of the pages before this one, for "Previous".
    pub history: Vec<Option<String>>,
}

impl CustomerQuery {
    pub fn path(&self) -> String {
        let mut path = format!("/api/admin/customers?limit={PAGE_SIZE}&sort=name");
        let q = self.q.trim();
        if !q.is_empty() {
            path.push_str("&q=");
            path.push_str(&api::encode(q));
        }
        if let Some(cursor) = &self.cursor {
            path.push_str("&cursor=");
            path.push_str(&api::encode(cursor));
        }
        path
    }
}

/// What the form is doing.
#[derive(Debug, Clone, PartialEq)]
enum Editing {
    New,
    Existing(CustomerView),
}

fn if_match(c: &CustomerView) -> String {
    format!("\"v{}\"", c.version)
}

/// `/admin/customers`: search, pages, create, edit, delete (with the choice to revoke the
/// customer's keys), and a link to each customer's keys. Viewers read only.
#[component]
pub fn Customers() -> impl IntoView {
    let data = AdminData::get();
    let session = Session::get();
    let can_write = session.can_write();
    let query = RwSignal::new(CustomerQuery::default());
    let list = RwSignal::new(None::<Page<CustomerView>>);
    use_source(CUSTOMER_LIST, query, CustomerQuery::path, list);

    let search = RwSignal::new(String::new());
    let apply_search = move || {
        let q = search.get_untracked();
        query.update(|current| {
            if current.q != q {
                *current = CustomerQuery {
                    q,
                    ..CustomerQuery::default()
                };
            }
        });
    };
    let form_open = RwSignal::new(false);
    let editing = RwSignal::new(None::<Editing>);
    let delete_open = RwSignal::new(false);
    let deleting = RwSignal::new(None::<CustomerView>);
    let open_form = move |e: Editing| {
        editing.set(Some(e));
        form_open.set(true);
    };
    // Kept in a local store so the row closures stay `Copy`.
    let navigate = StoredValue::new_local(use_navigate());
    let show_keys = move |c: &CustomerView| {
        data.keys_query.set(KeyQuery {
            customer_id: Some(c.id),
            ..KeyQuery::default()
        });
        navigate.with_value(|go| go("/admin/keys", Default::default()));
    };

    let next_cursor = move || list.with(|p| p.as_ref().and_then(|p| p.next_cursor.clone()));
    let range = move || {
        list.with(|p| {
            p.as_ref().map(|p| {
                let page = query.with(|q| q.history.len()) + 1;
                if p.items.is_empty() {
                    "No customers".to_string()
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
    let row = move |c: CustomerView| {
        let keys_label = format!("Keys ({})", c.key_count);
        let (for_keys, for_edit, for_delete) = (c.clone(), c.clone(), c.clone());
        view! {
            <tr data-testid="customer-row" data-id=c.id.to_string() data-email=c.email.clone()>
                <td data-testid="customer-row-name">{c.name.clone()}</td>
                <td>{c.email.clone()}</td>
                <td>{c.company.clone()}</td>
                <td class="num">
                    <button
                        type="button"
                        class="btn btn-small btn-link"
                        data-testid="customer-keys"
                        on:click=move |_| show_keys(&for_keys)
                    >
                        {keys_label}
                    </button>
                </td>
                <td class="muted">{format::date(&c.updated_at)}</td>
                {can_write
                    .then(|| {
                        view! {
                            <td class="row-actions">
                                <button
                                    type="button"
                                    class="btn btn-small"
                                    data-testid="customer-edit"
                                    aria-label=format!("Edit {}", c.name)
                                    on:click=move |_| open_form(Editing::Existing(for_edit.clone()))
                                >
                                    "Edit"
                                </button>
                                <button
                                    type="button"
                                    class="btn btn-small btn-danger-quiet"
                                    data-testid="customer-delete"
                                    aria-label=format!("Delete {}", c.name)
                                    on:click=move |_| {
                                        deleting.set(Some(for_delete.clone()));
                                        delete_open.set(true);
                                    }
                                >
                                    "Delete"
                                </button>
                            </td>
                        }
                    })}
            </tr>
        }
    };
    let columns = if can_write { 6 } else { 5 };

    view! {
        <section class="page" data-testid="customers-page">
            <header class="page-head">
                <h1>"Customers"</h1>
                {can_write
                    .then(|| {
                        view! {
                            <button
                                type="button"
                                class="btn btn-primary"
                                data-testid="new-customer"
                                on:click=move |_| open_form(Editing::New)
                            >
                                "New customer"
                            </button>
                        }
                    })}
            </header>
            {move || {
                data.error_of(CUSTOMER_LIST)
                    .map(|e| {
                        view! {
                            <p class="banner banner-error" role="alert" data-testid="customers-error">
                                "The list could not be refreshed: " {format::sentence(&e)}
                                " Showing the last customers received."
                            </p>
                        }
                    })
            }}
            <div class="toolbar">
                <div class="field">
                    <label for="customers-search">"Search"</label>
                    <input
                        id="customers-search"
                        type="search"
                        placeholder="Name, email or company"
                        data-testid="customers-search"
                        bind:value=search
                        on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                            if ev.key() == "Enter" {
                                apply_search();
                            }
                        }
                    />
                </div>
                <button type="button" class="btn btn-small" data-testid="customers-search-go" on:click=move |_| apply_search()>
                    "Search"
                </button>
                <span class="toolbar-count" data-testid="customers-count">
                    {range}
                </span>
            </div>
            <div class="table-wrap">
                <table class="data-table" data-testid="customers-table">
                    <thead>
                        <tr>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Email"</th>
                            <th scope="col">"Company"</th>
                            <th scope="col" class="num">"Keys"</th>
                            <th scope="col">"Updated"</th>
                            {can_write.then(|| view! { <th scope="col"><span class="sr-only">"Actions"</span></th> })}
                        </tr>
                    </thead>
                    <tbody>
                        {move || match list.get() {
                            None => {
                                view! {
                                    <tr>
                                        <td colspan=columns class="empty" aria-busy="true">"Loading customers…"</td>
                                    </tr>
                                }
                                    .into_any()
                            }
                            Some(page) if page.items.is_empty() => {
                                let text = if query.with(|q| q.q.trim().is_empty()) {
                                    "No customers yet."
                                } else {
                                    "No customer matches this search."
                                };
                                view! {
                                    <tr>
                                        <td colspan=columns class="empty" data-testid="customers-empty">{text}</td>
                                    </tr>
                                }
                                    .into_any()
                            }
                            Some(page) => page.items.into_iter().map(row).collect_view().into_any(),
                        }}
                    </tbody>
                </table>
            </div>
            <nav class="pager" aria-label="Pages">
                <button
                    type="button"
                    class="btn btn-small"
                    data-testid="customers-prev"
                    disabled=move || query.with(|q| q.history.is_empty())
                    on:click=move |_| {
                        query.update(|q| {
                            q.cursor = q.history.pop().flatten();
                        })
                    }
                >
                    "← Previous"
                </button>
                <span class="pager-page">{move || format!("Page {}", query.with(|q| q.history.len()) + 1)}</span>
                <button
                    type="button"
                    class="btn btn-small"
                    data-testid="customers-next"
                    disabled=move || next_cursor().is_none()
                    on:click=move |_| {
                        if let Some(cursor) = next_cursor() {
                            query.update(|q| {
                                let previous = q.cursor.take();
                                q.history.push(previous);
                                q.cursor = Some(cursor);
                            });
                        }
                    }
                >
                    "Next →"
                </button>
            </nav>
            {can_write
                .then(|| {
                    view! {
                        <Modal open=form_open title="Customer" testid="customer-dialog">
                            <CustomerForm editing=editing open=form_open />
                        </Modal>
                        <Modal open=delete_open title="Delete customer" testid="customer-delete-dialog">
                            <DeleteCustomer deleting=deleting open=delete_open />
                        </Modal>
                    }
                })}
        </section>
    }
}

/// Create or edit one customer through the [`Outbox`]: offline (or when the request fails on the
/// network) it is queued; an edit sends only the changed fields with `If-Match`, and a 412
/// opens the conflict dialog.
#[component]
fn CustomerForm(editing: RwSignal<Option<Editing>>, open: RwSignal<bool>) -> impl IntoView {
    let existing = move || match editing.get_untracked() {
        Some(Editing::Existing(c)) => Some(c),
        _ => None,
    };
    let start = existing();
    let name = RwSignal::new(start.as_ref().map(|c| c.name.clone()).unwrap_or_default());
    let email = RwSignal::new(start.as_ref().map(|c| c.email.clone()).unwrap_or_default());
    let company = RwSignal::new(
        start
            .as_ref()
            .map(|c| c.company.clone())
            .unwrap_or_default(),
    );
    let notes = RwSignal::new(start.as_ref().map(|c| c.notes.clone()).unwrap_or_default());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let is_new = start.is_none();

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (n, e) = (
            name.get_untracked().trim().to_owned(),
            email.get_untracked().trim().to_owned(),
        );
        if n.is_empty() || e.is_empty() {
            error.set(Some("A customer needs a name and an email.".into()));
            return;
        }
        let (c, t) = (company.get_untracked(), notes.get_untracked());
        let write = match existing() {
            None => NewWrite {
                method: "POST".into(),
                path: "/api/admin/customers".into(),
                label: format!("Add {n}"),
                body: serde_json::to_string(&CreateCustomer {
                    name: n,
                    email: e,
                    company: Some(c),
                    notes: Some(t),
                })
                .ok(),
                if_match: String::new(),
                source: CUSTOMER_LIST.into(),
            },
            Some(current) => {
                let patch = PatchCustomer {
                    name: (n != current.name).then_some(n),
                    email: (e != current.email).then_some(e),
                    company: (c != current.company).then_some(c),
                    notes: (t != current.notes).then_some(t),
                };
                if patch == PatchCustomer::default() {
                    open.set(false);
                    return;
                }
                NewWrite {
                    method: "PATCH".into(),
                    path: format!("/api/admin/customers/{}", current.id),
                    body: serde_json::to_string(&patch).ok(),
                    if_match: if_match(&current),
                    label: format!("Edit {}", current.name),
                    source: CUSTOMER_LIST.into(),
                }
            }
        };
        error.set(None);
        send(write, open, busy, move |failure| {
            error.try_set(Some(failure.message()));
        });
    };
    view! {
        <form class="form" on:submit=submit data-testid="customer-form" novalidate>
            <label for="customer-name">"Name"</label>
            <input id="customer-name" type="text" required autofocus data-testid="customer-name" bind:value=name />
            <label for="customer-email">"Email"</label>
            <input id="customer-email" type="email" required data-testid="customer-email" bind:value=email />
            <label for="customer-company">"Company"</label>
            <input id="customer-company" type="text" data-testid="customer-company" bind:value=company />
            <label for="customer-notes">"Notes"</label>
            <textarea id="customer-notes" rows="3" data-testid="customer-notes" bind:value=notes></textarea>
            {move || {
                error
                    .get()
                    .map(|e| {
                        view! {
                            <p class="form-error" role="alert" data-testid="customer-form-error">
                                {e}
                            </p>
                        }
                    })
            }}
            <div class="modal-actions">
                <button type="button" class="btn" data-testid="customer-cancel" on:click=move |_| open.set(false)>
                    "Cancel"
                </button>
                <button
                    type="submit"
                    class="btn btn-primary"
                    data-testid="customer-save"
                    aria-busy=move || busy.get().to_string()
                    disabled=move || busy.get()
                >
                    {if is_new { "Add customer" } else { "Save changes" }}
                </button>
            </div>
        </form>
    }
}

/// Sends a customer write through the [`Outbox`]; the dialog closes once it landed, was queued
/// or went to the conflict dialog.
fn send(
    write: NewWrite,
    open: RwSignal<bool>,
    busy: RwSignal<bool>,
    refused: impl Fn(api::ApiFailure) + 'static,
) {
    if let Some(outbox) = Outbox::get() {
        outbox.submit(
            write,
            busy,
            move || {
                open.try_set(false);
            },
            refused,
        );
    }
}

/// Deleting a customer: with keys, the API refuses (409) unless its keys are revoked and
/// unlinked in the same step, so that choice is offered up front.
#[component]
fn DeleteCustomer(deleting: RwSignal<Option<CustomerView>>, open: RwSignal<bool>) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let run = move |cascade: bool| {
        let Some(c) = deleting.get_untracked() else {
            return;
        };
        let query = if cascade { "?cascade=revoke" } else { "" };
        let write = NewWrite {
            method: "DELETE".into(),
            path: format!("/api/admin/customers/{}{query}", c.id),
            body: None,
            if_match: if_match(&c),
            label: format!("Delete {}", c.name),
            source: CUSTOMER_LIST.into(),
        };
        error.set(None);
        send(write, open, busy, move |failure| {
            if failure.code() == "customer_has_keys" {
                // Keys were added meanwhile: offer the cascade now.
                deleting.try_set(Some(CustomerView {
                    key_count: c.key_count.max(1),
                    ..c.clone()
                }));
                error.try_set(Some(
                    "This customer has keys now: revoke them to delete the customer.".into(),
                ));
            } else {
                error.try_set(Some(failure.message()));
            }
        });
    };
    move || {
        deleting.get().map(|c| {
            let has_keys = c.key_count > 0;
            view! {
                <div data-testid="customer-delete-body">
                    <p>
                        {format!("Delete {} ({})?", c.name, c.email)}
                    </p>
                    {has_keys
                        .then(|| {
                            view! {
                                <p class="banner banner-warning" data-testid="customer-delete-keys">
                                    {format!(
                                        "{} has {} license key{}. Deleting revokes {} and unlinks {} from the customer.",
                                        c.name,
                                        c.key_count,
                                        if c.key_count == 1 { "" } else { "s" },
                                        if c.key_count == 1 { "it" } else { "them" },
                                        if c.key_count == 1 { "it" } else { "them" },
                                    )}
                                </p>
                            }
                        })}
                    {move || {
                        error
                            .get()
                            .map(|e| {
                                view! {
                                    <p class="form-error" role="alert" data-testid="customer-delete-error">
                                        {e}
                                    </p>
                                }
                            })
                    }}
                    <div class="modal-actions">
                        <button type="button" class="btn" data-testid="customer-delete-cancel" on:click=move |_| open.set(false)>
                            "Cancel"
                        </button>
                        <button
                            type="button"
                            class="btn btn-danger"
                            data-testid="customer-delete-confirm"
                            disabled=move || busy.get()
                            on:click=move |_| run(has_keys)
                        >
                            {if has_keys { "Revoke keys and delete" } else { "Delete" }}
                        </button>
                    </div>
                </div>
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_customer_view_searches_by_name_order_and_pages_by_cursor() {
        let query = CustomerQuery {
            q: " Acme & co ".into(),
            cursor: Some("c=".into()),
            history: vec![None],
        };

        assert_eq!(
            CustomerQuery::default().path(),
            "/api/admin/customers?limit=20&sort=name"
        );
        assert_eq!(
            query.path(),
            "/api/admin/customers?limit=20&sort=name&q=Acme%20%26%20co&cursor=c%3D"
        );
    }
}
