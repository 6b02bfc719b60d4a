//! Real snapshots from every Node major the tool supports (18, 20, 22, 24,
//! 26), written by the Node binaries that `scripts/install-nodes.sh`
//! installs. A missing binary fails the test with instructions: CI installs
//! them, and a silent skip would hide a format change.
//!
//! What V8 really writes for unusual strings (checked on all five majors):
//! - a JS lone surrogate (`'\uD800'`) is written as the three bytes `???`;
//! - a code point above U+FFFF is written as one `\uXXXX` escape holding its
//!   low 16 bits (U+1F600 -> `\uF600`; U+1D800 -> `\uD800`, a lone surrogate
//!   in the file, which strict JSON decoders reject and we decode as U+FFFD);
//! - strings are cut at 1024 characters.

mod common;
mod naive;

use common::*;
use heapsnap::classes::{self, Classes};
use heapsnap::meta::{EdgeKind, NodeKind};
use heapsnap::retainers::{edge_source, Retainers};
use heapsnap::summary::{class_summaries, DominatorTree};
use heapsnap::{analyze, AnalysisOptions, HeapSnapshot, NodeIndex, ParseOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const LEAKY_COUNT: u64 = 1234;

/// Heap state with a known shape. Values are strings where an edge must
/// exist (V8 writes no edge for small-integer property values).
const PROGRAM: &str = r#"
class LeakyThing {
  constructor(i) { this.index = i; this.label = 'leaky-' + (i % 7); }
}
globalThis.leakyThings = [];
for (let i = 0; i < 1234; i++) globalThis.leakyThings.push(new LeakyThing(i));

globalThis.entryMap = new Map();
for (let i = 0; i < 500; i++) globalThis.entryMap.set('entry-key-' + i, { entryValue: 'entry-value-' + i });

function makeCounter() {
  let counted = { hits: 'counter-state' };
  return function counterClosure() { return counted; };
}
globalThis.counter = makeCounter();

globalThis.registry = new WeakMap();
globalThis.registryKey = { kind: 'weak-key-marker' };
globalThis.registry.set(globalThis.registryKey, { kind: 'weak-value-marker' });

globalThis.loneSurrogate = 'lone-\uD800-marker';
globalThis.truncatedAstral = 'trunc-\u{1D800}-marker';
globalThis.astral = 'astral-\u{1F600}-marker';
globalThis.bmpText = 'bmp-\u00e9\u4e2d\uffff-marker';
globalThis.escapes = 'esc-"quoted"\\back\tslash\n-marker';
globalThis.longString = ['L', 'x'.repeat(4998), 'E'].join('');
"#;

/// The 0-based line of the script `make_snapshot` writes (the program after
/// one line of `'use strict'`) where `needle` first occurs.
fn script_line(needle: &str) -> u32 {
    let at = PROGRAM.find(needle).unwrap_or_else(|| panic!("{needle:?} is not in the program"));
    1 + PROGRAM[..at].matches('\n').count() as u32
}

fn snapshot_for(major: u32) -> PathBuf {
    let node = require_node(major);
    shared_snapshot(&format!("node{major}"), &node, PROGRAM)
}

/// The `snapshot` header read independently of heapsnap: the text before `"nodes":`.
fn header_json(path: &Path) -> serde_json::Value {
    let mut f = std::fs::File::open(path).unwrap();
    let mut head = vec![0u8; 64 * 1024];
    let n = f.read(&mut head).unwrap();
    let text = String::from_utf8_lossy(&head[..n]);
    let end = text.find("\"nodes\":").expect("no `nodes` key in the first 64 KiB");
    let before = text[..end].trim_end().strip_suffix(',').expect("no ',' before `nodes`");
    let v: serde_json::Value = serde_json::from_str(&format!("{before}}}")).expect("header is not JSON");
    v["snapshot"].clone()
}

fn string_with_prefix<'a>(s: &'a HeapSnapshot, prefix: &str) -> Vec<&'a str> {
    (0..s.strings.len() as u32).filter_map(|i| s.strings.get(i)).filter(|t| t.starts_with(prefix)).collect()
}

