//! Number sinks that write `nodes` and `edges` records into columns.

use crate::error::{Result, SnapshotError};
use crate::meta::{EdgeField, Meta, NodeField};
use crate::numbers::{for_each_number, NumberSink, PieceError, SharedSlice};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// `self_size` is kept in 32 bits; the rare larger ones (a 5 GiB
/// ArrayBuffer) live in a side table keyed by node ordinal.
pub(crate) const BIG_SIZE: u32 = u32::MAX;

pub(crate) struct NodeColumns {
    layout: Vec<NodeField>,
    kind_of_type: Vec<u8>,
    pub kind: Vec<u8>,
    pub name: Vec<u32>,
    pub id: Vec<u32>,
    pub self_size: Vec<u32>,
    /// Edge count per node while parsing; turned into first-edge offsets after.
    pub edge_count: Vec<u32>,
    pub trace_node_id: Vec<u32>,
    pub detachedness: Vec<u8>,
    pub big_sizes: Mutex<Vec<(u32, u64)>>,
    /// One more than the largest name string index (0: no nodes).
    pub max_name: AtomicU64,
    /// Whether any trace_node_id / detachedness was not zero.
    pub nonzero_trace: AtomicBool,
    pub nonzero_detachedness: AtomicBool,
    views: NodeViews,
}

#[derive(Default, Clone, Copy)]
struct NodeViews {
    kind: SharedSlice<u8>,
    name: SharedSlice<u32>,
    id: SharedSlice<u32>,
    self_size: SharedSlice<u32>,
    edge_count: SharedSlice<u32>,
    trace_node_id: SharedSlice<u32>,
    detachedness: SharedSlice<u8>,
}

impl NodeColumns {
    /// Columns sized for the declared node count, but never for more
    /// records than `max_numbers` could hold (a corrupt header must not
    /// make us allocate terabytes).
    pub(crate) fn new(meta: &Meta, max_numbers: u64) -> Self {
        let f = meta.node_field_count().max(1) as u64;
        let cap = meta.declared_node_count.unwrap_or(0).min(max_numbers / f) as usize;
        let has_trace = meta.has_trace_node_id;
        let has_det = meta.node_layout.contains(&NodeField::Detachedness);
        NodeColumns {
            layout: meta.node_layout.clone(),
            kind_of_type: meta.node_kinds.iter().map(|k| *k as u8).collect(),
            kind: crate::mem::zeroed(cap),
            name: crate::mem::zeroed(cap),
            id: crate::mem::zeroed(cap),
            self_size: crate::mem::zeroed(cap),
            edge_count: crate::mem::zeroed(cap + 1),
            // Nearly always all zero: only non-zero values are written, so
            // the pages of an all-zero column are never touched.
            trace_node_id: if has_trace { crate::mem::zeroed_lazy(cap) } else { Vec::new() },
            detachedness: if has_det { crate::mem::zeroed_lazy(cap) } else { Vec::new() },
            max_name: AtomicU64::new(0),
            nonzero_trace: AtomicBool::new(false),
            nonzero_detachedness: AtomicBool::new(false),
            big_sizes: Mutex::new(Vec::new()),
            views: NodeViews::default(),
        }
    }
}

impl NumberSink for NodeColumns {
    fn reserve(&mut self, total: u64) -> Result<()> {
        let f = self.layout.len() as u64;
        let records = total.div_ceil(f);
        if records >= u32::MAX as u64 {
            return Err(SnapshotError::Inconsistent(format!("more than {} nodes", u32::MAX)));
        }
        let r = records as usize;
        grow(&mut self.kind, r);
        grow(&mut self.name, r);
        grow(&mut self.id, r);
        grow(&mut self.self_size, r);
        grow(&mut self.edge_count, r);
        if self.layout.contains(&NodeField::TraceNodeId) {
            grow(&mut self.trace_node_id, r);
        }
        if self.layout.contains(&NodeField::Detachedness) {
            grow(&mut self.detachedness, r);
        }
        self.views = NodeViews {
            kind: SharedSlice::new(&mut self.kind),
            name: SharedSlice::new(&mut self.name),
            id: SharedSlice::new(&mut self.id),
            self_size: SharedSlice::new(&mut self.self_size),
            edge_count: SharedSlice::new(&mut self.edge_count),
            trace_node_id: SharedSlice::new(&mut self.trace_node_id),
            detachedness: SharedSlice::new(&mut self.detachedness),
        };
        Ok(())
    }

