//! The dominator tree, with DevTools' rules for which nodes hang under the
//! root, computed by Semi-NCA (Georgiadis) over dense u32 DFS numbers:
//! iterative DFS, iterative path compression, no recursion anywhere.
//!
//! Memory is the constraint here (peak RSS must stay below the snapshot's
//! file size), so leaves that have exactly one essential retainer (most
//! strings, numbers and small internal arrays) are never numbered: their
//! immediate dominator is that retainer. That removes a third or more of the
//! vertices from the Semi-NCA arrays in typical heaps.

use crate::bits::BitSet;
use crate::snapshot::{HeapSnapshot, NodeIndex};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

const NONE: u32 = u32::MAX;

/// The immediate dominator of every node (the root is its own), and the
/// order in which retained sizes can be summed (children before parents).
pub struct Dominators {
    /// Node ordinal -> its immediate dominator's ordinal.
    pub idom: Vec<NodeIndex>,
    /// The numbered nodes in DFS preorder: every node's dominator comes
    /// before it. Nodes not listed are leaves (dominated by their only retainer).
    pub preorder: Vec<NodeIndex>,
    /// Those leaves.
    pub leaves: BitSet,
}

impl Dominators {
    /// Retained size per node: its self size plus that of every node it dominates.
    pub fn retained_sizes(&self, self_size: impl Fn(NodeIndex) -> u64) -> Vec<u64> {
        let n = self.idom.len();
        let mut retained: Vec<u64> = crate::mem::with_capacity(n);
        retained.extend((0..n as u32).map(&self_size));
        // Leaves first: nothing hangs below them.
        for v in self.leaves.ones() {
            let d = self.idom[v] as usize;
            retained[d] += retained[v];
        }
        for &v in self.preorder.iter().skip(1).rev() {
            let d = self.idom[v as usize] as usize;
            retained[d] += retained[v as usize];
        }
        retained
    }
}

/// Count essential retainers per node, saturating at 2 (two halves of the
/// edges on two cores, then merged).
fn retainer_counts(s: &HeapSnapshot, essential: &BitSet) -> Vec<u8> {
    let count_range = |edges: std::ops::Range<u32>, count: &mut [u8]| {
        for e in edges {
            if essential.get(e as usize) {
                let c = &mut count[s.edge_target(e) as usize];
                *c = (*c + 1).min(2);
            }
        }
    };
    let (mut count, other) = crate::mem::on_two_halves(
        s.edge_count() as u32,
        1 << 20,
        || crate::mem::filled(s.node_count(), 0u8),
        |edges, c: &mut Vec<u8>| count_range(edges, c),
    );
    if let Some(other) = other {
        for (a, b) in count.iter_mut().zip(other) {
            *a = (*a + b).min(2);
        }
    }
    count
}

fn has_essential_out(s: &HeapSnapshot, essential: &BitSet, n: NodeIndex) -> bool {
    s.edges(n).any(|e| essential.get(e as usize))
}

/// Compute dominators from the root over `essential` edges.
///
/// Numbering follows DevTools: a DFS from the root; then a DFS from each
/// node left with no essential retainer (kept only by weak edges), hung
/// under the root; then every node still unnumbered (unreachable cycles)
/// directly under the root.
pub fn compute(s: &HeapSnapshot, essential: &BitSet) -> Dominators {
    compute_with(s, essential, || ())
}

/// `compute`, calling `before_peak` just before the big Semi-NCA arrays are
/// allocated: a caller running other work on another thread joins it there,
/// so that work's memory is gone by the time this pass needs the most.
pub fn compute_with(s: &HeapSnapshot, essential: &BitSet, before_peak: impl FnOnce()) -> Dominators {
    compute_counted(s, essential, retainer_counts(s, essential), Join::BeforePeak, before_peak)
}

/// When `compute_counted` calls its hook (joins the caller's other thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// Before the Semi-NCA arrays are allocated: the other work's memory is
    /// gone by the peak.
    BeforePeak,
    /// Once Semi-NCA is done, before this pass needs both cores again: the
    /// predecessor lists and Semi-NCA leave a core idle until then, but the
    /// other work's memory adds to the peak, so it must be small.
    AfterSemiNca,
}

