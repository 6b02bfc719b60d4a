//! Prometheus metrics of the workers, served over HTTP (`--metrics ADDR`).
//!
//! Series are labelled by worker slot (`worker="0"`), not by pid, so that a
//! slot's series go on across restarts and PromQL can follow them.

use crate::watch::{MemState, Reason};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::convert::Infallible;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestartLabels {
    worker: String,
    reason: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

pub struct Metrics {
    registry: Arc<Registry>,
    up: Family<WorkerLabel, Gauge>,
    rss: Family<WorkerLabel, Gauge>,
    heap_used: Family<WorkerLabel, Gauge>,
    heap_total: Family<WorkerLabel, Gauge>,
    heap_limit: Family<WorkerLabel, Gauge>,
    floor: Family<WorkerLabel, Gauge>,
    slope: Family<WorkerLabel, FloatGauge>,
    leaking: Family<WorkerLabel, Gauge>,
    start_time: Family<WorkerLabel, FloatGauge>,
    restarts: Family<RestartLabels, Counter>,
    oom_kills: Family<WorkerLabel, Counter>,
}

fn label(slot: usize) -> WorkerLabel {
    WorkerLabel { worker: slot.to_string() }
}

impl Metrics {
    /// `started`: leakhound's own start, Unix seconds.
    pub fn new(workers: usize, started: f64) -> Metrics {
        let mut root = Registry::default();
        let process_start = FloatGauge::default();
        process_start.set(started);
        root.register_with_unit(
            "process_start_time",
            "Start time of the leakhound supervisor since the Unix epoch",
            Unit::Seconds,
            process_start,
        );
        let up = Family::<WorkerLabel, Gauge>::default();
        let rss = Family::<WorkerLabel, Gauge>::default();
        let heap_used = Family::<WorkerLabel, Gauge>::default();
        let heap_total = Family::<WorkerLabel, Gauge>::default();
        let heap_limit = Family::<WorkerLabel, Gauge>::default();
        let floor = Family::<WorkerLabel, Gauge>::default();
        let slope = Family::<WorkerLabel, FloatGauge>::default();
        let leaking = Family::<WorkerLabel, Gauge>::default();
        let start_time = Family::<WorkerLabel, FloatGauge>::default();
        let restarts = Family::<RestartLabels, Counter>::default();
        let oom_kills = Family::<WorkerLabel, Counter>::default();
        {
            let r = root.sub_registry_with_prefix("leakhound");
            r.register("worker_up", "1 when a ready worker serves this slot", up.clone());
            r.register_with_unit("worker_rss", "Resident set size of the worker (from /proc)", Unit::Bytes, rss.clone());
            r.register_with_unit("worker_heap_used", "V8 heap used", Unit::Bytes, heap_used.clone());
            r.register_with_unit("worker_heap_total", "V8 heap committed", Unit::Bytes, heap_total.clone());
            r.register_with_unit("worker_heap_limit", "V8 heap size limit", Unit::Bytes, heap_limit.clone());
            r.register_with_unit("worker_heap_floor", "Heap used after the latest full GC (post-GC floor)", Unit::Bytes, floor.clone());
            r.register(
                "worker_leak_slope_bytes_per_hour",
                "Theil-Sen slope of the post-GC floor over the leak window, bytes per hour",
                slope.clone(),
            );
            r.register(
                "worker_leaking",
                "1 when the floor grows significantly (Mann-Kendall p < 0.01) at --min-growth or more",
                leaking.clone(),
            );
            r.register_with_unit(
                "worker_start_time",
                "Start time of the worker process since the Unix epoch",
                Unit::Seconds,
                start_time.clone(),
            );
            r.register("worker_restarts", "Worker restarts by reason (rss, heap, leak, crash, reload)", restarts.clone());
            r.register(
                "worker_oom_kills",
                "Workers killed by the kernel's OOM killer (SIGKILL while the cgroup's oom_kill counter rose); also counted as crash restarts",
                oom_kills.clone(),
            );
        }
        for slot in 0..workers {
            up.get_or_create(&label(slot)).set(0);
            let _ = oom_kills.get_or_create(&label(slot));
            // Every reason from zero: `increase()` then sees the first restart.
            for reason in Reason::ALL {
                let _ = restarts.get_or_create(&RestartLabels { worker: slot.to_string(), reason: reason.as_str().into() });
            }
        }
        Metrics {
            registry: Arc::new(root),
            up,
            rss,
            heap_used,
            heap_total,
            heap_limit,
            floor,
            slope,
            leaking,
            start_time,
            restarts,
            oom_kills,
        }
    }

    /// The worker serving `slot` changed (started at `started`, Unix s).
    pub fn worker_started(&self, slot: usize, started: f64) {
        let l = label(slot);
        self.start_time.get_or_create(&l).set(started);
        // The new process has no floor series yet.
        self.slope.remove(&l);
        self.leaking.remove(&l);
        self.floor.remove(&l);
    }

    pub fn oom_killed(&self, slot: usize) {
        self.oom_kills.get_or_create(&label(slot)).inc();
    }

    pub fn set_up(&self, slot: usize, up: bool) {
        self.up.get_or_create(&label(slot)).set(up as i64);
    }

    pub fn restarted(&self, slot: usize, reason: Reason) {
        self.restarts.get_or_create(&RestartLabels { worker: slot.to_string(), reason: reason.as_str().into() }).inc();
    }

    pub fn update(&self, slot: usize, mem: &MemState) {
        let l = label(slot);
        if let Some(rss) = mem.rss() {
            self.rss.get_or_create(&l).set(rss as i64);
        }
        if let Some(h) = &mem.heap {
            self.heap_used.get_or_create(&l).set(h.heap_used as i64);
            self.heap_total.get_or_create(&l).set(h.heap_total as i64);
            self.heap_limit.get_or_create(&l).set(h.heap_limit as i64);
        }
        if let Some(f) = mem.floor() {
            self.floor.get_or_create(&l).set(f as i64);
        }
        if let Some(a) = &mem.leak {
            self.slope.get_or_create(&l).set(a.slope_per_hour);
            self.leaking.get_or_create(&l).set(a.leaking as i64);
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }
}

/// Connections served at once. When a new one comes beyond this, the
/// oldest is closed to make room: slow or idle clients cannot use up our
/// file descriptors nor lock a scraper out (a scrape takes milliseconds,
/// a Prometheus server keeps one connection per target).
pub const MAX_CONNECTIONS: usize = 128;
/// A client must send its request headers within this (also between
/// keep-alive requests), so idle connections free their slot.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of one connection.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// Open connections, oldest first: (id, what closes it).
type OpenConnections = std::collections::VecDeque<(u64, tokio::sync::oneshot::Sender<()>)>;

/// Serve `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, registry: Arc<Registry>) {
    let open: Arc<std::sync::Mutex<OpenConnections>> = Arc::default();
    let mut next_id = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of descriptors (EMFILE) or a transient error: do not spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = next_id;
        next_id += 1;
        let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
        {
            let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
            while open.len() >= MAX_CONNECTIONS {
                if let Some((_, oldest)) = open.pop_front() {
                    let _ = oldest.send(());
                }
            }
            open.push_back((id, close_tx));
        }
        let registry = registry.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let registry = registry.clone();
                async move { Ok::<_, Infallible>(respond(&req, &registry)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = tokio::time::timeout(CONNECTION_LIFETIME, conn) => {}
                _ = close_rx => {}
            }
            open.lock().unwrap_or_else(|e| e.into_inner()).retain(|(i, _)| *i != id);
        });
    }
}