    fn write_run(&self, first: u64, text: &[u8]) -> Result<u64, PieceError> {
        use NodeField::*;
        match self.layout[..] {
            [Type, Name, Id, SelfSize, EdgeCount, TraceNodeId] => self.fast_run::<6>(first, text),
            [Type, Name, Id, SelfSize, EdgeCount, TraceNodeId, Detachedness] => self.fast_run::<7>(first, text),
            _ => self.careful(first, text),
        }
    }
}

impl NodeColumns {
    fn fast_run<const F: usize>(&self, first: u64, text: &[u8]) -> Result<u64, PieceError> {
        let mut max_name = 0;
        let n = with_fast_records::<F>(
            first,
            text,
            |f, t| self.careful(f, t),
            |rec, v| {
                max_name = max_name.max(v[1] + 1);
                self.fast_record::<F>(rec, v)
            },
        );
        self.max_name.fetch_max(max_name, Relaxed);
        n
    }

    /// One record of the usual layout: type, name, id, self_size,
    /// edge_count, trace_node_id (and detachedness when `F` is 7). False,
    /// for the careful path, on anything it would report or keep aside.
    #[inline(always)]
    fn fast_record<const F: usize>(&self, rec: usize, x: &[u64; F]) -> bool {
        let v = self.views;
        let kinds = &self.kind_of_type[..];
        let wide = |x: u64| x > u32::MAX as u64;
        if (x[0] >= kinds.len() as u64) | wide(x[1]) | wide(x[2]) | (x[3] >= BIG_SIZE as u64) | wide(x[4]) | wide(x[5]) {
            return false;
        }
        // SAFETY: `reserve` sized every column for these records, and
        // concurrent runs cover disjoint records; x[0] was checked above.
        unsafe {
            v.kind.write(rec, *kinds.get_unchecked(x[0] as usize));
            v.name.write(rec, x[1] as u32);
            v.id.write(rec, x[2] as u32);
            v.self_size.write(rec, x[3] as u32);
            v.edge_count.write(rec, x[4] as u32);
            if x[5] != 0 {
                self.nonzero_trace.store(true, Relaxed);
                v.trace_node_id.write(rec, x[5] as u32);
            }
            if F == 7 && x[F - 1] != 0 {
                self.nonzero_detachedness.store(true, Relaxed);
                v.detachedness.write(rec, x[F - 1].min(255) as u8);
            }
        }
        true
    }

    /// Any layout, a number at a time, every value checked.
    fn careful(&self, first: u64, text: &[u8]) -> Result<u64, PieceError> {
        let f = self.layout.len();
        let mut field = (first % f as u64) as usize;
        let mut rec = (first / f as u64) as usize;
        let v = self.views;
        let layout = &self.layout[..];
        let kinds = &self.kind_of_type[..];
        let mut big = Vec::new();
        let (mut trace_seen, mut detached_seen) = (false, false);
        let mut max_name = 0;
        // SAFETY (all writes): `reserve` sized every column for these
        // records, and concurrent runs cover disjoint records/fields.
        let n = for_each_number(text, |x| {
            match layout[field] {
                NodeField::Type => {
                    let k =
                        *kinds.get(x as usize).ok_or_else(|| format!("node type {x} is not in meta.node_types ({} types)", kinds.len()))?;
                    unsafe { v.kind.write(rec, k) }
                }
                NodeField::Name => {
                    max_name = max_name.max(x + 1);
                    unsafe { v.name.write(rec, u32_of(x, "node name")?) }
                }
                NodeField::Id => unsafe { v.id.write(rec, u32_of(x, "node id")?) },
                NodeField::SelfSize => {
                    let s = if x >= BIG_SIZE as u64 {
                        big.push((rec as u32, x));
                        BIG_SIZE
                    } else {
                        x as u32
                    };
                    unsafe { v.self_size.write(rec, s) }
                }
                NodeField::EdgeCount => unsafe { v.edge_count.write(rec, u32_of(x, "edge_count")?) },
                NodeField::TraceNodeId => {
                    if x != 0 {
                        trace_seen = true;
                        unsafe { v.trace_node_id.write(rec, u32_of(x, "trace_node_id")?) }
                    }
                }
                NodeField::Detachedness => {
                    if x != 0 {
                        detached_seen = true;
                        unsafe { v.detachedness.write(rec, x.min(255) as u8) }
                    }
                }
                NodeField::Ignored => {}
            }
            field += 1;
            if field == f {
                field = 0;
                rec += 1;
            }
            Ok(())
        })?;
        self.max_name.fetch_max(max_name, Relaxed);
        if !big.is_empty() {
            self.big_sizes.lock().unwrap().extend(big);
        }
        if trace_seen {
            self.nonzero_trace.store(true, Relaxed);
        }
        if detached_seen {
            self.nonzero_detachedness.store(true, Relaxed);
        }
        Ok(n)
    }
}

