//! Distances from the roots, as DevTools shows them: user roots (the
//! global object) at 1, then a second pass from the root for what only V8
//! or Node internals hold, starting at 100000000; unreachable nodes have none.

use crate::bits::BitSet;
use crate::flags::{parse_weakmap_edge_name, user_roots};
use crate::meta::{EdgeKind, NodeKind};
use crate::snapshot::{EdgeIndex, EdgeName, HeapSnapshot, NodeIndex};
use rustc_hash::FxHashSet as HashSet;

/// Distance of a node no path reaches.
pub const UNREACHABLE: u32 = u32::MAX;
/// Where distances of nodes held only by internals start.
pub const BASE_SYSTEM_DISTANCE: u32 = 100_000_000;

fn string_indexes(s: &HeapSnapshot, want: &str) -> Vec<u32> {
    s.strings.indexes_of(want).collect()
}

/// Breadth-first distances, skipping weak edges and DevTools' few V8 links
/// that would make everything look one step from the native context.
/// Calls `visit(node, distance)` once per reached node, nearest first.
///
/// Memory stays a few MB whatever the heap: a level is a list while it is
/// short and a bit per node once it is long (`visit_tree`'s lists reach
/// 48 MB on a 1 GB snapshot, and this runs beside the dominator pass, at
/// its memory peak). Distances do not depend on the order within a level,
/// so walking a long one in node order changes nothing.
pub fn visit(s: &HeapSnapshot, mut visit: impl FnMut(NodeIndex, u32)) {
    let n = s.node_count();
    let list_max = list_max();
    let mut seen = BitSet::new(n);
    let mut filter = Filter::new(s);
    enum Level {
        List(Vec<u32>),
        Bits(BitSet),
    }
    let mut walk = |start: Vec<u32>, mut d: u32, seen: &mut BitSet, visit: &mut dyn FnMut(NodeIndex, u32)| {
        let mut level = Level::List(start);
        loop {
            let mut next_list: Vec<u32> = Vec::new();
            let mut next_bits: Option<BitSet> = None;
            let mut expand = |x: NodeIndex, seen: &mut BitSet| {
                for e in s.edges(x) {
                    if s.edge_kind(e) == EdgeKind::Weak {
                        continue;
                    }
                    let t = s.edge_target(e);
                    if seen.get(t as usize) || !filter.pass(x, e) {
                        continue;
                    }
                    seen.set(t as usize);
                    visit(t, d + 1);
                    match &mut next_bits {
                        Some(bits) => bits.set(t as usize),
                        None => {
                            next_list.push(t);
                            if next_list.len() > list_max {
                                let mut bits = BitSet::new(n);
                                for &y in &next_list {
                                    bits.set(y as usize);
                                }
                                next_list = Vec::new();
                                next_bits = Some(bits);
                            }
                        }
                    }
                }
            };
            match &level {
                Level::List(list) => list.iter().for_each(|&x| expand(x, seen)),
                Level::Bits(bits) => bits.ones().for_each(|x| expand(x as u32, seen)),
            }
            level = match next_bits {
                Some(bits) => Level::Bits(bits),
                None if next_list.is_empty() => return,
                None => Level::List(next_list),
            };
            d += 1;
        }
    };
    let users = user_roots(s);
    let mut first = Vec::new();
    for &u in &users {
        if seen.insert(u as usize) {
            visit(u, 1);
            first.push(u);
        }
    }
    walk(first, 1, &mut seen, &mut visit);
    let root = s.root();
    let root_distance = if users.is_empty() { 0 } else { BASE_SYSTEM_DISTANCE };
    if seen.insert(root as usize) {
        visit(root, root_distance);
    }
    walk(vec![root], root_distance, &mut seen, &mut visit);
}

/// The longest level `visit` keeps as a list (`Limits::bfs_list_max`
/// overrides it, for tests on small heaps).
fn list_max() -> usize {
    crate::limits::current().bfs_list_max.unwrap_or(1 << 18)
}

/// DevTools' rules for which edges a distance may follow.
struct Filter<'a> {
    s: &'a HeapSnapshot,
    native_context: Vec<u32>,
    sloppy: Vec<u32>,
    descriptors: Vec<u32>,
    weak_names: rustc_hash::FxHashMap<u32, u32>,
    /// WeakMap values: reached only through the second of their two edges.
    half_seen: HashSet<&'a str>,
}

impl<'a> Filter<'a> {
    fn new(s: &'a HeapSnapshot) -> Self {
        Filter {
            s,
            native_context: string_indexes(s, "system / NativeContext"),
            sloppy: string_indexes(s, "sloppy_function_map"),
            descriptors: string_indexes(s, "(map descriptors)"),
            weak_names: crate::flags::weakmap_names(s),
            half_seen: HashSet::default(),
        }
    }

