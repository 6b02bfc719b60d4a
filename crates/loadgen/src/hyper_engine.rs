//! The same exchange through hyper's `client::conn::http1`, kept to measure
//! the raw client against (bench/load `--engine hyper`) and as a second,
//! independent HTTP implementation for the tests to agree with.

use crate::raw::{Failure, Response};
use crate::{ErrorKind, Request};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request's parts, cloned into an `http::Request` for each send.
#[derive(Clone)]
pub(crate) struct HyperRequest {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
    label: String,
}

impl HyperRequest {
    pub fn new(req: &Request, label: String) -> Self {
        let mut headers = http::HeaderMap::new();
        if let Some(a) = req.url.authority() {
            if let Ok(v) = http::HeaderValue::from_str(a.as_str()) {
                headers.insert(http::header::HOST, v);
            }
        }
        for (k, v) in &req.headers {
            if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.trim().as_bytes()), http::HeaderValue::from_str(v.trim())) {
                headers.insert(k, v);
            }
        }
        let uri = req.url.path_and_query().map(|p| p.as_str()).unwrap_or("/").parse().unwrap_or_else(|_| http::Uri::from_static("/"));
        HyperRequest { method: req.method.clone(), uri, headers, body: req.body.clone().unwrap_or_default(), label }
    }
}

pub(crate) struct HyperConn {
    sender: SendRequest<Full<Bytes>>,
}

pub(crate) async fn connect(stream: TcpStream, authority: &str) -> Result<HyperConn, Failure> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::new(ErrorKind::Io, format!("handshake with {authority}: {e}")))?;
    tokio::spawn(async move {
        // Errors surface on the request side.
        let _ = conn.await;
    });
    Ok(HyperConn { sender })
}

impl HyperConn {
    /// A closed connection (the server said `Connection: close`, or went away
    /// while idle) is replaced before the next request is sent.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    pub async fn exchange(&mut self, req: &HyperRequest, authority: &str) -> Result<Response, Failure> {
        let fail = |e: hyper::Error| classify(e, authority, &req.label);
        self.sender.ready().await.map_err(fail)?;
        let mut r = http::Request::new(Full::new(req.body.clone()));
        *r.method_mut() = req.method.clone();
        *r.uri_mut() = req.uri.clone();
        *r.headers_mut() = req.headers.clone();
        let resp = self.sender.send_request(r).await.map_err(fail)?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(fail)?;
            if let Some(d) = frame.data_ref() {
                bytes += d.len() as u64;
            }
        }
        Ok(Response { status, bytes, close: false })
    }
}

fn classify(e: hyper::Error, authority: &str, label: &str) -> Failure {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Failure::io(io, authority, label);
        }
        source = s.source();
    }
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        Failure::new(ErrorKind::Closed, format!("{authority} closed the connection before the response to {label} was complete"))
    } else if e.is_parse() {
        Failure::new(ErrorKind::Protocol, format!("invalid HTTP response from {authority} to {label}: {e}"))
    } else {
        Failure::new(ErrorKind::Io, format!("{label} to {authority}: {e}"))
    }
}
