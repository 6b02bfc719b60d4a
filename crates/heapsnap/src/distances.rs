//! Distances from the roots, as DevTools shows them: user roots (the
//! global object) at 1, then a second pass from the root for what only V8
//! or Node internals hold, starting at 100000000; unreachable nodes have none.

use crate::flags::{parse_weakmap_edge_name, user_roots};
use crate::meta::{EdgeKind, NodeKind};
use crate::snapshot::{EdgeName, HeapSnapshot, NodeIndex};
use std::collections::HashSet;

/// Distance of a node no path reaches.
pub const UNREACHABLE: u32 = u32::MAX;
/// Where distances of nodes held only by internals start.
pub const BASE_SYSTEM_DISTANCE: u32 = 100_000_000;

fn string_indexes(s: &HeapSnapshot, want: &str) -> Vec<u32> {
    (0..s.strings.len() as u32).filter(|&i| s.strings.get(i) == Some(want)).collect()
}

/// Breadth-first distances, skipping weak edges and DevTools' few V8 links
/// that would make everything look one step from the native context.
pub fn compute(s: &HeapSnapshot) -> Vec<u32> {
    let n = s.node_count();
    let mut dist = vec![UNREACHABLE; n];
    let native_context = string_indexes(s, "system / NativeContext");
    let sloppy = string_indexes(s, "sloppy_function_map");
    let descriptors = string_indexes(s, "(map descriptors)");
    let weak_names = crate::flags::weakmap_names(s);
    // WeakMap values: reached only through the second of their two edges.
    let mut half_seen: HashSet<&str> = HashSet::new();
    let mut pass = |x: NodeIndex, e: u32| -> bool {
        let kind = s.kind(x);
        if kind == NodeKind::Hidden
            && native_context.contains(&s.name_index(x))
            && s.edge_kind(e) != EdgeKind::Element
            && !s.edge_kind(e).name_is_index()
            && sloppy.contains(&s.edge_name_raw(e))
        {
            return false;
        }
        if kind == NodeKind::Array && descriptors.contains(&s.name_index(x)) {
            let k: Option<u64> = match s.edge_name(e) {
                EdgeName::Index(i) => Some(i as u64),
                EdgeName::Name(t) => t.parse().ok(),
            };
            return match k {
                Some(k) => k < 2 || k % 3 != 1,
                None => true,
            };
        }
        if s.edge_kind(e) == EdgeKind::Internal && weak_names.contains_key(&s.edge_name_raw(e)) {
            let name = s.strings.get(s.edge_name_raw(e)).unwrap_or("");
            if let Some((_, digits)) = parse_weakmap_edge_name(name) {
                let part = &name[digits..];
                if half_seen.insert(part) {
                    return false;
                }
                half_seen.remove(part);
            }
        }
        true
    };
    let mut queue: Vec<u32> = Vec::new();
    let bfs = |queue: &mut Vec<u32>, dist: &mut Vec<u32>, pass: &mut dyn FnMut(NodeIndex, u32) -> bool| {
        let mut head = 0;
        while head < queue.len() {
            let x = queue[head];
            head += 1;
            let d = dist[x as usize];
            for e in s.edges(x) {
                if s.edge_kind(e) == EdgeKind::Weak {
                    continue;
                }
                let t = s.edge_target(e);
                if dist[t as usize] != UNREACHABLE {
                    continue;
                }
                if !pass(x, e) {
                    continue;
                }
                dist[t as usize] = d + 1;
                queue.push(t);
            }
        }
        queue.clear();
    };
    let users = user_roots(s);
    for &u in &users {
        if dist[u as usize] == UNREACHABLE {
            dist[u as usize] = 1;
            queue.push(u);
        }
    }
    bfs(&mut queue, &mut dist, &mut pass);
    let root = s.root();
    dist[root as usize] = if users.is_empty() { 0 } else { BASE_SYSTEM_DISTANCE };
    queue.push(root);
    bfs(&mut queue, &mut dist, &mut pass);
    dist
}

/// How DevTools prints a distance: a number below the system base, else "-".
pub fn display(d: u32) -> String {
    if d < BASE_SYSTEM_DISTANCE {
        d.to_string()
    } else {
        "-".to_string()
    }
}
