//! Typed calls to the keysync JSON API on the page's own origin, with reqwest (on wasm it drives
//! the browser's `fetch`, so the session cookie is the browser's: requests go with
//! `credentials: "same-origin"`, and the browser's HTTP cache is bypassed with `no-store`).
//!
//! Reads of synced sources go through [`get_cached`]: the shared `DataCache` answers while an
//! entry is fresh, and otherwise the request carries the cached `ETag` in `If-None-Match`, so an
//! unchanged resource costs a 304 and no body.

use keysync_shared::{ErrorBody, Health};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::sync::analytics::FetchResult;
use crate::sync::{self, Body, Millis};

/// A failed call: the server's error body when it sent one, or what went wrong on the way.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiFailure {
    Server { status: u16, body: ErrorBody },
    Network(String),
}

impl ApiFailure {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server { status, .. } => Some(*status),
            Self::Network(_) => None,
        }
    }

    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    pub fn code(&self) -> &str {
        match self {
            Self::Server { body, .. } => &body.error.code,
            Self::Network(_) => "network",
        }
    }

    /// A sentence for people.
    pub fn message(&self) -> String {
        match self {
            Self::Server { body, .. } => body.error.message.clone(),
            Self::Network(e) => format!("The server could not be reached ({e})."),
        }
    }
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Server { status, body } => write!(f, "{} ({status})", body.error.message),
            Self::Network(e) => write!(f, "network error: {e}"),
        }
    }
}

fn net_failure(e: reqwest::Error) -> ApiFailure {
    ApiFailure::Network(e.to_string())
}

/// A raw answer.
pub struct Raw {
    pub status: u16,
    pub etag: Option<String>,
    pub body: String,
}

thread_local! {
    /// One client for the page's lifetime (on wasm it holds no connections, only defaults).
    static CLIENT: reqwest::Client = reqwest::Client::new();
}

/// reqwest wants absolute URLs; the API is always on the page's own origin.
fn absolute(path: &str) -> Result<String, ApiFailure> {
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .ok_or_else(|| ApiFailure::Network("no window".into()))?;
    Ok(format!("{origin}{path}"))
}

/// Sends one request to `path` on this origin. Never served from the browser's HTTP cache
/// (`cache: "no-store"`): freshness is the sync engine's business, and a conditional request
/// made here reaches the server and comes back as a real 304. Dropping the future aborts the
/// fetch (reqwest ties each request to an `AbortController`).
pub async fn send(
    method: &str,
    path: &str,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> Result<Raw, ApiFailure> {
    let url = absolute(path)?;
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|e| ApiFailure::Network(e.to_string()))?;
    let mut request = CLIENT
        .with(|c| c.request(method, url))
        .header("Accept", "application/json");
    // Only the wasm client has fetch options; the native build serves the unit tests.
    #[cfg(target_arch = "wasm32")]
    {
        request = request
            .fetch_credentials_same_origin()
            .fetch_cache_no_store();
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.map_err(net_failure)?;
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Always read the body, even the empty one of a 204 or 304: dropping an unread response
    // aborts its fetch, and the browser then records the request as failed (status 0).
    let body = response.text().await.map_err(net_failure)?;
    Ok(Raw { status, etag, body })
}

fn failure(raw: &Raw) -> ApiFailure {
    let body = serde_json::from_str::<ErrorBody>(&raw.body).unwrap_or_else(|_| {
        ErrorBody::new(
            "http_error",
            format!("The server answered HTTP {}.", raw.status),
        )
    });
    ApiFailure::Server {
        status: raw.status,
        body,
    }
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, ApiFailure> {
    serde_json::from_str(body).map_err(|e| ApiFailure::Network(format!("unreadable answer: {e}")))
}

fn ok(raw: Raw) -> Result<Raw, ApiFailure> {
    if (200..300).contains(&raw.status) {
        Ok(raw)
    } else {
        Err(failure(&raw))
    }
}

pub async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, ApiFailure> {
    let raw = ok(send("GET", path, None, &[]).await?)?;
    parse(&raw.body)
}

/// A write with a JSON body; `if_match` is the resource's ETag for conditional writes.
pub async fn send_json<B: Serialize, T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: &B,
    if_match: Option<&str>,
) -> Result<T, ApiFailure> {
    let body = serde_json::to_string(body).map_err(|e| ApiFailure::Network(e.to_string()))?;
    let headers: Vec<(&str, &str)> = if_match.map(|m| ("If-Match", m)).into_iter().collect();
    let raw = ok(send(method, path, Some(body), &headers).await?)?;
    parse(&raw.body)
}

/// A write with no answer body (`DELETE`, logout).
pub async fn send_empty(
    method: &str,
    path: &str,
    if_match: Option<&str>,
) -> Result<(), ApiFailure> {
    let headers: Vec<(&str, &str)> = if_match.map(|m| ("If-Match", m)).into_iter().collect();
    ok(send(method, path, None, &headers).await?).map(|_| ())
}

/// A synced read through the shared cache: the body, parsed by the caller. With `revalidate`
/// false a fresh entry answers without a request; otherwise (and on a miss) the server is asked,
/// conditionally when an `ETag` is known, and a 304 makes the cached body fresh again for `ttl`.
/// Not generic on purpose: one copy of this state machine serves every source.
pub async fn get_cached(
    cache_key: &str,
    path: &str,
    ttl: Millis,
    revalidate: bool,
) -> Result<Body, ApiFailure> {
    let cache = sync::shared_cache();
    if !revalidate {
        let hit = cache.borrow_mut().get(cache_key);
        if let Some(body) = hit {
            return Ok(body);
        }
        cache
            .borrow()
            .logger()
            .info(|| format!("[Cache] Miss for {cache_key}, fetching..."));
    }
    let known = cache.borrow_mut().revalidation(cache_key);
    let headers: Vec<(&str, &str)> = known
        .as_ref()
        .map(|(_, tag)| ("If-None-Match", tag.as_str()))
        .into_iter()
        .collect();
    let started = sync::reporter::now_ms();
    let sent = send("GET", path, None, &headers).await;
    let outcome = match &sent {
        Ok(raw) if raw.status == 304 => FetchResult::NotModified,
        Ok(raw) if (200..300).contains(&raw.status) => FetchResult::Body {
            bytes: raw.body.len() as u64,
        },
        _ => FetchResult::Error,
    };
    sync::reporter::record(cache_key, sync::reporter::now_ms() - started, outcome);
    let raw = sent?;
    if raw.status == 304 {
        if let Some((body, _)) = known {
            cache.borrow_mut().touch(cache_key, ttl);
            cache
                .borrow()
                .logger()
                .debug(|| format!("[Cache] Not modified: {cache_key}"));
            return Ok(body);
        }
    }
    let raw = ok(raw)?;
    let body: Body = raw.body.into();
    cache
        .borrow_mut()
        .set_tagged(cache_key, body.clone(), raw.etag, ttl);
    Ok(body)
}

/// Parses a JSON body, as an [`ApiFailure`] when it does not fit `T`.
pub fn parse_body<T: DeserializeOwned>(body: &str) -> Result<T, ApiFailure> {
    parse(body)
}

pub async fn health() -> Result<Health, ApiFailure> {
    get_json("/api/health").await
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("SCO-7K2M"), "SCO-7K2M");
        assert_eq!(encode("a b&c=é"), "a%20b%26c%3D%C3%A9");
    }
}
