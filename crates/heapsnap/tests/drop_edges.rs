//! `drop_edges`: a caller done with the graph frees the edges once the
//! dominators are known, and gets the same retained sizes, tree and class
//! table as one that keeps them; the snapshot is left consistent (no node
//! has an edge).

use heapsnap::summary::class_summaries;
use heapsnap::{analyze, read_snapshot, AnalysisOptions, ParseOptions};
use std::path::Path;

#[test]
fn dropping_the_edges_changes_no_result() {
    // A real Node 18 heap (fixtures/leaks/listeners.js), checked in gzipped.
    let gz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../diagnose/tests/data/listeners-s3.heapsnapshot.gz");
    let opts = AnalysisOptions { dominator_tree: true, class_distances: true, ..Default::default() };
    let run = |drop_edges: bool| {
        let mut s = read_snapshot(&gz, ParseOptions::default()).expect("parses");
        let edges = s.edge_count();
        let a = analyze(&mut s, AnalysisOptions { drop_edges, ..opts });
        let rows: Vec<_> = class_summaries(&s, a.classes.as_ref().unwrap(), a.tree.as_ref().unwrap(), &a.retained)
            .into_iter()
            .map(|r| (r.key.name, r.count, r.shallow_size, r.retained_size))
            .collect();
        (s, edges, a.retained, a.idom, rows)
    };
    let (kept, edges, retained, idom, rows) = run(false);
    let (dropped, edges_before, retained_d, idom_d, rows_d) = run(true);
    assert!(edges > 100_000 && edges == edges_before && kept.edge_count() == edges);
    assert_eq!(dropped.edge_count(), 0);
    assert!(dropped.nodes().all(|n| dropped.edges(n).is_empty()), "a node kept an edge");
    assert_eq!(retained, retained_d);
    assert_eq!(idom, idom_d);
    assert!(rows.len() > 100);
    assert_eq!(rows, rows_d);
}