#[inline(always)]
fn u32_of(x: u64, what: &str) -> Result<u32, String> {
    u32::try_from(x).map_err(|_| format!("{what} {x} does not fit in 32 bits"))
}

pub(crate) struct EdgeColumns {
    layout: Vec<EdgeField>,
    kind_of_type: Vec<u8>,
    /// Per edge type: whether its name is a string (not an index).
    string_named: Vec<bool>,
    node_fields: u64,
    node_count: u64,
    pub name: Vec<u32>,
    /// Target ordinals with the edge kind in the top bits (see
    /// `snapshot::EDGE_KIND_SHIFT`), written packed as they are read.
    pub to: Vec<u32>,
    /// One more than the largest string index an edge with a string name
    /// uses (0: none); the careful path counts every name (a bound).
    pub max_string: AtomicU64,
    views: (SharedSlice<u32>, SharedSlice<u32>),
}

impl EdgeColumns {
    pub(crate) fn new(meta: &Meta, node_count: u64, max_numbers: u64) -> Self {
        let f = meta.edge_field_count().max(1) as u64;
        let cap = meta.declared_edge_count.unwrap_or(0).min(max_numbers / f) as usize;
        EdgeColumns {
            layout: meta.edge_layout.clone(),
            kind_of_type: meta.edge_kinds.iter().map(|k| *k as u8).collect(),
            string_named: meta.edge_kinds.iter().map(|k| !k.name_is_index()).collect(),
            node_fields: meta.node_field_count() as u64,
            node_count,
            name: crate::mem::zeroed(cap),
            to: crate::mem::zeroed(cap),
            max_string: AtomicU64::new(0),
            views: Default::default(),
        }
    }
}

impl NumberSink for EdgeColumns {
    fn reserve(&mut self, total: u64) -> Result<()> {
        let records = total.div_ceil(self.layout.len() as u64);
        if records >= u32::MAX as u64 {
            return Err(SnapshotError::Inconsistent(format!("more than {} edges", u32::MAX)));
        }
        let r = records as usize;
        grow(&mut self.name, r);
        grow(&mut self.to, r);
        self.views = (SharedSlice::new(&mut self.name), SharedSlice::new(&mut self.to));
        Ok(())
    }

    fn write_run(&self, first: u64, text: &[u8]) -> Result<u64, PieceError> {
        // One copy of the loop per common node field count, so that the
        // to_node division is by a constant (a multiply); LLVM would
        // otherwise fold `match nf { 7 => x / 7, _ => x / nf }` back into
        // one hardware divide, a sixth of the edge parse.
        match self.node_fields {
            6 => self.write_edges::<6>(first, text),
            7 => self.write_edges::<7>(first, text),
            _ => self.write_edges::<0>(first, text),
        }
    }
}

impl EdgeColumns {
    #[inline(always)]
    fn write_edges<const NF: u64>(&self, first: u64, text: &[u8]) -> Result<u64, PieceError> {
        use EdgeField::*;
        match self.layout[..] {
            [Type, NameOrIndex, ToNode] => {
                let mut max_string = 0;
                let n = with_fast_records::<3>(
                    first,
                    text,
                    |f, t| self.careful::<NF>(f, t),
                    |rec, x| {
                        let ok = self.fast_record::<NF>(rec, x);
                        // Type checked in range by `fast_record` when ok.
                        if ok && self.string_named[x[0] as usize] {
                            max_string = max_string.max(x[1] + 1);
                        }
                        ok
                    },
                );
                self.max_string.fetch_max(max_string, Relaxed);
                n
            }
            _ => self.careful::<NF>(first, text),
        }
    }

    /// One record of the usual layout: type, name_or_index, to_node. False,
    /// for the careful path, on anything it would report.
    #[inline(always)]
    // The divisor is a nonzero constant or the header's field count (checked
    // nonzero when the header was read); checked_div would add a branch here.
    #[allow(clippy::manual_checked_ops)]
    fn fast_record<const NF: u64>(&self, rec: usize, x: &[u64; 3]) -> bool {
        let (vn, vt) = self.views;
        let kinds = &self.kind_of_type[..];
        let nf = if NF == 0 { self.node_fields } else { NF };
        let (q, r) = if NF == 0 { (x[2] / nf, x[2] % nf) } else { (x[2] / NF, x[2] % NF) };
        if (x[0] >= kinds.len() as u64) | (x[1] > u32::MAX as u64) | (r != 0) | (q >= self.node_count) {
            return false;
        }
        // SAFETY: `reserve` sized the columns for these records, concurrent
        // runs cover disjoint records; x[0] was checked above. A record the
        // careful path also reads (the last one) gets the same bits again.
        unsafe {
            let kind = *kinds.get_unchecked(x[0] as usize) as u32;
            vn.write(rec, x[1] as u32);
            vt.write(rec, q as u32 | kind << crate::snapshot::EDGE_KIND_SHIFT);
        }
        true
    }

