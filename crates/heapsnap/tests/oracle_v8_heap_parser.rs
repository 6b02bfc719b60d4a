//! heapsnap against an independent implementation: the `v8-heap-parser`
//! crate (1.1.0, the engine of VS Code's heap snapshot viewer), on real
//! Node 20 snapshots of a few small programs.
//!
//! v8-heap-parser follows DevTools' older rules (docs/devtools-semantics.md
//! §12), so heapsnap runs with `fold_shallow_sizes: false` (raw self sizes)
//! and class names are mapped to its naming. The programs use no WeakMap and
//! no lone surrogates (v8-heap-parser has no WeakMap edge rule, and its
//! serde_json decoding rejects lone surrogates).
//!
//! Checked: the graph itself (ids, names, sizes, edges), the total self
//! size, per-class counts and self sizes, and every node's retained size.
//!
//! Retained sizes: about 20 nodes per snapshot differ (of 40k-300k), always
//! with v8-heap-parser's value too large: e.g. a builtin's Code
//! `disable` (56 bytes) is said to retain its FunctionTemplateInfo (144
//! more), which the root still reaches through the NativeContext's template
//! instantiation cache without passing through that Code, even under
//! v8-heap-parser's own edge rules. The cause is in its `build_dominators`
//! (graph.rs): after a node's dominator changes, only that node's direct
//! children are marked `affected` and recomputed, but a node's dominator
//! is the intersection of its retainers' whole dominator chains, so a node
//! whose retainer keeps its dominator while an ancestor of that retainer
//! moves up is never revisited and keeps a stale, too-deep dominator.
//! (Patched to recompute every node on every pass, v8-heap-parser agrees
//! with heapsnap on every node of these snapshots.) The test therefore
//! checks each difference against a slow reference built from the
//! definition (`naive`) and sorts it into one of two categories:
//! - v8hp's error: its value contradicts the definition under its own
//!   rules; asserted to be too large (never smaller than ours), as a stale,
//!   too-deep dominator makes it;
//! - a documented rule difference (§12: WeakMap table edges, self edges,
//!   weak-only nodes): its value matches the definition under its own
//!   rules, ours under DevTools' (asserted for every difference), so the
//!   two rule sets really differ there.
//!
//! In both, heapsnap's value must match the definition under DevTools'
//! rules, and the number of differences must stay small (at most 50 and
//! 0.1% of the nodes). The count per category is printed, not bounded.

mod common;
mod naive;

use common::*;
use heapsnap::meta::NodeKind;
use heapsnap::{analyze, AnalysisOptions, HeapSnapshot, NodeIndex};
use naive::Rules;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;

const ORACLE_NODE_MAJOR: u32 = 20;

/// Classes, arrays, maps, sets, closures, a cycle, symbols, bigints,
/// regexps, typed arrays, promises.
const APP: &str = r#"
class Order { constructor(id, customer) { this.id = 'order-' + id; this.customer = customer; this.lines = []; } }
class Customer { constructor(name) { this.name = name; this.orders = []; this.self = this; } }
class PriorityOrder extends Order { constructor(id, c) { super(id, c); this.priority = 'high'; } }
const customers = [];
for (let i = 0; i < 300; i++) customers.push(new Customer('customer-' + i));
globalThis.orders = new Map();
for (let i = 0; i < 2000; i++) {
  const c = customers[i % customers.length];
  const o = i % 10 === 0 ? new PriorityOrder(i, c) : new Order(i, c);
  o.lines.push({ sku: 'sku-' + (i % 50), qty: 'q' + i });
  c.orders.push(o);
  globalThis.orders.set(o.id, o);
}
globalThis.tags = new Set(['a', 'b', 'c'].map((x) => x + '-tag'));
globalThis.handlers = [];
for (let i = 0; i < 100; i++) {
  const captured = { n: 'captured-' + i };
  globalThis.handlers.push(function handler() { return captured; });
  globalThis.handlers.push(() => captured.n);
}
globalThis.sym = Symbol('leak-symbol');
globalThis.big = 12345678901234567890n;
globalThis.patterns = [/order-(\d+)/g, new RegExp('cust.*', 'i')];
globalThis.bytes = new Uint8Array(4096);
globalThis.buffer = Buffer.alloc(10000, 1);
globalThis.pending = new Promise(() => {});
"#;

