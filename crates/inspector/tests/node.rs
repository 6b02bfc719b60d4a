//! The inspector client against real Node processes: every major from 18
//! to 26 (launch, evaluate, memory, GC, a streamed snapshot that heapsnap
//! parses), events and protocol errors, attaching by pid (SIGUSR1), and
//! every way of failing: nobody listening, a foreign server, a silent one,
//! a non-Node pid, a dead pid, a target that dies mid-snapshot, a program
//! that cannot start. No process is left behind.

mod support;

use inspector::{Error, Session, SnapshotOptions, SnapshotProgress};
use std::ffi::OsString;
use std::time::Duration;
use support::*;

fn cmd(node: &std::path::Path, args: &[&str]) -> Vec<OsString> {
    std::iter::once(node.as_os_str().to_owned()).chain(args.iter().map(OsString::from)).collect()
}

#[tokio::test]
async fn every_major_memory_gc_and_a_streamed_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    for major in [18, 20, 22, 24, 26] {
        let node = node(major);
        let holder = fixture("holder.js");
        let mut launched = inspector::launch(&cmd(&node, &[holder.to_str().unwrap(), "120"]), &[]).await.unwrap();
        assert!(launched.ws_url.starts_with("ws://127.0.0.1:"), "{}", launched.ws_url);
        let session = Session::connect(&launched.ws_url).await.unwrap();
        let info = session.process_info().await.unwrap();
        assert_eq!(info.node_major(), Some(major), "{info:?}");
        assert_eq!(info.pid, launched.pid);
        // Wait until the fixture has built its objects.
        let mut markers = 0;
        for _ in 0..500 {
            markers =
                session.evaluate::<Option<usize>>("globalThis.liveMarkers && globalThis.liveMarkers.length").await.unwrap().unwrap_or(0);
            if markers == 1000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(markers, 1000, "Node {major}");

        let m = session.memory().await.unwrap();
        assert_eq!(m.pid, launched.pid);
        assert!(m.heap_used > 1_000_000 && m.heap_used <= m.heap_total, "{m:?}");
        assert!(m.rss >= m.heap_total && m.heap_size_limit > m.heap_total, "{m:?}");
        assert!(m.timestamp_ms > 1.6e12 && m.uptime_s > 0.0, "{m:?}");
        session.collect_garbage().await.unwrap();

        let out = dir.path().join(format!("node{major}.heapsnapshot"));
        let mut seen = Vec::new();
        let mut building = 0;
        let bytes = session
            .take_heap_snapshot_with(&out, &SnapshotOptions::default(), |p| match p {
                SnapshotProgress::Writing { bytes } => seen.push(bytes),
                SnapshotProgress::Building { .. } => building += 1,
            })
            .await
            .unwrap();
        assert_eq!(std::fs::metadata(&out).unwrap().len(), bytes);
        assert!(!inspector::part_path(&out).exists());
        assert!(seen.windows(2).all(|w| w[0] < w[1]) && seen.last() == Some(&bytes), "Node {major}: progress {seen:?}");
        assert!(seen.len() > 1 && building > 0, "Node {major}: {} chunks, {building} progress events", seen.len());
        assert_eq!(count_class(&out, "LiveMarker"), 1000, "Node {major}");

        session.close().await;
        let st = launched.stop(Duration::from_secs(5)).await;
        assert!(!st.success() || st.code() == Some(0), "{st:?}");
        assert!(gone_within(launched.pid, Duration::from_secs(5)), "Node {major}: pid {} still alive", launched.pid);
    }
}

