//! HTTP load driver: keep-alive HTTP/1.1 connections to a server on this
//! machine, each sending requests back to back, with exact accounting of
//! every request attempted and latency percentiles from HdrHistogram.
//!
//! Every request claimed by a connection ends as exactly one of: a 2xx
//! response (`ok`), another response (`non_2xx`), or an error of one kind
//! (`errors_by_kind`); requests still in flight when a run is cancelled are
//! counted apart (`cancelled`). So `requests == ok + non_2xx + errors`.
//!
//! Only loopback targets are accepted (see [`Request::check`]).
//!
//! ```no_run
//! # async fn f() -> Result<(), loadgen::Error> {
//! use loadgen::{LoadConfig, Request, Stop};
//! let cfg = LoadConfig::new(vec![Request::get("http://127.0.0.1:3000/")?], 10, Stop::Requests(1000));
//! let report = loadgen::run(&cfg, None, None).await?;
//! println!("{:.0} req/s, p99 {} ms", report.requests_per_s, report.latency_ms.p99);
//! # Ok(()) }
//! ```

mod command;
mod hyper_engine;
mod raw;
mod target;

pub use command::{run_command, CommandReport};

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use raw::{Failure, ReadBuf};
use target::{Endpoint, Prepared};

/// One request of the rotation.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: http::Method,
    /// An absolute `http://` URL whose host is loopback.
    pub url: http::Uri,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
}

impl Request {
    /// A request with no headers or body; the URL and host are checked.
    pub fn new(method: &str, url: &str) -> Result<Request, Error> {
        let m = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::BadRequest { url: url.to_string(), reason: format!("invalid method `{method}`") })?;
        if !url.contains("://") {
            return Err(Error::BadUrl { url: url.to_string(), reason: "no scheme (write it as http://127.0.0.1:PORT/path)".into() });
        }
        let uri: http::Uri = url.parse().map_err(|e| Error::BadUrl { url: url.to_string(), reason: format!("not a URL ({e})") })?;
        let req = Request { method: m, url: uri, headers: Vec::new(), body: None };
        req.check()?;
        Ok(req)
    }

    pub fn get(url: &str) -> Result<Request, Error> {
        Request::new("GET", url)
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Request {
        self.body = Some(body.into());
        self
    }

    /// The checks that need no name resolution: an `http://` URL with a host,
    /// a loopback IP or a `localhost` name (resolved to loopback at run
    /// time), valid headers.
    ///
    /// Why loopback only: this driver sends thousands of requests a second
    /// and exists to load the service being investigated on this machine;
    /// aimed anywhere else it is a denial-of-service tool, so other hosts are
    /// refused before any packet is sent.
    pub fn check(&self) -> Result<(), Error> {
        let (host, _) = target::host_port(self)?;
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            if !target::is_loopback(ip) {
                return Err(Error::NotLoopback { url: self.url.to_string(), host });
            }
        } else {
            let lower = host.to_ascii_lowercase();
            if lower != "localhost" && !lower.ends_with(".localhost") {
                return Err(Error::NotLoopback { url: self.url.to_string(), host });
            }
        }
        target::serialize(self, 0).map(|_| ())
    }
}

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After exactly this many requests (over all connections).
    Requests(u64),
    /// No new request starts after this long; those in flight finish.
    Duration(Duration),
}

/// Which HTTP client sends the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// The minimal built-in HTTP/1.1 client (faster; the default).
    #[default]
    Raw,
    /// hyper's `client::conn::http1` (its `bytes_read` counts bodies only).
    Hyper,
}

/// How connections are spread over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Runtime {
    /// One single-threaded tokio runtime per thread, connections split
    /// between them, no shared state on the request path (as wrk does).
    #[default]
    PerThread,
    /// One multi-threaded (work-stealing) tokio runtime for all connections.
    WorkStealing,
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Rotated per request: request i of the run is `requests[i % len]`.
    pub requests: Vec<Request>,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    pub stop: Stop,
    /// Per request, connecting included.
    pub timeout: Duration,
    /// Threads driving the connections; 0 = one per core.
    pub threads: usize,
    pub engine: Engine,
    pub runtime: Runtime,
}

