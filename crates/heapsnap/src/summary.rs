//! The Summary view: per class, how many objects, their shallow size and
//! the memory they retain, without counting nested objects of the same
//! class twice.

use crate::classes::{ClassKey, Classes};
use crate::snapshot::{HeapSnapshot, NodeIndex};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

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
///
/// The tree walk waits on memory at nearly every node, so with two threads
/// the tree's top is cut into many small pieces (see `cut`) that both
/// threads take from one queue, heaviest first; the counts and shallow
/// sizes are taken on the second thread before it joins in.
pub fn class_summaries(s: &HeapSnapshot, classes: &Classes, tree: &DominatorTree, retained: &[u64]) -> Vec<ClassSummary> {
    let k = classes.keys.len();
    let count = || {
        let mut counts = vec![(0u64, 0u64); k];
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
    let walker = Walker { s, classes, tree, retained };
    let (counts, retained_of) = if crate::limits::current().parallel() {
        let cut = cut(&walker);
        let next = AtomicUsize::new(0);
        let mut retained_of = cut.top_retained.clone();
        let (counts, theirs, ours) = std::thread::scope(|scope| {
            let other = crate::limits::spawn_scoped(scope, || {
                let counts = count();
                (counts, walker.walk_pieces(&cut, &next))
            });
            let ours = walker.walk_pieces(&cut, &next);
            let (counts, theirs) = other.join().expect("class walk thread panicked");
            (counts, theirs, ours)
        });
        for (total, (a, b)) in retained_of.iter_mut().zip(theirs.iter().zip(&ours)) {
            *total += a + b;
        }
        (counts, retained_of)
    } else {
        let mut retained_of = vec![0u64; k];
        walker.walk(s.root(), &mut vec![0u32; k], &mut retained_of, &mut Vec::new());
        (count(), retained_of)
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

/// What the class walk reads.
struct Walker<'a> {
    s: &'a HeapSnapshot,
    classes: &'a Classes,
    tree: &'a DominatorTree,
    retained: &'a [u64],
}

/// A node of the cut's top: its class, whether it counted (then it holds
/// its class for everything below it), and its parent in the top.
#[derive(Clone, Copy)]
struct TopNode {
    class: u32,
    counted: bool,
    parent: Option<u32>,
}

/// Sibling subtrees whose parent is top node `under`, walked as one piece.
struct Piece<'a> {
    weight: u64,
    under: u32,
    kids: &'a [NodeIndex],
}

/// The dominator tree cut for the walkers: its top (every node retaining
/// more than a 256th of the heap, each counted here) and, hanging off it,
/// pieces of at most that weight.
struct Cut<'a> {
    top: Vec<TopNode>,
    /// Retained bytes per class counted in the top.
    top_retained: Vec<u64>,
    /// Heaviest first.
    pieces: Vec<Piece<'a>>,
}

/// Retained bytes are the weight: a piece this light holds few nodes too
/// (nearly every node has a size), so no piece keeps one thread long.
const PIECES: u64 = 256;

fn cut<'a>(w: &Walker<'a>) -> Cut<'a> {
    let (s, tree) = (w.s, w.tree);
    let root = s.root();
    let limit = (w.retained[root as usize] / PIECES).max(1);
    let mut top: Vec<TopNode> = Vec::new();
    let mut top_retained = vec![0u64; w.classes.keys.len()];
    let mut pieces: Vec<Piece<'a>> = Vec::new();
    let mut heavy: Vec<(NodeIndex, Option<u32>)> = vec![(root, None)];
    while let Some((n, parent)) = heavy.pop() {
        let class = w.classes.class_of(n);
        let held = |mut p: Option<u32>| {
            while let Some(i) = p {
                let t: TopNode = top[i as usize];
                if t.counted && t.class == class {
                    return true;
                }
                p = t.parent;
            }
            false
        };
        let counted = s.self_size(n) != 0 && !held(parent);
        if counted {
            top_retained[class as usize] += w.retained[n as usize];
        }
        let me = top.len() as u32;
        top.push(TopNode { class, counted, parent });
        // Runs of light children become pieces; heavy ones join the top.
        let kids = tree.children(n);
        let (mut start, mut weight) = (0, 0u64);
        for (i, &kid) in kids.iter().enumerate() {
            let r = w.retained[kid as usize];
            if r > limit {
                if start < i {
                    pieces.push(Piece { weight, under: me, kids: &kids[start..i] });
                }
                heavy.push((kid, Some(me)));
                (start, weight) = (i + 1, 0);
            } else if weight + r > limit && start < i {
                pieces.push(Piece { weight, under: me, kids: &kids[start..i] });
                (start, weight) = (i, r);
            } else {
                weight += r;
            }
        }
        if start < kids.len() {
            pieces.push(Piece { weight, under: me, kids: &kids[start..] });
        }
    }
    pieces.sort_unstable_by_key(|p| std::cmp::Reverse(p.weight));
    Cut { top, top_retained, pieces }
}

impl Walker<'_> {
    /// Retained bytes per class over the pieces this thread takes from the
    /// queue, each walked with the classes its part of the top holds.
    fn walk_pieces(&self, cut: &Cut<'_>, next: &AtomicUsize) -> Vec<u64> {
        let k = self.classes.keys.len();
        let mut retained_of = vec![0u64; k];
        let mut active = vec![0u32; k];
        let mut stack: Vec<u64> = Vec::new();
        let mut held: Vec<usize> = Vec::new();
        loop {
            let i = next.fetch_add(1, Relaxed);
            let Some(piece) = cut.pieces.get(i) else { break };
            held.clear();
            let mut p = Some(piece.under);
            while let Some(i) = p {
                let t = cut.top[i as usize];
                if t.counted {
                    held.push(t.class as usize);
                }
                p = t.parent;
            }
            held.iter().for_each(|&c| active[c] += 1);
            for &kid in piece.kids {
                self.walk(kid, &mut active, &mut retained_of, &mut stack);
            }
            held.iter().for_each(|&c| active[c] -= 1);
        }
        retained_of
    }

    /// Depth-first under `top`, with how many counted ancestors each class has.
    fn walk(&self, top: NodeIndex, active: &mut [u32], retained_of: &mut [u64], stack: &mut Vec<u64>) {
        // Stack entries: a node to enter, or (with bit 32 set) a class to release.
        const RELEASE: u64 = 1 << 32;
        stack.push(top as u64);
        while let Some(entry) = stack.pop() {
            if entry & RELEASE != 0 {
                active[(entry & !RELEASE) as usize] -= 1;
                continue;
            }
            let n = entry as u32;
            let c = self.classes.class_of(n) as usize;
            let kids = self.tree.children(n);
            if active[c] == 0 && self.s.self_size(n) != 0 {
                retained_of[c] += self.retained[n as usize];
                if !kids.is_empty() {
                    active[c] += 1;
                    stack.push(c as u64 | RELEASE);
                }
            }
            stack.extend(kids.iter().map(|&k| k as u64));
        }
    }
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