    /// Any layout, a number at a time, every value checked.
    /// `NF`: the node field count when known at compile time, else 0.
    #[inline(always)]
    // As in `fast_record`: the divisor is never zero.
    #[allow(clippy::manual_checked_ops)]
    fn careful<const NF: u64>(&self, first: u64, text: &[u8]) -> Result<u64, PieceError> {
        let f = self.layout.len();
        let mut field = (first % f as u64) as usize;
        let mut rec = (first / f as u64) as usize;
        let (vn, vt) = self.views;
        let layout = &self.layout[..];
        let kinds = &self.kind_of_type[..];
        let nf = if NF == 0 { self.node_fields } else { NF };
        let node_count = self.node_count;
        let mut max_string = 0;
        // The kind and the target share a word, and a record cut between
        // two runs has them written by two threads: or-ed in atomically.
        let n = for_each_number(text, |x| {
            match layout[field] {
                EdgeField::Type => {
                    let k =
                        *kinds.get(x as usize).ok_or_else(|| format!("edge type {x} is not in meta.edge_types ({} types)", kinds.len()))?;
                    unsafe { vt.fetch_or(rec, (k as u32) << crate::snapshot::EDGE_KIND_SHIFT) }
                }
                EdgeField::NameOrIndex => {
                    max_string = max_string.max(x + 1);
                    unsafe { vn.write(rec, u32_of(x, "edge name_or_index")?) }
                }
                EdgeField::ToNode => {
                    let (q, r) = if NF == 0 { (x / nf, x % nf) } else { (x / NF, x % NF) };
                    if r != 0 || q >= node_count {
                        return Err(format!("edge {rec} to_node {x} is not a node offset ({node_count} nodes of {nf} fields)"));
                    }
                    unsafe { vt.fetch_or(rec, q as u32) }
                }
                EdgeField::Ignored => {}
            }
            field += 1;
            if field == f {
                field = 0;
                rec += 1;
            }
            Ok(())
        })?;
        self.max_string.fetch_max(max_string, Relaxed);
        Ok(n)
    }
}

/// A run of numbers for a layout of `F` fields: the careful path finishes
/// a record begun in the previous run, the fast path (`records`) takes whole
/// records, the careful path whatever it left (at least the end).
#[inline(always)]
fn with_fast_records<const F: usize>(
    first: u64,
    text: &[u8],
    careful: impl Fn(u64, &[u8]) -> Result<u64, PieceError>,
    mut fast: impl FnMut(usize, &[u64; F]) -> bool,
) -> Result<u64, PieceError> {
    let f = F as u64;
    let skip = ((f - first % f) % f) as usize;
    // The body starts after the head's `skip` numbers and their commas.
    let mut body_at = 0;
    for _ in 0..skip {
        match memchr::memchr(b',', &text[body_at..]) {
            Some(c) => body_at += c + 1,
            None => return careful(first, text),
        }
    }
    let head = if skip == 0 { 0 } else { careful(first, &text[..body_at - 1])? };
    let rec0 = ((first + head) / f) as usize;
    let r = crate::records::fast_records::<F>(&text[body_at..], |i, x| fast(rec0 + i, x));
    let at = body_at + r.at;
    let done = head + (r.records * F) as u64;
    let rest = careful(first + done, &text[at..]).map_err(|e| PieceError { at: e.at + at, msg: e.msg })?;
    Ok(done + rest)
}

/// Columns are allocated at the declared size up front; they only grow if
/// the file holds more than it declared (the mismatch is reported after).
fn grow<T: Copy + Default>(v: &mut Vec<T>, len: usize) {
    if len > v.len() {
        v.resize(len, T::default());
    }
}

impl NodeColumns {
    /// Cut the columns to the records actually read.
    pub(crate) fn truncate(&mut self, records: usize) {
        self.kind.truncate(records);
        self.name.truncate(records);
        self.id.truncate(records);
        self.self_size.truncate(records);
        self.edge_count.truncate(records);
        self.trace_node_id.truncate(records);
        self.detachedness.truncate(records);
    }
}

