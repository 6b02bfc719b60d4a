//! Reading a whole snapshot: the top-level object, key by key, streaming.

use crate::columns::{EdgeColumns, NodeColumns};
use crate::error::{Result, SnapshotError};
use crate::meta::{EdgeKind, LocationField, Meta};
use crate::numbers::{parse_array, FlatU32};
use crate::scan::{Scanner, ThreadedReader};
use crate::snapshot::{HeapSnapshot, Location, Strings};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// How to read a snapshot.
#[derive(Default)]
pub struct ParseOptions<'a> {
    /// Threads for the numeric arrays; 0 means all available cores.
    pub threads: usize,
    /// Called with the number of input bytes read so far.
    pub progress: Option<&'a mut dyn FnMut(u64)>,
    /// Receives a lap per top-level section read.
    pub observer: Option<&'a dyn crate::observe::Observer>,
}

impl ParseOptions<'_> {
    /// The threads asked for, else those the limits in force allow, else all cores.
    fn thread_count(&self) -> usize {
        let limit = crate::limits::current().threads;
        if self.threads > 0 {
            self.threads
        } else if limit > 0 {
            limit
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }
    }
}

/// An opened snapshot source. Nothing runs yet: with more than one
/// thread, parsing reads a stream ahead on a thread of its own.
pub enum Input {
    /// Any byte stream: stdin, a pipe, a decompressor.
    Stream(Box<dyn Read + Send>),
    /// A regular uncompressed file: read through memory mappings.
    File(File),
}

/// Where a snapshot comes from: a path, `-` for stdin; gzip is detected by
/// its magic bytes. Also returns the size on disk when it says how much
/// there is to read (for a progress bar).
pub fn open_input(path: &Path) -> Result<(Input, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((sniff_gzip(Box::new(std::io::stdin()))?, None));
    }
    let f = File::open(path)?;
    let meta = f.metadata()?;
    if meta.is_dir() {
        return Err(SnapshotError::Io(std::io::Error::other("is a directory")));
    }
    if !meta.is_file() {
        // A FIFO or device: stream it.
        return Ok((sniff_gzip(Box::new(f))?, None));
    }
    let mut head = [0u8; 2];
    let got = {
        use std::os::unix::fs::FileExt;
        f.read_at(&mut head, 0)?
    };
    if got == 2 && head == [0x1f, 0x8b] {
        let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, f));
        // Decompressed on a thread of its own when parsed with more than
        // one; the size on disk says nothing of the text's.
        return Ok((Input::Stream(Box::new(gz)), None));
    }
    Ok((Input::File(f), Some(meta.len())))
}

/// Peek at a stream's first bytes and put a gzip decoder in front if needed.
fn sniff_gzip(mut raw: Box<dyn Read + Send>) -> Result<Input> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match raw.read(&mut head[got..])? {
            0 => break,
            n => got += n,
        }
    }
    let rest = std::io::Cursor::new(head[..got].to_vec()).chain(raw);
    if got == 2 && head == [0x1f, 0x8b] {
        let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, rest));
        return Ok(Input::Stream(Box::new(gz)));
    }
    Ok(Input::Stream(Box::new(rest)))
}

/// Read a snapshot file (`-` for stdin, `.gz` detected by content).
pub fn read_snapshot(path: &Path, opts: ParseOptions<'_>) -> Result<HeapSnapshot> {
    let (input, _) = open_input(path)?;
    parse_input(input, opts)
}

/// `read_snapshot` of a regular file mapped `window` bytes at a time rather
/// than as many as its size calls for: for tests that end a window at a
/// chosen byte.
#[doc(hidden)]
pub fn read_file_windowed(path: &Path, window: usize, mut opts: ParseOptions<'_>) -> Result<HeapSnapshot> {
    let sc = Scanner::mapped_with_window(File::open(path)?, Some(window), opts.progress.take())?;
    parse_with(sc, opts.thread_count(), false, opts.observer)
}

/// Parse an opened input.
pub fn parse_input(input: Input, mut opts: ParseOptions<'_>) -> Result<HeapSnapshot> {
    match input {
        Input::Stream(r) => {
            let threads = opts.thread_count();
            let sc = Scanner::new(read_ahead(r, threads), opts.progress.take());
            parse_with(sc, threads, false, opts.observer)
        }
        Input::File(f) => {
            let sc = Scanner::mapped(f, opts.progress.take())?;
            parse_with(sc, opts.thread_count(), false, opts.observer)
        }
    }
}

