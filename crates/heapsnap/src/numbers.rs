//! The hot path: the flat arrays of decimal integers (`nodes`, `edges`,
//! `locations`, ...), which are nearly all of a snapshot's bytes.
//!
//! Each buffered block is cut at its last comma, the commas are counted (a
//! SIMD scan) so every number's global index is known in advance, and the
//! block is split in as many pieces as there are threads. Every piece then
//! parses its digits straight into the struct-of-arrays columns at known
//! positions: no intermediate vector, no second pass.

use crate::error::{Result, SnapshotError};
use crate::scan::{is_ws, show_byte, Scanner};

/// A parse error inside a piece, relative to the piece's first byte.
#[derive(Debug)]
pub(crate) struct PieceError {
    pub at: usize,
    pub msg: String,
}

/// Where the numbers of one array go. `write_run` is called concurrently on
/// disjoint index ranges, after `reserve` made room for them.
pub(crate) trait NumberSink: Sync {
    /// Make room for the numbers with global index below `total`.
    fn reserve(&mut self, total: u64) -> Result<()>;
    /// Parse `text` (complete numbers separated by commas) whose first number
    /// has global index `first`. Returns how many numbers it held.
    fn write_run(&self, first: u64, text: &[u8]) -> Result<u64, PieceError>;
}