impl LoadConfig {
    /// 10 s timeout, one thread per core, the built-in client.
    pub fn new(requests: Vec<Request>, connections: usize, stop: Stop) -> LoadConfig {
        LoadConfig {
            requests,
            connections,
            stop,
            timeout: Duration::from_secs(10),
            threads: 0,
            engine: Engine::Raw,
            runtime: Runtime::PerThread,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{url}: {host} is not a loopback address; the load driver only targets this machine (127.0.0.0/8, ::1, localhost)")]
    NotLoopback { url: String, host: String },
    #[error("{url}: {reason}")]
    BadRequest { url: String, reason: String },
    #[error("{0}")]
    Config(String),
    /// A single request failed (see [`check_reachable`]).
    #[error("{message}")]
    Unreachable { kind: ErrorKind, message: String },
    #[error("{url} did not answer within {waited:?}: {last}")]
    NotReady { url: String, waited: Duration, last: String },
    #[error("load driver thread: {0}")]
    Worker(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Nobody listens on the port (ECONNREFUSED).
    Refused,
    /// Connecting failed otherwise.
    Connect,
    /// The connection was reset (ECONNRESET, EPIPE).
    Reset,
    /// The server closed the connection before the response was complete.
    Closed,
    /// No complete response within the timeout.
    Timeout,
    /// The response was not valid HTTP/1.1.
    Protocol,
    /// Any other I/O error.
    Io,
}

impl ErrorKind {
    const ALL: [ErrorKind; 7] = [
        ErrorKind::Refused,
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::Closed,
        ErrorKind::Timeout,
        ErrorKind::Protocol,
        ErrorKind::Io,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Io => "io",
        }
    }
}

/// Latency of the responses (non-2xx included), in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Requests attempted and finished: `ok + non_2xx + errors`.
    pub requests: u64,
    /// 2xx responses.
    pub ok: u64,
    /// Responses with any other status (see `status_codes`).
    pub non_2xx: u64,
    /// Requests with no response (see `errors_by_kind`).
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The first error message of each kind, naming the address.
    pub error_examples: BTreeMap<String, String>,
    pub status_codes: BTreeMap<u16, u64>,
    /// Requests in flight when the run was cancelled (outcome unknown; not in `requests`).
    pub cancelled: u64,
    /// The run was cancelled before its stop condition.
    pub interrupted: bool,
    pub connections: usize,
    pub threads: usize,
    pub duration_s: f64,
    /// Responses (`ok + non_2xx`) per second.
    pub requests_per_s: f64,
    /// Bytes received (heads and bodies).
    pub bytes_read: u64,
    pub latency_ms: Percentiles,
}

impl LoadReport {
    pub fn responses(&self) -> u64 {
        self.ok + self.non_2xx
    }
}

/// What a group of connections counted. With the default runtime a group's
/// connections all run on one thread, so the lock (once per request) is
/// never contended; `run` reads it for progress and at the end. Kept outside
/// the connection tasks so that aborting them (cancel) loses no count.
struct Stats {
    latency_us: Histogram<u64>,
    ok: u64,
    non_2xx: u64,
    errors: [u64; ErrorKind::ALL.len()],
    examples: [Option<String>; ErrorKind::ALL.len()],
    /// (status, count): a handful of distinct codes, searched linearly.
    status: Vec<(u16, u64)>,
    bytes: u64,
    done: u64,
    last_end: Option<Instant>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            latency_us: Histogram::new(3).expect("3 significant figures is valid"),
            ok: 0,
            non_2xx: 0,
            errors: [0; ErrorKind::ALL.len()],
            examples: Default::default(),
            status: Vec::new(),
            bytes: 0,
            done: 0,
            last_end: None,
        }
    }
}

/// The connections of one thread: the requests they may claim (`limit` of
/// them, numbered from `offset` in the run's rotation), and their counts.
struct Group {
    next: AtomicU64,
    limit: u64,
    offset: u64,
    stats: Mutex<Stats>,
    /// Per connection: a request is claimed and not yet accounted for.
    in_flight: Vec<AtomicBool>,
}

impl Group {
    fn claim(&self) -> Option<u64> {
        if self.next.load(Ordering::Relaxed) >= self.limit {
            return None;
        }
        let t = self.next.fetch_add(1, Ordering::Relaxed);
        (t < self.limit).then_some(self.offset + t)
    }
}

