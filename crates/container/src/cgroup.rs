//! Which memory cgroup a process is in, and the limit it really lives
//! under.
//!
//! Why walk up the tree: a cgroup with no limit of its own under a limited
//! parent is limited by the parent, but libuv (and so Node's heap sizing)
//! reads only the process's own level. The effective limit is the smallest
//! `memory.max`/`memory.high` (v2) or `memory.limit_in_bytes` (v1, plus
//! `hierarchical_memory_limit` from `memory.stat`) from the process's
//! cgroup up to the hierarchy's root.
//!
//! Where the cgroup is: `/proc/PID/cgroup` gives its path, relative to the
//! root of the mount found in `/proc/PID/mountinfo` (field 4). With a v1
//! host namespace inside a container the path does not exist under the
//! mount (the container's own cgroup is mounted there): then the mount
//! itself is the cgroup, as libuv does.

use crate::Error;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// v1 writes "no limit" as LONG_MAX rounded down to a page
/// (9223372036854771712 with 4 KiB pages); anything this large is no limit.
const V1_UNLIMITED: u64 = 1 << 62;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// Where a process's memory cgroup is.
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    pub version: Version,
    /// The memory hierarchy's mount point (or `--cgroup-root`).
    pub mount: PathBuf,
    /// The path `/proc/PID/cgroup` gives, e.g. `/kubepods/pod1/abc`.
    pub path: String,
    /// The cgroup's directory.
    pub dir: PathBuf,
    /// The path was not found under the mount; `dir` is the mount itself.
    pub fell_back_to_mount: bool,
}

/// One level of the hierarchy, from the process's cgroup up.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub dir: PathBuf,
    /// v2 `memory.max`, v1 `memory.limit_in_bytes`; None = no limit.
    pub max: Option<u64>,
    /// v2 `memory.high` (a throttle, not a kill); None on v1.
    pub high: Option<u64>,
}

/// The limit that binds first, and where it is set.
#[derive(Debug, Clone, Serialize)]
pub struct Binding {
    pub bytes: u64,
    /// The cgroup directory that sets it.
    pub dir: PathBuf,
    /// `memory.max`, `memory.high`, `memory.limit_in_bytes` or
    /// `memory.stat:hierarchical_memory_limit`.
    pub file: String,
}

/// A process's memory cgroup, read once.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub location: Location,
    /// The process's level first, the hierarchy's root last.
    pub levels: Vec<Level>,
    /// The smallest limit on the way up; None when there is none.
    pub limit: Option<Binding>,
    /// The limit at the process's own level only: what libuv (Node 20.3+)
    /// sees when it sizes the heap.
    pub own_level_limit: Option<u64>,
    /// `memory.current` (v2) or `memory.usage_in_bytes` (v1) of the
    /// process's cgroup: the charge, page cache included.
    pub usage_bytes: Option<u64>,
    /// The OOM-kill counter (v2 `memory.events` `oom_kill`, v1
    /// `memory.oom_control` `oom_kill`): the largest value from the
    /// process's cgroup up to the level that sets the limit.
    pub oom_kills: Option<u64>,
    /// v2 `memory.events` `high` of the process's cgroup: times it was
    /// throttled for passing `memory.high`.
    pub high_events: Option<u64>,
    /// v2 `memory.oom.group` is 1 on the process's cgroup or one above it
    /// up to the binding level: one OOM kill takes every process.
    pub oom_group: bool,
}

/// `max` or a v1 "unlimited" number -> None.
pub fn parse_limit(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "max" {
        return None;
    }
    match t.parse::<u64>() {
        Ok(n) if n < V1_UNLIMITED => Some(n),
        _ => None,
    }
}

/// `key value` lines (memory.events, memory.stat, memory.oom_control).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok()).flatten()
    })
}

/// The memory controller's line in `/proc/PID/cgroup`: (version, path).
/// v1 `4:memory:/a/b` wins over v2 `0::/a/b` when both are there (a hybrid
/// host keeps memory in v1).
pub fn path_from_proc_cgroup(text: &str, want: Option<Version>) -> Option<(Version, String)> {
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if ctrl.split(',').any(|c| c == "memory") && want != Some(Version::V2) {
            return Some((Version::V1, path.to_string()));
        }
        if id == "0" && ctrl.is_empty() {
            v2 = Some((Version::V2, path.to_string()));
        }
    }
    if want == Some(Version::V1) {
        return None;
    }
    v2
}

