//! `/admin/settings`: the signed-in admin's sync preferences, stored on the server so they
//! follow the admin to every browser, and applied to the running DataSyncManager on save.

use keysync_shared::{SourceIntervals, SyncLogLevel, SyncPreferences};
use leptos::prelude::*;

use crate::data::{AdminData, NoticeKind};
use crate::format;
use crate::prefs::Preferences;

/// The interval fields, in the order shown: (field, label, getter, setter).
type ReadMs = fn(&SourceIntervals) -> u32;
type WriteMs = fn(&mut SourceIntervals, u32);

const FIELDS: [(&str, &str, ReadMs, WriteMs); 6] = [
    (
        "stats_ms",
        "Dashboard numbers",
        |i| i.stats_ms,
        |i, v| i.stats_ms = v,
    ),
    (
        "keys_ms",
        "License keys",
        |i| i.keys_ms,
        |i, v| i.keys_ms = v,
    ),
    (
        "customers_ms",
        "Customers",
        |i| i.customers_ms,
        |i, v| i.customers_ms = v,
    ),
    (
        "users_ms",
        "Admin users",
        |i| i.users_ms,
        |i, v| i.users_ms = v,
    ),
    (
        "activity_ms",
        "Activity log",
        |i| i.activity_ms,
        |i, v| i.activity_ms = v,
    ),
    (
        "releases_ms",
        "Releases",
        |i| i.releases_ms,
        |i, v| i.releases_ms = v,
    ),
];

const LEVELS: [(SyncLogLevel, &str); 5] = [
    (SyncLogLevel::Off, "off"),
    (SyncLogLevel::Error, "error"),
    (SyncLogLevel::Warn, "warn"),
    (SyncLogLevel::Info, "info"),
    (SyncLogLevel::Debug, "debug"),
];

/// Seconds as typed (`"2.5"`) to whole milliseconds; integer parsing only (float parsing and
/// formatting are heavy in wasm).
pub fn parse_seconds(text: &str) -> Option<u32> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u32 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac_ms: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").parse().ok()?
    };
    let ms = whole.checked_mul(1000)?.checked_add(frac_ms)?;
    (ms > 0).then_some(ms)
}

fn seconds(ms: u32) -> String {
    if ms % 1000 == 0 {
        (ms / 1000).to_string()
    } else {
        format!(
            "{}.{}",
            ms / 1000,
            format!("{:03}", ms % 1000).trim_end_matches('0')
        )
    }
}

#[component]
pub fn Settings() -> impl IntoView {
    let Some(prefs) = Preferences::get() else {
        return view! { <p>"Sign in to change your settings."</p> }.into_any();
    };
    view! {
        <section class="page" data-testid="settings-page">
            <header class="page-head">
                <h1>"Sync settings"</h1>
            </header>
            <p class="page-intro">
                "How this dashboard keeps itself up to date. Saved to your account: every browser you sign in with uses them, and open ones switch at once."
            </p>
            {move || match prefs.0.get() {
                None => view! { <p aria-busy="true">"Loading your settings…"</p> }.into_any(),
                Some(current) => view! { <SettingsForm current=current prefs=prefs /> }.into_any(),
            }}
        </section>
    }
    .into_any()
}

