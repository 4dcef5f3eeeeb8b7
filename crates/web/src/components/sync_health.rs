//! The dashboard's sync-health panel: per source, the p50/p95 fetch time, error rate and 304
//! ratio every admin's browser reported, and how long push streams were connected
//! (`GET /api/admin/sync/metrics`).

use keysync_shared::SyncHealth;
use leptos::prelude::*;

use crate::api;
use crate::sync::{manager, SyncOptions, Trigger};

const HEALTH_URL: &str = "/api/admin/sync/metrics";
/// The source key of this panel's own polling.
pub const SYNC_HEALTH: &str = "sync-health";
const HEALTH_INTERVAL: u64 = 30_000;

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} ms"))
        .unwrap_or_else(|| "—".into())
}

fn percent(ratio: f64) -> String {
    format!("{:.1} %", ratio * 100.0)
}

#[component]
pub fn SyncHealthPanel() -> impl IntoView {
    let health = RwSignal::new(None::<SyncHealth>);
    let error = RwSignal::new(None::<String>);
    let m = manager();
    let interval = m.interval_for(SYNC_HEALTH, HEALTH_INTERVAL);
    m.register(
        SYNC_HEALTH,
        move |trigger: Trigger| async move {
            let result = api::get_cached(
                SYNC_HEALTH,
                HEALTH_URL,
                interval,
                trigger == Trigger::Revalidate,
            )
            .await
            .and_then(|body| api::parse_body::<SyncHealth>(&body));
            match result {
                Ok(h) => {
                    health.try_set(Some(h));
                    error.try_set(None);
                    Ok(())
                }
                Err(e) => {
                    error.try_set(Some(e.message()));
                    Err(e.message())
                }
            }
        },
        SyncOptions::every(interval),
    );
    on_cleanup(|| manager().unregister(SYNC_HEALTH));
    view! {
        <section class="card sync-health" data-testid="sync-health" aria-labelledby="sync-health-title">
            <h2 id="sync-health-title">"Sync health"</h2>
            {move || error.get().map(|e| view! { <p class="banner banner-error" role="alert">{e}</p> })}
            {move || health.get().map(|h| {
                let push = h.push;
                view! {
                    <p class="sync-health-push" data-testid="sync-health-push">
                        "Push connected "
                        <strong>{percent(push.connected_ratio)}</strong>
                        {format!(" of the time ({} s of {} s, {} reconnects)", push.connected_ms / 1000, push.window_ms / 1000, push.reconnects)}
                    </p>
                    {if h.sources.is_empty() {
                        view! { <p class="empty">"No reports yet: browsers send theirs every minute."</p> }.into_any()
                    } else {
                        view! {
                            <table class="table">
                                <thead>
                                    <tr>
                                        <th scope="col">"Source"</th>
                                        <th scope="col">"Fetches"</th>
                                        <th scope="col">"p50"</th>
                                        <th scope="col">"p95"</th>
                                        <th scope="col">"Errors"</th>
                                        <th scope="col">"304s"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {h.sources.into_iter().map(|s| view! {
                                        <tr data-testid="sync-health-row" data-source=s.source.clone()>
                                            <th scope="row">{s.source.clone()}</th>
                                            <td>{s.fetches}</td>
                                            <td>{ms(s.p50_ms)}</td>
                                            <td>{ms(s.p95_ms)}</td>
                                            <td>{percent(s.error_rate)}</td>
                                            <td>{percent(s.not_modified_ratio)}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }}
                }
            })}
        </section>
    }
}
