//! The portal's release service: the latest published release of the configured GitHub
//! repository, fetched server-side and shared by every request.
//!
//! - Fresh for `releases_cache_secs` (5 minutes by default) after the upstream last confirmed it;
//!   after that the next request revalidates with `If-None-Match`, so an unchanged release costs
//!   the upstream a 304 (which GitHub does not count against the rate limit).
//! - Single flight: requests that arrive while a fetch is under way wait for it and share its
//!   result; however many arrive together, the upstream sees one call.
//! - The last good copy is kept in `releases` (`is_latest`, `etag`, `fetched_at`), so a restart
//!   starts from it. When the upstream fails or rate-limits, that copy is served with
//!   `stale: true`, and the upstream is left alone for `releases_retry_secs` (or as long as its
//!   `Retry-After`/`X-RateLimit-Reset` asks).
//! - [`ReleasesService::refresh_now`] forces a fetch (the GitHub webhook calls it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use keysync_shared::{LatestRelease, ReleaseAsset};
use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;
use serde::Deserialize;

use crate::config::Settings;
use crate::db::releases::{NewRelease, ReleaseRow, ReleaseStore};
use crate::db::store::now;
use crate::db::{Database, Store};
use crate::error::ApiError;
use crate::with_store;

/// The longest an upstream's `Retry-After` or rate-limit reset is honoured for.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Where the releases come from.
#[derive(Debug, Clone)]
struct Upstream {
    repo: String,
    url: String,
    token: Option<String>,
}

/// The copy the service serves from.
#[derive(Debug, Clone)]
struct Snapshot {
    release: LatestRelease,
    etag: Option<String>,
    fetched_at: NaiveDateTime,
}

/// Why a flight could not produce a copy, in a form every waiter can be handed.
#[derive(Debug, Clone)]
enum FlightError {
    NoRelease(String),
    Unavailable(String),
}

impl From<FlightError> for ApiError {
    fn from(err: FlightError) -> Self {
        match err {
            FlightError::NoRelease(m) => ApiError::NotFound(m),
            FlightError::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}

/// What only the flight holder touches.
#[derive(Debug, Default)]
struct Flight {
    loaded_from_db: bool,
    backoff_until: Option<Instant>,
    /// The answer of the last flight, handed to requests that waited for it.
    last: Option<Result<LatestRelease, FlightError>>,
}

/// An upstream failure, with how long it asked us to stay away.
#[derive(Debug)]
struct UpstreamError {
    message: String,
    no_release: bool,
    retry_after: Option<Duration>,
}

enum Fetched {
    NotModified,
    Release(Box<NewRelease>),
}

/// GitHub's release JSON, the fields keysync reads.
#[derive(Debug, Deserialize)]
struct GithubRelease {
    tag_name: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    published_at: Option<DateTime<Utc>>,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    prerelease: bool,
    #[serde(default)]
    assets: Vec<ReleaseAsset>,
}

pub struct ReleasesService {
    upstream: Option<Upstream>,
    db: Database,
    http: reqwest::Client,
    fresh_for: chrono::Duration,
    retry_after_failure: Duration,
    snapshot: RwLock<Option<Snapshot>>,
    /// Held for the whole of a fetch: the single flight.
    flight: tokio::sync::Mutex<Flight>,
    /// Bumped by every finished flight, so a waiter can tell one finished while it waited.
    generation: AtomicU64,
    /// Set by [`ReleasesService::invalidate`]: the next request fetches whatever the age.
    invalidated: AtomicBool,
}

impl std::fmt::Debug for ReleasesService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No token, and no database handle (it has nothing to show).
        f.debug_struct("ReleasesService")
            .field("repo", &self.repo())
            .finish_non_exhaustive()
    }
}