/// `compute_with`, given each node's essential retainer count saturated at
/// 2 (`flags::essential_edges_counted` finds them with the edges).
pub fn compute_counted(
    s: &HeapSnapshot,
    essential: &BitSet,
    counts: Vec<u8>,
    join: Join,
    hook: impl FnOnce(),
) -> Dominators {
    let mut hook = Some(hook);
    let mut join_at = |here: Join| {
        if here == join {
            if let Some(h) = hook.take() {
                h();
            }
        }
    };
    let n = s.node_count();
    let root = s.root();
    let debug = std::env::var_os("HEAPSNAP_DEBUG").is_some();
    let t0 = std::time::Instant::now();
    let lap = |what: &str| {
        if debug {
            eprintln!("    dominators: {what} at {:.2?} ({})", t0.elapsed(), crate::mem::usage());
        }
    };
    // A trivial leaf: one essential retainer, no essential edge out.
    let trivial = |v: NodeIndex| v != root && counts[v as usize] == 1 && !has_essential_out(s, essential, v);

    let mut node_to_pre: Vec<u32> = crate::mem::filled(n, NONE);
    let mut pre_to_node: Vec<u32> = Vec::with_capacity(n);
    let mut parent: Vec<u32> = Vec::with_capacity(n);
    // Trivial leaves reached by a DFS: their retainer is their dominator.
    let mut leaf_reached = BitSet::new(n);
    let mut stack: Vec<(u32, u32)> = Vec::new();

    let mut dfs = |start: NodeIndex,
                   parent_pre: u32,
                   node_to_pre: &mut Vec<u32>,
                   pre_to_node: &mut Vec<u32>,
                   parent: &mut Vec<u32>,
                   leaf_reached: &mut BitSet| {
        node_to_pre[start as usize] = pre_to_node.len() as u32;
        pre_to_node.push(start);
        parent.push(parent_pre);
        stack.push((start, s.edges(start).start));
        while let Some(top) = stack.last_mut() {
            let (v, ref mut next) = *top;
            let end = s.edges(v).end;
            let mut pushed = None;
            while *next < end {
                let e = *next;
                *next += 1;
                if !essential.get(e as usize) {
                    continue;
                }
                let t = s.edge_target(e);
                if node_to_pre[t as usize] != NONE {
                    continue;
                }
                if trivial(t) {
                    leaf_reached.set(t as usize);
                    continue;
                }
                pushed = Some(t);
                break;
            }
            match pushed {
                Some(t) => {
                    node_to_pre[t as usize] = pre_to_node.len() as u32;
                    pre_to_node.push(t);
                    parent.push(node_to_pre[v as usize]);
                    stack.push((t, s.edges(t).start));
                }
                None => {
                    stack.pop();
                }
            }
        }
    };

    dfs(root, 0, &mut node_to_pre, &mut pre_to_node, &mut parent, &mut leaf_reached);
    lap("dfs");
    // Nodes with no essential retainer at all (weak-only), and what they reach.
    for v in 0..n as u32 {
        if node_to_pre[v as usize] == NONE && counts[v as usize] == 0 && v != root {
            dfs(v, 0, &mut node_to_pre, &mut pre_to_node, &mut parent, &mut leaf_reached);
        }
    }
    drop(counts);
    // Whatever is left (including trivial leaves whose retainer was never
    // reached) hangs directly under the root, not explored.
    let numbered_by_dfs = pre_to_node.len();
    for v in 0..n as u32 {
        if node_to_pre[v as usize] == NONE && !leaf_reached.get(v as usize) {
            node_to_pre[v as usize] = pre_to_node.len() as u32;
            pre_to_node.push(v);
            parent.push(0);
        }
    }
    drop(stack);
    let m = pre_to_node.len();
    join_at(Join::BeforePeak);

    // Predecessors in DFS-number space. A predecessor numbered before its
    // target is always its own semi-dominator candidate, so only the least
    // of those is kept (in `semi`); the rest go into a CSR. That drops every
    // tree edge and forward edge from the list.
    let mut semi: Vec<u32> = crate::mem::with_capacity(m);
    semi.extend_from_slice(&parent);
    let mut pred_start: Vec<u32> = crate::mem::filled(m + 2, 0);
    for u in 0..n as u32 {
        let pu = node_to_pre[u as usize];
        if pu == NONE || pu as usize >= numbered_by_dfs {
            continue; // unexplored nodes keep only their edge from the root
        }
        for e in s.edges(u) {
            if essential.get(e as usize) {
                let pt = node_to_pre[s.edge_target(e) as usize];
                if pt == NONE || pt == 0 {
                    continue;
                }
                if pu < pt {
                    let sv = &mut semi[pt as usize];
                    if pu < *sv {
                        *sv = pu;
                    }
                } else {
                    pred_start[pt as usize + 2] += 1;
                }
            }
        }
    }
    // Running sum in a register: `p[i] += p[i - 1]` would wait on the store
    // it just made, every step.
    let mut sum = 0;
    for c in &mut pred_start[2..] {
        sum += *c;
        *c = sum;
    }
    let mut preds: Vec<u32> = crate::mem::filled(pred_start[m + 1] as usize, 0);
    for u in 0..n as u32 {
        let pu = node_to_pre[u as usize];
        if pu == NONE || pu as usize >= numbered_by_dfs {
            continue;
        }
        for e in s.edges(u) {
            if essential.get(e as usize) {
                let pt = node_to_pre[s.edge_target(e) as usize];
                if pt != NONE && pt != 0 && pu > pt {
                    let slot = &mut pred_start[pt as usize + 1];
                    preds[*slot as usize] = pu;
                    *slot += 1;
                }
            }
        }
    }
    // pred_start[w]..pred_start[w + 1] now hold w's later-numbered predecessors.
    pred_start.pop();
    lap("predecessors");

    // Reuse its pages for the path-compression labels: fresh memory is slow here.
    let spare = node_to_pre;

    if std::env::var_os("HEAPSNAP_DEBUG").is_some() {
        eprintln!("dominators: {n} nodes, {m} numbered ({numbered_by_dfs} by DFS), {} leaves, {} pred edges", leaf_reached.count_ones(), preds.len());
    }
    let idom_pre = semi_nca(parent, semi, pred_start, &preds, numbered_by_dfs, spare);
    lap("semi-nca");
    join_at(Join::AfterSemiNca);
    lap("joined the side work");
    let mut idom = preds;
    idom.clear();
    idom.resize(n, root);
    idom.shrink_to_fit(); // give back the tail of a larger buffer

    // Back to node ordinals (each written once: numbering is one to one),
    // and a trivial leaf's only essential retainer is its dominator (exactly
    // one edge writes each leaf): two halves never meet.
    {
        let idom_a = atomic_view(&mut idom);
        parallel_nodes(pre_to_node.len() as u32, |range| {
            let (a, b) = (range.start as usize, range.end as usize);
            for (w, &d) in idom_pre[a..b].iter().enumerate() {
                idom_a[pre_to_node[a + w] as usize].store(pre_to_node[d as usize], Relaxed);
            }
            for &u in &pre_to_node[a..b] {
                for e in s.edges(u) {
                    if essential.get(e as usize) && leaf_reached.get(s.edge_target(e) as usize) {
                        idom_a[s.edge_target(e) as usize].store(u, Relaxed);
                    }
                }
            }
        });
    }
    idom[root as usize] = root;
    lap("idom by node");
    Dominators { idom, preorder: pre_to_node, leaves: leaf_reached }
}

