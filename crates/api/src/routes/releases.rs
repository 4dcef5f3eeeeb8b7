//! The portal's endpoints: `GET /api/releases/latest` and the key-gated asset download
//! (`POST` answers the URL, `GET` with the key in `X-License-Key` redirects to it).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use keysync_shared::{DownloadLink, DownloadRequest};

use crate::error::ApiError;
use crate::http::RequestMeta;
use crate::licensing::attempts::DownloadTarget;
use crate::startup::AppState;

/// The header that carries the license key of a `GET` download.
pub const LICENSE_KEY_HEADER: &str = "X-License-Key";

pub async fn latest_release(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let release = state.releases.latest().await?;
    // The server does the caching; a browser must ask again to see a refresh.
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(release))
}

pub async fn download_asset(
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<(String, String)>,
    body: web::Json<DownloadRequest>,
) -> Result<HttpResponse, ApiError> {
    let (tag, asset) = path.into_inner();
    let link = authorize(&state, meta, &tag, &asset, &body.key).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(link))
}

pub async fn download_asset_redirect(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tag, asset) = path.into_inner();
    let key = req
        .headers()
        .get(LICENSE_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::unprocessable(
                LICENSE_KEY_HEADER,
                format!("send the license key in the {LICENSE_KEY_HEADER} header"),
            )
        })?
        .to_owned();
    let link = authorize(&state, meta, &tag, &asset, &key).await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, link.url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// Finds the asset, then validates the key; a refused key is a 403 carrying its validation code
/// and moves no counter.
async fn authorize(
    state: &AppState,
    meta: RequestMeta,
    tag: &str,
    asset: &str,
    key: &str,
) -> Result<DownloadLink, ApiError> {
    let (release, found) = state.releases.find_asset(tag, asset).await?;
    let validation = state
        .licensing
        .validate_download(
            meta,
            key,
            DownloadTarget {
                release_id: release.id,
                tag_name: release.tag_name.clone(),
                asset: found.name.clone(),
            },
        )
        .await?;
    if !validation.code.is_valid() {
        return Err(ApiError::LicenseRefused {
            code: validation.code,
        });
    }
    Ok(DownloadLink {
        tag_name: release.tag_name,
        asset: found.name,
        size: found.size,
        url: found.browser_download_url,
    })
}
