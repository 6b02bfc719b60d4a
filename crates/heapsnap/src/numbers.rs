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

/// Up to eight leading ASCII digits of `chunk` (little-endian bytes of the
/// text): how many there are and their value. Branch-free: number lengths
/// vary record to record, and a mispredicted length loop costs more than
/// the digits themselves.
#[inline(always)]
fn swar_digits(chunk: u64) -> (u32, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let a = chunk ^ (0x30 * ONES);
    // A byte is a digit iff a <= 9: then neither a nor a + 0x76 has its top bit.
    let non_digit = (a.wrapping_add(0x76 * ONES) | a) & (0x80 * ONES);
    let len = non_digit.trailing_zeros() / 8; // 8 when all eight are digits
    if len == 0 {
        return (0, 0);
    }
    // Leading zeros in front, then the standard 8-digit combination.
    let mut v = a << (8 * (8 - len));
    v = (v.wrapping_mul(10)).wrapping_add(v >> 8);
    v = (((v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32)))
        .wrapping_add(((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32))))
        >> 32;
    (len, v)
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
        // Eight digits at once while eight bytes remain; the slow way for
        // the rest of a longer number (rare) or near the end of the text.
        let mut more = true;
        if i + 8 <= n {
            let (len, val) = swar_digits(u64::from_le_bytes(text[i..i + 8].try_into().unwrap()));
            v = val;
            i += len as usize;
            more = len == 8;
        }
        if more {
            while i < n {
                let d = text[i].wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                v = v.wrapping_mul(10).wrapping_add(d as u64);
                i += 1;
            }
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
        if i < n && text[i] == b',' {
            i += 1;
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Result<Vec<u64>, PieceError> {
        let mut out = Vec::new();
        for_each_number(text.as_bytes(), |v| {
            out.push(v);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn numbers_of_every_length_and_layout() {
        let values: Vec<u64> = (0..20).map(|k| 10u64.pow(k) - 1).chain((0..20).map(|k| 10u64.pow(k))).chain([u64::MAX]).collect();
        let compact = values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",");
        assert_eq!(all(&compact).unwrap(), values);
        let lines = values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n,");
        assert_eq!(all(&lines).unwrap(), values);
        assert_eq!(all(" 7 , 8\r\n,9 ").unwrap(), vec![7, 8, 9]);
        assert_eq!(all("00012345678,1").unwrap(), vec![12345678, 1]);
    }

    #[test]
    fn bad_numbers_are_errors_with_offsets() {
        assert_eq!(all("1,,2").unwrap_err().at, 2);
        assert_eq!(all("1,x").unwrap_err().at, 2);
        assert_eq!(all("12a,3").unwrap_err().at, 2);
        assert!(all("18446744073709551616").is_err());
        assert!(all("-1").is_err());
        assert!(all("1.5").is_err());
    }

    #[test]
    fn swar_matches_the_slow_way() {
        for text in ["0", "9", "12", "123,", "1234567", "12345678", "99999999", "1\n", "7]", "42abcdef"] {
            let mut bytes = [b'x'; 8];
            bytes[..text.len().min(8)].copy_from_slice(&text.as_bytes()[..text.len().min(8)]);
            let (len, v) = swar_digits(u64::from_le_bytes(bytes));
            let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
            assert_eq!(len as usize, digits.len().min(8), "{text}");
            assert_eq!(v, digits[..digits.len().min(8)].parse::<u64>().unwrap(), "{text}");
        }
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
        let region = &sc.buf()[sc.pos..sc.end];
        // Up to the last comma, every number is complete; the closing `]`
        // is looked for inside the pieces, in parallel.
        let cut = match memchr::memrchr(b',', region) {
            Some(q) => q,
            None => region.len(),
        };
        let base_offset = sc.offset();
        let seg = &region[..cut];
        let outcome = parse_segment(seg, cut < region.len(), total, sink, threads)
            .map_err(|(at, msg)| SnapshotError::syntax(base_offset + at as u64, format!("{msg} in `{what}`")))?;
        match outcome {
            Segment::Closed { count, bracket } => {
                total += count;
                sc.pos += bracket + 1;
                return Ok(total);
            }
            Segment::Open { count } if cut < region.len() => {
                total += count;
                sc.pos += cut + 1; // the segment and its comma
            }
            Segment::Open { .. } => {
                // Neither a comma nor `]`: a number cut by the window's end.
                if !sc.fill()? {
                    return Err(sc.truncated(what));
                }
            }
        }
    }
}

/// What a segment held.
enum Segment {
    /// Numbers, the array going on after them.
    Open { count: u64 },
    /// The array's end: numbers, then `]` at this offset.
    Closed { count: u64, bracket: usize },
}

/// Below this, splitting a segment costs more than it saves.
const MIN_PIECE: usize = 1 << 20;

/// Run `f` on every piece, the last one on the calling thread.
fn on_threads<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if n == 1 {
        return vec![f(0)];
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n - 1).map(|k| crate::limits::spawn_scoped(s, move || f(k))).collect();
        let last = f(n - 1);
        let mut out: Vec<T> = handles.into_iter().map(|h| h.join().expect("parser thread panicked")).collect();
        out.push(last);
        out
    })
}

