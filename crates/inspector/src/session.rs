//! One websocket connection to a Node inspector: requests matched to their
//! replies by id, events fanned out to subscribers, and the streams (heap
//! snapshot chunks) delivered with back-pressure so memory stays bounded.

use crate::addr::{parse_endpoint, ws_url_addr, Endpoint};
use crate::discover::first_target_url;
use crate::error::{Error, Result};
use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// Default time to wait for a reply to one request.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for the TCP connection and websocket handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest websocket message (and frame) accepted from the target. Node's
/// largest are far smaller: a heap snapshot chunk is at most 102,400
/// characters (at most ~615 kB once JSON-escaped, 6 bytes a character in
/// the worst case), a sampling profile of a large app a few MB (about 200
/// bytes a call-tree node), an evaluate reply what we asked for (kB). 64 MiB
/// leaves a wide margin and bounds what a hostile or broken peer can make us
/// hold: one message at a time, so memory stays near this bound.
pub const MAX_MESSAGE: usize = 64 << 20;

/// Events kept for a slow `subscribe` receiver before it starts losing the
/// oldest ones (it then gets `RecvError::Lagged`).
pub const EVENT_BUFFER: usize = 1024;

/// Events that carry a stream (a heap snapshot's text) and its progress.
/// While a stream is being taken they go only to its consumer, never to
/// `subscribe` receivers (a lagging receiver would otherwise hold up to
/// `EVENT_BUFFER` chunks of 100 kB each).
const STREAM_EVENTS: [&str; 2] = ["HeapProfiler.addHeapSnapshotChunk", "HeapProfiler.reportHeapSnapshotProgress"];

/// A protocol event: `{method, params}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub method: String,
    pub params: Value,
}

#[derive(Debug)]
struct ProtoError {
    code: i64,
    message: String,
}

type Reply = std::result::Result<Box<RawValue>, ProtoError>;

struct Inner {
    url: String,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    outgoing: mpsc::UnboundedSender<Message>,
    /// Taken when the connection closes, so receivers see `Closed`.
    events: Mutex<Option<broadcast::Sender<Event>>>,
    /// The consumer of the stream being taken, if any.
    stream_sink: Mutex<Option<mpsc::Sender<Event>>>,
    /// Becomes true once the connection is gone.
    closed: watch::Sender<bool>,
    call_timeout_ms: AtomicU64,
    /// Why the reader gave up on the peer, when it is the peer's fault (a
    /// message that is not CDP, too large, a broken websocket).
    fault: Mutex<Option<String>>,
}

