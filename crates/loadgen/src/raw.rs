//! A minimal HTTP/1.1 client on a raw `TcpStream`: one request at a time per
//! connection (no pipelining), keep-alive, responses framed by
//! Content-Length, chunked encoding or connection close.
//!
//! Why not hyper's `client::conn::http1`: the load driver shares two cores
//! with the server it loads, so its CPU per request decides the throughput.
//! Here a request is one `write` of bytes serialized once per run, and the
//! response is parsed in place (httparse) from a buffer reused for the whole
//! run and then dropped; no header map, body frames, channel or task per
//! request. bench/load measures both (`--engine hyper`).

use crate::target::Prepared;
use crate::ErrorKind;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted (status line + headers).
const MAX_HEAD: usize = 1 << 20;

/// A failed exchange: what kind, and a message naming where.
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure { kind, message: message.into() }
    }

    /// Classify an I/O error during an exchange with `authority`.
    pub fn io(e: &io::Error, authority: &str, label: &str) -> Self {
        let kind = match e.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted => ErrorKind::Reset,
            io::ErrorKind::UnexpectedEof => ErrorKind::Closed,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Io,
        };
        let message = match kind {
            ErrorKind::Refused => format!("connection refused to {authority}"),
            ErrorKind::Reset => format!("connection reset by {authority} during {label}"),
            _ => format!("{label} to {authority}: {e}"),
        };
        Failure { kind, message }
    }
}

/// The read buffer of one connection, reused for every response.
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    pub fn new() -> Self {
        ReadBuf { buf: vec![0; 8 * 1024], start: 0, end: 0 }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Read more bytes after the pending ones; Ok(0) at end of stream.
    async fn fill(&mut self, s: &mut TcpStream) -> io::Result<usize> {
        if self.start == self.end {
            self.clear();
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_HEAD {
                self.buf.resize(self.buf.len() * 2, 0);
            } else {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "response head larger than 1 MiB"));
            }
        }
        let n = s.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

/// Whether an idle keep-alive connection was closed (or sent something
/// unasked) by the server since its last response. Checked before reusing
/// it, so that a request is never sent on a connection known to be dead: the
/// server closing idle connections (Node's `server.close()`, keep-alive
/// timeouts) is not a failed request. Costs no more than the read that
/// would otherwise find the socket empty after the write.
pub(crate) fn closed_while_idle(s: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    !matches!(s.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// What one response was.
pub(crate) struct Response {
    pub status: u16,
    /// Bytes read for this response (head and body).
    pub bytes: u64,
    /// The server will close the connection (or did): do not reuse it.
    pub close: bool,
}

/// Send one request on `s` and read its response.
pub(crate) async fn exchange(s: &mut TcpStream, req: &Prepared, rb: &mut ReadBuf, authority: &str) -> Result<Response, Failure> {
    if let Err(e) = s.write_all(&req.wire).await {
        return Err(Failure::io(&e, authority, &req.label));
    }
    read_response(s, req.head, rb).await.map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => {
            Failure::new(ErrorKind::Protocol, format!("invalid HTTP response from {authority} to {}: {e}", req.label))
        }
        io::ErrorKind::UnexpectedEof => {
            Failure::new(ErrorKind::Closed, format!("{authority} closed the connection before the response to {} was complete", req.label))
        }
        _ => Failure::io(&e, authority, &req.label),
    })
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed")
}

struct Head {
    status: u16,
    length: Option<u64>,
    chunked: bool,
    close: bool,
}

fn parse_head(rb: &mut ReadBuf) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(rb.pending()) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    // HTTP/1.0 closes unless it says keep-alive; 1.1 keeps unless it says close.
    let mut close = resp.version == Some(0);
    let mut length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok());
            match v {
                Some(v) if length.is_none_or(|l| l == v) => length = Some(v),
                _ => return Err(invalid("bad Content-Length")),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked must be the last coding; anything else is read to EOF.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let t = token.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    rb.start += n;
    Ok(Some(Head { status, length, chunked, close }))
}

async fn read_response(s: &mut TcpStream, head_request: bool, rb: &mut ReadBuf) -> io::Result<Response> {
    // Bytes of an earlier response left over are a protocol error of that
    // response's framing; start clean.
    rb.clear();
    let mut bytes = 0u64;
    let head = loop {
        match parse_head(rb)? {
            Some(h) if (100..200).contains(&h.status) && h.status != 101 => continue, // interim (100 Continue)
            Some(h) => break h,
            None => {
                let n = rb.fill(s).await?;
                if n == 0 {
                    return Err(eof());
                }
                bytes += n as u64;
            }
        }
    };
    if head.status == 101 {
        return Err(invalid("unexpected 101 Switching Protocols"));
    }
    let no_body = head_request || head.status == 204 || head.status == 304;
    let mut close = head.close;
    if no_body {
    } else if head.chunked {
        bytes += read_chunked(s, rb).await?;
    } else if let Some(len) = head.length {
        bytes += skip(s, rb, len).await?;
    } else {
        // Framed by the end of the connection.
        loop {
            rb.clear();
            let n = rb.fill(s).await?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
        close = true;
    }
    Ok(Response { status: head.status, bytes, close })
}

/// Consume `len` body bytes, reading as needed; returns the bytes read.
async fn skip(s: &mut TcpStream, rb: &mut ReadBuf, mut len: u64) -> io::Result<u64> {
    let mut read = 0u64;
    loop {
        let take = (rb.end - rb.start).min(len.min(usize::MAX as u64) as usize);
        rb.start += take;
        len -= take as u64;
        if len == 0 {
            return Ok(read);
        }
        let n = rb.fill(s).await?;
        if n == 0 {
            return Err(eof());
        }
        read += n as u64;
    }
}

/// One CRLF-terminated line (without the CRLF), reading as needed.
async fn line(s: &mut TcpStream, rb: &mut ReadBuf, read: &mut u64) -> io::Result<(usize, usize)> {
    loop {
        if let Some(i) = rb.pending().windows(2).position(|w| w == b"\r\n") {
            let at = rb.start;
            rb.start += i + 2;
            return Ok((at, at + i));
        }
        if rb.end - rb.start > 4096 {
            return Err(invalid("chunk line longer than 4 kB"));
        }
        let n = rb.fill(s).await?;
        if n == 0 {
            return Err(eof());
        }
        *read += n as u64;
    }
}

async fn read_chunked(s: &mut TcpStream, rb: &mut ReadBuf) -> io::Result<u64> {
    let mut read = 0u64;
    loop {
        let (a, b) = line(s, rb, &mut read).await?;
        let text = &rb.buf[a..b];
        let hex = text.split(|&c| c == b';').next().unwrap_or(b"").trim_ascii();
        let size = std::str::from_utf8(hex).ok().and_then(|h| u64::from_str_radix(h, 16).ok()).ok_or_else(|| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                let (a, b) = line(s, rb, &mut read).await?;
                if a == b {
                    return Ok(read);
                }
            }
        }
        read += skip(s, rb, size).await?;
        let (a, b) = line(s, rb, &mut read).await?;
        if a != b {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}