/// Only the `snapshot` header and the `nodes` array, for callers that need
/// node ids, types and sizes (e.g. the largest id of an older snapshot):
/// the returned snapshot has no edges and no strings (every name reads as
/// empty), and the rest of the input is not read. About a third of the
/// work of a full parse.
pub fn parse_nodes_only(input: Input, mut opts: ParseOptions<'_>) -> Result<HeapSnapshot> {
    let threads = opts.thread_count();
    let sc = match input {
        Input::Stream(r) => Scanner::new(read_ahead(r, threads), opts.progress.take()),
        Input::File(f) => Scanner::mapped(f, opts.progress.take())?,
    };
    parse_with(sc, threads, true, opts.observer)
}

/// Parse a snapshot from any byte stream.
pub fn parse_snapshot<'a>(input: Box<dyn Read + Send + 'a>, mut opts: ParseOptions<'a>) -> Result<HeapSnapshot> {
    let threads = opts.thread_count();
    let sc = Scanner::new(input, opts.progress.take());
    parse_with(sc, threads, false, opts.observer)
}

/// An opened stream, read (and decompressed) ahead on a thread of its own
/// when there is more than one.
fn read_ahead(input: Box<dyn Read + Send>, threads: usize) -> Box<dyn Read + Send> {
    if threads > 1 {
        Box::new(ThreadedReader::spawn(input))
    } else {
        input
    }
}

fn parse_with(sc: Scanner<'_>, threads: usize, nodes_only: bool, observer: Option<&dyn crate::observe::Observer>) -> Result<HeapSnapshot> {
    crate::limits::with_threads(threads, || parse_sections(sc, threads, nodes_only, observer))
}

