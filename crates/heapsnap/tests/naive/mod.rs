//! Slow, obviously-correct reference computations for dominators and
//! retained sizes, written from the definitions (not from heapsnap's code):
//!
//! - essential edges and the page-owned set, from
//!   docs/devtools-semantics.md §2 (DevTools) or §12 (v8-heap-parser);
//! - the flow graph dominators are computed on: essential edges, plus an
//!   edge from the root to every node DevTools hangs under the root
//!   (`crates/heapsnap/src/dominators.rs`: nodes with no essential retainer,
//!   and then every node still unreached, whose own edges are not followed);
//! - d dominates v iff v cannot be reached from the root once d is removed;
//!   the retained size of d is the self size of everything it dominates.
// Index loops on purpose: the reference algorithms follow the papers, index by index.
#![allow(clippy::needless_range_loop)]
#![allow(dead_code)]

use heapsnap::meta::{EdgeKind, NodeKind};
use heapsnap::HeapSnapshot;

/// Which rule set to mirror.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rules {
    /// Chrome DevTools (heapsnap's target).
    DevTools,
    /// v8-heap-parser 1.1.0: no WeakMap rule, no self-edge rule; "weak-only"
    /// nodes are those whose retainers are all weak or shortcut edges.
    V8HeapParser,
}