impl ReleasesService {
    pub fn new(db: Database, settings: &Settings) -> anyhow::Result<Self> {
        let upstream = match settings.releases_repo.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(repo) => {
                if !valid_repo(repo) {
                    anyhow::bail!("releases_repo `{repo}` must have the form owner/name");
                }
                Some(Upstream {
                    repo: repo.to_owned(),
                    url: format!(
                        "{}/repos/{repo}/releases/latest",
                        settings.releases_api_url.trim_end_matches('/')
                    ),
                    token: settings.releases_token.clone().filter(|t| !t.is_empty()),
                })
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.releases_timeout_secs.max(1)))
            .user_agent(concat!("keysync/", env!("CARGO_PKG_VERSION")))
            // Calls are minutes apart: a kept-alive connection would only go stale, and one made
            // on an actix worker's runtime must not be reused from another's.
            .pool_max_idle_per_host(0)
            .build()?;
        Ok(Self {
            upstream,
            db,
            http,
            fresh_for: chrono::Duration::try_seconds(
                i64::try_from(settings.releases_cache_secs).unwrap_or(i64::MAX),
            )
            .unwrap_or(chrono::Duration::MAX),
            retry_after_failure: Duration::from_secs(settings.releases_retry_secs),
            snapshot: RwLock::new(None),
            flight: tokio::sync::Mutex::new(Flight::default()),
            generation: AtomicU64::new(0),
            invalidated: AtomicBool::new(false),
        })
    }

    /// The configured `owner/name`, if any.
    pub fn repo(&self) -> Option<&str> {
        self.upstream.as_ref().map(|u| u.repo.as_str())
    }

    fn upstream(&self) -> Result<&Upstream, ApiError> {
        self.upstream.as_ref().ok_or_else(|| {
            ApiError::NotFound("no releases repository is configured on this server".into())
        })
    }

    fn current(&self) -> Option<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_current(&self, snapshot: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
    }

    fn is_fresh(&self, snapshot: &Snapshot) -> bool {
        !self.invalidated.load(Ordering::Acquire) && now() - snapshot.fetched_at < self.fresh_for
    }

    /// The latest release: the fresh copy, or one fetched now (shared with every request that
    /// arrives meanwhile), or the last good copy marked stale when the upstream fails.
    pub async fn latest(&self) -> Result<LatestRelease, ApiError> {
        let upstream = self.upstream()?;
        if let Some(snapshot) = self.current().filter(|s| self.is_fresh(s)) {
            return Ok(snapshot.release);
        }
        let seen = self.generation.load(Ordering::Acquire);
        let mut flight = self.flight.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            if let Some(last) = flight.last.clone() {
                return last.map_err(ApiError::from);
            }
        }
        self.fly(&mut flight, upstream, false).await
    }

    /// Fetches the latest release from the upstream now, whatever the age of the copy and any
    /// back-off, and returns what is served afterwards (the last good copy, marked stale, if the
    /// upstream failed). Waits for a fetch already under way to finish first, then makes its
    /// own, so the answer reflects the upstream as it is after the call began.
    ///
    /// This is the hook for GitHub's `release` webhook event: call it when a release is
    /// published, edited or deleted.
    pub async fn refresh_now(&self) -> Result<LatestRelease, ApiError> {
        let upstream = self.upstream()?;
        let mut flight = self.flight.lock().await;
        self.fly(&mut flight, upstream, true).await
    }

    /// Marks the copy out of date without waiting: the next request fetches. For callers that
    /// must not wait on the upstream.
    pub fn invalidate(&self) {
        self.invalidated.store(true, Ordering::Release);
    }

    /// One flight, under the flight lock.
    async fn fly(
        &self,
        flight: &mut Flight,
        upstream: &Upstream,
        force: bool,
    ) -> Result<LatestRelease, ApiError> {
        let result = self.fly_inner(flight, upstream, force).await;
        flight.last = Some(result.clone());
        self.generation.fetch_add(1, Ordering::AcqRel);
        result.map_err(ApiError::from)
    }

    async fn fly_inner(
        &self,
        flight: &mut Flight,
        upstream: &Upstream,
        force: bool,
    ) -> Result<LatestRelease, FlightError> {
        if !flight.loaded_from_db {
            // The first flight of this process starts from the copy a previous run kept.
            match self.load_stored(upstream).await {
                Ok(Some(snapshot)) => self.set_current(snapshot),
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "cannot read the stored release"),
            }
            flight.loaded_from_db = true;
        }
        let current = self.current();
        if !force {
            if let Some(snapshot) = current.as_ref().filter(|s| self.is_fresh(s)) {
                return Ok(snapshot.release.clone());
            }
            if flight
                .backoff_until
                .is_some_and(|until| Instant::now() < until)
            {
                return stale_or(current, "the release server is unavailable; retry later");
            }
        }
        self.invalidated.store(false, Ordering::Release);
        let etag = current.as_ref().and_then(|s| s.etag.clone());
        match self.fetch(upstream, etag.as_deref()).await {
            Ok(Fetched::Release(new)) => {
                flight.backoff_until = None;
                let snapshot = self.store_release(*new).await;
                let release = snapshot.release.clone();
                self.set_current(snapshot);
                Ok(release)
            }
            Ok(Fetched::NotModified) => match current {
                Some(mut snapshot) => {
                    flight.backoff_until = None;
                    let at = now();
                    snapshot.fetched_at = at;
                    snapshot.release.fetched_at = at.and_utc();
                    snapshot.release.stale = false;
                    self.touch_stored(upstream, &snapshot.release.tag_name, at)
                        .await;
                    let release = snapshot.release.clone();
                    self.set_current(snapshot);
                    Ok(release)
                }
                None => Err(FlightError::Unavailable(
                    "the release server answered 304 to a request without a copy".into(),
                )),
            },
            Err(err) => {
                let wait = err
                    .retry_after
                    .unwrap_or(Duration::ZERO)
                    .max(self.retry_after_failure)
                    .min(MAX_BACKOFF);
                tracing::warn!(
                    repo = %upstream.repo,
                    error = %err.message,
                    retry_in_secs = wait.as_secs(),
                    "cannot fetch the latest release; serving the last good copy"
                );
                flight.backoff_until = Some(Instant::now() + wait);
                if current.is_none() && err.no_release {
                    return Err(FlightError::NoRelease(
                        "the repository has no published release".into(),
                    ));
                }
                stale_or(current, "the release server is unavailable; retry later")
            }
        }
    }

    async fn fetch(
        &self,
        upstream: &Upstream,
        etag: Option<&str>,
    ) -> Result<Fetched, UpstreamError> {
        let mut request = self
            .http
            .get(&upstream.url)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(token) = &upstream.token {
            request = request.bearer_auth(token);
        }
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        let response = request.send().await.map_err(|e| UpstreamError {
            message: format!("request failed: {e}"),
            no_release: false,
            retry_after: None,
        })?;
        let status = response.status();
        match status {
            StatusCode::NOT_MODIFIED => Ok(Fetched::NotModified),
            StatusCode::OK => {
                let etag = response
                    .headers()
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let release: GithubRelease = response.json().await.map_err(|e| UpstreamError {
                    message: format!("unreadable release JSON: {e}"),
                    no_release: false,
                    retry_after: None,
                })?;
                if release.draft || release.prerelease {
                    return Err(UpstreamError {
                        message: format!(
                            "the upstream's latest release {} is a draft or prerelease",
                            release.tag_name
                        ),
                        no_release: true,
                        retry_after: None,
                    });
                }
                let at = now();
                Ok(Fetched::Release(Box::new(NewRelease {
                    repo: upstream.repo.clone(),
                    tag_name: release.tag_name,
                    name: release.name.unwrap_or_default(),
                    body: release.body.unwrap_or_default(),
                    published_at: release.published_at.map(|t| t.naive_utc()),
                    assets: serde_json::to_string(&release.assets).unwrap_or_else(|_| "[]".into()),
                    is_latest: true,
                    etag,
                    fetched_at: at,
                    updated_at: at,
                })))
            }
            StatusCode::NOT_FOUND => Err(UpstreamError {
                message: "the upstream has no latest release (404)".into(),
                no_release: true,
                retry_after: None,
            }),
            other => Err(UpstreamError {
                message: format!("the upstream answered {other}"),
                no_release: false,
                retry_after: upstream_backoff(status, response.headers()),
            }),
        }
    }

    async fn load_stored(&self, upstream: &Upstream) -> Result<Option<Snapshot>, ApiError> {
        let repo = upstream.repo.clone();
        let row = self
            .db
            .run(move |conn| {
                with_store!(conn, |store| store
                    .latest_release(&repo)
                    .map_err(ApiError::from))
            })
            .await?;
        Ok(row.map(|row| snapshot_of(&row)))
    }

    /// Keeps `new` in the database; the copy is served even if that fails (it is logged).
    async fn store_release(&self, new: NewRelease) -> Snapshot {
        let fallback = Snapshot {
            release: LatestRelease {
                tag_name: new.tag_name.clone(),
                name: new.name.clone(),
                body: new.body.clone(),
                published_at: new.published_at.map(|t| t.and_utc()),
                assets: serde_json::from_str(&new.assets).unwrap_or_default(),
                fetched_at: new.fetched_at.and_utc(),
                stale: false,
            },
            etag: new.etag.clone(),
            fetched_at: new.fetched_at,
        };
        let stored = self
            .db
            .run(move |conn| {
                with_store!(conn, |store| store
                    .write_tx(|tx| tx.save_latest_release(&new))
                    .map_err(ApiError::from))
            })
            .await;
        match stored {
            Ok(row) => {
                tracing::info!(repo = %row.repo, tag = %row.tag_name, "latest release fetched");
                snapshot_of(&row)
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot store the latest release");
                fallback
            }
        }
    }

    async fn touch_stored(&self, upstream: &Upstream, tag: &str, at: NaiveDateTime) {
        let (repo, tag) = (upstream.repo.clone(), tag.to_owned());
        let touched = self
            .db
            .run(move |conn| {
                with_store!(conn, |store| store
                    .write_tx(|tx| {
                        match tx.find_release(&repo, &tag)? {
                            Some(row) => tx.touch_release(row.id, at),
                            None => Ok(0),
                        }
                    })
                    .map_err(ApiError::from))
            })
            .await;
        if let Err(err) = touched {
            tracing::warn!(error = %err, "cannot record the release revalidation");
        }
    }

    /// The stored release `tag` of the configured repository and its asset `asset`, fetching the
    /// latest release first when `tag` is not known yet. 404 when either does not exist.
    pub async fn find_asset(
        &self,
        tag: &str,
        asset: &str,
    ) -> Result<(ReleaseRow, ReleaseAsset), ApiError> {
        let upstream = self.upstream()?;
        let mut row = self.find_stored(upstream, tag).await?;
        if row.is_none() {
            // A technician may follow a link to a release published after our copy was taken.
            if self
                .latest()
                .await
                .is_ok_and(|latest| latest.tag_name == tag)
            {
                row = self.find_stored(upstream, tag).await?;
            }
        }
        let row = row.ok_or_else(|| ApiError::NotFound(format!("no release {tag}")))?;
        let found = row
            .assets()
            .into_iter()
            .find(|a| a.name == asset)
            .ok_or_else(|| ApiError::NotFound(format!("release {tag} has no asset {asset}")))?;
        Ok((row, found))
    }

    async fn find_stored(
        &self,
        upstream: &Upstream,
        tag: &str,
    ) -> Result<Option<ReleaseRow>, ApiError> {
        let (repo, tag) = (upstream.repo.clone(), tag.to_owned());
        self.db
            .run(move |conn| {
                with_store!(conn, |store| store
                    .find_release(&repo, &tag)
                    .map_err(ApiError::from))
            })
            .await
    }
}