fn parse_sections(
    mut sc: Scanner<'_>,
    threads: usize,
    nodes_only: bool,
    observer: Option<&dyn crate::observe::Observer>,
) -> Result<HeapSnapshot> {
    match sc.peek_token()? {
        None => return Err(SnapshotError::Foreign("the input is empty".into())),
        Some(b'{') => sc.pos += 1,
        Some(b) => {
            return Err(SnapshotError::Foreign(format!(
                "expected a JSON object, found {} at byte {}",
                crate::scan::show_byte(b),
                sc.offset()
            )))
        }
    }

    let mut meta: Option<Meta> = None;
    let mut nodes: Option<NodeColumns> = None;
    let mut node_total = 0u64;
    let mut edges: Option<EdgeColumns> = None;
    let mut edge_total = 0u64;
    // Once `edges` is read, the graph is finished (CSR offsets, kinds packed
    // into the targets, the largest string references found) on another
    // thread while this one reads `locations` and `strings`.
    let mut graph_job: Option<std::thread::JoinHandle<Graph>> = None;
    let mut strings: Option<Strings> = None;
    let mut locations_raw: Option<Vec<u32>> = None;
    let mut locations_job: Option<std::thread::JoinHandle<Result<Vec<Location>>>> = None;
    let mut trace_function_infos = Vec::new();
    let mut trace_tree = crate::traces::TraceTree::default();
    let mut samples = Vec::new();
    let mut key = Vec::new();
    let mut seen_keys: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    let laps = crate::observe::Laps::new(observer, crate::observe::Stage::Parse);
    let mut first = true;

    loop {
        match sc.peek_token()? {
            Some(b'}') => {
                sc.pos += 1;
                break;
            }
            Some(b',') if !first => sc.pos += 1,
            Some(_) if first => {}
            Some(b) => {
                return Err(SnapshotError::syntax(
                    sc.offset(),
                    format!("expected ',' or '}}' after a top-level value, found {}", crate::scan::show_byte(b)),
                ))
            }
            None => return Err(sc.truncated("the top-level object")),
        }
        first = false;
        key.clear();
        let key_at = sc.offset();
        if sc.peek_token()? != Some(b'"') {
            if sc.peek_token()?.is_none() {
                return Err(sc.truncated("the top-level object"));
            }
            return Err(SnapshotError::syntax(key_at, "expected a key in the top-level object"));
        }
        sc.string_into(&mut key, "a top-level key")?;
        sc.expect(b':', "the top-level object")?;
        laps.lap_with(|| format!("`{}`", String::from_utf8_lossy(&key)));
        if !seen_keys.insert(key.clone()) {
            return Err(SnapshotError::syntax(
                key_at,
                format!("duplicate key `{}` in the top-level object", String::from_utf8_lossy(&key)),
            ));
        }
        match key.as_slice() {
            b"snapshot" => {
                let mut raw = Vec::new();
                let at = sc.offset();
                sc.skip_value(Some(&mut raw), 64 << 20, "`snapshot`")?;
                let v: serde_json::Value =
                    serde_json::from_slice(&raw).map_err(|e| SnapshotError::syntax(at, format!("bad `snapshot` header: {e}")))?;
                meta = Some(Meta::from_json(&v)?);
            }
            b"nodes" => {
                let m = meta.as_ref().ok_or_else(|| SnapshotError::Foreign("`nodes` comes before `snapshot`".into()))?;
                let mut cols = NodeColumns::new(m, sc.max_numbers());
                node_total = parse_array(&mut sc, &mut cols, threads, "nodes")?;
                cols.truncate(node_total.div_ceil(m.node_field_count() as u64) as usize);
                nodes = Some(cols);
                if nodes_only {
                    break;
                }
            }
            b"edges" => {
                let m = meta.as_ref().ok_or_else(|| SnapshotError::Foreign("`edges` comes before `snapshot`".into()))?;
                let n = nodes.as_ref().ok_or_else(|| SnapshotError::Foreign("`edges` comes before `nodes`".into()))?;
                let mut cols = EdgeColumns::new(m, n.kind.len() as u64, sc.max_numbers());
                edge_total = parse_array(&mut sc, &mut cols, threads, "edges")?;
                cols.truncate(edge_total.div_ceil(m.edge_field_count() as u64) as usize);
                if threads > 1 && edge_total.is_multiple_of(m.edge_field_count() as u64) {
                    let n = nodes.as_mut().expect("checked above");
                    let edge_count = std::mem::take(&mut n.edge_count);
                    graph_job = Some(crate::limits::spawn(move || Graph::finish(edge_count, cols)));
                } else {
                    edges = Some(cols);
                }
            }
            b"locations" => {
                // Room for all it could hold (address space only, until
                // written): growing by doubling would copy it over and over.
                let mut flat = FlatU32::with_capacity(sc.max_numbers().min(1 << 32) as usize);
                parse_array(&mut sc, &mut flat, threads, "locations")?;
                // Resolved on another core while this one reads `strings`.
                match (&meta, &nodes) {
                    (Some(m), Some(n)) if threads > 1 => {
                        let (layout, nf, node_count) = (m.location_layout.clone(), m.node_field_count(), n.kind.len());
                        let raw = flat.values;
                        locations_job = Some(crate::limits::spawn(move || resolve_locations(&layout, nf, &raw, node_count)));
                    }
                    _ => locations_raw = Some(flat.values),
                }
            }
            b"trace_function_infos" => {
                let mut flat = FlatU32::default();
                parse_array(&mut sc, &mut flat, 1, "trace_function_infos")?;
                trace_function_infos = flat.values;
            }
            b"trace_tree" => {
                // `[]` without allocation tracking: nothing to keep.
                let mut raw = Vec::new();
                sc.skip_value(Some(&mut raw), 1 << 31, "`trace_tree`")?;
                // The tree is optional: one this parser cannot read costs
                // the allocation stacks, not the snapshot.
                if raw.len() > 2 {
                    trace_tree = crate::traces::TraceTree::parse(&raw).unwrap_or_default();
                }
            }
            b"samples" => {
                let mut flat = FlatU32::default();
                parse_array(&mut sc, &mut flat, 1, "samples")?;
                samples = flat.values;
            }
            b"strings" => strings = Some(parse_strings(&mut sc, threads)?),
            _ => {
                // `trace_tree` (nested) and anything newer: skipped, streaming.
                let what = format!("`{}`", String::from_utf8_lossy(&key));
                sc.skip_value(None, 0, &what)?;
            }
        }
    }

    if nodes_only {
        return nodes_only_snapshot(meta, nodes, node_total);
    }
    // Only whitespace may follow: `cat a b` of two snapshots must not pass as one.
    if let Some(b) = sc.peek_token()? {
        return Err(SnapshotError::syntax(sc.offset(), format!("unexpected {} after the end of the snapshot", crate::scan::show_byte(b))));
    }
    laps.lap("end of input");
    let meta = meta.ok_or_else(|| SnapshotError::Foreign("no `snapshot` header".into()))?;
    let mut nodes = nodes.ok_or_else(|| SnapshotError::Foreign("no `nodes` array".into()))?;
    let graph = match (graph_job, edges) {
        (Some(job), _) => job.join().expect("graph thread panicked"),
        (None, Some(cols)) => Graph::finish(std::mem::take(&mut nodes.edge_count), cols),
        (None, None) => return Err(SnapshotError::Foreign("no `edges` array".into())),
    };
    let strings = strings.ok_or_else(|| SnapshotError::Foreign("no `strings` array".into()))?;

    let nf = meta.node_field_count() as u64;
    let ef = meta.edge_field_count() as u64;
    if !node_total.is_multiple_of(nf) {
        return Err(SnapshotError::Inconsistent(format!("`nodes` holds {node_total} numbers, not a multiple of the {nf} node fields")));
    }
    if !edge_total.is_multiple_of(ef) {
        return Err(SnapshotError::Inconsistent(format!("`edges` holds {edge_total} numbers, not a multiple of the {ef} edge fields")));
    }
    let node_count = nodes.kind.len();
    let edge_count = graph.edge_to.len();
    if let Some(d) = meta.declared_node_count {
        if d != node_count as u64 {
            return Err(SnapshotError::Inconsistent(format!("snapshot.node_count is {d} but `nodes` holds {node_count} nodes")));
        }
    }
    if let Some(d) = meta.declared_edge_count {
        if d != edge_count as u64 {
            return Err(SnapshotError::Inconsistent(format!("snapshot.edge_count is {d} but `edges` holds {edge_count} edges")));
        }
    }
    if node_count > crate::snapshot::MAX_NODES as usize {
        return Err(SnapshotError::Inconsistent(format!(
            "{node_count} nodes: more than the {} leakhound can hold",
            crate::snapshot::MAX_NODES
        )));
    }
    if node_count == 0 {
        return Err(SnapshotError::Inconsistent("`nodes` is empty".into()));
    }

    let Graph { first_edge, edge_sum: sum, edge_name, edge_to, max_edge_string } = graph;
    let node_name = std::mem::take(&mut nodes.name);
    // One more than the largest, found while the nodes were read (0: none).
    let max_node_name = nodes.max_name.load(std::sync::atomic::Ordering::Relaxed).checked_sub(1);
    if sum != edge_count as u64 {
        return Err(SnapshotError::Inconsistent(format!("the nodes' edge_count fields sum to {sum} but `edges` holds {edge_count} edges")));
    }

    // String references must resolve.
    // (The largest ones were found while the strings were read; only a
    // bad file pays for finding which.)
    let string_count = strings.len() as u32;
    if max_node_name.is_some_and(|m| m >= string_count as u64) {
        if let Some((n, &s)) = node_name.iter().enumerate().find(|&(_, &s)| s >= string_count) {
            return Err(SnapshotError::Inconsistent(format!("node {n} has name string {s} but `strings` holds {string_count}")));
        }
    }
    if max_edge_string.is_some_and(|m| m >= string_count as u64) {
        let kind_of = |e: usize| EdgeKind::from_u8((edge_to[e] >> crate::snapshot::EDGE_KIND_SHIFT) as u8);
        if let Some((e, &s)) = edge_name.iter().enumerate().find(|&(e, &s)| s >= string_count && !kind_of(e).name_is_index()) {
            return Err(SnapshotError::Inconsistent(format!("edge {e} has name string {s} but `strings` holds {string_count}")));
        }
    }

    let locations = match (locations_job, locations_raw) {
        (Some(job), _) => job.join().expect("locations thread panicked")?,
        (None, Some(raw)) => resolve_locations(&meta.location_layout, meta.node_field_count(), &raw, node_count)?,
        (None, None) => Vec::new(),
    };
    let root = match meta.root_index {
        Some(r) if r % nf == 0 && r / nf < node_count as u64 => (r / nf) as u32,
        Some(r) => return Err(SnapshotError::Inconsistent(format!("snapshot.root_index {r} is not a node"))),
        None => 0,
    };
    let mut big_sizes = nodes.big_sizes.into_inner().unwrap();
    big_sizes.sort_unstable();

    Ok(HeapSnapshot {
        meta,
        node_kind: nodes.kind,
        node_name,
        node_id: nodes.id,
        node_self_size: nodes.self_size,
        big_sizes,
        first_edge,
        trace_node_id: if nodes.nonzero_trace.into_inner() { nodes.trace_node_id } else { Vec::new() },
        detachedness: if nodes.nonzero_detachedness.into_inner() { nodes.detachedness } else { Vec::new() },
        edge_name,
        edge_to,
        strings,
        locations,
        trace_function_infos,
        trace_tree,
        samples,
        root,
    })
}

