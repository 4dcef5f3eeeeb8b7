//! `/portal`: the public technicians' page. The latest release (notes rendered safely, assets
//! with sizes), kept fresh by the DataSyncManager (every 5 minutes and when the tab becomes
//! visible), and downloads gated by a license key: an accepted key gets a link to the file.

use std::collections::BTreeMap;

use keysync_shared::{DownloadLink, DownloadRequest, LatestRelease};
use leptos::prelude::*;

use crate::api::{self, ApiFailure};
use crate::format;
use crate::notes::{self, Block, Inline};
use crate::sync::config::RELEASES;
use crate::sync::{manager, BrowserClock, Clock, Millis, SyncOptions, Trigger};

const LATEST_URL: &str = "/api/releases/latest";

/// What a refused download means to the person holding the key.
pub fn refusal_message(failure: &ApiFailure) -> String {
    let validation = match failure {
        ApiFailure::Server { body, .. } => body
            .error
            .details
            .get("validation_code")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        ApiFailure::Network(_) => None,
    };
    match (failure.status(), validation.as_deref()) {
        (Some(403), Some("NOT_FOUND")) => {
            "This license key does not exist. Check it for typos.".into()
        }
        (Some(403), Some("SUSPENDED")) => {
            "This license key is suspended. Ask your administrator to reactivate it.".into()
        }
        (Some(403), Some("REVOKED")) => {
            "This license key was revoked and can no longer download.".into()
        }
        (Some(403), Some("EXPIRED")) => "This license key has expired. Ask for a renewal.".into(),
        (Some(403), Some(code)) => format!("This license key cannot download ({code})."),
        (Some(422), _) => "Enter a license key.".into(),
        (Some(404), _) => {
            "This file is no longer part of the latest release. Reload the page.".into()
        }
        (Some(429), _) => "Too many attempts. Wait a minute and try again.".into(),
        (None, _) => "The server could not be reached. Check the connection and try again.".into(),
        _ => failure.message(),
    }
}

/// Only web links leave the page (a `javascript:` URL from upstream must not become a link).
pub fn safe_url(url: &str) -> Option<&str> {
    (url.starts_with("https://") || url.starts_with("http://")).then_some(url)
}

fn inline_view(runs: Vec<Inline>) -> impl IntoView {
    runs.into_iter()
        .map(|run| match run {
            Inline::Text(t) => view! { <span>{t}</span> }.into_any(),
            Inline::Bold(t) => view! { <strong>{t}</strong> }.into_any(),
            Inline::Code(t) => view! { <code>{t}</code> }.into_any(),
        })
        .collect_view()
}

fn notes_view(body: &str) -> impl IntoView {
    notes::blocks(body)
        .into_iter()
        .map(|block| match block {
            Block::Heading(4, runs) => view! { <h4>{inline_view(runs)}</h4> }.into_any(),
            Block::Heading(5, runs) => view! { <h5>{inline_view(runs)}</h5> }.into_any(),
            Block::Heading(_, runs) => view! { <h3>{inline_view(runs)}</h3> }.into_any(),
            Block::List(items) => view! {
                <ul>
                    {items.into_iter().map(|i| view! { <li>{inline_view(i)}</li> }).collect_view()}
                </ul>
            }
            .into_any(),
            Block::Paragraph(runs) => view! { <p>{inline_view(runs)}</p> }.into_any(),
        })
        .collect_view()
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Link(DownloadLink),
    Refused(String),
}

