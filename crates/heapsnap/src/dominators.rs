//! The dominator tree, with DevTools' rules for which nodes hang under the
//! root, computed by Semi-NCA over dense DFS numbers: iterative DFS,
//! iterative path compression, no recursion anywhere.
//!
//! References:
//! - Loukas Georgiadis, "Linear-Time Algorithms for Dominators and Related
//!   Problems", PhD thesis, Princeton University, 2005 (Semi-NCA):
//!   <https://www.cs.princeton.edu/techreports/2005/737.pdf>
//! - Loukas Georgiadis, Robert E. Tarjan, Renato F. Werneck, "Finding
//!   Dominators in Practice", Journal of Graph Algorithms and Applications
//!   10(1), 2006 (why Semi-NCA is the fast choice on big graphs):
//!   <https://doi.org/10.7155/jgaa.00119>
//! - Thomas Lengauer, Robert Endre Tarjan, "A Fast Algorithm for Finding
//!   Dominators in a Flowgraph", ACM TOPLAS 1(1), 1979 (semi-dominators):
//!   <https://www.cs.princeton.edu/courses/archive/spr03/cs423/download/dominators.pdf>
//!
//! The steps, each a function below: `number` the nodes by DFS (folding
//! single-retainer subtrees out, see below), `predecessors` in DFS-number
//! space, `semi_nca`, and `idom_by_node` back to node ordinals.
//!
//! Two index spaces meet here and are kept apart by type: node ordinals
//! (`NodeIndex`) and DFS numbers (`PreorderIndex`, a newtype, so one cannot
//! be used for the other); what a node's slot in the numbering holds is a
//! `Numbering` (a DFS number, or the unit a folded node belongs to). Both
//! newtypes are `#[repr(transparent)]` with inlined accessors: the same
//! machine code as the bare `u32`s they wrap, on the hottest loops here.
//!
//! Memory is the constraint here (peak RSS must stay below the snapshot's
//! file size), and most of a heap is small objects with exactly one
//! essential retainer (strings, element stores, an object's own arrays and
//! records). Those never reach the Semi-NCA arrays: a node with one
//! retainer whose DFS subtree ends up with no numbered node is un-numbered
//! when the DFS leaves it (its number is the last one given, so it is simply
//! taken back), and its edges count as its retainer's. Its dominator is its
//! only retainer.
//!
//! Taking such a node out changes no other node's semi-dominator. Lengauer
//! and Tarjan's Theorem 4 characterises it: "For any vertex w ≠ r,
//! sdom(w) = min({v | (v, w) ∈ E and v < w} ∪ {sdom(u) | u > w and there is
//! an edge (v, w) such that u →* v})" (u →* v: u is a DFS ancestor of v).
//! Everything a folded node points at was numbered before it, so for any
//! target its path-minimum is its retainer's (or its retainer's number
//! itself, for a target numbered after the retainer), which is exactly what
//! the retainer's own edge gives. And it is nobody's semi-dominator or
//! dominator. Contracting bottom-up, one DFS leaf at a time, keeps that true
//! at every step. Numbered nodes left: 41% of a small idle Node heap, 15% of
//! one holding millions of small objects.
//!
//! Semi-NCA then rests on Georgiadis' result (thesis, section 2.4): "idom(w)
//! is the nearest common ancestor of sdom(w) and parent(w) in the dominator
//! tree", so with vertices handled in DFS order each immediate dominator is
//! found by climbing from parent(w) while above sdom(w).

use crate::bits::BitSet;
use crate::observe::{Laps, Observer, Stage};
use crate::snapshot::{HeapSnapshot, NodeIndex};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// A DFS number: the root is 0, and a node's DFS parent, semi-dominator
/// and immediate dominator are all numbered before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(transparent)]
pub(crate) struct PreorderIndex(u32);

impl PreorderIndex {
    const ROOT: PreorderIndex = PreorderIndex(0);

    #[inline(always)]
    fn new(i: usize) -> Self {
        PreorderIndex(i as u32)
    }

    #[inline(always)]
    fn index(self) -> usize {
        self.0 as usize
    }
}

/// What the numbering holds for a node: not numbered yet, its DFS number,
/// or (tagged `FOLDED`) that it is folded into its retainer, the rest being
/// first that retainer's node ordinal, then, once resolved, the DFS number
/// of the numbered node its unit hangs from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
struct Numbering(u32);

