//! Big arrays, pre-faulted in one system call.
//!
//! A snapshot's columns and the analyses' arrays are hundreds of MB. Letting
//! the kernel fault them in page by page costs 1.9 µs a 4 KiB page on the
//! 2-core VM of the benchmarks, and `MADV_POPULATE_WRITE` maps the same
//! pages for 1.2 µs; writing a page already mapped costs 0.15 µs
//! (`python3 bench/page_cost.py`; an older VM gave about 10 µs and 3-4x).

/// Ask the kernel to back `v`'s whole capacity with memory now.
pub fn populate<T>(v: &mut Vec<T>) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < (1 << 21) {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const MADV_POPULATE_WRITE: libc::c_int = 23;
        let page = 4096usize;
        let start = v.as_mut_ptr() as usize;
        let aligned = start.div_ceil(page) * page;
        let end = (start + bytes) / page * page;
        if end > aligned {
            // SAFETY: the ranges lie inside this vector's own allocation;
            // populating changes no contents. Failure (old kernels) is harmless.
            let advise = |a: usize, b: usize| unsafe {
                libc::madvise(a as *mut libc::c_void, b - a, MADV_POPULATE_WRITE);
            };
            // Zeroing pages is most of the cost: share big ranges between cores.
            let limits = crate::limits::current();
            let threads = limits.cap(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8));
            if threads > 1 && end - aligned >= (64 << 20) {
                let chunk = ((end - aligned) / threads).div_ceil(page) * page;
                std::thread::scope(|s| {
                    for k in 1..threads {
                        let a = (aligned + k * chunk).min(end);
                        let b = (a + chunk).min(end);
                        if a < b {
                            crate::limits::spawn_scoped(s, move || advise(a, b));
                        }
                    }
                    advise(aligned, (aligned + chunk).min(end));
                });
            } else {
                advise(aligned, end);
            }
        }
    }
}

/// An empty vector with room for `n`, pre-faulted.
pub fn with_capacity<T>(n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    populate(&mut v);
    v
}

/// `vec![0; n]`, pre-faulted. A zeroed allocation this big comes fresh
/// from the kernel, already zero, so nothing is written twice: the parser's
/// columns take their full declared length up front this way, with no
/// serial fill as they grow.
pub fn zeroed<T: Copy + Default>(n: usize) -> Vec<T> {
    let mut v = zeroed_lazy(n);
    populate(&mut v);
    v
}

/// `vec![0; n]` left untouched: pages never written cost no memory.
/// (For the integer columns this is `alloc_zeroed`, i.e. calloc.)
pub fn zeroed_lazy<T: Copy + Default>(n: usize) -> Vec<T> {
    vec![T::default(); n]
}

/// `vec![value; n]`, pre-faulted.
pub fn filled<T: Copy>(n: usize, value: T) -> Vec<T> {
    let mut v = with_capacity(n);
    v.resize(n, value);
    v
}

/// Run `work` over `0..n` as two halves on two cores, each half into its own
/// accumulator made by `fresh`; returns both for the caller to merge (the
/// second is `None` when `n` is below `min`, or the limits allow one thread,
/// and one pass did it all).
pub fn on_two_halves<T: Send>(
    n: u32,
    min: u32,
    fresh: impl Fn() -> T + Sync,
    work: impl Fn(std::ops::Range<u32>, &mut T) + Sync,
) -> (T, Option<T>) {
    let mut first = fresh();
    if !crate::limits::current().split(n, min) {
        work(0..n, &mut first);
        return (first, None);
    }
    let mid = n / 2;
    let second = std::thread::scope(|scope| {
        let h = crate::limits::spawn_scoped(scope, || {
            let mut acc = fresh();
            work(mid..n, &mut acc);
            acc
        });
        work(0..mid, &mut first);
        h.join().expect("worker thread panicked")
    });
    (first, Some(second))
}

/// Asks the CPU to start loading `v[i]` into its cache: a hint for a loop
/// that knows, some iterations ahead, which random element it will read.
/// Out of range, or on other architectures, it does nothing.
#[inline(always)]
pub(crate) fn prefetch<T>(v: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if i < v.len() {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: the address lies inside the slice; a prefetch reads nothing
        // the program sees and cannot fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(v.as_ptr().add(i) as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (v, i);
}
