//! A global allocator that keeps the pages of big freed blocks for the next
//! big allocation, instead of giving them back to the kernel.
//!
//! The analyses allocate and free arrays of tens to hundreds of MB one after
//! another (1.7 GB in all on a 1 GB snapshot, for a peak of 0.9 GB). Each
//! fresh page costs a fault and a clear in the kernel, 1.2-1.9 µs a 4 KiB
//! page on the 2-core VM of the benchmarks, and more when the hypervisor
//! has to back it again; a page kept costs a memset at most, 0.15 µs
//! (`python3 bench/page_cost.py`). Pages are moved, not
//! copied, into the new block (`mremap`), so a kept page is reused before any
//! fresh one is taken, and the peak stays where it was.
//!
//! Blocks under `BIG` go to the system allocator. The binary installs it
//! (`main.rs`); the heapsnap library stays allocator-neutral.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;

/// Blocks this big and up are mapped here, and kept when freed.
pub const BIG: usize = 4 << 20;
const PAGE: usize = 4096;

/// Freed blocks (address, length), page-aligned, their pages still mapped,
/// each one mapping (one VMA, so `mremap` can move it); and the blocks made
/// of several such pieces, with their pieces.
struct Kept {
    free: Vec<(usize, usize)>,
    pieced: Vec<(usize, Vec<(usize, usize)>)>,
}

static KEPT: Mutex<Kept> = Mutex::new(Kept { free: Vec::new(), pieced: Vec::new() });

/// Bytes of big blocks from fresh pages, and from kept ones (for the `HEAPSNAP_DEBUG` laps).
pub static FRESH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
pub static REUSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The recycling allocator (Linux; elsewhere it is the system allocator).
pub struct Recycler;

fn pages(size: usize) -> usize {
    size.div_ceil(PAGE) * PAGE
}

fn is_big(layout: &Layout) -> bool {
    cfg!(target_os = "linux") && layout.size() >= BIG && layout.align() <= PAGE
}

/// Bytes of freed big blocks kept for reuse now.
pub fn kept_bytes() -> usize {
    #[cfg(target_os = "linux")]
    return os::kept_bytes();
    #[cfg(not(target_os = "linux"))]
    0
}

#[cfg(target_os = "linux")]
mod os {
    use super::*;

    /// Fresh zero pages, not yet touched.
    pub unsafe fn map(len: usize) -> *mut u8 {
        let p = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p as *mut u8
        }
    }

    fn kept() -> std::sync::MutexGuard<'static, Kept> {
        KEPT.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A block of `len` bytes built from kept pages first, then fresh ones.
    /// Returns it and how many of its leading bytes are kept (dirty) pages.
    pub unsafe fn take(len: usize) -> (*mut u8, usize) {
        let mut kept = kept();
        // The smallest kept block that is big enough, split.
        let free = &mut kept.free;
        if let Some(i) = (0..free.len()).filter(|&i| free[i].1 >= len).min_by_key(|&i| free[i].1) {
            let (addr, have) = free[i];
            if have > len {
                free[i] = (addr + len, have - len);
            } else {
                free.swap_remove(i);
            }
            REUSED.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
            return (addr as *mut u8, len);
        }
        // Otherwise fresh pages, with kept blocks moved over their start.
        let block = map(len);
        if block.is_null() {
            return (block, 0);
        }
        let mut pieces = Vec::new();
        let mut filled = 0;
        while filled < len {
            let Some((addr, have)) = kept.free.pop() else { break };
            let part = have.min(len - filled);
            let target = block.add(filled) as *mut libc::c_void;
            let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
            if libc::mremap(addr as *mut libc::c_void, part, part, flags, target) == libc::MAP_FAILED {
                libc::munmap(addr as *mut libc::c_void, have);
                continue;
            }
            if part < have {
                kept.free.push((addr + part, have - part));
            }
            pieces.push((target as usize, part));
            filled += part;
        }
        REUSED.fetch_add(filled, std::sync::atomic::Ordering::Relaxed);
        FRESH.fetch_add(len - filled, std::sync::atomic::Ordering::Relaxed);
        if !pieces.is_empty() {
            if filled < len {
                pieces.push((block as usize + filled, len - filled));
            }
            kept.pieced.push((block as usize, pieces));
        }
        (block, filled)
    }

    /// Keep the pages of a freed block.
    pub unsafe fn keep(ptr: *mut u8, len: usize) {
        let mut kept = kept();
        match kept.pieced.iter().position(|(a, _)| *a == ptr as usize) {
            Some(i) => {
                let (_, pieces) = kept.pieced.swap_remove(i);
                kept.free.extend(pieces);
            }
            None => {
                drop(kept);
                let len = trim_untouched(ptr, len);
                if len > 0 {
                    self::kept().free.push((ptr as usize, len));
                }
            }
        }
    }

    /// Give back the tail of a block that was never written (a column's
    /// reserve past what was read, say): keeping it would save nothing, and
    /// the next block built on it would fault fresh pages in and raise the
    /// peak. Returns the length still kept.
    unsafe fn trim_untouched(ptr: *mut u8, len: usize) -> usize {
        // Pages resident, looked at from the end, a chunk at a time (no
        // allocation here: this runs inside the allocator).
        let mut resident = [0u8; 4096];
        let mut end = len / PAGE;
        while end > 0 {
            let start = end.saturating_sub(resident.len());
            let at = ptr.add(start * PAGE) as *mut libc::c_void;
            if libc::mincore(at, (end - start) * PAGE, resident.as_mut_ptr()) != 0 {
                return len; // cannot tell: keep it all
            }
            if let Some(last) = resident[..end - start].iter().rposition(|&r| r & 1 != 0) {
                end = start + last + 1;
                break;
            }
            end = start;
        }
        let keep = end * PAGE;
        if keep < len {
            libc::munmap(ptr.add(keep) as *mut libc::c_void, len - keep);
        }
        keep
    }

    /// Bytes kept now, for `HEAPSNAP_DEBUG`.
    pub fn kept_bytes() -> usize {
        kept().free.iter().map(|&(_, l)| l).sum()
    }

    /// Whether a block is made of several mappings (it can't be remapped whole).
    pub fn is_pieced(ptr: *mut u8) -> bool {
        kept().pieced.iter().any(|(a, _)| *a == ptr as usize)
    }

    pub unsafe fn grow(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
        let p = libc::mremap(ptr as *mut libc::c_void, old, new, libc::MREMAP_MAYMOVE);
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p as *mut u8
        }
    }
}

