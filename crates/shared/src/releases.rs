//! The technicians' portal: the latest release of the product and key-gated downloads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One downloadable file of a release, as the upstream (GitHub) describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseAsset {
    pub name: String,
    pub size: i64,
    /// Upstream's own download counter.
    #[serde(default)]
    pub download_count: i64,
    pub browser_download_url: String,
}

/// `GET /api/releases/latest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestRelease {
    pub tag_name: String,
    pub name: String,
    pub body: String,
    pub published_at: Option<DateTime<Utc>>,
    pub assets: Vec<ReleaseAsset>,
    /// When the upstream last confirmed this copy.
    pub fetched_at: DateTime<Utc>,
    /// `true` when the upstream could not be reached (or refused) and this is the last good copy.
    pub stale: bool,
}

/// `POST /api/releases/{tag}/assets/{asset}/download`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DownloadRequest {
    pub key: String,
}

/// Where to download an asset from, once the key was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadLink {
    pub tag_name: String,
    pub asset: String,
    pub size: i64,
    pub url: String,
}