/// What every connection of a run shares, read-only.
struct Plan {
    requests: Vec<Prepared>,
    hyper_requests: Vec<hyper_engine::HyperRequest>,
    endpoints: Vec<Endpoint>,
    timeout: Duration,
    deadline: Option<Instant>,
    engine: Engine,
}

enum Conn {
    Raw(TcpStream),
    Hyper(hyper_engine::HyperConn),
}

async fn connect(ep: &Endpoint) -> Result<TcpStream, Failure> {
    let mut last = None;
    for addr in &ep.addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                // Each request is one write; no reason to let Nagle hold any.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("no address"));
    let mut f = Failure::io(&e, &ep.authority, "connect");
    if f.kind != ErrorKind::Refused {
        f = Failure::new(ErrorKind::Connect, format!("cannot connect to {}: {e}", ep.authority));
    }
    Err(f)
}

/// One request on a connection to `ep`, connecting first when there is none.
/// Returns the response and when it was sent (after any connect).
async fn attempt(
    conn: &mut Option<Conn>,
    plan: &Plan,
    index: usize,
    rb: &mut ReadBuf,
    now: Instant,
) -> Result<(raw::Response, Instant), Failure> {
    let req = &plan.requests[index];
    let ep = &plan.endpoints[req.endpoint];
    let mut sent = now;
    let stale = match conn {
        Some(Conn::Raw(s)) => raw::closed_while_idle(s),
        Some(Conn::Hyper(h)) => h.is_closed(),
        None => false,
    };
    if stale {
        *conn = None;
    }
    if conn.is_none() {
        let s = connect(ep).await?;
        *conn = Some(match plan.engine {
            Engine::Raw => Conn::Raw(s),
            Engine::Hyper => Conn::Hyper(hyper_engine::connect(s, &ep.authority).await?),
        });
        sent = Instant::now();
    }
    let result = match conn.as_mut().expect("connected above") {
        Conn::Raw(s) => raw::exchange(s, req, rb, &ep.authority).await,
        Conn::Hyper(h) => h.exchange(&plan.hyper_requests[index], &ep.authority).await,
    };
    match result {
        Ok(r) => {
            if r.close {
                *conn = None;
            }
            Ok((r, sent))
        }
        Err(f) => {
            *conn = None;
            Err(f)
        }
    }
}

/// One connection: claim a request, send it, account for it, repeat.
async fn connection(plan: Arc<Plan>, group: Arc<Group>, conn_index: usize) {
    let in_flight = &group.in_flight[conn_index];
    let n = plan.requests.len() as u64;
    let mut conns: Vec<Option<Conn>> = plan.endpoints.iter().map(|_| None).collect();
    let mut rb = ReadBuf::new();
    // One timer for the connection's life, pushed forward per request: a
    // later deadline is a lock-free update in tokio's timer wheel.
    let timer = tokio::time::sleep(plan.timeout);
    tokio::pin!(timer);
    let mut now = Instant::now();
    loop {
        if plan.deadline.is_some_and(|d| now >= d) {
            break;
        }
        let Some(ticket) = group.claim() else { break };
        in_flight.store(true, Ordering::Relaxed);
        let index = (ticket % n) as usize;
        let endpoint = plan.requests[index].endpoint;
        timer.as_mut().reset((now + plan.timeout).into());
        let result = tokio::select! {
            biased;
            r = attempt(&mut conns[endpoint], &plan, index, &mut rb, now) => r,
            _ = &mut timer => {
                conns[endpoint] = None;
                let req = &plan.requests[index];
                let ep = &plan.endpoints[req.endpoint];
                Err(Failure::new(ErrorKind::Timeout, format!("no response to {} from {} within {:?}", req.label, ep.authority, plan.timeout)))
            }
        };
        let end = Instant::now();
        let mut backoff = false;
        {
            let mut st = group.stats.lock().unwrap_or_else(|e| e.into_inner());
            st.last_end = Some(end);
            st.done += 1;
            match result {
                Ok((resp, sent)) => {
                    let us = end.saturating_duration_since(sent).as_micros().max(1) as u64;
                    let _ = st.latency_us.record(us);
                    st.bytes += resp.bytes;
                    if (200..300).contains(&resp.status) {
                        st.ok += 1;
                    } else {
                        st.non_2xx += 1;
                    }
                    match st.status.iter_mut().find(|(c, _)| *c == resp.status) {
                        Some((_, count)) => *count += 1,
                        None => st.status.push((resp.status, 1)),
                    }
                }
                Err(f) => {
                    let k = f.kind as usize;
                    st.errors[k] += 1;
                    if st.examples[k].is_none() {
                        st.examples[k] = Some(f.message);
                    }
                    backoff = matches!(f.kind, ErrorKind::Refused | ErrorKind::Connect);
                }
            }
        }
        in_flight.store(false, Ordering::Release);
        now = end;
        if backoff {
            // Nobody listens: do not spin; each attempt is still counted.
            tokio::time::sleep(Duration::from_millis(10)).await;
            now = Instant::now();
        }
    }
}

