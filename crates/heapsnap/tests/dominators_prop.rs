//! Property test: dominators and retained sizes of random small heaps,
//! against a naive computation from the definition (`naive`).
//!
//! Each case is written as real `.heapsnapshot` JSON text (7 node fields,
//! node 0 the synthetic root, usually a global object behind a root
//! shortcut edge, random nodes and edges of every type including weak,
//! shortcut, self edges and WeakMap entry pairs) and read by
//! `heapsnap::parse_snapshot`, so the parser's layout handling is part of
//! what is checked.
//!
//! heapsnap: `dominators::compute(&snap, &flags::essential_edges(&snap, page))`
//! with `page` = `flags::page_owned` when the snapshot has a user root
//! (as `analyze` does), and `analyze(.., fold_shallow_sizes: false)`.
//! Reference: essential edges and the page-owned set rebuilt from
//! docs/devtools-semantics.md §2; the flow graph of `naive::flow_graph`
//! (essential edges, the root -> every node without an essential retainer,
//! then the root -> every node still unreached, whose edges are dropped, as
//! `dominators.rs` documents); d dominates v iff removing d cuts v off the
//! root; idom(v) = the closest strict dominator; retained(d) = the self
//! sizes of d and all it dominates.
// Index loops on purpose: node and edge indexes are what the assertions report.
#![allow(clippy::needless_range_loop)]

mod naive;

use heapsnap::{analyze, AnalysisOptions, HeapSnapshot, ParseOptions};
use naive::Rules;
use proptest::prelude::*;

const NODE_TYPES: [&str; 16] = [
    "hidden",
    "array",
    "string",
    "object",
    "code",
    "closure",
    "regexp",
    "number",
    "native",
    "synthetic",
    "concatenated string",
    "sliced string",
    "symbol",
    "bigint",
    "object shape",
    "wasm object",
];
const EDGE_TYPES: [&str; 7] = ["context", "element", "property", "internal", "hidden", "shortcut", "weak"];
const HIDDEN: usize = 0;
const ARRAY: usize = 1;
const OBJECT: usize = 3;
const SYNTHETIC: usize = 9;
const E_ELEMENT: usize = 1;
const E_INTERNAL: usize = 3;
const E_HIDDEN: usize = 4;
const E_SHORTCUT: usize = 5;
const E_WEAK: usize = 6;

/// Names nodes and edges draw from (index 0 is the root's empty name).
const NAMES: [&str; 10] = ["", "Object", "global", "a", "b", "(GC roots)", "Array", "x", "__proto__", "system / Context"];

#[derive(Clone, Debug)]
struct GEdge {
    kind: usize,
    /// Target node: this modulo the node count.
    to: usize,
    name: usize,
}

#[derive(Clone, Debug)]
struct GNode {
    kind: usize,
    size: u64,
    name: usize,
    edges: Vec<GEdge>,
}

#[derive(Clone, Debug)]
struct GHeap {
    nodes: Vec<GNode>,
    /// The root -> node 1 shortcut (node 1 is then the global object).
    global_shortcut: bool,
    /// (key, value, table) triples written as WeakMap entry edges.
    weakmaps: Vec<(usize, usize, usize)>,
}

fn edge_strategy() -> impl Strategy<Value = GEdge> {
    let kind = prop_oneof![
        4 => Just(2usize), // property
        2 => Just(E_ELEMENT),
        2 => Just(E_INTERNAL),
        1 => Just(E_HIDDEN),
        1 => Just(0usize), // context
        2 => Just(E_WEAK),
        1 => Just(E_SHORTCUT),
    ];
    (kind, any::<usize>(), 0..NAMES.len()).prop_map(|(kind, to, name)| GEdge { kind, to, name })
}

fn node_strategy() -> impl Strategy<Value = GNode> {
    let kind = prop_oneof![
        5 => Just(OBJECT),
        2 => Just(HIDDEN),
        2 => Just(ARRAY),
        1 => Just(2usize), // string
        1 => Just(5usize), // closure
        1 => Just(4usize), // code
        1 => Just(8usize), // native
        1 => Just(SYNTHETIC),
        1 => 0..NODE_TYPES.len(),
    ];
    // Zero, small, just below and at the 32-bit limit, and above it (a 5 GiB ArrayBuffer).
    let size =
        prop_oneof![2 => Just(0u64), 12 => 1..2000u64, 1 => Just(u32::MAX as u64 - 7), 1 => Just(u32::MAX as u64), 1 => Just(5u64 << 30)];
    (kind, size, 0..NAMES.len(), prop::collection::vec(edge_strategy(), 0..5)).prop_map(|(kind, size, name, edges)| GNode {
        kind,
        size,
        name,
        edges,
    })
}

