//! What a Node process's memory figures mean under its container's limit:
//! findings with ids and severities, and a `--max-old-space-size` that fits.
//! Pure functions over gathered facts, so every rule is unit-tested.
//!
//! The facts behind the rules (measured on Node 18-26, see docs/containers.md):
//! - Node 20.3+ sizes the heap from the cgroup limit of its *own* level at
//!   start; at 256 MiB or less the default `heap_size_limit` (259-262 MiB)
//!   is above the limit, so the kernel kills the process (exit 137, no
//!   "heap out of memory", no snapshot) before V8 feels pressure.
//! - Node 18 (libuv 1.44) reads no cgroup below the mount root and no v2 at
//!   all: its heap is sized from host RAM (4144 MB on a large host).
//! - A limit set on a parent is not seen by any Node version.
//! - An idle-to-busy Node server carries 40-65 MB outside the heap.

use serde::Serialize;

pub const MIB: u64 = 1024 * 1024;
/// The share of a process's memory budget given to the old space: 75%, as
/// in the Node CLI doc's example (1536 of 2 GiB) and common deployments.
pub const HEAP_SHARE: f64 = 0.75;
/// Memory outside the heap kept free on top of the other 25%: a plain
/// Node server's measured 40-65 MB of non-heap RSS.
pub const NON_HEAP_ALLOWANCE: u64 = 64 * MIB;
/// Below this old space a Node service cannot do much.
pub const MIN_OLD_SPACE_MB: u64 = 32;
/// No limit on a host this large leaves V8 free to defer full GCs.
pub const LARGE_HOST: u64 = 4 * 1024 * MIB;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub message: String,
}

/// Everything the doctor looked at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    /// `v20.11.1`.
    pub node_version: String,
    pub heap_size_limit: u64,
    pub heap_used: u64,
    pub heap_total: u64,
    pub external: u64,
    pub array_buffers: u64,
    pub rss: u64,
    /// The heap-sizing flags the user gave (execArgv and NODE_OPTIONS):
    /// `--max-old-space-size=…`, `--max-old-space-size-percentage=…`, `--max-heap-size=…`.
    pub heap_flags: Vec<String>,
    /// `process.constrainedMemory()` (Node 18.15+/19.6+).
    pub constrained_memory: Option<f64>,
    pub host_memory: Option<u64>,
    /// The effective limit (smallest up the hierarchy); None = no limit.
    pub limit: Option<u64>,
    /// The limit at the process's own cgroup level (what libuv sees).
    pub own_level_limit: Option<u64>,
    /// The cgroup's charge (page cache included).
    pub usage_bytes: Option<u64>,
    /// Node processes under the limit, this one included.
    pub node_processes: usize,
    pub oom_kills: Option<u64>,
    /// v2: times the cgroup was throttled at `memory.high`.
    pub high_events: Option<u64>,
    /// v2: `memory.oom.group` = 1 (Kubernetes 1.28+ sets it): one OOM kill ends every process.
    pub oom_group: bool,
}

/// The doctor's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub findings: Vec<Finding>,
    pub recommended_max_old_space_size_mb: Option<u64>,
    /// How the recommendation was computed, in words.
    pub rule: String,
    /// The limit minus the cgroup's charge (or the RSS); None without a limit.
    pub headroom_bytes: Option<i64>,
}

/// `1.2 GiB`, `256.0 MiB`.
pub fn size(b: u64) -> String {
    if b >= 1024 * MIB {
        format!("{:.2} GiB", b as f64 / (1024 * MIB) as f64)
    } else {
        format!("{:.1} MiB", b as f64 / MIB as f64)
    }
}

/// (major, minor) of `v20.3.1`.
pub fn node_version(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim_start_matches('v').split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Whether this Node reads cgroup limits at all (libuv 1.45, Node 20.3).
pub fn reads_cgroups(version: &str) -> bool {
    node_version(version).is_some_and(|v| v >= (20, 3))
}

/// The heap-sizing flags in a list of arguments (execArgv or NODE_OPTIONS words).
pub fn heap_flags<'a>(args: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut take_next = false;
    for a in args {
        if take_next {
            if let Some(last) = out.last_mut() {
                *last = format!("{last}={a}");
            }
            take_next = false;
            continue;
        }
        let name = a.split('=').next().unwrap_or(a).replace('_', "-");
        if matches!(name.as_str(), "--max-old-space-size" | "--max-old-space-size-percentage" | "--max-heap-size") {
            out.push(a.to_string());
            take_next = !a.contains('=');
        }
    }
    out
}

