//! A buffered byte scanner over any `Read`, for the few JSON shapes a heap
//! snapshot is made of. It never holds more than one buffer of the input:
//! files of many gigabytes stream through it.

use crate::error::{Result, SnapshotError};
use std::io::{self, Read};

/// Bytes read from the source at a time. Large enough that the numeric
/// arrays are parsed in big parallel segments, small next to any heap.
pub(crate) const BUFFER_SIZE: usize = 16 << 20;

/// Where the bytes come from: a stream copied into our buffer, or a regular
/// file mapped a window at a time (no copy at all: reading a 1 GB file
/// through `read` costs a second or more of memcpy on a small VM).
enum Source<'a> {
    Stream { src: Box<dyn Read + Send + 'a>, vec: Vec<u8> },
    Mapped { file: std::fs::File, len: u64, map: Option<memmap2::Mmap>, window: usize },
}

/// Bytes of a file mapped at a time: a 16th of the file, within these
/// bounds (any single token is far smaller). A window's pages count in the
/// peak memory, which must stay under the file's size: one 64 MiB window was
/// the whole of a 34 MB snapshot, and made the peak 1.9 times the file.
/// Bigger windows cost fewer system calls and thread hand-offs per byte.
const WINDOW_MIN: usize = 4 << 20;
const WINDOW_MAX: usize = 64 << 20;

fn window_for(file_len: u64) -> usize {
    usize::try_from(file_len / 16).unwrap_or(WINDOW_MAX).clamp(WINDOW_MIN, WINDOW_MAX)
}

pub(crate) struct Scanner<'a> {
    source: Source<'a>,
    pub(crate) pos: usize,
    pub(crate) end: usize,
    /// Absolute offset of `buf[0]` in the input.
    base: u64,
    eof: bool,
    progress: Option<&'a mut dyn FnMut(u64)>,
}

#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// What a one-letter JSON escape (`\\n`, `\\"`, ...) stands for; `None` for
/// `u` and for letters JSON does not allow.
#[inline]
pub(crate) fn simple_escape(c: u8) -> Option<u8> {
    match c {
        b'"' => Some(b'"'),
        b'\\' => Some(b'\\'),
        b'/' => Some(b'/'),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        _ => None,
    }
}

/// The value of four hex digits (a `\\u` escape's).
pub(crate) fn hex4(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |v, &c| Some(v * 16 + (c as char).to_digit(16)?))
}