#[tokio::test]
async fn events_protocol_errors_exceptions_and_timeouts() {
    let node = node(20);
    let launched = inspector::launch(&cmd(&node, &["-e", "setInterval(() => {}, 1000)"]), &[]).await.unwrap();
    let session = Session::connect(&launched.ws_url).await.unwrap();
    let mut events = session.subscribe();
    let _: serde_json::Value = session.call("Runtime.enable", ()).await.unwrap();
    let _: serde_json::Value = session.evaluate("console.log('hello from the target')").await.unwrap();
    let logged = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let ev = events.recv().await.unwrap();
            if ev.method == "Runtime.consoleAPICalled" {
                return ev;
            }
        }
    })
    .await
    .expect("no Runtime.consoleAPICalled event");
    assert_eq!(logged.params["args"][0]["value"], "hello from the target");

    match session.call::<_, serde_json::Value>("Target.setDiscoverTargets", serde_json::json!({"discover": true})).await {
        Err(Error::Protocol { code, method, .. }) => assert_eq!((code, method.as_str()), (-32601, "Target.setDiscoverTargets")),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    match session.evaluate::<serde_json::Value>("(() => { throw new TypeError('boom') })()").await {
        Err(Error::Exception(text)) => assert!(text.contains("TypeError: boom"), "{text}"),
        other => panic!("expected an exception, got {other:?}"),
    }
    // Deferred to the event loop, with the command-line API's `require`.
    let deferred = inspector::EvalOptions { defer: true, ..Default::default() };
    assert_eq!(session.evaluate_with::<String>("typeof require('v8').getHeapStatistics", &deferred).await.unwrap(), "function");
    match session.evaluate_with::<serde_json::Value>("(() => { throw new RangeError('later') })()", &deferred).await {
        Err(Error::Exception(text)) => assert!(text.contains("RangeError: later"), "{text}"),
        other => panic!("expected an exception, got {other:?}"),
    }
    // `undefined` is null; numbers and strings come back typed.
    assert_eq!(session.evaluate::<Option<u32>>("undefined").await.unwrap(), None);
    assert_eq!(session.evaluate::<String>("'a' + 1").await.unwrap(), "a1");

    session.set_call_timeout(Duration::from_millis(300));
    let busy = session.evaluate::<serde_json::Value>("(() => { const t = Date.now() + 1500; while (Date.now() < t); })()").await;
    assert!(matches!(busy, Err(Error::CallTimeout { .. })), "{busy:?}");
    assert!(busy.unwrap_err().to_string().contains("no reply from the target within 0.3 s"));
    // The late reply is dropped and the session goes on.
    session.set_call_timeout(Duration::from_secs(30));
    assert_eq!(session.evaluate::<u32>("6 * 7").await.unwrap(), 42);
    drop(session);
    drop(launched);
}

#[tokio::test]
async fn attach_by_pid_with_sigusr1_then_without() {
    let node = node(22);
    let port = free_port();
    let p = start_node(&node, &[&format!("--inspect-port={port}"), fixture("holder.js").to_str().unwrap(), "120"], "holder ready");
    let first = inspector::attach_pid_with(p.pid, port, Duration::from_secs(30)).await.unwrap();
    assert!(first.signalled);
    assert!(first.ws_url.starts_with(&format!("ws://127.0.0.1:{port}/")), "{}", first.ws_url);
    let session = Session::connect(&first.ws_url).await.unwrap();
    assert_eq!(session.process_info().await.unwrap().pid, p.pid);
    drop(session);
    // Already open: no second signal.
    let second = inspector::attach_pid_with(p.pid, port, Duration::from_secs(30)).await.unwrap();
    assert!(!second.signalled);
    assert_eq!(second.ws_url, first.ws_url);
    // The process we attached to is left running.
    assert!(alive(p.pid));

    // Another Node process holds the port: never attach to the wrong one.
    let other = start_node(&node, &[fixture("holder.js").to_str().unwrap(), "120"], "holder ready");
    match inspector::attach_pid_with(other.pid, port, Duration::from_secs(5)).await {
        Err(e @ Error::WrongProcess { .. }) => {
            assert!(e.to_string().contains(&format!("belongs to process {}, not {}", p.pid, other.pid)), "{e}")
        }
        r => panic!("expected WrongProcess, got {r:?}"),
    }
}

#[tokio::test]
async fn attach_refuses_dead_and_non_node_processes() {
    // A dead pid: a child we reaped.
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let dead = c.id();
    c.wait().unwrap();
    let e = inspector::attach_pid(dead, free_port()).await.unwrap_err();
    assert_eq!(e.to_string(), format!("process {dead} does not exist"));

    // Not Node: SIGUSR1 would kill it, so it is not sent.
    let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let e = inspector::attach_pid(sleeper.id(), free_port()).await.unwrap_err();
    assert!(matches!(e, Error::NoSigusr1Handler { .. }), "{e}");
    assert!(e.to_string().contains("(sleep) does not handle SIGUSR1"), "{e}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(alive(sleeper.id()), "the non-Node process must not be signalled");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[tokio::test]
async fn discovery_names_what_is_on_the_port() {
    let t = Duration::from_secs(2);
    let port = free_port();
    let e = inspector::discover(&format!("127.0.0.1:{port}"), t).await.unwrap_err();
    assert_eq!(e.to_string(), format!("no inspector on 127.0.0.1:{port}; connection refused"));

    let http = fake_server(Some("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot here\n"));
    let e = inspector::discover(&format!("localhost:{http}"), t).await.unwrap_err();
    assert_eq!(e.to_string(), format!("127.0.0.1:{http} is not a Node inspector (GET /json/list returned HTTP 404 \"not here\")"));

    let json = fake_server(Some("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"a\": true}"));
    let e = inspector::discover(&json.to_string(), t).await.unwrap_err();
    assert!(
        e.to_string().contains("is not a Node inspector (GET /json/list returned HTTP 200 with a body that is not a target list"),
        "{e}"
    );

    let garbage = fake_server(Some("SSH-2.0-OpenSSH_9.2\r\n"));
    let e = inspector::discover(&garbage.to_string(), t).await.unwrap_err();
    assert!(e.to_string().contains("is not a Node inspector (GET /json/list returned no HTTP response"), "{e}");

    let silent = fake_server(None);
    let e = inspector::discover(&format!("127.0.0.1:{silent}"), Duration::from_millis(500)).await.unwrap_err();
    assert_eq!(e.to_string(), format!("127.0.0.1:{silent} did not answer GET /json/list within 0.5 s"));

    let e = inspector::discover("192.168.1.1:9229", t).await.unwrap_err();
    assert!(matches!(e, Error::NotLoopback { .. }), "{e}");

    // A real inspector lists its target; a stale id fails the handshake.
    let node = node(24);
    let p = start_node(&node, &["--inspect=127.0.0.1:0", fixture("holder.js").to_str().unwrap(), "120"], "holder ready");
    let url = p.ws_url.clone().unwrap();
    let targets = inspector::discover(&url_host_port(&url), t).await.unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].kind, "node");
    assert_eq!(targets[0].web_socket_debugger_url.as_deref(), Some(url.as_str()));
    let stale = format!("ws://{}/00000000-0000-0000-0000-000000000000", url_host_port(&url));
    let e = Session::connect(&stale).await.err().unwrap();
    assert!(matches!(e, Error::Handshake { .. }), "{e}");
    let e = Session::connect_to(&format!("ws://127.0.0.1:{port}/x")).await.err().unwrap();
    assert_eq!(e.to_string(), format!("no inspector on 127.0.0.1:{port}; connection refused"));
}

