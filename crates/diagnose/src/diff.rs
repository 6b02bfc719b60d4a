//! The DevTools Comparison view: which objects of each class appeared and
//! which disappeared between two snapshots of one process, matched by the
//! object ids V8 keeps stable for the life of the process.
//!
//! Like DevTools, each class is compared on its own (an object whose class
//! changed counts as deleted from one and new in the other), objects of self
//! size 0 take no part, and sizes are the snapshots' own (folded when the
//! caller folded them). Unlike DevTools, the base keeps its own `{a, b}`
//! interface names rather than borrowing the newer snapshot's.

use heapsnap::classes::{ClassKey, Classes};
use heapsnap::HeapSnapshot;
use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;

/// One row of the comparison.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ClassDelta {
    pub class: String,
    /// (script id, line, column), 0-based, when the class is split by constructor location.
    #[serde(skip)]
    pub location: Option<(u32, u32, u32)>,
    pub new_count: u64,
    pub deleted_count: u64,
    pub delta_count: i64,
    pub alloc_size: u64,
    pub freed_size: u64,
    pub size_delta: i64,
}

/// The whole comparison, largest size delta first.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub rows: Vec<ClassDelta>,
    pub new_count: u64,
    pub deleted_count: u64,
    pub alloc_size: u64,
    pub freed_size: u64,
}

/// (class, id, self size) of every object with a size, sorted by class then id.
fn members(s: &HeapSnapshot, classes: &Classes, keys: &mut HashMap<ClassKey, u32>) -> Vec<(u32, u32, u64)> {
    let local: Vec<u32> = classes
        .keys
        .iter()
        .map(|k| {
            let next = keys.len() as u32;
            *keys.entry(k.clone()).or_insert(next)
        })
        .collect();
    let mut v: Vec<(u32, u32, u64)> =
        s.nodes().filter(|&n| s.self_size(n) > 0).map(|n| (local[classes.class_of(n) as usize], s.id(n), s.self_size(n))).collect();
    v.sort_unstable_by_key(|&(c, id, _)| (c, id));
    v
}

/// Compare `new` against `base`.
pub fn compare(base: &HeapSnapshot, base_classes: &Classes, new: &HeapSnapshot, new_classes: &Classes) -> Comparison {
    let mut keys: HashMap<ClassKey, u32> = HashMap::default();
    let a = members(base, base_classes, &mut keys);
    let b = members(new, new_classes, &mut keys);
    let mut by_class: Vec<ClassDelta> = vec![
        ClassDelta {
            class: String::new(),
            location: None,
            new_count: 0,
            deleted_count: 0,
            delta_count: 0,
            alloc_size: 0,
            freed_size: 0,
            size_delta: 0,
        };
        keys.len()
    ];
    for (k, &c) in &keys {
        by_class[c as usize].class = k.name.clone();
        by_class[c as usize].location = k.location;
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let ka = a.get(i).map(|&(c, id, _)| (c, id));
        let kb = b.get(j).map(|&(c, id, _)| (c, id));
        match (ka, kb) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), y) if y.is_none() || x < y.unwrap() => {
                let row = &mut by_class[x.0 as usize];
                row.deleted_count += 1;
                row.freed_size += a[i].2;
                i += 1;
            }
            (_, Some(y)) => {
                let row = &mut by_class[y.0 as usize];
                row.new_count += 1;
                row.alloc_size += b[j].2;
                j += 1;
            }
            _ => unreachable!(),
        }
    }
    let mut rows: Vec<ClassDelta> = by_class
        .into_iter()
        .filter(|r| r.new_count > 0 || r.deleted_count > 0)
        .map(|mut r| {
            r.delta_count = r.new_count as i64 - r.deleted_count as i64;
            r.size_delta = r.alloc_size as i64 - r.freed_size as i64;
            r
        })
        .collect();
    rows.sort_by(|x, y| y.size_delta.cmp(&x.size_delta).then(y.alloc_size.cmp(&x.alloc_size)).then(x.class.cmp(&y.class)));
    Comparison {
        new_count: rows.iter().map(|r| r.new_count).sum(),
        deleted_count: rows.iter().map(|r| r.deleted_count).sum(),
        alloc_size: rows.iter().map(|r| r.alloc_size).sum(),
        freed_size: rows.iter().map(|r| r.freed_size).sum(),
        rows,
    }
}