/// A cgroup mount from `/proc/PID/mountinfo`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub version: Version,
    /// Field 4: the path of the mounted subtree inside the hierarchy.
    pub root: String,
    pub mount_point: PathBuf,
}

/// `\040` and friends in mountinfo paths.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push(((b[i + 1] - b'0') << 6) | ((b[i + 2] - b'0') << 3) | (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The memory hierarchy's mount: v1 `cgroup` with the `memory` option,
/// else `cgroup2`.
pub fn memory_mount(mountinfo: &str) -> Option<Mount> {
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.is_empty() {
            continue;
        }
        let (root, point) = (unescape(pre[3]), PathBuf::from(unescape(pre[4])));
        match post[0] {
            "cgroup" if post.get(2).is_some_and(|o| o.split(',').any(|o| o == "memory")) => {
                return Some(Mount { version: Version::V1, root, mount_point: point });
            }
            "cgroup2" if v2.is_none() => v2 = Some(Mount { version: Version::V2, root, mount_point: point }),
            _ => {}
        }
    }
    v2
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// The directory of cgroup `path` under a mount whose subtree root is
/// `mount_root`; falls back to the mount itself when it is not there.
fn resolve_dir(mount_point: &Path, mount_root: &str, path: &str) -> (PathBuf, bool) {
    let rel = if mount_root == "/" { Some(path) } else { path.strip_prefix(mount_root).filter(|r| r.is_empty() || r.starts_with('/')) };
    if let Some(rel) = rel {
        let dir = mount_point.join(rel.trim_start_matches('/'));
        if dir.is_dir() {
            return (dir, false);
        }
    }
    (mount_point.to_path_buf(), true)
}

/// Find the memory cgroup of `pid`. `root` replaces the mount found in
/// mountinfo: a directory laid out as cgroupfs, either a v2 hierarchy (it
/// has `cgroup.controllers`) or the v1 directory holding `memory/`.
pub fn locate(pid: u32, root: Option<&Path>) -> Result<Location, Error> {
    let proc_cgroup = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&proc_cgroup).map_err(|e| Error::NoProcess { pid, why: e.to_string() })?;
    let (mount_point, mount_root, version) = match root {
        Some(r) => {
            if r.join("cgroup.controllers").is_file() {
                (r.to_path_buf(), "/".to_string(), Version::V2)
            } else if r.join("memory").join("memory.limit_in_bytes").is_file() {
                (r.join("memory"), "/".to_string(), Version::V1)
            } else if r.join("memory.limit_in_bytes").is_file() {
                (r.to_path_buf(), "/".to_string(), Version::V1)
            } else {
                return Err(Error::NotCgroupFs(r.to_path_buf()));
            }
        }
        None => {
            let mountinfo =
                std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).map_err(|e| Error::NoProcess { pid, why: e.to_string() })?;
            let m = memory_mount(&mountinfo).ok_or(Error::NoMemoryCgroup { pid })?;
            // Another mount namespace (a container seen from the host): its
            // mounts are reachable through /proc/PID/root.
            let same_ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok() == std::fs::read_link("/proc/self/ns/mnt").ok();
            let point = if same_ns {
                m.mount_point
            } else {
                Path::new(&format!("/proc/{pid}/root")).join(m.mount_point.strip_prefix("/").unwrap_or(&m.mount_point))
            };
            (point, m.root, m.version)
        }
    };
    let (_, path) = path_from_proc_cgroup(&text, Some(version)).ok_or(Error::NoMemoryCgroup { pid })?;
    let (dir, fell_back_to_mount) = resolve_dir(&mount_point, &mount_root, &path);
    Ok(Location { version, mount: mount_point, path, dir, fell_back_to_mount })
}

