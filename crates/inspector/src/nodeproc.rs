//! Is a process Node? Checked before `--pid` sends SIGUSR1, the one thing
//! leakhound does to a process it did not start.
//!
//! Why not only "does it handle SIGUSR1": a shell with `trap ... USR1`
//! handles it too, and reacts in its own way (a trap command runs, a
//! `sleep` it waits for is cut short). So the executable must be Node:
//! `/proc/PID/exe` (`node`, `nodejs`, `node22`), or, when that link cannot
//! be read (another user's process), argv[0] from `/proc/PID/cmdline`.
//! `npm start` runs as `node` too (npm is a Node script), so it passes.

use crate::error::{Error, Result};
use crate::launch::is_node_like;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// `Ok` when `pid` runs a Node executable; `Error::NotNode` naming what it
/// runs otherwise.
pub fn check_is_node(pid: u32) -> Result<()> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or(b"");
    let exe_is_node = exe.as_deref().is_some_and(|e| {
        // A replaced binary reads `/usr/bin/node (deleted)`.
        let name = e.as_os_str().as_bytes();
        let name = name.strip_suffix(b" (deleted)").unwrap_or(name);
        is_node_like(OsStr::from_bytes(name))
    });
    let argv0_is_node = is_node_like(OsStr::from_bytes(argv0));
    match exe {
        Some(_) if exe_is_node => Ok(()),
        None if argv0_is_node => Ok(()),
        _ => {
            let what = match &exe {
                Some(e) => e.display().to_string(),
                None if !argv0.is_empty() => String::from_utf8_lossy(argv0).into_owned(),
                None => std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string(),
            };
            Err(Error::NotNode { pid, what })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_process_is_not_node() {
        let e = check_is_node(std::process::id()).unwrap_err();
        assert!(matches!(e, Error::NotNode { .. }), "{e}");
    }
}