fn string_node(s: &HeapSnapshot, text: &str) -> NodeIndex {
    s.nodes().find(|&n| s.kind(n).is_string() && s.name(n) == text).unwrap_or_else(|| panic!("no string node {text:?}"))
}

/// The object holding `text` in its property `prop`.
fn holder_of(s: &HeapSnapshot, r: &Retainers, text: &str, prop: &str) -> NodeIndex {
    let t = string_node(s, text);
    r.of(t)
        .iter()
        .copied()
        .find(|&e| s.edge_kind(e) == EdgeKind::Property && s.edge_name_string(e) == prop)
        .map(|e| edge_source(s, e))
        .unwrap_or_else(|| panic!("no object has .{prop} = {text:?}"))
}

fn class_row<'a>(rows: &'a [heapsnap::summary::ClassSummary], name: &str) -> Vec<&'a heapsnap::summary::ClassSummary> {
    rows.iter().filter(|r| r.key.name == name).collect()
}

fn check_major(major: u32) {
    // Long BFS levels go to bits past 4 nodes.
    heapsnap::with_limits(heapsnap::Limits { bfs_list_max: Some(4), ..Default::default() }, || check_major_limited(major))
}

fn check_major_limited(major: u32) {
    let path = snapshot_for(major);
    let header = header_json(&path);
    let mut s = read(&path);
    let ctx = format!("Node {major} snapshot {}", path.display());

    // Counts agree with the header, read independently.
    assert_eq!(s.node_count() as u64, header["node_count"].as_u64().unwrap(), "{ctx}: node_count");
    assert_eq!(s.edge_count() as u64, header["edge_count"].as_u64().unwrap(), "{ctx}: edge_count");
    assert_eq!(s.meta.declared_node_count, Some(s.node_count() as u64), "{ctx}");
    assert_eq!(s.meta.declared_edge_count, Some(s.edge_count() as u64), "{ctx}");
    let node_fields = header["meta"]["node_fields"].as_array().unwrap().len();
    assert_eq!(s.meta.node_field_count(), node_fields, "{ctx}");
    // The format reference: 7 node fields up to Node 22, 6 from Node 24 on.
    assert_eq!(node_fields, if major <= 22 { 7 } else { 6 }, "{ctx}: node field count");
    // Node types: 14 on Node 18, 16 on Node 20 (`object shape`, `wasm object`), 15 from 22 on.
    let types = header["meta"]["node_types"][0].as_array().unwrap().len();
    assert_eq!(s.meta.node_type_names.len(), types, "{ctx}");
    assert_eq!(
        types,
        match major {
            18 => 14,
            20 => 16,
            _ => 15,
        },
        "{ctx}: node type count"
    );
    let edge_sum: usize = s.nodes().map(|n| s.edge_count_of(n)).sum();
    assert_eq!(edge_sum, s.edge_count(), "{ctx}: per-node edge counts");

    // The root.
    assert_eq!(s.root(), 0, "{ctx}: root");
    assert_eq!(s.name(0), "", "{ctx}: root name");
    assert_eq!(s.kind(0), NodeKind::Synthetic, "{ctx}: root type");
    assert_eq!(s.id(0), 1, "{ctx}: root id");
    assert!(s.edges(0).any(|e| s.edge_kind(e) == EdgeKind::Shortcut), "{ctx}: no shortcut edge from the root");
    assert!(!heapsnap::flags::user_roots(&s).is_empty(), "{ctx}: no user root");
    for e in 0..s.edge_count() as u32 {
        assert!((s.edge_target(e) as usize) < s.node_count());
    }

    // Strings: decoded leniently, as written by V8.
    assert_eq!(string_with_prefix(&s, "lone-"), vec!["lone-???-marker"], "{ctx}: JS lone surrogate");
    assert_eq!(
        string_with_prefix(&s, "trunc-"),
        vec!["trunc-\u{FFFD}-marker"],
        "{ctx}: `\\uD800` in the file (U+1D800 truncated by V8) must decode as U+FFFD"
    );
    assert_eq!(string_with_prefix(&s, "astral-"), vec!["astral-\u{F600}-marker"], "{ctx}: V8 writes U+1F600 as `\\uF600`");
    assert_eq!(string_with_prefix(&s, "bmp-"), vec!["bmp-\u{e9}\u{4e2d}\u{ffff}-marker"], "{ctx}");
    assert_eq!(string_with_prefix(&s, "esc-"), vec!["esc-\"quoted\"\\back\tslash\n-marker"], "{ctx}");
    let long = string_with_prefix(&s, "Lxxxxxxxxx");
    assert_eq!(long.len(), 1, "{ctx}: long string {long:?}");
    let long = long[0];
    let expected_cut = format!("L{}", "x".repeat(1023));
    let expected_whole = format!("L{}E", "x".repeat(4998));
    assert!(
        long == expected_cut || long == expected_whole,
        "{ctx}: the 5000-char string is neither cut at 1024 nor whole: {} chars",
        long.chars().count()
    );
    // Every Node version so far cuts it.
    assert_eq!(long, expected_cut, "{ctx}: V8 cuts strings at 1024 characters");
    assert!(string_node(&s, long) > 0);

    // Locations.
    assert!(!s.locations.is_empty(), "{ctx}: no locations");
    for w in s.locations.windows(2) {
        assert!(w[0].node <= w[1].node, "{ctx}: locations not sorted by node");
    }
    let closure = s
        .nodes()
        .find(|&n| s.kind(n) == NodeKind::Closure && s.name(n) == "counterClosure")
        .unwrap_or_else(|| panic!("{ctx}: no counterClosure closure"));
    let loc = s.location(closure).unwrap_or_else(|| panic!("{ctx}: counterClosure has no location"));
    assert_eq!(loc.line, script_line("function counterClosure"), "{ctx}: counterClosure location {loc:?}");
    let script = heapsnap::source::closure_script(&s, closure).map(|sc| s.name(sc).to_string());
    assert!(script.as_deref().is_some_and(|n| n.ends_with(&format!("node{major}.js"))), "{ctx}: counterClosure's script is {script:?}");

    let total = s.total_size();
    assert!(total > 0, "{ctx}: total size");
    let raw_sizes: Vec<u64> = s.nodes().map(|n| s.self_size(n)).collect();

    // DevTools semantics: fold, dominators, retained sizes.
    let a = analyze(&mut s, AnalysisOptions { fold_shallow_sizes: true, ..Default::default() });
    assert!(a.folded > 0, "{ctx}: nothing folded");
    assert_eq!(s.total_size(), total, "{ctx}: folding changed the total");
    let folded_sum: u64 = s.nodes().map(|n| s.self_size(n)).sum();
    assert_eq!(folded_sum, total, "{ctx}");
    assert_eq!(a.retained[0], total, "{ctx}: root retained size != sum of self sizes");
    assert_eq!(a.idom.len(), s.node_count());
    assert_eq!(a.idom[0], 0, "{ctx}: the root is its own dominator");
    check_idom_chains(&s, &a.idom, &ctx);
    // The same dominators as DevTools' own algorithm (transcribed in `naive`)
    // over essential edges rebuilt from the spec.
    let page = naive::page_owned(&s);
    let ess = naive::essential(&s, Some(&page), naive::Rules::DevTools);
    let devtools = naive::devtools_lengauer_tarjan(&s, &ess);
    let differ: Vec<(u32, u32, u32)> = s
        .nodes()
        .filter(|&n| a.idom[n as usize] != devtools[n as usize])
        .map(|n| (s.id(n), s.id(a.idom[n as usize]), s.id(devtools[n as usize])))
        .collect();
    assert!(
        differ.is_empty(),
        "{ctx}: {} dominators differ from DevTools' algorithm (id, ours, devtools): {:?}",
        differ.len(),
        &differ[..differ.len().min(10)]
    );
    for n in s.nodes() {
        assert!(a.retained[n as usize] >= s.self_size(n), "{ctx}: node {n} retains less than itself");
        let d = a.idom[n as usize] as usize;
        assert!(n == 0 || a.retained[d] >= a.retained[n as usize], "{ctx}: node {n} retains more than its dominator");
    }

    // The class table.
    let cls = classes::compute(&s);
    let tree = DominatorTree::from_idom(&a.idom, s.root());
    let rows = class_summaries(&s, &cls, &tree, &a.retained);
    let leaky = class_row(&rows, "LeakyThing");
    assert_eq!(leaky.len(), 1, "{ctx}: LeakyThing rows {leaky:?}");
    let leaky = leaky[0];
    assert_eq!(leaky.count, LEAKY_COUNT, "{ctx}: LeakyThing count");
    assert!(leaky.key.location.is_some(), "{ctx}: the LeakyThing class key has no location");
    assert!(leaky.shallow_size >= LEAKY_COUNT * 12, "{ctx}: LeakyThing shallow {}", leaky.shallow_size);
    assert!(leaky.retained_size >= leaky.shallow_size, "{ctx}");
    let (script_id, line, _) = leaky.key.location.unwrap();
    assert!(
        [script_line("class LeakyThing"), script_line("constructor(i)")].contains(&line),
        "{ctx}: LeakyThing's location is line {line} (0-based)"
    );
    let members: Vec<NodeIndex> = s.nodes().filter(|&n| *cls.key_of(n) == leaky.key).collect();
    assert_eq!(members.len() as u64, LEAKY_COUNT, "{ctx}");
    for &m in &members {
        assert_eq!(s.kind(m), NodeKind::Object);
        assert_eq!(s.name(m), "LeakyThing");
        assert_eq!(s.location(m).map(|l| l.script_id), Some(script_id));
    }
    // The 500 map values share the interface `{entryValue}`.
    let entry_rows = class_row(&rows, "{entryValue}");
    assert_eq!(entry_rows.len(), 1, "{ctx}: {{entryValue}} rows {entry_rows:?}");
    let entry_members: Vec<NodeIndex> = s.nodes().filter(|&n| *cls.key_of(n) == entry_rows[0].key && s.self_size(n) > 0).collect();
    let value_of = |n: NodeIndex| s.child_by_name(n, "entryValue").map(|v| (s.kind(v), s.name(v)));
    let with_values = entry_members.iter().filter(|&&n| value_of(n).is_some_and(|(k, _)| k.is_string())).count();
    // V8 keeps the object literal's boilerplate in the feedback; its value is
    // a placeholder (`system / Oddball` up to Node 20, `system / Hole` since).
    let boilerplates = entry_members
        .iter()
        .filter(|&&n| value_of(n).is_some_and(|(_, name)| name == "system / Oddball" || name == "system / Hole"))
        .count();
    assert!(boilerplates <= 1, "{ctx}: {boilerplates} boilerplates");
    let others: Vec<_> = entry_members.iter().map(|&n| value_of(n)).filter(|v| !v.is_some_and(|(k, _)| k.is_string())).collect();
    assert_eq!(entry_members.len(), with_values + boilerplates, "{ctx}: other {{entryValue}} members: {others:?}");
    assert_eq!(with_values, 500, "{ctx}: map values in {{entryValue}}");
    assert!(!class_row(&rows, "Map").is_empty(), "{ctx}: no Map row");
    assert!(class_row(&rows, "Function").iter().any(|r| r.count > 100), "{ctx}: Function row");
    // Rows: count and shallow size agree with the nodes.
    let row_total: u64 = rows.iter().map(|r| r.shallow_size).sum();
    assert_eq!(row_total, total, "{ctx}: class shallow sizes do not add up to the total");
    let nonzero = s.nodes().filter(|&n| s.self_size(n) != 0).count() as u64;
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), nonzero, "{ctx}: class counts");
    check_class_names(&s, &cls, &ctx);

    // The WeakMap rule: the table -> value half of the entry is not
    // essential, so the value is dominated by its key.
    let names = heapsnap::flags::weakmap_names(&s);
    assert!(!names.is_empty(), "{ctx}: no WeakMap edge names");
    let ret = Retainers::build(&s);
    let key = holder_of(&s, &ret, "weak-key-marker", "kind");
    let value = holder_of(&s, &ret, "weak-value-marker", "kind");
    assert_eq!(
        a.idom[value as usize],
        key,
        "{ctx}: the WeakMap value @{} should be dominated by its key @{}, not @{}",
        s.id(value),
        s.id(key),
        s.id(a.idom[value as usize])
    );
    // The leaky array dominates its elements.
    let arr = s
        .nodes()
        .find(|&n| s.kind(n) == NodeKind::Object && s.name(n) == "Array" && s.edges(n).any(|e| members.contains(&s.edge_target(e))));
    let elements_owner = arr.unwrap_or_else(|| {
        // The elements live in an internal array owned by the Array object.
        let m = members[0];
        let backing = edge_source(&s, ret.of(m)[0]);
        ret.of(backing).iter().map(|&e| edge_source(&s, e)).find(|&o| s.name(o) == "Array").expect("no Array owner")
    });
    for &m in &members {
        let mut d = a.idom[m as usize];
        let mut steps = 0;
        while d != elements_owner && d != 0 && steps < 4 {
            d = a.idom[d as usize];
            steps += 1;
        }
        assert_eq!(d, elements_owner, "{ctx}: LeakyThing @{} not dominated by the leakyThings array", s.id(m));
    }

    // Without folding: raw sizes everywhere, same total.
    let mut raw = read(&path);
    let b = analyze(&mut raw, AnalysisOptions { fold_shallow_sizes: false, ..Default::default() });
    assert_eq!(b.folded, 0);
    let raw_now: Vec<u64> = raw.nodes().map(|n| raw.self_size(n)).collect();
    assert_eq!(raw_now, raw_sizes, "{ctx}: analyze without folding changed self sizes");
    assert_eq!(b.retained[0], total, "{ctx}: raw root retained");
    check_idom_chains(&raw, &b.idom, &ctx);

    // Distances: the memory-bounded walk (levels as bits once long; this
    // test file makes every level past four nodes long) agrees node for
    // node with the shortest-path tree's.
    let mut by_tree = vec![heapsnap::distances::UNREACHABLE; s.node_count()];
    heapsnap::distances::visit_tree(&s, |n, d, _, _| by_tree[n as usize] = d);
    let bounded = heapsnap::distances::compute(&s);
    assert_eq!(bounded, by_tree, "{ctx}: distances");
    assert!(bounded.iter().filter(|&&d| d != heapsnap::distances::UNREACHABLE).count() > s.node_count() / 2, "{ctx}");
}

