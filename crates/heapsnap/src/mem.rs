//! Big arrays, pre-faulted in one system call.
//!
//! A snapshot's columns and the analyses' arrays are hundreds of MB. Letting
//! the kernel fault them in page by page costs about 10 µs a page on the
//! virtual machines this runs on (a third of the run time on a 1 GB
//! snapshot); `MADV_POPULATE_WRITE` maps the same pages 3-4x cheaper.

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
            let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
            if threads > 1 && end - aligned >= (64 << 20) {
                let chunk = ((end - aligned) / threads).div_ceil(page) * page;
                std::thread::scope(|s| {
                    for k in 1..threads {
                        let a = (aligned + k * chunk).min(end);
                        let b = (a + chunk).min(end);
                        if a < b {
                            s.spawn(move || advise(a, b));
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

/// `min`, unless `HEAPSNAP_PARALLEL_MIN` says otherwise: tests set it low
/// so that the two-thread paths run on their small graphs too.
pub(crate) fn parallel_min(min: u32) -> u32 {
    static OVERRIDE: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    OVERRIDE.get_or_init(|| std::env::var("HEAPSNAP_PARALLEL_MIN").ok().and_then(|v| v.parse().ok())).unwrap_or(min)
}

/// Run `work` over `0..n` as two halves on two cores, each half into its own
/// accumulator made by `fresh`; returns both for the caller to merge (the
/// second is `None` when `n` is below `min` and one pass did it all).
pub fn on_two_halves<T: Send>(
    n: u32,
    min: u32,
    fresh: impl Fn() -> T + Sync,
    work: impl Fn(std::ops::Range<u32>, &mut T) + Sync,
) -> (T, Option<T>) {
    let mut first = fresh();
    if n < parallel_min(min) {
        work(0..n, &mut first);
        return (first, None);
    }
    let mid = n / 2;
    let second = std::thread::scope(|scope| {
        let h = scope.spawn(|| {
            let mut acc = fresh();
            work(mid..n, &mut acc);
            acc
        });
        work(0..mid, &mut first);
        h.join().expect("worker thread panicked")
    });
    (first, Some(second))
}

/// CPU seconds this process has used so far (all threads), for the
/// `HEAPSNAP_DEBUG` timings: wall time alone hides an idle core.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time, resident and peak resident memory now, for the
/// `HEAPSNAP_DEBUG` timings.
pub fn usage() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
            .map_or("?".to_string(), |kb| (kb / 1024).to_string())
    };
    let (fresh, reused) = (
        crate::recycle::FRESH.load(std::sync::atomic::Ordering::Relaxed),
        crate::recycle::REUSED.load(std::sync::atomic::Ordering::Relaxed),
    );
    format!(
        "cpu {:.2} s, rss {} MiB (file {}), peak {} MiB, big fresh {} reused {} kept {} MiB",
        cpu_seconds(),
        field("VmRSS:"),
        field("RssFile:"),
        field("VmHWM:"),
        fresh >> 20,
        reused >> 20,
        crate::recycle::kept_bytes() >> 20
    )
}
