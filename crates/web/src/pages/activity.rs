use keysync_shared::{AuditLogView, Page};
use leptos::prelude::*;

use crate::api;
use crate::data::AdminData;
use crate::format;
use crate::sync::config::ACTIVITY;
use crate::sync::use_source;

const PAGE_SIZE: u32 = 50;

/// The action filter's choices: whole families (a prefix ending in `.`), as the API takes them.
const ACTIONS: [(&str, &str); 8] = [
    ("", "All actions"),
    ("license_key.", "License keys"),
    ("customer.", "Customers"),
    ("admin.", "Admin users"),
    ("auth.", "Sign-ins"),
    ("license.", "Validations"),
    ("release.", "Downloads"),
    ("webhook.", "Webhook events"),
];

const TARGETS: [(&str, &str); 6] = [
    ("", "Any target"),
    ("license_key", "License key"),
    ("customer", "Customer"),
    ("admin_user", "Admin user"),
    ("release", "Release"),
    ("webhook", "Webhook"),
];

/// The activity view: filters and the keyset page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityQuery {
    pub action: String,
    pub actor: String,
    pub target_kind: String,
    /// `YYYY-MM-DD` from the date inputs; whole days in UTC.
    pub from: String,
    pub to: String,
    pub cursor: Option<String>,
    pub history: Vec<Option<String>>,
}

impl ActivityQuery {
    pub fn path(&self) -> String {
        let mut path = format!("/api/admin/audit-logs?limit={PAGE_SIZE}");
        for (name, value) in [
            ("action", self.action.as_str()),
            ("actor", self.actor.trim()),
            ("target_kind", self.target_kind.as_str()),
        ] {
            if !value.is_empty() {
                path.push_str(&format!("&{name}={}", api::encode(value)));
            }
        }
        // A date that does not parse is left out rather than sent.
        if format::end_of_day(&self.from).is_some() {
            path.push_str(&format!("&from={}T00%3A00%3A00Z", self.from.trim()));
        }
        if format::end_of_day(&self.to).is_some() {
            path.push_str(&format!("&to={}T23%3A59%3A59Z", self.to.trim()));
        }
        if let Some(cursor) = &self.cursor {
            path.push_str("&cursor=");
            path.push_str(&api::encode(cursor));
        }
        path
    }

    /// A changed filter starts from the newest entries again.
    fn filtered(self) -> Self {
        Self {
            cursor: None,
            history: Vec::new(),
            ..self
        }
    }
}

/// A short, readable line from an entry's summary (before/after values, key prefixes only).
fn summary_text(entry: &AuditLogView) -> String {
    match &entry.summary {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => {
            let text = other.to_string();
            if text.len() > 160 {
                let cut = (0..=157)
                    .rev()
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(0);
                format!("{}…", &text[..cut])
            } else {
                text
            }
        }
    }
}