fn heap_strategy() -> impl Strategy<Value = GHeap> {
    (
        prop::collection::vec(node_strategy(), 1..40),
        prop::bool::weighted(0.85),
        prop::collection::vec((any::<usize>(), any::<usize>(), any::<usize>()), 0..3),
    )
        .prop_map(|(nodes, global_shortcut, weakmaps)| GHeap { nodes, global_shortcut, weakmaps })
}

/// Write the heap as `.heapsnapshot` text. Returns the text; edges come out
/// in node order, as in V8's files.
fn to_json(h: &GHeap) -> String {
    let n = h.nodes.len();
    let id = |i: usize| 2 * i as u64 + 1; // root @1
    let mut strings: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    // Per node: (type, name, id, self_size) and edges (type, name_or_index, target).
    let mut node_rows: Vec<(usize, usize, u64, u64)> = Vec::new();
    let mut edges: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new(); n];
    for (i, g) in h.nodes.iter().enumerate() {
        let (kind, name) = match i {
            0 => (SYNTHETIC, 0),
            1 if h.global_shortcut => (OBJECT, 2),
            _ => (g.kind, g.name),
        };
        node_rows.push((kind, name, id(i), g.size));
        for e in &g.edges {
            let name = if e.kind == E_ELEMENT || e.kind == E_HIDDEN { e.name * 3 + i } else { e.name };
            edges[i].push((e.kind, name, e.to % n));
        }
    }
    if h.global_shortcut && n > 1 {
        edges[0].insert(0, (E_SHORTCUT, 2, 1));
    }
    for (k, v, t) in &h.weakmaps {
        let (k, v, t) = (k % n, v % n, t % n);
        let part = format!(" / part of key (Object @{}) -> value (Object @{}) pair in WeakMap (table @{})", id(k), id(v), id(t));
        strings.push(format!("1{part}"));
        edges[k].push((E_INTERNAL, strings.len() - 1, v));
        strings.push(format!("3{part}"));
        edges[t].push((E_INTERNAL, strings.len() - 1, v));
    }
    let nf = 7;
    let mut nodes_txt = Vec::new();
    for (i, &(kind, name, idv, size)) in node_rows.iter().enumerate() {
        nodes_txt.push(format!("{kind},{name},{idv},{size},{},0,0", edges[i].len()));
    }
    let mut edges_txt = Vec::new();
    for list in &edges {
        for &(kind, name, to) in list {
            edges_txt.push(format!("{kind},{name},{}", to * nf));
        }
    }
    let edge_count: usize = edges.iter().map(Vec::len).sum();
    let quoted = |list: &[&str]| list.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(",");
    format!(
        concat!(
            "{{\"snapshot\":{{\"meta\":{{\"node_fields\":[\"type\",\"name\",\"id\",\"self_size\",\"edge_count\",\"trace_node_id\",\"detachedness\"],",
            "\"node_types\":[[{}],\"string\",\"number\",\"number\",\"number\",\"number\",\"number\"],",
            "\"edge_fields\":[\"type\",\"name_or_index\",\"to_node\"],",
            "\"edge_types\":[[{}],\"string_or_number\",\"node\"],",
            "\"trace_function_info_fields\":[],\"trace_node_fields\":[],\"sample_fields\":[],",
            "\"location_fields\":[\"object_index\",\"script_id\",\"line\",\"column\"]}},",
            "\"node_count\":{},\"edge_count\":{},\"trace_function_count\":0}},\n",
            "\"nodes\":[{}],\n\"edges\":[{}],\n",
            "\"trace_function_infos\":[],\"trace_tree\":[],\"samples\":[],\"locations\":[],\n",
            "\"strings\":[{}]}}"
        ),
        quoted(&NODE_TYPES),
        quoted(&EDGE_TYPES),
        n,
        edge_count,
        nodes_txt.join(",\n"),
        edges_txt.join(",\n"),
        strings.iter().map(|s| serde_json::to_string(s).unwrap()).collect::<Vec<_>>().join(",\n"),
    )
}