/// Run a group of connections on the current runtime until they finish or
/// `stop` is cancelled (then in-flight requests are abandoned).
async fn drive(plan: Arc<Plan>, groups: Vec<Arc<Group>>, stop: CancellationToken) -> Result<(), String> {
    let mut set = tokio::task::JoinSet::new();
    for group in groups {
        for i in 0..group.in_flight.len() {
            set.spawn(connection(plan.clone(), group.clone(), i));
        }
    }
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => {
                set.abort_all();
                while set.join_next().await.is_some() {}
                return Ok(());
            }
            r = set.join_next() => match r {
                None => return Ok(()),
                Some(Err(e)) if e.is_panic() => return Err(format!("connection task panicked: {e}")),
                Some(_) => {}
            }
        }
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Resolve and serialize the run's requests.
async fn plan(cfg: &LoadConfig) -> Result<Plan, Error> {
    if cfg.requests.is_empty() {
        return Err(Error::Config("no request to send".into()));
    }
    if cfg.connections == 0 {
        return Err(Error::Config("--connections must be at least 1".into()));
    }
    if cfg.timeout.is_zero() {
        return Err(Error::Config("the timeout must be more than 0".into()));
    }
    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut requests = Vec::new();
    let mut hyper_requests = Vec::new();
    for r in &cfg.requests {
        r.check()?;
        let ep = target::resolve(r).await?;
        let index = match endpoints.iter().position(|e| *e == ep) {
            Some(i) => i,
            None => {
                endpoints.push(ep);
                endpoints.len() - 1
            }
        };
        let p = target::serialize(r, index)?;
        hyper_requests.push(hyper_engine::HyperRequest::new(r, p.label.clone()));
        requests.push(p);
    }
    // Longer timeouts are as good as none, and keep deadline sums in range.
    let timeout = cfg.timeout.min(Duration::from_secs(365 * 86400));
    Ok(Plan { requests, hyper_requests, endpoints, timeout, deadline: None, engine: cfg.engine })
}

/// Run the load. `progress` is called about 10 times a second with the
/// number of requests finished; `cancel` stops the run early (the report
/// then has `interrupted`). Dropping the future stops the run too.
///
/// The connections run on threads of their own (see [`Runtime`]), so the
/// caller's runtime only waits; it needs tokio's time driver.
pub async fn run(
    cfg: &LoadConfig,
    progress: Option<&(dyn Fn(u64) + Sync)>,
    cancel: Option<CancellationToken>,
) -> Result<LoadReport, Error> {
    match progress {
        Some(p) => run_counted(cfg, Some(&|c: Counts| p(c.done)), cancel).await,
        None => run_counted(cfg, None, cancel).await,
    }
}

/// Requests finished so far, and how many of them got a response (any
/// status): a run whose `answered` stops moving has a server that stopped
/// answering, while `done` still moves as requests time out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub done: u64,
    pub answered: u64,
}