/// What `parse_nodes_only` returns: the nodes, each with no edges.
fn nodes_only_snapshot(meta: Option<Meta>, nodes: Option<NodeColumns>, node_total: u64) -> Result<HeapSnapshot> {
    let meta = meta.ok_or_else(|| SnapshotError::Foreign("no `snapshot` header".into()))?;
    let nodes = nodes.ok_or_else(|| SnapshotError::Foreign("no `nodes` array".into()))?;
    let nf = meta.node_field_count() as u64;
    if !node_total.is_multiple_of(nf) {
        return Err(SnapshotError::Inconsistent(format!("`nodes` holds {node_total} numbers, not a multiple of the {nf} node fields")));
    }
    let node_count = nodes.kind.len();
    if node_count == 0 || node_count > crate::snapshot::MAX_NODES as usize {
        return Err(SnapshotError::Inconsistent(format!("`nodes` holds {node_count} nodes")));
    }
    let root = match meta.root_index {
        Some(r) if r % nf == 0 && r / nf < node_count as u64 => (r / nf) as u32,
        _ => 0,
    };
    let mut big_sizes = nodes.big_sizes.into_inner().unwrap();
    big_sizes.sort_unstable();
    Ok(HeapSnapshot {
        meta,
        node_kind: nodes.kind,
        node_name: vec![u32::MAX; node_count],
        node_id: nodes.id,
        node_self_size: nodes.self_size,
        big_sizes,
        first_edge: vec![0; node_count + 1],
        trace_node_id: Vec::new(),
        detachedness: Vec::new(),
        edge_name: Vec::new(),
        edge_to: Vec::new(),
        strings: Strings::default(),
        locations: Vec::new(),
        trace_function_infos: Vec::new(),
        trace_tree: Default::default(),
        samples: Vec::new(),
        root,
    })
}

