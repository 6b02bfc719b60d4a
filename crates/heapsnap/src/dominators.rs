//! The dominator tree, with DevTools' rules for which nodes hang under the
//! root, computed by Semi-NCA (Georgiadis) over dense u32 DFS numbers:
//! iterative DFS, iterative path compression, no recursion anywhere.
//!
//! Memory is the constraint here (peak RSS must stay below the snapshot's
//! file size), and most of a heap is small objects with exactly one
//! essential retainer (strings, element stores, an object's own arrays and
//! records). Those never reach the Semi-NCA arrays: a node with one
//! retainer whose DFS subtree ends up with no numbered node is un-numbered
//! when the DFS leaves it (its number is the last one given, so it is simply
//! taken back), and its edges count as its retainer's. Its dominator is its
//! only retainer. Taking such a node
//! out changes no other node's semi-dominator: everything it points at was
//! numbered before it, so for any target its path-minimum is its retainer's
//! (or its retainer's number itself, for a target numbered after the
//! retainer), which is exactly what the retainer's own edge gives. And it
//! is nobody's semi-dominator or dominator. Contracting bottom-up, one DFS
//! leaf at a time, keeps that true at every step. Numbered nodes left: 41%
//! of a small idle Node heap, 15% of one holding millions of small objects.

use crate::bits::BitSet;
use crate::snapshot::{HeapSnapshot, NodeIndex};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

const NONE: u32 = u32::MAX;
/// Set in `node_to_pre` for a node folded into its retainer (see the module
/// docs); the rest is first its DFS parent's ordinal, then the DFS number
/// of the numbered node it is folded into. Node ordinals and DFS numbers
/// stay below `MAX_NODES`, far below this bit.
const FOLDED: u32 = 1 << 31;

/// The immediate dominator of every node (the root is its own), and the
/// order in which retained sizes can be summed (children before parents).
pub struct Dominators {
    /// Node ordinal -> its immediate dominator's ordinal.
    pub idom: Vec<NodeIndex>,
    /// The numbered nodes in DFS preorder: every node's dominator comes
    /// before it. Nodes not listed are folded (dominated by their only
    /// retainer).
    pub preorder: Vec<NodeIndex>,
    /// The folded nodes, each after every folded node it dominates.
    pub folded: Vec<NodeIndex>,
}

