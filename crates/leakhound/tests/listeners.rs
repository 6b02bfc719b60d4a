//! `leakhound listeners` from a snapshot and from a live process: listener
//! counts per emitter and event, the threshold flag, and where the listener
//! functions are defined; bad targets fail in one line.

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;
#[path = "support/schema.rs"]
mod schema;

use common::*;
use serde_json::Value;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).stdin(Stdio::null()).output().expect("cannot run leakhound")
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("bad JSON");
    // Every field docs/json.md calls required is there.
    schema::check_schema("listeners", &v);
    v
}

/// The emitter holding `event`, and that event's entry.
fn find<'a>(v: &'a Value, event: &str) -> (&'a Value, &'a Value) {
    for e in v["emitters"].as_array().unwrap() {
        for ev in e["events"].as_array().unwrap() {
            if ev["event"] == event {
                return (e, ev);
            }
        }
    }
    panic!("no emitter with a {event:?} listener: {v}");
}

#[test]
fn counts_listeners_in_a_snapshot_of_the_listener_leak() {
    let node = find_node(20).unwrap_or_else(|_| any_node());
    let tmp = temp_dir();
    let fixtures = repo_root().join("fixtures");
    let st = Command::new(&node)
        .arg(fixtures.join("harness.js"))
        .arg(fixtures.join("leaks/listeners.js"))
        .arg(tmp.path())
        .args(["--snapshots", "1", "--warmup", "120"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let snap = tmp.path().join("s1.heapsnapshot");
    let v = json(&run(&["listeners", "--json", snap.to_str().unwrap()]));
    assert_eq!(v["schema_version"], 1);
    let (emitter, tick) = find(&v, "tick");
    // 120 requests, one listener each.
    assert_eq!(tick["count"], 120, "{tick}");
    assert_eq!(tick["flagged"], true);
    assert_eq!(emitter["class"], "EventEmitter");
    let site = &tick["sites"][0];
    assert_eq!(site["function"], "onTick");
    assert_eq!(site["count"], 120);
    assert_eq!(site["location"]["line"], 13, "{site}");
    assert!(site["location"]["file"].as_str().unwrap().ends_with("leaks/listeners.js"));
    // The biggest first, and it is the only flagged one.
    assert_eq!(v["emitters"][0]["id"], emitter["id"]);
    assert_eq!(v["flagged"], 1);
    // The table shows it with its flag.
    let text = String::from_utf8_lossy(&run(&["listeners", snap.to_str().unwrap(), "--threshold", "200"]).stdout).to_string();
    assert!(text.contains("tick 120") && !text.contains("(> max)"), "{text}");
}

#[test]
fn counts_listeners_of_a_live_process() {
    let tmp = temp_dir();
    let app = tmp.path().join("app.js");
    std::fs::write(
        &app,
        "const EventEmitter = require('events');\n\
         const bus = new EventEmitter(); bus.setMaxListeners(50);\n\
         for (let i = 0; i < 15; i++) bus.on('job', function onJob() { return i; });\n\
         bus.once('done', function onDone() {});\n\
         globalThis.bus = bus; setInterval(() => {}, 1000);\n",
    )
    .unwrap();
    for major in [18, 20, 24] {
        let node = require_node(major);
        let out = run(&["listeners", "--json", "--delay", "200ms", "--", node.to_str().unwrap(), app.to_str().unwrap()]);
        let v = json(&out);
        let (emitter, job) = find(&v, "job");
        assert_eq!(job["count"], 15, "Node {major}: {job}");
        assert_eq!(job["flagged"], true);
        assert_eq!(job["sites"][0]["location"]["line"], 3, "Node {major}");
        // A `once` listener is counted through its wrapper.
        let done = emitter["events"].as_array().unwrap().iter().find(|e| e["event"] == "done").expect("no done event");
        assert_eq!(done["count"], 1, "Node {major}");
        assert_eq!(done["sites"][0]["function"], "onDone");
    }
}

#[test]
fn bad_targets_fail_in_one_line() {
    let tmp = temp_dir();
    let foreign = tmp.path().join("x.heapsnapshot");
    std::fs::write(&foreign, "hello").unwrap();
    for args in [
        vec!["listeners".to_string(), foreign.to_str().unwrap().to_string()],
        vec!["listeners".into(), "--pid".into(), "999999999".into()],
        vec!["listeners".into(), "--inspect".into(), "127.0.0.1:9".into()],
        vec!["listeners".into()],
    ] {
        let out = Command::new(BIN).args(&args).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("leakhound: error: "), "{args:?}: {err}");
    }
}
