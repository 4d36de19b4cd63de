//! # forkexec
//!
//! Create and manage processes on Linux with the least overhead the kernel allows.
//!
//! - [`Cmd`]: Go's `exec.Cmd` — program, arguments, environment, directory, stdio, extra
//!   files, timeouts and Linux attributes; prepared once, started any number of times.
//! - [`start_process`], [`find_process`], [`Process`], [`ProcessState`]: Go's `os` process
//!   API, with pidfds where the kernel has them; [`look_path`]: Go's `exec.LookPath`.
//! - [`raw`]: safe wrappers over single system calls (`pipe2`, `waitpid`/`wait4`/`waitid`,
//!   `execve`, `fork`, `clone(CLONE_VM|CLONE_VFORK)`, `posix_spawn`, pidfds) and the spawn
//!   engine: an [`ExecPlan`](raw::ExecPlan) built once in the parent, run by a
//!   [`Strategy`](raw::Strategy).
//!
//! ## Cargo features
//! Both are **on by default**; with `default-features = false` only the spawning layers
//! are compiled.
//! - `agent`: [`agent`], named line-oriented workers served by one epoll thread.
//! - `upgrade`: [`upgrade`], zero-downtime restarts that hand listening sockets to a new
//!   binary (and systemd socket activation).
//!
//! ## Safety model
//! Between `fork`/`clone` and `execve` the child only makes async-signal-safe system calls
//! on memory the parent prepared before the clone: no allocation, no lock, no panic, no
//! `Drop`. A failing step is reported to the parent (stage + errno) and the child
//! `_exit(127)`s; the parent reaps it and returns a typed [`Error`]. All `unsafe` code lives
//! in the private `sys` module (`unsafe_code` is denied everywhere else); [`raw`] re-exports
//! its public wrappers, three of which are `unsafe fn` with a `# Safety` contract.
//!
//! ## Example
//! ```
//! assert_eq!(forkexec::Cmd::new("echo").arg("hi").output()?, b"hi\n");
//!
//! use forkexec::raw::{ExecPlan, Strategy, fork_exec, waitpid, WaitOptions, WaitStatus};
//! let plan = ExecPlan::new("/bin/sh", ["sh", "-c", "exit 3"])?;
//! let child = fork_exec(&plan, &[], Strategy::Auto)?;
//! assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(3));
//! # Ok::<(), forkexec::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(not(target_os = "linux"))]
compile_error!("forkexec supports Linux only (for now)");

#[cfg(feature = "agent")]
#[cfg_attr(docsrs, doc(cfg(feature = "agent")))]
pub mod agent;
mod attr;
mod capture;
mod cmd;
mod error;
mod lookpath;
mod namespaces;
// Public only so the fuzz targets (fuzz/) can drive the fd planner; not part of the API.
#[doc(hidden)]
pub mod plan;
mod process;
pub mod raw;
mod resource;
mod signal;
mod spawn;
mod status;
// The OS layer: the only module allowed `unsafe` code (see ARCHITECTURE.md).
#[allow(unsafe_code)]
mod sys;
#[cfg(feature = "upgrade")]
#[cfg_attr(docsrs, doc(cfg(feature = "upgrade")))]
pub mod upgrade;

pub use attr::{Credential, IdMap, SysProcAttr};
pub use cmd::{
    Buffer, CancelTarget, Child, ChildStderr, ChildStdin, ChildStdout, Cmd, Output, Stdio, Stream,
    WaitEvent, WaitSet,
};
pub use error::{Error, ErrorKind, Result, Stage};
pub use lookpath::{look_path, look_path_in, path_candidates, searched_by_child};
pub use namespaces::Namespaces;
pub use process::{ProcAttr, Process, find_process, start_process};
pub use resource::Resource;
pub use signal::IgnoredSignals;
pub use status::ProcessState;
pub use status::Signal;

/// The README's Rust blocks, compiled and run as doctests (`cargo test --doc`), so that
/// what a newcomer copies from it works.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// What may cross threads: every public type that owns no thread-bound state is `Send`
/// and `Sync`; and every public type is `Debug` (checked at compile time here; a change
/// that loses either fails the build).
#[cfg(test)]
mod thread_safety {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    fn debug<T: std::fmt::Debug>() {}

    #[test]
    fn public_types_are_debug() {
        use crate::raw::*;
        use crate::*;
        debug::<Buffer>();
        debug::<CStringArray>();
        debug::<CancelTarget<'static>>();
        debug::<Child>();
        debug::<ChildFd<'static>>();
        debug::<ChildStdin>();
        debug::<Cmd>();
        debug::<Credential>();
        debug::<Error>();
        debug::<ErrorKind>();
        debug::<ExecPlan>();
        debug::<ForkResult>();
        debug::<IdMap>();
        debug::<IgnoredSignals>();
        debug::<Namespaces>();
        debug::<Output>();
        debug::<PidFd>();
        debug::<PipeFlags>();
        debug::<ProcAttr<'static>>();
        debug::<Process>();
        debug::<ProcessState>();
        debug::<Resource>();
        debug::<Rusage>();
        debug::<Signal>();
        debug::<Spawned>();
        debug::<Stage>();
        debug::<Stdio>();
        debug::<Strategy>();
        debug::<Stream>();
        debug::<SysProcAttr>();
        debug::<WaitEvent>();
        debug::<WaitOptions>();
        debug::<WaitSet>();
        debug::<WaitStatus>();
        #[cfg(feature = "agent")]
        {
            use crate::agent::*;
            debug::<Backoff>();
            debug::<Finish>();
            debug::<Handle>();
            debug::<Line<'static>>();
            debug::<Master>();
            debug::<Restart>();
            debug::<Stderr>();
            debug::<WorkerOptions>();
            debug::<WorkerState>();
        }
        #[cfg(feature = "upgrade")]
        {
            use crate::upgrade::*;
            debug::<Builder>();
            debug::<Signals>();
            debug::<StartedBy>();
            debug::<UpgradeOptions>();
            debug::<Upgraded>();
            debug::<Upgrader>();
        }
    }

    #[test]
    fn public_types_are_send_and_sync() {
        send_sync::<crate::Cmd>();
        send_sync::<crate::Child>();
        send_sync::<crate::Stdio>();
        send_sync::<crate::ChildStdin>();
        send_sync::<crate::ChildStdout>();
        send_sync::<crate::ChildStderr>();
        send_sync::<crate::Output>();
        send_sync::<crate::Buffer>();
        send_sync::<crate::WaitSet>();
        send_sync::<crate::Process>();
        send_sync::<crate::ProcessState>();
        send_sync::<crate::ProcAttr<'static>>();
        send_sync::<crate::SysProcAttr>();
        send_sync::<crate::Error>();
        send_sync::<crate::Signal>();
        send_sync::<crate::raw::ExecPlan>();
        send_sync::<crate::raw::PidFd>();
        send_sync::<crate::raw::Spawned>();
        send_sync::<crate::raw::CStringArray>();
        #[cfg(feature = "upgrade")]
        {
            send_sync::<crate::upgrade::Upgrader>();
            send_sync::<crate::upgrade::Signals>();
        }
        #[cfg(feature = "agent")]
        {
            send_sync::<crate::agent::Master>();
            send_sync::<crate::agent::Handle>();
            send_sync::<crate::agent::Finish>();
            // Its callbacks are `FnMut + Send`: it moves to the loop thread, it is not shared.
            send::<crate::agent::WorkerOptions>();
        }
    }
}
