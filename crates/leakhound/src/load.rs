//! Loading a snapshot with a progress bar (only when stderr is a terminal).

use crate::SnapshotArgs;
use anyhow::{Context, Result};
use heapsnap::{HeapSnapshot, ParseOptions};
use std::io::IsTerminal;

pub fn load(args: &SnapshotArgs) -> Result<HeapSnapshot> {
    let path = &args.file;
    let shown = path.display().to_string();
    let (input, len) = heapsnap::open_input(path).with_context(|| format!("cannot read {shown}"))?;
    let bar = if std::io::stderr().is_terminal() {
        let b = match len {
            Some(l) => indicatif::ProgressBar::new(l),
            None => indicatif::ProgressBar::new_spinner(),
        };
        b.set_style(
            indicatif::ProgressStyle::with_template("parsing {msg} {bar:40} {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(shown.clone());
        Some(b)
    } else {
        None
    };
    let mut report = |done: u64| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    };
    let opts = ParseOptions { threads: args.threads, progress: Some(&mut report), observer: crate::debug_laps::observer() };
    let snap = heapsnap::parse_input(input, opts).with_context(|| format!("{shown}"));
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    snap
}

/// Only the node table of a snapshot (ids, types, sizes): see
/// `heapsnap::parse_nodes_only`.
pub fn load_nodes_only(path: &std::path::Path, threads: usize) -> Result<HeapSnapshot> {
    let shown = path.display().to_string();
    let (input, _) = heapsnap::open_input(path).with_context(|| format!("cannot read {shown}"))?;
    heapsnap::parse_nodes_only(input, ParseOptions { threads, progress: None, observer: crate::debug_laps::observer() })
        .with_context(|| shown.clone())
}