unsafe impl GlobalAlloc for Recycler {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_big(&layout) {
            return System.alloc(layout);
        }
        #[cfg(target_os = "linux")]
        {
            os::take(pages(layout.size())).0
        }
        #[cfg(not(target_os = "linux"))]
        unreachable!()
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !is_big(&layout) {
            return System.alloc_zeroed(layout);
        }
        #[cfg(target_os = "linux")]
        {
            // Only kept pages need clearing; fresh ones are zero untouched.
            let (p, dirty) = os::take(pages(layout.size()));
            if !p.is_null() {
                std::ptr::write_bytes(p, 0, dirty.min(layout.size()));
            }
            p
        }
        #[cfg(not(target_os = "linux"))]
        unreachable!()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !is_big(&layout) {
            return System.dealloc(ptr, layout);
        }
        #[cfg(target_os = "linux")]
        os::keep(ptr, pages(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (is_big(&layout), is_big(&new_layout)) {
            (false, false) => System.realloc(ptr, layout, new_size),
            #[cfg(target_os = "linux")]
            (true, true) if !os::is_pieced(ptr) => {
                let (old, new) = (pages(layout.size()), pages(new_size));
                if new <= old {
                    if new < old {
                        os::keep(ptr.add(new), old - new);
                    }
                    ptr
                } else {
                    os::grow(ptr, old, new)
                }
            }
            _ => {
                let p = self.alloc(new_layout);
                if !p.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                p
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn layout(mb: usize) -> Layout {
        Layout::from_size_align(mb << 20, 8).unwrap()
    }

    unsafe fn fill(p: *mut u8, l: Layout, byte: u8) {
        std::ptr::write_bytes(p, byte, l.size());
    }

    unsafe fn all(p: *mut u8, l: Layout, byte: u8) -> bool {
        std::slice::from_raw_parts(p, l.size()).iter().all(|&b| b == byte)
    }

    /// Blocks freed, split, pieced together from several, grown, shrunk:
    /// the contents a caller may rely on are always there, zeroed blocks are
    /// zero, and kept pages are used again.
    #[test]
    fn blocks_are_reused_and_never_overlap() {
        let r = Recycler;
        unsafe {
            let (a, b, c) = (layout(8), layout(12), layout(6));
            let pa = r.alloc(a);
            let pb = r.alloc(b);
            fill(pa, a, 1);
            fill(pb, b, 2);
            r.dealloc(pa, a);
            // Split from the 8 MB one: same pages, the rest kept.
            let pc = r.alloc(c);
            assert_eq!(pc, pa, "the kept block was not reused");
            fill(pc, c, 3);
            assert!(all(pb, b, 2));
            // Zeroed, from the kept 2 MB rest plus fresh pages.
            let z = layout(16);
            let pz = r.alloc_zeroed(z);
            assert!(all(pz, z, 0), "a zeroed block is not zero");
            assert!(os::is_pieced(pz) || KEPT.lock().unwrap().free.is_empty());
            fill(pz, z, 4);
            assert!(all(pb, b, 2) && all(pc, c, 3));
            // Freed pieced block: its pieces come back separately, then make
            // a bigger block together (moved, not copied).
            r.dealloc(pz, z);
            r.dealloc(pb, b);
            let big = layout(40);
            let pbig = r.alloc_zeroed(big);
            assert!(all(pbig, big, 0));
            fill(pbig, big, 5);
            assert!(all(pc, c, 3));
            // Grow and shrink keep the contents.
            let pc2 = r.realloc(pc, c, 20 << 20);
            assert!(all(pc2, c, 3), "grow lost the contents");
            let c2 = layout(20);
            let pbig2 = r.realloc(pbig, big, 5 << 20);
            assert!(all(pbig2, layout(5), 5), "shrinking a pieced block lost the contents");
            let small = r.realloc(pc2, c2, 100);
            assert!(all(small, Layout::from_size_align(100, 8).unwrap(), 3));
            r.dealloc(small, Layout::from_size_align(100, 8).unwrap());
            r.dealloc(pbig2, layout(5));
        }
    }

    /// A block freed with a tail never written keeps only what was written:
    /// a block built on the rest later would fault fresh pages in, and
    /// count as reuse while it raised the peak.
    #[test]
    fn untouched_tails_are_given_back() {
        unsafe {
            let len = 64 << 20;
            let p = os::map(len);
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 7, (4 << 20) + 1);
            os::keep(p, len);
            let entry = {
                let mut kept = KEPT.lock().unwrap();
                let i = kept.free.iter().position(|&(a, _)| a == p as usize).expect("the written part is kept");
                kept.free.swap_remove(i)
            };
            assert_eq!(entry.1, (4 << 20) + PAGE, "kept up to the last written page, no further");
            assert_eq!(*p.add(4 << 20), 7);
            libc::munmap(p as *mut libc::c_void, entry.1);
        }
    }
}
