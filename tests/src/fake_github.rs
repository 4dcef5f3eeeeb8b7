//! A small GitHub-API-compatible upstream for the portal's browser tests, on a loopback port:
//! `GET /repos/acme/tool/releases/latest` in the shape GitHub documents (strong `ETag`, 304 on
//! a matching `If-None-Match`), which can be told to fail with 500. Plain `std` (a thread and a
//! `TcpListener`) so the end-to-end crate needs no web framework; the API crate's tests have
//! their own richer one.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

pub const REPO: &str = "acme/tool";

struct State {
    failing: AtomicBool,
    calls: AtomicUsize,
    release: Mutex<Value>,
    stop: AtomicBool,
}

pub struct FakeGithub {
    pub base_url: String,
    state: Arc<State>,
}

/// A release as GitHub's `releases/latest` returns it, with `body` as its notes.
pub fn release_json(tag: &str, body: &str) -> Value {
    json!({
        "id": 1,
        "tag_name": tag,
        "name": format!("Tool {tag}"),
        "body": body,
        "draft": false,
        "prerelease": false,
        "created_at": "2026-11-20T10:00:00Z",
        "published_at": "2026-11-20T12:00:00Z",
        "assets": [
            {"id": 11, "name": "tool-linux-x86_64.tar.gz", "size": 1048576, "download_count": 42,
             "browser_download_url": format!("https://github.com/acme/tool/releases/download/{tag}/tool-linux-x86_64.tar.gz")},
            {"id": 12, "name": "tool-windows.zip", "size": 2621440, "download_count": 7,
             "browser_download_url": format!("https://github.com/acme/tool/releases/download/{tag}/tool-windows.zip")}
        ]
    })
}

fn respond(mut stream: TcpStream, state: &State) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut if_none_match = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(value.trim().to_owned());
            }
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or_default();
    let (status, etag, body) = if path != format!("/repos/{REPO}/releases/latest") {
        (
            "404 Not Found",
            None,
            json!({"message": "Not Found"}).to_string(),
        )
    } else {
        state.calls.fetch_add(1, Ordering::SeqCst);
        if state.failing.load(Ordering::SeqCst) {
            (
                "500 Internal Server Error",
                None,
                json!({"message": "Server Error"}).to_string(),
            )
        } else {
            let release = state.release.lock().unwrap().clone();
            let etag = format!(
                "\"etag-{}\"",
                release["tag_name"].as_str().unwrap_or_default()
            );
            if if_none_match.as_deref() == Some(etag.as_str()) {
                ("304 Not Modified", Some(etag), String::new())
            } else {
                ("200 OK", Some(etag), release.to_string())
            }
        }
    };
    let etag_header = etag.map(|e| format!("ETag: {e}\r\n")).unwrap_or_default();
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{etag_header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

impl FakeGithub {
    /// Starts the fake for repository [`REPO`], serving release `tag` with notes `body`.
    pub fn start(tag: &str, body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake GitHub");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            failing: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            release: Mutex::new(release_json(tag, body)),
            stop: AtomicBool::new(false),
        });
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = respond(stream, &shared);
                }
            }
        });
        Self { base_url, state }
    }

    /// From now on, answer 500 (`true`) or the release again.
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread ends.
        let _ = TcpStream::connect(self.base_url.trim_start_matches("http://"));
    }
}