#[component]
fn SettingsForm(current: SyncPreferences, prefs: Preferences) -> impl IntoView {
    let data = AdminData::get();
    let texts: Vec<RwSignal<String>> = FIELDS
        .iter()
        .map(|(_, _, get, _)| RwSignal::new(seconds(get(&current.intervals))))
        .collect();
    let pause = RwSignal::new(current.pause_when_hidden);
    let push = RwSignal::new(current.push_enabled);
    let level = RwSignal::new(current.log_level);
    let error = RwSignal::new(None::<(Option<String>, String)>);
    let saving = RwSignal::new(false);
    let texts_for_submit = texts.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut wanted = SyncPreferences {
            pause_when_hidden: pause.get_untracked(),
            push_enabled: push.get_untracked(),
            log_level: level.get_untracked(),
            ..SyncPreferences::default()
        };
        for ((field, label, _, set), text) in FIELDS.iter().zip(&texts_for_submit) {
            match parse_seconds(&text.get_untracked()) {
                Some(ms) => set(&mut wanted.intervals, ms),
                None => {
                    error.set(Some((
                        Some(format!("intervals.{field}")),
                        format!("{label}: give a number of seconds."),
                    )));
                    return;
                }
            }
        }
        saving.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match prefs.save(&wanted).await {
                Ok(_) => data.say(NoticeKind::Success, "Settings saved and applied."),
                Err(failure) => {
                    let field = match &failure {
                        crate::api::ApiFailure::Server { body, .. } => body
                            .error
                            .details
                            .get("field")
                            .and_then(|f| f.as_str())
                            .map(str::to_owned),
                        _ => None,
                    };
                    error.try_set(Some((field, failure.message())));
                }
            }
            saving.try_set(false);
        });
    };
    let rows = FIELDS
        .iter()
        .zip(texts)
        .map(|((field, label, _, _), text)| {
            let id = format!("pref-{field}");
            let name = format!("intervals.{field}");
            let invalid = move || {
                error.with(|e| {
                    e.as_ref()
                        .is_some_and(|(f, _)| f.as_deref() == Some(name.as_str()))
                        .to_string()
                })
            };
            view! {
                <div class="field">
                    <label for=id.clone()>{*label} " (seconds)"</label>
                    <input
                        id=id
                        type="text"
                        inputmode="decimal"
                        data-testid=format!("pref-{field}")
                        aria-invalid=invalid
                        prop:value=move || text.get()
                        on:input=move |ev| text.set(event_target_value(&ev))
                    />
                    <small class="hint">{move || parse_seconds(&text.get()).map(|ms| format!("every {}", format::interval(ms.into())))}</small>
                </div>
            }
        })
        .collect_view();
    view! {
        <form class="form card" on:submit=submit data-testid="settings-form">
            <fieldset>
                <legend>"Refresh intervals"</legend>
                {rows}
            </fieldset>
            <fieldset>
                <legend>"Behaviour"</legend>
                <label class="check">
                    <input
                        type="checkbox"
                        data-testid="pref-pause-hidden"
                        prop:checked=move || pause.get()
                        on:change=move |ev| pause.set(event_target_checked(&ev))
                    />
                    " Pause syncing while the tab is hidden (otherwise it slows to a quarter)"
                </label>
                <label class="check">
                    <input
                        type="checkbox"
                        data-testid="pref-push"
                        prop:checked=move || push.get()
                        on:change=move |ev| push.set(event_target_checked(&ev))
                    />
                    " Live updates (push); when off, polling only"
                </label>
                <div class="field">
                    <label for="pref-log">"Console log level"</label>
                    <select
                        id="pref-log"
                        data-testid="pref-log-level"
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            if let Some((l, _)) = LEVELS.iter().find(|(_, n)| *n == v) {
                                level.set(*l);
                            }
                        }
                    >
                        {LEVELS
                            .iter()
                            .map(|(l, n)| {
                                let l = *l;
                                view! { <option value=*n selected=move || level.get() == l>{*n}</option> }
                            })
                            .collect_view()}
                    </select>
                </div>
            </fieldset>
            {move || error.get().map(|(_, e)| view! { <p class="form-error" role="alert" data-testid="settings-error">{e}</p> })}
            <div class="form-actions">
                <button type="submit" class="btn btn-primary" data-testid="settings-save" disabled=move || saving.get()>
                    {move || if saving.get() { "Saving…" } else { "Save settings" }}
                </button>
            </div>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_typed_and_milliseconds_are_sent() {
        assert_eq!(parse_seconds("15"), Some(15_000));
        assert_eq!(parse_seconds(" 2.5 "), Some(2_500));
        assert_eq!(parse_seconds("0"), None);
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("soon"), None);
        assert_eq!(seconds(300_000), "300");
        assert_eq!(seconds(1_500), "1.5");
    }
}
