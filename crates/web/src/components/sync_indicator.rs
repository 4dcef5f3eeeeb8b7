use std::time::Duration;

use leptos::prelude::*;

use crate::data::AdminData;
use crate::format;
use crate::sync::{manager, Indicator, PauseReason};

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

fn label(indicator: Indicator) -> &'static str {
    match indicator {
        Indicator::Live => "Live",
        Indicator::Polling => "Polling",
        Indicator::Paused(PauseReason::AutoSyncOff) => "Paused",
        Indicator::Paused(PauseReason::Offline) => "Offline",
        Indicator::Paused(PauseReason::Hidden) => "Paused (tab hidden)",
        Indicator::Failing => "Sync failing",
    }
}

fn explanation(indicator: Indicator) -> &'static str {
    match indicator {
        Indicator::Live => "Changes arrive the moment they are saved (server push).",
        Indicator::Polling => "Checking for changes at regular intervals.",
        Indicator::Paused(PauseReason::AutoSyncOff) => "Auto-sync is off: use Refresh Now.",
        Indicator::Paused(PauseReason::Offline) => "No network: syncing resumes when it returns.",
        Indicator::Paused(PauseReason::Hidden) => "Paused while the tab is in the background.",
        Indicator::Failing => "The server could not be reached; retrying. Data shown may be stale.",
    }
}

/// The live sync indicator, "Last updated" (ticking), "Refresh Now" and the auto-sync switch.
#[component]
pub fn SyncBar() -> impl IntoView {
    let data = AdminData::get();
    let now = RwSignal::new(now_ms());
    let ticker = set_interval_with_handle(move || now.set(now_ms()), Duration::from_secs(1)).ok();
    on_cleanup(move || {
        if let Some(ticker) = ticker {
            ticker.clear();
        }
    });
    let busy = RwSignal::new(false);
    let indicator = move || data.sync.with(|s| s.indicator);
    let last_updated = move || data.sync.with(|s| s.last_updated);
    let refresh = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            let started = now_ms();
            let result = manager().refresh_all().await;
            // Keep the loading state visible long enough to be seen.
            let elapsed = now_ms().saturating_sub(started);
            if elapsed < 400 {
                gloo_timers::future::TimeoutFuture::new((400 - elapsed) as u32).await;
            }
            busy.try_set(false);
            if let Err(e) = result {
                data.say(
                    crate::data::NoticeKind::Error,
                    format!("Refresh failed: {e}"),
                );
            }
        });
    };
    view! {
        <div class="syncbar" data-testid="sync-bar">
            <span
                class="sync-indicator"
                data-testid="sync-indicator"
                data-state=move || indicator().as_str()
                title=move || explanation(indicator())
                role="status"
                aria-live="polite"
            >
                <span class="dot" aria-hidden="true"></span>
                <span class="sync-label">{move || label(indicator())}</span>
            </span>
            <span
                class="last-updated"
                data-testid="last-updated"
                data-last-sync=move || last_updated().map(|t| t.to_string()).unwrap_or_default()
            >
                "Last updated "
                <time>
                    {move || match last_updated() {
                        Some(t) => format::relative(t, now.get()),
                        None => "never".into(),
                    }}
                </time>
            </span>
            <button
                type="button"
                class="btn btn-small"
                data-testid="refresh-now"
                aria-busy=move || busy.get().to_string()
                disabled=move || busy.get()
                on:click=refresh
            >
                <span class="spinner" aria-hidden="true" class:spinning=move || busy.get()></span>
                {move || if busy.get() { "Refreshing…" } else { "Refresh Now" }}
            </button>
            <label class="switch">
                <input
                    type="checkbox"
                    role="switch"
                    data-testid="auto-sync-toggle"
                    prop:checked=move || data.sync.with(|s| s.auto_sync)
                    on:change=move |ev| manager().set_auto_sync(event_target_checked(&ev))
                />
                <span class="switch-track" aria-hidden="true"></span>
                "Auto-sync"
            </label>
        </div>
    }
}