/// One websocket connection to an inspector target. Methods take `&self`,
/// so requests may be issued concurrently from several tasks (wrap the
/// session in an `Arc`). Dropping it closes the connection.
pub struct Session {
    inner: Arc<Inner>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    /// One stream (snapshot) at a time: their events are indistinguishable.
    stream_lock: tokio::sync::Mutex<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

#[derive(Deserialize)]
struct Incoming {
    id: Option<u64>,
    method: Option<String>,
    params: Option<Value>,
    result: Option<Box<RawValue>>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Option<String>,
}

impl Session {
    /// Connect to a websocket URL (`ws://127.0.0.1:PORT/ID`; loopback only).
    pub async fn connect(ws_url: &str) -> Result<Session> {
        let addr = ws_url_addr(ws_url)?;
        let mut config = WebSocketConfig::default();
        // See MAX_MESSAGE. A frame never exceeds its message.
        config.max_message_size = Some(MAX_MESSAGE);
        config.max_frame_size = Some(MAX_MESSAGE);
        let connecting = tokio_tungstenite::connect_async_with_config(ws_url, Some(config), true);
        let (ws, _response) = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Err(_) => {
                return Err(Error::Timeout {
                    addr: addr.to_string(),
                    what: "the websocket handshake".into(),
                    secs: CONNECT_TIMEOUT.as_secs_f64(),
                })
            }
            Ok(Err(tungstenite::Error::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(Error::Refused { addr: addr.to_string() })
            }
            Ok(Err(tungstenite::Error::Io(e))) => return Err(Error::Connect { addr: addr.to_string(), source: e }),
            Ok(Err(tungstenite::Error::Http(resp))) => {
                return Err(Error::Handshake {
                    url: ws_url.to_string(),
                    why: format!("HTTP {} (a stale URL? the target id changes at every start)", resp.status()),
                })
            }
            Ok(Err(e)) => return Err(Error::Handshake { url: ws_url.to_string(), why: e.to_string() }),
            Ok(Ok(x)) => x,
        };
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (closed, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            url: ws_url.to_string(),
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            outgoing: out_tx,
            events: Mutex::new(Some(events)),
            stream_sink: Mutex::new(None),
            closed,
            call_timeout_ms: AtomicU64::new(DEFAULT_CALL_TIMEOUT.as_millis() as u64),
            fault: Mutex::new(None),
        });
        let writer = tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                let close = matches!(msg, Message::Close(_));
                if sink.send(msg).await.is_err() || close {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let reader_inner = inner.clone();
        let reader = tokio::spawn(async move {
            let inner = reader_inner;
            while let Some(msg) = stream.next().await {
                let fault = match msg {
                    Ok(Message::Text(text)) => dispatch(&inner, text.as_str()).await.err(),
                    Ok(Message::Binary(bytes)) => dispatch(&inner, &String::from_utf8_lossy(&bytes)).await.err(),
                    Ok(Message::Close(_)) => break,
                    Ok(_) => None,
                    Err(tungstenite::Error::Capacity(e)) => {
                        Some(format!("it sent a websocket message over the {} MiB limit ({e})", MAX_MESSAGE >> 20))
                    }
                    // The process died or closed its inspector: not a fault.
                    Err(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)) => break,
                    Err(tungstenite::Error::Protocol(e)) => Some(format!("websocket protocol error: {e}")),
                    Err(_) => break,
                };
                if let Some(why) = fault {
                    *inner.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                    break;
                }
            }
            // Wake every waiter: replies will never come.
            inner.closed.send_replace(true);
            inner.pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
            inner.stream_sink.lock().unwrap_or_else(|e| e.into_inner()).take();
            inner.events.lock().unwrap_or_else(|e| e.into_inner()).take();
        });
        Ok(Session { inner, reader, writer, stream_lock: tokio::sync::Mutex::new(()) })
    }

    /// Connect to what the user named: a `ws://` URL, or `HOST:PORT` /
    /// a port whose `/json/list` gives the URL (the first Node target).
    pub async fn connect_to(addr: &str) -> Result<Session> {
        match parse_endpoint(addr)? {
            Endpoint::WebSocket { url, .. } => Session::connect(&url).await,
            Endpoint::Http(sock) => Session::connect(&first_target_url(sock, Duration::from_secs(5)).await?).await,
        }
    }

    /// The websocket URL this session is connected to.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Change the reply timeout of `call` and the helpers built on it.
    pub fn set_call_timeout(&self, t: Duration) {
        self.inner.call_timeout_ms.store(t.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.call_timeout_ms.load(Ordering::Relaxed))
    }

    /// True once the connection is gone (target exited, inspector closed).
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// Resolves when the connection is gone.
    pub async fn closed(&self) {
        let mut rx = self.inner.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Events from now on (a method's events come once its domain is
    /// enabled, e.g. `Runtime.enable`). Heap snapshot chunks and progress are
    /// not delivered here while `take_heap_snapshot` runs. A receiver that
    /// falls more than `EVENT_BUFFER` events behind loses the oldest
    /// (`RecvError::Lagged`); once the connection is gone, `recv` returns
    /// `RecvError::Closed`.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        match &*self.inner.events.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// Send a request and wait (at most the call timeout) for its result.
    /// `params` may be `()` for none.
    pub async fn call<P: Serialize, R: DeserializeOwned>(&self, method: &str, params: P) -> Result<R> {
        self.call_with_timeout(method, params, Some(self.call_timeout())).await
    }

    /// `call` with an explicit timeout (`None`: wait as long as the
    /// connection lives).
    pub async fn call_with_timeout<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
        timeout: Option<Duration>,
    ) -> Result<R> {
        let raw = self.call_raw(method, params, timeout).await?;
        serde_json::from_str(raw.get()).map_err(|e| Error::BadReply { method: method.to_string(), why: e.to_string() })
    }

    /// The error for a call that found the connection gone: the peer's
    /// fault if it broke the protocol, else `Closed`.
    pub(crate) fn closed_error(&self, during: String) -> Error {
        match &*self.inner.fault.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(why) => Error::BadPeer { url: self.inner.url.clone(), why: why.clone() },
            None => Error::Closed { during },
        }
    }