/// Every node's dominator chain reaches the root without a cycle.
fn check_idom_chains(s: &HeapSnapshot, idom: &[NodeIndex], ctx: &str) {
    let n = s.node_count();
    // depth[v]: steps to the root, memoised; u32::MAX = being computed.
    let mut depth = vec![u32::MAX - 1; n];
    depth[s.root() as usize] = 0;
    for v in 0..n {
        let mut path = Vec::new();
        let mut x = v;
        while depth[x] == u32::MAX - 1 {
            depth[x] = u32::MAX;
            path.push(x);
            let d = idom[x] as usize;
            assert!(d < n, "{ctx}: idom of node {x} is {d}, not a node");
            x = d;
        }
        assert!(depth[x] != u32::MAX, "{ctx}: dominator cycle through node {x} (id @{})", s.id(x as u32));
        let mut k = depth[x];
        while let Some(p) = path.pop() {
            k += 1;
            depth[p] = k;
        }
    }
}

/// Class names follow DevTools' rules for each node type.
fn check_class_names(s: &HeapSnapshot, cls: &Classes, ctx: &str) {
    for n in s.nodes() {
        let name = &cls.key_of(n).name;
        let expected = match s.kind(n) {
            NodeKind::Hidden => Some("(system)"),
            NodeKind::Code => Some("(compiled code)"),
            NodeKind::Closure => Some("Function"),
            NodeKind::Regexp => Some("RegExp"),
            NodeKind::Array => Some("(array)"),
            NodeKind::String => Some("(string)"),
            NodeKind::ConsString => Some("(concatenated string)"),
            NodeKind::SlicedString => Some("(sliced string)"),
            NodeKind::Number => Some("(number)"),
            NodeKind::Synthetic => Some("(synthetic)"),
            NodeKind::Symbol => Some("(symbol)"),
            NodeKind::BigInt => Some("(bigint)"),
            NodeKind::ObjectShape => Some("(object shape)"),
            _ => None,
        };
        match expected {
            Some(e) => assert_eq!(name, e, "{ctx}: class of node {n} ({:?})", s.kind(n)),
            None if s.kind(n) == NodeKind::Object && s.name(n) == "Object" => {
                assert!(name == "Object" || name.starts_with('{'), "{ctx}: plain object class {name:?}")
            }
            None => assert_eq!(name, &heapsnap::classes::object_class_name(s.name(n)), "{ctx}: node {n}"),
        }
    }
}

