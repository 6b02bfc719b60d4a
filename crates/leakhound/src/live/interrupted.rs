//! Ctrl-C during a live command: stop the app, report what was gathered,
//! exit 130 (128 + SIGINT, as shells expect).

use crate::output::{bytes, count, int};

/// The exit status after an interruption.
pub const EXIT_INTERRUPTED: u8 = 130;

/// What a run had gathered when it was interrupted.
#[derive(Debug, serde::Serialize)]
pub struct Interrupted {
    pub schema_version: u32,
    pub command: &'static str,
    pub interrupted: bool,
    pub verdict: &'static str,
    pub reason: String,
    /// The phase it was in.
    pub phase: String,
    pub answered_requests: u64,
    /// Seconds since the start.
    pub duration_s: f64,
    /// `(t, heap used)` after each full GC.
    pub floors: Vec<(f64, u64)>,
    /// The complete snapshots written.
    pub snapshots: Vec<String>,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.reason)
    }
}

impl std::error::Error for Interrupted {}

impl Interrupted {
    pub fn new(
        command: &'static str,
        phase: String,
        answered: u64,
        duration_s: f64,
        floors: Vec<(f64, u64)>,
        snapshots: Vec<String>,
    ) -> Self {
        let reason = format!("interrupted during {phase} after {}; the app was stopped", count(answered, "answered request"));
        Interrupted {
            schema_version: 1,
            command,
            interrupted: true,
            verdict: "inconclusive",
            reason,
            phase,
            answered_requests: answered,
            duration_s,
            floors,
            snapshots,
        }
    }

    /// The partial text report.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(o, "Interrupted: no verdict — {}", self.reason);
        if !self.floors.is_empty() {
            let shown: Vec<String> = self.floors.iter().map(|f| bytes(f.1)).collect();
            let shown = if shown.len() > 8 {
                format!("{} → … → {}", shown[..3].join(" → "), shown[shown.len() - 3..].join(" → "))
            } else {
                shown.join(" → ")
            };
            let _ = writeln!(o, "Heap after GC: {shown} ({} over {:.1} s)", count(self.floors.len() as u64, "floor"), self.duration_s);
        }
        let _ = writeln!(o, "Snapshots complete: {} (a diagnosis needs 3)", int(self.snapshots.len() as u64));
        o
    }

    /// Print the partial report (JSON or text) on stdout, the reason on
    /// stderr; the exit status.
    pub fn report(&self, json: bool) -> std::process::ExitCode {
        if json {
            println!("{}", serde_json::to_string_pretty(self).unwrap_or_default());
        } else {
            print!("{}", self.render());
        }
        eprintln!("leakhound: {}", self.reason);
        std::process::ExitCode::from(EXIT_INTERRUPTED)
    }
}

/// The complete snapshots `s1.heapsnapshot`, `s2…` in `dir`, in order.
pub fn complete_snapshots(dir: &std::path::Path) -> Vec<String> {
    (1..).map(|k| dir.join(format!("s{k}.heapsnapshot"))).take_while(|p| p.exists()).map(|p| p.display().to_string()).collect()
}

/// After the live part: Ctrl-C while the snapshots are diagnosed. The
/// runtime's signal handler stays installed once made (SIGINT no longer
/// kills), so without this a Ctrl-C here would be ignored. A thread waits
/// for it: remove `temporary` (the snapshot folder, when not --keep), say
/// so, exit 130. The app is already stopped.
pub fn exit_on_ctrl_c(temporary: Option<std::path::PathBuf>, during: &'static str) {
    let _ = std::thread::Builder::new().name("ctrl-c".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let mut interrupts = super::Interrupts::new();
            interrupts.recv().await;
        });
        if let Some(dir) = &temporary {
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!("leakhound: interrupted during {during}; the app was already stopped");
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    });
}