/// Read the limits, usage and OOM-kill counter of a located cgroup.
pub fn read_memory(location: Location) -> Memory {
    let mut levels = Vec::new();
    let mut dir = location.dir.clone();
    loop {
        let level = match location.version {
            Version::V2 => Level {
                max: read(&dir.join("memory.max")).and_then(|t| parse_limit(&t)),
                high: read(&dir.join("memory.high")).and_then(|t| parse_limit(&t)),
                dir: dir.clone(),
            },
            Version::V1 => {
                Level { max: read(&dir.join("memory.limit_in_bytes")).and_then(|t| parse_limit(&t)), high: None, dir: dir.clone() }
            }
        };
        levels.push(level);
        if dir == location.mount || !dir.starts_with(&location.mount) {
            break;
        }
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => break,
        }
    }
    let mut limit: Option<Binding> = None;
    let mut offer = |bytes: Option<u64>, dir: &Path, file: &str| {
        if let Some(b) = bytes {
            if limit.as_ref().is_none_or(|l| b < l.bytes) {
                limit = Some(Binding { bytes: b, dir: dir.to_path_buf(), file: file.to_string() });
            }
        }
    };
    for l in &levels {
        match location.version {
            Version::V2 => {
                offer(l.max, &l.dir, "memory.max");
                offer(l.high, &l.dir, "memory.high");
            }
            Version::V1 => offer(l.max, &l.dir, "memory.limit_in_bytes"),
        }
    }
    if location.version == Version::V1 {
        // Covers levels above the mount too (a container's view).
        let h = read(&location.dir.join("memory.stat")).and_then(|t| keyed(&t, "hierarchical_memory_limit")).filter(|&n| n < V1_UNLIMITED);
        offer(h, &location.dir, "memory.stat:hierarchical_memory_limit");
    }
    let own_level_limit = levels.first().and_then(|l| match (l.max, l.high) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    });
    let usage_file = match location.version {
        Version::V2 => "memory.current",
        Version::V1 => "memory.usage_in_bytes",
    };
    let usage_bytes = read(&location.dir.join(usage_file)).and_then(|t| t.trim().parse().ok());
    let oom_kills = oom_kills_of(&location, &levels, limit.as_ref());
    let (high_events, oom_group) = match location.version {
        Version::V2 => (
            read(&location.dir.join("memory.events")).and_then(|t| keyed(&t, "high")),
            levels.iter().any(|l| read(&l.dir.join("memory.oom.group")).is_some_and(|t| t.trim() == "1")),
        ),
        Version::V1 => (None, false),
    };
    Memory { location, levels, limit, own_level_limit, usage_bytes, oom_kills, high_events, oom_group }
}

/// The OOM-kill counter from the process's level up to the binding one.
fn oom_kills_of(location: &Location, levels: &[Level], limit: Option<&Binding>) -> Option<u64> {
    let file = match location.version {
        Version::V2 => "memory.events",
        Version::V1 => "memory.oom_control",
    };
    let mut best: Option<u64> = None;
    for l in levels {
        if let Some(n) = read(&l.dir.join(file)).and_then(|t| keyed(&t, "oom_kill")) {
            best = Some(best.map_or(n, |b| b.max(n)));
        }
        if limit.is_some_and(|b| b.dir == l.dir) {
            break;
        }
    }
    best
}

impl Memory {
    /// Locate and read the memory cgroup of `pid`.
    pub fn of_pid(pid: u32, root: Option<&Path>) -> Result<Memory, Error> {
        Ok(read_memory(locate(pid, root)?))
    }

    /// The directory whose subtree shares the limit (the process's own
    /// cgroup when there is no limit).
    pub fn sharing_dir(&self) -> &Path {
        self.limit.as_ref().map(|b| b.dir.as_path()).unwrap_or(&self.location.dir)
    }

    /// The OOM-kill counter now (re-read, for watchers).
    pub fn current_oom_kills(&self) -> Option<u64> {
        oom_kills_of(&self.location, &self.levels, self.limit.as_ref())
    }