fn parse(text: &str) -> HeapSnapshot {
    heapsnap::parse_snapshot(Box::new(std::io::Cursor::new(text.as_bytes().to_vec())), ParseOptions { threads: 1, ..Default::default() })
        .unwrap_or_else(|e| panic!("generated snapshot does not parse: {e}\n{text}"))
}

fn check(h: &GHeap) -> Result<(), TestCaseError> {
    // Take the two-thread paths (predecessor lists, retainer counts) even
    // on these small graphs; other test files keep the one-thread ones.
    heapsnap::with_limits(heapsnap::Limits { parallel_min: Some(2), ..Default::default() }, || check_all(h))
}

fn check_all(h: &GHeap) -> Result<(), TestCaseError> {
    let text = to_json(h);
    let mut s = parse(&text);
    prop_assert_eq!(s.node_count(), h.nodes.len());

    // Essential edges and page-owned set: heapsnap vs the reference.
    let users = heapsnap::flags::user_roots(&s);
    prop_assert_eq!(!users.is_empty(), naive::has_user_roots(&s));
    let page = if users.is_empty() { None } else { Some(heapsnap::flags::page_owned(&s)) };
    let naive_page = naive::page_owned(&s);
    if let Some(p) = &page {
        for v in 0..s.node_count() {
            prop_assert_eq!(p.get(v), naive_page[v], "page-owned flag of node {}\n{}", v, text);
        }
    }
    let essential = heapsnap::flags::essential_edges(&s, page.as_ref());
    let naive_ess = naive::essential(&s, page.as_ref().map(|_| naive_page.as_slice()), Rules::DevTools);
    for e in 0..s.edge_count() {
        prop_assert_eq!(essential.get(e), naive_ess[e], "essential flag of edge {}\n{}", e, text);
    }

    // Dominators.
    let dom = heapsnap::dominators::compute(&s, &essential);
    let flow = naive::flow_graph(&s, &naive_ess, Rules::DevTools);
    let want = flow.idoms();
    prop_assert_eq!(&dom.idom, &want, "immediate dominators (ours left, definition right)\n{}", text);
    // And DevTools' own algorithm, transcribed, agrees.
    let devtools = naive::devtools_lengauer_tarjan(&s, &naive_ess);
    prop_assert_eq!(&dom.idom, &devtools, "immediate dominators (ours left, DevTools' algorithm right)\n{}", text);

    // Retained sizes.
    let retained = dom.retained_sizes(|n| s.self_size(n));
    let want_retained: Vec<u64> = (0..s.node_count() as u32).map(|d| flow.retained(d, |v| s.self_size(v))).collect();
    prop_assert_eq!(&retained, &want_retained, "retained sizes\n{}", text);
    prop_assert_eq!(retained[0], s.total_size());

    // `analyze` without folding gives the same.
    let a = analyze(&mut s, AnalysisOptions { fold_shallow_sizes: false, ..Default::default() });
    prop_assert_eq!(&a.idom, &want);
    prop_assert_eq!(&a.retained, &want_retained);

    // With folding: sizes move between nodes but the root still retains them all.
    let total = s.total_size();
    let b = analyze(&mut s, AnalysisOptions { fold_shallow_sizes: true, ..Default::default() });
    prop_assert_eq!(s.total_size(), total);
    prop_assert_eq!(b.retained[0], total);
    prop_assert_eq!(&b.idom, &want, "folding must not change dominators");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn dominators_match_the_definition(h in heap_strategy()) {
        check(&h)?;
    }
}

fn large_heap_strategy() -> impl Strategy<Value = GHeap> {
    (
        prop::collection::vec(node_strategy(), 200..3000),
        prop::bool::weighted(0.9),
        prop::collection::vec((any::<usize>(), any::<usize>(), any::<usize>()), 0..20),
    )
        .prop_map(|(nodes, global_shortcut, weakmaps)| GHeap { nodes, global_shortcut, weakmaps })
}

