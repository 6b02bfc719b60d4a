//! The load driver against real servers: a Node http server and a hyper
//! server started by each test, which count what they receive; the report
//! must agree with them exactly. Plus servers that break connections,
//! stall, or are not there, and the user's own driver command.

mod common;

use common::node::{dead_port, NodeServer};
use common::{Break, BreakingServer, RustServer};
use loadgen::{Engine, Error, LoadConfig, LoadReport, Request, Runtime, Stop};
use std::time::{Duration, Instant};

fn get(url: &str) -> Request {
    Request::get(url).unwrap()
}

async fn run(requests: Vec<Request>, connections: usize, stop: Stop) -> LoadReport {
    let cfg = LoadConfig::new(requests, connections, stop);
    loadgen::run(&cfg, None, None).await.expect("run")
}

/// Every request attempted is accounted for exactly once.
fn assert_accounted(r: &LoadReport) {
    assert_eq!(r.requests, r.ok + r.non_2xx + r.errors, "{r:#?}");
    assert_eq!(r.errors, r.errors_by_kind.values().sum::<u64>(), "{r:#?}");
    assert_eq!(r.ok + r.non_2xx, r.status_codes.values().sum::<u64>(), "{r:#?}");
}

#[tokio::test]
async fn node_exact_count_and_percentiles() {
    let node = NodeServer::start();
    let r = run(vec![get(&node.url("/"))], 10, Stop::Requests(3000)).await;
    assert_accounted(&r);
    assert_eq!(r.requests, 3000);
    assert_eq!(r.ok, 3000, "{r:#?}");
    assert_eq!(node.stats()["total"], 3000, "the server saw a different number of requests");
    assert_eq!(r.status_codes.get(&200), Some(&3000));
    let l = &r.latency_ms;
    assert!(l.p50 > 0.0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, "{l:?}");
    assert!(l.mean > 0.0 && l.mean <= l.max, "{l:?}");
    assert!(r.requests_per_s > 0.0 && r.duration_s > 0.0);
    // Each response is at least its status line and the 11-byte body.
    assert!(r.bytes_read >= 3000 * (11 + 17), "{}", r.bytes_read);
}

#[tokio::test]
async fn node_rotation_is_exact_per_path() {
    let node = NodeServer::start();
    let urls = ["/a", "/b", "/c"].map(|p| get(&node.url(p)));
    // 7 connections over the default threads: uneven shares, still exact.
    let r = run(urls.to_vec(), 7, Stop::Requests(1000)).await;
    assert_accounted(&r);
    assert_eq!(r.ok, 1000);
    let stats = node.stats();
    let counts = &stats["counts"];
    let (a, b, c) = (counts["GET /a"].as_u64(), counts["GET /b"].as_u64(), counts["GET /c"].as_u64());
    assert_eq!((a, b, c), (Some(334), Some(333), Some(333)), "{stats}");
}

#[tokio::test]
async fn node_chunked_and_connection_close_framing() {
    let node = NodeServer::start();
    let reqs = vec![get(&node.url("/chunked")), get(&node.url("/close")), get(&node.url("/"))];
    let r = run(reqs, 4, Stop::Requests(600)).await;
    assert_accounted(&r);
    assert_eq!((r.ok, r.errors), (600, 0), "{r:#?}");
    assert_eq!(node.count("GET /chunked"), 200);
    assert_eq!(node.count("GET /close"), 200);
    assert_eq!(node.count("GET /"), 200);
}

#[tokio::test]
async fn node_method_headers_body_arrive() {
    let node = NodeServer::start();
    let req = Request::new("post", &node.url("/echo")).unwrap().header("X-Leak-Test", "yes please").body("{\"n\": 42}");
    let r = run(vec![req], 2, Stop::Requests(10)).await;
    assert_eq!(r.ok, 10, "{r:#?}");
    let stats = node.stats();
    let echo = &stats["echo"];
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["headers"]["x-leak-test"], "yes please");
    assert_eq!(echo["headers"]["content-length"], "9");
    assert_eq!(echo["body"], "{\"n\": 42}");
    assert_eq!(node.count("POST /echo"), 10);
}

