//! The doctor's checkup of a connected Node process: its figures over the
//! inspector, its cgroup from /proc, assessed by the `container` crate.
//! `doctor` prints it; `watch` and `run` fold it into their reports.

use super::Target;
use anyhow::Result;
use container::doctor::{self, Facts};
use container::Memory;
use serde::Deserialize;
use std::path::Path;

/// What the doctor found about one process.
pub struct Checkup {
    pub pid: u32,
    pub facts: Facts,
    pub memory: Option<Memory>,
    pub assessment: container::Assessment,
}

#[derive(Deserialize)]
struct Extra {
    node_options: String,
    constrained: Option<f64>,
}

const EXTRA_EXPR: &str = "({ node_options: process.env.NODE_OPTIONS || '', \
constrained: typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : null })";

/// Gather the facts of a connected target (its figures over the
/// inspector, its cgroup from /proc) and assess them. `pid` is the
/// process's id as this machine's /proc sees it.
pub async fn check(target: &Target, pid: u32, cgroup_root: Option<&Path>) -> Result<Checkup> {
    let m = target.session.memory().await?;
    let extra: Extra = target.session.evaluate(EXTRA_EXPR).await?;
    let memory = match Memory::of_pid(pid, cgroup_root) {
        Ok(m) => Some(m),
        Err(container::Error::NoMemoryCgroup { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let words = target.info.exec_argv.iter().map(String::as_str).chain(extra.node_options.split_whitespace());
    let node_processes =
        memory.as_ref().map_or(1, |mem| mem.pids_sharing().into_iter().filter(|&p| container::cgroup::is_node(p)).count()).max(1);
    let facts = Facts {
        node_version: target.info.node_version.clone(),
        heap_size_limit: m.heap_size_limit,
        heap_used: m.heap_used,
        heap_total: m.heap_total,
        external: m.external,
        array_buffers: m.array_buffers,
        rss: m.rss,
        heap_flags: doctor::heap_flags(words),
        constrained_memory: extra.constrained,
        host_memory: container::cgroup::host_memory(),
        limit: memory.as_ref().and_then(|m| m.limit.as_ref().map(|b| b.bytes)),
        own_level_limit: memory.as_ref().and_then(|m| m.own_level_limit),
        usage_bytes: memory.as_ref().and_then(|m| m.usage_bytes),
        node_processes,
        oom_kills: memory.as_ref().and_then(|m| m.oom_kills),
        high_events: memory.as_ref().and_then(|m| m.high_events),
        oom_group: memory.as_ref().is_some_and(|m| m.oom_group),
    };
    let assessment = container::assess(&facts);
    Ok(Checkup { pid, facts, memory, assessment })
}