impl Dominators {
    /// Retained size per node: its self size plus that of every node it dominates.
    pub fn retained_sizes(&self, self_size: impl Fn(NodeIndex) -> u64) -> Vec<u64> {
        let n = self.idom.len();
        let mut retained: Vec<u64> = crate::mem::with_capacity(n);
        retained.extend((0..n as u32).map(&self_size));
        for &v in &self.folded {
            let d = self.idom[v as usize] as usize;
            retained[d] += retained[v as usize];
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

/// Whether any of the eight bytes is zero.
fn has_zero_byte(x: u64) -> bool {
    x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080 != 0
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
pub fn compute_counted(s: &HeapSnapshot, essential: &BitSet, counts: Vec<u8>, join: Join, hook: impl FnOnce()) -> Dominators {
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

    let mut node_to_pre: Vec<u32> = crate::mem::filled(n, NONE);
    let mut pre_to_node: Vec<u32> = Vec::with_capacity(n);
    let mut parent: Vec<u32> = Vec::with_capacity(n);
    // Nodes with one retainer taken back out of the numbering, in the order
    // the DFS left them (children first).
    let mut folded: Vec<u32> = Vec::new();
    let mut stack: Vec<(u32, u32)> = Vec::new();

    let mut dfs = |start: NodeIndex,
                   parent_pre: u32,
                   node_to_pre: &mut Vec<u32>,
                   pre_to_node: &mut Vec<u32>,
                   parent: &mut Vec<u32>,
                   folded: &mut Vec<u32>| {
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
                    // Leaving v: with one retainer and nothing numbered
                    // below it, v holds the last number; take it back.
                    let pv = node_to_pre[v as usize];
                    stack.pop();
                    if v != root && counts[v as usize] == 1 && pv as usize + 1 == pre_to_node.len() {
                        pre_to_node.pop();
                        parent.pop();
                        let retainer = stack.last().expect("a DFS never starts at a node with one retainer").0;
                        node_to_pre[v as usize] = FOLDED | retainer;
                        folded.push(v);
                    }
                }
            }
        }
    };

    dfs(root, 0, &mut node_to_pre, &mut pre_to_node, &mut parent, &mut folded);
    lap("dfs");
    // Nodes with no essential retainer at all (weak-only), and what they
    // reach. (Eight counts at a time: nearly all are not zero.)
    for (i, chunk) in counts.chunks(8).enumerate() {
        if chunk.len() == 8 && !has_zero_byte(u64::from_le_bytes(chunk.try_into().unwrap())) {
            continue;
        }
        for (j, &c) in chunk.iter().enumerate() {
            let v = (i * 8 + j) as u32;
            if c == 0 && v != root && node_to_pre[v as usize] == NONE {
                dfs(v, 0, &mut node_to_pre, &mut pre_to_node, &mut parent, &mut folded);
            }
        }
    }
    drop(counts);
    // Whatever is left (unreachable cycles, and what only they retain) hangs
    // directly under the root, not explored. Usually nothing: then every
    // node is numbered or folded.
    let numbered_by_dfs = pre_to_node.len();
    if numbered_by_dfs + folded.len() < n {
        for v in 0..n as u32 {
            if node_to_pre[v as usize] == NONE {
                node_to_pre[v as usize] = pre_to_node.len() as u32;
                pre_to_node.push(v);
                parent.push(0);
            }
        }
    }
    drop(stack);
    // Each folded node to the number of the node it is folded into: its
    // retainer's, or what its retainer was folded into (retainers are
    // folded after what they retain, so resolved first going backwards).
    for &v in folded.iter().rev() {
        let r = node_to_pre[(node_to_pre[v as usize] & !FOLDED) as usize];
        node_to_pre[v as usize] = FOLDED | r;
    }
    lap("folded resolved");
    let m = pre_to_node.len();
    join_at(Join::BeforePeak);

    // Predecessors in DFS-number space. A predecessor numbered before its
    // target is always its own semi-dominator candidate, so only the least
    // of those is kept (in `semi`); the rest go into a CSR. That drops every
    // tree edge and forward edge from the list.
    let mut semi: Vec<u32> = crate::mem::with_capacity(m);
    semi.extend_from_slice(&parent);
    // Every explored node's edges count as those of the node it is folded
    // into (its own, if numbered); edges into folded nodes stay inside a
    // folded unit. Unexplored nodes keep only their edge from the root.
    let source = |u: u32| -> Option<u32> {
        let pu = node_to_pre[u as usize];
        if pu & FOLDED != 0 {
            Some(pu & !FOLDED)
        } else {
            (pu < numbered_by_dfs as u32).then_some(pu)
        }
    };
    // Two halves of the nodes on two cores. Each counts its own
    // predecessors per target (`first` by target, `second` by target + 1)
    // and keeps its own least earlier-numbered one (`semi`, and `semi_b`).
    let count = |nodes: std::ops::Range<u32>, counts: &mut [u32], at: usize, semi: &mut [u32]| {
        for u in nodes {
            let Some(pu) = source(u) else { continue };
            for e in s.edges(u) {
                if essential.get(e as usize) {
                    let pt = node_to_pre[s.edge_target(e) as usize];
                    // (pt == pu: from a node folded into pu back to it.)
                    if pt & FOLDED != 0 || pt == 0 || pt == pu {
                        continue;
                    }
                    if pu < pt {
                        let sv = &mut semi[pt as usize];
                        if pu < *sv {
                            *sv = pu;
                        }
                    } else {
                        counts[pt as usize + at] += 1;
                    }
                }
            }
        }
    };
    let two = n as u32 >= crate::mem::parallel_min(1 << 20);
    let mid = if two { n as u32 / 2 } else { n as u32 };
    let mut first: Vec<u32> = crate::mem::filled(m, 0);
    let mut second: Vec<u32> = crate::mem::filled(m + 1, 0);
    std::thread::scope(|scope| {
        let other = two.then(|| {
            scope.spawn(|| {
                let mut semi_b = crate::mem::filled(m, NONE);
                count(mid..n as u32, &mut second, 1, &mut semi_b);
                semi_b
            })
        });
        count(0..mid, &mut first, 0, &mut semi);
        if let Some(h) = other {
            let semi_b = h.join().expect("predecessor thread panicked");
            for (a, b) in semi.iter_mut().zip(semi_b) {
                *a = (*a).min(b);
            }
        }
    });
    lap("predecessors counted");
    // Where each half writes: `first[w]` from w's start, `second[w + 1]`
    // after the first half's; once written, `second[w + 1]` is w's end.
    let mut sum = 0;
    for (w, a) in first.iter_mut().enumerate() {
        let (na, nb) = (*a, second[w + 1]);
        *a = sum;
        second[w + 1] = sum + na;
        sum += na + nb;
    }
    let mut preds: Vec<u32> = crate::mem::filled(sum as usize, 0);
    let fill = |nodes: std::ops::Range<u32>, cursor: &mut [u32], at: usize, preds: &[AtomicU32]| {
        for u in nodes {
            let Some(pu) = source(u) else { continue };
            for e in s.edges(u) {
                if essential.get(e as usize) {
                    let pt = node_to_pre[s.edge_target(e) as usize];
                    if pt & FOLDED == 0 && pt != 0 && pu > pt {
                        let slot = &mut cursor[pt as usize + at];
                        preds[*slot as usize].store(pu, Relaxed);
                        *slot += 1;
                    }
                }
            }
        }
    };
    {
        let preds_a = atomic_view(&mut preds);
        std::thread::scope(|scope| {
            let other = two.then(|| scope.spawn(|| fill(mid..n as u32, &mut second, 1, preds_a)));
            fill(0..mid, &mut first, 0, preds_a);
            if let Some(h) = other {
                h.join().expect("predecessor thread panicked");
            }
        });
    }
    drop(first);
    let pred_start = second;
    // pred_start[w]..pred_start[w + 1] now hold w's later-numbered predecessors.
    lap("predecessors");

    if std::env::var_os("HEAPSNAP_DEBUG").is_some() {
        eprintln!("dominators: {n} nodes, {m} numbered ({numbered_by_dfs} by DFS), {} folded, {} pred edges", folded.len(), preds.len());
    }
    let idom_pre = semi_nca(parent, semi, pred_start, &preds, numbered_by_dfs);
    lap("semi-nca");
    join_at(Join::AfterSemiNca);
    lap("joined the side work");
    let mut idom = preds;
    idom.clear();
    idom.resize(n, root);
    idom.shrink_to_fit(); // give back the tail of a larger buffer

    // Back to node ordinals (each written once: numbering is one to one),
    // and a folded node's only essential retainer is its
    // dominator (exactly one edge writes each): two halves never meet.
    {
        let idom_a = atomic_view(&mut idom);
        parallel_nodes(pre_to_node.len() as u32, |range| {
            let (a, b) = (range.start as usize, range.end as usize);
            for (w, &d) in idom_pre[a..b].iter().enumerate() {
                idom_a[pre_to_node[a + w] as usize].store(pre_to_node[d as usize], Relaxed);
            }
        });
        parallel_nodes(n as u32, |range| {
            for u in range.filter(|&u| source(u).is_some()) {
                for e in s.edges(u) {
                    if essential.get(e as usize) {
                        let t = s.edge_target(e);
                        if node_to_pre[t as usize] & FOLDED != 0 {
                            idom_a[t as usize].store(u, Relaxed);
                        }
                    }
                }
            }
        });
    }
    idom[root as usize] = root;
    lap("idom by node");
    Dominators { idom, preorder: pre_to_node, folded }
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
fn semi_nca(parent: Vec<u32>, mut semi: Vec<u32>, mut pred_start: Vec<u32>, preds: &[u32], explored: usize) -> Vec<u32> {
    let m = parent.len();
    let mut ancestor = parent;
    // best[v]: for a processed vertex, the smallest semi-dominator on its
    // compressed path to the first unprocessed ancestor.
    let mut best: Vec<u32> = crate::mem::filled(m, 0);
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