impl Numbering {
    /// Node ordinals and DFS numbers stay below `MAX_NODES`, far below this bit.
    const FOLDED: u32 = 1 << 31;
    const UNNUMBERED: Numbering = Numbering(u32::MAX);

    #[inline(always)]
    fn numbered(p: PreorderIndex) -> Self {
        Numbering(p.0)
    }

    /// Folded, its retainer not resolved yet.
    #[inline(always)]
    fn folded_under(retainer: NodeIndex) -> Self {
        Numbering(Self::FOLDED | retainer)
    }

    #[inline(always)]
    fn is_unnumbered(self) -> bool {
        self == Self::UNNUMBERED
    }

    #[inline(always)]
    fn is_folded(self) -> bool {
        self.0 & Self::FOLDED != 0
    }

    /// The retainer of a folded node not yet resolved.
    #[inline(always)]
    fn retainer(self) -> NodeIndex {
        self.0 & !Self::FOLDED
    }

    /// The DFS number of the unit this node belongs to: its own when it is
    /// numbered, else the numbered node it is folded into (once resolved).
    #[inline(always)]
    fn unit(self) -> PreorderIndex {
        PreorderIndex(self.0 & !Self::FOLDED)
    }

    /// Folded into the same unit as a node numbered so.
    #[inline(always)]
    fn folded_with(unit_of: Numbering) -> Self {
        Numbering(Self::FOLDED | unit_of.0)
    }
}

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
    compute_counted(s, essential, retainer_counts(s, essential), Join::BeforePeak, None, || ())
}

/// When `compute_counted` calls its hook (joins the caller's other thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Join {
    /// Before the Semi-NCA arrays are allocated: the other work's memory is
    /// gone by the peak.
    BeforePeak,
    /// Once Semi-NCA is done, before this pass needs both cores again: the
    /// predecessor lists and Semi-NCA leave a core idle until then, but the
    /// other work's memory adds to the peak, so it must be small.
    AfterSemiNca,
}

/// `compute`, given each node's essential retainer count saturated at 2
/// (`flags::essential_edges_counted` finds them with the edges), calling
/// `hook` at `join`.
pub(crate) fn compute_counted(
    s: &HeapSnapshot,
    essential: &BitSet,
    counts: Vec<u8>,
    join: Join,
    observer: Option<&dyn Observer>,
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
    let laps = Laps::new(observer, Stage::Dominators);
    let numbered = number(s, essential, counts, &laps);
    join_at(Join::BeforePeak);
    let preds = predecessors(s, essential, &numbered, &laps);
    laps.lap("predecessors");
    laps.note(|| {
        format!(
            "{} nodes, {} numbered ({} by DFS), {} folded, {} pred edges",
            s.node_count(),
            numbered.pre_to_node.len(),
            numbered.explored,
            numbered.folded.len(),
            preds.preds.len()
        )
    });
    let Numbered { node_to_pre, pre_to_node, parent, folded, folded_retainer, explored } = numbered;
    drop(node_to_pre);
    let Predecessors { semi, pred_start, preds } = preds;
    let idom_pre = semi_nca(parent, semi, pred_start, &preds, explored);
    laps.lap("semi-nca");
    join_at(Join::AfterSemiNca);
    laps.lap("joined the side work");
    // The predecessor lists' buffer, big and now free, takes the result.
    let idom = idom_by_node(s, &pre_to_node, &idom_pre, &folded, &folded_retainer, into_raw(preds));
    laps.lap("idom by node");
    Dominators { idom, preorder: pre_to_node, folded }
}

/// The DFS numbering, with single-retainer subtrees folded out.
struct Numbered {
    /// Node ordinal -> its numbering (every node numbered or folded).
    node_to_pre: Vec<Numbering>,
    /// DFS number -> node ordinal.
    pre_to_node: Vec<NodeIndex>,
    /// DFS number -> its DFS parent's (the root's is itself).
    parent: Vec<PreorderIndex>,
    /// Nodes taken back out of the numbering, in the order the DFS left
    /// them (each after every folded node it dominates).
    folded: Vec<NodeIndex>,
    /// The only essential retainer (the dominator) of each of `folded`,
    /// kept from the DFS: finding them again would read every edge.
    folded_retainer: Vec<NodeIndex>,
    /// DFS numbers below this were reached by a DFS; the rest hang
    /// directly under the root, unexplored.
    explored: usize,
}

