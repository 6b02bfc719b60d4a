//! A reader that goes away (`leakhound run … | head`) ends leakhound
//! quietly, after its cleanup.
//!
//! Why not SIGPIPE's default action: it kills the process on the spot,
//! leaving a temporary snapshot folder (tens of MB) behind. With SIGPIPE
//! ignored (Rust's default) a write to the closed pipe fails with EPIPE:
//! `println!` then panics, which unwinds through every destructor (the
//! temporary folder is removed, a started app is killed); the panic
//! message is silenced here and the exit status is 141 (128 + SIGPIPE), as
//! a shell reports a process killed by SIGPIPE. A write that returns the
//! error instead ends the same way (see `is_broken_pipe`).

use std::process::ExitCode;

/// The exit status after a broken pipe.
pub const EXIT_BROKEN_PIPE: u8 = 141;

const MESSAGE: &str = "Broken pipe";

fn panic_is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let text = payload.downcast_ref::<String>().map(|s| s.as_str()).or_else(|| payload.downcast_ref::<&str>().copied()).unwrap_or("");
    text.contains(MESSAGE) && (text.contains("failed printing to std") || text.contains("os error 32"))
}

/// Whether an error is, or was caused by, a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Run `f`; a broken pipe on the way ends it quietly with status 141.
pub fn quiet_on_broken_pipe(f: impl FnOnce() -> ExitCode) -> ExitCode {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !panic_is_broken_pipe(info.payload()) {
            default(info);
        }
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(code) => code,
        Err(payload) if panic_is_broken_pipe(payload.as_ref()) => ExitCode::from(EXIT_BROKEN_PIPE),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}
