//! Allocation stacks: present when the snapshot was taken with allocation
//! tracking on (`HeapProfiler.startTrackingHeapObjects {trackAllocations}`).
//!
//! `trace_tree` is a nested call tree, each node `[id, function_info_index,
//! count, size, [children...]]`; a heap node's `trace_node_id` names the
//! tree node where it was allocated (the innermost frame; its ancestors are
//! the callers). `trace_function_infos` holds per function `function_id,
//! name, script_name, script_id, line, column` (strings as indexes; lines
//! and columns 1-based, 0 when unknown). Snapshots without tracking write
//! both as `[]`, so this costs them nothing.

use crate::error::{Result, SnapshotError};
use crate::snapshot::{HeapSnapshot, NodeIndex};

/// The call tree by node id: parent and function of each.
#[derive(Debug, Default, Clone)]
pub struct TraceTree {
    /// By tree node id; `NONE` for the root and for unused ids.
    parent: Vec<u32>,
    /// By tree node id: index into the function infos.
    function: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl TraceTree {
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Parse the raw text of `trace_tree` (the nested arrays).
    pub fn parse(raw: &[u8]) -> Result<TraceTree> {
        let mut t = TraceTree::default();
        // Per open array: the parent id of its nodes and the field reached
        // in the current node (0..=4; 4 is the children array).
        let mut stack: Vec<(u32, u8)> = Vec::new();
        let mut fields = [0u64; 2];
        let mut i = 0;
        let bad = |what: &str| SnapshotError::Inconsistent(format!("`trace_tree`: {what}"));
        while i < raw.len() {
            let b = raw[i];
            match b {
                b'[' => {
                    let parent = match stack.last() {
                        None => NONE,
                        Some(&(_, 4)) => fields[0] as u32,
                        Some(_) => return Err(bad("an array where a number belongs")),
                    };
                    stack.push((parent, 0));
                    i += 1;
                }
                b']' => {
                    let (_, f) = stack.pop().ok_or_else(|| bad("unbalanced ']'"))?;
                    if f != 0 {
                        return Err(bad("a node with fewer than 5 fields"));
                    }
                    // The children array closes its node.
                    if let Some(top) = stack.last_mut() {
                        top.1 = 0;
                    }
                    i += 1;
                }
                b'0'..=b'9' => {
                    let mut v = 0u64;
                    while i < raw.len() && raw[i].is_ascii_digit() {
                        v = v.saturating_mul(10).saturating_add((raw[i] - b'0') as u64);
                        i += 1;
                    }
                    let top = stack.last_mut().ok_or_else(|| bad("a number outside the tree"))?;
                    match top.1 {
                        0 => fields[0] = v,
                        1 => fields[1] = v,
                        2 | 3 => {}
                        _ => return Err(bad("a number where the children belong")),
                    }
                    if top.1 == 1 {
                        let (id, parent) = (fields[0] as usize, top.0);
                        if id > (1 << 28) {
                            return Err(bad("a node id out of range"));
                        }
                        if t.parent.len() <= id {
                            t.parent.resize(id + 1, NONE);
                            t.function.resize(id + 1, NONE);
                        }
                        t.parent[id] = parent;
                        t.function[id] = v as u32;
                    }
                    top.1 += 1;
                }
                b',' | b' ' | b'\n' | b'\r' | b'\t' => i += 1,
                _ => return Err(bad("an unexpected character")),
            }
        }
        if !stack.is_empty() {
            return Err(bad("unbalanced '['"));
        }
        Ok(t)
    }

    /// Function info indexes from the allocation site outwards.
    pub fn frames(&self, trace_node_id: u32) -> impl Iterator<Item = u32> + '_ {
        let mut at = trace_node_id;
        let mut guard = 0;
        std::iter::from_fn(move || {
            let i = at as usize;
            if at == NONE || i >= self.function.len() || self.function[i] == NONE || guard > 10_000 {
                return None;
            }
            guard += 1;
            at = self.parent[i];
            Some(self.function[i])
        })
    }
}

/// One function of an allocation stack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceFunction<'a> {
    pub name: &'a str,
    /// The script's path or URL (empty when V8 has none).
    pub script: &'a str,
    /// 1-based; 0 when unknown.
    pub line: u32,
    /// 1-based; 0 when unknown.
    pub column: u32,
}

impl HeapSnapshot {
    /// Whether the snapshot carries allocation stacks.
    pub fn has_allocation_traces(&self) -> bool {
        !self.trace_tree.is_empty() && !self.trace_node_id.is_empty()
    }

    /// Where node `n` was allocated (a `trace_tree` node id; 0: unknown,
    /// e.g. allocated before tracking started).
    pub fn allocation_trace(&self, n: NodeIndex) -> u32 {
        self.trace_node_id(n)
    }

    /// The allocation stack of a trace node id, innermost frame first.
    pub fn allocation_stack(&self, trace_node_id: u32) -> Vec<TraceFunction<'_>> {
        if trace_node_id == 0 {
            return Vec::new();
        }
        self.trace_tree.frames(trace_node_id).filter_map(|f| self.trace_function(f)).collect()
    }

    fn trace_function(&self, index: u32) -> Option<TraceFunction<'_>> {
        let fields = &self.meta.trace_function_info_fields;
        let nf = fields.len().max(1);
        let rec = self.trace_function_infos.get(index as usize * nf..(index as usize + 1) * nf)?;
        let field = |name: &str| fields.iter().position(|f| f == name).map(|i| rec[i]);
        let string = |name: &str| field(name).and_then(|i| self.strings.get(i)).unwrap_or("");
        Some(TraceFunction {
            name: string("name"),
            script: string("script_name"),
            line: field("line").unwrap_or(0),
            column: field("column").unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_tree_gives_parents() {
        // root 1 (fn 0) -> 2 (fn 1) -> 4 (fn 3); root -> 3 (fn 2)
        let t = TraceTree::parse(b"[1,0,0,0,[2,1,3,96,[4,3,1,16,[]],3,2,0,0,[]]]").unwrap();
        assert_eq!(t.frames(4).collect::<Vec<_>>(), vec![3, 1, 0]);
        assert_eq!(t.frames(3).collect::<Vec<_>>(), vec![2, 0]);
        assert_eq!(t.frames(9).count(), 0);
        assert!(TraceTree::parse(b"[]").unwrap().is_empty());
        assert!(TraceTree::parse(b"[1,0,0,0,[2,1]]").is_err());
        assert!(TraceTree::parse(b"[1,0,0,0,[]").is_err());
    }
}