/// The character a `\\uXXXX` escape stands for, given the unit of a `\\u`
/// escape right after it, if any: a high surrogate and a low one make one
/// character (then the second is used: `true`); a lone surrogate is U+FFFD
/// (V8 cuts code points above U+FFFF).
pub(crate) fn unit_char(unit: u32, low: Option<u32>) -> (char, bool) {
    if (0xD800..0xDC00).contains(&unit) {
        match low {
            Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                (char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (lo - 0xDC00)).unwrap_or('\u{FFFD}'), true)
            }
            _ => ('\u{FFFD}', false),
        }
    } else {
        (char::from_u32(unit).unwrap_or('\u{FFFD}'), false)
    }
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(src: Box<dyn Read + Send + 'a>, progress: Option<&'a mut dyn FnMut(u64)>) -> Self {
        let source = Source::Stream { src, vec: vec![0; BUFFER_SIZE] };
        Scanner { source, pos: 0, end: 0, base: 0, eof: false, progress }
    }

    /// Scan a regular file through memory mappings.
    pub(crate) fn mapped(file: std::fs::File, progress: Option<&'a mut dyn FnMut(u64)>) -> Result<Self> {
        Self::mapped_with_window(file, None, progress)
    }

    /// The same, `window` bytes at a time (a page or more) when given.
    pub(crate) fn mapped_with_window(file: std::fs::File, window: Option<usize>, progress: Option<&'a mut dyn FnMut(u64)>) -> Result<Self> {
        let len = file.metadata()?.len();
        let window = window.map_or_else(|| window_for(len), |w| w.max(4096));
        let source = Source::Mapped { file, len, map: None, window };
        Ok(Scanner { source, pos: 0, end: 0, base: 0, eof: false, progress })
    }

    /// At most how many numbers the rest of the input can hold (each takes
    /// two bytes or more); for a stream, a bound for preallocation only.
    pub(crate) fn max_numbers(&self) -> u64 {
        match &self.source {
            Source::Mapped { len, .. } => len.saturating_sub(self.offset()) / 2 + 1,
            Source::Stream { .. } => 1 << 24,
        }
    }

    /// How many bytes are left to read, when the input is a file.
    pub(crate) fn remaining_hint(&self) -> Option<u64> {
        match &self.source {
            Source::Mapped { len, .. } => Some(len.saturating_sub(self.offset())),
            Source::Stream { .. } => None,
        }
    }

    /// The current window of input; `pos..end` is unread.
    #[inline(always)]
    pub(crate) fn buf(&self) -> &[u8] {
        match &self.source {
            Source::Stream { vec, .. } => vec,
            Source::Mapped { map: Some(m), .. } => m,
            Source::Mapped { map: None, .. } => &[],
        }
    }

    /// Absolute input offset of the next unread byte.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn offset_of(&self, buf_index: usize) -> u64 {
        self.base + buf_index as u64
    }

    /// Move unread bytes to the front and read more. Returns false at end of input.
    pub(crate) fn fill(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let before = self.end - self.pos;
        match &mut self.source {
            Source::Stream { src, vec } => {
                if self.pos > 0 {
                    vec.copy_within(self.pos..self.end, 0);
                    self.base += self.pos as u64;
                    self.end -= self.pos;
                    self.pos = 0;
                }
                if self.end == vec.len() {
                    // A single token longer than the buffer: grow rather than fail.
                    let n = vec.len();
                    vec.resize(n * 2, 0);
                }
                // Fill the buffer as far as the source allows, so segments stay large.
                while self.end < vec.len() {
                    match src.read(&mut vec[self.end..]) {
                        Ok(0) => {
                            self.eof = true;
                            break;
                        }
                        Ok(n) => self.end += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(SnapshotError::Io(e)),
                    }
                }
            }
            Source::Mapped { file, len, map, window } => {
                let unread = self.base + self.pos as u64;
                let start = unread & !4095;
                if map.is_some() && self.base + self.end as u64 >= *len {
                    self.eof = true;
                    return Ok(false);
                }
                if map.is_some() && start == self.base {
                    // Nothing consumed since the last window: a huge token.
                    *window *= 2;
                }
                let want = (*len - start).min(*window as u64) as usize;
                if want == 0 {
                    self.eof = true;
                    *map = None;
                    self.pos = 0;
                    self.end = 0;
                    self.base = start;
                    return Ok(false);
                }
                // SAFETY: a read-only private mapping of a file we opened;
                // the snapshot is not expected to change while it is read.
                let m = unsafe { memmap2::MmapOptions::new().offset(start).len(want).populate().map(&*file)? };
                *map = Some(m);
                self.pos = (unread - start) as usize;
                self.end = want;
                self.base = start;
                if self.base + self.end as u64 >= *len {
                    self.eof = true;
                }
            }
        }
        if let Some(p) = self.progress.as_mut() {
            p(self.base + self.end as u64);
        }
        Ok(self.end - self.pos > before)
    }

    /// Ensure at least `n` unread bytes are buffered, unless the input ends first.
    pub(crate) fn ensure(&mut self, n: usize) -> Result<bool> {
        while self.end - self.pos < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(crate) fn truncated(&self, inside: &str) -> SnapshotError {
        SnapshotError::Truncated { offset: self.offset_of(self.end), inside: inside.to_string() }
    }

    /// The next non-whitespace byte, not consumed; None at end of input.
    pub(crate) fn peek_token(&mut self) -> Result<Option<u8>> {
        loop {
            while self.pos < self.end {
                let b = self.buf()[self.pos];
                if !is_ws(b) {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    pub(crate) fn expect(&mut self, want: u8, inside: &str) -> Result<()> {
        match self.peek_token()? {
            Some(b) if b == want => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => {
                Err(SnapshotError::syntax(self.offset(), format!("expected '{}' in {inside}, found {}", want as char, show_byte(b))))
            }
            None => Err(self.truncated(inside)),
        }
    }

    /// Read a JSON string (the opening quote next), decoding leniently: lone
    /// surrogates (V8 truncates code points above U+FFFF) become U+FFFD.
    pub(crate) fn string_into(&mut self, out: &mut Vec<u8>, inside: &str) -> Result<()> {
        self.expect(b'"', inside)?;
        let start_len = out.len();
        let mut raw_high_bytes = false;
        loop {
            if self.pos == self.end && !self.fill()? {
                return Err(self.truncated(inside));
            }
            let hay = &self.buf()[self.pos..self.end];
            match memchr::memchr2(b'"', b'\\', hay) {
                None => {
                    raw_high_bytes |= hay.iter().any(|&b| b >= 0x80);
                    out.extend_from_slice(hay);
                    self.pos = self.end;
                }
                Some(i) => {
                    raw_high_bytes |= hay[..i].iter().any(|&b| b >= 0x80);
                    out.extend_from_slice(&hay[..i]);
                    let at = self.pos + i;
                    if self.buf()[at] == b'"' {
                        self.pos = at + 1;
                        break;
                    }
                    self.pos = at;
                    self.escape_into(out, inside)?;
                }
            }
        }
        if raw_high_bytes && std::str::from_utf8(&out[start_len..]).is_err() {
            let fixed = String::from_utf8_lossy(&out[start_len..]).into_owned();
            out.truncate(start_len);
            out.extend_from_slice(fixed.as_bytes());
        }
        Ok(())
    }

    fn escape_into(&mut self, out: &mut Vec<u8>, inside: &str) -> Result<()> {
        // Longest escape we look at: a surrogate pair, 12 bytes.
        self.ensure(2)?;
        if self.end - self.pos < 2 {
            return Err(self.truncated(inside));
        }
        let c = self.buf()[self.pos + 1];
        if c != b'u' {
            let b = simple_escape(c)
                .ok_or_else(|| SnapshotError::syntax(self.offset(), format!("invalid escape '\\{}' in {inside}", c as char)))?;
            out.push(b);
            self.pos += 2;
            return Ok(());
        }
        self.ensure(6)?;
        let unit = self.hex4(self.pos + 2, inside)?;
        self.pos += 6;
        let low = if (0xD800..0xDC00).contains(&unit) {
            // A high surrogate: a low one may follow.
            self.ensure(6)?;
            let pair = self.end - self.pos >= 6 && self.buf()[self.pos] == b'\\' && self.buf()[self.pos + 1] == b'u';
            if pair {
                self.hex4(self.pos + 2, inside).ok()
            } else {
                None
            }
        } else {
            None
        };
        let (ch, used_low) = unit_char(unit, low);
        if used_low {
            self.pos += 6;
        }
        let mut tmp = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
        Ok(())
    }

    fn hex4(&self, at: usize, inside: &str) -> Result<u32> {
        if at + 4 > self.end {
            return Err(self.truncated(inside));
        }
        hex4(&self.buf()[at..at + 4]).ok_or_else(|| SnapshotError::syntax(self.offset_of(at), format!("invalid \\u escape in {inside}")))
    }

    /// Skip one JSON value of any shape, optionally copying its bytes.
    /// Iterative, so deeply nested input (the `trace_tree`) cannot overflow the stack.
    pub(crate) fn skip_value(&mut self, mut record: Option<&mut Vec<u8>>, limit: usize, inside: &str) -> Result<()> {
        let mut depth: usize = 0;
        let mut in_string = false;
        let mut escaped = false;
        let mut started = false;
        loop {
            if self.pos == self.end && !self.fill()? {
                return Err(self.truncated(inside));
            }
            let start = self.pos;
            let mut done = false;
            while self.pos < self.end {
                let b = self.buf()[self.pos];
                self.pos += 1;
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                        if depth == 0 {
                            done = true;
                            break;
                        }
                    }
                    continue;
                }
                match b {
                    b'"' => {
                        in_string = true;
                        started = true;
                    }
                    b'[' | b'{' => {
                        depth += 1;
                        started = true;
                    }
                    b']' | b'}' => {
                        if depth == 0 {
                            if started {
                                // A scalar ends where its enclosing object or
                                // array does: leave the bracket unread.
                                self.pos -= 1;
                                done = true;
                                break;
                            }
                            return Err(SnapshotError::syntax(self.offset() - 1, format!("unexpected '{}' in {inside}", b as char)));
                        }
                        depth -= 1;
                        if depth == 0 {
                            done = true;
                            break;
                        }
                    }
                    b',' | b':' if depth == 0 => {
                        // End of a scalar at the top level: leave the delimiter unread.
                        self.pos -= 1;
                        if !started {
                            return Err(SnapshotError::syntax(self.offset(), format!("expected a value in {inside}")));
                        }
                        done = true;
                        break;
                    }
                    _ if is_ws(b) => {
                        if depth == 0 && started {
                            done = true;
                            break;
                        }
                    }
                    _ => started = true,
                }
            }
            if let Some(r) = record.as_deref_mut() {
                r.extend_from_slice(&self.buf()[start..self.pos]);
                if r.len() > limit {
                    return Err(SnapshotError::Foreign(format!("{inside} is larger than {limit} bytes")));
                }
            }
            if done {
                return Ok(());
            }
            if self.pos == self.end && self.eof && depth == 0 && started && !in_string {
                return Ok(()); // a scalar that ends the input
            }
        }
    }
}

pub(crate) fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// Reads a source on its own thread, so that copying the file (or
/// decompressing it) overlaps with parsing. Blocks go back to the reading
/// thread once consumed: fresh memory costs a page fault per 4 KiB, which
/// on a virtual machine is more than the copy itself.
pub(crate) struct ThreadedReader {
    full: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    empty: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    at: usize,
    done: bool,
}

const BLOCK: usize = 4 << 20;
const BLOCKS: usize = 4;

impl ThreadedReader {
    pub(crate) fn spawn<R: Read + Send + 'static>(mut inner: R) -> Self {
        let (full_tx, full) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(BLOCKS);
        let (empty, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(BLOCKS + 2);
        crate::limits::spawn(move || {
            let mut spare = BLOCKS + 1;
            loop {
                let mut block = match empty_rx.try_recv() {
                    Ok(b) => b,
                    Err(_) if spare > 0 => {
                        spare -= 1;
                        Vec::with_capacity(BLOCK)
                    }
                    Err(_) => match empty_rx.recv() {
                        Ok(b) => b,
                        Err(_) => return, // the reader is gone
                    },
                };
                block.clear();
                block.resize(BLOCK, 0);
                let mut filled = 0;
                while filled < block.len() {
                    match inner.read(&mut block[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            let _ = full_tx.send(Err(e));
                            return;
                        }
                    }
                }
                block.truncate(filled);
                let last = filled == 0;
                if full_tx.send(Ok(block)).is_err() || last {
                    return;
                }
            }
        });
        ThreadedReader { full, empty, cur: Vec::new(), at: 0, done: false }
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.full.recv() {
                Ok(Ok(block)) => {
                    if block.is_empty() {
                        self.done = true;
                    }
                    let used = std::mem::replace(&mut self.cur, block);
                    if used.capacity() > 0 {
                        let _ = self.empty.try_send(used);
                    }
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.at);
        out[..n].copy_from_slice(&self.cur[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