/// The old space (MiB) that fits a memory budget of `limit / processes`:
/// 75% of the share minus 64 MiB for memory outside the heap. None when
/// that leaves less than 32 MiB.
pub fn recommended_old_space_mb(limit: u64, processes: usize) -> Option<u64> {
    let share = limit / processes.max(1) as u64;
    let mb = (share as f64 * HEAP_SHARE - NON_HEAP_ALLOWANCE as f64) / MIB as f64;
    (mb >= MIN_OLD_SPACE_MB as f64).then_some(mb.floor() as u64)
}

/// The rule behind `recommended_old_space_mb`, with its figures.
pub fn rule_text(limit: u64, processes: usize) -> String {
    let n = processes.max(1);
    let share = limit / n as u64;
    let who = if n > 1 { format!("{} / {n} Node processes = {} each; ", size(limit), size(share)) } else { String::new() };
    format!(
        "{who}75% of {} ({}) minus {} for memory outside the heap (a Node server's measured 40-65 MB) = {:.0} MiB",
        size(share),
        size((share as f64 * HEAP_SHARE) as u64),
        size(NON_HEAP_ALLOWANCE),
        ((share as f64 * HEAP_SHARE - NON_HEAP_ALLOWANCE as f64) / MIB as f64).floor()
    )
}

