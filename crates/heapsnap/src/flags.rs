//! Which edges count for dominators ("essential" edges, as DevTools defines
//! them), and the page-owned set they depend on.

use crate::bits::BitSet;
use crate::meta::{EdgeKind, NodeKind};
use crate::snapshot::{HeapSnapshot, NodeIndex};
use rustc_hash::FxHashMap as HashMap;

/// User roots: non-synthetic direct children of the root (in Node, the
/// global object), or a synthetic `(Document DOM trees)` node.
pub fn user_roots(s: &HeapSnapshot) -> Vec<NodeIndex> {
    let mut out = Vec::new();
    for e in s.edges(s.root()) {
        let t = s.edge_target(e);
        if s.kind(t) != NodeKind::Synthetic || s.name(t) == "(Document DOM trees)" {
            out.push(t);
        }
    }
    out
}

/// Everything reachable without weak edges from the targets of the root's
/// shortcut edges (the global object in Node) and from `(Document DOM trees)`.
///
/// Walked as sweeps in node order rather than a depth-first search: a newly
/// reached node is only marked pending, and its edges are read when a sweep
/// gets there, so edge lists are read in order of address. What a sweep
/// reaches ahead of itself it reads in the same sweep; what it reaches
/// behind waits for the next. On a heap of cross-linked objects a
/// depth-first search jumps to a random node at every step and waits on
/// memory for most of them: on `bench/run.py`'s app shape (6.8 M nodes,
/// 20 M edges) it took 0.37 s of thread CPU, following whatever lay behind
/// at once took as long, and 13 sweeps took 0.10 s.
///
/// A long chain that runs backwards in node order would need a sweep per
/// link; after `SWEEPS` sweeps, what lies behind is followed at once
/// through a stack instead, so the worst case is the depth-first search.
pub fn page_owned(s: &HeapSnapshot) -> BitSet {
    const SWEEPS: usize = 32;
    let count = s.node_count();
    let mut owned = BitSet::new(count);
    // Owned nodes whose edges are still to be read.
    let mut pending = BitSet::new(count);
    for e in s.edges(s.root()) {
        let t = s.edge_target(e);
        let entry = match s.edge_kind(e) {
            EdgeKind::Shortcut => true,
            EdgeKind::Element => s.name(t) == "(Document DOM trees)",
            _ => false,
        };
        if entry && owned.insert(t as usize) {
            pending.set(t as usize);
        }
    }
    let mut stack: Vec<NodeIndex> = Vec::new();
    for sweep in 1.. {
        let follow_behind = sweep >= SWEEPS;
        let mut read_any = false;
        let mut word = 0usize;
        while word < pending.words.len() {
            let bits = pending.words[word];
            if bits == 0 {
                word += 1;
                continue;
            }
            read_any = true;
            let v = word * 64 + bits.trailing_zeros() as usize;
            pending.words[word] &= bits - 1;
            stack.push(v as NodeIndex);
            while let Some(n) = stack.pop() {
                for e in s.edges(n) {
                    if s.edge_kind(e) == EdgeKind::Weak {
                        continue;
                    }
                    let t = s.edge_target(e);
                    if owned.insert(t as usize) {
                        if follow_behind && (t as usize) < v {
                            stack.push(t);
                        } else {
                            pending.set(t as usize);
                        }
                    }
                }
            }
        }
        if !read_any {
            break;
        }
    }
    owned
}

/// A WeakMap entry edge name, `N / part of key (K @k) -> value (V @v) pair in WeakMap (table @T)`:
/// returns the table id and the byte offset where the part after `N / ` starts.
pub fn parse_weakmap_edge_name(name: &str) -> Option<(u32, usize)> {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || !name[digits..].starts_with(" / part of key (") {
        return None;
    }
    let tail = name.strip_suffix(')')?;
    let at = tail.rfind(" pair in WeakMap (table @")?;
    if !tail[..at].contains(") -> value (") {
        return None;
    }
    let id = &tail[at + " pair in WeakMap (table @".len()..];
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((id.parse().ok()?, digits))
}

/// Table ids of WeakMap edge names, by string index. Usually empty or small.
pub fn weakmap_names(s: &HeapSnapshot) -> HashMap<u32, u32> {
    let mut out = HashMap::default();
    let data = s.strings.data.as_bytes();
    // Only strings containing the marker can match; find them with one scan of the arena.
    let finder = memchr::memmem::Finder::new(" pair in WeakMap (table @");
    for hit in finder.find_iter(data) {
        let idx = s.strings.ends.partition_point(|&end| (end as usize) <= hit) as u32;
        if out.contains_key(&idx) {
            continue;
        }
        if let Some(name) = s.strings.get(idx) {
            if let Some((table, _)) = parse_weakmap_edge_name(name) {
                out.insert(idx, table);
            }
        }
    }
    out
}

/// The essential-edge bit per edge: not weak, not a self edge, shortcut only
/// from the root, not the table-to-value half of a WeakMap entry, and not
/// from outside the page-owned set into it (except from the root).
pub fn essential_edges(s: &HeapSnapshot, page: Option<&BitSet>) -> BitSet {
    essential_edges_counted(s, page).0
}

/// `essential_edges`, and how many essential edges point at each node,
/// saturating at 2 (what the dominator pass needs to tell the nodes with a
/// single retainer), counted in the same pass.
pub fn essential_edges_counted(s: &HeapSnapshot, page: Option<&BitSet>) -> (BitSet, Vec<u8>) {
    let weak_names = weakmap_names(s);
    let root = s.root();
    let mark = |nodes: std::ops::Range<u32>, (bits, counts): &mut (BitSet, Vec<u8>)| {
        for n in nodes {
            let from_page = page.is_none_or(|p| p.get(n as usize));
            for e in s.edges(n) {
                let k = s.edge_kind(e);
                let t = s.edge_target(e);
                if k == EdgeKind::Weak || t == n || (k == EdgeKind::Shortcut && n != root) {
                    continue;
                }
                if n != root && !from_page && page.is_some_and(|p| p.get(t as usize)) {
                    continue;
                }
                if k == EdgeKind::Internal && !weak_names.is_empty() {
                    if let Some(&table) = weak_names.get(&s.edge_name_raw(e)) {
                        if table == s.id(n) {
                            continue;
                        }
                    }
                }
                bits.set(e as usize);
                let c = &mut counts[t as usize];
                *c = (*c + 1).min(2);
            }
        }
    };
    // Two halves of the nodes on two cores, each into its own bit set and
    // counts, merged.
    let fresh = || (BitSet::new(s.edge_count()), crate::mem::filled(s.node_count(), 0u8));
    let ((mut bits, mut counts), other) = crate::mem::on_two_halves(s.node_count() as u32, 1 << 16, fresh, mark);
    if let Some((other_bits, other_counts)) = other {
        bits.or_with(&other_bits);
        drop(other_bits);
        for (a, b) in counts.iter_mut().zip(other_counts) {
            *a = (*a + b).min(2);
        }
    }
    (bits, counts)
}
