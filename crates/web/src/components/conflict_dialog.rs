//! The conflict dialog: a write met 412 (someone changed the resource first). It shows the
//! admin's change and the server's current version side by side, field by field, and offers:
//! keep mine (re-send on top of the current version), take theirs (drop the change), or merge
//! (choose per field). Generic over the resource: it works on the JSON of the change and of the
//! current representation, with each resource's fields in its form's order and words
//! ([`fields_of`]); keys and customers use it.

use leptos::prelude::*;
use serde_json::{Map, Value};

use super::Modal;
use crate::outbox::{Conflict, Outbox, Resolution};
use crate::sync::config::{CUSTOMERS, CUSTOMER_LIST, LICENSE_KEYS};

/// The fields an edit of the resource behind `source` may change, with their labels, in the
/// order its form shows them.
pub fn fields_of(source: &str) -> &'static [(&'static str, &'static str)] {
    match source {
        LICENSE_KEYS => &[
            ("status", "Status"),
            ("customer_id", "Customer"),
            ("notes", "Notes"),
            ("expires_at", "Expires"),
            ("max_activations", "Max activations"),
        ],
        CUSTOMERS | CUSTOMER_LIST => &[
            ("name", "Name"),
            ("email", "Email"),
            ("company", "Company"),
            ("notes", "Notes"),
        ],
        _ => &[],
    }
}

/// The rows of the dialog: `(field, label)` for each field the change sets, the resource's
/// own fields first in their order, anything else after it with a label made from its name.
pub fn conflict_rows(source: &str, mine: &Map<String, Value>) -> Vec<(String, String)> {
    let known = fields_of(source);
    let listed = known
        .iter()
        .filter(|(name, _)| mine.contains_key(*name))
        .map(|(name, label)| ((*name).to_owned(), (*label).to_owned()));
    let others = mine
        .keys()
        .filter(|k| !known.iter().any(|(name, _)| name == k))
        .map(|k| (k.clone(), field_label(k)));
    listed.chain(others).collect()
}

/// `max_activations` → `Max activations`.
pub fn field_label(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A JSON value as people read it: strings bare, nothing as "—", RFC 3339 dates shortened.
pub fn show_value(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) if s.is_empty() => "(empty)".into(),
        Some(Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(at) => crate::format::date_time(&at.with_timezone(&chrono::Utc)),
            Err(_) => s.clone(),
        },
        Some(other) => other.to_string(),
    }
}

/// Shows the first open conflict of the [`Outbox`], if any.
#[component]
pub fn ConflictHost() -> impl IntoView {
    let Some(outbox) = Outbox::get() else {
        return ().into_any();
    };
    let open = RwSignal::new(false);
    Effect::new(move |_| {
        let any = outbox.conflicts.with(|c| !c.is_empty());
        if open.get_untracked() != any {
            open.set(any);
        }
    });
    // Escape or the close button while a conflict is open: the server's version stands.
    Effect::new(move |was_open: Option<bool>| {
        let now = open.get();
        if was_open == Some(true) && !now && outbox.conflicts.with_untracked(|c| !c.is_empty()) {
            outbox.resolve(Resolution::TakeTheirs);
        }
        now
    });
    view! {
        <Modal open=open title="This changed while you were editing" testid="conflict-dialog">
            {move || {
                outbox
                    .conflicts
                    .with(|c| c.first().cloned())
                    .map(|conflict| view! { <ConflictBody conflict=conflict outbox=outbox /> })
            }}
        </Modal>
    }
    .into_any()
}