    /// Pids in the subtree that shares the limit (`cgroup.procs` of each
    /// directory below `sharing_dir`).
    pub fn pids_sharing(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        let mut stack = vec![self.sharing_dir().to_path_buf()];
        while let Some(d) = stack.pop() {
            if let Some(t) = read(&d.join("cgroup.procs")) {
                pids.extend(t.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
            if let Ok(rd) = std::fs::read_dir(&d) {
                stack.extend(rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

/// Whether `pid` runs a Node binary (its executable's name starts with
/// `node`).
pub fn is_node(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().starts_with("node")))
        .unwrap_or(false)
}

/// The host's RAM (`MemTotal` in /proc/meminfo), bytes.
pub fn host_memory() -> Option<u64> {
    read(Path::new("/proc/meminfo")).and_then(|t| keyed(&t.replace(':', " "), "MemTotal")).map(|kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_keys() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("268435456\n"), Some(268435456));
        assert_eq!(keyed("low 0\nhigh 4\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n", "oom_kill"), Some(2));
        assert_eq!(keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), Some(3));
    }

    #[test]
    fn proc_cgroup_lines() {
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/74b2\n1:cpu:/\n0::/\n";
        assert_eq!(path_from_proc_cgroup(hybrid, None), Some((Version::V1, "/process_api/74b2".into())));
        assert_eq!(path_from_proc_cgroup(hybrid, Some(Version::V2)), Some((Version::V2, "/".into())));
        assert_eq!(path_from_proc_cgroup("0::/kubepods/pod1/c1\n", None), Some((Version::V2, "/kubepods/pod1/c1".into())));
        assert_eq!(path_from_proc_cgroup("0::/x\n", Some(Version::V1)), None);
        assert_eq!(path_from_proc_cgroup("5:cpuset:/\n4:cpu,memory:/a\n", None), Some((Version::V1, "/a".into())));
    }

    #[test]
    fn mounts() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                      35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n";
        let m = memory_mount(hybrid).unwrap();
        assert_eq!((m.version, m.root.as_str(), m.mount_point.as_path()), (Version::V1, "/docker/abc", Path::new("/sys/fs/cgroup/memory")));
        let v2 = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(memory_mount(v2).unwrap().version, Version::V2);
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert!(memory_mount("1 2 0:1 / / rw - ext4 /dev/sda1 rw\n").is_none());
    }

    fn write(p: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(p).unwrap();
        std::fs::write(p.join(name), text).unwrap();
    }

    /// v2: a child with no limit under a 256 MiB parent is limited by the
    /// parent; memory.high below max binds first; the OOM counter is read
    /// up to the binding level.
    #[test]
    fn v2_walks_up() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write(root, "cgroup.controllers", "cpu memory pids\n");
        let parent = root.join("kubepods/pod1");
        write(&parent, "memory.max", "268435456\n");
        write(&parent, "memory.high", "max\n");
        write(&parent, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
        let child = parent.join("c1");
        write(&child, "memory.max", "max\n");
        write(&child, "memory.high", "max\n");
        write(&child, "memory.current", "1000\n");
        write(&child, "memory.events", "low 0\nhigh 7\nmax 0\noom 0\noom_kill 0\n");
        write(&child, "memory.oom.group", "1\n");
        let loc = Location {
            version: Version::V2,
            mount: root.into(),
            path: "/kubepods/pod1/c1".into(),
            dir: child.clone(),
            fell_back_to_mount: false,
        };
        let m = read_memory(loc.clone());
        assert_eq!(m.levels.len(), 4);
        let b = m.limit.as_ref().unwrap();
        assert_eq!((b.bytes, b.dir.as_path(), b.file.as_str()), (268435456, parent.as_path(), "memory.max"));
        assert_eq!(m.own_level_limit, None);
        assert_eq!(m.oom_kills, Some(1));
        assert_eq!(m.usage_bytes, Some(1000));
        assert_eq!((m.high_events, m.oom_group), (Some(7), true));
        write(&child, "memory.high", "200000000\n");
        let m = read_memory(loc);
        let b = m.limit.as_ref().unwrap();
        assert_eq!((b.bytes, b.file.as_str()), (200000000, "memory.high"));
        assert_eq!(m.own_level_limit, Some(200000000));
        assert_eq!(m.oom_kills, Some(0), "the counter is read up to the level that binds");
    }

    #[test]
    fn v1_hierarchical_and_fallback() {
        let t = tempfile::tempdir().unwrap();
        let mount = t.path().join("memory");
        write(&mount, "memory.limit_in_bytes", "9223372036854771712\n");
        let leaf = mount.join("a/b");
        write(&mount.join("a"), "memory.limit_in_bytes", "9223372036854771712\n");
        write(&leaf, "memory.limit_in_bytes", "9223372036854771712\n");
        // The kernel's view of a limit set above what is mounted here.
        write(&leaf, "memory.stat", "cache 0\nrss 0\nhierarchical_memory_limit 536870912\n");
        write(&leaf, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
        let (dir, fell) = resolve_dir(&mount, "/", "/a/b");
        assert_eq!((dir.as_path(), fell), (leaf.as_path(), false));
        let m = read_memory(Location { version: Version::V1, mount: mount.clone(), path: "/a/b".into(), dir, fell_back_to_mount: false });
        let b = m.limit.unwrap();
        assert_eq!((b.bytes, b.file.as_str()), (536870912, "memory.stat:hierarchical_memory_limit"));
        assert_eq!(m.oom_kills, Some(2));
        // A container's host path (/docker/<id>) is not under its mount.
        assert_eq!(resolve_dir(&mount, "/", "/docker/abc"), (mount.clone(), true));
        assert_eq!(resolve_dir(&mount, "/docker/abc", "/docker/abc/a/b"), (leaf, false));
        assert_eq!(resolve_dir(&mount, "/docker/abc", "/docker/abcd"), (mount.clone(), true));
    }
}
