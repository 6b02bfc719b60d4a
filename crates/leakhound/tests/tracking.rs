//! `leakhound run --mode tracking`: object tracking gives an id boundary
//! per round and one full snapshot at the end, with the same diagnosis as
//! one snapshot per round; `--track-allocations` adds each suspect's
//! allocation stacks and the user's own frame. Real Node processes (Node
//! 24: its heap statistics timer backs off on big heaps), real snapshots.

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn run(app: &str, extra: &[&str]) -> (Value, String) {
    let node = find_node(24).unwrap_or_else(|_| any_node());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = Command::new(BIN)
        .args(["run", "--load", &format!("http://127.0.0.1:{port}/item?id=1")])
        .args(extra)
        .arg("--")
        .arg(node)
        .arg(repo_root().join("fixtures").join(app))
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("cannot run leakhound");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{app} {extra:?}: {}", String::from_utf8_lossy(&out.stderr));
    let v = if extra.contains(&"--json") { serde_json::from_str(&stdout).unwrap() } else { Value::Null };
    (v, stdout)
}

#[test]
fn tracking_finds_the_leak_with_its_allocation_stack_and_passes_a_control() {
    let (v, _) = run("leaks/global-array.js", &["--json", "--mode", "tracking", "--track-allocations"]);
    assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
    let s = &v["suspects"][0];
    assert_eq!(s["pattern"], "global-collection");
    assert_eq!(s["accumulator"]["name"], "requestLogs");
    // 2,000 requests a round, one LogEntry each, alive at the end.
    assert_eq!(s["objects_per_step"], serde_json::json!([2000, 2000, 2000]), "{}", s);
    // One snapshot, a boundary after the warm-up and after each round.
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 1);
    let b = v["tracking"]["boundaries"].as_array().unwrap();
    assert_eq!(b.len(), 4);
    assert_eq!(v["tracking"]["track_allocations"], true);
    for (j, x) in b.iter().enumerate() {
        let by_phase: Vec<u64> = x["live_bytes_by_phase"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
        assert_eq!(by_phase.len(), j + 1);
        assert!(by_phase.iter().sum::<u64>() <= x["live_bytes"].as_u64().unwrap());
        // Every round keeps its 2,000 entries of 400+ characters.
        assert!(by_phase.iter().skip(1).all(|&r| r > 800_000), "{by_phase:?}");
    }
    let ids: Vec<u64> = b.iter().map(|x| x["last_seen_object_id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // The allocation stacks: the top one made by the app's LogEntry, called from its handler.
    assert_eq!(v["diagnosis"]["has_allocation_stacks"], true);
    let stacks = s["allocation_stacks"].as_array().unwrap();
    assert!(!stacks.is_empty() && stacks.len() <= 3);
    let by = &s["allocated_by"];
    assert!(by["file"].as_str().unwrap().ends_with("fixtures/leaks/global-array.js"), "{by}");
    assert!(by["line"].as_u64().unwrap() > 0);
    let top = &stacks[0];
    let user = top["user_frame"].as_u64().unwrap() as usize;
    assert_eq!(top["frames"][user]["code"], "user");
    assert!(top["frames"].as_array().unwrap().iter().any(|f| f["code"] == "node"), "node's own frames are marked: {top}");
    assert!(stacks.iter().map(|x| x["objects"].as_u64().unwrap()).sum::<u64>() >= 6000);

    // A control: a bounded cache comes out no leak under tracking too.
    let (v, _) = run("controls/lru-cache.js", &["--json", "--mode", "tracking"]);
    assert_eq!(v["verdict"], "no-leak", "{}", v["reason"]);
    assert_eq!(v["tracking"]["track_allocations"], false);

    // The text: the timeline, the user's line and the stack; the HTML card too.
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let (_, text) = run("leaks/global-array.js", &["--mode", "tracking", "--track-allocations", "--html", html.to_str().unwrap()]);
    for want in ["Object tracking with allocation stacks", "Live heap at each boundary", "allocated by your code at", "stack:"] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    for want in ["Allocation stacks", r#"class="allocated-by""#, r#"class="user-frame""#, "global-array.js"] {
        assert!(page.contains(want), "{want:?} in the HTML card");
    }
}

#[test]
fn snapshots_without_traces_say_how_to_get_them() {
    let (_, text) = run("leaks/global-array.js", &["--mode", "snapshots"]);
    assert!(text.contains("allocation stacks: not recorded in this snapshot") && text.contains("--track-allocations"), "{text}");
}

/// `diagnose S1 S2 S3` on snapshots taken while allocations were tracked
/// (as DevTools' "Allocation instrumentation on timeline" or a script
/// with `inspector.Session` would): the stacks are read from the last one.
#[test]
fn diagnose_reads_the_stacks_of_snapshots_taken_with_tracking() {
    let node = find_node(24).unwrap_or_else(|_| any_node());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("traced.js");
    std::fs::write(
        &script,
        r#"const inspector = require('inspector');
const fs = require('fs');
const s = new inspector.Session();
s.connect();
const post = (m, p) => new Promise((ok, no) => s.post(m, p || {}, (e, r) => (e ? no(e) : ok(r))));
class Order { constructor(i) { this.i = i; this.note = 'order ' + i + ' '.repeat(200); } }
const orders = [];
function place(i) { orders.push(new Order(i)); }
async function snap(file) {
  const chunks = [];
  const on = (m) => chunks.push(m.params.chunk);
  s.on('HeapProfiler.addHeapSnapshotChunk', on);
  await post('HeapProfiler.collectGarbage');
  await post('HeapProfiler.takeHeapSnapshot');
  s.removeListener('HeapProfiler.addHeapSnapshotChunk', on);
  fs.writeFileSync(file, chunks.join(''));
}
(async () => {
  await post('HeapProfiler.enable');
  await post('HeapProfiler.startTrackingHeapObjects', { trackAllocations: true });
  for (let k = 1; k <= 3; k++) {
    for (let i = 0; i < 2000; i++) place(i);
    await snap(process.argv[2] + '/s' + k + '.heapsnapshot');
  }
  process.exit(0);
})();
"#,
    )
    .unwrap();
    let st = Command::new(&node).arg(&script).arg(dir.path()).status().unwrap();
    assert!(st.success());
    let files: Vec<_> = (1..=3).map(|k| dir.path().join(format!("s{k}.heapsnapshot"))).collect();
    let out = Command::new(BIN).args(["diagnose", "--json"]).args(&files).stdin(Stdio::null()).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["verdict"], "leak");
    assert_eq!(v["has_allocation_stacks"], true);
    let s = &v["suspects"][0];
    assert_eq!(s["accumulator"]["name"], "orders");
    let by = &s["allocated_by"];
    assert!(by["file"].as_str().unwrap().ends_with("traced.js"), "{by}");
    let top = &s["allocation_stacks"][0];
    let names: Vec<&str> = top["frames"].as_array().unwrap().iter().filter_map(|f| f["function"].as_str()).collect();
    assert!(names.contains(&"place") || names.contains(&"Order"), "{names:?}");
}
