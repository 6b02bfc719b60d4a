//! A Chrome DevTools Protocol client for Node's inspector (Node 18 to 26),
//! on tokio.
//!
//! - Reaching a process: [`discover`] (`GET /json/list`), [`attach_pid`]
//!   (SIGUSR1, then discovery on 127.0.0.1:9229 or the given port),
//!   [`launch`] (start `node ... --inspect=127.0.0.1:0`, read the URL it
//!   prints, and return once Node has finished bootstrapping: evaluating
//!   Node APIs earlier can break or crash the process). Loopback only: the
//!   inspector runs any code it is sent.
//! - Talking to it: [`Session`] (one websocket): [`Session::call`] for any
//!   protocol method with a timeout, [`Session::subscribe`] for events, and
//!   helpers: [`Session::evaluate`], [`Session::memory`],
//!   [`Session::collect_garbage`], [`Session::take_heap_snapshot`] (streamed
//!   to `FILE.part`, renamed when complete), [`Session::start_sampling`] and
//!   [`Session::sampling_profile`] (the sampling heap profiler, [`sampling`]);
//!   objects by reference ([`runtime`]: object groups, `queryObjects`,
//!   `callFunctionOn`, properties, function locations, script URLs).
//! - Leaving a process as safe as we found it: [`attach_pid_guarded`]
//!   returns an [`OpenedInspector`] when we opened the inspector (SIGUSR1),
//!   which closes it again on `close` or drop; [`private`] creates every
//!   file holding heap contents 0600 and every snapshot folder 0700.
//! - Errors: one [`Error`] enum whose messages are one line naming the
//!   address, process or file.
//!
//! ```no_run
//! # async fn demo() -> inspector::Result<()> {
//! let url = inspector::attach_pid(12345, 9229).await?;
//! let session = inspector::Session::connect(&url).await?;
//! let m = session.memory().await?;
//! println!("heap used {} of {}", m.heap_used, m.heap_size_limit);
//! session.take_heap_snapshot("app.heapsnapshot".as_ref(), |bytes| eprint!("\r{bytes}")).await?;
//! # Ok(()) }
//! ```

pub mod addr;
pub mod attach;
pub mod discover;
pub mod error;
pub mod launch;
pub mod nodeproc;
pub mod private;
pub mod runtime;
pub mod sampling;
pub mod session;
pub mod snapshot;
pub mod tracking;

pub use addr::{parse_endpoint, Endpoint};
pub use attach::{attach_pid, attach_pid_guarded, attach_pid_with, Attached, OpenedInspector, DEFAULT_PORT};
pub use discover::{discover, TargetInfo};
pub use error::{Error, Result};
pub use launch::{launch, launch_with, ChildStdout, LaunchOptions, Launched};
pub use runtime::{Properties, PropertyDescriptor, RemoteObject};
pub use sampling::{SamplingNode, SamplingProfile, DEFAULT_SAMPLING_INTERVAL};
pub use session::{EvalOptions, Event, MemorySample, ProcessInfo, Session};
pub use snapshot::{part_path, SnapshotOptions, SnapshotProgress};
pub use tracking::{Boundary, Tracking, TrackingState};
