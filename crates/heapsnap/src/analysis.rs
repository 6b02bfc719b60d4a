//! The analyses most commands need, in the order that keeps peak memory
//! low: fold shallow sizes, essential edges, dominators, retained sizes.

use crate::bits::BitSet;
use crate::snapshot::{HeapSnapshot, NodeIndex};
use crate::{dominators, flags, shallow};

/// Which semantics to follow.
#[derive(Clone, Copy, Debug)]
pub struct AnalysisOptions {
    /// Fold single-owner internal nodes into their owner (DevTools' shallow
    /// sizes). Off gives raw V8 `self_size`s, as v8-heap-parser and memlab report.
    pub fold_shallow_sizes: bool,
    /// Also build the dominator tree's child lists (for class aggregates),
    /// on the second core while retained sizes are summed.
    pub dominator_tree: bool,
    /// Let the side work run on through the dominator pass's memory peak
    /// (joined after Semi-NCA rather than before its arrays), for side work
    /// that needs little memory: the core is otherwise idle then.
    pub side_through_peak: bool,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions { fold_shallow_sizes: true, dominator_tree: false, side_through_peak: false }
    }
}

/// Dominators and retained sizes of a snapshot.
pub struct Analysis {
    /// Node -> immediate dominator (the root is its own).
    pub idom: Vec<NodeIndex>,
    /// Node -> self size plus everything it dominates.
    pub retained: Vec<u64>,
    /// How many nodes had their size folded into an owner.
    pub folded: usize,
    /// The dominator tree's child lists, when asked for.
    pub tree: Option<crate::summary::DominatorTree>,
}

/// Run the core analyses. Folding changes the snapshot's self sizes in place
/// (only when the snapshot has user roots, as DevTools does).
pub fn analyze(s: &mut HeapSnapshot, opts: AnalysisOptions) -> Analysis {
    analyze_with(s, opts, |_| ()).0
}

/// `analyze`, running `side` on a second thread meanwhile (after the sizes
/// are folded, so it sees the final sizes). The dominator pass is serial;
/// this is how a command keeps the other core busy.
pub fn analyze_with<T: Send>(s: &mut HeapSnapshot, opts: AnalysisOptions, side: impl FnOnce(&HeapSnapshot) -> T + Send) -> (Analysis, T) {
    analyze_with_early(s, opts, |_| (), |s, ()| side(s))
}

/// `analyze_with`, also running `early` from the start, beside the first
/// read-only passes, for work that does not read self sizes (they are not
/// folded yet): class keys, say. Its result goes to `side`. The first
/// passes leave a core idle now and then, and the dominator pass waits for
/// `side` before its memory peak (or after it, with `side_through_peak`):
/// the earlier the side work starts, the less it waits.
pub fn analyze_with_early<E: Send, T: Send>(
    s: &mut HeapSnapshot,
    opts: AnalysisOptions,
    early: impl FnOnce(&HeapSnapshot) -> E + Send,
    side: impl FnOnce(&HeapSnapshot, E) -> T + Send,
) -> (Analysis, T) {
    let timing = std::env::var_os("HEAPSNAP_DEBUG").is_some();
    let t0 = std::time::Instant::now();
    let lap = |what: &str| {
        if timing {
            eprintln!("  analyze: {what} at {:.2?} ({})", t0.elapsed(), crate::mem::usage());
        }
    };
    let has_user_roots = !flags::user_roots(s).is_empty();
    let fold = opts.fold_shallow_sizes && has_user_roots;
    // Read-only passes first, two at a time: who owns what (for folding)
    // beside the page-owned set and the essential edges.
    let (owners, essential, early) = {
        let s: &HeapSnapshot = s;
        std::thread::scope(|scope| {
            let owners = scope.spawn(move || fold.then(|| shallow::owners(s)));
            let early = scope.spawn(move || early(s));
            let page: Option<BitSet> = if has_user_roots { Some(flags::page_owned(s)) } else { None };
            let essential = flags::essential_edges_counted(s, page.as_ref());
            // Joined here: folding below needs the snapshot to itself.
            (owners.join().expect("fold thread panicked"), essential, early.join().expect("early analysis thread panicked"))
        })
    };
    let folded = owners.map(|o| shallow::apply(s, &o)).unwrap_or(0);
    lap("fold, page-owned, essential edges");
    let s: &HeapSnapshot = s;
    std::thread::scope(|scope| {
        let side = scope.spawn(move || side(s, early));
        let mut side_result = None;
        let (essential, counts) = essential;
        let join = if opts.side_through_peak { dominators::Join::AfterSemiNca } else { dominators::Join::BeforePeak };
        let dom = dominators::compute_counted(s, &essential, counts, join, || {
            side_result = Some(side.join().expect("analysis side thread panicked"));
        });
        drop(essential);
        lap("dominators");
        let (retained, tree) = std::thread::scope(|inner| {
            let tree = opts.dominator_tree.then(|| inner.spawn(|| crate::summary::DominatorTree::from_idom(&dom.idom, s.root())));
            let retained = dom.retained_sizes(|n| s.self_size(n));
            (retained, tree.map(|t| t.join().expect("dominator tree thread panicked")))
        });
        let dominators::Dominators { idom, .. } = dom;
        lap("retained sizes");
        let side = side_result.expect("the dominator pass calls its hook");
        (Analysis { idom, retained, folded, tree }, side)
    })
}