#[tokio::test]
async fn node_non_2xx_counted_separately() {
    let node = NodeServer::start();
    let reqs = vec![get(&node.url("/")), get(&node.url("/status/503")), get(&node.url("/status/404"))];
    let r = run(reqs, 3, Stop::Requests(300)).await;
    assert_accounted(&r);
    assert_eq!((r.ok, r.non_2xx, r.errors), (100, 200, 0), "{r:#?}");
    assert_eq!(r.status_codes.get(&503), Some(&100));
    assert_eq!(r.status_codes.get(&404), Some(&100));
    assert_eq!(node.stats()["total"], 300);
}

#[tokio::test]
async fn rust_exact_count_every_engine_and_runtime() {
    let server = RustServer::start();
    let mut expected = 0;
    for (engine, runtime, threads) in [
        (Engine::Raw, Runtime::PerThread, 1),
        (Engine::Raw, Runtime::PerThread, 2),
        (Engine::Raw, Runtime::WorkStealing, 2),
        (Engine::Hyper, Runtime::PerThread, 2),
    ] {
        let mut cfg = LoadConfig::new(vec![get(&server.url("/")), get(&server.url("/chunked"))], 9, Stop::Requests(2001));
        cfg.engine = engine;
        cfg.runtime = runtime;
        cfg.threads = threads;
        let r = loadgen::run(&cfg, None, None).await.unwrap();
        expected += 2001;
        assert_accounted(&r);
        assert_eq!((r.ok, r.errors), (2001, 0), "{engine:?} {runtime:?}: {r:#?}");
        assert_eq!(server.received.total.load(std::sync::atomic::Ordering::SeqCst), expected, "{engine:?} {runtime:?}");
        assert_eq!(r.threads, threads);
    }
    assert_eq!(server.received.count("GET /"), 4 * 1001);
    assert_eq!(server.received.count("GET /chunked"), 4 * 1000);
}

#[tokio::test]
async fn rust_rotation_over_two_servers() {
    let (one, two) = (RustServer::start(), RustServer::start());
    let reqs = vec![get(&one.url("/x")), get(&two.url("/y")), get(&one.url("/z"))];
    let r = run(reqs, 5, Stop::Requests(900)).await;
    assert_eq!(r.ok, 900, "{r:#?}");
    assert_eq!((one.received.count("GET /x"), one.received.count("GET /z")), (300, 300));
    assert_eq!(two.received.count("GET /y"), 300);
}

#[tokio::test]
async fn rust_method_headers_body_arrive() {
    let server = RustServer::start();
    let req = Request::new("PUT", &server.url("/echo")).unwrap().header("Authorization", "Bearer t0k3n").body(vec![b'x'; 5000]);
    let r = run(vec![req], 1, Stop::Requests(3)).await;
    assert_eq!(r.ok, 3, "{r:#?}");
    let (method, headers, body) = server.received.echo.lock().unwrap().clone().unwrap();
    assert_eq!(method, "PUT");
    assert!(headers.contains(&("authorization".into(), "Bearer t0k3n".into())), "{headers:?}");
    assert_eq!(body.len(), 5000);
}