/// `N / part of key (K @k) -> value (V @v) pair in WeakMap (table @T)`: T.
pub fn weakmap_table_id(name: &str) -> Option<u32> {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = name[digits..].strip_prefix(" / part of key (")?;
    let (_, after_key) = rest.split_once(") -> value (")?;
    let marker = ") pair in WeakMap (table @";
    let at = after_key.rfind(marker)?;
    let id = after_key[at + marker.len()..].strip_suffix(')')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The key part must end with " @digits".
    let key_part = &rest[..rest.len() - after_key.len() - ") -> value (".len()];
    let (_, key_id) = key_part.rsplit_once(" @")?;
    if key_id.is_empty() || !key_id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value_part = &after_key[..at];
    let (_, value_id) = value_part.rsplit_once(" @")?;
    if value_id.is_empty() || !value_id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

/// Every edge as (source, edge index, target), in storage order.
pub fn edge_list(s: &HeapSnapshot) -> Vec<(u32, u32, u32)> {
    let mut out = Vec::with_capacity(s.edge_count());
    for n in s.nodes() {
        for e in s.edges(n) {
            out.push((n, e, s.edge_target(e)));
        }
    }
    out
}

/// Does the root have a user root (a non-synthetic child)?
pub fn has_user_roots(s: &HeapSnapshot) -> bool {
    s.edges(s.root()).any(|e| {
        let t = s.edge_target(e);
        s.kind(t) != NodeKind::Synthetic || s.name(t) == "(Document DOM trees)"
    })
}

/// Reachable without weak edges from the targets of the root's shortcut edges.
pub fn page_owned(s: &HeapSnapshot) -> Vec<bool> {
    let mut owned = vec![false; s.node_count()];
    let mut todo: Vec<u32> = s.edges(s.root()).filter(|&e| s.edge_kind(e) == EdgeKind::Shortcut).map(|e| s.edge_target(e)).collect();
    while let Some(n) = todo.pop() {
        if owned[n as usize] {
            continue;
        }
        owned[n as usize] = true;
        for e in s.edges(n) {
            if s.edge_kind(e) != EdgeKind::Weak {
                todo.push(s.edge_target(e));
            }
        }
    }
    owned
}

/// The essential-edge flag of every edge under `rules`. `page` is None when
/// the page-owned rule does not apply (heapsnap skips it without user roots).
pub fn essential(s: &HeapSnapshot, page: Option<&[bool]>, rules: Rules) -> Vec<bool> {
    let root = s.root();
    let mut out = vec![false; s.edge_count()];
    for (src, e, dst) in edge_list(s) {
        let kind = s.edge_kind(e);
        let mut ok = kind != EdgeKind::Weak && !(kind == EdgeKind::Shortcut && src != root);
        if let Some(p) = page {
            if src != root && p[dst as usize] && !p[src as usize] {
                ok = false;
            }
        }
        if rules == Rules::DevTools {
            if src == dst {
                ok = false;
            }
            if kind == EdgeKind::Internal {
                if let Some(table) = weakmap_table_id(&s.edge_name_string(e)) {
                    if table == s.id(src) {
                        ok = false;
                    }
                }
            }
        }
        out[e as usize] = ok;
    }
    out
}

/// The flow graph the dominators are defined on, as adjacency lists.
pub struct FlowGraph {
    pub succ: Vec<Vec<u32>>,
    pub root: u32,
}

fn reach(succ: &[Vec<u32>], from: &[u32], skip: Option<u32>, seen: &mut [bool]) {
    let mut todo: Vec<u32> = from.iter().copied().filter(|&x| Some(x) != skip).collect();
    for &x in &todo {
        seen[x as usize] = true;
    }
    while let Some(x) = todo.pop() {
        for &t in &succ[x as usize] {
            if Some(t) != skip && !seen[t as usize] {
                seen[t as usize] = true;
                todo.push(t);
            }
        }
    }
}

pub fn flow_graph(s: &HeapSnapshot, ess: &[bool], rules: Rules) -> FlowGraph {
    let n = s.node_count();
    let root = s.root();
    let mut succ: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (src, e, dst) in edge_list(s) {
        if ess[e as usize] {
            succ[src as usize].push(dst);
        }
    }
    // Nodes hung under the root whose edges are followed ("weak-only").
    let weak_only: Vec<bool> = match rules {
        Rules::DevTools => {
            let mut has = vec![false; n];
            for (_, e, dst) in edge_list(s) {
                if ess[e as usize] {
                    has[dst as usize] = true;
                }
            }
            has.iter().map(|&h| !h).collect()
        }
        Rules::V8HeapParser => {
            let mut strong = vec![false; n];
            for (_, e, dst) in edge_list(s) {
                if !matches!(s.edge_kind(e), EdgeKind::Weak | EdgeKind::Shortcut) {
                    strong[dst as usize] = true;
                }
            }
            strong.iter().map(|&h| !h).collect()
        }
    };
    let mut seen = vec![false; n];
    reach(&succ, &[root], None, &mut seen);
    let mut extra: Vec<u32> = (0..n as u32).filter(|&v| v != root && !seen[v as usize] && weak_only[v as usize]).collect();
    reach(&succ, &extra, None, &mut seen);
    // Everything else: under the root, its own edges not followed.
    let leftovers: Vec<u32> = (0..n as u32).filter(|&v| !seen[v as usize]).collect();
    for &v in &leftovers {
        succ[v as usize].clear();
    }
    extra.extend(leftovers);
    succ[root as usize].extend(extra);
    FlowGraph { succ, root }
}

impl FlowGraph {
    /// Nodes reachable from the root when `removed` is taken out.
    pub fn reachable_without(&self, removed: Option<u32>) -> Vec<bool> {
        let mut seen = vec![false; self.succ.len()];
        if removed != Some(self.root) {
            reach(&self.succ, &[self.root], removed, &mut seen);
        }
        seen
    }

    /// Retained size of `d`: self sizes of `d` and every node that the root
    /// can no longer reach without it.
    pub fn retained(&self, d: u32, self_size: impl Fn(u32) -> u64) -> u64 {
        let seen = self.reachable_without(Some(d));
        (0..self.succ.len() as u32).filter(|&v| !seen[v as usize]).map(self_size).sum()
    }

    /// Immediate dominators by the definition: O(N * (N + E)), for small graphs.
    pub fn idoms(&self) -> Vec<u32> {
        let n = self.succ.len();
        let all = self.reachable_without(None);
        assert!(all.iter().all(|&x| x), "the flow graph leaves a node unreachable");
        // dominated_by[d][v]: d dominates v (d != v).
        let dominated_by: Vec<Vec<bool>> = (0..n as u32)
            .map(|d| {
                let seen = self.reachable_without(Some(d));
                (0..n).map(|v| v != d as usize && !seen[v]).collect()
            })
            .collect();
        let strict_doms = |v: usize| -> Vec<usize> { (0..n).filter(|&d| dominated_by[d][v]).collect() };
        (0..n)
            .map(|v| {
                if v as u32 == self.root {
                    return self.root;
                }
                // Dominators form a chain: the closest one has the most dominators itself.
                let doms = strict_doms(v);
                let best = doms.iter().copied().max_by_key(|&d| strict_doms(d).len()).expect("no dominator");
                best as u32
            })
            .collect()
    }
}

/// DevTools' own dominator computation, transcribed literally from the
/// pseudo-code in docs/devtools-semantics.md §3 (Lengauer-Tarjan, simple
/// link/eval, its three numbering phases and its quirks), for comparison.
/// `ess` is the essential flag per edge. Returns the dominator per ordinal.
pub fn devtools_lengauer_tarjan(s: &HeapSnapshot, ess: &[bool]) -> Vec<u32> {
    let n_nodes = s.node_count();
    let size = n_nodes + 1;
    // 1-based vertex numbers: v = ordinal + 1; 0 is the null sentinel.
    let first = |v: usize| s.edges((v - 1) as u32).start as usize;
    let end = |v: usize| s.edges((v - 1) as u32).end as usize;
    let target = |e: usize| s.edge_target(e as u32) as usize + 1;
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); size];
    for (src, e, dst) in edge_list(s) {
        if ess[e as usize] {
            preds[dst as usize + 1].push(src as usize + 1);
        }
    }
    let (mut parent, mut ancestor, mut vertex, mut label, mut semi, mut dom) =
        (vec![0usize; size], vec![0usize; size], vec![0usize; size], vec![0usize; size], vec![0usize; size], vec![0usize; size]);
    let mut bucket: Vec<Vec<usize>> = vec![Vec::new(); size];
    let mut next = vec![0usize; size];
    let mut n = 0usize;
    let mut dfs =
        |start: usize, parent: &mut Vec<usize>, vertex: &mut Vec<usize>, label: &mut Vec<usize>, semi: &mut Vec<usize>, n: &mut usize| {
            next[start] = first(start);
            let mut v = start;
            while v != 0 {
                if semi[v] == 0 {
                    *n += 1;
                    semi[v] = *n;
                    vertex[*n] = v;
                    label[v] = v;
                }
                let mut go = parent[v];
                while next[v] < end(v) {
                    let e = next[v];
                    if ess[e] && semi[target(e)] == 0 {
                        let w = target(e);
                        parent[w] = v;
                        next[w] = first(w);
                        go = w;
                        break;
                    }
                    next[v] += 1;
                }
                v = go;
            }
        };
    let r = s.root() as usize + 1;
    dfs(r, &mut parent, &mut vertex, &mut label, &mut semi, &mut n);
    if n < n_nodes {
        for v in 1..=n_nodes {
            if semi[v] == 0 && preds[v].is_empty() {
                parent[v] = r;
                dfs(v, &mut parent, &mut vertex, &mut label, &mut semi, &mut n);
            }
        }
    }
    if n < n_nodes {
        for v in 1..=n_nodes {
            if semi[v] == 0 {
                parent[v] = r;
                n += 1;
                semi[v] = n;
                vertex[n] = v;
                label[v] = v;
            }
        }
    }
    fn eval(v: usize, ancestor: &mut [usize], label: &mut [usize], semi: &[usize]) -> usize {
        if ancestor[v] == 0 {
            return v;
        }
        let mut chain = Vec::new();
        let mut x = v;
        while ancestor[ancestor[x]] != 0 {
            chain.push(x);
            x = ancestor[x];
        }
        while let Some(x) = chain.pop() {
            let a = ancestor[x];
            if semi[label[a]] < semi[label[x]] {
                label[x] = label[a];
            }
            ancestor[x] = ancestor[a];
        }
        label[v]
    }
    for i in (2..=n).rev() {
        let w = vertex[i];
        let mut orphan = true;
        for k in 0..preds[w].len() {
            orphan = false;
            let u = eval(preds[w][k], &mut ancestor, &mut label, &semi);
            if semi[u] < semi[w] {
                semi[w] = semi[u];
            }
        }
        if orphan {
            semi[w] = semi[r];
        }
        bucket[vertex[semi[w]]].push(w);
        ancestor[w] = parent[w];
        let pw = parent[w];
        for v in std::mem::take(&mut bucket[pw]) {
            let u = eval(v, &mut ancestor, &mut label, &semi);
            dom[v] = if semi[u] < semi[v] { u } else { pw };
        }
    }
    dom[0] = r;
    dom[r] = r;
    for i in 2..=n {
        let w = vertex[i];
        if dom[w] != vertex[semi[w]] {
            dom[w] = dom[dom[w]];
        }
    }
    (1..=n_nodes).map(|v| (dom[v] - 1) as u32).collect()
}