#[component]
pub fn Portal() -> impl IntoView {
    let release = RwSignal::new(None::<LatestRelease>);
    let error = RwSignal::new(None::<String>);
    // When this page last heard from the server (the server's own `fetched_at` says when it
    // last heard from upstream).
    let received = RwSignal::new(None::<Millis>);
    let now = RwSignal::new(BrowserClock.now());
    let key = RwSignal::new(String::new());
    let outcomes = RwSignal::new(BTreeMap::<String, Outcome>::new());
    let busy = RwSignal::new(None::<String>);

    let m = manager();
    let interval = m.interval_for(RELEASES, crate::sync::config::RELEASES_INTERVAL);
    m.register(
        RELEASES,
        move |trigger: Trigger| async move {
            let result = api::get_cached(RELEASES, LATEST_URL, interval, trigger == Trigger::Revalidate)
                .await
                .and_then(|body| api::parse_body::<LatestRelease>(&body));
            match result {
                Ok(latest) => {
                    if release.try_with_untracked(|r| r.as_ref() != Some(&latest)) == Some(true) {
                        release.try_set(Some(latest));
                    }
                    error.try_set(None);
                    received.try_set(Some(BrowserClock.now()));
                    Ok(())
                }
                Err(failure) => {
                    let message = match failure.status() {
                        Some(404) => "No release has been published yet.".to_string(),
                        Some(503) => "The release server is unavailable right now; try again in a few minutes.".into(),
                        _ => failure.message(),
                    };
                    error.try_set(Some(message.clone()));
                    Err(message)
                }
            }
        },
        SyncOptions::every(interval),
    );
    let ticker = set_interval_with_handle(
        move || {
            now.try_set(BrowserClock.now());
        },
        std::time::Duration::from_secs(1),
    )
    .ok();
    on_cleanup(move || {
        manager().unregister(RELEASES);
        if let Some(t) = ticker {
            t.clear();
        }
    });

    let download = move |tag: String, asset: String| {
        let typed = key.get_untracked().trim().to_owned();
        busy.set(Some(asset.clone()));
        leptos::task::spawn_local(async move {
            let path = format!(
                "/api/releases/{}/assets/{}/download",
                api::encode(&tag),
                api::encode(&asset)
            );
            let result: Result<DownloadLink, _> =
                api::send_json("POST", &path, &DownloadRequest { key: typed }, None).await;
            let outcome = match result {
                Ok(link) => Outcome::Link(link),
                Err(failure) => Outcome::Refused(refusal_message(&failure)),
            };
            outcomes.try_update(|o| {
                o.insert(asset, outcome);
            });
            busy.try_set(None);
        });
    };

    let freshness = move || {
        let r = release.get()?;
        let ago = received
            .get()
            .map(|t| format::relative(t, now.get()))
            .unwrap_or_default();
        Some(view! {
            <p class="portal-freshness" data-testid="portal-freshness" data-stale=r.stale.to_string()>
                {if r.stale {
                    view! {
                        <span class="badge badge-stale" data-testid="portal-stale">"Stale"</span>
                        " The release server cannot be reached; showing the copy fetched "
                    }
                        .into_any()
                } else {
                    view! {
                        <span class="badge badge-fresh" data-testid="portal-fresh">"Up to date"</span>
                        " Fetched from the release server "
                    }
                        .into_any()
                }}
                <time data-testid="portal-fetched-at">{format::date_time(&r.fetched_at)}</time>
                ". Checked " {ago} "."
            </p>
        })
    };

    view! {
        <section class="page portal" data-testid="portal-page">
            <header class="page-head">
                <h1>"Downloads"</h1>
            </header>
            {move || error.get().map(|e| view! {
                <p class="banner banner-error" role="alert" data-testid="portal-error">{e}</p>
            })}
            {freshness}
            {move || {
                release.get().map(|r| {
                    let tag = r.tag_name.clone();
                    let published = r.published_at.as_ref().map(format::date).unwrap_or_else(|| "—".into());
                    view! {
                        <article class="card release" data-testid="release">
                            <h2 data-testid="release-name">{r.name.clone()}</h2>
                            <p class="release-meta">
                                <span class="badge" data-testid="release-tag">{r.tag_name.clone()}</span>
                                " published " <time data-testid="release-published">{published}</time>
                            </p>
                            <div class="release-notes" data-testid="release-notes">{notes_view(&r.body)}</div>
                            <div class="field">
                                <label for="portal-key">"License key"</label>
                                <input
                                    id="portal-key"
                                    type="text"
                                    autocomplete="off"
                                    spellcheck="false"
                                    placeholder="XXXX-XXXX-XXXX-XXXX"
                                    data-testid="portal-key"
                                    prop:value=move || key.get()
                                    on:input=move |ev| key.set(event_target_value(&ev))
                                />
                            </div>
                            <table class="table" data-testid="assets">
                                <thead>
                                    <tr>
                                        <th scope="col">"File"</th>
                                        <th scope="col">"Size"</th>
                                        <th scope="col"><span class="sr-only">"Download"</span></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {r.assets.iter().map(|a| {
                                        let (name, tag) = (a.name.clone(), tag.clone());
                                        let (n1, n2, n3) = (name.clone(), name.clone(), name.clone());
                                        view! {
                                            <tr data-testid="asset" data-asset=name.clone()>
                                                <td class="mono">{name.clone()}</td>
                                                <td data-testid="asset-size">{notes::human_size(a.size)}</td>
                                                <td>
                                                    <button
                                                        type="button"
                                                        class="btn btn-small btn-primary"
                                                        data-testid="asset-download"
                                                        disabled=move || busy.with(|b| b.as_deref() == Some(n1.as_str()))
                                                        on:click=move |_| download(tag.clone(), n2.clone())
                                                    >
                                                        "Download"
                                                    </button>
                                                    {move || outcomes.with(|o| o.get(&n3).cloned()).map(|o| match o {
                                                        Outcome::Link(link) => view! {
                                                            <p class="download-ok" data-testid="download-ok">
                                                                "Key accepted. "
                                                                {safe_url(&link.url).map(|u| view! {
                                                                    <a href=u.to_owned() rel="noopener noreferrer" data-testid="download-link">
                                                                        {format!("Download {}", link.asset)}
                                                                    </a>
                                                                })}
                                                            </p>
                                                        }.into_any(),
                                                        Outcome::Refused(text) => view! {
                                                            <p class="form-error" role="alert" data-testid="download-refused">{text}</p>
                                                        }.into_any(),
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </article>
                    }
                })
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keysync_shared::ErrorBody;

    fn refused(status: u16, code: Option<&str>) -> ApiFailure {
        let mut body = ErrorBody::new("license_refused", "refused");
        if let Some(code) = code {
            body = body.with_detail("validation_code", code);
        }
        ApiFailure::Server { status, body }
    }

    #[test]
    fn each_refusal_gets_its_own_sentence() {
        let messages: Vec<String> = [
            refused(403, Some("NOT_FOUND")),
            refused(403, Some("SUSPENDED")),
            refused(403, Some("REVOKED")),
            refused(403, Some("EXPIRED")),
            refused(422, None),
            refused(404, None),
            refused(429, None),
            ApiFailure::Network("down".into()),
        ]
        .iter()
        .map(refusal_message)
        .collect();

        let distinct: std::collections::BTreeSet<_> = messages.iter().collect();
        assert_eq!(distinct.len(), messages.len());
        assert!(messages[1].contains("suspended"));
        assert!(messages[3].contains("expired"));
    }

    #[test]
    fn only_web_links_are_followed() {
        assert_eq!(safe_url("https://x.example/a"), Some("https://x.example/a"));
        assert_eq!(safe_url("javascript:alert(1)"), None);
    }
}