#[tokio::test]
async fn a_target_dying_mid_snapshot_leaves_no_file() {
    let node = node(20);
    let dir = tempfile::tempdir().unwrap();
    // ~60 MB of small objects: a snapshot of many chunks.
    let launched = inspector::launch(&cmd(&node, &[fixture("holder.js").to_str().unwrap(), "120", "60"]), &[]).await.unwrap();
    let session = Session::connect(&launched.ws_url).await.unwrap();
    for _ in 0..1000 {
        if session.evaluate::<Option<usize>>("globalThis.ballast && globalThis.ballast.length").await.unwrap() == Some(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = dir.path().join("cut.heapsnapshot");
    let pid = launched.pid;
    let mut killed = false;
    let r = session
        .take_heap_snapshot(&out, |bytes| {
            if !killed && bytes > 1_000_000 {
                // SAFETY: our own child.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                killed = true;
            }
        })
        .await;
    assert!(killed, "the snapshot ended before 1 MB");
    let e = r.unwrap_err();
    assert!(e.to_string().starts_with("the target closed the connection while taking the heap snapshot"), "{e}");
    assert!(!out.exists() && !inspector::part_path(&out).exists(), "a partial file was left");
    assert!(gone_within(pid, Duration::from_secs(5)));
    // Later calls fail at once with the same kind of error.
    let e = session.memory().await.unwrap_err();
    assert!(e.is_closed(), "{e}");
}

#[tokio::test]
async fn launch_failures_and_cleanup() {
    let e = inspector::launch(&[OsString::from("/nonexistent/node")], &[]).await.err().unwrap();
    assert!(e.to_string().starts_with("cannot start `/nonexistent/node`"), "{e}");

    let node = node(18);
    let e = inspector::launch(&cmd(&node, &["--no-such-flag", "app.js"]), &[]).await.err().unwrap();
    assert!(e.to_string().contains("exited (status 9) before its inspector was listening"), "{e}");

    // Dropping a Launched kills it.
    let m = marker("drop");
    let l = inspector::launch(&cmd(&node, &["-e", "setInterval(() => {}, 1000)", &m]), &[]).await.unwrap();
    let pid = l.pid;
    assert!(alive(pid));
    drop(l);
    assert!(gone_within(pid, Duration::from_secs(5)), "dropped child {pid} still alive");

    // Not node itself: --inspect goes through NODE_OPTIONS, and stopping
    // takes down the whole group (the shell and its node).
    let m = marker("group");
    let script = format!("{} -e 'setInterval(() => {{}}, 1000)' {m}; echo unreachable", node.display());
    let mut l = inspector::launch(&[OsString::from("sh"), OsString::from("-c"), OsString::from(script)], &[]).await.unwrap();
    assert!(l.via_node_options);
    let session = Session::connect(&l.ws_url).await.unwrap();
    let node_pid = session.process_info().await.unwrap().pid;
    assert_ne!(node_pid, l.pid, "the shell is the direct child");
    drop(session);
    l.stop(Duration::from_secs(5)).await;
    assert!(gone_within(node_pid, Duration::from_secs(5)), "grandchild {node_pid} survived");
    assert!(pids_with(&m).is_empty());
}
