//! A real Chromium heap snapshot (taken over the DevTools protocol from
//! headless Chromium, as DevTools itself does) parses and analyses like a
//! Node one: layout from `meta`, DOM wrappers as native nodes, the page's
//! constructor classes counted exactly.
//!
//! Chromium comes from Debian's `chromium` package (scripts/test.sh installs
//! it); the test fails when it is missing, unless the machine has no
//! Chromium (or no Node) at all: then it skips, saying so (see `common`).

mod common;

use heapsnap::{analyze, classes, summary, AnalysisOptions};
use std::path::PathBuf;
use std::process::Command;

const CHROMIUMS: [&str; 3] = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

fn chromium_installed() -> bool {
    CHROMIUMS.iter().any(|c| std::path::Path::new(c).is_file())
}

fn chromium() -> PathBuf {
    for c in CHROMIUMS {
        if std::path::Path::new(c).is_file() {
            return PathBuf::from(c);
        }
    }
    panic!("Chromium is not installed: run scripts/test.sh (it installs Debian's chromium) or apt-get install chromium");
}

#[test]
fn chromium_page_snapshot_parses_and_counts_its_classes() {
    if common::skip_without_node("chromium_page_snapshot_parses_and_counts_its_classes")
        || common::skip_unless(chromium_installed(), "chromium_page_snapshot_parses_and_counts_its_classes", "Chromium")
    {
        return;
    }
    let node = common::require_node(22); // a global WebSocket
    let dir = common::temp_dir();
    let out = dir.path().join("page.heapsnapshot");
    let script = common::repo_root().join("crates/heapsnap/tests/support/chrome-snapshot.js");
    let status = Command::new(&node).arg(&script).arg(chromium()).arg(&out).status().expect("run node");
    assert!(status.success(), "taking a Chromium snapshot failed");

    let mut snap = common::read(&out);
    assert!(snap.node_count() > 10_000, "a page heap has many nodes, got {}", snap.node_count());
    let total: u64 = snap.nodes().map(|n| snap.self_size(n)).sum();
    let analysis = analyze(&mut snap, AnalysisOptions::default());
    assert_eq!(analysis.retained[snap.root() as usize], total, "the root retains everything");
    let classes = classes::compute(&snap);
    let tree = summary::DominatorTree::from_idom(&analysis.idom, snap.root());
    let rows = summary::class_summaries(&snap, &classes, &tree, &analysis.retained);
    let leaky = rows.iter().find(|r| r.key.name == "Leaky").expect("a Leaky class row");
    assert_eq!(leaky.count, 1000, "the page made 1000 Leaky objects");
    assert!(leaky.retained_size >= leaky.shallow_size);
    // The DOM elements the objects hold are embedder (native) nodes, named
    // like `<div>` in the Summary as DevTools shows them.
    let divs = rows.iter().find(|r| r.key.name == "<div>").expect("a <div> class row");
    assert!(divs.count >= 1000, "expected 1000+ <div> elements, found {}", divs.count);
    let native_divs = snap.nodes().filter(|&n| snap.kind(n) == heapsnap::NodeKind::Native && snap.name(n).starts_with("<div")).count();
    assert!(native_divs >= 1000, "the <div> elements are native nodes, found {native_divs}");
}
