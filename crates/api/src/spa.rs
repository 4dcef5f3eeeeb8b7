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
<body>
<h1>The keysync web app has not been built</h1>
<p>The API is running, but the directory holding the built single-page app is missing.</p>
<p>Run <code>cargo xtask run</code> from the repository root: it builds the app and serves it here.</p>
<p>The API itself answers at <a href="/api/health"><code>/api/health</code></a>.</p>
</body></html>"#;

/// The Content-Security-Policy for every response. Scripts may come only from this origin, plus
/// the one inline module script Trunk writes into `index.html` to start the app, allowed by its
/// SHA-256 (read from the built file at start) rather than by `'unsafe-inline'`. WebAssembly
/// needs `'wasm-unsafe-eval'`. Styles allow inline attributes, which the app sets through the
/// DOM; framing is refused.
pub fn content_security_policy(dist: &Path) -> String {
    let mut script_src = String::from("'self' 'wasm-unsafe-eval'");
    if let Ok(index) = std::fs::read_to_string(dist.join("index.html")) {
        for script in inline_scripts(&index) {
            script_src.push_str(&format!(" 'sha256-{}'", sha256_base64(script)));
        }
    }
    format!(
        "default-src 'self'; script-src {script_src}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The text of each inline `<script>` (one without `src`) in `html`.
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let Some(tag_end) = rest[start..].find('>').map(|i| start + i) else {
            break;
        };
        let tag = &rest[start..tag_end];
        let Some(close) = rest[tag_end..].find("</script>").map(|i| tag_end + i) else {
            break;
        };
        if !tag.contains("src=") {
            found.push(&rest[tag_end + 1..close]);
        }
        rest = &rest[close + "</script>".len()..];
    }
    found
}

fn sha256_base64(text: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_found_and_external_ones_skipped() {
        let html = r#"<head><script type="module">import init from '/a.js';
await init();</script><script src="/b.js"></script><script>x()</script></head>"#;

        let scripts = inline_scripts(html);

        assert_eq!(
            scripts,
            vec!["import init from '/a.js';\nawait init();", "x()"]
        );
    }

    #[test]
    fn the_policy_allows_the_built_inline_script_by_hash_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("index.html"),
            "<script type=\"module\">boot()</script>",
        )
        .unwrap();

        let csp = content_security_policy(dir.path());

        assert!(csp.contains(&format!("'sha256-{}'", sha256_base64("boot()"))));
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"));
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}