/// Parse the numbers of `seg` (text that ends before a comma, or the
/// window's end) whose first has global index `first`, stopping at a `]`.
/// Pieces are cut at commas near equal byte positions; in parallel each
/// looks for `]` and counts its commas (so each knows its first index);
/// then, in parallel, each parses straight into the sink.
fn parse_segment(
    seg: &[u8],
    before_comma: bool,
    first: u64,
    sink: &mut dyn NumberSink,
    threads: usize,
) -> Result<Segment, (usize, String)> {
    let pieces = threads.clamp(1, 64).min(1 + seg.len() / MIN_PIECE);
    let mut bounds = vec![0usize];
    for k in 1..pieces {
        let target = seg.len() * k / pieces;
        let from = *bounds.last().unwrap();
        if target <= from {
            continue;
        }
        match memchr::memchr(b',', &seg[target..]) {
            Some(c) => bounds.push(target + c + 1),
            None => break,
        }
    }
    bounds.push(seg.len() + 1);
    let piece = |k: usize| (bounds[k], (bounds[k + 1] - 1).min(seg.len()));
    let scans = on_threads(bounds.len() - 1, |k| {
        let (a, b) = piece(k);
        let bracket = memchr::memchr(b']', &seg[a..b]).map(|i| a + i);
        let b = bracket.unwrap_or(b);
        (memchr::memchr_iter(b',', &seg[a..b]).count() as u64 + 1, bracket)
    });
    // Only the pieces up to the first `]` belong to the array.
    let closing = scans.iter().position(|&(_, br)| br.is_some());
    let used = closing.map_or(scans.len(), |k| k + 1);
    let bracket = closing.and_then(|k| scans[k].1);
    // The array ends early in this text (its last window): cut again, so
    // that every thread still gets a share of what is left of it.
    if let Some(br) = bracket {
        if used < bounds.len() - 1 && br >= 2 * MIN_PIECE {
            return parse_segment(&seg[..=br], before_comma, first, sink, threads);
        }
    }
    let end_of = |k: usize| if Some(k) == closing { bracket.unwrap() } else { piece(k).1 };
    if used == 1 {
        if let Some(br) = bracket {
            if seg[..br].iter().all(|&b| crate::scan::is_ws(b)) {
                if first == 0 {
                    return Ok(Segment::Closed { count: 0, bracket: br }); // `[]`
                }
                return Err((br, "expected a number before ']'".into()));
            }
        }
    }
    // Text ended neither by a comma nor by `]` may hold a cut number.
    if bracket.is_none() && !before_comma {
        return Ok(Segment::Open { count: 0 });
    }
    let counts: Vec<u64> = scans[..used].iter().map(|&(c, _)| c).collect();
    let total: u64 = counts.iter().sum();
    sink.reserve(first + total).map_err(|e| (0, e.to_string()))?;
    let mut starts = Vec::with_capacity(used);
    let mut index = first;
    for c in &counts {
        starts.push(index);
        index += c;
    }
    let sink: &dyn NumberSink = sink;
    let results = on_threads(used, |k| {
        let (a, _) = piece(k);
        let b = end_of(k);
        sink.write_run(starts[k], &seg[a..b]).map_err(|e| PieceError { at: e.at + a, msg: e.msg })
    });
    for (r, want) in results.into_iter().zip(&counts) {
        let got = r.map_err(|e| (e.at, e.msg))?;
        debug_assert_eq!(got, *want);
    }
    Ok(match bracket {
        Some(br) => Segment::Closed { count: total, bracket: br },
        None => Segment::Open { count: total },
    })
}

/// A sink that keeps every number as a `u32`, for the small arrays.
#[derive(Default)]
pub(crate) struct FlatU32 {
    pub values: Vec<u32>,
    view: SharedSlice<u32>,
}

impl FlatU32 {
    pub(crate) fn with_capacity(n: usize) -> Self {
        FlatU32 { values: Vec::with_capacity(n), view: SharedSlice::default() }
    }
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

impl SharedSlice<u32> {
    /// `v[i] |= bits`, atomically: for a word two threads may both write.
    /// # Safety
    /// As `write`, except that concurrent `fetch_or`s of index `i` are allowed.
    #[inline(always)]
    pub(crate) unsafe fn fetch_or(&self, i: usize, bits: u32) {
        assert!(i < self.len, "parser wrote past its reserved room");
        std::sync::atomic::AtomicU32::from_ptr(self.ptr.add(i)).fetch_or(bits, std::sync::atomic::Ordering::Relaxed);
    }
}