/// `/admin/activity`: the audit log, newest first, kept live by the sync engine (every change
/// pushed or polled refreshes it), with filters for action, actor, target and time.
#[component]
pub fn Activity() -> impl IntoView {
    let data = AdminData::get();
    let query = RwSignal::new(ActivityQuery::default());
    let list = RwSignal::new(None::<Page<AuditLogView>>);
    use_source(ACTIVITY, query, ActivityQuery::path, list);

    let actor = RwSignal::new(String::new());
    let apply_actor = move || {
        let a = actor.get_untracked();
        query.update(|q| {
            if q.actor != a {
                *q = ActivityQuery {
                    actor: a,
                    ..q.clone()
                }
                .filtered();
            }
        });
    };
    let next_cursor = move || list.with(|p| p.as_ref().and_then(|p| p.next_cursor.clone()));
    let row = |e: AuditLogView| {
        let target = match (&e.target_kind, &e.target_id) {
            (Some(kind), Some(id)) => format!("{kind} {id}"),
            (Some(kind), None) => kind.clone(),
            _ => String::new(),
        };
        let summary = summary_text(&e);
        view! {
            <tr data-testid="activity-row" data-action=e.action.clone() data-actor=e.actor.clone()>
                <td class="muted">
                    <time datetime=e.at.to_rfc3339()>{format::date_time(&e.at)}</time>
                </td>
                <td>{e.actor.clone()}</td>
                <td class="mono">{e.action.clone()}</td>
                <td>{target}</td>
                <td class="muted summary">{summary}</td>
            </tr>
        }
    };

    view! {
        <section class="page" data-testid="activity-page">
            <header class="page-head">
                <h1>"Activity"</h1>
            </header>
            {move || {
                data.error_of(ACTIVITY)
                    .map(|e| {
                        view! {
                            <p class="banner banner-error" role="alert" data-testid="activity-error">
                                "The log could not be refreshed: " {format::sentence(&e)}
                                " Showing the last entries received."
                            </p>
                        }
                    })
            }}
            <div class="toolbar">
                <div class="field">
                    <label for="activity-action">"Action"</label>
                    <select
                        id="activity-action"
                        data-testid="activity-action"
                        on:change=move |ev| {
                            let action = event_target_value(&ev);
                            query.update(|q| *q = ActivityQuery { action, ..q.clone() }.filtered());
                        }
                    >
                        {ACTIONS
                            .into_iter()
                            .map(|(value, label)| view! { <option value=value>{label}</option> })
                            .collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="activity-actor">"Actor"</label>
                    <input
                        id="activity-actor"
                        type="search"
                        placeholder="Email, system, webhook…"
                        data-testid="activity-actor"
                        bind:value=actor
                        on:change=move |_| apply_actor()
                        on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                            if ev.key() == "Enter" {
                                apply_actor();
                            }
                        }
                    />
                </div>
                <div class="field">
                    <label for="activity-target">"Target"</label>
                    <select
                        id="activity-target"
                        data-testid="activity-target"
                        on:change=move |ev| {
                            let target_kind = event_target_value(&ev);
                            query.update(|q| *q = ActivityQuery { target_kind, ..q.clone() }.filtered());
                        }
                    >
                        {TARGETS
                            .into_iter()
                            .map(|(value, label)| view! { <option value=value>{label}</option> })
                            .collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="activity-from">"From"</label>
                    <input
                        id="activity-from"
                        type="date"
                        data-testid="activity-from"
                        on:change=move |ev| {
                            let from = event_target_value(&ev);
                            query.update(|q| *q = ActivityQuery { from, ..q.clone() }.filtered());
                        }
                    />
                </div>
                <div class="field">
                    <label for="activity-to">"To"</label>
                    <input
                        id="activity-to"
                        type="date"
                        data-testid="activity-to"
                        on:change=move |ev| {
                            let to = event_target_value(&ev);
                            query.update(|q| *q = ActivityQuery { to, ..q.clone() }.filtered());
                        }
                    />
                </div>
                <span class="toolbar-count" data-testid="activity-count">
                    {move || list.with(|p| p.as_ref().map(|p| format!("{} entries", format::count(p.total))))}
                </span>
            </div>
            <div class="table-wrap">
                <table class="data-table" data-testid="activity-table">
                    <thead>
                        <tr>
                            <th scope="col">"When (UTC)"</th>
                            <th scope="col">"Actor"</th>
                            <th scope="col">"Action"</th>
                            <th scope="col">"Target"</th>
                            <th scope="col">"Details"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || match list.get() {
                            None => {
                                view! {
                                    <tr>
                                        <td colspan="5" class="empty" aria-busy="true">"Loading activity…"</td>
                                    </tr>
                                }
                                    .into_any()
                            }
                            Some(page) if page.items.is_empty() => {
                                view! {
                                    <tr>
                                        <td colspan="5" class="empty" data-testid="activity-empty">
                                            "Nothing matches these filters."
                                        </td>
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
                    data-testid="activity-prev"
                    disabled=move || query.with(|q| q.history.is_empty())
                    on:click=move |_| query.update(|q| q.cursor = q.history.pop().flatten())
                >
                    "← Newer"
                </button>
                <button
                    type="button"
                    class="btn btn-small"
                    data-testid="activity-next"
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
                    "Older →"
                </button>
            </nav>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_query_parameters_and_bad_dates_are_left_out() {
        let q = ActivityQuery {
            action: "license_key.".into(),
            actor: " owner@example.com ".into(),
            from: "2026-11-01".into(),
            to: "not a date".into(),
            ..ActivityQuery::default()
        };

        assert_eq!(
            ActivityQuery::default().path(),
            "/api/admin/audit-logs?limit=50"
        );
        assert_eq!(
            q.path(),
            "/api/admin/audit-logs?limit=50&action=license_key.&actor=owner%40example.com\
             &from=2026-11-01T00%3A00%3A00Z"
        );
    }
}
