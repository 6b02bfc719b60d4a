//! Requests as they go on the wire: URL checks, the loopback guard, and the
//! request bytes serialized once per run.

use crate::{Error, Request};
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use std::net::{IpAddr, SocketAddr};

/// One request of the rotation, ready to send: its bytes are built once so
/// that sending it costs one `write` and no allocation.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// Index into the run's list of distinct endpoints (host:port), so that a
    /// connection keeps one socket per endpoint when URLs on several ports rotate.
    pub endpoint: usize,
    pub wire: Bytes,
    /// A HEAD request: the response has no body whatever its headers say.
    pub head: bool,
    /// `GET /path` for error messages.
    pub label: String,
}

/// A resolved server address (all loopback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub addrs: Vec<SocketAddr>,
    /// `host:port` as the user wrote it, for messages.
    pub authority: String,
}

/// Host and port of a request's URL, checked: `http` scheme, loopback host.
pub(crate) fn host_port(req: &Request) -> Result<(String, u16), Error> {
    let url = &req.url;
    let bad = |reason: &str| Error::BadUrl { url: url.to_string(), reason: reason.to_string() };
    match url.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(bad("https is not supported: the load driver speaks plain HTTP/1.1 to a server on this machine")),
        Some(s) => return Err(bad(&format!("unsupported scheme `{s}` (use http://)"))),
        None => return Err(bad("no scheme (write it as http://127.0.0.1:PORT/path)")),
    }
    let host = url.host().ok_or_else(|| bad("no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    // `Uri::port` says None for a port it cannot parse; read it from the
    // authority (after any user info and IPv6 brackets) to tell them apart.
    let authority = url.authority().map(|a| a.as_str()).unwrap_or("");
    let host_part = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let after_host = host_part.rsplit_once(']').map_or(host_part, |(_, r)| r);
    let port = match after_host.rsplit_once(':') {
        None => 80,
        Some((_, p)) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad(&format!("invalid port `{p}`"))),
        },
    };
    Ok((host, port))
}

/// Resolve a URL's host to loopback addresses, refusing everything else.
///
/// This tool drives thousands of requests per second; it exists to load the
/// service under investigation on this machine, so a non-loopback target is
/// far more likely a mistake (or an abuse) than a use, and it is refused
/// before any packet is sent. Names other than `localhost` are refused
/// without being resolved.
pub(crate) async fn resolve(req: &Request) -> Result<Endpoint, Error> {
    let (host, port) = host_port(req)?;
    let not_loopback = || Error::NotLoopback { url: req.url.to_string(), host: host.clone() };
    let authority = match req.url.authority() {
        Some(a) => a.as_str().to_string(),
        None => format!("{host}:{port}"),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        if !is_loopback(ip) {
            return Err(not_loopback());
        }
        return Ok(Endpoint { addrs: vec![SocketAddr::new(ip, port)], authority });
    }
    let lower = host.to_ascii_lowercase();
    if lower != "localhost" && !lower.ends_with(".localhost") {
        return Err(not_loopback());
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| Error::BadUrl { url: req.url.to_string(), reason: format!("cannot resolve {host}: {e}") })?
        .collect();
    // `localhost` may map to both families; prefer IPv4 (servers listening
    // on 127.0.0.1 only are the common case), and keep only loopback ones.
    let mut loopback: Vec<SocketAddr> = addrs.iter().copied().filter(|a| is_loopback(a.ip())).collect();
    loopback.sort_by_key(|a| !a.is_ipv4());
    if loopback.is_empty() {
        return Err(not_loopback());
    }
    Ok(Endpoint { addrs: loopback, authority })
}

pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// The request's bytes: request line, `Host`, the user's headers,
/// `Content-Length` when there is a body (or a method that expects one), body.
pub(crate) fn serialize(req: &Request, endpoint: usize) -> Result<Prepared, Error> {
    let bad = |reason: String| Error::BadRequest { url: req.url.to_string(), reason };
    let method = req.method.as_str();
    let path = req.url.path_and_query().map(|p| p.as_str()).filter(|p| !p.is_empty()).unwrap_or("/");
    let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    let mut has_host = false;
    let mut has_length = false;
    for (name, value) in &req.headers {
        let n = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad(format!("invalid header name `{name}`")))?;
        HeaderValue::from_str(value.trim()).map_err(|_| bad(format!("invalid value for header `{name}`")))?;
        if n == http::header::HOST {
            has_host = true;
        }
        if n == http::header::CONTENT_LENGTH {
            has_length = true;
        }
        if n == http::header::TRANSFER_ENCODING {
            return Err(bad("Transfer-Encoding cannot be set: bodies are sent with Content-Length".into()));
        }
    }
    let body_len = req.body.as_ref().map_or(0, |b| b.len());
    let mut w = BytesMut::with_capacity(128 + body_len);
    w.put_slice(method.as_bytes());
    w.put_u8(b' ');
    w.put_slice(path.as_bytes());
    w.put_slice(b" HTTP/1.1\r\n");
    if !has_host {
        w.put_slice(b"Host: ");
        w.put_slice(req.url.authority().map(|a| a.as_str()).unwrap_or("localhost").as_bytes());
        w.put_slice(b"\r\n");
    }
    for (name, value) in &req.headers {
        w.put_slice(name.trim().as_bytes());
        w.put_slice(b": ");
        w.put_slice(value.trim().as_bytes());
        w.put_slice(b"\r\n");
    }
    let wants_body = matches!(method, "POST" | "PUT" | "PATCH");
    if !has_length && (req.body.is_some() || wants_body) {
        w.put_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
    }
    w.put_slice(b"\r\n");
    if let Some(body) = &req.body {
        w.put_slice(body);
    }
    Ok(Prepared { endpoint, wire: w.freeze(), head: req.method == http::Method::HEAD, label: format!("{method} {path}") })
}
