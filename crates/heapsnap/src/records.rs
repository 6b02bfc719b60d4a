//! Whole records at a time, for `nodes` and `edges` (nearly all of a
//! snapshot's bytes), when they have the layout every V8 writes.
//!
//! `numbers::for_each_number` reads one number after another: where the next
//! one starts depends on where this one ended, a chain of dependent loads and
//! bit counts of about 20 cycles a number. Here the start of every number in
//! a 64-byte block is found at once (SSE2 compares, one bit a byte), the
//! separators are checked in the same pass, and each number is then read
//! from its own start, so the CPU works on several at a time.
//!
//! Anything unusual stops this fast path: a byte that is neither a digit, a
//! comma nor whitespace; two commas in a row or two numbers without one; a
//! number of 16 digits or more; a value the caller rejects (the record
//! closure returns false). The caller's careful path then takes over from
//! the last record written (parsing it again, to check what follows it), so
//! errors are found and reported exactly as before, at the same offsets.

/// Bytes looked at by one round of compares.
#[cfg(target_arch = "x86_64")]
const BLOCK: usize = 64;

/// Blocks checked before their records are parsed: small enough that the
/// text is still in L1 when its numbers are read.
#[cfg(target_arch = "x86_64")]
const CHUNK_BLOCKS: usize = 64;

/// Tests set this to compare the fast path with the careful one alone.
#[cfg(test)]
pub(crate) static CAREFUL_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records the fast path has read, for the tests to see it at work.
#[cfg(test)]
pub(crate) static FAST_RECORDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Where the careful path goes on after `fast_records`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Resume {
    /// Records written that the careful path need not read again.
    pub records: usize,
    /// Byte offset in the text of the first number of the next record.
    pub at: usize,
}

/// Parse whole records of `F` numbers from the start of `text` (which
/// starts at a record's first number, maybe after whitespace), calling
/// `record(i, values)` for the i-th. `record` returns false to stop at that
/// record (a value it cannot take); it may have written part of it, which
/// the careful path writes again.
///
/// The last records of the text are always left to the careful path, as is
/// the last record written (its separator after it may not have been
/// checked), so the careful path sees the text's end and every error.
#[inline(always)]
pub(crate) fn fast_records<const F: usize>(text: &[u8], record: impl FnMut(usize, &[u64; F]) -> bool) -> Resume {
    #[cfg(test)]
    if CAREFUL_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
        return Resume { records: 0, at: 0 };
    }
    let r = dispatch::<F>(text, record);
    #[cfg(test)]
    FAST_RECORDS.fetch_add(r.records, std::sync::atomic::Ordering::Relaxed);
    r
}

