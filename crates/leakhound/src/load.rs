//! Loading snapshots with a progress bar (only when stderr is a terminal)
//! and phase timings (`LEAKHOUND_TIMING`): what the terminal shows while
//! `diagnose::files` reads the files.

use crate::output::Timer;
use crate::SnapshotArgs;
use anyhow::Result;
use diagnose::files::Progress;
use heapsnap::HeapSnapshot;
use std::io::IsTerminal;
use std::path::Path;

/// A progress bar per parsed file on a terminal, and phase timings.
pub struct Terminal {
    bar: Option<indicatif::ProgressBar>,
    timer: Timer,
}

impl Terminal {
    pub fn new() -> Self {
        Terminal { bar: None, timer: Timer::new() }
    }
}

impl Progress for Terminal {
    fn parsing(&mut self, path: &Path, len: Option<u64>) {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let b = match len {
            Some(l) => indicatif::ProgressBar::new(l),
            None => indicatif::ProgressBar::new_spinner(),
        };
        b.set_style(
            indicatif::ProgressStyle::with_template("parsing {msg} {bar:40} {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(path.display().to_string());
        self.bar = Some(b);
    }
    fn read(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }
    fn parsed(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
    fn phase(&mut self, name: &str) {
        self.timer.phase(name);
    }
}

pub fn load(args: &SnapshotArgs) -> Result<HeapSnapshot> {
    Ok(diagnose::files::open(&args.file, args.threads, &mut Terminal::new())?)
}