/// Strings without escapes, each followed by `,` or `]`, from `pos` on
/// (the window's end left for the careful path, with a margin), none
/// starting at or past `stop`: their contents appended to `data` and their
/// ends to `ends`. Returns where the careful path goes on, and whether the
/// array was closed. Sixteen bytes are looked at and copied at a time: most
/// strings are short, and a call to `memchr` and `memcpy` each would cost
/// more than the string.
fn plain_strings(buf: &[u8], mut pos: usize, end: usize, stop: usize, data: &mut Vec<u8>, ends: &mut Vec<u32>) -> (usize, bool) {
    let end = end.min(buf.len());
    loop {
        if pos >= stop {
            return (pos, false);
        }
        let mut p = pos;
        // V8 puts a newline before each string after the first.
        while p < end && crate::scan::is_ws(buf[p]) {
            p += 1;
        }
        if p >= end || buf[p] != b'"' {
            return (pos, false);
        }
        let start = p + 1;
        let mut q = start;
        let hit = loop {
            if q + 16 > end || data.capacity() - data.len() < q - start + 16 || data.len() + (q - start) > u32::MAX as usize - 16 {
                return (pos, false);
            }
            let chunk: &[u8; 16] = buf[q..q + 16].try_into().unwrap();
            // SAFETY: the check above left 16 bytes of room past what this
            // string has copied so far; `set_len` below covers only its text.
            unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), data.as_mut_ptr().add(data.len() + (q - start)), 16) };
            let m = quote_or_backslash16(chunk);
            if m != 0 {
                break q + m.trailing_zeros() as usize;
            }
            q += 16;
        };
        if buf[hit] != b'"' || hit + 1 >= end || (buf[hit + 1] != b',' && buf[hit + 1] != b']') {
            return (pos, false);
        }
        // SAFETY: the bytes up to `hit` were copied in above.
        unsafe { data.set_len(data.len() + (hit - start)) };
        ends.push(data.len() as u32);
        pos = hit + 2;
        if buf[hit + 1] == b']' {
            return (pos, true);
        }
    }
}

/// A bit for each `"` or `\\` among 16 bytes.
#[inline(always)]
fn quote_or_backslash16(chunk: &[u8; 16]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86_64; the load is unaligned.
        unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr() as *const __m128i);
            let m = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)), _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)));
            _mm_movemask_epi8(m) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        chunk.iter().enumerate().fold(0, |m, (i, &b)| m | (((b == b'"' || b == b'\\') as u32) << i))
    }
}

/// The strings from a point in the window on, read on another thread
/// while this one reads those before it (see `parse_strings`).
struct Ahead {
    /// Absolute input offsets where they start (a newline between two
    /// strings) and where the careful path goes on after them.
    from: u64,
    to: u64,
    closed: bool,
    data: Vec<u8>,
    ends: Vec<u32>,
}

/// Windows with less than this left are read on one thread.
const STRINGS_SPLIT_MIN: usize = 4 << 20;

/// Where to cut `buf[pos..end]` for two threads: a newline near the middle
/// that V8 put between two strings (a raw newline is never inside a JSON
/// string, and after `,` and before `"` it cannot be anything else).
fn strings_split(buf: &[u8], pos: usize, end: usize) -> Option<usize> {
    let mid = pos + (end - pos) / 2;
    let nl = mid + memchr::memchr(b'\n', &buf[mid..end])?;
    (nl > pos && buf[nl - 1] == b',' && buf.get(nl + 1) == Some(&b'"') && end - nl > STRINGS_SPLIT_MIN / 4).then_some(nl)
}

