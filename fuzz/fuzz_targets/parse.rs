//! Arbitrary bytes into the snapshot parser; whatever parses is analyzed
//! the way `leakhound summary` does it. Any panic is a bug: bad input must
//! come back as a `SnapshotError`.
#![no_main]

use heapsnap::{analyze, classes, AnalysisOptions, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = Box::new(std::io::Cursor::new(data.to_vec()));
    if let Ok(mut snap) = heapsnap::parse_snapshot(input, ParseOptions { threads: 1, progress: None }) {
        let total = snap.total_size();
        let a = analyze(&mut snap, AnalysisOptions { fold_shallow_sizes: true, dominator_tree: true, ..Default::default() });
        assert_eq!(a.retained[snap.root() as usize], total, "root retained size != total size");
        let c = classes::compute(&snap);
        let tree = heapsnap::summary::DominatorTree::from_idom(&a.idom, snap.root());
        let _ = heapsnap::summary::class_summaries(&snap, &c, &tree, &a.retained);
        let _ = heapsnap::distances::compute(&snap);
    }
});
