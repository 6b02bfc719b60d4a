//! Who holds a node: the reverse edge index, and the shortest retainer
//! paths from the roots, with edge names.

use crate::distances::{BASE_SYSTEM_DISTANCE, UNREACHABLE};
use crate::meta::EdgeKind;
use crate::snapshot::{EdgeIndex, HeapSnapshot, NodeIndex};

/// For every node, the edges that point at it (CSR).
pub struct Retainers {
    first: Vec<u32>,
    edges: Vec<EdgeIndex>,
}

impl Retainers {
    pub fn build(s: &HeapSnapshot) -> Self {
        let n = s.node_count();
        let mut first = crate::mem::filled(n + 2, 0u32);
        for e in 0..s.edge_count() as u32 {
            first[s.edge_target(e) as usize + 2] += 1;
        }
        let mut sum = 0;
        for c in &mut first[2..] {
            sum += *c;
            *c = sum;
        }
        let mut edges = crate::mem::filled(s.edge_count(), 0u32);
        for e in 0..s.edge_count() as u32 {
            let slot = &mut first[s.edge_target(e) as usize + 1];
            edges[*slot as usize] = e;
            *slot += 1;
        }
        first.pop();
        Retainers { first, edges }
    }

    /// The edges pointing at `n`.
    pub fn of(&self, n: NodeIndex) -> &[EdgeIndex] {
        &self.edges[self.first[n as usize] as usize..self.first[n as usize + 1] as usize]
    }
}

/// The node an edge comes from (edges are stored grouped by source).
pub fn edge_source(s: &HeapSnapshot, e: EdgeIndex) -> NodeIndex {
    (s.first_edge.partition_point(|&f| f <= e) - 1) as NodeIndex
}

/// One step of a retainer path: the edge taken and the node it leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathStep {
    pub edge: EdgeIndex,
    pub node: NodeIndex,
}

/// A path from a root-level node (the global object, or a GC root group)
/// down to the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetainerPath {
    pub start: NodeIndex,
    pub steps: Vec<PathStep>,
}

/// Edges people read first: named references before internal links.
fn edge_rank(s: &HeapSnapshot, e: EdgeIndex) -> u8 {
    match s.edge_kind(e) {
        EdgeKind::Property | EdgeKind::Context => 0,
        EdgeKind::Element => 1,
        EdgeKind::Shortcut => 2,
        EdgeKind::Internal | EdgeKind::Hidden | EdgeKind::Other => 3,
        EdgeKind::Weak => 4,
    }
}

/// Up to `k` shortest retainer paths to `target`, following distances down
/// by one at every step; weak edges and edges from the root are not shown
/// (as in the DevTools Retainers view).
pub fn shortest_paths(s: &HeapSnapshot, retainers: &Retainers, distances: &[u32], target: NodeIndex, k: usize) -> Vec<RetainerPath> {
    let mut out = Vec::new();
    if k == 0 || distances[target as usize] == UNREACHABLE {
        return out;
    }
    let root = s.root();
    let is_start = |n: NodeIndex| {
        let d = distances[n as usize];
        d == 1 || d == BASE_SYSTEM_DISTANCE + 1 || d == 0
    };
    // Candidate retaining edges of a node: one step closer to a root.
    let candidates = |n: NodeIndex| -> Vec<(EdgeIndex, NodeIndex)> {
        let want = distances[n as usize].wrapping_sub(1);
        let mut c: Vec<(EdgeIndex, NodeIndex)> = retainers
            .of(n)
            .iter()
            .filter(|&&e| s.edge_kind(e) != EdgeKind::Weak)
            .map(|&e| (e, edge_source(s, e)))
            .filter(|&(_, src)| src != root && distances[src as usize] == want)
            .collect();
        c.sort_by_key(|&(e, src)| (edge_rank(s, e), s.id(src)));
        c
    };
    // Depth-first enumeration from the target towards the roots, bounded.
    let mut budget = 200_000usize;
    // (node, its retainers still to try, how many were tried)
    #[allow(clippy::type_complexity)]
    let mut stack: Vec<(NodeIndex, Vec<(EdgeIndex, NodeIndex)>, usize)> = Vec::new();
    if is_start(target) {
        out.push(RetainerPath { start: target, steps: Vec::new() });
        return out;
    }
    stack.push((target, candidates(target), 0));
    while let Some(top) = stack.last_mut() {
        if out.len() >= k || budget == 0 {
            break;
        }
        budget -= 1;
        let (_, cands, next) = top;
        if *next >= cands.len() {
            stack.pop();
            continue;
        }
        let (e, src) = cands[*next];
        *next += 1;
        if is_start(src) {
            // Reached a root-level node: the path is the stack, read upwards.
            let mut steps = vec![PathStep { edge: e, node: stack.last().unwrap().0 }];
            for i in (0..stack.len() - 1).rev() {
                let (_, c, nx) = &stack[i];
                let (e2, _) = c[nx - 1];
                steps.push(PathStep { edge: e2, node: stack[i].0 });
            }
            out.push(RetainerPath { start: src, steps });
            continue;
        }
        let c = candidates(src);
        stack.push((src, c, 0));
    }
    out
}
