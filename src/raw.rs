//! Safe wrappers over single system calls, and the spawn engine underneath
//! [`Cmd`](crate::Cmd) and [`start_process`](crate::start_process).
//!
//! This module is the public face of the crate's OS layer: everything here is defined in
//! the private `sys` module (where all of the crate's `unsafe` code lives) or in the
//! engine, and only re-exported here. Nothing in the crate imports it back.
//!
//! Every fd created here is close-on-exec from birth and returned as an [`OwnedFd`](std::os::fd::OwnedFd).
//!
//! # Examples
//! ```
//! use forkexec::raw::{ExecPlan, Strategy, fork_exec, pipe, waitpid, ChildFd, WaitOptions, WaitStatus};
//! use std::os::fd::AsFd;
//! let (r, w) = pipe()?;
//! let plan = ExecPlan::new("/bin/echo", ["echo", "hi"])?;
//! let child = fork_exec(&plan, &[ChildFd::Inherit, ChildFd::Fd(w.as_fd())], Strategy::Auto)?;
//! drop(w);
//! assert_eq!(std::io::read_to_string(std::fs::File::from(r))?, "hi\n");
//! assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use crate::spawn::{ChildFd, ExecPlan, Spawned, Strategy, fork_exec};
pub use crate::status::{Rusage, WaitStatus};
pub use crate::sys::cstr::{CStringArray, merge_env};
pub use crate::sys::fork::{ForkResult, clone_vfork, execve, fork, fork_unchecked};
pub use crate::sys::pipe::{PipeFlags, owned_fd, pipe, pipe_with};
pub use crate::sys::wait::{PidFd, WaitOptions, pidfd_open, wait4, waitpid};
