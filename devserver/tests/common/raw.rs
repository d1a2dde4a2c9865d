//! A hostile HTTP and WebSocket client on a raw `TcpStream`: it sends what
//! it likes (half a request, broken chunking, unmasked frames) and reads
//! what comes back. Every read is bounded.

#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `host:port` of a URL such as `http://127.0.0.1:4000/stage`.
pub fn address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

pub async fn connect(url: &str) -> TcpStream {
    TcpStream::connect(address(url)).await.expect("connect")
}

/// A response's status and head (lowercased header lines).
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response head, within `wait`; `None` if the server closed the
/// connection (or sent nothing) first.
pub async fn read_head(tcp: &mut TcpStream, wait: Duration) -> Option<Head> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                return Some(end);
            }
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("an answer or a close in time")?;
    let text = String::from_utf8_lossy(&buf[..read]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Head { status, headers })
}

/// Sends `request` on a new connection and reads the response head.
pub async fn exchange(url: &str, request: &[u8]) -> Option<Head> {
    let mut tcp = connect(url).await;
    tcp.write_all(request).await.expect("write");
    read_head(&mut tcp, Duration::from_secs(10)).await
}

/// Waits (bounded) until the server closes the connection; returns false
/// when it is still open after `wait`.
pub async fn closed_within(tcp: &mut TcpStream, wait: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(wait, async {
        loop {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + needle.len())
}

/// A WebSocket opening handshake with `key`, on a new connection; returns
/// the socket and the response head.
pub async fn websocket_handshake(url: &str, key: &str) -> (TcpStream, Option<Head>) {
    let address = address(url);
    let path = url
        .split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| &r[i..]))
        .unwrap_or("/");
    let mut tcp = TcpStream::connect(&address).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let head = read_head(&mut tcp, Duration::from_secs(10)).await;
    (tcp, head)
}

/// A WebSocket frame with payload under 126 bytes: `first` is FIN, RSV and
/// opcode; masked with a fixed key when `masked`.
pub fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![first];
    let len = payload.len() as u8;
    if masked {
        let key = [0x11, 0x22, 0x33, 0x44];
        out.push(0x80 | len);
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.push(len);
        out.extend_from_slice(payload);
    }
    out
}

/// Reads server frames until a close frame and returns its status code;
/// `None` when the connection ends without one.
pub async fn read_close_code(tcp: &mut TcpStream, wait: Duration) -> Option<u16> {
    let mut buf = Vec::new();
    tokio::time::timeout(wait, async {
        let mut chunk = [0u8; 4096];
        loop {
            // Server frames are unmasked; walk the complete ones.
            let mut at = 0;
            while buf.len() >= at + 2 {
                let opcode = buf[at] & 0x0f;
                let (len, header) = match buf[at + 1] & 0x7f {
                    126 if buf.len() >= at + 4 => (
                        usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]])),
                        4,
                    ),
                    126 => break,
                    127 => return None,
                    n => (usize::from(n), 2),
                };
                if buf.len() < at + header + len {
                    break;
                }
                if opcode == 0x8 {
                    let p = &buf[at + header..at + header + len];
                    return (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                }
                at += header + len;
            }
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .ok()
    .flatten()
}