/// Half a window, on either thread: strings, with or without escapes, from
/// `pos` on, none starting at or past `stop`. It stops, for the careful path to go on,
/// at anything unusual (a string cut by the window's end, a bad escape,
/// a missing delimiter); raw bytes that are not UTF-8 are copied as they
/// are and repaired with the whole table.
fn strings_ahead(buf: &[u8], mut pos: usize, end: usize, stop: usize, data: &mut Vec<u8>, ends: &mut Vec<u32>) -> (usize, bool) {
    loop {
        let (p, closed) = plain_strings(buf, pos, end, stop, data, ends);
        pos = p;
        if closed || pos >= stop {
            return (pos, closed);
        }
        let before = data.len();
        let Some(after) = escaped_string(buf, pos, end, data) else {
            data.truncate(before);
            return (pos, false);
        };
        match buf.get(after) {
            Some(&d @ (b',' | b']')) if data.len() <= u32::MAX as usize - 16 => {
                ends.push(data.len() as u32);
                pos = after + 1;
                if d == b']' {
                    return (pos, true);
                }
            }
            _ => {
                data.truncate(before);
                return (pos, false);
            }
        }
    }
}

/// One JSON string inside `buf[pos..end]` (whitespace, then the opening
/// quote), decoded into `out`; where it ends, after the closing quote.
/// `None` if it does not end inside the window or has a bad escape.
fn escaped_string(buf: &[u8], pos: usize, end: usize, out: &mut Vec<u8>) -> Option<usize> {
    let mut p = pos;
    while p < end && crate::scan::is_ws(buf[p]) {
        p += 1;
    }
    if p >= end || buf[p] != b'"' {
        return None;
    }
    p += 1;
    loop {
        let i = memchr::memchr2(b'"', b'\\', &buf[p..end])?;
        out.extend_from_slice(&buf[p..p + i]);
        p += i;
        if buf[p] == b'"' {
            return Some(p + 1);
        }
        let c = *buf.get(p + 1).filter(|_| p + 1 < end)?;
        if c != b'u' {
            out.push(crate::scan::simple_escape(c)?);
            p += 2;
            continue;
        }
        let unit = crate::scan::hex4(buf.get(p + 2..p + 6).filter(|_| p + 6 <= end)?)?;
        p += 6;
        let low = (p + 6 <= end && buf[p] == b'\\' && buf[p + 1] == b'u').then(|| crate::scan::hex4(&buf[p + 2..p + 6])).flatten();
        let (ch, used_low) = crate::scan::unit_char(unit, low);
        if used_low {
            p += 6;
        }
        let mut tmp = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
    }
}