#[test]
fn node18() {
    if skip_without_node("node18") {
        return;
    }
    check_major(18);
}

#[test]
fn node20() {
    if skip_without_node("node20") {
        return;
    }
    check_major(20);
}

#[test]
fn node22() {
    if skip_without_node("node22") {
        return;
    }
    check_major(22);
}

#[test]
fn node24() {
    if skip_without_node("node24") {
        return;
    }
    check_major(24);
}

#[test]
fn node26() {
    if skip_without_node("node26") {
        return;
    }
    check_major(26);
}

/// Two parses hold the same graph, strings and locations.
fn assert_same(a: &HeapSnapshot, b: &HeapSnapshot, what: &str) {
    assert_eq!(a.node_count(), b.node_count(), "{what}: node count");
    assert_eq!(a.edge_count(), b.edge_count(), "{what}: edge count");
    assert_eq!(a.root(), b.root(), "{what}: root");
    for n in a.nodes() {
        assert_eq!(
            (a.kind(n), a.name(n), a.id(n), a.self_size(n), a.edges(n)),
            (b.kind(n), b.name(n), b.id(n), b.self_size(n), b.edges(n)),
            "{what}: node {n}"
        );
        assert_eq!((a.trace_node_id(n), a.detachedness(n)), (b.trace_node_id(n), b.detachedness(n)), "{what}: node {n}");
    }
    for e in 0..a.edge_count() as u32 {
        assert_eq!(
            (a.edge_kind(e), a.edge_name(e), a.edge_target(e)),
            (b.edge_kind(e), b.edge_name(e), b.edge_target(e)),
            "{what}: edge {e}"
        );
    }
    assert_eq!(a.strings.len(), b.strings.len(), "{what}: string count");
    for i in 0..a.strings.len() as u32 {
        assert_eq!(a.strings.get(i), b.strings.get(i), "{what}: string {i}");
    }
    assert_eq!(a.locations, b.locations, "{what}: locations");
    assert_eq!(a.total_size(), b.total_size(), "{what}: total size");
}