#[tokio::test]
async fn connection_refused_is_counted_and_named() {
    let port = dead_port();
    let r = run(vec![get(&format!("http://127.0.0.1:{port}/"))], 4, Stop::Requests(40)).await;
    assert_accounted(&r);
    assert_eq!((r.requests, r.ok, r.errors), (40, 0, 40));
    assert_eq!(r.errors_by_kind.get("refused"), Some(&40), "{r:#?}");
    assert_eq!(r.error_examples["refused"], format!("connection refused to 127.0.0.1:{port}"));
    let e = loadgen::check_listening(&get(&format!("http://127.0.0.1:{port}/")), Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(e.to_string(), format!("connection refused to 127.0.0.1:{port}"));
}

#[tokio::test]
async fn server_closing_connections_mid_run() {
    // Every connection gets 3 answers, then the 4th request is read and the
    // connection closed (FIN) without a response; the driver reconnects.
    let server = BreakingServer::start(3, Break::Close);
    let r = run(vec![get(&server.url())], 4, Stop::Requests(400)).await;
    assert_accounted(&r);
    assert_eq!(r.requests, 400);
    // 3 answers per break, give or take each connection's last cycle.
    assert!(r.errors > 0 && r.ok >= 3 * r.errors && r.ok <= 3 * r.errors + 3 * 4, "{r:#?}");
    assert_eq!(r.errors_by_kind.get("closed"), Some(&r.errors), "{r:#?}");
    assert_eq!(r.ok, server.answered.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(r.errors, server.broken.load(std::sync::atomic::Ordering::SeqCst));
    assert!(r.error_examples["closed"].contains("closed the connection before the response"), "{r:#?}");
}

#[tokio::test]
async fn server_resetting_connections_mid_run() {
    let server = BreakingServer::start(1, Break::Reset);
    let r = run(vec![get(&server.url())], 3, Stop::Requests(200)).await;
    assert_accounted(&r);
    assert_eq!(r.requests, 200);
    assert!(r.errors > 0 && r.ok >= r.errors && r.ok <= r.errors + 3, "{r:#?}");
    assert_eq!(r.errors_by_kind.get("reset"), Some(&r.errors), "{r:#?}");
    assert_eq!(r.ok, server.answered.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(r.errors, server.broken.load(std::sync::atomic::Ordering::SeqCst));
}

#[tokio::test]
async fn idle_connections_closed_by_the_server_are_not_errors() {
    // Each connection holds one socket per server. While it waits 40 ms on
    // the first server, the second closes its idle connection (10 ms after
    // each answer, without `Connection: close`); the driver must notice and
    // reconnect rather than send a request on a dead connection.
    let (waiting, closing) = (RustServer::start(), BreakingServer::start(1, Break::IdleClose));
    let reqs = vec![get(&waiting.url("/wait")), get(&closing.url())];
    let r = run(reqs, 2, Stop::Requests(20)).await;
    assert_accounted(&r);
    assert_eq!((r.ok, r.errors), (20, 0), "{r:#?}");
    assert_eq!(closing.answered.load(std::sync::atomic::Ordering::SeqCst), 10);
}

#[tokio::test]
async fn timeout_is_honored() {
    let server = RustServer::start();
    let mut cfg = LoadConfig::new(vec![get(&server.url("/slow"))], 2, Stop::Requests(4));
    cfg.timeout = Duration::from_millis(300);
    let t = Instant::now();
    let r = loadgen::run(&cfg, None, None).await.unwrap();
    let took = t.elapsed();
    assert_accounted(&r);
    assert_eq!(r.errors_by_kind.get("timeout"), Some(&4), "{r:#?}");
    // Two rounds of two connections, each 300 ms (the timer has 1 ms ticks).
    assert!(took >= Duration::from_millis(590) && took < Duration::from_secs(3), "{took:?}");
    assert!(r.error_examples["timeout"].contains("within 300ms"), "{r:#?}");
}

#[tokio::test]
async fn duration_is_bounded() {
    let server = RustServer::start();
    let t = Instant::now();
    let r = run(vec![get(&server.url("/"))], 8, Stop::Duration(Duration::from_millis(700))).await;
    let took = t.elapsed();
    assert_accounted(&r);
    assert!(r.ok > 100 && r.errors == 0, "{r:#?}");
    assert!(took >= Duration::from_millis(700) && took < Duration::from_secs(2), "{took:?}");
    assert!(r.duration_s >= 0.7 && r.duration_s < 1.2, "{}", r.duration_s);
    assert_eq!(server.received.total.load(std::sync::atomic::Ordering::SeqCst), r.requests);
}

#[tokio::test]
async fn cancel_stops_a_run_and_reports_it() {
    let server = RustServer::start();
    // Half the requests stall, so some are in flight when the run is cancelled.
    let reqs = vec![get(&server.url("/")), get(&server.url("/slow"))];
    let cfg = LoadConfig::new(reqs, 4, Stop::Duration(Duration::from_secs(30)));
    let cancel = tokio_util::sync::CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.cancel();
    });
    let seen = std::sync::atomic::AtomicU64::new(0);
    let progress = |done: u64| {
        seen.fetch_max(done, std::sync::atomic::Ordering::SeqCst);
    };
    let t = Instant::now();
    let r = loadgen::run(&cfg, Some(&progress), Some(cancel)).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(r.interrupted);
    assert_accounted(&r);
    assert_eq!(r.cancelled, 4, "every connection was waiting on /slow: {r:#?}");
    assert_eq!(r.requests + r.cancelled, server.received.total.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), r.requests);
}