    async fn call_raw<P: Serialize>(&self, method: &str, params: P, timeout: Option<Duration>) -> Result<Box<RawValue>> {
        let closed = || self.closed_error(format!(" while waiting for the reply to {method}"));
        if self.is_closed() {
            return Err(closed());
        }
        let params = serde_json::to_value(params).map_err(|e| Error::BadReply { method: method.into(), why: e.to_string() })?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut req = serde_json::json!({ "id": id, "method": method });
        if !params.is_null() {
            req["params"] = params;
        }
        let (tx, rx) = oneshot::channel();
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        // Removes the pending entry however this call ends (timeout, drop).
        struct Forget<'a>(&'a Inner, u64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
            }
        }
        let _forget = Forget(&self.inner, id);
        if self.inner.outgoing.send(Message::text(req.to_string())).is_err() || self.is_closed() {
            return Err(closed());
        }
        let reply = match timeout {
            Some(t) => {
                tokio::time::timeout(t, rx).await.map_err(|_| Error::CallTimeout { method: method.to_string(), secs: t.as_secs_f64() })?
            }
            None => rx.await,
        };
        match reply {
            Ok(Ok(raw)) => Ok(raw),
            Ok(Err(e)) => Err(Error::Protocol { method: method.to_string(), code: e.code, message: e.message }),
            Err(_) => Err(closed()),
        }
    }

    /// Evaluate `expr` in the target's main context and return its value
    /// (`returnByValue`; with Node's command-line API, so `require` works).
    /// `undefined` comes back as JSON `null`.
    pub async fn evaluate<R: DeserializeOwned>(&self, expr: &str) -> Result<R> {
        self.evaluate_with(expr, &EvalOptions::default()).await
    }

    /// `evaluate` with options.
    pub async fn evaluate_with<R: DeserializeOwned>(&self, expr: &str, opts: &EvalOptions) -> Result<R> {
        let deferred;
        let (expr, await_promise) = if opts.defer {
            // The command-line API's `require` exists only while the
            // expression is evaluated: pass it in for the callback.
            deferred = format!(
                "((require) => new Promise((resolve, reject) => setImmediate(() => {{ \
                 try {{ resolve(({expr})); }} catch (e) {{ reject(e); }} }})))(typeof require === 'function' ? require : undefined)"
            );
            (deferred.as_str(), true)
        } else {
            (expr, opts.await_promise)
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct RemoteObject {
            #[serde(rename = "type", default)]
            kind: String,
            value: Option<Value>,
            unserializable_value: Option<String>,
            description: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ExceptionDetails {
            #[serde(default)]
            text: String,
            exception: Option<RemoteObject>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct EvalReply {
            result: RemoteObject,
            exception_details: Option<ExceptionDetails>,
        }
        let params = serde_json::json!({
            "expression": expr,
            "returnByValue": true,
            "includeCommandLineAPI": opts.command_line_api,
            "silent": true,
            "awaitPromise": await_promise,
        });
        let timeout = Some(opts.timeout.unwrap_or_else(|| self.call_timeout()));
        let reply: EvalReply = self.call_with_timeout("Runtime.evaluate", params, timeout).await?;
        if let Some(ex) = reply.exception_details {
            let what = ex.exception.and_then(|e| e.description.or_else(|| e.value.map(|v| v.to_string()))).unwrap_or(ex.text);
            return Err(Error::Exception(what.lines().next().unwrap_or("").to_string()));
        }
        let value = match (reply.result.value, reply.result.unserializable_value) {
            (Some(v), _) => v,
            (None, Some(u)) => Value::String(u),
            (None, None) if reply.result.kind == "undefined" => Value::Null,
            (None, None) => Value::Null,
        };
        serde_json::from_value(value).map_err(|e| Error::BadReply { method: "Runtime.evaluate".into(), why: e.to_string() })
    }

    /// `process.memoryUsage()`, the heap limit, and the target's clock
    /// (deferred to the event loop: it requires `v8`).
    pub async fn memory(&self) -> Result<MemorySample> {
        self.evaluate_with(MEMORY_EXPR, &EvalOptions { defer: true, ..Default::default() }).await
    }

    /// Who the target is: pid, Node version, argv.
    pub async fn process_info(&self) -> Result<ProcessInfo> {
        self.evaluate(PROCESS_EXPR).await
    }

    /// A full garbage collection (`HeapProfiler.collectGarbage`: V8 collects
    /// everything it can, in several passes). Pauses the target; allowed
    /// at least two minutes for huge heaps.
    pub async fn collect_garbage(&self) -> Result<()> {
        let t = Some(self.call_timeout().max(Duration::from_secs(120)));
        let _: Value = self.call_with_timeout("HeapProfiler.enable", (), t).await?;
        let _: Value = self.call_with_timeout("HeapProfiler.collectGarbage", (), t).await?;
        Ok(())
    }

    /// Take a heap snapshot into `out`, streaming: chunks are written as
    /// they arrive to `<out>.part`, renamed to `out` once the target has
    /// confirmed the end and the text is whole. `progress` gets the bytes
    /// written so far. Returns the file's size. Memory use is a few chunks,
    /// whatever the heap's size.
    pub async fn take_heap_snapshot(&self, out: &std::path::Path, mut progress: impl FnMut(u64)) -> Result<u64> {
        self.take_heap_snapshot_with(out, &crate::snapshot::SnapshotOptions::default(), |p| {
            if let crate::snapshot::SnapshotProgress::Writing { bytes } = p {
                progress(bytes)
            }
        })
        .await
    }

    /// Lock the session for one stream and install its consumer: stream
    /// events go to the returned receiver (bounded: a slow consumer holds up
    /// the reader, hence the socket, hence the target) until the guard drops.
    pub(crate) async fn open_stream(&self, capacity: usize) -> (StreamGuard<'_>, mpsc::Receiver<Event>) {
        let lock = self.stream_lock.lock().await;
        let (tx, rx) = mpsc::channel(capacity);
        *self.inner.stream_sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        (StreamGuard { inner: &self.inner, _lock: lock }, rx)
    }

    /// Close the connection politely (a websocket Close frame).
    pub async fn close(self) {
        let _ = self.inner.outgoing.send(Message::Close(None));
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let mut rx = self.inner.closed.subscribe();
            let _ = rx.wait_for(|c| *c).await;
        })
        .await;
    }
}

