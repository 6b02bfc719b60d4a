//! The parsed heap graph: nodes and edges in columns indexed by ordinal
//! (struct of arrays), edges grouped by source node as in the file (CSR).

use crate::meta::{EdgeKind, Meta, NodeKind};
use std::borrow::Cow;
use std::ops::Range;

/// How many nodes a snapshot may have (edge targets share a u32 with the edge kind).
pub const MAX_NODES: u32 = (1 << 29) - 1;
pub(crate) const EDGE_KIND_SHIFT: u32 = 29;

/// A node's position in the snapshot (its record number), not its V8 id.
pub type NodeIndex = u32;
/// An edge's position in the snapshot's edge array.
pub type EdgeIndex = u32;

/// The string table, stored as one arena so millions of strings cost two allocations.
#[derive(Default, Debug)]
pub struct Strings {
    pub(crate) data: String,
    pub(crate) ends: Vec<u32>,
}

impl Strings {
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    pub fn get(&self, i: u32) -> Option<&str> {
        let i = i as usize;
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.data[start..end])
    }
    pub fn bytes(&self) -> usize {
        self.data.len() + self.ends.len() * 4
    }
    /// The indexes of the strings equal to `want`, in order. The arena is
    /// searched for the text (a few ms for millions of strings), and only
    /// hits that are a whole string count.
    pub fn indexes_of<'a>(&'a self, want: &'a str) -> impl Iterator<Item = u32> + 'a {
        let empty = want.is_empty().then(|| (0..self.len() as u32).filter(|&i| self.get(i) == Some("")));
        let hits = (!want.is_empty()).then(|| {
            memchr::memmem::find_iter(self.data.as_bytes(), want.as_bytes()).filter_map(move |at| {
                // The first string ending past `at` starts at or before it.
                let i = self.ends.partition_point(|&end| (end as usize) <= at);
                let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
                let whole = start == at && self.ends.get(i).is_some_and(|&end| end as usize == at + want.len());
                whole.then_some(i as u32)
            })
        });
        empty.into_iter().flatten().chain(hits.into_iter().flatten())
    }
}

/// A source position recorded for a closure or an object made by a JS constructor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub node: NodeIndex,
    pub script_id: u32,
    /// 0-based, as in the file.
    pub line: u32,
    /// 0-based, as in the file.
    pub column: u32,
}

/// What an edge is called: a property name or an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeName<'a> {
    Name(&'a str),
    Index(u32),
}

impl std::fmt::Display for EdgeName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EdgeName::Name(s) => f.write_str(s),
            EdgeName::Index(i) => write!(f, "{i}"),
        }
    }
}

/// A whole heap snapshot in memory.
#[derive(Debug)]
pub struct HeapSnapshot {
    pub meta: Meta,
    pub(crate) node_kind: Vec<u8>,
    pub(crate) node_name: Vec<u32>,
    pub(crate) node_id: Vec<u32>,
    pub(crate) node_self_size: Vec<u32>,
    /// Sizes that do not fit the 32-bit column, sorted by node.
    pub(crate) big_sizes: Vec<(u32, u64)>,
    /// `first_edge[n]..first_edge[n + 1]` are node n's edges.
    pub(crate) first_edge: Vec<u32>,
    pub(crate) trace_node_id: Vec<u32>,
    pub(crate) detachedness: Vec<u8>,
    pub(crate) edge_name: Vec<u32>,
    /// Target ordinal in the low 29 bits, edge kind in the top 3 (saves a
    /// column: memory is what limits the largest snapshot we can open).
    pub(crate) edge_to: Vec<u32>,
    pub strings: Strings,
    /// Sorted by node.
    pub locations: Vec<Location>,
    pub trace_function_infos: Vec<u32>,
    /// The allocation call tree (empty without allocation tracking).
    pub(crate) trace_tree: crate::traces::TraceTree,
    pub samples: Vec<u32>,
    pub(crate) root: NodeIndex,
}

impl HeapSnapshot {
    pub fn node_count(&self) -> usize {
        self.node_kind.len()
    }
    pub fn edge_count(&self) -> usize {
        self.edge_to.len()
    }
    /// Free the edges, for a caller done with the graph: they are most of
    /// a snapshot's memory besides the strings. Every node is left with no
    /// edges, and `edge_count` is 0 from here on.
    pub fn drop_edges(&mut self) {
        self.edge_to = Vec::new();
        self.edge_name = Vec::new();
        self.first_edge.fill(0);
    }
    /// The synthetic root every path starts from (node 0 in V8's files).
    pub fn root(&self) -> NodeIndex {
        self.root
    }
    pub fn nodes(&self) -> Range<NodeIndex> {
        0..self.node_count() as NodeIndex
    }

