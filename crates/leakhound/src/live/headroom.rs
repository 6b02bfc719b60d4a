//! Before a snapshot of a process leakhound did not start (`--pid`): will
//! it fit? V8's snapshot generator needs up to about 24 times the used heap
//! (measured, `bench/snapshot_cost.py`; the file's page cache counts against a container too), and a
//! process that runs out is OOM-killed: the snapshot would become the
//! outage it was meant to explain.

use supervise::fit::Headroom;

/// `Err` with one line giving the estimate, the headroom and the
/// alternatives when a snapshot of `pid` (heap `heap_used`) may not fit.
pub fn check(pid: u32, heap_used: u64) -> Result<(), String> {
    let Some(h) = Headroom::of_pid(pid) else { return Ok(()) };
    h.snapshot_fits(heap_used).map_err(|why| {
        format!(
            "not taking a snapshot of process {pid}: {why}. Instead: `leakhound allocations --pid {pid}` (sampling, cheap), \
             `leakhound watch --pid {pid}`, or --force to take it anyway"
        )
    })
}
