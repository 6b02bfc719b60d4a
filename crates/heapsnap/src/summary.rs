//! The Summary view: per class, how many objects, their shallow size and
//! the memory they retain, without counting nested objects of the same
//! class twice.

use crate::classes::{ClassKey, Classes};
use crate::snapshot::{HeapSnapshot, NodeIndex};

#[derive(Clone, Debug)]
pub struct ClassSummary {
    pub key: ClassKey,
    pub count: u64,
    pub shallow_size: u64,
    pub retained_size: u64,
    /// The smallest distance of any member (DevTools' class distance).
    pub distance: u32,
}

/// Children of every node in the dominator tree (CSR).
pub struct DominatorTree {
    pub first_child: Vec<u32>,
    pub children: Vec<NodeIndex>,
}

impl DominatorTree {
    pub fn from_idom(idom: &[NodeIndex], root: NodeIndex) -> Self {
        let n = idom.len();
        let mut first_child = crate::mem::filled(n + 2, 0u32);
        for (v, &d) in idom.iter().enumerate() {
            if v as u32 != root {
                first_child[d as usize + 2] += 1;
            }
        }
        let mut sum = 0;
        for c in &mut first_child[2..] {
            sum += *c;
            *c = sum;
        }
        let mut children = crate::mem::filled(n.saturating_sub(1), 0u32);
        for (v, &d) in idom.iter().enumerate() {
            if v as u32 != root {
                let slot = &mut first_child[d as usize + 1];
                children[*slot as usize] = v as u32;
                *slot += 1;
            }
        }
        first_child.pop();
        DominatorTree { first_child, children }
    }
    pub fn children(&self, n: NodeIndex) -> &[NodeIndex] {
        &self.children[self.first_child[n as usize] as usize..self.first_child[n as usize + 1] as usize]
    }
}

/// Count, shallow and retained size per class. Nodes of self size 0 are left
/// out, as in DevTools. A node's retained size is added to its class only if
/// no dominator-tree ancestor of the same class was added already.
pub fn class_summaries(s: &HeapSnapshot, classes: &Classes, tree: &DominatorTree, retained: &[u64]) -> Vec<ClassSummary> {
    let count = || {
        let mut counts = vec![(0u64, 0u64); classes.keys.len()];
        for n in s.nodes() {
            let size = s.self_size(n);
            if size != 0 {
                let c = &mut counts[classes.class_of(n) as usize];
                c.0 += 1;
                c.1 += size;
            }
        }
        counts
    };
    // Depth-first over the dominator tree, with how many counted ancestors each class has.
    let walk = || {
        let mut retained_of = vec![0u64; classes.keys.len()];
        let mut active = vec![0u32; classes.keys.len()];
        // Stack entries: a node to enter, or (with bit 32 set) a class to release.
        const RELEASE: u64 = 1 << 32;
        let mut stack: Vec<u64> = vec![s.root() as u64];
        while let Some(top) = stack.pop() {
            if top & RELEASE != 0 {
                active[(top & !RELEASE) as usize] -= 1;
                continue;
            }
            let n = top as u32;
            let c = classes.class_of(n) as usize;
            let kids = tree.children(n);
            if active[c] == 0 && s.self_size(n) != 0 {
                retained_of[c] += retained[n as usize];
                if !kids.is_empty() {
                    active[c] += 1;
                    stack.push(c as u64 | RELEASE);
                }
            }
            stack.extend(kids.iter().map(|&k| k as u64));
        }
        retained_of
    };
    // Counts and shallow sizes on a second core, beside the tree walk.
    let (counts, retained_of) = if crate::limits::current().parallel() {
        std::thread::scope(|scope| {
            let counts = crate::limits::spawn_scoped(scope, count);
            let retained_of = walk();
            (counts.join().expect("class count thread panicked"), retained_of)
        })
    } else {
        (count(), walk())
    };
    let mut rows: Vec<ClassSummary> = classes
        .keys
        .iter()
        .zip(counts.iter().zip(&retained_of))
        .map(|(k, (&(count, shallow_size), &retained_size))| ClassSummary {
            key: k.clone(),
            count,
            shallow_size,
            retained_size,
            distance: u32::MAX,
        })
        .collect();
    rows.retain(|r| r.count > 0);
    rows
}

/// Each class's smallest member distance (nodes of self size 0 left out, as
/// in the Summary), without a per-node distance array.
pub fn class_distances(s: &HeapSnapshot, classes: &Classes) -> Vec<u32> {
    let mut min_of_class = vec![crate::distances::UNREACHABLE; classes.keys.len()];
    crate::distances::visit(s, |n, d| {
        if s.self_size(n) != 0 {
            let c = classes.class_of(n) as usize;
            if d < min_of_class[c] {
                min_of_class[c] = d;
            }
        }
    });
    min_of_class
}

/// Fill in each row's class distance from `class_distances`.
pub fn apply_distances(rows: &mut [ClassSummary], classes: &Classes, min_of_class: &[u32]) {
    let by_key: std::collections::HashMap<&ClassKey, usize> = classes.keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    for r in rows.iter_mut() {
        if let Some(&c) = by_key.get(&r.key) {
            r.distance = min_of_class[c];
        }
    }
}