    #[inline]
    pub fn kind(&self, n: NodeIndex) -> NodeKind {
        NodeKind::from_u8(self.node_kind[n as usize])
    }
    #[inline]
    pub fn name_index(&self, n: NodeIndex) -> u32 {
        self.node_name[n as usize]
    }
    #[inline]
    pub fn name(&self, n: NodeIndex) -> &str {
        self.strings.get(self.node_name[n as usize]).unwrap_or("")
    }
    #[inline]
    pub fn id(&self, n: NodeIndex) -> u32 {
        self.node_id[n as usize]
    }
    #[inline]
    pub fn self_size(&self, n: NodeIndex) -> u64 {
        let s = self.node_self_size[n as usize];
        if s == crate::columns::BIG_SIZE {
            if let Ok(k) = self.big_sizes.binary_search_by_key(&n, |&(i, _)| i) {
                return self.big_sizes[k].1;
            }
        }
        s as u64
    }
    pub fn detachedness(&self, n: NodeIndex) -> u8 {
        self.detachedness.get(n as usize).copied().unwrap_or(0)
    }
    pub fn trace_node_id(&self, n: NodeIndex) -> u32 {
        self.trace_node_id.get(n as usize).copied().unwrap_or(0)
    }
    #[inline]
    pub fn edges(&self, n: NodeIndex) -> Range<EdgeIndex> {
        self.first_edge[n as usize]..self.first_edge[n as usize + 1]
    }
    #[inline]
    pub fn edge_count_of(&self, n: NodeIndex) -> usize {
        (self.first_edge[n as usize + 1] - self.first_edge[n as usize]) as usize
    }
    #[inline]
    pub fn edge_kind(&self, e: EdgeIndex) -> EdgeKind {
        EdgeKind::from_u8((self.edge_to[e as usize] >> EDGE_KIND_SHIFT) as u8)
    }
    #[inline]
    pub fn edge_target(&self, e: EdgeIndex) -> NodeIndex {
        self.edge_to[e as usize] & MAX_NODES
    }
    /// The target of edge `e` if there is such an edge (for looking ahead).
    #[inline]
    pub(crate) fn edge_target_checked(&self, e: usize) -> Option<NodeIndex> {
        self.edge_to.get(e).map(|&t| t & MAX_NODES)
    }
    #[inline]
    pub fn edge_name_raw(&self, e: EdgeIndex) -> u32 {
        self.edge_name[e as usize]
    }
    pub fn edge_name(&self, e: EdgeIndex) -> EdgeName<'_> {
        let raw = self.edge_name[e as usize];
        if self.edge_kind(e).name_is_index() {
            EdgeName::Index(raw)
        } else {
            EdgeName::Name(self.strings.get(raw).unwrap_or(""))
        }
    }
    pub fn edge_name_string(&self, e: EdgeIndex) -> Cow<'_, str> {
        match self.edge_name(e) {
            EdgeName::Name(s) => Cow::Borrowed(s),
            EdgeName::Index(i) => Cow::Owned(i.to_string()),
        }
    }
    /// Sum of every node's self size.
    pub fn total_size(&self) -> u64 {
        // Every node marked BIG_SIZE has its real size in the side table.
        let small: u64 = self.node_self_size.iter().filter(|&&s| s != crate::columns::BIG_SIZE).map(|&s| s as u64).sum();
        small + self.big_sizes.iter().map(|&(_, s)| s).sum::<u64>()
    }
    /// The node with this V8 id, if any.
    pub fn node_by_id(&self, id: u32) -> Option<NodeIndex> {
        self.node_id.iter().position(|&x| x == id).map(|i| i as NodeIndex)
    }
    /// The largest node id (used to tell objects allocated between snapshots).
    pub fn max_id(&self) -> u32 {
        self.node_id.iter().copied().max().unwrap_or(0)
    }
    /// The source position recorded for this node, if any.
    pub fn location(&self, n: NodeIndex) -> Option<Location> {
        self.locations.binary_search_by_key(&n, |l| l.node).ok().map(|k| self.locations[k])
    }
    /// Approximate bytes held by this structure, for diagnostics.
    pub fn heap_bytes(&self) -> usize {
        self.node_kind.capacity()
            + 4 * (self.node_name.capacity() + self.node_id.capacity() + self.node_self_size.capacity())
            + 4 * self.first_edge.capacity()
            + 4 * self.trace_node_id.capacity()
            + self.detachedness.capacity()
            + 4 * (self.edge_name.capacity() + self.edge_to.capacity())
            + self.strings.bytes()
            + 16 * self.locations.capacity()
    }
    /// Node index of the first child reached from `n` through an edge with this name.
    pub fn child_by_name(&self, n: NodeIndex, name: &str) -> Option<NodeIndex> {
        self.edges(n).find(|&e| matches!(self.edge_name(e), EdgeName::Name(s) if s == name)).map(|e| self.edge_target(e))
    }
}

impl HeapSnapshot {
    /// Change a node's self size (used by shallow-size folding).
    pub(crate) fn set_self_size(&mut self, n: NodeIndex, size: u64) {
        let big = crate::columns::BIG_SIZE;
        let pos = self.big_sizes.binary_search_by_key(&n, |&(i, _)| i);
        if size >= big as u64 {
            self.node_self_size[n as usize] = big;
            match pos {
                Ok(k) => self.big_sizes[k].1 = size,
                Err(k) => self.big_sizes.insert(k, (n, size)),
            }
        } else {
            self.node_self_size[n as usize] = size as u32;
            if let Ok(k) = pos {
                self.big_sizes.remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(strings: &[&str]) -> Strings {
        let mut t = Strings::default();
        for s in strings {
            t.data.push_str(s);
            t.ends.push(t.data.len() as u32);
        }
        t
    }

    /// Only whole strings match: not a part of a longer one, and not two
    /// neighbours that spell it together.
    #[test]
    fn indexes_of_finds_whole_strings_only() {
        let t = table(&["", "Object", "ObjectX", "xObject", "Object", "Obj", "ect", "", "Objec"]);
        assert_eq!(t.indexes_of("Object").collect::<Vec<_>>(), [1, 4]);
        assert_eq!(t.indexes_of("ect").collect::<Vec<_>>(), [6]);
        assert_eq!(t.indexes_of("").collect::<Vec<_>>(), [0, 7]);
        assert_eq!(t.indexes_of("Objec").collect::<Vec<_>>(), [8]);
        assert_eq!(t.indexes_of("Objects").count(), 0);
        assert_eq!(table(&[]).indexes_of("x").count(), 0);
    }
}
