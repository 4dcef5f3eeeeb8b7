//! A lean HTTP/1.1 load generator for the throughput benchmark: one keep-alive connection per
//! worker, every request written from bytes prepared before the clock starts, every answer read
//! by its `Content-Length`, all workers on one thread.
//!
//! Why not reqwest here: on this 2-core machine the load generator shares the CPU with the
//! server, and reqwest's per-request work (header maps, pool bookkeeping, body streams, waking
//! tasks across its runtime's threads) cost about as much CPU as the server's own handling, so
//! the figure measured the client as much as the server. Lean generators (wrk, oha) exist for
//! the same reason. The CPU the generator still uses is reported beside each figure.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A complete HTTP/1.1 request (keep-alive is HTTP/1.1's default).
pub fn request(method: &str, path: &str, host: &str, json_body: Option<&str>) -> Vec<u8> {
    let mut out =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n");
    match json_body {
        Some(body) => {
            out.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
        None => out.push_str("\r\n"),
    }
    out.into_bytes()
}

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// The head of an answer: its status, where its body starts and how long it is.
#[derive(Debug, PartialEq)]
struct Head {
    status: u16,
    body_start: usize,
    body_len: usize,
}

/// Parses the head of an answer at the start of `bytes`; `None` while it is incomplete.
fn parse_head(bytes: &[u8]) -> anyhow::Result<Option<Head>> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&bytes[..end]).context("answer head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP/1.1 status line: {status_line:?}"))?;
    let mut body_len = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            bail!("malformed header line {line:?}");
        };
        if name.eq_ignore_ascii_case("content-length") {
            body_len = Some(value.trim().parse().context("bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked answers are not expected here ({value})");
        }
    }
    Ok(Some(Head {
        status,
        body_start: end + 4,
        body_len: body_len.unwrap_or(0),
    }))
}

impl Connection {
    pub async fn open(address: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(8192),
        })
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Sends one request and reads its whole answer; returns the status. An error leaves the
    /// connection unusable (open a new one).
    pub async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        self.stream.write_all(request).await?;
        let head = loop {
            if let Some(head) = parse_head(&self.buffer)? {
                break head;
            }
            self.fill().await?;
        };
        let end = head.body_start + head.body_len;
        while self.buffer.len() < end {
            self.fill().await?;
        }
        self.buffer.drain(..end);
        Ok(head.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_head_gives_status_and_body_bounds() {
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhello";
        assert_eq!(
            parse_head(answer).unwrap(),
            Some(Head {
                status: 200,
                body_start: answer.len() - 5,
                body_len: 5
            })
        );
    }

    #[test]
    fn an_incomplete_head_asks_for_more_and_chunked_is_refused() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap(), None);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"SPDY 200\r\n\r\n").is_err());
    }

    #[test]
    fn requests_carry_their_body_length() {
        let r = request("POST", "/v", "h:1", Some("{\"a\":1}"));
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("POST /v HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.ends_with("Content-Length: 7\r\n\r\n{\"a\":1}"));
    }
}
