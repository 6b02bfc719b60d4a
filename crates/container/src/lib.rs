//! The memory limit a process really lives under, and what it means for a
//! Node heap.
//!
//! - [`cgroup`]: find a process's memory cgroup (v1 or v2) from
//!   `/proc/PID/cgroup` and mountinfo, read the smallest limit up the
//!   hierarchy, the charge, the OOM-kill counter and who shares the limit.
//! - [`doctor`]: findings and a `--max-old-space-size` recommendation, pure
//!   functions over gathered facts.

pub mod cgroup;
pub mod doctor;
pub mod operator;

pub use cgroup::{Memory, Version};
pub use doctor::{assess, Assessment, Facts, Finding, Severity};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the cgroup of process {pid}: {why}")]
    NoProcess { pid: u32, why: String },
    #[error("process {pid} is in no memory cgroup (no cgroup v1 memory hierarchy or cgroup2 mount)")]
    NoMemoryCgroup { pid: u32 },
    #[error("{0} is not a cgroup filesystem (no cgroup.controllers, no memory/memory.limit_in_bytes, no memory.limit_in_bytes)")]
    NotCgroupFs(PathBuf),
}
