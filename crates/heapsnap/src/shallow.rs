//! DevTools' "shallow size" folding: internal `hidden` and `array` nodes
//! (and external string data) owned by exactly one object add their size to
//! that object, so `global` or a Map shows what it really costs and the
//! `(system)` / `(array)` rows stop dominating the Summary.

use crate::meta::{EdgeKind, NodeKind};
use crate::snapshot::{HeapSnapshot, NodeIndex};

const UNVISITED: u32 = u32::MAX;
const MULTIPLE: u32 = u32::MAX - 1;

fn ownable(s: &HeapSnapshot, n: NodeIndex) -> bool {
    match s.kind(n) {
        NodeKind::Hidden | NodeKind::Array => true,
        NodeKind::Native => s.name(n) == "system / ExternalStringData",
        _ => false,
    }
}

/// Fold single-owner internal nodes into their owner, in place. Returns how
/// many nodes were folded. DevTools skips this when there is no user root
/// (snapshots taken with `exposeInternals`); so does the caller.
pub fn fold_shallow_sizes(s: &mut HeapSnapshot) -> usize {
    let owner = owners(s);
    apply(s, &owner)
}

/// Each node's owner: itself for non-ownable nodes, the single non-ownable
/// node that reaches it through ownable ones, or a marker (none, several).
/// Read-only, so it can run beside other read-only passes.
pub fn owners(s: &HeapSnapshot) -> Vec<u32> {
    let n = s.node_count();
    let mut owner: Vec<u32> = crate::mem::with_capacity(n);
    owner.extend((0..n as u32).map(|i| if ownable(s, i) { UNVISITED } else { i }));
    let mut stack: Vec<u32> = Vec::new();
    // Any processing order gives the same fixed point; this one keeps the stack short.
    for src in (0..n as u32).rev() {
        if owner[src as usize] != src {
            continue;
        }
        stack.push(src);
        while let Some(x) = stack.pop() {
            let o = owner[x as usize];
            for e in s.edges(x) {
                if s.edge_kind(e) == EdgeKind::Weak {
                    continue;
                }
                let t = s.edge_target(e);
                let ot = owner[t as usize];
                if ot == UNVISITED {
                    owner[t as usize] = o;
                    stack.push(t);
                } else if ot == t || ot == o || ot == MULTIPLE {
                    // Its own owner, already ours, or already shared.
                } else {
                    owner[t as usize] = MULTIPLE;
                    stack.push(t);
                }
            }
        }
    }
    owner
}

/// Move every single-owned node's size onto its owner (not onto the root or
/// synthetic nodes). Returns how many nodes were folded.
pub fn apply(s: &mut HeapSnapshot, owner: &[u32]) -> usize {
    let n = s.node_count();
    let root = s.root();
    let mut folded = 0;
    for i in 0..n as u32 {
        let o = owner[i as usize];
        if o == i || o == UNVISITED || o == MULTIPLE || o == root || s.kind(o) == NodeKind::Synthetic {
            continue;
        }
        let size = s.self_size(i);
        if size == 0 {
            continue;
        }
        let sum = s.self_size(o) + size;
        s.set_self_size(o, sum);
        s.set_self_size(i, 0);
        folded += 1;
    }
    folded
}
