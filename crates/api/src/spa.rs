//! Serving the built single-page app from `dist/`.
//!
//! Files that exist are served as files; any other `GET` outside `/api` gets `index.html`, so a
//! reload on `/admin/keys` lands in the app's router. When `dist/` has not been built, every
//! page explains how to build it instead of answering 404.

use std::path::{Path, PathBuf};

use actix_files::{Files, NamedFile};
use actix_web::dev::{fn_service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, ContentType};
use actix_web::{web, HttpResponse};

const NOT_BUILT_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>keysync: app not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>The keysync web app has not been built</h1>
<p>The API is running, but the directory holding the built single-page app is missing.</p>
<p>Run <code>cargo xtask run</code> from the repository root: it builds the app and serves it here.</p>
<p>The API itself answers at <a href="/api/health"><code>/api/health</code></a>.</p>
</body></html>"#;

/// Mounts the SPA (or the "not built" page) at `/`. Call after the `/api` scope.
pub fn configure(dist: &Path) -> impl FnOnce(&mut web::ServiceConfig) {
    let dist = dist.to_path_buf();
    move |cfg| {
        if dist.join("index.html").is_file() {
            let index: PathBuf = dist.join("index.html");
            cfg.service(
                Files::new("/", &dist)
                    .index_file("index.html")
                    .use_etag(true)
                    .default_handler(fn_service(move |req: ServiceRequest| {
                        let index = index.clone();
                        async move {
                            let (req, _) = req.into_parts();
                            let file = NamedFile::open_async(&index).await?;
                            let mut response = file.into_response(&req);
                            // The shell must always be revalidated so a new build is picked up.
                            response.headers_mut().insert(
                                header::CACHE_CONTROL,
                                header::HeaderValue::from_static("no-cache"),
                            );
                            Ok(ServiceResponse::new(req, response))
                        }
                    })),
            );
        } else {
            cfg.default_service(web::to(|| async {
                HttpResponse::Ok()
                    .content_type(ContentType::html())
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .body(NOT_BUILT_PAGE)
            }));
        }
    }
}