pub(crate) struct StreamGuard<'a> {
    inner: &'a Inner,
    _lock: tokio::sync::MutexGuard<'a, ()>,
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        self.inner.stream_sink.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// One message from the target, decoded.
#[derive(Debug)]
pub enum Decoded {
    /// The reply to request `id`: its result, or the protocol error
    /// (`code`, message with its data).
    Reply {
        id: u64,
        result: std::result::Result<Box<RawValue>, (i64, String)>,
    },
    Event(Event),
}

/// Decode one websocket text message. Err (a one-line reason quoting the
/// start of the text) when it is not a CDP message: not JSON, or an object
/// with neither `id` nor `method`. Node never sends one; the session treats
/// a peer that does as broken. (Public for the fuzz target.)
pub fn decode(text: &str) -> std::result::Result<Decoded, String> {
    let msg = match serde_json::from_str::<Incoming>(text) {
        Ok(m) if m.id.is_some() || m.method.is_some() => m,
        _ => {
            let shown: String = text.chars().take(60).collect::<String>().replace(['\n', '\r'], " ");
            let more = if text.len() > shown.len() { "…" } else { "" };
            return Err(format!("it sent a message that is not a CDP message: {shown:?}{more}"));
        }
    };
    if let Some(id) = msg.id {
        let result = match (msg.result, msg.error) {
            (_, Some(e)) => Err((
                e.code,
                match e.data {
                    Some(d) if !d.is_empty() => format!("{} ({d})", e.message),
                    _ => e.message,
                },
            )),
            (Some(r), None) => Ok(r),
            (None, None) => Ok(RawValue::from_string("{}".into()).expect("valid JSON")),
        };
        return Ok(Decoded::Reply { id, result });
    }
    let method = msg.method.unwrap_or_default();
    Ok(Decoded::Event(Event { method, params: msg.params.unwrap_or(Value::Null) }))
}