#[inline(always)]
fn dispatch<const F: usize>(text: &[u8], record: impl FnMut(usize, &[u64; F]) -> bool) -> Resume {
    #[cfg(target_arch = "x86_64")]
    {
        x86::fast_records::<F>(text, record)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (text, record);
        Resume { records: 0, at: 0 }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Resume, BLOCK, CHUNK_BLOCKS};
    use std::arch::x86_64::*;

    pub(super) fn fast_records<const F: usize>(text: &[u8], record: impl FnMut(usize, &[u64; F]) -> bool) -> Resume {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("bmi1") {
            // SAFETY: the CPU has the features `records_avx2` is compiled for.
            unsafe { records_avx2::<F>(text, record) }
        } else {
            // SAFETY: SSE2 is part of x86_64.
            unsafe { records_core::<F, false>(text, record) }
        }
    }

    /// The SSE2 path, whatever the CPU, for the tests.
    #[cfg(test)]
    pub(super) fn fast_records_sse2<const F: usize>(text: &[u8], record: impl FnMut(usize, &[u64; F]) -> bool) -> Resume {
        // SAFETY: SSE2 is part of x86_64.
        unsafe { records_core::<F, false>(text, record) }
    }

    #[target_feature(enable = "avx2,bmi1,bmi2,popcnt,lzcnt,ssse3,sse4.1")]
    unsafe fn records_avx2<const F: usize>(text: &[u8], record: impl FnMut(usize, &[u64; F]) -> bool) -> Resume {
        records_core::<F, true>(text, record)
    }

    /// One vector width's pass of `classify`: the same compares for SSE2
    /// (16 bytes) and AVX2 (32), named by their intrinsics.
    macro_rules! classify_lanes {
        ($p:expr, $width:literal, $vec:ty, $load:ident, $set1:ident, $sub:ident, $min:ident, $eq:ident, $or:ident, $mask:ident) => {{
            let (mut d, mut c, mut w) = (0u64, 0u64, 0u64);
            for k in 0..64 / $width {
                let b = $load($p.add($width * k) as *const $vec);
                let x = $sub(b, $set1(b'0' as i8));
                let digit = $eq($min(x, $set1(9)), x);
                let is_comma = $eq(b, $set1(b',' as i8));
                let ws = $or(
                    $or($eq(b, $set1(b' ' as i8)), $eq(b, $set1(b'\n' as i8))),
                    $or($eq(b, $set1(b'\r' as i8)), $eq(b, $set1(b'\t' as i8))),
                );
                d |= ($mask(digit) as u32 as u64) << ($width * k);
                c |= ($mask(is_comma) as u32 as u64) << ($width * k);
                w |= ($mask(ws) as u32 as u64) << ($width * k);
            }
            (d, c, w)
        }};
    }

    /// The digit, comma and whitespace bytes of one 64-byte block, a bit each.
    #[inline(always)]
    unsafe fn classify<const AVX2: bool>(p: *const u8) -> (u64, u64, u64) {
        if AVX2 {
            classify_lanes!(
                p,
                32,
                __m256i,
                _mm256_loadu_si256,
                _mm256_set1_epi8,
                _mm256_sub_epi8,
                _mm256_min_epu8,
                _mm256_cmpeq_epi8,
                _mm256_or_si256,
                _mm256_movemask_epi8
            )
        } else {
            classify_lanes!(
                p,
                16,
                __m128i,
                _mm_loadu_si128,
                _mm_set1_epi8,
                _mm_sub_epi8,
                _mm_min_epu8,
                _mm_cmpeq_epi8,
                _mm_or_si128,
                _mm_movemask_epi8
            )
        }
    }

    /// Bit i becomes the parity of bits 0..=i.
    #[inline(always)]
    fn prefix_xor(mut x: u64) -> u64 {
        x ^= x << 1;
        x ^= x << 2;
        x ^= x << 4;
        x ^= x << 8;
        x ^= x << 16;
        x ^= x << 32;
        x
    }

    /// Append `at + i` for every set bit i of `bits` to `out` (which has
    /// room for 64 past `n`); returns the new length. Eight at a time,
    /// unconditionally: a loop that stops at the last bit mispredicts once
    /// a block.
    #[inline(always)]
    unsafe fn flatten(out: *mut u32, mut n: usize, at: u32, mut bits: u64) -> usize {
        let count = bits.count_ones() as usize;
        let put8 = |n: usize, bits: &mut u64| {
            for i in 0..8 {
                *out.add(n + i) = at + bits.trailing_zeros();
                *bits &= bits.wrapping_sub(1);
            }
        };
        put8(n, &mut bits);
        let mut k = 8;
        while k < count {
            put8(n + k, &mut bits);
            k += 8;
        }
        n += count;
        n
    }

    #[inline(always)]
    unsafe fn load(p: *const u8) -> u64 {
        u64::from_le_bytes(std::ptr::read_unaligned(p as *const [u8; 8]))
    }

    /// `TOP[n]` keeps the top n bytes of a word: the n digits of a number
    /// read as the 8 bytes ending at its end.
    const TOP: [u64; 9] = [
        0,
        0xFF << 56,
        0xFFFF << 48,
        0xFF_FFFF << 40,
        0xFFFF_FFFF << 32,
        0xFF_FFFF_FFFF << 24,
        0xFFFF_FFFF_FFFF << 16,
        0xFF_FFFF_FFFF_FFFF << 8,
        u64::MAX,
    ];
    const ZEROS: u64 = 0x3030_3030_3030_3030;

    /// Eight digit values (0-9, the first in the low byte) to their number.
    #[inline(always)]
    fn combine(mut v: u64) -> u64 {
        v = (v.wrapping_mul(10)).wrapping_add(v >> 8);
        (((v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32)))
            .wrapping_add(((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32))))
            >> 32
    }

    /// The number in `text[s..e]`, all digits (checked by the caller).
    #[inline(always)]
    unsafe fn number_at(base: *const u8, s: usize, e: usize) -> Option<u64> {
        let len = e - s;
        if len <= 8 && e >= 8 {
            return Some(combine((load(base.add(e - 8)) ^ ZEROS) & TOP[len]));
        }
        // 9 digits are common too: `to_node` past 100 million (14 million
        // nodes of 7 fields), ids past 2^27.
        if len < 16 && e >= 16 {
            let lo = combine(load(base.add(e - 8)) ^ ZEROS);
            let hi = combine((load(base.add(e - 16)) ^ ZEROS) & TOP[len - 8]);
            return Some(hi * 100_000_000 + lo);
        }
        number_rare(base, s, e)
    }

    /// Numbers of 16 digits or more (the careful path's), and any near the
    /// text's start.
    #[cold]
    #[inline(never)]
    unsafe fn number_rare(base: *const u8, s: usize, e: usize) -> Option<u64> {
        if e - s >= 16 {
            return None;
        }
        let mut v = 0u64;
        for i in s..e {
            v = v * 10 + (*base.add(i) - b'0') as u64;
        }
        Some(v)
    }

    /// Two numbers of at most 8 digits at once, in one vector register.
    #[inline(always)]
    unsafe fn two_numbers(base: *const u8, (s0, e0): (usize, usize), (s1, e1): (usize, usize)) -> (u64, u64) {
        let text = _mm_castpd_si128(_mm_loadh_pd(
            _mm_castsi128_pd(_mm_loadl_epi64(base.add(e0 - 8) as *const __m128i)),
            base.add(e1 - 8) as *const f64,
        ));
        let mask = _mm_castpd_si128(_mm_loadh_pd(
            _mm_castsi128_pd(_mm_loadl_epi64(TOP.as_ptr().add(e0 - s0) as *const __m128i)),
            TOP.as_ptr().add(e1 - s1) as *const f64,
        ));
        let digits = _mm_and_si128(_mm_sub_epi8(text, _mm_set1_epi8(b'0' as i8)), mask);
        // Pairs of digits, then fours, then eights: the first digit is the
        // most significant.
        let t = _mm_maddubs_epi16(digits, _mm_set_epi8(1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10));
        let t = _mm_madd_epi16(t, _mm_set_epi16(1, 100, 1, 100, 1, 100, 1, 100));
        let t = _mm_packus_epi32(t, t);
        let t = _mm_madd_epi16(t, _mm_set_epi16(1, 10000, 1, 10000, 1, 10000, 1, 10000));
        (_mm_cvtsi128_si32(t) as u32 as u64, _mm_extract_epi32::<1>(t) as u32 as u64)
    }

    #[inline(always)]
    unsafe fn records_core<const F: usize, const AVX2: bool>(text: &[u8], mut record: impl FnMut(usize, &[u64; F]) -> bool) -> Resume {
        let none = Resume { records: 0, at: 0 };
        let len = text.len();
        if F == 0 || len < 4 * BLOCK || len > u32::MAX as usize {
            return none;
        }
        let blocks = len / BLOCK;
        let base = text.as_ptr();
        // Where numbers start and end (one past their last digit), found
        // but not yet parsed: room for a chunk's worst case (a number every
        // other byte, 64 more for `flatten`) past what is carried over.
        let room = CHUNK_BLOCKS * BLOCK / 2 + 2 * F + 64 + 64;
        let mut starts: Vec<u32> = vec![0; room];
        let mut ends: Vec<u32> = vec![0; room];
        let (mut n_starts, mut n_ends) = (0usize, 0usize);
        let mut prev_digit = 0u64; // 1 if the byte before this block was a digit
        let mut parity = 0u64; // all ones after a number, zero after a comma (or at the start)
        let mut done = 0usize;
        let mut last_start = 0u32;
        let mut block = 0usize;
        let mut values = [0u64; F];
        loop {
            let chunk_end = (block + CHUNK_BLOCKS).min(blocks);
            let mut clean = true;
            while block < chunk_end {
                // The next chunk, on its way from memory while this one is parsed.
                if block + CHUNK_BLOCKS < blocks {
                    _mm_prefetch::<_MM_HINT_T0>(base.add((block + CHUNK_BLOCKS) * BLOCK) as *const i8);
                }
                // The block lies inside `text` (block < len / BLOCK).
                let (d, c, w) = classify::<AVX2>(base.add(block * BLOCK));
                // A number starts at a digit not preceded by one, and ends
                // at a non-digit preceded by one.
                let after_digit = (d << 1) | prev_digit;
                let s = d & !after_digit;
                let e = !d & after_digit;
                // Numbers and commas must alternate, a number first: with
                // the events' running parity, every number is an odd event
                // and every comma an even one.
                let px = prefix_xor(s | c) ^ parity;
                if (d | c | w) != u64::MAX || (s & !px) != 0 || (c & px) != 0 {
                    clean = false;
                    break;
                }
                parity = ((px >> 63) & 1).wrapping_neg();
                prev_digit = d >> 63;
                let at = (block * BLOCK) as u32;
                n_starts = flatten(starts.as_mut_ptr(), n_starts, at, s);
                n_ends = flatten(ends.as_mut_ptr(), n_ends, at, e);
                block += 1;
            }
            // Every number whose end was seen lies in checked text.
            let mut k = 0;
            while k + F <= n_ends {
                let mut ok = true;
                let mut f = 0;
                let at = |i: usize| (*starts.get_unchecked(k + i) as usize, *ends.get_unchecked(k + i) as usize);
                if AVX2 {
                    while f + 2 <= F {
                        let (a, b) = (at(f), at(f + 1));
                        if a.1 - a.0 <= 8 && b.1 - b.0 <= 8 && a.1 >= 8 && b.1 >= 8 {
                            (values[f], values[f + 1]) = two_numbers(base, a, b);
                        } else {
                            match (number_at(base, a.0, a.1), number_at(base, b.0, b.1)) {
                                (Some(x), Some(y)) => (values[f], values[f + 1]) = (x, y),
                                _ => ok = false,
                            }
                        }
                        f += 2;
                    }
                }
                while f < F {
                    let (s, e) = at(f);
                    match number_at(base, s, e) {
                        Some(x) => values[f] = x,
                        None => ok = false,
                    }
                    f += 1;
                }
                if !ok || !record(done, &values) {
                    return resume(done, last_start);
                }
                last_start = starts[k];
                done += 1;
                k += F;
            }
            starts.copy_within(k..n_starts, 0);
            n_starts -= k;
            ends.copy_within(k..n_ends, 0);
            n_ends -= k;
            if !clean || block == blocks {
                return resume(done, last_start);
            }
        }
    }

    /// Leave the last record written to the careful path.
    fn resume(done: usize, last_start: u32) -> Resume {
        if done == 0 {
            Resume { records: 0, at: 0 }
        } else {
            Resume { records: done - 1, at: last_start as usize }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records the fast path read (checked the same by the SSE2 path).
    fn records<const F: usize>(text: &str) -> (Vec<[u64; F]>, Resume) {
        let mut out = Vec::new();
        let r = dispatch::<F>(text.as_bytes(), |i, v| {
            assert_eq!(i, out.len());
            out.push(*v);
            true
        });
        #[cfg(target_arch = "x86_64")]
        {
            let mut again = Vec::new();
            let r2 = x86::fast_records_sse2::<F>(text.as_bytes(), |_, v| {
                again.push(*v);
                true
            });
            assert_eq!((&r2, &again), (&r, &out), "the SSE2 path disagrees");
        }
        (out, r)
    }

    fn text_of(recs: &[[u64; 3]], sep: &str) -> String {
        recs.iter().map(|r| r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")).collect::<Vec<_>>().join(sep)
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn numbers_of_every_length_near_and_far_from_the_start() {
        let values: Vec<u64> = (0..16).map(|k| 10u64.pow(k) - 1).chain((0..15).map(|k| 10u64.pow(k))).chain([123456789012345]).collect();
        let text = values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",");
        // Repeated so that the fast path reaches them; 16 digits stops it.
        let text = format!("{text},{text},{text},{text},{text},{text},{text},{text},{text},{text}");
        let (got, r) = records::<1>(&text);
        let want: Vec<u64> = (0..10).flat_map(|_| values.iter().copied()).collect();
        assert!(r.records > 5 * values.len(), "{}", r.records);
        assert_eq!(got.iter().map(|v| v[0]).take(r.records).collect::<Vec<_>>(), want[..r.records]);
        let long = format!("{text},1234567890123456,{text}");
        let (_, r) = records::<1>(&long);
        assert!(r.at < text.len() + 1, "16 digits went through the fast path");
        // Pairs (the vector path) of every length mix.
        let (got, r) = records::<2>(&text);
        assert_eq!(got.iter().flatten().copied().take(2 * r.records).collect::<Vec<_>>(), want[..2 * r.records]);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn agrees_with_the_values_and_leaves_the_end_to_the_careful_path() {
        let recs: Vec<[u64; 3]> = (0..2000u64).map(|i| [i % 7, i * 37 % 100_003, i * i * 1_234_567 % 9_999_999_999]).collect();
        for sep in [",", "\n,", ", ", "\r\n,\t"] {
            let text = text_of(&recs, sep);
            let (got, r) = records::<3>(&text);
            assert!(r.records > 1500, "{sep:?}: only {} records", r.records);
            assert_eq!(&got[..r.records], &recs[..r.records]);
            // The resume point is the first digit of the next record.
            let rest = text_of(&recs[r.records..], sep);
            assert_eq!(&text[r.at..], rest);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn stops_before_anything_unusual() {
        let recs: Vec<[u64; 3]> = (0..400u64).map(|i| [1, i, i * 7]).collect();
        let good = text_of(&recs, "\n,");
        // Just after a comma, in front of a number's first digit.
        let bad_at = good[good.len() / 2..].find(',').unwrap() + good.len() / 2 + 1;
        for insert in [",", "5 ", "x", "-", "1234567890123456"] {
            let mut text = good.clone();
            text.insert_str(bad_at, insert);
            let (got, r) = records::<3>(&text);
            assert!(r.at <= bad_at, "{insert:?}: resumed at {} past the bad byte at {bad_at}", r.at);
            assert_eq!(&got[..r.records], &recs[..r.records]);
            assert_eq!(text[..r.at].matches(',').count(), 3 * r.records, "{insert:?}");
        }
        // The record closure can refuse a record.
        let mut seen = 0;
        let r = dispatch::<3>(good.as_bytes(), |i, _| {
            seen = i;
            i < 10
        });
        assert_eq!((r.records, seen), (9, 10));
        // Too short or leading comma: nothing.
        assert_eq!(records::<3>("1,2,3").1, Resume { records: 0, at: 0 });
        assert_eq!(records::<3>(&format!(",{good}")).1, Resume { records: 0, at: 0 });
    }
}
