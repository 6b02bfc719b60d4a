//! Heap snapshots taken of a worker before it exits: where they go, whether
//! the disk has room, and how many are kept.
//!
//! The worker writes `NAME.heapsnapshot.part`; leakhound renames it when the
//! worker reports success, so a file with the final name is always whole.

use crate::watch::Reason;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const PREFIX: &str = "leakhound-";
const SUFFIX: &str = ".heapsnapshot";

/// `leakhound-w0-1234-1732200000123-rss.heapsnapshot`: slot, pid, Unix ms, reason.
pub fn file_name(slot: usize, pid: u32, reason: Reason, at: SystemTime) -> String {
    let ms = at.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("{PREFIX}w{slot}-{pid}-{ms}-{}{SUFFIX}", reason.as_str())
}

pub fn part_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".part");
    PathBuf::from(p)
}

/// Create the snapshot folder (and missing parents) mode 0700: snapshots
/// hold the workers' secrets. An existing folder is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Create the empty `.part` file mode 0600 before the worker writes into
/// it: `v8.writeHeapSnapshot` truncates an existing file and keeps its mode,
/// so the file is private from its first byte whatever the worker's umask.
pub fn create_private_part(part: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(part)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
}

/// Bytes a snapshot of a heap this size needs: the file is about 1.5 to 2
/// times the heap used (every node and edge is written as text), plus
/// room for the strings.
pub fn estimated_size(heap_used: u64) -> u64 {
    heap_used.saturating_mul(2) + (64 << 20)
}

/// Why a snapshot must not be taken now, if so.
pub fn disk_check(free: u64, heap_used: u64, min_free: u64) -> Result<(), String> {
    let need = estimated_size(heap_used);
    if free < need.saturating_add(min_free) {
        return Err(format!(
            "{} free, a snapshot of this heap needs about {} and --snapshot-min-free keeps {}",
            crate::units::bytes(free),
            crate::units::bytes(need),
            crate::units::bytes(min_free)
        ));
    }
    Ok(())
}

/// Remove the oldest of leakhound's snapshots in `dir` beyond `keep`
/// (other files are never touched). Returns the names removed.
pub fn prune(dir: &Path, keep: usize) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut ours: Vec<(SystemTime, String)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
                return None;
            }
            let md = e.metadata().ok()?;
            md.is_file().then(|| (md.modified().unwrap_or(UNIX_EPOCH), name))
        })
        .collect();
    if ours.len() <= keep {
        return Vec::new();
    }
    ours.sort();
    let excess = ours.len() - keep;
    ours.into_iter().take(excess).filter_map(|(_, name)| std::fs::remove_file(dir.join(&name)).ok().map(|_| name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names() {
        let n = file_name(1, 42, Reason::Rss, UNIX_EPOCH + Duration::from_millis(1234));
        assert_eq!(n, "leakhound-w1-42-1234-rss.heapsnapshot");
        assert_eq!(part_path(Path::new("/d/x.heapsnapshot")), Path::new("/d/x.heapsnapshot.part"));
    }

    #[test]
    fn disk() {
        assert!(disk_check(10 << 30, 100 << 20, 1 << 30).is_ok());
        let e = disk_check(500 << 20, 300 << 20, 0).unwrap_err();
        assert!(e.contains("needs about"), "{e}");
    }

    #[test]
    fn prune_keeps_the_newest_and_leaves_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5u64 {
            let p = dir.path().join(file_name(0, 1, Reason::Rss, UNIX_EPOCH + Duration::from_secs(i)));
            std::fs::write(&p, b"{}").unwrap();
            let t = std::fs::File::options().write(true).open(&p).unwrap();
            t.set_modified(UNIX_EPOCH + Duration::from_secs(1_000_000 + i)).unwrap();
        }
        std::fs::write(dir.path().join("mine.heapsnapshot"), b"{}").unwrap();
        let removed = prune(dir.path(), 2);
        assert_eq!(removed.len(), 3);
        assert!(removed.iter().all(|n| n.contains("-1-0-") || n.contains("-1-1000-") || n.contains("-1-2000-")), "{removed:?}");
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, 3);
    }
}
