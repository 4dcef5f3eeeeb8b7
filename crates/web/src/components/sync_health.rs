//! The dashboard's sync-health panel: per source, the p50/p95 fetch time, error rate and 304
//! ratio every admin's browser reported, and how long push streams were connected
//! (`GET /api/admin/sync/metrics`).

use keysync_shared::SyncHealth;
use leptos::prelude::*;

use crate::api;

const HEALTH_URL: &str = "/api/admin/sync/metrics";
const HEALTH_INTERVAL: u64 = 30_000;

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{} ms", crate::format::tenths(v)))
        .unwrap_or_else(|| "—".into())
}

fn percent(ratio: f64) -> String {
    format!("{} %", crate::format::tenths(ratio * 100.0))
}

#[component]
pub fn SyncHealthPanel() -> impl IntoView {
    let health = RwSignal::new(None::<SyncHealth>);
    let error = RwSignal::new(None::<String>);
    // Its own timer, not a DataSyncManager source: these figures are about the sources, have
    // no ETag to revalidate, and must not count themselves.
    let load = move || {
        if crate::sync::dom::document_hidden() {
            return;
        }
        leptos::task::spawn_local(async move {
            match api::get_json::<SyncHealth>(HEALTH_URL).await {
                Ok(h) => {
                    health.try_set(Some(h));
                    error.try_set(None);
                }
                Err(e) => {
                    error.try_set(Some(e.message()));
                }
            }
        });
    };
    load();
    let timer =
        set_interval_with_handle(load, std::time::Duration::from_millis(HEALTH_INTERVAL)).ok();
    on_cleanup(move || {
        if let Some(t) = timer {
            t.clear();
        }
    });
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