/// Strings of every kind: concatenated, sliced, internalized, long, numbers.
const STRINGS: &str = r#"
globalThis.parts = [];
let acc = '';
for (let i = 0; i < 200; i++) { acc = acc + 'chunk-' + i + ';'; globalThis.parts.push(acc); }
const base = ['s', 'x'.repeat(3000)].join('');
globalThis.slices = [];
for (let i = 0; i < 100; i++) globalThis.slices.push(base.substring(i, i + 500));
globalThis.json = JSON.parse(JSON.stringify({ list: Array.from({ length: 300 }, (_, i) => ({ k: 'v' + i, n: i * 1.5 })) }));
globalThis.numbers = Array.from({ length: 500 }, (_, i) => i + 0.25);
globalThis.unicode = ['caf\u00e9', '\u4e2d\u6587', 'emoji \u{1F600}', 'tab\tquote"back\\'];
globalThis.long = Array.from({ length: 50 }, (_, i) => String(i).repeat(3000));
"#;

/// A larger heap (the snapshot is bigger than the parser's 16 MiB block, so
/// block boundaries and the threaded number parsing are exercised) with a
/// deep tree, shared subtrees and cross links.
const TREE: &str = r#"
class TreeNode { constructor(depth, label) { this.label = label; this.children = []; this.parent = null; this.depth = 'd' + depth; } }
function build(depth, label) {
  const n = new TreeNode(depth, label);
  if (depth < 6) for (let i = 0; i < 6; i++) { const c = build(depth + 1, label + '.' + i); c.parent = n; n.children.push(c); }
  return n;
}
globalThis.tree = build(0, 'root');
const shared = { shared: 'shared-state' };
let k = 0;
(function walk(n) { if (k++ % 3 === 0) n.shared = shared; n.children.forEach(walk); })(globalThis.tree);
globalThis.index = new Map();
(function walk(n) { if (n.children.length === 0) globalThis.index.set(n.label, n); n.children.forEach(walk); })(globalThis.tree);
"#;

struct Case {
    name: &'static str,
    path: PathBuf,
}

fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let node = require_node(ORACLE_NODE_MAJOR);
        let programs = [("app", APP), ("strings", STRINGS), ("tree", TREE)];
        // Generate in parallel: most of the time is Node starting and writing.
        let paths: Vec<PathBuf> = std::thread::scope(|sc| {
            let handles: Vec<_> = programs
                .iter()
                .map(|(name, prog)| {
                    let node = node.clone();
                    sc.spawn(move || shared_snapshot(&format!("oracle-{name}"), &node, prog))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        programs.iter().zip(paths).map(|((name, _), path)| Case { name, path }).collect()
    })
}

fn case(name: &str) -> &'static Case {
    cases().iter().find(|c| c.name == name).unwrap()
}

/// Both engines' view of one snapshot.
struct Pair {
    ours: HeapSnapshot,
    theirs: v8_heap_parser::Graph,
}

fn load(c: &Case) -> Pair {
    let bytes = std::fs::read(&c.path).unwrap();
    let theirs = v8_heap_parser::decode_slice(&bytes).unwrap_or_else(|e| panic!("v8-heap-parser cannot decode {}: {e}", c.path.display()));
    let ours = read(&c.path);
    Pair { ours, theirs }
}