#[component]
fn ConflictBody(conflict: Conflict, outbox: Outbox) -> impl IntoView {
    let fields = conflict_rows(&conflict.source, &conflict.mine);
    // Merge starts from "mine" where the admin changed something.
    let chosen = RwSignal::new(
        fields
            .iter()
            .map(|(name, _)| name.clone())
            .collect::<Vec<_>>(),
    );
    let deleting = conflict.method == "DELETE";
    let rows = fields
        .iter()
        .map(|(name, label)| {
            let mine = show_value(conflict.mine.get(name));
            let theirs = show_value(conflict.current.get(name));
            let differs = mine != theirs;
            let (n1, n2, n3) = (name.clone(), name.clone(), name.clone());
            let group = format!("conflict-{name}");
            view! {
                <tr data-testid="conflict-row" data-field=name.clone() class:conflict-differs=differs>
                    <th scope="row">{label.clone()}</th>
                    <td data-testid="conflict-mine">
                        <label>
                            <input
                                type="radio"
                                name=group.clone()
                                data-testid="conflict-pick-mine"
                                prop:checked=move || chosen.with(|c| c.contains(&n1))
                                on:change=move |_| chosen.update(|c| {
                                    if !c.contains(&n2) {
                                        c.push(n2.clone());
                                    }
                                })
                            />
                            " " {mine}
                        </label>
                    </td>
                    <td data-testid="conflict-theirs">
                        <label>
                            <input
                                type="radio"
                                name=group
                                data-testid="conflict-pick-theirs"
                                prop:checked={
                                    let n = name.clone();
                                    move || chosen.with(|c| !c.contains(&n))
                                }
                                on:change=move |_| chosen.update(|c| c.retain(|f| *f != n3))
                            />
                            " " {theirs}
                        </label>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let version = conflict
        .current
        .get("version")
        .map(|v| v.to_string())
        .unwrap_or_default();
    view! {
        <p class="conflict-intro">
            {conflict.label.clone()}
            {if deleting {
                ": you deleted it, but someone changed it first."
            } else {
                ": someone saved a newer version (version "
            }}
            {(!deleting).then(|| format!("{version}). Choose what to keep."))}
        </p>
        {(!deleting)
            .then(|| {
                view! {
                    <table class="table conflict-table">
                        <thead>
                            <tr>
                                <th scope="col">"Field"</th>
                                <th scope="col">"Your change"</th>
                                <th scope="col">"On the server now"</th>
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                }
            })}
        <div class="modal-actions">
            <button
                type="button"
                class="btn"
                data-testid="conflict-take-theirs"
                on:click=move |_| outbox.resolve(Resolution::TakeTheirs)
            >
                "Take theirs"
            </button>
            {(!deleting)
                .then(|| {
                    view! {
                        <button
                            type="button"
                            class="btn"
                            data-testid="conflict-merge"
                            on:click=move |_| outbox.resolve(Resolution::Merge(chosen.get_untracked()))
                        >
                            "Merge selected"
                        </button>
                    }
                })}
            <button
                type="button"
                class="btn btn-primary"
                data-testid="conflict-keep-mine"
                on:click=move |_| outbox.resolve(Resolution::KeepMine)
            >
                "Keep mine"
            </button>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_resource_lists_its_fields_in_its_forms_order_and_words() {
        let mine: Map<String, Value> =
            serde_json::from_str(r#"{"notes":"n","name":"Ada","extra_field":1}"#).unwrap();

        let rows = conflict_rows(CUSTOMER_LIST, &mine);

        let expected = [
            ("name", "Name"),
            ("notes", "Notes"),
            ("extra_field", "Extra field"),
        ];
        assert_eq!(
            rows,
            expected
                .iter()
                .map(|(n, l)| ((*n).to_owned(), (*l).to_owned()))
                .collect::<Vec<_>>()
        );
        assert_eq!(conflict_rows(LICENSE_KEYS, &Map::new()), vec![]);
    }

    #[test]
    fn field_names_and_values_read_like_words() {
        assert_eq!(field_label("max_activations"), "Max activations");
        assert_eq!(show_value(None), "—");
        assert_eq!(show_value(Some(&Value::Null)), "—");
        assert_eq!(show_value(Some(&Value::from(""))), "(empty)");
        assert_eq!(show_value(Some(&Value::from(5))), "5");
        assert_eq!(
            show_value(Some(&Value::from("2026-12-31T23:59:59Z"))),
            "2026-12-31 23:59 UTC"
        );
    }
}
