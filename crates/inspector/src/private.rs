//! Files and directories that hold heap contents (snapshots, profiles,
//! reports quoting heap strings): a heap holds whatever the process holds
//! (session tokens, passwords, users' data), so only the owner may read
//! them. Files are created 0600 and directories 0700 from the start (the
//! mode is given to `open`/`mkdir`, never set afterwards, so no other user
//! can open the file between its creation and a `chmod`), whatever the
//! umask says. Every command that writes such a file goes through here.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Owner read/write only.
pub const FILE_MODE: u32 = 0o600;
/// Owner only.
pub const DIR_MODE: u32 = 0o700;

/// Create (or truncate) `path` for writing, mode 0600. A file that already
/// existed keeps its inode, so its mode is narrowed to 0600 before the
/// first byte is written.
pub fn create_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().write(true).create(true).truncate(true).mode(FILE_MODE).open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Create `dir` and any missing parents, each new one mode 0700. A
/// directory that already exists is left as it is (it is the user's).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// A temporary directory, mode 0700, under the system's temp folder;
/// removed with everything in it when the value is dropped. (tempfile's
/// default is 0777 minus the umask: 0755 under the usual umask.)
pub fn temp_dir(prefix: &str) -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix(prefix).permissions(Permissions::from_mode(DIR_MODE)).tempdir()
}

/// `path` with `.part` appended to its file name.
pub fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}

/// Write `bytes` to `path` whole or not at all: into `path.part` (0600),
/// synced, then renamed over `path`. On failure the `.part` file is removed
/// and `path` is untouched. Errors name the file.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let part = part_path(path);
    let named = |p: &Path, e: io::Error| io::Error::new(e.kind(), format!("cannot write {}: {e}", p.display()));
    let result = (|| {
        let mut f = create_file(&part).map_err(|e| named(&part, e))?;
        f.write_all(bytes).map_err(|e| named(&part, e))?;
        f.sync_all().map_err(|e| named(&part, e))?;
        drop(f);
        std::fs::rename(&part, path).map_err(|e| named(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn modes_whatever_the_umask() {
        // SAFETY: umask only changes this process's default modes; this test
        // creates everything it checks itself.
        let old = unsafe { libc::umask(0) };
        let t = temp_dir("leakhound-private-test-").unwrap();
        assert_eq!(mode(t.path()), 0o700);
        let f = t.path().join("a.heapsnapshot");
        create_file(&f).unwrap().write_all(b"{}").unwrap();
        assert_eq!(mode(&f), 0o600);
        // An existing world-readable file is narrowed before it is written.
        let g = t.path().join("old.json");
        std::fs::write(&g, b"x").unwrap();
        std::fs::set_permissions(&g, Permissions::from_mode(0o644)).unwrap();
        write_file(&g, b"{\"a\":1}").unwrap();
        assert_eq!(mode(&g), 0o600);
        assert_eq!(std::fs::read(&g).unwrap(), b"{\"a\":1}");
        assert!(!part_path(&g).exists());
        let d = t.path().join("x/y/z");
        create_dir_all(&d).unwrap();
        for p in [t.path().join("x"), t.path().join("x/y"), d.clone()] {
            assert_eq!(mode(&p), 0o700, "{}", p.display());
        }
        unsafe { libc::umask(old) };
        let kept = t.path().to_path_buf();
        drop(t);
        assert!(!kept.exists());
    }
}