#[test]
fn gzip_copy_parses_identically() {
    if skip_without_node("gzip_copy_parses_identically") {
        return;
    }
    let path = snapshot_for(20);
    let plain = read(&path);
    let dir = temp_dir();
    let gz = dir.path().join("copy.heapsnapshot.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(&path).unwrap()).unwrap();
    enc.finish().unwrap();
    // Detected by content, whatever the name.
    let renamed = dir.path().join("copy-without-suffix");
    std::fs::copy(&gz, &renamed).unwrap();
    for p in [&gz, &renamed] {
        let z = read(p);
        assert_same(&plain, &z, &format!("gzip copy {}", p.display()));
    }
    // Concatenated gzip members (what `cat a.gz b.gz` makes) are one stream.
    let bytes = std::fs::read(&path).unwrap();
    let cut = bytes.len() / 3;
    let multi = dir.path().join("multi.gz");
    let mut f = std::fs::File::create(&multi).unwrap();
    for part in [&bytes[..cut], &bytes[cut..]] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(part).unwrap();
        f.write_all(&enc.finish().unwrap()).unwrap();
    }
    drop(f);
    assert_same(&plain, &read(&multi), "two gzip members");
}

/// A reader like a pipe: short reads of varying length, and interruptions.
struct PipeLike<R> {
    inner: R,
    calls: usize,
}

