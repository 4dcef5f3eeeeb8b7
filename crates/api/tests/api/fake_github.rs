//! A small GitHub-API-compatible server for the portal tests, on a loopback port.
//!
//! It serves `GET /repos/{owner}/{name}/releases/latest` in the shape GitHub documents, with a
//! strong ETag and 304 for a matching `If-None-Match`, and can be told to fail (500), to refuse
//! with a spent rate limit (403 + `X-RateLimit-*`), to have no release (404), or to be slow. It
//! counts the calls it gets, so tests can prove single flight and revalidation.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    ServerError,
    /// 403 with `X-RateLimit-Remaining: 0` and a reset this many seconds away.
    RateLimited {
        reset_in_secs: u64,
    },
    NotFound,
}

#[derive(Debug)]
struct State {
    calls: AtomicUsize,
    not_modified: AtomicUsize,
    mode: Mutex<Mode>,
    release: Mutex<Value>,
    delay: Mutex<Duration>,
    if_none_match: Mutex<Vec<Option<String>>>,
    authorization: Mutex<Vec<Option<String>>>,
}

pub struct FakeGithub {
    pub base_url: String,
    state: Arc<State>,
}

/// A release as GitHub's `releases/latest` returns it.
pub fn release_json(tag: &str) -> Value {
    json!({
        "url": format!("https://api.github.com/repos/acme/tool/releases/{tag}"),
        "id": 1,
        "tag_name": tag,
        "name": format!("Tool {tag}"),
        "body": format!("What changed in {tag}."),
        "draft": false,
        "prerelease": false,
        "created_at": "2026-11-20T10:00:00Z",
        "published_at": "2026-11-20T12:00:00Z",
        "assets": [
            {
                "id": 11,
                "name": "tool-linux-x86_64.tar.gz",
                "content_type": "application/gzip",
                "size": 1048576,
                "download_count": 42,
                "browser_download_url": format!("https://github.com/acme/tool/releases/download/{tag}/tool-linux-x86_64.tar.gz")
            },
            {
                "id": 12,
                "name": "tool-windows.zip",
                "content_type": "application/zip",
                "size": 2097152,
                "download_count": 7,
                "browser_download_url": format!("https://github.com/acme/tool/releases/download/{tag}/tool-windows.zip")
            }
        ]
    })
}

fn etag_of(release: &Value) -> String {
    format!(
        "\"etag-{}\"",
        release["tag_name"].as_str().unwrap_or_default()
    )
}

async fn latest(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    state
        .if_none_match
        .lock()
        .unwrap()
        .push(header("if-none-match"));
    state
        .authorization
        .lock()
        .unwrap()
        .push(header("authorization"));
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mode = *state.mode.lock().unwrap();
    match mode {
        Mode::ServerError => {
            HttpResponse::InternalServerError().json(json!({"message": "Server Error"}))
        }
        Mode::NotFound => HttpResponse::NotFound().json(json!({"message": "Not Found"})),
        Mode::RateLimited { reset_in_secs } => {
            let reset = chrono::Utc::now().timestamp() + reset_in_secs as i64;
            HttpResponse::Forbidden()
                .insert_header(("X-RateLimit-Limit", "60"))
                .insert_header(("X-RateLimit-Remaining", "0"))
                .insert_header(("X-RateLimit-Reset", reset.to_string()))
                .json(json!({"message": "API rate limit exceeded"}))
        }
        Mode::Ok => {
            let release = state.release.lock().unwrap().clone();
            let etag = etag_of(&release);
            if header("if-none-match").as_deref() == Some(etag.as_str()) {
                state.not_modified.fetch_add(1, Ordering::SeqCst);
                return HttpResponse::NotModified()
                    .insert_header(("ETag", etag))
                    .finish();
            }
            HttpResponse::Ok()
                .insert_header(("ETag", etag))
                .json(release)
        }
    }
}

impl FakeGithub {
    /// Starts the fake for repository `acme/tool`, serving release `tag`.
    pub fn start(tag: &str) -> Self {
        let state = web::Data::new(State {
            calls: AtomicUsize::new(0),
            not_modified: AtomicUsize::new(0),
            mode: Mutex::new(Mode::Ok),
            release: Mutex::new(release_json(tag)),
            delay: Mutex::new(Duration::ZERO),
            if_none_match: Mutex::new(Vec::new()),
            authorization: Mutex::new(Vec::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake GitHub");
        let port = listener.local_addr().unwrap().port();
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/repos/acme/tool/releases/latest", web::get().to(latest))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            state: state.into_inner(),
        }
    }

    /// Calls received so far.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Calls answered 304.
    pub fn not_modified(&self) -> usize {
        self.state.not_modified.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// Publishes a new latest release.
    pub fn publish(&self, tag: &str) {
        *self.state.release.lock().unwrap() = release_json(tag);
    }

    /// The `If-None-Match` header of every call, in order.
    pub fn if_none_match_seen(&self) -> Vec<Option<String>> {
        self.state.if_none_match.lock().unwrap().clone()
    }

    /// The `Authorization` header of every call, in order.
    pub fn authorization_seen(&self) -> Vec<Option<String>> {
        self.state.authorization.lock().unwrap().clone()
    }
}