/// A node on the DFS stack: its edges still to look at, its DFS number,
/// and whether it has a single essential retainer.
struct Frame {
    node: NodeIndex,
    next: u32,
    end: u32,
    pre: PreorderIndex,
    single: bool,
}

/// How many edges ahead the DFS asks for a target's edge offsets.
const DFS_PREFETCH_AHEAD: usize = 4;

/// Number the nodes: a DFS from the root, then from each node with no
/// essential retainer, then whatever is left, directly under the root.
/// Every folded node ends up tagged with the DFS number of its unit.
fn number(s: &HeapSnapshot, essential: &BitSet, counts: Vec<u8>, laps: &Laps<'_>) -> Numbered {
    let n = s.node_count();
    let root = s.root();
    let mut t = Numbered {
        node_to_pre: crate::mem::filled(n, Numbering::UNNUMBERED),
        pre_to_node: Vec::with_capacity(n),
        parent: Vec::with_capacity(n),
        folded: Vec::new(),
        folded_retainer: Vec::new(),
        explored: 0,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut seen = BitSet::new(n);
    t.dfs(s, essential, &counts, &mut seen, &mut stack, root);
    laps.lap("dfs");
    // Nodes with no essential retainer at all (weak-only), and what they
    // reach. (Eight counts at a time: nearly all are not zero.)
    for (i, chunk) in counts.chunks(8).enumerate() {
        if chunk.len() == 8 && !has_zero_byte(u64::from_le_bytes(chunk.try_into().unwrap())) {
            continue;
        }
        for (j, &c) in chunk.iter().enumerate() {
            let v = (i * 8 + j) as NodeIndex;
            if c == 0 && v != root && !seen.get(v as usize) {
                t.dfs(s, essential, &counts, &mut seen, &mut stack, v);
            }
        }
    }
    drop(counts);
    drop(stack);
    drop(seen);
    // Whatever is left (unreachable cycles, and what only they retain) hangs
    // directly under the root, not explored. Usually nothing: then every
    // node is numbered or folded.
    t.explored = t.pre_to_node.len();
    if t.explored + t.folded.len() < n {
        for v in 0..n as NodeIndex {
            if t.node_to_pre[v as usize].is_unnumbered() {
                t.node_to_pre[v as usize] = Numbering::numbered(PreorderIndex::new(t.pre_to_node.len()));
                t.pre_to_node.push(v);
                t.parent.push(PreorderIndex::ROOT);
            }
        }
    }
    // Each folded node to the unit it is folded into: its retainer's, or
    // what its retainer was folded into (retainers are folded after what
    // they retain, so resolved first going backwards).
    t.folded_retainer = crate::mem::filled(t.folded.len(), 0);
    for (i, &v) in t.folded.iter().enumerate().rev() {
        let retainer = t.node_to_pre[v as usize].retainer();
        t.folded_retainer[i] = retainer;
        t.node_to_pre[v as usize] = Numbering::folded_with(t.node_to_pre[retainer as usize]);
    }
    laps.lap("folded resolved");
    t
}

impl Numbered {
    /// Number the next node, a DFS child of `parent`.
    #[inline(always)]
    fn push(&mut self, v: NodeIndex, parent: PreorderIndex) {
        self.node_to_pre[v as usize] = Numbering::numbered(PreorderIndex::new(self.pre_to_node.len()));
        self.pre_to_node.push(v);
        self.parent.push(parent);
    }

    /// A DFS from `start` over essential edges to unnumbered nodes (its DFS
    /// parent is the root). A node with one retainer, left with nothing
    /// numbered below it, is taken back out (folded) as the DFS leaves it.
    ///
    /// Memory latency is what this costs: every step goes to a node
    /// anywhere in the snapshot. So whether a target was reached is asked of
    /// `seen`, one bit a node (small enough to stay in cache) rather than of
    /// the numbering; a frame carries what leaving its node needs (its
    /// number, whether it has one retainer), read when it is entered; and
    /// the edge offsets of targets a few edges ahead are asked for early.
    fn dfs(&mut self, s: &HeapSnapshot, essential: &BitSet, counts: &[u8], seen: &mut BitSet, stack: &mut Vec<Frame>, start: NodeIndex) {
        let root = s.root();
        let frame = |v: NodeIndex, pre: usize| {
            let edges = s.edges(v);
            Frame { node: v, next: edges.start, end: edges.end, pre: PreorderIndex::new(pre), single: counts[v as usize] == 1 && v != root }
        };
        seen.set(start as usize);
        stack.push(frame(start, self.pre_to_node.len()));
        self.push(start, PreorderIndex::ROOT);
        while let Some(top) = stack.last_mut() {
            let mut found = None;
            while top.next < top.end {
                let e = top.next;
                top.next += 1;
                if let Some(ahead) = s.edge_target_checked(e as usize + DFS_PREFETCH_AHEAD) {
                    crate::mem::prefetch(&s.first_edge, ahead as usize);
                }
                if essential.get(e as usize) {
                    let t = s.edge_target(e);
                    if seen.insert(t as usize) {
                        found = Some(t);
                        break;
                    }
                }
            }
            match found {
                Some(t) => {
                    let pv = top.pre;
                    stack.push(frame(t, self.pre_to_node.len()));
                    self.push(t, pv);
                }
                None => {
                    // Leaving v: with one retainer and nothing numbered
                    // below it, v holds the last number; take it back.
                    let Frame { node: v, pre, single, .. } = stack.pop().expect("the loop saw a frame");
                    if single && pre.index() + 1 == self.pre_to_node.len() {
                        self.pre_to_node.pop();
                        self.parent.pop();
                        let retainer = stack.last().expect("a DFS never starts at a node with one retainer").node;
                        self.node_to_pre[v as usize] = Numbering::folded_under(retainer);
                        self.folded.push(v);
                    }
                }
            }
        }
    }

    /// The unit whose edges a node's count as: the node it is folded into,
    /// or its own if numbered by a DFS; `None` for unexplored nodes (they
    /// keep only their edge from the root).
    #[inline(always)]
    fn source(&self, u: NodeIndex) -> Option<PreorderIndex> {
        let pu = self.node_to_pre[u as usize];
        if pu.is_folded() || pu.unit().index() < self.explored {
            Some(pu.unit())
        } else {
            None
        }
    }
}

/// How many edges ahead the predecessor passes ask for a target's numbering.
/// The edges are read in order but their targets are anywhere in a
/// node-sized array (51 MB at 12.7 M nodes): without the hint each essential
/// edge waits on memory. 16 edges is a few hundred cycles of work ahead.
const PREFETCH_AHEAD: usize = 16;

#[inline(always)]
fn prefetch_numbering(s: &HeapSnapshot, node_to_pre: &[Numbering], e: u32) {
    if let Some(t) = s.edge_target_checked(e as usize + PREFETCH_AHEAD) {
        crate::mem::prefetch(node_to_pre, t as usize);
    }
}

/// Predecessors in DFS-number space.
struct Predecessors {
    /// DFS number -> the least predecessor numbered before it (its DFS parent at most).
    semi: Vec<PreorderIndex>,
    /// `pred_start[w]..pred_start[w + 1]`: w's slice of `preds`.
    pred_start: Vec<u32>,
    /// The predecessors numbered after their target, grouped by target.
    preds: Vec<PreorderIndex>,
}

/// Collect each numbered node's predecessors, as units. A predecessor
/// numbered before its target is always its own semi-dominator candidate
/// (Theorem 4's first set), so only the least of those is kept (in `semi`);
/// the rest go into a CSR. That drops every tree edge and forward edge from
/// the lists. Edges into folded nodes stay inside a folded unit.
///
/// Two halves of the nodes on two threads (one when the limits say so, or
/// below a million nodes). Each counts its own predecessors per target
/// (`first` by target, `second` by target + 1) and keeps its own least
/// earlier-numbered one (`semi`, and `semi_b`).
fn predecessors(s: &HeapSnapshot, essential: &BitSet, t: &Numbered, laps: &Laps<'_>) -> Predecessors {
    let n = s.node_count();
    let m = t.pre_to_node.len();
    let node_to_pre = &t.node_to_pre;
    let mut semi: Vec<PreorderIndex> = crate::mem::with_capacity(m);
    semi.extend_from_slice(&t.parent);
    let count = |nodes: std::ops::Range<u32>, counts: &mut [u32], at: usize, semi: &mut [PreorderIndex]| {
        for u in nodes {
            let Some(pu) = t.source(u) else { continue };
            for e in s.edges(u) {
                prefetch_numbering(s, node_to_pre, e);
                if essential.get(e as usize) {
                    let pt = node_to_pre[s.edge_target(e) as usize];
                    // (pt == pu: from a node folded into pu back to it.)
                    if pt.is_folded() || pt == Numbering::numbered(PreorderIndex::ROOT) || pt == Numbering::numbered(pu) {
                        continue;
                    }
                    let pt = pt.unit();
                    if pu < pt {
                        let sv = &mut semi[pt.index()];
                        if pu < *sv {
                            *sv = pu;
                        }
                    } else {
                        counts[pt.index() + at] += 1;
                    }
                }
            }
        }
    };
    let two = crate::limits::current().split(n as u32, 1 << 20);
    let mid = if two { n as u32 / 2 } else { n as u32 };
    let mut first: Vec<u32> = crate::mem::filled(m, 0);
    let mut second: Vec<u32> = crate::mem::filled(m + 1, 0);
    std::thread::scope(|scope| {
        let other = two.then(|| {
            crate::limits::spawn_scoped(scope, || {
                let mut semi_b = crate::mem::filled(m, PreorderIndex(u32::MAX));
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
    laps.lap("predecessors counted");
    // Where each half writes: `first[w]` from w's start, `second[w + 1]`
    // after the first half's; once written, `second[w + 1]` is w's end.
    let mut sum = 0;
    for (w, a) in first.iter_mut().enumerate() {
        let (na, nb) = (*a, second[w + 1]);
        *a = sum;
        second[w + 1] = sum + na;
        sum += na + nb;
    }
    let mut preds: Vec<PreorderIndex> = crate::mem::filled(sum as usize, PreorderIndex::ROOT);
    let fill = |nodes: std::ops::Range<u32>, cursor: &mut [u32], at: usize, preds: &[AtomicU32]| {
        for u in nodes {
            let Some(pu) = t.source(u) else { continue };
            for e in s.edges(u) {
                prefetch_numbering(s, node_to_pre, e);
                if essential.get(e as usize) {
                    let pt = node_to_pre[s.edge_target(e) as usize];
                    if !pt.is_folded() && pt != Numbering::numbered(PreorderIndex::ROOT) && pu > pt.unit() {
                        let slot = &mut cursor[pt.unit().index() + at];
                        preds[*slot as usize].store(pu.0, Relaxed);
                        *slot += 1;
                    }
                }
            }
        }
    };
    {
        let preds_a = atomic_view(&mut preds);
        std::thread::scope(|scope| {
            let other = two.then(|| crate::limits::spawn_scoped(scope, || fill(mid..n as u32, &mut second, 1, preds_a)));
            fill(0..mid, &mut first, 0, preds_a);
            if let Some(h) = other {
                h.join().expect("predecessor thread panicked");
            }
        });
    }
    drop(first);
    // second[w]..second[w + 1] now hold w's later-numbered predecessors.
    Predecessors { semi, pred_start: second, preds }
}

/// Semi-NCA over DFS numbers: `parent[w] < w`, vertex 0 is the root.
/// `semi[w]` starts as the least predecessor numbered before w (at most
/// `parent[w]`); `preds` lists the predecessors numbered after w.
/// Vertices at or past `explored` were not reached by a DFS; they have only
/// the root as a predecessor.
///
/// First the semi-dominators, vertices in reverse DFS order, each taking
/// the least semi-dominator on the path from each later-numbered
/// predecessor up to the first vertex not yet processed (Theorem 4's second
/// set), found by path compression. Then the immediate dominators in DFS
/// order, as the nearest common ancestor of parent and semi-dominator.
///
/// To save two arrays of m entries: `parent` becomes the path-compression
/// `ancestor` array (they agree for a vertex until it is processed), each
/// vertex's parent is kept in the slot of `pred_start` that its processing
/// has just freed, and the result is written over `ancestor`.
fn semi_nca(
    parent: Vec<PreorderIndex>,
    mut semi: Vec<PreorderIndex>,
    mut pred_start: Vec<u32>,
    preds: &[PreorderIndex],
    explored: usize,
) -> Vec<PreorderIndex> {
    let m = parent.len();
    let mut ancestor = parent;
    // best[v]: for a processed vertex, the smallest semi on its compressed
    // path to the first unprocessed ancestor.
    let mut best: Vec<PreorderIndex> = crate::mem::filled(m, PreorderIndex::ROOT);
    let mut path: Vec<PreorderIndex> = Vec::new();
    for w in (1..m).rev() {
        let wp = PreorderIndex::new(w);
        let mut sw = semi[w];
        if w < explored {
            for &v in &preds[pred_start[w] as usize..pred_start[w + 1] as usize] {
                debug_assert!(v > wp);
                // v was processed already: the smallest semi on its path to
                // the first unprocessed ancestor, compressing that path.
                let mut u = v;
                while ancestor[u.index()] > wp {
                    path.push(u);
                    u = ancestor[u.index()];
                }
                while let Some(x) = path.pop() {
                    let a = ancestor[x.index()].index();
                    if best[a] < best[x.index()] {
                        best[x.index()] = best[a];
                    }
                    ancestor[x.index()] = ancestor[a];
                }
                let cand = best[v.index()];
                if cand < sw {
                    sw = cand;
                }
            }
        }
        semi[w] = sw;
        best[w] = sw;
        // w is unprocessed until now, so its ancestor is still its parent;
        // w's slot start is read already, so it keeps the parent.
        pred_start[w + 1] = ancestor[w].0;
    }
    drop(best);
    let parent_of = |w: usize| PreorderIndex(pred_start[w + 1]);
    // idom(w) is the nearest common ancestor of parent(w) and semi(w) in
    // the dominator tree built so far (preorder guarantees idom(x) < x).
    let mut idom = ancestor;
    if m > 0 {
        idom[0] = PreorderIndex::ROOT;
    }
    for w in 1..m {
        let sw = semi[w];
        let mut d = parent_of(w);
        while d > sw {
            d = idom[d.index()];
        }
        idom[w] = d;
    }
    idom
}

/// Immediate dominators back in node ordinals, written into `buffer`
/// (reused for its pages). Each node is written once: numbering is one to
/// one, and a folded node's dominator is its only essential retainer, kept
/// from the DFS, so two halves never meet.
fn idom_by_node(
    s: &HeapSnapshot,
    pre_to_node: &[NodeIndex],
    idom_pre: &[PreorderIndex],
    folded: &[NodeIndex],
    folded_retainer: &[NodeIndex],
    mut idom: Vec<NodeIndex>,
) -> Vec<NodeIndex> {
    let n = s.node_count();
    let root = s.root();
    idom.clear();
    idom.resize(n, root);
    idom.shrink_to_fit(); // give back the tail of a larger buffer
    {
        let idom_a = atomic_view(&mut idom);
        parallel_nodes(pre_to_node.len() as u32, |range| {
            let (a, b) = (range.start as usize, range.end as usize);
            for (w, &d) in idom_pre[a..b].iter().enumerate() {
                idom_a[pre_to_node[a + w] as usize].store(pre_to_node[d.index()], Relaxed);
            }
        });
        parallel_nodes(folded.len() as u32, |range| {
            let (a, b) = (range.start as usize, range.end as usize);
            for (&v, &r) in folded[a..b].iter().zip(&folded_retainer[a..b]) {
                idom_a[v as usize].store(r, Relaxed);
            }
        });
    }
    idom[root as usize] = root;
    idom
}

/// The DFS numbers' buffer as plain `u32`s, for reuse by node ordinals.
fn into_raw(v: Vec<PreorderIndex>) -> Vec<u32> {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: PreorderIndex is a transparent u32: same size, alignment and
    // valid bit patterns; the allocation is handed over whole.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut u32, v.len(), v.capacity()) }
}

/// Plain `u32`s, or a transparent newtype of one.
trait U32Slot: Copy {}
impl U32Slot for u32 {}
impl U32Slot for PreorderIndex {}

/// A vector's elements as atomics, for passes that share it between threads.
fn atomic_view<T: U32Slot>(v: &mut [T]) -> &[AtomicU32] {
    const { assert!(std::mem::size_of::<T>() == 4 && std::mem::align_of::<T>() == 4) };
    // SAFETY: T is u32 or a transparent u32, and AtomicU32 has the size and
    // alignment of u32; the exclusive borrow guarantees no plain access meanwhile.
    unsafe { std::slice::from_raw_parts(v.as_mut_ptr() as *const AtomicU32, v.len()) }
}

/// Run `work` on two halves of the nodes at once (one, below a million).
fn parallel_nodes(n: u32, work: impl Fn(std::ops::Range<u32>) + Sync) {
    crate::mem::on_two_halves(n, 1 << 20, || (), |r, _| work(r));
}