/// Semi-NCA over DFS numbers: `parent[w] < w`, vertex 0 is the root.
/// `semi[w]` starts as the least predecessor numbered before w (at most
/// `parent[w]`); `preds` lists the predecessors numbered after w.
/// Vertices at or past `explored` were not reached by a DFS; they have only
/// the root as a predecessor.
///
/// To save two arrays of m entries: `parent` becomes the path-compression
/// `ancestor` array (they agree for a vertex until it is processed), each
/// vertex's parent is kept in the slot of `pred_start` that its processing
/// has just freed, and the result is written over `ancestor`.
fn semi_nca(
    parent: Vec<u32>,
    mut semi: Vec<u32>,
    mut pred_start: Vec<u32>,
    preds: &[u32],
    explored: usize,
    spare: Vec<u32>,
) -> Vec<u32> {
    let m = parent.len();
    let mut ancestor = parent;
    // best[v]: for a processed vertex, the smallest semi-dominator on its
    // compressed path to the first unprocessed ancestor.
    let mut best = spare;
    best.clear();
    best.resize(m, 0);
    let mut path: Vec<u32> = Vec::new();
    for w in (1..m).rev() {
        let wu = w as u32;
        let mut sw = semi[w];
        if w < explored {
            for &v in &preds[pred_start[w] as usize..pred_start[w + 1] as usize] {
                debug_assert!(v > wu);
                // v was processed already: the smallest semi on its path to
                // the first unprocessed ancestor, compressing that path.
                let mut u = v;
                while ancestor[u as usize] > wu {
                    path.push(u);
                    u = ancestor[u as usize];
                }
                while let Some(x) = path.pop() {
                    let a = ancestor[x as usize] as usize;
                    if best[a] < best[x as usize] {
                        best[x as usize] = best[a];
                    }
                    ancestor[x as usize] = ancestor[a];
                }
                let cand = best[v as usize];
                if cand < sw {
                    sw = cand;
                }
            }
        }
        semi[w] = sw;
        best[w] = sw;
        // w is unprocessed until now, so its ancestor is still its parent.
        pred_start[w + 1] = ancestor[w];
    }
    drop(best);
    // idom(w) is the nearest common ancestor of parent(w) and semi(w) in
    // the dominator tree built so far (preorder guarantees idom(x) < x).
    let mut idom = ancestor;
    if m > 0 {
        idom[0] = 0;
    }
    for w in 1..m {
        let sw = semi[w];
        let mut d = pred_start[w + 1];
        while d > sw {
            d = idom[d as usize];
        }
        idom[w] = d;
    }
    idom
}

/// A vector's elements as atomics, for passes that share it between threads.
fn atomic_view(v: &mut [u32]) -> &[AtomicU32] {
    // SAFETY: AtomicU32 has the size and alignment of u32, and the
    // exclusive borrow guarantees no plain access meanwhile.
    unsafe { std::slice::from_raw_parts(v.as_mut_ptr() as *const AtomicU32, v.len()) }
}

/// Run `work` on two halves of the nodes at once (one, below a million).
fn parallel_nodes(n: u32, work: impl Fn(std::ops::Range<u32>) + Sync) {
    crate::mem::on_two_halves(n, 1 << 20, || (), |r, _| work(r));
}

