//! Leak diagnosis for leakhound, with no I/O of its own: what grows between
//! heap snapshots and why it is kept ([`diff`], [`leaks`], [`patterns`],
//! over the suspect's parts in [`evidence`]),
//! how nodes and retainer paths read ([`describe`]), robust trend
//! statistics ([`trend`]), V8 `--trace-gc` logs ([`gclog`]) and hashing heap
//! strings out of shared reports ([`redact`]).

pub mod allocations;
pub mod describe;
pub mod diff;
pub mod evidence;
pub mod files;
pub mod gclog;
pub mod identity;
pub mod leaks;
pub mod listeners;
pub mod native;
pub mod patterns;
pub mod redact;
pub mod series;
pub mod stacks;
pub mod trend;
pub mod units;
pub mod verdict;