/// [`run`], with progress as [`Counts`].
pub async fn run_counted(
    cfg: &LoadConfig,
    progress: Option<&(dyn Fn(Counts) + Sync)>,
    cancel: Option<CancellationToken>,
) -> Result<LoadReport, Error> {
    let mut plan = plan(cfg).await?;
    // The clock starts once names are resolved and requests serialized.
    let start = Instant::now();
    plan.deadline = match cfg.stop {
        // A duration past any clock is no deadline at all.
        Stop::Duration(d) => start.checked_add(d),
        Stop::Requests(_) => None,
    };
    let plan = Arc::new(plan);
    let connections = cfg.connections;
    let mut threads = if cfg.threads == 0 { default_threads() } else { cfg.threads };
    threads = threads.clamp(1, connections);
    let total = match cfg.stop {
        Stop::Requests(n) => n,
        Stop::Duration(_) => u64::MAX,
    };

    let stop = cancel.as_ref().map(|c| c.child_token()).unwrap_or_default();
    // Dropping `run` (or returning) stops the driver threads.
    let _stop_on_drop = stop.clone().drop_guard();

    // Connections of thread k: an even share; with a request count, the
    // thread's tickets are in proportion to its connections, so that
    // threads finish together and the rotation stays exact.
    let mut groups: Vec<Arc<Group>> = Vec::new();
    let mut first = 0usize;
    for k in 0..threads {
        let count = connections / threads + usize::from(k < connections % threads);
        let share = |upto: usize| ((total as u128 * upto as u128) / connections as u128) as u64;
        let (offset, limit) = if total == u64::MAX { (0, u64::MAX) } else { (share(first), share(first + count) - share(first)) };
        groups.push(Arc::new(Group {
            next: AtomicU64::new(0),
            limit,
            offset,
            stats: Mutex::new(Stats::new()),
            in_flight: (0..count).map(|_| AtomicBool::new(false)).collect(),
        }));
        first += count;
    }
    let all_groups = groups.clone();

    let mut done_rx = Vec::new();
    let spawn = |name: String,
                 f: Box<dyn FnOnce() -> Result<(), String> + Send>|
     -> Result<tokio::sync::oneshot::Receiver<Result<(), String>>, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let r =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| Err("driver thread panicked".to_string()));
                let _ = tx.send(r);
            })
            .map_err(|e| Error::Io { what: "cannot start a load driver thread".into(), source: e })?;
        Ok(rx)
    };
    match cfg.runtime {
        Runtime::PerThread => {
            for (k, group) in groups.into_iter().enumerate() {
                let (plan, stop) = (plan.clone(), stop.clone());
                done_rx.push(spawn(
                    format!("loadgen-{k}"),
                    Box::new(move || {
                        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
                        rt.block_on(drive(plan, vec![group], stop))
                    }),
                )?);
            }
        }
        Runtime::WorkStealing => {
            let (plan, stop) = (plan.clone(), stop.clone());
            done_rx.push(spawn(
                "loadgen".into(),
                Box::new(move || {
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(threads)
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    rt.block_on(drive(plan, groups, stop))
                }),
            )?);
        }
    }

    let finished = async {
        let mut err = None;
        for rx in done_rx {
            match rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => err = Some(e),
                Err(_) => err = Some("driver thread ended without a result".to_string()),
            }
        }
        err
    };
    tokio::pin!(finished);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let worker_error = loop {
        tokio::select! {
            e = &mut finished => break e,
            _ = tick.tick() => {
                if let Some(p) = progress {
                    let mut c = Counts::default();
                    for g in &all_groups {
                        let st = g.stats.lock().unwrap_or_else(|e| e.into_inner());
                        c.done += st.done;
                        c.answered += st.ok + st.non_2xx;
                    }
                    p(c);
                }
            }
        }
    };
    if let Some(e) = worker_error {
        return Err(Error::Worker(e));
    }
    let interrupted = stop.is_cancelled();
    let report = merge(&all_groups, start, connections, interrupted);
    if let Some(p) = progress {
        p(Counts { done: report.requests, answered: report.ok + report.non_2xx });
    }
    Ok(report)
}

