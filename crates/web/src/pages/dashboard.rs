use leptos::prelude::*;

use crate::components::{StatCard, ValidationsChart};
use crate::data::AdminData;
use crate::format;
use crate::sync::config::DASHBOARD_STATS;

/// `/admin`: the numbers, validations over 24 hours, and what the sync engine is doing.
#[component]
pub fn Dashboard() -> impl IntoView {
    let data = AdminData::get();
    let stat = move |pick: fn(&keysync_shared::DashboardStats) -> i64| {
        Signal::derive(move || {
            data.stats
                .with(|s| s.as_ref().map(|s| format::count(pick(s))))
        })
    };
    let all_time = move |pick: fn(&keysync_shared::DashboardStats) -> i64| {
        Signal::derive(move || {
            data.stats.with(|s| {
                s.as_ref()
                    .map(|s| format!("{} all time", format::count(pick(s))))
                    .unwrap_or_default()
            })
        })
    };
    let hours = Signal::derive(move || {
        data.stats
            .with(|s| s.as_ref().map(|s| s.validations_hourly.clone()))
    });
    view! {
        <section class="page" data-testid="dashboard">
            <header class="page-head">
                <h1>"Dashboard"</h1>
            </header>
            {move || {
                data.error_of(DASHBOARD_STATS)
                    .map(|e| {
                        view! {
                            <p class="banner banner-error" role="alert" data-testid="stats-error">
                                "The numbers could not be refreshed: " {format::sentence(&e)}
                                " Showing the last ones received."
                            </p>
                        }
                    })
            }}
            <div class="stat-grid">
                <StatCard label="License keys" testid="stat-total-keys" value=stat(|s| s.keys.total) />
                <StatCard label="Active" testid="stat-active-keys" value=stat(|s| s.keys.active) tone="tone-good" />
                <StatCard label="Suspended" testid="stat-suspended-keys" value=stat(|s| s.keys.suspended) tone="tone-warn" />
                <StatCard
                    label="Revoked or expired"
                    testid="stat-revoked-keys"
                    value=stat(|s| s.keys.revoked + s.keys.expired)
                    tone="tone-bad"
                />
                <StatCard label="Customers" testid="stat-customers" value=stat(|s| s.customers) />
                <StatCard label="Admins" testid="stat-admins" value=stat(|s| s.admins) />
                <StatCard
                    label="Validations (24 h)"
                    testid="stat-validations"
                    value=stat(|s| s.validations_24h)
                    hint=all_time(|s| s.validations_total)
                />
                <StatCard
                    label="Downloads (24 h)"
                    testid="stat-downloads"
                    value=stat(|s| s.downloads_24h)
                    hint=all_time(|s| s.downloads_total)
                />
            </div>
            <div class="card">
                <h2>"Validations, last 24 hours"</h2>
                <ValidationsChart hours=hours />
            </div>
            <div class="card">
                <h2>"Sync sources"</h2>
                <div class="table-wrap">
                    <table class="data-table compact" data-testid="sync-sources">
                        <thead>
                            <tr>
                                <th>"Source"</th>
                                <th class="num">"Interval"</th>
                                <th class="num">"Now every"</th>
                                <th>"Last sync"</th>
                                <th class="num">"Fetches"</th>
                                <th>"State"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=move || data.sync.with(|s| s.sources.clone())
                                key=|s| s.key.clone()
                                children=move |s| {
                                    let key = s.key.clone();
                                    let current = move || {
                                        data.sync
                                            .with(|snap| snap.sources.iter().find(|x| x.key == key).cloned())
                                    };
                                    let c1 = current.clone();
                                    let c2 = current.clone();
                                    let c3 = current.clone();
                                    view! {
                                        <tr>
                                            <td class="mono">{s.key.clone()}</td>
                                            <td class="num">{format::interval(s.interval)}</td>
                                            <td class="num">
                                                {move || {
                                                    c1()
                                                        .and_then(|x| x.effective_interval)
                                                        .map(format::interval)
                                                        .unwrap_or_else(|| "paused".into())
                                                }}
                                            </td>
                                            <td>
                                                {move || {
                                                    c2()
                                                        .and_then(|x| x.last_sync)
                                                        .map(|t| {
                                                            format::relative(t, js_sys::Date::now() as u64)
                                                        })
                                                        .unwrap_or_else(|| "never".into())
                                                }}
                                            </td>
                                            <td class="num">
                                                {move || current().map(|x| x.fetch_count).unwrap_or(0)}
                                            </td>
                                            <td>
                                                {move || match c3() {
                                                    Some(x) if x.in_flight => "fetching".to_string(),
                                                    Some(x) => x.last_error.map(|e| format!("error: {e}")).unwrap_or_else(|| "ok".into()),
                                                    None => String::new(),
                                                }}
                                            </td>
                                        </tr>
                                    }
                                }
                            />
                        </tbody>
                    </table>
                </div>
            </div>
            <crate::components::SyncHealthPanel />
        </section>
    }
}