impl<R: Read> Read for PipeLike<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(7) {
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "signal"));
        }
        let max = [1, 3, 4096, 65536, 17, 100_000][self.calls % 6];
        let n = buf.len().min(max);
        self.inner.read(&mut buf[..n])
    }
}

#[test]
fn stream_reader_parses_identically() {
    if skip_without_node("stream_reader_parses_identically") {
        return;
    }
    let path = snapshot_for(20);
    let plain = read(&path);
    for threads in [1, 2, 3] {
        let reader = PipeLike { inner: std::fs::File::open(&path).unwrap(), calls: 0 };
        let mut seen = 0u64;
        let mut progress = |n: u64| {
            assert!(n >= seen, "progress went backwards");
            seen = n;
        };
        let s = heapsnap::parse_snapshot(Box::new(reader), ParseOptions { threads, progress: Some(&mut progress), observer: None })
            .unwrap_or_else(|e| panic!("stream parse with {threads} threads: {e}"));
        assert_same(&plain, &s, &format!("streamed, {threads} threads"));
        assert_eq!(seen, std::fs::metadata(&path).unwrap().len(), "progress did not reach the file size");
    }
    // The mapped file path reports progress too.
    let mut seen = 0u64;
    let mut progress = |n: u64| {
        assert!(n >= seen, "progress went backwards");
        seen = n;
    };
    let s = heapsnap::read_snapshot(&path, ParseOptions { threads: 2, progress: Some(&mut progress), observer: None }).unwrap();
    assert_same(&plain, &s, "read_snapshot with progress");
    assert_eq!(seen, std::fs::metadata(&path).unwrap().len(), "file progress did not reach the file size");
    // An in-memory reader, as `parse_snapshot` documents.
    let bytes = std::fs::read(&path).unwrap();
    let s = heapsnap::parse_snapshot(Box::new(std::io::Cursor::new(bytes)), ParseOptions::default()).unwrap();
    assert_same(&plain, &s, "cursor");
}