fn respond(req: &Request<hyper::body::Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => {
            let mut out = String::new();
            let _ = prometheus_client::encoding::text::encode(&mut out, registry);
            (200, "application/openmetrics-text; version=1.0.0; charset=utf-8", out)
        }
        _ => (404, "text/plain; charset=utf-8", "leakhound serves /metrics\n".to_string()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_zeroed_counters() {
        let m = Metrics::new(2, 1_700_000_000.0);
        m.restarted(1, Reason::Rss);
        let text = m.encode();
        assert!(text.contains("process_start_time_seconds 1700000000.0"), "{text}");
        assert!(text.contains("leakhound_worker_restarts_total{worker=\"1\",reason=\"rss\"} 1"), "{text}");
        assert!(text.contains("leakhound_worker_restarts_total{worker=\"0\",reason=\"crash\"} 0"), "{text}");
        assert!(text.contains("leakhound_worker_up{worker=\"0\"} 0"), "{text}");
        // Gauges appear once a worker has been measured.
        assert!(!text.contains("leakhound_worker_rss_bytes"), "{text}");
        let t0 = std::time::Instant::now();
        let mut mem = MemState::new(t0);
        mem.push_rss(t0, 50_000_000);
        m.update(0, &mem);
        let text = m.encode();
        assert!(text.contains("# TYPE leakhound_worker_rss_bytes gauge"), "{text}");
        assert!(text.contains("leakhound_worker_rss_bytes{worker=\"0\"} 50000000"), "{text}");
    }
}