/// The strings table. Most of it is read by the fast path, and with two
/// threads or more each window is split in two (`strings_ahead` on each
/// half): the second half on another thread into buffers of its own,
/// appended once this thread's reading (fast or careful) arrives exactly
/// where that half starts; if it never does (a malformed file), that half
/// is dropped and read again here.
fn parse_strings(sc: &mut Scanner<'_>, threads: usize) -> Result<Strings> {
    sc.expect(b'[', "`strings`")?;
    // The rest of a file bounds the table; capacity not written is not memory.
    let rest = sc.remaining_hint().unwrap_or(0).min(u32::MAX as u64) as usize;
    let mut data = Vec::with_capacity(rest);
    let mut ends: Vec<u32> = Vec::with_capacity(rest / 3);
    let too_big = || SnapshotError::Inconsistent("`strings` holds more than 4 GiB of text".into());
    let parallel = threads > 1 && crate::limits::current().parallel();
    let mut ahead: Option<Ahead> = None;
    if sc.peek_token()? == Some(b']') {
        sc.pos += 1;
    } else {
        loop {
            if parallel && ahead.is_none() && sc.end.saturating_sub(sc.pos) >= STRINGS_SPLIT_MIN {
                if let Some(mid) = strings_split(sc.buf(), sc.pos, sc.end) {
                    let (buf, pos, end) = (sc.buf(), sc.pos, sc.end);
                    let (here, there) = std::thread::scope(|scope| {
                        let other = crate::limits::spawn_scoped(scope, || {
                            let mut data = Vec::with_capacity(end - mid + 16);
                            let mut ends = Vec::with_capacity((end - mid) / 3);
                            let (to, closed) = strings_ahead(buf, mid, end, usize::MAX, &mut data, &mut ends);
                            (to, closed, data, ends)
                        });
                        let here = strings_ahead(buf, pos, end, mid, &mut data, &mut ends);
                        (here, other.join().expect("strings thread panicked"))
                    });
                    let (to, closed, d, e) = there;
                    ahead = Some(Ahead { from: sc.offset_of(mid), to: sc.offset_of(to), closed, data: d, ends: e });
                    sc.pos = here.0;
                    if here.1 {
                        // Closed before the cut: the cut was not between strings.
                        break;
                    }
                }
            }
            // Fast path: strings without escapes followed directly by their
            // delimiter, all inside the window (nearly every string).
            let stop = ahead.as_ref().map_or(usize::MAX, |a| (a.from.saturating_sub(sc.offset_of(0))) as usize);
            let (pos, closed) = plain_strings(sc.buf(), sc.pos, sc.end, stop, &mut data, &mut ends);
            sc.pos = pos;
            if closed {
                break;
            }
            if let Some(a) = ahead.take() {
                let to = a.to.checked_sub(sc.offset_of(0)).map(|t| t as usize);
                match to {
                    Some(to) if sc.offset() == a.from && to <= sc.end && data.len() + a.data.len() <= u32::MAX as usize - 16 => {
                        // Arrived where the other half starts: take it.
                        let base = data.len() as u32;
                        data.extend_from_slice(&a.data);
                        ends.extend(a.ends.iter().map(|&e| e + base));
                        sc.pos = to;
                        if a.closed {
                            break;
                        }
                        continue;
                    }
                    _ if sc.offset() < a.from => ahead = Some(a),
                    _ => {}
                }
            }
            sc.string_into(&mut data, "`strings`")?;
            ends.push(u32::try_from(data.len()).map_err(|_| too_big())?);
            match sc.peek_token()? {
                Some(b',') => sc.pos += 1,
                Some(b']') => {
                    sc.pos += 1;
                    break;
                }
                Some(b) => {
                    return Err(SnapshotError::syntax(
                        sc.offset(),
                        format!("expected ',' or ']' in `strings`, found {}", crate::scan::show_byte(b)),
                    ))
                }
                None => return Err(sc.truncated("`strings`")),
            }
        }
    }
    // The fast path copied raw bytes: check the whole table at once, and
    // only if it is not UTF-8 (raw non-ASCII bytes, not V8's own output)
    // repair it string by string.
    let data = match String::from_utf8(data) {
        Ok(text) => text,
        Err(e) => {
            let raw = e.into_bytes();
            let mut fixed = String::with_capacity(raw.len());
            let mut start = 0usize;
            for end in ends.iter_mut() {
                fixed.push_str(&String::from_utf8_lossy(&raw[start..*end as usize]));
                start = *end as usize;
                *end = u32::try_from(fixed.len()).map_err(|_| too_big())?;
            }
            fixed
        }
    };
    Ok(Strings { data, ends })
}

fn resolve_locations(layout: &[LocationField], nf: usize, raw: &[u32], node_count: usize) -> Result<Vec<Location>> {
    let lf = layout.len();
    if lf == 0 {
        return Ok(Vec::new());
    }
    if !raw.len().is_multiple_of(lf) {
        return Err(SnapshotError::Inconsistent(format!(
            "`locations` holds {} numbers, not a multiple of the {lf} location fields",
            raw.len()
        )));
    }
    let nf = nf as u32;
    let mut out = Vec::with_capacity(raw.len() / lf);
    for rec in raw.chunks_exact(lf) {
        let mut loc = Location { node: 0, script_id: 0, line: 0, column: 0 };
        for (f, &v) in layout.iter().zip(rec) {
            match f {
                LocationField::ObjectIndex => {
                    if v % nf != 0 || (v / nf) as usize >= node_count {
                        return Err(SnapshotError::Inconsistent(format!("location object_index {v} is not a node offset")));
                    }
                    loc.node = v / nf;
                }
                LocationField::ScriptId => loc.script_id = v,
                LocationField::Line => loc.line = v,
                LocationField::Column => loc.column = v,
                LocationField::Ignored => {}
            }
        }
        out.push(loc);
    }
    if !out.is_sorted_by_key(|l| l.node) {
        out.sort_by_key(|l| l.node);
    }
    Ok(out)
}

/// The graph's columns once `edges` is read: what needs no strings.
struct Graph {
    /// Each node's first edge (CSR offsets), one more than the nodes.
    first_edge: Vec<u32>,
    /// Sum of the nodes' edge_count fields (must equal the edges read).
    edge_sum: u64,
    edge_name: Vec<u32>,
    /// Target ordinals with the edge kind in the top bits.
    edge_to: Vec<u32>,
    /// The largest string index an edge with a string name uses.
    max_edge_string: Option<u64>,
}

