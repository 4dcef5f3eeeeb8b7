//! Typed calls to the keysync JSON API, relative to the page's origin.

use keysync_shared::{ErrorBody, Health};

/// A failed call: the server's error body when it sent one, or what went wrong on the way.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiFailure {
    Server { status: u16, body: ErrorBody },
    Network(String),
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Server { status, body } => write!(f, "{} ({status})", body.error.message),
            Self::Network(e) => write!(f, "network error: {e}"),
        }
    }
}

/// The page's origin (`http://127.0.0.1:8080`), since reqwest needs absolute URLs.
pub fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

pub async fn health() -> Result<Health, ApiFailure> {
    let response = reqwest::get(format!("{}/api/health", origin()))
        .await
        .map_err(|e| ApiFailure::Network(e.to_string()))?;
    let status = response.status().as_u16();
    if response.status().is_success() {
        response
            .json::<Health>()
            .await
            .map_err(|e| ApiFailure::Network(e.to_string()))
    } else {
        let body = response
            .json::<ErrorBody>()
            .await
            .map_err(|e| ApiFailure::Network(e.to_string()))?;
        Err(ApiFailure::Server { status, body })
    }
}