#[tokio::test]
async fn only_loopback_targets() {
    for url in ["http://10.0.0.1/", "http://192.168.1.1:8080/", "http://example.com/", "http://[2001:db8::1]/"] {
        match Request::get(url) {
            Err(Error::NotLoopback { .. }) => {}
            other => panic!("{url}: {other:?}"),
        }
    }
    for url in ["http://127.0.0.1:1/", "http://127.1.2.3/", "http://[::1]:8080/x", "http://localhost:3000/"] {
        Request::get(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let e = Request::get("https://127.0.0.1/").unwrap_err();
    assert!(e.to_string().contains("https is not supported"), "{e}");
    assert!(matches!(Request::get("127.0.0.1:3000"), Err(Error::BadUrl { .. })));
    for url in ["http://127.0.0.1:0/", "http://127.0.0.1:70000/", "http://127.0.0.1:x/", "http://[::1]:99999/"] {
        let e = Request::get(url).unwrap_err();
        assert!(e.to_string().contains("invalid port"), "{url}: {e}");
    }
    let e = Request::get("http://127.0.0.1/").unwrap().header("Bad Name", "x").check().unwrap_err();
    assert!(e.to_string().contains("invalid header name"), "{e}");
    // A field changed after construction is checked again by `run`.
    let mut req = get("http://127.0.0.1:1/");
    req.url = "http://10.1.1.1/".parse().unwrap();
    let err = loadgen::run(&LoadConfig::new(vec![req], 1, Stop::Requests(1)), None, None).await.unwrap_err();
    assert!(matches!(err, Error::NotLoopback { .. }), "{err}");
}

#[tokio::test]
async fn localhost_resolves_to_loopback() {
    let server = RustServer::start();
    let r = run(vec![get(&format!("http://localhost:{}/", server.port))], 2, Stop::Requests(20)).await;
    assert_eq!(r.ok, 20, "{r:#?}");
}

#[tokio::test]
async fn wait_until_ready_waits_for_a_late_server() {
    let port = dead_port();
    let req = get(&format!("http://127.0.0.1:{port}/"));
    let e = loadgen::wait_until_ready(&req, Duration::from_millis(300)).await.unwrap_err();
    assert!(e.to_string().contains(&format!("connection refused to 127.0.0.1:{port}")), "{e}");
    // A server that starts listening 400 ms from now.
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = std::io::Read::read(&mut s, &mut buf);
        std::io::Write::write_all(&mut s, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").unwrap();
    });
    let t = Instant::now();
    loadgen::wait_until_ready(&req, Duration::from_secs(5)).await.expect("ready once it listens (any status)");
    assert!(t.elapsed() >= Duration::from_millis(350), "{:?}", t.elapsed());
    late.join().unwrap();
}

#[tokio::test]
async fn run_command_reports_exit_and_kills_its_group_on_timeout() {
    let ok = loadgen::run_command("exit 0", Duration::from_secs(5)).await.unwrap();
    assert!(ok.success() && ok.exit_code == Some(0));
    let fail = loadgen::run_command("exit 3", Duration::from_secs(5)).await.unwrap();
    assert_eq!((fail.exit_code, fail.timed_out), (Some(3), false));

    let dir = std::env::temp_dir().join(format!("loadgen-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("bg.pid");
    // A background child in the group, and a foreground sleep past the timeout.
    let cmd = format!("sleep 60 & echo $! > {}; sleep 60", pidfile.display());
    let t = Instant::now();
    let r = loadgen::run_command(&cmd, Duration::from_millis(300)).await.unwrap();
    assert!(r.timed_out && !r.success(), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // The background sleep is gone (or a zombie about to be reaped by init).
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(state.is_empty() || state.split(' ').nth(2) == Some("Z"), "background child still running: {state}");
    std::fs::remove_dir_all(&dir).ok();
}
