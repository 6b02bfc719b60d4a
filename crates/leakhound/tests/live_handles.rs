//! `leakhound handles` against a real process holding one of each kind of
//! handle (fixtures/live/handles.js): timers with their delays and the
//! file:line of their callbacks, the server, both ends of a TCP connection,
//! the file watcher, the child process. Node 18 and 24 through `-- CMD`,
//! Node 26 through --pid (left running).

#[path = "support/bin.rs"]
mod bin;
#[path = "support/schema.rs"]
mod schema;
#[path = "../../inspector/tests/support/mod.rs"]
mod support;

use serde_json::Value;
use std::process::Output;
use std::time::Duration;
use support::*;

fn leakhound(args: &[String]) -> Output {
    bin::leakhound(args, Duration::from_secs(120))
}

/// `file:line:` of the first line of the fixture containing `needle`.
fn fixture_line(needle: &str) -> String {
    let path = fixture("handles.js");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle:?} not in the fixture")) + 1;
    format!("{}:{line}:", path.display())
}

fn check(v: &Value, major: u32) {
    // Every field docs/json.md calls required is there.
    schema::check_schema("handles", v);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["command"], "handles");
    assert!(v["node_version"].as_str().unwrap().starts_with(&format!("v{major}.")));
    let timers = v["timers"].as_array().unwrap();
    let timer = |name: &str| -> Vec<&Value> { timers.iter().filter(|t| t["callback"]["name"] == name).collect() };
    let tick = timer("tick");
    assert_eq!(tick.len(), 1, "{timers:?}");
    assert_eq!(
        (tick[0]["type"].as_str(), tick[0]["ms"].as_f64(), tick[0]["ref"].as_bool()),
        (Some("setInterval"), Some(1000.0), Some(true))
    );
    assert!(tick[0]["callback"]["location"].as_str().unwrap().starts_with(&fixture_line("function tick")), "{}", tick[0]);
    let expire = timer("expire");
    assert_eq!((expire.len(), expire[0]["type"].as_str(), expire[0]["ref"].as_bool()), (1, Some("setTimeout"), Some(false)));
    assert_eq!(expire[0]["ms"].as_f64(), Some(30000.0));
    let later = timer("later");
    assert_eq!(later.len(), 3);
    assert!(later.iter().all(|t| t["callback"]["location"].as_str().unwrap().starts_with(&fixture_line("function later"))));

    let handles = v["handles"].as_array().unwrap();
    let of = |kind: &str| -> Vec<&Value> { handles.iter().filter(|h| h["kind"] == kind).collect() };
    let servers = of("server");
    assert_eq!(servers.len(), 1, "{handles:?}");
    let addr = servers[0]["address"].as_str().unwrap();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert_eq!(servers[0]["listener"]["name"], "onRequest");
    assert!(servers[0]["listener"]["location"].as_str().unwrap().starts_with(&fixture_line("function onRequest")));
    let sockets = of("socket");
    assert_eq!(sockets.len(), 2, "{handles:?}");
    // The two ends of one connection.
    let client = sockets.iter().find(|s| s["remote"] == addr).expect("the client end");
    let server_end = sockets.iter().find(|s| s["local"] == addr).expect("the server end");
    assert_eq!(client["local"], server_end["remote"]);
    assert_eq!(client["listener"]["name"], "onData");
    let children = of("child-process");
    assert_eq!(children.len(), 1);
    assert_eq!(children[0]["command"], "sleep 60");
    assert_eq!(children[0]["listener"]["name"], "onChildExit");
    let watchers = of("watcher");
    assert_eq!((watchers.len(), watchers[0]["class"].as_str()), (1, Some("FSWatcher")));
    assert!(watchers[0]["listener"]["location"].as_str().unwrap().starts_with(&fixture_line("function onChange")));

    let resources = &v["resources"];
    for (kind, n) in [("TCPServerWrap", 1), ("TCPSocketWrap", 2), ("FSEventWrap", 1), ("ProcessWrap", 1)] {
        assert_eq!(resources[kind].as_u64(), Some(n), "{kind} in {resources}");
    }
    // The ref'd timers: tick, 3 x later, the fixture's exit timer.
    assert!(resources["Timeout"].as_u64().unwrap() >= 5, "{resources}");
    assert!(v["keeping_alive"].as_u64().unwrap() >= 12, "{}", v["keeping_alive"]);
}

#[test]
fn handles_of_a_program_it_starts() {
    for major in [18, 24] {
        let node = node(major);
        let m = marker("handles");
        let args: Vec<String> = vec![
            "handles".into(),
            "--json".into(),
            "--delay".into(),
            "1500ms".into(),
            "--".into(),
            node.display().to_string(),
            fixture("handles.js").display().to_string(),
            "60".into(),
            m.clone(),
        ];
        let o = leakhound(&args);
        assert!(o.status.success(), "Node {major}: {}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        check(&v, major);
        let sleep_pid =
            v["handles"].as_array().unwrap().iter().find(|h| h["kind"] == "child-process").unwrap()["pid"].as_u64().unwrap() as u32;
        assert!(gone_within(v["pid"].as_u64().unwrap() as u32, Duration::from_secs(5)));
        assert!(gone_within(sleep_pid, Duration::from_secs(5)), "the program's own child outlived it");
        assert!(pids_with(&m).is_empty());
    }
}

#[test]
fn handles_by_pid_with_human_output() {
    let node = node(26);
    let port = free_port();
    let p = start_node(&node, &[&format!("--inspect-port={port}"), fixture("handles.js").to_str().unwrap(), "60"], "handles ready");
    let args: Vec<String> = vec!["handles".into(), "--pid".into(), p.pid.to_string(), "--port".into(), port.to_string()];
    let o = leakhound(&args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.starts_with(&format!("process {} (node handles.js 60, Node v26.", p.pid)), "{out}");
    assert!(out.contains(&format!("setInterval every   1000 ms  tick {}", fixture_line("function tick"))), "{out}");
    assert!(out.contains("3 x setTimeout  after  60000 ms  later "), "{out}");
    assert!(out.contains("(unref'd)"), "{out}");
    assert!(out.contains("\nservers (1):\n  TCP 127.0.0.1:"), "{out}");
    assert!(out.contains("\nchild processes (1):\n  pid "), "{out}");
    assert!(out.contains("sleep 60  exit listener onChildExit"), "{out}");
    assert!(out.contains("\nfile watchers (1):\n  FSWatcher (fs.watch)  change listener onChange"), "{out}");
    assert!(alive(p.pid), "leakhound must leave the process running");
}
