//! Discovery: `GET /json/list` on the inspector's HTTP port.
//!
//! A tiny HTTP/1.1 client is enough here (one GET on loopback, a small JSON
//! body) and lets every failure be named precisely: nobody listening, a
//! server that never answers, a server that is not an inspector.

use crate::addr::{parse_endpoint, Endpoint};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest discovery response read; Node's is well under 1 kB per target.
const MAX_RESPONSE: usize = 1 << 20;

/// One entry of `/json/list`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TargetInfo {
    #[serde(default)]
    pub id: String,
    /// `node` for a Node process.
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    /// The main script as a `file://` URL.
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub web_socket_debugger_url: Option<String>,
    #[serde(default)]
    pub devtools_frontend_url: Option<String>,
}

/// The targets listed at `addr` (`127.0.0.1:9229`, `localhost:9229`, a bare
/// port or `http://...`; loopback only).
pub async fn discover(addr: &str, timeout: Duration) -> Result<Vec<TargetInfo>> {
    let sock = match parse_endpoint(addr)? {
        Endpoint::Http(a) => a,
        Endpoint::WebSocket { addr, .. } => addr,
    };
    discover_at(sock, timeout).await
}

/// `discover` on a parsed address.
pub async fn discover_at(sock: SocketAddr, timeout: Duration) -> Result<Vec<TargetInfo>> {
    let shown = sock.to_string();
    let (status, body) = http_get(sock, "/json/list", timeout).await?;
    let snippet = || {
        let text = String::from_utf8_lossy(&body[..body.len().min(80)]).replace(['\n', '\r'], " ");
        format!("{:?}{}", text.trim(), if body.len() > 80 { "…" } else { "" })
    };
    if status != 200 {
        return Err(Error::NotInspector { addr: shown, got: format!("HTTP {status} {}", snippet()) });
    }
    let targets: Vec<TargetInfo> = serde_json::from_slice(&body).map_err(|_| Error::NotInspector {
        addr: shown.clone(),
        got: format!("HTTP 200 with a body that is not a target list: {}", snippet()),
    })?;
    if targets.iter().any(|t| t.web_socket_debugger_url.is_none() && t.id.is_empty()) {
        return Err(Error::NotInspector { addr: shown, got: format!("a list without websocket URLs: {}", snippet()) });
    }
    Ok(targets)
}

/// The websocket URL of the first Node target at `sock`.
pub async fn first_target_url(sock: SocketAddr, timeout: Duration) -> Result<String> {
    let targets = discover_at(sock, timeout).await?;
    targets
        .iter()
        .filter(|t| t.kind == "node" || t.kind.is_empty())
        .chain(targets.iter())
        .find_map(|t| t.web_socket_debugger_url.clone())
        .ok_or_else(|| Error::NoTargets { addr: sock.to_string() })
}

/// `GET path` with `Connection: close`: (status, body). Handles
/// `Content-Length`, chunked and read-to-end bodies.
pub(crate) async fn http_get(sock: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, Vec<u8>)> {
    let shown = sock.to_string();
    let what = format!("GET {path}");
    let timed_out = || Error::Timeout { addr: shown.clone(), what: what.clone(), secs: timeout.as_secs_f64() };
    let work = async {
        let mut stream = TcpStream::connect(sock).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Error::Refused { addr: shown.clone() },
            _ => Error::Connect { addr: shown.clone(), source: e },
        })?;
        // Node accepts only an IP address or `localhost` as Host (its DNS
        // rebinding guard), which the socket address always is.
        let req = format!("GET {path} HTTP/1.1\r\nHost: {sock}\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.map_err(|e| Error::Connect { addr: shown.clone(), source: e })?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = match stream.read(&mut chunk).await {
                Ok(n) => n,
                // A peer that resets after answering (or without answering).
                Err(e) if !buf.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Err(e) => return Err(Error::Connect { addr: shown.clone(), source: e }),
            };
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(done) = complete_response(&buf) {
                buf.truncate(done);
                break;
            }
            if buf.len() > MAX_RESPONSE {
                break;
            }
        }
        Ok(buf)
    };
    let raw = tokio::time::timeout(timeout, work).await.map_err(|_| timed_out())??;
    parse_response(&raw).ok_or_else(|| {
        let text = String::from_utf8_lossy(&raw[..raw.len().min(60)]).replace(['\n', '\r'], " ");
        Error::NotInspector {
            addr: shown,
            got: if raw.is_empty() {
                "nothing: the connection closed without an HTTP response".into()
            } else {
                format!("no HTTP response but {:?}", text.trim())
            },
        }
    })
}

/// Length of the whole response once it is complete (by Content-Length or
/// the last chunk), so a server that keeps the connection open anyway does
/// not make us wait for the timeout.
fn complete_response(buf: &[u8]) -> Option<usize> {
    let head_end = find(buf, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if let Some(len) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        return (buf.len() >= head_end + len).then_some(head_end + len);
    }
    if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return find(&buf[head_end..], b"\r\n0\r\n\r\n")
            .map(|i| head_end + i + 7)
            .or_else(|| buf[head_end..].starts_with(b"0\r\n\r\n").then_some(head_end + 5));
    }
    None
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let head_end = find(raw, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let status_line = head.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let lower = head.to_ascii_lowercase();
    let body = &raw[head_end + 4..];
    let body = if header(&lower, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(body)?
    } else if let Some(len) = header(&lower, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        body[..len.min(body.len())].to_vec()
    } else {
        body.to_vec()
    };
    Some((status, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(b, b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size {
            out.extend_from_slice(b);
            return Some(out);
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]";
        assert_eq!(complete_response(r), Some(r.len()));
        assert_eq!(parse_response(r), Some((200, b"[]".to_vec())));
        let c = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(complete_response(c), Some(c.len()));
        assert_eq!(parse_response(c), Some((404, b"abcde".to_vec())));
        assert_eq!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n"), None);
        assert_eq!(complete_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"), None);
    }
}
