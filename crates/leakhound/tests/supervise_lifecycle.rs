//! `leakhound supervise`: a reload (SIGHUP) lets requests in flight finish,
//! an unmodified Express app reloads under load without losing a request,
//! explicit readiness (--wait-ready), a clean stop on SIGTERM that leaves no
//! process behind, workers dying with a SIGKILLed leakhound, and bad input
//! (not Node, a missing program, a busy port, an app that listens elsewhere)
//! as one line and exit 2.

mod supervise_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use supervise_support::*;

/// One HTTP/1.1 keep-alive request on `s`; returns (status, headers, body).
fn request(s: &mut TcpStream) -> (u16, String, String) {
    write!(s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "connection closed before the response");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("content-length");
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, String::from_utf8(body).unwrap())
}

fn pid_of(body: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(body).unwrap()["pid"].as_u64().unwrap()
}

/// Requests taking 1.5 s each are in flight when leakhound gets SIGHUP:
/// the replacement starts, the old worker stops accepting, and still
/// answers all of them (with `Connection: close`), then exits by itself;
/// new requests go to the replacement.
#[test]
fn reload_lets_requests_in_flight_finish() {
    let mut sup = Supervised::start(&[], &[("RESPONSE_DELAY_MS", "1500")], &[&fixture("app.js")]);
    let ready = sup.wait_for("ready", Duration::from_secs(15), |e| e["event"] == "ready");
    let old = ready["pid"].as_u64().unwrap();
    let port = sup.port;
    let inflight: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let t0 = Instant::now();
                let r = request(&mut s);
                (r, t0.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    signal(sup.pid(), libc::SIGHUP);
    let restart = sup.wait_for("the reload", Duration::from_secs(5), |e| e["event"] == "restart");
    assert_eq!(restart["reason"], "reload");
    for t in inflight {
        let ((status, head, body), took) = t.join().unwrap();
        assert_eq!(status, 200);
        assert_eq!(pid_of(&body), old, "answered by the old worker");
        assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
        assert!(took >= Duration::from_millis(1400), "{took:?}");
    }
    let exited = sup.wait_for("the old worker's exit", Duration::from_secs(10), |e| e["event"] == "exited" && e["pid"] == old);
    assert_eq!(exited["status"], "exit code 0");
    // It waited for its requests: about 1.2 s left of 1.5 s.
    assert!(exited["drain_ms"].as_u64().unwrap() >= 900, "{exited}");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (status, _, body) = request(&mut s);
    assert_eq!(status, 200);
    assert_ne!(pid_of(&body), old);
    assert!(sup.stop().success());
}

/// An unmodified Express app, two workers, under a bounded stream of
/// requests: two SIGHUP reloads (each replacing both workers, one at a
/// time) lose no request.
#[test]
fn express_app_reloads_under_load_without_loss() {
    let mut sup = Supervised::start(&["--workers", "2"], &[], &[&fixture("express-app.js")]);
    sup.wait_until("two ready workers", Duration::from_secs(20), |evs| {
        (evs.iter().filter(|e| e["event"] == "ready").count() >= 2).then_some(())
    });
    let leakhound = sup.pid();
    let reloads = std::thread::spawn(move || {
        for at in [600, 2000] {
            std::thread::sleep(Duration::from_millis(at));
            signal(leakhound, libc::SIGHUP);
        }
    });
    let url = format!("http://127.0.0.1:{}/", sup.port);
    let cfg = loadgen::LoadConfig::new(vec![loadgen::Request::get(&url).unwrap()], 16, loadgen::Stop::Requests(10_000));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = rt.block_on(loadgen::run(&cfg, None, None)).expect("load run");
    let load_end = Instant::now();
    reloads.join().unwrap();
    sup.wait_until("the reloads to complete", Duration::from_secs(20), |evs| {
        let restarts: Vec<_> = evs.iter().filter(|e| e["event"] == "restart").collect();
        let done = restarts.iter().all(|r| evs.iter().any(|e| e["event"] == "exited" && e["pid"] == r["pid"]));
        (restarts.len() >= 4 && done).then_some(())
    });
    assert!(sup.stop().success(), "{}", sup.transcript());
    let events = sup.events();
    let reloaded = events.iter().filter(|e| e["event"] == "restart" && e["reason"] == "reload").count();
    eprintln!(
        "{} requests: {} ok, {} errors {:?}; {reloaded} workers reloaded",
        report.requests, report.ok, report.errors, report.errors_by_kind
    );
    assert_eq!(reloaded, 4, "{}", sup.transcript());
    // Both reloads happened while the requests were coming: old workers
    // drained before the load ended.
    let timed = sup.timed_events();
    let drained_under_load = timed.iter().filter(|(t, e)| e["event"] == "exited" && *t < load_end).count();
    assert!(drained_under_load >= 3, "only {drained_under_load} workers replaced during the load:\n{}", sup.transcript());
    assert_eq!(report.errors, 0, "{:?} {:?}\n{}", report.errors_by_kind, report.error_examples, sup.transcript());
    assert_eq!(report.ok, 10_000);
    assert_eq!(sup.count(|e| e["event"] == "killed" || e["event"] == "crashed"), 0, "{}", sup.transcript());
}

/// --wait-ready: listening is not enough, the worker is ready when it calls
/// process.send('ready') (here 700 ms after it listens).
#[test]
fn wait_ready_waits_for_the_ready_message() {
    let mut sup = Supervised::start(&["--wait-ready"], &[("READY_DELAY_MS", "700")], &[&fixture("app.js")]);
    let ready = sup.wait_for("ready", Duration::from_secs(15), |e| e["event"] == "ready");
    assert_eq!(ready["via"], "process.send('ready')");
    assert!(ready["ms"].as_u64().unwrap() >= 700, "{ready}");
    assert!(sup.stop().success());
}

/// SIGTERM: every worker drains and exits, the processes they started
/// die with them, leakhound exits 0.
#[test]
fn sigterm_stops_workers_and_their_children() {
    let dir = tempfile::tempdir().unwrap();
    let child_file = dir.path().join("child.pid");
    let cf = child_file.to_string_lossy().into_owned();
    let mut sup = Supervised::start(&[], &[("CHILD_PID_FILE", &cf)], &[&fixture("app.js")]);
    sup.wait_for("ready", Duration::from_secs(15), |e| e["event"] == "ready");
    let grandchild: u32 = std::fs::read_to_string(&child_file).unwrap().trim().parse().unwrap();
    assert!(alive(grandchild));
    let workers = worker_pids(&sup.events());
    let t0 = Instant::now();
    let status = sup.stop();
    assert!(status.success(), "{}", sup.transcript());
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let events = sup.events();
    let last = events.last().unwrap();
    assert_eq!(last["event"], "stopped");
    assert!(events.iter().any(|e| e["event"] == "stopping" && e["why"].as_str().unwrap().starts_with("SIGTERM")));
    std::thread::sleep(Duration::from_millis(100));
    for pid in workers {
        assert!(!alive(pid), "worker {pid} still running");
    }
    assert!(!alive(grandchild), "the worker's child {grandchild} still running");
}

/// leakhound killed outright: its workers die with it (PR_SET_PDEATHSIG).
#[test]
fn workers_die_with_a_killed_leakhound() {
    let mut sup = Supervised::start(&["--workers", "2"], &[], &[&fixture("app.js")]);
    sup.wait_until("2 ready", Duration::from_secs(15), |evs| (evs.iter().filter(|e| e["event"] == "ready").count() == 2).then_some(()));
    let workers = worker_pids(&sup.events());
    signal(sup.pid(), libc::SIGKILL);
    sup.wait_exit(Duration::from_secs(5));
    let t0 = Instant::now();
    while workers.iter().any(|p| alive(*p)) {
        assert!(t0.elapsed() < Duration::from_secs(3), "workers {workers:?} outlived leakhound");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_fail(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, Duration) {
    let t0 = Instant::now();
    let mut cmd = Command::new(BIN);
    cmd.arg("supervise").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr.lines().last().unwrap_or("").to_string(), t0.elapsed())
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let app = fixture("app.js");
    let (code, line, _) = run_fail(&["--listen", "127.0.0.1:0", "--", "python3", &app], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(
        line,
        "leakhound: error: the command must run Node itself, got `python3` (use `-- node server.js`; npm or a shell would hide the worker from leakhound)"
    );

    let (code, line, _) = run_fail(&["--listen", "127.0.0.1:0", "--", "/nonexistent/node", &app], &[]);
    assert_eq!(code, Some(2));
    // One error style: the OS reason once, without "(os error 2)".
    assert_eq!(line, "leakhound: error: cannot start `/nonexistent/node`: No such file or directory");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, line, _) = run_fail(&["--listen", &addr, "--", "node", &app], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(line, format!("leakhound: error: cannot listen on {addr}: Address already in use"));

    // Usage errors are clap's (exit 2 as well): the first line says what.
    let out =
        Command::new(BIN).args(["supervise", "--listen", "127.0.0.1:0", "--max-rss", "12 parsecs", "--", "node", &app]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let first = String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").to_string();
    assert!(first.contains("'12 parsecs' for '--max-rss <SIZE|auto>': unknown size unit `parsecs`"), "{first}");

    // An app that ignores PORT: named in the error after the crashes.
    let other = free_port().to_string();
    let (code, line, took) = run_fail(
        &["--listen", "127.0.0.1:0", "--ready-timeout", "1s", "--max-crash-restarts", "1", "--", "node", &fixture("elsewhere.js")],
        &[("ELSEWHERE_PORT", &other)],
    );
    assert_eq!(code, Some(2));
    assert!(line.starts_with("leakhound: error: worker 0 crashed 2 times in a row"), "{line}");
    assert!(line.contains(&format!("it listened on port {other}, not on the shared port")), "{line}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}