impl EdgeColumns {
    pub(crate) fn truncate(&mut self, records: usize) {
        self.name.truncate(records);
        self.to.truncate(records);
    }
}

#[cfg(test)]
mod tests {
    use crate::records::{CAREFUL_ONLY, FAST_RECORDS};
    use crate::{HeapSnapshot, ParseOptions};
    use std::sync::atomic::Ordering::Relaxed;

    /// A ring of `n` objects with a chord each, one record a line as V8
    /// writes them: big enough for the fast path.
    fn ring(n: usize) -> String {
        let meta = r#"{"snapshot":{"meta":{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"location_fields":["object_index","script_id","line","column"]},"node_count":NODES,"edge_count":EDGES},"#;
        let nodes: Vec<String> = (0..n)
            .map(|i| format!("{},{},{},{},2,{},{}", if i == 0 { 9 } else { 3 }, i % 4, 2 * i + 1, (i * 7919) % 100_000_000, i % 3, i % 2))
            .collect();
        let edges: Vec<String> =
            (0..n).flat_map(|i| [format!("2,{},{}", i % 4, (i + 1) % n * 7), format!("1,{},{}", i, (i * 13) % n * 7)]).collect();
        format!(
            "{}\n\"nodes\":[{}],\n\"edges\":[{}],\n\"locations\":[],\n\"strings\":[\"\",\"a\",\"b\",\"c\"]}}",
            meta.replace("NODES", &n.to_string()).replace("EDGES", &(2 * n).to_string()),
            nodes.join("\n,"),
            edges.join("\n,")
        )
    }

    fn parse(text: &[u8], threads: usize) -> Result<HeapSnapshot, String> {
        crate::parse_snapshot(Box::new(std::io::Cursor::new(text.to_vec())), ParseOptions { threads, ..Default::default() })
            .map_err(|e| e.to_string())
    }

    /// Everything the columns hold, for comparing two parses.
    fn columns(s: &HeapSnapshot) -> Vec<u64> {
        let mut out = vec![s.node_count() as u64, s.edge_count() as u64];
        for n in s.nodes() {
            out.extend([s.kind(n) as u64, s.name_index(n) as u64, s.id(n) as u64, s.self_size(n)]);
            out.extend([s.trace_node_id(n) as u64, s.detachedness(n) as u64, s.edges(n).start as u64]);
            for e in s.edges(n) {
                out.extend([s.edge_kind(e) as u64, s.edge_name_raw(e) as u64, s.edge_target(e) as u64]);
            }
        }
        out
    }

    /// Whatever the bytes, the fast path gives what the careful path alone
    /// gives: the same columns, or the same error at the same offset.
    #[test]
    fn fast_and_careful_paths_agree_on_corrupted_records() {
        let text = ring(1500).into_bytes();
        let find = |what: &[u8]| text.windows(what.len()).position(|w| w == what).unwrap();
        let (nodes_at, end) = (find(b"\"nodes\":"), find(b"\"locations\""));
        let before = FAST_RECORDS.load(Relaxed);
        let good = columns(&parse(&text, 2).unwrap());
        #[cfg(target_arch = "x86_64")]
        assert!(FAST_RECORDS.load(Relaxed) - before > 4000, "the fast path did not run");
        let mut cases = 0;
        for (k, i) in (nodes_at + 9..end).step_by(157).enumerate() {
            for b in [b',', b'x', b' ', b'9', b'\n', b'-', b']', b'0'][k % 8..].iter().take(3) {
                let mut v = text.clone();
                v[i] = *b;
                if *b == b'9' {
                    v.splice(i..i, b"12345678901234567".iter().copied()); // a number too long
                }
                for threads in [1, 2] {
                    CAREFUL_ONLY.store(false, Relaxed);
                    let fast = parse(&v, threads).map(|s| columns(&s));
                    CAREFUL_ONLY.store(true, Relaxed);
                    let careful = parse(&v, threads).map(|s| columns(&s));
                    CAREFUL_ONLY.store(false, Relaxed);
                    assert_eq!(fast, careful, "byte {i} set to {:?}, {threads} threads", *b as char);
                    cases += 1;
                }
            }
        }
        assert!(cases > 1000, "{cases}");
        // And the untouched text parses the same both ways.
        CAREFUL_ONLY.store(true, Relaxed);
        let careful = columns(&parse(&text, 2).unwrap());
        CAREFUL_ONLY.store(false, Relaxed);
        assert_eq!(good, careful);
    }
}