fn snapshot_of(row: &ReleaseRow) -> Snapshot {
    Snapshot {
        release: LatestRelease {
            tag_name: row.tag_name.clone(),
            name: row.name.clone(),
            body: row.body.clone(),
            published_at: row.published_at.map(|t| t.and_utc()),
            assets: row.assets(),
            fetched_at: row.fetched_at.and_utc(),
            stale: false,
        },
        etag: row.etag.clone(),
        fetched_at: row.fetched_at,
    }
}

/// The last good copy marked stale, or `message` as a 503 when there is none.
fn stale_or(current: Option<Snapshot>, message: &str) -> Result<LatestRelease, FlightError> {
    match current {
        Some(snapshot) => Ok(LatestRelease {
            stale: true,
            ..snapshot.release
        }),
        None => Err(FlightError::Unavailable(message.into())),
    }
}

/// How long a refusing upstream asks to be left alone: `Retry-After` (seconds), or for a spent
/// rate limit the time until `X-RateLimit-Reset` (epoch seconds).
fn upstream_backoff(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(secs) = number("retry-after") {
        return Some(Duration::from_secs(secs));
    }
    let spent = number("x-ratelimit-remaining") == Some(0);
    if spent
        && matches!(
            status,
            StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
        )
    {
        let reset = number("x-ratelimit-reset")?;
        let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
        return Some(Duration::from_secs(reset.saturating_sub(now)));
    }
    None
}

/// `owner/name` of letters, digits, `-`, `_` and `.`.
fn valid_repo(repo: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    matches!(repo.split_once('/'), Some((owner, name)) if ok(owner) && ok(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_must_be_owner_slash_name() {
        assert!(valid_repo("acme/tool"));
        assert!(valid_repo("acme-co/tool.rs"));
        assert!(!valid_repo("acme"));
        assert!(!valid_repo("acme/tool/x"));
        assert!(!valid_repo("/tool"));
        assert!(!valid_repo("acme/../x y"));
    }

    #[test]
    fn a_spent_rate_limit_waits_until_its_reset_and_retry_after_wins() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        let reset = Utc::now().timestamp() + 120;
        headers.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());

        let wait = upstream_backoff(StatusCode::FORBIDDEN, &headers).unwrap();
        assert!((110..=121).contains(&wait.as_secs()), "{wait:?}");

        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            upstream_backoff(StatusCode::FORBIDDEN, &headers),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            upstream_backoff(StatusCode::INTERNAL_SERVER_ERROR, &HeaderMap::new()),
            None
        );
    }
}
