//! One error type for everything that can go wrong talking to a Node
//! inspector. Every message is one line naming the address, URL, process or
//! file concerned, so a command can print it as is.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid inspector address `{addr}`: {why}")]
    BadAddress { addr: String, why: String },

    /// The inspector runs any code it is sent: leakhound only talks to one
    /// on this machine's loopback interface.
    #[error("{addr} is not a loopback address: leakhound only connects to inspectors on 127.0.0.1, ::1 or localhost")]
    NotLoopback { addr: String },

    #[error("no inspector on {addr}; connection refused")]
    Refused { addr: String },

    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },

    #[error("{addr} did not answer {what} within {secs:.1} s")]
    Timeout { addr: String, what: String, secs: f64 },

    #[error("{addr} is not a Node inspector (GET /json/list returned {got})")]
    NotInspector { addr: String, got: String },

    #[error("the inspector on {addr} lists no target to attach to")]
    NoTargets { addr: String },

    #[error("websocket handshake with {url} failed: {why}")]
    Handshake { url: String, why: String },

    /// The websocket closed (the process exited, crashed or closed its
    /// inspector). `during` says what was going on, e.g. " while taking the
    /// heap snapshot".
    #[error("the target closed the connection{during}")]
    Closed { during: String },

    /// The peer broke the protocol: not JSON, not CDP, a message over the
    /// size limit. Nothing it sent is used.
    #[error("{url} is not a working Node inspector: {why}")]
    BadPeer { url: String, why: String },

    #[error("{method} failed: {message} (code {code})")]
    Protocol { method: String, code: i64, message: String },

    #[error("{method}: no reply from the target within {secs:.1} s")]
    CallTimeout { method: String, secs: f64 },

    #[error("unexpected reply to {method}: {why}")]
    BadReply { method: String, why: String },

    #[error("the expression threw in the target: {0}")]
    Exception(String),

    /// Only Node processes are signalled (see `nodeproc`).
    #[error("process {pid} is not a Node process (it runs {what}); leakhound sends SIGUSR1 only to Node, so nothing was sent")]
    NotNode { pid: u32, what: String },

    #[error("process {pid} does not exist")]
    NoSuchProcess { pid: u32 },

    #[error("not permitted to signal process {pid} (is it another user's?)")]
    NotPermitted { pid: u32 },

    /// SIGUSR1's default action terminates a process: only send it to one
    /// that handles it, as Node does.
    #[error("process {pid} ({name}) does not handle SIGUSR1, so it is not a Node process that can open an inspector; not sending the signal, which would kill it")]
    NoSigusr1Handler { pid: u32, name: String },

    #[error("process {pid} opened no inspector on {addr} within {secs:.1} s of SIGUSR1 (started with --inspect-port? pass --port; or started with --disable-sigusr1?)")]
    AttachTimeout { pid: u32, addr: String, secs: f64 },

    #[error("the inspector on {addr} belongs to process {found}, not {pid} (another Node process holds the port? pass --port)")]
    WrongProcess { addr: String, pid: u32, found: u32 },

    /// leakhound opened this inspector (SIGUSR1) and could not close it.
    #[error("could not close the inspector leakhound opened in process {pid} on {addr} ({why}); it is still listening: restart the process or close it from inside (require('inspector').close())")]
    CloseFailed { pid: u32, addr: String, why: String },

    #[error("cannot start `{cmd}`: {source}")]
    Spawn { cmd: String, source: std::io::Error },

    #[error("`{cmd}` exited ({status}) {when}")]
    Exited { cmd: String, status: String, when: String },

    #[error("`{cmd}` printed no inspector URL on its stderr within {secs:.1} s (is it a Node program?)")]
    NoInspectorUrl { cmd: String, secs: f64 },

    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },

    #[error("the heap snapshot is incomplete: {0}")]
    Incomplete(String),

    #[error("no event from the target for {secs:.0} s while taking the heap snapshot")]
    SnapshotStalled { secs: f64 },
}

impl Error {
    /// The target went away (websocket closed or the process exited).
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed { .. } | Error::Exited { .. })
    }
}