    /// Whether edge `e` out of `x` leads one step further.
    fn pass(&mut self, x: NodeIndex, e: u32) -> bool {
        let s = self.s;
        let kind = s.kind(x);
        if kind == NodeKind::Hidden
            && self.native_context.contains(&s.name_index(x))
            && !s.edge_kind(e).name_is_index()
            && self.sloppy.contains(&s.edge_name_raw(e))
        {
            return false;
        }
        if kind == NodeKind::Array && self.descriptors.contains(&s.name_index(x)) {
            let k: Option<u64> = match s.edge_name(e) {
                EdgeName::Index(i) => Some(i as u64),
                EdgeName::Name(t) => t.parse().ok(),
            };
            return match k {
                Some(k) => k < 2 || k % 3 != 1,
                None => true,
            };
        }
        if s.edge_kind(e) == EdgeKind::Internal && self.weak_names.contains_key(&s.edge_name_raw(e)) {
            let name = s.strings.get(s.edge_name_raw(e)).unwrap_or("");
            if let Some((_, digits)) = parse_weakmap_edge_name(name) {
                let part = &name[digits..];
                if self.half_seen.insert(part) {
                    return false;
                }
                self.half_seen.remove(part);
            }
        }
        true
    }
}

/// No parent: a root-level node (a user root or the snapshot root).
pub const NO_EDGE: EdgeIndex = EdgeIndex::MAX;

/// `visit`, also giving the edge each node was first reached by and that
/// edge's source (`NO_EDGE` and `NodeIndex::MAX` for the roots): a
/// shortest-path tree, parents always visited first.
pub fn visit_tree(s: &HeapSnapshot, mut visit: impl FnMut(NodeIndex, u32, EdgeIndex, NodeIndex)) {
    let n = s.node_count();
    let mut seen = BitSet::new(n);
    let mut filter = Filter::new(s);
    let mut pass = |x: NodeIndex, e: u32| filter.pass(x, e);
    let mut level: Vec<u32> = Vec::new();
    let mut next: Vec<u32> = Vec::new();
    let mut bfs = |level: &mut Vec<u32>,
                   next: &mut Vec<u32>,
                   mut d: u32,
                   seen: &mut BitSet,
                   visit: &mut dyn FnMut(NodeIndex, u32, EdgeIndex, NodeIndex)| {
        while !level.is_empty() {
            for &x in level.iter() {
                for e in s.edges(x) {
                    if s.edge_kind(e) == EdgeKind::Weak {
                        continue;
                    }
                    let t = s.edge_target(e);
                    if seen.get(t as usize) || !pass(x, e) {
                        continue;
                    }
                    seen.set(t as usize);
                    visit(t, d + 1, e, x);
                    next.push(t);
                }
            }
            std::mem::swap(level, next);
            next.clear();
            d += 1;
        }
    };
    let users = user_roots(s);
    for &u in &users {
        if seen.insert(u as usize) {
            visit(u, 1, NO_EDGE, NodeIndex::MAX);
            level.push(u);
        }
    }
    bfs(&mut level, &mut next, 1, &mut seen, &mut visit);
    let root = s.root();
    let root_distance = if users.is_empty() { 0 } else { BASE_SYSTEM_DISTANCE };
    if seen.insert(root as usize) {
        visit(root, root_distance, NO_EDGE, NodeIndex::MAX);
    }
    level.push(root);
    bfs(&mut level, &mut next, root_distance, &mut seen, &mut visit);
}

/// A shortest-path tree from the roots (DevTools' distance rules): every
/// reached node's parent edge and node, distance, and the visit order
/// (parents first).
pub struct PathTree {
    /// The edge each reached node was first reached by (`NO_EDGE` for none).
    pub parent_edge: Vec<EdgeIndex>,
    /// That edge's source (`NodeIndex::MAX` for none).
    pub parent_node: Vec<NodeIndex>,
    /// Distance from the roots (`UNREACHABLE` for none).
    pub dist: Vec<u32>,
    /// Reached nodes, parents first.
    pub order: Vec<NodeIndex>,
}

impl PathTree {
    pub fn compute(s: &HeapSnapshot) -> PathTree {
        let n = s.node_count();
        let mut t = PathTree {
            parent_edge: vec![NO_EDGE; n],
            parent_node: vec![NodeIndex::MAX; n],
            dist: vec![UNREACHABLE; n],
            order: Vec::with_capacity(n),
        };
        visit_tree(s, |x, d, e, p| {
            t.parent_edge[x as usize] = e;
            t.parent_node[x as usize] = p;
            t.dist[x as usize] = d;
            t.order.push(x);
        });
        t
    }
}

/// Every node's distance (`UNREACHABLE` for none).
pub fn compute(s: &HeapSnapshot) -> Vec<u32> {
    let mut dist = crate::mem::filled(s.node_count(), UNREACHABLE);
    visit(s, |n, d| dist[n as usize] = d);
    dist
}

/// How DevTools prints a distance: a number below the system base, else "-".
pub fn display(d: u32) -> String {
    if d < BASE_SYSTEM_DISTANCE {
        d.to_string()
    } else {
        "-".to_string()
    }
}