fn merge(groups: &[Arc<Group>], start: Instant, connections: usize, interrupted: bool) -> LoadReport {
    let mut hist: Histogram<u64> = Histogram::new(3).expect("valid");
    let (mut ok, mut non_2xx, mut bytes, mut cancelled) = (0, 0, 0, 0);
    let mut errors = [0u64; ErrorKind::ALL.len()];
    let mut examples: BTreeMap<String, String> = BTreeMap::new();
    let mut status_codes = BTreeMap::new();
    let mut end = start;
    for group in groups {
        let st = group.stats.lock().unwrap_or_else(|e| e.into_inner());
        let _ = hist.add(&st.latency_us);
        ok += st.ok;
        non_2xx += st.non_2xx;
        bytes += st.bytes;
        for (k, e) in errors.iter_mut().enumerate() {
            *e += st.errors[k];
        }
        for (k, ex) in st.examples.iter().enumerate() {
            if let Some(m) = ex {
                examples.entry(ErrorKind::ALL[k].as_str().to_string()).or_insert_with(|| m.clone());
            }
        }
        for &(code, n) in &st.status {
            *status_codes.entry(code).or_insert(0) += n;
        }
        if let Some(e) = st.last_end {
            end = end.max(e);
        }
        cancelled += group.in_flight.iter().filter(|f| f.load(Ordering::Acquire)).count() as u64;
    }
    if interrupted {
        end = Instant::now();
    }
    let duration_s = end.duration_since(start).as_secs_f64();
    let errors_total: u64 = errors.iter().sum();
    let errors_by_kind = ErrorKind::ALL.iter().zip(errors).filter(|(_, n)| *n > 0).map(|(k, n)| (k.as_str().to_string(), n)).collect();
    let ms = |us: f64| (us / 1000.0 * 1000.0).round() / 1000.0;
    let latency_ms = if hist.is_empty() {
        Percentiles::default()
    } else {
        Percentiles {
            p50: ms(hist.value_at_quantile(0.50) as f64),
            p90: ms(hist.value_at_quantile(0.90) as f64),
            p99: ms(hist.value_at_quantile(0.99) as f64),
            p999: ms(hist.value_at_quantile(0.999) as f64),
            max: ms(hist.max() as f64),
            mean: ms(hist.mean()),
        }
    };
    let responses = ok + non_2xx;
    LoadReport {
        requests: responses + errors_total,
        ok,
        non_2xx,
        errors: errors_total,
        errors_by_kind,
        error_examples: examples,
        status_codes,
        cancelled,
        interrupted,
        connections,
        threads: groups.len(),
        duration_s: (duration_s * 1e6).round() / 1e6,
        requests_per_s: if duration_s > 0.0 { (responses as f64 / duration_s * 10.0).round() / 10.0 } else { 0.0 },
        bytes_read: bytes,
        latency_ms,
    }
}

/// Check that something listens where `req` goes, by connecting only (no
/// request is sent, so a server counting requests sees none).
pub async fn check_listening(req: &Request, timeout: Duration) -> Result<(), Error> {
    req.check()?;
    let ep = target::resolve(req).await?;
    match tokio::time::timeout(timeout, connect(&ep)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(f)) => Err(Error::Unreachable { kind: f.kind, message: f.message }),
        Err(_) => {
            Err(Error::Unreachable { kind: ErrorKind::Timeout, message: format!("cannot connect to {} within {timeout:?}", ep.authority) })
        }
    }
}

/// Send `req` once on a new connection; Ok(status) for any HTTP response.
/// The error names what failed and where, e.g. `connection refused to 127.0.0.1:9`.
pub async fn check_reachable(req: &Request, timeout: Duration) -> Result<u16, Error> {
    req.check()?;
    let ep = target::resolve(req).await?;
    let prepared = target::serialize(req, 0)?;
    let once = async {
        let mut s = connect(&ep).await?;
        let mut rb = ReadBuf::new();
        raw::exchange(&mut s, &prepared, &mut rb, &ep.authority).await
    };
    match tokio::time::timeout(timeout, once).await {
        Ok(Ok(resp)) => Ok(resp.status),
        Ok(Err(f)) => Err(Error::Unreachable { kind: f.kind, message: f.message }),
        Err(_) => Err(Error::Unreachable {
            kind: ErrorKind::Timeout,
            message: format!("no response to {} from {} within {timeout:?}", prepared.label, ep.authority),
        }),
    }
}

/// Poll `req` until the server answers it (any HTTP status) or `timeout`
/// passes; for starting load once a freshly started server listens.
pub async fn wait_until_ready(req: &Request, timeout: Duration) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match check_reachable(req, left.max(Duration::from_millis(1))).await {
            Ok(_) => return Ok(()),
            Err(Error::Unreachable { message, .. }) => {
                if start.elapsed() >= timeout {
                    return Err(Error::NotReady { url: req.url.to_string(), waited: timeout, last: message });
                }
                tokio::time::sleep(Duration::from_millis(50).min(timeout.saturating_sub(start.elapsed()))).await;
            }
            Err(e) => return Err(e),
        }
    }
}
