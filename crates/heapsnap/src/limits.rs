//! How much of the machine a heapsnap call may use, and the thresholds
//! tests lower so that the code paths meant for big heaps run on small ones.
//!
//! The engine decides how to schedule its passes; the caller only bounds
//! them. The bound holds for everything called inside [`with_limits`] on
//! this thread, and for the threads the engine starts from there (they
//! inherit it), the way a thread pool's `install` scopes its work. `analyze`
//! and the parser set it from their own options.

use std::cell::Cell;

/// Bounds and thresholds for every heapsnap call made inside [`with_limits`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Most threads a pass may run at once; 0 means all cores. With 1, no
    /// call starts a thread at all: parsing and every analysis run on the
    /// calling thread.
    pub threads: usize,
    /// Split a pass over two threads from this many items on, instead of
    /// each pass's own threshold (about a million nodes or edges).
    pub parallel_min: Option<u32>,
    /// The longest breadth-first level the distance walk keeps as a list
    /// before it switches to a bit set (default 2^18).
    pub bfs_list_max: Option<usize>,
}

thread_local! {
    static CURRENT: Cell<Limits> = const { Cell::new(Limits { threads: 0, parallel_min: None, bfs_list_max: None }) };
}

/// Run `f` with `limits` in force for every heapsnap call it makes.
pub fn with_limits<R>(limits: Limits, f: impl FnOnce() -> R) -> R {
    struct Restore(Limits);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(limits)));
    f()
}

/// Run `f` with at most `threads` threads (0: all cores), other limits as they are.
pub fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    with_limits(Limits { threads, ..current() }, f)
}

/// The limits in force on this thread.
pub fn current() -> Limits {
    CURRENT.with(|c| c.get())
}

impl Limits {
    /// Whether a pass may use a second thread.
    pub(crate) fn parallel(&self) -> bool {
        self.threads != 1
    }

    /// Threads a pass may use, given that `wanted` would help.
    pub(crate) fn cap(&self, wanted: usize) -> usize {
        if self.threads == 0 {
            wanted.max(1)
        } else {
            wanted.clamp(1, self.threads)
        }
    }

    /// Whether `n` items are worth two threads (`min` being the pass's own threshold).
    pub(crate) fn split(&self, n: u32, min: u32) -> bool {
        self.parallel() && n >= self.parallel_min.unwrap_or(min)
    }
}

static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many threads heapsnap has started in this process (every one goes
/// through the two functions below): what shows that `threads: 1` starts none.
pub fn threads_started() -> u64 {
    STARTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// `scope.spawn`, the new thread inheriting this thread's limits.
pub(crate) fn spawn_scoped<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    f: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    let limits = current();
    STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    scope.spawn(move || with_limits(limits, f))
}

/// `std::thread::spawn`, the new thread inheriting this thread's limits.
pub(crate) fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let limits = current();
    STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::thread::spawn(move || with_limits(limits, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_nest_and_are_inherited_by_spawned_threads() {
        assert_eq!(current().threads, 0);
        with_threads(1, || {
            assert!(!current().parallel());
            with_limits(Limits { threads: 2, parallel_min: Some(2), bfs_list_max: None }, || {
                std::thread::scope(|s| {
                    let seen = spawn_scoped(s, current).join().unwrap();
                    assert_eq!(seen.parallel_min, Some(2));
                    assert_eq!(seen.threads, 2);
                });
            });
            assert_eq!(current().threads, 1);
            assert_eq!(current().parallel_min, None);
        });
        assert_eq!(current().threads, 0);
    }
}
