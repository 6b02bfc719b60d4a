//! Plain objects named by their property lists (`{a, b}`), on a real Node
//! heap where runs of objects alike are broken by others: the class pass
//! remembers the object before, and that must never leak into the next one.

mod common;

use heapsnap::classes;
use heapsnap::meta::NodeKind;
use heapsnap::snapshot::EdgeName;
use std::collections::HashMap;

const PROGRAM: &str = r#"
// Short distinct strings as values: a property shows as an edge only when
// its value is a heap object.
let next = 0;
function make(keys) { const o = {}; for (const k of keys) o[k] = 'v' + next++; return o; }
const long = Array.from({ length: 20 }, (_, i) => 'property_name_number_' + String(i).padStart(2, '0'));
const keep = [];
for (let i = 0; i < 3; i++) keep.push(make(['alpha_key', 'beta_key']));
keep.push(make([]));
for (let i = 0; i < 2; i++) keep.push(make(['alpha_key', 'beta_key']));
keep.push(make(['gamma_key']));
for (let i = 0; i < 2; i++) keep.push(make(['beta_key', 'alpha_key']));
keep.push(make(['gamma_key', 'delta_key']));
for (let i = 0; i < 2; i++) keep.push(make(long));
globalThis.keep = keep;
"#;

#[test]
fn property_list_classes_survive_interrupted_runs() {
    if common::skip_without_node("property_list_classes_survive_interrupted_runs") {
        return;
    }
    let node = common::any_node();
    let dir = common::temp_dir();
    let path = dir.path().join("shapes.heapsnapshot");
    common::make_snapshot(&node, PROGRAM, &path);
    let s = common::read(&path);
    let cls = classes::compute(&s);

    // This program's plain objects (by their property names) per class name.
    let mut by_class: HashMap<String, usize> = HashMap::new();
    for n in s.nodes() {
        if s.kind(n) != NodeKind::Object || s.name(n) != "Object" {
            continue;
        }
        let ours = s
            .edges(n)
            .any(|e| matches!(s.edge_name(e), EdgeName::Name(p) if p.ends_with("_key") || p.starts_with("property_name_number_")));
        if ours {
            *by_class.entry(cls.key_of(n).name.clone()).or_default() += 1;
        }
    }
    // Both property orders share the most common list's name.
    assert_eq!(by_class.get("{alpha_key, beta_key}"), Some(&7), "{by_class:?}");
    // Once each: not common enough for a name of their own.
    assert_eq!(by_class.get("Object"), Some(&2), "{by_class:?}");
    assert!(!by_class.contains_key("{gamma_key}") && !by_class.contains_key("{gamma_key, delta_key}"), "{by_class:?}");
    // A long list is cut to what fits in 120 characters: four names of 23
    // (a fifth would make 124), in edge order (V8's dictionary order here).
    let long: Vec<(&String, &usize)> = by_class.iter().filter(|(k, _)| k.starts_with("{property_name_number_")).collect();
    assert_eq!(long.len(), 1, "{by_class:?}");
    let (name, &count) = long[0];
    assert_eq!(count, 2, "{by_class:?}");
    let inner = name.strip_prefix('{').and_then(|n| n.strip_suffix('}')).expect("braces");
    let names: Vec<&str> = inner.split(", ").collect();
    assert_eq!(names.len(), 4, "{name}");
    assert!(names.iter().all(|n| n.len() == 23 && n.starts_with("property_name_number_")), "{name}");
    assert_eq!(name.len(), 100, "{name}");
    assert_eq!(by_class.values().sum::<usize>(), 11, "{by_class:?}");
}
