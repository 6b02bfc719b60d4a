//! `threads: 1` means one thread in every phase: parsing (a gzip stream and
//! a mapped file, full and nodes-only) and every analysis start no thread,
//! even with the split thresholds lowered so that each two-thread path
//! would be taken on this small heap. Counted by heapsnap's own counter
//! (every thread it starts goes through it) and by /proc/self/task.
//!
//! One test in this file, so no other test's threads are counted.

use heapsnap::summary::class_summaries;
use heapsnap::{analyze, parse_nodes_only, read_snapshot, AnalysisOptions, Limits, ParseOptions};
use std::path::{Path, PathBuf};

/// A real Node 18 heap (fixtures/leaks/listeners.js), checked in gzipped.
fn gz() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../diagnose/tests/data/listeners-s3.heapsnapshot.gz")
}

fn tasks() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// Every class row: name, count, shallow and retained size.
type Rows = Vec<(String, u64, u64, u64)>;

/// Everything a command does, on the gzip stream and on a plain file;
/// returns what it found, to compare across thread counts.
fn everything(plain: &Path) -> Vec<(usize, u64, Rows, usize, u32)> {
    let mut out = Vec::new();
    for path in [gz(), plain.to_path_buf()] {
        let mut s = read_snapshot(&path, ParseOptions::default()).expect("parses");
        let a = analyze(
            &mut s,
            AnalysisOptions { dominator_tree: true, class_distances: true, script_names: true, path_tree: true, ..Default::default() },
        );
        let classes = a.classes.as_ref().expect("classes");
        let rows = class_summaries(&s, classes, a.tree.as_ref().expect("tree"), &a.retained);
        let reached = a.path_tree.as_ref().expect("path tree").order.len();
        let nearest = a.class_distances.as_ref().expect("distances").iter().copied().min().unwrap_or(u32::MAX);
        let mut rows: Rows = rows.into_iter().map(|r| (r.key.name, r.count, r.shallow_size, r.retained_size)).collect();
        rows.sort();
        out.push((s.node_count(), a.retained[s.root() as usize], rows, reached, nearest));
        let (input, _) = heapsnap::open_input(&path).expect("opens");
        let ids = parse_nodes_only(input, ParseOptions::default()).expect("node table parses");
        assert_eq!(ids.node_count(), s.node_count());
    }
    out
}

#[test]
fn one_thread_starts_no_thread_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("s3.heapsnapshot");
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(std::fs::File::open(gz()).unwrap()), &mut text).unwrap();
    std::fs::write(&plain, &text).unwrap();
    // Every two-thread path taken from two items on; parse pieces need 1 MB each.
    let limits = |threads| Limits { threads, parallel_min: Some(2), bfs_list_max: Some(4) };

    let tasks_before = tasks();
    let before = heapsnap::limits::threads_started();
    let one = heapsnap::with_limits(limits(1), || everything(&plain));
    assert_eq!(heapsnap::limits::threads_started() - before, 0, "threads started with threads = 1");
    assert_eq!(tasks(), tasks_before);

    let before = heapsnap::limits::threads_started();
    let two = heapsnap::with_limits(limits(2), || everything(&plain));
    let started = heapsnap::limits::threads_started() - before;
    // Read-ahead, graph and locations jobs, parse pieces, fold, early and
    // side work, retainer counts, predecessors, idom halves, tree, class counts.
    assert!(started >= 10, "with two threads the split paths start threads ({started})");
    assert_eq!(one, two, "the same results on one thread and on two");
    let (nodes, total, ref rows, reached, nearest) = one[0];
    let classes = rows.len();
    assert!(
        nodes > 50_000 && total > 0 && classes > 100 && reached > nodes / 2 && nearest == 1,
        "{nodes} {total} {classes} {reached} {nearest}"
    );
}