/// The parser reads the input in big blocks; whatever byte a block ends
/// at (inside a number, a string, an escape, a key), the result must be
/// the same. Leading whitespace is valid JSON, so padding the file with K
/// spaces moves every block boundary K bytes earlier in the real text.
#[test]
fn block_boundaries_anywhere() {
    if skip_without_node("block_boundaries_anywhere") {
        return;
    }
    // The scanner's block size (`scan::BUFFER_SIZE`). If it changes, this
    // test still passes but checks other positions.
    const BLOCK: usize = 16 << 20;
    let path = snapshot_for(20);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() < BLOCK, "the test snapshot is larger than one block");
    let plain = read(&path);
    let find = |needle: &[u8], from: usize| -> usize {
        from + bytes[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
    };
    let nodes = find(b"\"nodes\":", 0);
    let edges = find(b"\"edges\":", nodes);
    let locations = find(b"\"locations\":", edges);
    let strings = find(b"\"strings\":", locations);
    let escape = find(b"\\u", strings);
    let trunc = find(b"trunc-\\uD800", strings) + 6;
    let quote = find(b"\\\"quoted", strings);
    let long = find(b"Lxxxxxxxx", strings);
    let mut cuts = vec![1, 10, nodes - 1, nodes + 3, nodes + 9, nodes + 10, nodes + 11, nodes + 1000, nodes + 1001];
    cuts.extend([edges - 2, edges + 8, edges + 9, edges + 5000, edges + 5001, edges + 5002]);
    cuts.extend([locations + 11, locations + 13, locations + 14, strings + 10, strings + 11, strings + 12]);
    for base in [escape, trunc, quote] {
        cuts.extend((0..8).map(|k| base + k));
    }
    cuts.extend([trunc + 6, trunc + 7, trunc + 8, trunc + 12, long + 500, bytes.len() - 2, bytes.len() - 1]);
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        // The first block ends right before original byte `cut`.
        let pad = BLOCK - cut;
        let mut padded = vec![b' '; pad];
        padded.extend_from_slice(&bytes);
        let s = heapsnap::parse_snapshot(Box::new(std::io::Cursor::new(padded)), ParseOptions { threads: 2, ..Default::default() })
            .unwrap_or_else(|e| panic!("block boundary before byte {cut}: {e}"));
        assert_same(&plain, &s, &format!("block boundary before byte {cut}"));
    }
}

