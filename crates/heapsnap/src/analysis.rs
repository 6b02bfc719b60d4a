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
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions { fold_shallow_sizes: true }
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
}

/// Run the core analyses. Folding changes the snapshot's self sizes in place
/// (only when the snapshot has user roots, as DevTools does).
pub fn analyze(s: &mut HeapSnapshot, opts: AnalysisOptions) -> Analysis {
    let has_user_roots = !flags::user_roots(s).is_empty();
    let folded = if opts.fold_shallow_sizes && has_user_roots { shallow::fold_shallow_sizes(s) } else { 0 };
    let page: Option<BitSet> = if has_user_roots { Some(flags::page_owned(s)) } else { None };
    let essential = flags::essential_edges(s, page.as_ref());
    drop(page);
    let dom = dominators::compute(s, &essential);
    drop(essential);
    let retained = dom.retained_sizes(|n| s.self_size(n));
    let dominators::Dominators { idom, preorder } = dom;
    drop(preorder);
    Analysis { idom, retained, folded }
}