/// The findings and the recommendation.
pub fn assess(f: &Facts) -> Assessment {
    let mut findings = Vec::new();
    let mut add = |id, severity, message: String| findings.push(Finding { id, severity, message });
    let n = f.node_processes.max(1);
    let user_sized = !f.heap_flags.is_empty();
    let sized_by = if user_sized { format!("set by {}", f.heap_flags.join(" ")) } else { "Node's default".to_string() };
    let recommended = f.limit.and_then(|l| recommended_old_space_mb(l, n));
    let headroom_bytes = f.limit.map(|l| l as i64 - f.usage_bytes.unwrap_or(f.rss) as i64);
    let rule = match f.limit {
        Some(l) if recommended.is_some() => rule_text(l, n),
        Some(l) => format!(
            "{} is too small for a Node process: 75% of it minus {} leaves under {MIN_OLD_SPACE_MB} MiB",
            size(l / n as u64),
            size(NON_HEAP_ALLOWANCE)
        ),
        None => "no recommendation without a memory limit: set one, then 75% of it minus 64 MiB".to_string(),
    };

    if f.oom_kills.unwrap_or(0) > 0 {
        add(
            "oom-killed",
            Severity::Error,
            format!(
                "the kernel's OOM killer has killed {} process(es) in this cgroup (oom_kill counter): that is a SIGKILL, exit 137, with no \"heap out of memory\" message and no snapshot",
                f.oom_kills.unwrap_or(0)
            ),
        );
    }
    if f.high_events.unwrap_or(0) > 0 {
        add(
            "memory-high-throttled",
            Severity::Warning,
            format!(
                "the cgroup was throttled {} time(s) at memory.high (memory.events): the kernel slowed it down and reclaimed hard, which shows as latency, not as a kill",
                f.high_events.unwrap_or(0)
            ),
        );
    }
    if f.oom_group && f.limit.is_some() {
        add(
            "oom-group-kill",
            Severity::Info,
            "memory.oom.group is 1 (Kubernetes 1.28+ on cgroup v2 sets it): one OOM kill ends every process in the container, a supervisor included; restart before the limit (leakhound supervise --max-rss auto)".to_string(),
        );
    }
    match f.limit {
        Some(limit) => {
            let share = limit / n as u64;
            if f.heap_size_limit >= share {
                let whose = if n > 1 {
                    format!("this process's share of the limit ({})", size(share))
                } else {
                    format!("the container limit ({})", size(limit))
                };
                add(
                    "heap-limit-above-container-limit",
                    Severity::Error,
                    format!(
                        "the heap limit ({}, {sized_by}) is at or above {whose}: the kernel kills the process (exit 137) before V8 collects hard or reports \"heap out of memory\"",
                        size(f.heap_size_limit)
                    ),
                );
            } else if f.heap_size_limit + NON_HEAP_ALLOWANCE > share {
                add(
                    "heap-limit-leaves-no-room",
                    Severity::Warning,
                    format!(
                        "the heap limit ({}) leaves {} of {} for everything outside the heap (code, stacks, Buffers: a Node server needs 40-65 MB)",
                        size(f.heap_size_limit),
                        size(share - f.heap_size_limit),
                        size(share)
                    ),
                );
            } else if let Some(rec) = recommended {
                if f.heap_size_limit < rec * MIB / 2 {
                    add(
                        "heap-limit-far-below-container-limit",
                        Severity::Info,
                        format!(
                            "the heap limit ({}, {sized_by}) is under half of what fits ({rec} MiB): the heap will fail with \"heap out of memory\" long before the container is full",
                            size(f.heap_size_limit)
                        ),
                    );
                }
            }
            if !user_sized && !reads_cgroups(&f.node_version) {
                add(
                    "node18-cgroup-blind",
                    Severity::Warning,
                    format!(
                        "Node {} does not read cgroup memory limits (libuv before 1.45, fixed in Node 20.3): its heap is sized from the host's RAM ({}), not from the {} limit; set --max-old-space-size",
                        f.node_version,
                        f.host_memory.map(size).unwrap_or_else(|| "unknown".into()),
                        size(limit)
                    ),
                );
            } else if !user_sized && f.own_level_limit.is_none_or(|own| own > limit) {
                add(
                    "limit-not-seen-by-node",
                    Severity::Warning,
                    format!(
                        "the {} limit is set on a parent cgroup; Node reads only its own cgroup's level, so it sized the heap as if there were no limit; set --max-old-space-size",
                        size(limit)
                    ),
                );
            }
            if n > 1 {
                add(
                    "shared-limit",
                    Severity::Warning,
                    format!(
                        "{n} Node processes share the {} limit; each sizes its heap as if it had it alone ({} here), so together they can reach {}",
                        size(limit),
                        size(f.heap_size_limit),
                        size(f.heap_size_limit * n as u64)
                    ),
                );
            }
            if recommended.is_none() {
                add(
                    "limit-too-small",
                    Severity::Error,
                    format!("{} per Node process is too small to run one with a useful heap", size(share)),
                );
            }
        }
        None => {
            let large = f.host_memory.is_none_or(|m| m >= LARGE_HOST);
            add(
                "no-memory-limit",
                if large { Severity::Warning } else { Severity::Info },
                format!(
                    "no cgroup memory limit: the heap may grow to {} on this {} host, and with that much room V8 defers full GCs, so RSS drifts far above the live heap and dashboards read it as a leak; set a memory limit and --max-old-space-size",
                    size(f.heap_size_limit),
                    f.host_memory.map(size).unwrap_or_else(|| "unknown-size".into())
                ),
            );
        }
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Assessment { findings, recommended_max_old_space_size_mb: recommended, rule, headroom_bytes }
}

/// The findings as text lines, `error   heap-limit-above-container-limit: …`.
pub fn finding_lines(a: &Assessment) -> Vec<String> {
    if a.findings.is_empty() {
        return vec!["ok: the heap fits the container limit with room to spare".to_string()];
    }
    a.findings.iter().map(|f| format!("{:<7} {}: {}", f.severity.name(), f.id, f.message)).collect()
}

/// One line with the recommendation, or None.
pub fn recommendation_line(a: &Assessment) -> Option<String> {
    a.recommended_max_old_space_size_mb.map(|mb| format!("recommended: --max-old-space-size={mb} ({})", a.rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(version: &str, heap_limit_mib: u64, limit_mib: Option<u64>) -> Facts {
        Facts {
            node_version: version.into(),
            heap_size_limit: heap_limit_mib * MIB,
            heap_used: 5 * MIB,
            heap_total: 6 * MIB,
            rss: 45 * MIB,
            host_memory: Some(24 * 1024 * MIB),
            limit: limit_mib.map(|m| m * MIB),
            own_level_limit: limit_mib.map(|m| m * MIB),
            usage_bytes: Some(50 * MIB),
            node_processes: 1,
            oom_kills: Some(0),
            ..Default::default()
        }
    }

    fn ids(a: &Assessment) -> Vec<&'static str> {
        a.findings.iter().map(|f| f.id).collect()
    }

    #[test]
    fn recommendation_rule() {
        assert_eq!(recommended_old_space_mb(256 * MIB, 1), Some(128));
        assert_eq!(recommended_old_space_mb(1024 * MIB, 1), Some(704));
        assert_eq!(recommended_old_space_mb(2048 * MIB, 1), Some(1472));
        assert_eq!(recommended_old_space_mb(512 * MIB, 2), Some(128));
        assert_eq!(recommended_old_space_mb(96 * MIB, 1), None);
        assert!(rule_text(256 * MIB, 1).contains("75% of 256.0 MiB (192.0 MiB) minus 64.0 MiB"), "{}", rule_text(256 * MIB, 1));
    }

    #[test]
    fn node20_in_256() {
        let a = assess(&facts("v20.20.2", 259, Some(256)));
        assert_eq!(ids(&a), ["heap-limit-above-container-limit"]);
        assert_eq!(a.recommended_max_old_space_size_mb, Some(128));
        assert_eq!(a.headroom_bytes, Some(206 * MIB as i64));
    }

    #[test]
    fn node18_in_256() {
        let a = assess(&facts("v18.20.8", 4144, Some(256)));
        assert_eq!(ids(&a), ["heap-limit-above-container-limit", "node18-cgroup-blind"]);
        assert!(!reads_cgroups("v20.2.0") && reads_cgroups("v20.3.0") && reads_cgroups("v26.1.0"));
        let mut f = facts("v18.20.8", 131, Some(256));
        f.heap_flags = vec!["--max-old-space-size=128".into()];
        assert_eq!(ids(&assess(&f)), Vec::<&str>::new(), "a user-set heap that fits is fine on Node 18 too");
    }

    #[test]
    fn nested_limit_and_sharing() {
        let mut f = facts("v22.23.5", 4144, Some(256));
        f.own_level_limit = None;
        assert_eq!(ids(&assess(&f)), ["heap-limit-above-container-limit", "limit-not-seen-by-node"]);
        let mut f = facts("v20.20.2", 259, Some(512));
        f.node_processes = 2;
        let a = assess(&f);
        assert_eq!(ids(&a), ["heap-limit-above-container-limit", "shared-limit"]);
        assert_eq!(a.recommended_max_old_space_size_mb, Some(128));
    }

    #[test]
    fn no_limit_comfort_waste_and_kills() {
        let a = assess(&facts("v20.20.2", 4144, None));
        assert_eq!(ids(&a), ["no-memory-limit"]);
        assert_eq!(a.findings[0].severity, Severity::Warning);
        assert_eq!(a.recommended_max_old_space_size_mb, None);
        let mut small = facts("v20.20.2", 1000, None);
        small.host_memory = Some(2048 * MIB);
        assert_eq!(assess(&small).findings[0].severity, Severity::Info);
        assert!(assess(&facts("v20.20.2", 524, Some(1024))).findings.is_empty());
        assert_eq!(ids(&assess(&facts("v20.20.2", 4144, Some(16 * 1024)))), ["heap-limit-far-below-container-limit"]);
        assert_eq!(ids(&assess(&facts("v24.1.0", 230, Some(256)))), ["heap-limit-leaves-no-room"]);
        let mut k = facts("v20.20.2", 524, Some(1024));
        k.oom_kills = Some(2);
        assert_eq!(ids(&assess(&k)), ["oom-killed"]);
        k.oom_kills = Some(0);
        k.high_events = Some(3);
        k.oom_group = true;
        assert_eq!(ids(&assess(&k)), ["memory-high-throttled", "oom-group-kill"]);
        assert_eq!(ids(&assess(&facts("v20.20.2", 259, Some(80)))), ["heap-limit-above-container-limit", "limit-too-small"]);
    }

    #[test]
    fn flags() {
        assert_eq!(
            heap_flags(["--inspect", "--max-old-space-size=300", "--max_old_space_size", "200"]),
            ["--max-old-space-size=300", "--max_old_space_size=200"]
        );
        assert!(heap_flags(["--max-semi-space-size=1"]).is_empty());
    }
}
