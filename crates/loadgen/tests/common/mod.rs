//! Servers for the load driver's tests: the Node one (node.rs), a counting
//! hyper server, and a raw server that breaks connections on purpose.

#![allow(dead_code)]

pub mod node;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Method, headers and body of a request.
pub type Echo = (String, Vec<(String, String)>, String);

/// What the hyper server received.
#[derive(Default)]
pub struct Received {
    pub total: AtomicU64,
    /// `METHOD /path` -> count.
    pub by_key: Mutex<BTreeMap<String, u64>>,
    /// The last request to /echo.
    pub echo: Mutex<Option<Echo>>,
}

impl Received {
    pub fn count(&self, key: &str) -> u64 {
        self.by_key.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

/// A hyper HTTP/1.1 server on its own runtime; stopped when dropped.
/// `/status/NNN` answers NNN, `/wait` waits 40 ms, `/slow` waits 30 s, `/chunked` streams three
/// chunks, `/echo` records the request; everything else is `hello world`.
pub struct RustServer {
    pub port: u16,
    pub received: Arc<Received>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RustServer {
    /// Runs on a thread and runtime of its own, so that it can be started
    /// from sync or async tests alike.
    pub fn start() -> RustServer {
        let received = Arc::new(Received::default());
        let rec = received.clone();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else { continue };
                        let rec = rec.clone();
                        tokio::spawn(async move {
                            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                                let rec = rec.clone();
                                async move { Ok::<_, std::convert::Infallible>(respond(req, &rec).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime closes every connection.
        });
        let port = port_rx.recv().expect("server thread died");
        RustServer { port, received, stop: Some(stop_tx) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for RustServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

async fn respond(req: hyper::Request<hyper::body::Incoming>, rec: &Received) -> hyper::Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    rec.total.fetch_add(1, Ordering::SeqCst);
    *rec.by_key.lock().unwrap().entry(format!("{method} {path}")).or_insert(0) += 1;
    let headers: Vec<(String, String)> = req.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if path == "/echo" {
        *rec.echo.lock().unwrap() = Some((method, headers, String::from_utf8_lossy(&body).into_owned()));
    }
    let full = |s: &'static str| Full::new(Bytes::from_static(s.as_bytes())).boxed();
    if let Some(code) = path.strip_prefix("/status/").and_then(|c| c.parse::<u16>().ok()) {
        let mut r = hyper::Response::new(full("status"));
        *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
        return r;
    }
    match path.as_str() {
        "/wait" => {
            tokio::time::sleep(Duration::from_millis(40)).await;
            hyper::Response::new(full("waited"))
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            hyper::Response::new(full("late"))
        }
        "/chunked" => {
            let frames = chunked_body(vec!["one,", "two,", "three"]);
            hyper::Response::new(frames)
        }
        _ => hyper::Response::new(full("hello world")),
    }
}

/// A body of several data frames and no length: hyper sends it chunked.
fn chunked_body(parts: Vec<&'static str>) -> Body {
    FramesBody(parts.into_iter().map(|p| Bytes::from_static(p.as_bytes())).collect::<Vec<_>>().into_iter()).boxed()
}

struct FramesBody(std::vec::IntoIter<Bytes>);

impl hyper::body::Body for FramesBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.next().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// How the breaking server ends a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Break {
    /// Read the request, then close without answering (FIN).
    Close,
    /// Read the request, then reset (RST, SO_LINGER 0).
    Reset,
    /// Close the idle connection 10 ms after the last answer, reading nothing more.
    IdleClose,
}

/// A raw HTTP server that answers `answered_per_conn` requests on each
/// connection, then reads one more and breaks the connection.
pub struct BreakingServer {
    pub port: u16,
    pub answered: Arc<AtomicU64>,
    pub broken: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl BreakingServer {
    pub fn start(answered_per_conn: u64, how: Break) -> BreakingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let answered = Arc::new(AtomicU64::new(0));
        let broken = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, b, s) = (answered.clone(), broken.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (a, b) = (a.clone(), b.clone());
                std::thread::spawn(move || serve_breaking(stream, answered_per_conn, how, &a, &b));
            }
        });
        BreakingServer { port, answered, broken, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for BreakingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Read one request head (these tests send no bodies); false at EOF.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..i + 4);
            return true;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn serve_breaking(mut s: TcpStream, per_conn: u64, how: Break, answered: &AtomicU64, broken: &AtomicU64) {
    let mut buf = Vec::new();
    for _ in 0..per_conn {
        if !read_head(&mut s, &mut buf) {
            return;
        }
        answered.fetch_add(1, Ordering::SeqCst);
        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").is_err() {
            return;
        }
    }
    if how == Break::IdleClose {
        std::thread::sleep(Duration::from_millis(10));
        broken.fetch_add(1, Ordering::SeqCst);
        return;
    }
    if !read_head(&mut s, &mut buf) {
        return;
    }
    broken.fetch_add(1, Ordering::SeqCst);
    if how == Break::Reset {
        use std::os::fd::AsRawFd;
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: setsockopt on a socket we own, with a correctly sized struct.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    drop(s);
}