impl Graph {
    /// The CSR offsets from the edge counts. The edges' kinds were packed
    /// with their targets, and their largest string name found, while they
    /// were read.
    fn finish(mut first_edge: Vec<u32>, edges: EdgeColumns) -> Graph {
        first_edge.push(0);
        let mut sum: u64 = 0;
        for slot in first_edge.iter_mut() {
            let c = *slot as u64;
            *slot = sum.min(u32::MAX as u64) as u32;
            sum += c;
        }
        let EdgeColumns { name, to, max_string, .. } = edges;
        // One more than the largest (0: none).
        let max_edge_string = max_string.into_inner().checked_sub(1);
        Graph { first_edge, edge_sum: sum, edge_name: name, edge_to: to, max_edge_string }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 16-bytes-at-a-time path and the careful one together read every
    /// string back: short, long, escaped early or late, non-ASCII, empty,
    /// with and without V8's newlines.
    #[test]
    fn strings_of_every_shape() {
        let mut want: Vec<String> = Vec::new();
        for i in 0..3000usize {
            let base = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(2 + i % 5);
            let s = match i % 7 {
                0 => String::new(),
                1 => base[..i % 40].to_string(),
                2 => format!("{}\"quoted\" {}", &base[..i % 33], i),
                3 => format!("{}é ✓ 😀 {}", &base[..i % 20], i),
                4 => format!("{}\\back\\slash\n{}", &base[..(i * 7) % 50], i),
                5 => base.clone(),
                _ => format!("{}{}", i, &base[..i % 17]),
            };
            want.push(s);
        }
        for sep in [",", ",\n", ", "] {
            let text = format!("[{}]", want.iter().map(|s| serde_json::to_string(s).unwrap()).collect::<Vec<_>>().join(sep));
            let mut sc = Scanner::new(Box::new(std::io::Cursor::new(text.into_bytes())), None);
            let strings = parse_strings(&mut sc, 1).unwrap();
            assert_eq!(strings.len(), want.len());
            for (i, w) in want.iter().enumerate() {
                assert_eq!(strings.get(i as u32), Some(w.as_str()), "string {i} with {sep:?}");
            }
        }
    }

    /// A table big enough to be split between two threads reads back the
    /// same as on one: escapes of every kind on both sides of the cut,
    /// surrogate pairs and lone surrogates, raw bytes that are not UTF-8,
    /// and strings cut by the cut's search (commas and quotes inside).
    #[test]
    fn strings_split_between_threads_read_the_same() {
        let mut items: Vec<Vec<u8>> = Vec::new();
        for i in 0..400_000usize {
            let item: Vec<u8> = match i % 9 {
                0 => format!("\"plain {i}\"").into_bytes(),
                1 => format!("\"line\\nbreak \\\"quoted\\\" {i}\"").into_bytes(),
                2 => format!("\"emoji \\ud83d\\ude00 and lone \\ud800 {i}\"").into_bytes(),
                3 => format!("\"unicode \\u00e9\\u2713 {i}\"").into_bytes(),
                4 => [b"\"raw ".as_slice(), &[0xff, 0xfe], format!(" {i}\"").as_bytes()].concat(),
                5 => format!("\"a,\\n\\\"b\\\",\\n\\\" {i}\"").into_bytes(),
                6 => b"\"\"".to_vec(),
                7 => format!("\"{}\"", "x".repeat(i % 300)).into_bytes(),
                _ => format!("\"tab\\tslash\\/back\\\\ {i}\"").into_bytes(),
            };
            items.push(item);
        }
        let mut text = b"[".to_vec();
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                text.extend_from_slice(b",\n");
            }
            text.extend_from_slice(item);
        }
        text.push(b']');
        assert!(text.len() > 2 * STRINGS_SPLIT_MIN, "the table must be big enough to split");
        let read = |threads: usize| {
            let mut sc = Scanner::new(Box::new(std::io::Cursor::new(text.clone())), None);
            crate::limits::with_threads(threads, || parse_strings(&mut sc, threads)).unwrap()
        };
        let (one, two) = (read(1), read(2));
        assert_eq!(one.len(), items.len());
        assert_eq!(two.len(), items.len());
        assert_eq!(one.data, two.data);
        assert_eq!(one.ends, two.ends);
        assert_eq!(one.get(2), Some("emoji 😀 and lone \u{FFFD} 2"));
        assert_eq!(one.get(4), Some("raw \u{FFFD}\u{FFFD} 4"));
        assert_eq!(one.get(5), Some("a,\n\"b\",\n\" 5"));
    }
}