/// Route one message. Err: it is not a CDP message (see `decode`).
async fn dispatch(inner: &Inner, text: &str) -> std::result::Result<(), String> {
    let event = match decode(text)? {
        Decoded::Reply { id, result } => {
            let waiter = inner.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            if let Some(tx) = waiter {
                let _ = tx.send(result.map_err(|(code, message)| ProtoError { code, message }));
            }
            return Ok(());
        }
        Decoded::Event(event) => event,
    };
    if STREAM_EVENTS.contains(&event.method.as_str()) {
        let sink = inner.stream_sink.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(sink) = sink {
            // Awaiting here is the back-pressure.
            let _ = sink.send(event).await;
            return Ok(());
        }
        if event.method == STREAM_EVENTS[0] {
            // A chunk nobody asked for (another client's snapshot): drop it.
            return Ok(());
        }
    }
    if let Some(tx) = &*inner.events.lock().unwrap_or_else(|e| e.into_inner()) {
        let _ = tx.send(event);
    }
    Ok(())
}

/// Options of `Session::evaluate_with`.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Wait for a returned promise to settle and return its value.
    pub await_promise: bool,
    /// Node's command-line API (`require`, `queryObjects`, ...). It costs
    /// a little per call; a hot expression that needs none can go without.
    pub command_line_api: bool,
    /// Reply timeout (default: the session's call timeout).
    pub timeout: Option<Duration>,
    /// Run the expression from the event loop (`setImmediate`) rather than
    /// at once. A protocol request is served by interrupting whatever
    /// JavaScript runs, possibly in the middle of the program's `require`
    /// of a module; requiring a module then can fail ("Class extends value
    /// undefined") and leave it half-loaded for the program. Anything that
    /// `require`s should be deferred; it then waits for the event loop.
    pub defer: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { await_promise: false, command_line_api: true, timeout: None, defer: false }
    }
}

/// One reading of the target's memory (`process.memoryUsage()` and
/// `v8.getHeapStatistics().heap_size_limit`), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemorySample {
    pub pid: u32,
    /// The target's clock, ms since the Unix epoch.
    pub timestamp_ms: f64,
    /// Seconds since the target started.
    pub uptime_s: f64,
    pub rss: u64,
    pub heap_total: u64,
    pub heap_used: u64,
    /// Memory of C++ objects bound to JS objects (Buffers etc.).
    pub external: u64,
    pub array_buffers: u64,
    /// The most the V8 heap may grow to (`--max-old-space-size` plus the young generation).
    pub heap_size_limit: u64,
}

/// The expression behind `Session::memory`.
pub const MEMORY_EXPR: &str = "(() => { const m = process.memoryUsage(); \
const h = require('v8').getHeapStatistics(); \
return { pid: process.pid, timestamp_ms: Date.now(), uptime_s: process.uptime(), rss: m.rss, \
heap_total: m.heapTotal, heap_used: m.heapUsed, external: m.external, array_buffers: m.arrayBuffers || 0, \
heap_size_limit: h.heap_size_limit }; })()";

/// Who the target is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    /// `v20.11.1`.
    pub node_version: String,
    pub argv: Vec<String>,
    pub exec_argv: Vec<String>,
    pub title: String,
}

impl ProcessInfo {
    /// The major version, e.g. 20.
    pub fn node_major(&self) -> Option<u32> {
        self.node_version.trim_start_matches('v').split('.').next()?.parse().ok()
    }
}

const PROCESS_EXPR: &str = "({ pid: process.pid, node_version: process.version, argv: process.argv, \
exec_argv: process.execArgv, title: String(process.title) })";