/// Calls `f(value)` for each number in `text`; `text` holds complete numbers
/// separated by commas, with optional whitespace around them.
#[inline(always)]
pub(crate) fn for_each_number(text: &[u8], mut f: impl FnMut(u64) -> Result<(), String>) -> Result<u64, PieceError> {
    let n = text.len();
    let mut i = 0;
    let mut count = 0u64;
    loop {
        while i < n && is_ws(text[i]) {
            i += 1;
        }
        let start = i;
        let mut v: u64 = 0;
        while i < n {
            let d = text[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.wrapping_mul(10).wrapping_add(d as u64);
            i += 1;
        }
        if i == start {
            let msg = match text.get(i) {
                Some(&b) => format!("expected a number, found {}", show_byte(b)),
                None => "expected a number".to_string(),
            };
            return Err(PieceError { at: i, msg });
        }
        if i - start > 19 && (i - start > 20 || text[start] > b'1' || v < 10_000_000_000_000_000_000) {
            return Err(PieceError { at: start, msg: "number too large".into() });
        }
        if let Err(msg) = f(v) {
            return Err(PieceError { at: start, msg });
        }
        count += 1;
        while i < n && is_ws(text[i]) {
            i += 1;
        }
        if i == n {
            return Ok(count);
        }
        if text[i] != b',' {
            return Err(PieceError { at: i, msg: format!("expected ',' between numbers, found {}", show_byte(text[i])) });
        }
        i += 1;
    }
}

/// Parse one numeric array (the `[` next) into `sink`; returns how many numbers it held.
pub(crate) fn parse_array(sc: &mut Scanner<'_>, sink: &mut dyn NumberSink, threads: usize, what: &str) -> Result<u64> {
    sc.expect(b'[', what)?;
    let mut total: u64 = 0;
    loop {
        if sc.pos == sc.end && !sc.fill()? {
            return Err(sc.truncated(what));
        }
        let region = &sc.buf[sc.pos..sc.end];
        let (seg_len, last) = match memchr::memchr(b']', region) {
            Some(p) => (p, true),
            None => match memchr::memrchr(b',', region) {
                Some(q) if !sc.at_eof() => (q, false),
                _ => {
                    // No complete number in the buffer yet: read more.
                    if !sc.fill()? {
                        return Err(sc.truncated(what));
                    }
                    continue;
                }
            },
        };
        let seg_start = sc.pos;
        let seg = &sc.buf[seg_start..seg_start + seg_len];
        if last && total == 0 && seg.iter().all(|&b| is_ws(b)) {
            sc.pos += seg_len + 1;
            return Ok(0); // `[]`
        }
        let commas = memchr::memchr_iter(b',', seg).count() as u64;
        let count = commas + 1;
        sink.reserve(total + count)?;
        let base_offset = sc.offset_of(seg_start);
        parse_segment(seg, total, commas, &*sink, threads).map_err(|(at, msg)| {
            SnapshotError::syntax(base_offset + at as u64, format!("{msg} in `{what}`"))
        })?;
        total += count;
        sc.pos += seg_len + 1; // the segment and its ',' or ']'
        if last {
            return Ok(total);
        }
    }
}

/// Below this, splitting a segment costs more than it saves.
const MIN_PIECE: usize = 1 << 20;

fn parse_segment(seg: &[u8], first: u64, commas: u64, sink: &dyn NumberSink, threads: usize) -> Result<(), (usize, String)> {
    let pieces = threads.clamp(1, 64).min(1 + seg.len() / MIN_PIECE);
    if pieces <= 1 {
        return sink.write_run(first, seg).map(|_| ()).map_err(|e| (e.at, e.msg));
    }
    // Cut at commas near equal byte positions; each piece's first index is
    // known from the commas before it.
    let mut cuts = Vec::with_capacity(pieces + 1);
    cuts.push((0usize, first));
    let mut prev = 0usize;
    let mut index = first;
    for k in 1..pieces {
        let target = seg.len() * k / pieces;
        if target <= prev {
            continue;
        }
        let Some(c) = memchr::memchr(b',', &seg[target..]).map(|c| c + target) else { break };
        index += memchr::memchr_iter(b',', &seg[prev..c]).count() as u64 + 1;
        prev = c + 1;
        cuts.push((prev, index));
    }
    debug_assert!(index <= first + commas);
    let cuts = &cuts;
    let results: Vec<Result<u64, PieceError>> = std::thread::scope(|s| {
        let run = move |k: usize| {
            let (start, idx) = cuts[k];
            let end = if k + 1 < cuts.len() { cuts[k + 1].0 - 1 } else { seg.len() };
            sink.write_run(idx, &seg[start..end]).map_err(|e| PieceError { at: e.at + start, msg: e.msg })
        };
        let handles: Vec<_> = (1..cuts.len()).map(|k| s.spawn(move || run(k))).collect();
        let mut out = vec![run(0)];
        out.extend(handles.into_iter().map(|h| h.join().expect("parser thread panicked")));
        out
    });
    for r in results {
        r.map_err(|e| (e.at, e.msg))?;
    }
    Ok(())
}

/// A sink that keeps every number as a `u32`, for the small arrays.
#[derive(Default)]
pub(crate) struct FlatU32 {
    pub values: Vec<u32>,
    view: SharedSlice<u32>,
}

impl NumberSink for FlatU32 {
    fn reserve(&mut self, total: u64) -> Result<()> {
        let total = usize::try_from(total).map_err(|_| SnapshotError::Inconsistent("array too long".into()))?;
        self.values.resize(total, 0);
        self.view = SharedSlice::new(&mut self.values);
        Ok(())
    }
    fn write_run(&self, first: u64, text: &[u8]) -> Result<u64, PieceError> {
        let out = self.view;
        let mut i = first as usize;
        for_each_number(text, |v| {
            let v = u32::try_from(v).map_err(|_| format!("{v} does not fit in 32 bits"))?;
            // SAFETY: `reserve` sized the vector; runs write disjoint indexes.
            unsafe { out.write(i, v) };
            i += 1;
            Ok(())
        })
    }
}

/// A raw view of a vector that parser threads write at disjoint indexes.
#[derive(Clone, Copy)]
pub(crate) struct SharedSlice<T> {
    ptr: *mut T,
    len: usize,
}

unsafe impl<T: Send> Send for SharedSlice<T> {}
unsafe impl<T: Send> Sync for SharedSlice<T> {}

impl<T> Default for SharedSlice<T> {
    fn default() -> Self {
        SharedSlice { ptr: std::ptr::null_mut(), len: 0 }
    }
}

impl<T: Copy> SharedSlice<T> {
    /// Take the view right after (re)sizing the vector; it is valid until the
    /// vector is touched again.
    pub(crate) fn new(v: &mut [T]) -> Self {
        SharedSlice { ptr: v.as_mut_ptr(), len: v.len() }
    }
    /// # Safety
    /// No other thread may access index `i` concurrently, and the backing
    /// vector must not be reallocated while this view is used.
    #[inline(always)]
    pub(crate) unsafe fn write(&self, i: usize, v: T) {
        assert!(i < self.len, "parser wrote past its reserved room");
        self.ptr.add(i).write(v);
    }
}