/// v8-heap-parser's class name for a node, from heapsnap's class table.
fn v8hp_class_name(s: &HeapSnapshot, ours: &str, n: NodeIndex) -> String {
    match s.kind(n) {
        NodeKind::Closure => {
            assert_eq!(ours, "Function");
            "(closure)".into()
        }
        NodeKind::Regexp => {
            assert_eq!(ours, "RegExp");
            "(regexp)".into()
        }
        NodeKind::Symbol | NodeKind::ObjectShape | NodeKind::WasmObject | NodeKind::Other => "(unknown)".into(),
        NodeKind::Object | NodeKind::Native => {
            // Raw names: no `{a, b}` interfaces, no `<tag ...>` trimming.
            let raw = s.name(n);
            if raw == "Object" && s.kind(n) == NodeKind::Object {
                assert!(ours == "Object" || ours.starts_with('{'), "plain object class {ours:?}");
            } else {
                assert_eq!(ours, heapsnap::classes::object_class_name(raw));
            }
            raw.to_string()
        }
        _ => ours.to_string(),
    }
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
struct Agg {
    count: u64,
    self_size: u64,
}

fn check_basics(p: &Pair, ctx: &str) {
    let (s, g) = (&p.ours, &p.theirs);
    assert_eq!(s.node_count(), g.nodes().len(), "{ctx}: node count");
    assert_eq!(g.root_index, s.root() as usize, "{ctx}: root");
    let mut mismatched = Vec::new();
    for n in s.nodes() {
        let t = g.get_node(n as usize).unwrap();
        if (t.id, t.self_size, t.edge_count, t.name()) != (s.id(n), s.self_size(n), s.edge_count_of(n), s.name(n)) {
            mismatched.push(n);
        }
    }
    assert!(mismatched.is_empty(), "{ctx}: {} nodes differ, first {:?}", mismatched.len(), &mismatched[..mismatched.len().min(10)]);
    let ours_total = s.total_size();
    let theirs_total: u64 = g.nodes().iter().map(|n| n.weight.self_size).sum();
    assert_eq!(ours_total, theirs_total, "{ctx}: total self size");
    for n in s.nodes() {
        let mut kids: Vec<usize> = s.edges(n).map(|e| s.edge_target(e) as usize).collect();
        let mut theirs = g.children(n as usize);
        kids.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(kids, theirs, "{ctx}: children of node {n}");
    }
}

/// Per class: count and self size, with and without zero-size nodes. Runs
/// after `analyze(.., fold_shallow_sizes: false)`, which must leave sizes raw.
fn check_classes(p: &Pair, a: &heapsnap::Analysis, ctx: &str) {
    let s = &p.ours;
    let cls = heapsnap::classes::compute(s);
    // Per v8hp class name: all nodes (v8hp counts zero-size nodes too).
    let mut ours_all: BTreeMap<String, Agg> = BTreeMap::new();
    for n in s.nodes() {
        let name = v8hp_class_name(s, &cls.key_of(n).name, n);
        let a = ours_all.entry(name).or_default();
        a.count += 1;
        a.self_size += s.self_size(n);
    }
    let mut theirs_all: BTreeMap<String, Agg> = BTreeMap::new();
    let mut theirs_nonzero: BTreeMap<String, Agg> = BTreeMap::new();
    for g in p.theirs.get_class_groups(true) {
        let name = p.theirs.get_node(g.index).unwrap().class_name().to_string();
        let nonzero = g.nodes.iter().filter(|&&i| p.theirs.get_node(i).unwrap().self_size > 0).count() as u64;
        let prev = theirs_all.insert(name.clone(), Agg { count: g.nodes.len() as u64, self_size: g.self_size });
        assert!(prev.is_none(), "{ctx}: v8hp has two groups named {name:?}");
        if nonzero > 0 {
            theirs_nonzero.insert(name, Agg { count: nonzero, self_size: g.self_size });
        }
    }
    assert_maps_equal(&ours_all, &theirs_all, &format!("{ctx}: classes incl. zero-size nodes (ours vs v8-heap-parser)"));

    // heapsnap's own class table (rows keyed by name and location, zero-size
    // nodes left out), merged by v8hp name.
    let tree = heapsnap::summary::DominatorTree::from_idom(&a.idom, s.root());
    let rows = heapsnap::summary::class_summaries(s, &cls, &tree, &a.retained);
    let mut ours_rows: BTreeMap<String, Agg> = BTreeMap::new();
    let mut first_member: HashMap<&heapsnap::classes::ClassKey, NodeIndex> = HashMap::new();
    for n in s.nodes() {
        first_member.entry(cls.key_of(n)).or_insert(n);
    }
    for r in &rows {
        let n = first_member[&r.key];
        let name = v8hp_class_name(s, &r.key.name, n);
        let a = ours_rows.entry(name).or_default();
        a.count += r.count;
        a.self_size += r.shallow_size;
    }
    assert_maps_equal(&ours_rows, &theirs_nonzero, &format!("{ctx}: class table rows (self size > 0)"));
}

fn assert_maps_equal(ours: &BTreeMap<String, Agg>, theirs: &BTreeMap<String, Agg>, ctx: &str) {
    let mut diffs = Vec::new();
    for k in ours.keys().chain(theirs.keys().filter(|k| !ours.contains_key(*k))) {
        let (a, b) = (ours.get(k), theirs.get(k));
        if a != b {
            diffs.push(format!("{k:?}: ours {a:?}, v8hp {b:?}"));
        }
    }
    assert!(diffs.is_empty(), "{ctx}: {} classes differ:\n  {}", diffs.len(), diffs[..diffs.len().min(20)].join("\n  "));
}

/// Retained sizes of every node, against v8-heap-parser. Where they differ,
/// the slow reference (`naive`) decides: our value must match the definition
/// under DevTools' rules, and the difference must be explained either by a
/// documented rule difference (docs/devtools-semantics.md §12: v8hp's value
/// matches the definition under v8hp's own rules) or by v8hp's value
/// contradicting the definition under its own rules (its algorithm's error).
fn check_retained(p: &Pair, a: &heapsnap::Analysis, ctx: &str) {
    let s = &p.ours;
    let g = &p.theirs;
    let theirs: Vec<u64> = (0..s.node_count()).map(|n| g.retained_size(n)).collect();
    assert_eq!(a.retained[0], theirs[0], "{ctx}: root retained size");
    let diffs: Vec<NodeIndex> = s.nodes().filter(|&n| a.retained[n as usize] != theirs[n as usize]).collect();

    let page = naive::page_owned(s);
    let devtools = naive::flow_graph(s, &naive::essential(s, Some(&page), Rules::DevTools), Rules::DevTools);
    let v8hp = naive::flow_graph(s, &naive::essential(s, Some(&page), Rules::V8HeapParser), Rules::V8HeapParser);
    let size = |n: u32| s.self_size(n);

    // Our retained sizes by the definition, on a sample of nodes and on every difference.
    let step = (s.node_count() / 150).max(1);
    let sample: Vec<NodeIndex> = (0..s.node_count() as u32).step_by(step).chain(diffs.iter().copied()).collect();
    let wrong: Vec<String> = sample
        .iter()
        .filter_map(|&n| {
            let want = devtools.retained(n, size);
            (want != a.retained[n as usize])
                .then(|| describe(s, a, n, &format!("ours {} but by definition {want}", a.retained[n as usize])))
        })
        .collect();
    assert!(wrong.is_empty(), "{ctx}: heapsnap retained sizes contradict the definition:\n  {}", wrong.join("\n  "));

    let mut rule_differences = Vec::new();
    let mut v8hp_errors = Vec::new();
    for &n in &diffs {
        let v8hp_def = v8hp.retained(n, size);
        let line = describe(
            s,
            a,
            n,
            &format!("ours {}, v8hp {}, v8hp rules by definition {v8hp_def}", a.retained[n as usize], theirs[n as usize]),
        );
        if v8hp_def == theirs[n as usize] {
            rule_differences.push(line);
        } else {
            v8hp_errors.push(line);
        }
    }
    if !diffs.is_empty() {
        eprintln!(
            "{ctx}: {} of {} retained sizes differ from v8-heap-parser: {} from rule differences, {} where v8hp contradicts its own rules\n  {}\n  {}",
            diffs.len(),
            s.node_count(),
            rule_differences.len(),
            v8hp_errors.len(),
            rule_differences.iter().take(10).cloned().collect::<Vec<_>>().join("\n  "),
            v8hp_errors.iter().take(10).cloned().collect::<Vec<_>>().join("\n  "),
        );
    }
    // v8hp's own error (a stale, too-deep dominator) can only make it credit
    // a node with more than the node dominates: its value is the larger one.
    let too_small: Vec<&NodeIndex> =
        diffs.iter().filter(|&&n| v8hp.retained(n, size) != theirs[n as usize] && theirs[n as usize] < a.retained[n as usize]).collect();
    assert!(
        too_small.is_empty(),
        "{ctx}: {} nodes where v8hp contradicts its own rules with a smaller value than ours, first {:?}",
        too_small.len(),
        &too_small[..too_small.len().min(10)]
    );
    // Rule differences (WeakMap, self edges, weak-only nodes) are possible in
    // Node's own heap; they must stay rare.
    assert!(
        diffs.len() <= 50 && diffs.len() * 1000 <= s.node_count(),
        "{ctx}: {} retained sizes differ from v8-heap-parser (at most 50 and 0.1% allowed)",
        diffs.len()
    );
}

fn describe(s: &HeapSnapshot, a: &heapsnap::Analysis, n: NodeIndex, what: &str) -> String {
    format!(
        "node {n} @{} {:?} {:?} (idom @{}): {what}",
        s.id(n),
        s.kind(n),
        s.name(n).chars().take(50).collect::<String>(),
        s.id(a.idom[n as usize])
    )
}

fn run(name: &str) {
    let c = case(name);
    let ctx = format!("oracle {name} ({})", c.path.display());
    let mut p = load(c);
    check_basics(&p, &ctx);
    let a = analyze(&mut p.ours, AnalysisOptions { fold_shallow_sizes: false, ..Default::default() });
    assert_eq!(a.folded, 0, "{ctx}");
    check_classes(&p, &a, &ctx);
    check_retained(&p, &a, &ctx);
}

#[test]
fn app() {
    if common::skip_without_node("app") {
        return;
    }
    run("app");
}

#[test]
fn strings() {
    if common::skip_without_node("strings") {
        return;
    }
    run("strings");
}

#[test]
fn tree() {
    if common::skip_without_node("tree") {
        return;
    }
    let c = case("tree");
    let len = std::fs::metadata(&c.path).unwrap().len();
    assert!(len > 16 << 20, "the tree snapshot is only {len} bytes: make the program bigger");
    run("tree");
}