/// A missing Node major fails the test with instructions (never a silent skip).
#[test]
fn missing_major_fails_with_instructions() {
    // No Node 17 is ever installed by the script.
    let err = find_node(17).expect_err("Node 17 should not be installed");
    assert!(err.contains("scripts/install-nodes.sh"), "{err}");
    let panic = std::panic::catch_unwind(|| require_node(17)).expect_err("require_node(17) should fail the test");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("run scripts/install-nodes.sh"), "{msg}");
}

/// The same for a regular file, which `read_snapshot` reads through memory
/// mappings a window at a time (a 16th of the file, 4 to 64 MiB, page
/// aligned): read as it is, in windows of 1 MiB, and padded so that a 64
/// MiB window ends inside a number, a string, an escape...
#[test]
fn mapped_window_boundaries() {
    if skip_without_node("mapped_window_boundaries") {
        return;
    }
    const WINDOW: usize = 64 << 20;
    let path = snapshot_for(20);
    let bytes = std::fs::read(&path).unwrap();
    let plain = heapsnap::parse_snapshot(Box::new(std::io::Cursor::new(bytes.clone())), ParseOptions::default()).unwrap();
    let s = heapsnap::read_snapshot(&path, ParseOptions::default()).unwrap();
    assert_same(&plain, &s, "mapped in windows of the size its length calls for");
    let s = heapsnap::read_file_windowed(&path, 1 << 20, ParseOptions::default()).unwrap();
    assert_same(&plain, &s, "mapped in windows of 1 MiB");
    let find = |needle: &[u8], from: usize| -> usize {
        from + bytes[from..].windows(needle.len()).position(|w| w == needle).expect("marker not found")
    };
    let nodes = find(b"\"nodes\":", 0);
    let edges = find(b"\"edges\":", nodes);
    let strings = find(b"\"strings\":", edges);
    let trunc = find(b"trunc-\\uD800", strings) + 6;
    let cuts = [nodes + 1001, nodes + 1002, edges + 5001, strings + 12, trunc + 1, trunc + 3, trunc + 6, bytes.len() - 1];
    let dir = temp_dir();
    let file = dir.path().join("padded.heapsnapshot");
    for cut in cuts {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let spaces = vec![b' '; 1 << 20];
        let mut pad = WINDOW - cut;
        while pad > 0 {
            let n = pad.min(spaces.len());
            f.write_all(&spaces[..n]).unwrap();
            pad -= n;
        }
        f.write_all(&bytes).unwrap();
        drop(f);
        let s = heapsnap::read_file_windowed(&file, WINDOW, ParseOptions::default())
            .unwrap_or_else(|e| panic!("window boundary before byte {cut}: {e}"));
        assert_same(&plain, &s, &format!("mapped, window boundary before byte {cut}"));
    }
}