/// Retained sizes from an immediate-dominator array, summing children into
/// parents deepest first.
fn retained_from_idom(idom: &[u32], self_size: impl Fn(u32) -> u64) -> Vec<u64> {
    let n = idom.len();
    let mut depth = vec![u32::MAX; n];
    depth[0] = 0;
    for v in 0..n {
        let mut chain = Vec::new();
        let mut x = v;
        while depth[x] == u32::MAX {
            chain.push(x);
            x = idom[x] as usize;
        }
        let mut d = depth[x];
        while let Some(c) = chain.pop() {
            d += 1;
            depth[c] = d;
        }
    }
    let mut order: Vec<usize> = (1..n).collect();
    order.sort_by_key(|&v| std::cmp::Reverse(depth[v]));
    let mut retained: Vec<u64> = (0..n as u32).map(self_size).collect();
    for v in order {
        retained[idom[v] as usize] += retained[v];
    }
    retained
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Bigger heaps (up to 3000 nodes), against DevTools' algorithm
    /// transcribed (the definition is too slow at this size).
    #[test]
    fn large_heaps_match_devtools_algorithm(h in large_heap_strategy()) {
        let text = to_json(&h);
        let mut s = parse(&text);
        let users = heapsnap::flags::user_roots(&s);
        let naive_page = naive::page_owned(&s);
        let page_rule = (!users.is_empty()).then_some(naive_page.as_slice());
        let ess = naive::essential(&s, page_rule, Rules::DevTools);
        let want = naive::devtools_lengauer_tarjan(&s, &ess);
        let a = analyze(&mut s, AnalysisOptions { fold_shallow_sizes: false, ..Default::default() });
        let bad: Vec<usize> = (0..want.len()).filter(|&v| a.idom[v] != want[v]).take(10).collect();
        prop_assert!(bad.is_empty(), "{} nodes' dominators differ, e.g. {:?}", bad.len(),
            bad.iter().map(|&v| (v, a.idom[v], want[v])).collect::<Vec<_>>());
        let want_retained = retained_from_idom(&want, |v| s.self_size(v));
        prop_assert_eq!(&a.retained, &want_retained);
    }
}

/// Hand-made cases for the rules the random graphs hit only rarely.
#[test]
fn fixed_cases() {
    let e = |kind: usize, to: usize| GEdge { kind, to, name: 3 };
    let node = |kind: usize, edges: Vec<GEdge>| GNode { kind, size: 10, name: 1, edges };
    let cases: Vec<GHeap> = vec![
        // A cycle kept only by a weak edge, pointing into the live heap.
        GHeap {
            nodes: vec![
                node(SYNTHETIC, vec![]),
                node(OBJECT, vec![e(2, 2), e(E_WEAK, 3)]),
                node(OBJECT, vec![e(2, 5)]),
                node(OBJECT, vec![e(2, 4)]),
                node(OBJECT, vec![e(2, 3), e(2, 5)]),
                node(OBJECT, vec![]),
            ],
            global_shortcut: true,
            weakmaps: vec![],
        },
        // An unreachable cycle, a self edge, a shortcut from a non-root node.
        GHeap {
            nodes: vec![
                node(SYNTHETIC, vec![e(E_ELEMENT, 5)]),
                node(OBJECT, vec![e(2, 2), e(E_SHORTCUT, 4)]),
                node(OBJECT, vec![e(2, 2), e(2, 4)]),
                node(OBJECT, vec![e(2, 6)]),
                node(OBJECT, vec![]),
                node(SYNTHETIC, vec![e(2, 4)]),
                node(OBJECT, vec![e(2, 3)]),
            ],
            global_shortcut: true,
            weakmaps: vec![],
        },
        // A WeakMap entry: the value is dominated by its key, not its table.
        GHeap {
            nodes: vec![
                node(SYNTHETIC, vec![]),
                node(OBJECT, vec![e(2, 2), e(2, 3)]),
                node(ARRAY, vec![]),
                node(OBJECT, vec![]),
                node(OBJECT, vec![]),
            ],
            global_shortcut: true,
            weakmaps: vec![(3, 4, 2)],
        },
        // No user root (only synthetic children): no page-owned rule, no folding.
        GHeap {
            nodes: vec![
                node(SYNTHETIC, vec![e(E_ELEMENT, 1)]),
                node(SYNTHETIC, vec![e(2, 2), e(2, 3)]),
                node(HIDDEN, vec![e(2, 3)]),
                node(ARRAY, vec![]),
            ],
            global_shortcut: false,
            weakmaps: vec![],
        },
    ];
    for h in &cases {
        check(h).unwrap_or_else(|e| panic!("{e}"));
    }
    // The WeakMap case, spelled out.
    let s = parse(&to_json(&cases[2]));
    let a = heapsnap::analyze(&mut { s }, AnalysisOptions { fold_shallow_sizes: false, ..Default::default() });
    assert_eq!(a.idom[4], 3, "WeakMap value under its key");
}
