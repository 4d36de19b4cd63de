//! A worker agent: a [`Master`] runs named workers and talks to them in lines over their
//! stdin and stdout (after Go's `pagent`), restarts them by policy, and stops them.
//!
//! ```
//! use std::sync::mpsc;
//! use forkexec::{Cmd, agent::Master};
//! let master = Master::new()?;
//! let (tx, rx) = mpsc::channel();
//! master.start(
//!     "echo",
//!     Cmd::new("cat"),
//!     move |_id, line| tx.send(line.to_vec()).unwrap(),
//!     |id, end| println!("{id}: {}", end.result.unwrap()),
//! )?;
//! master.input("echo", "hello")?;
//! assert_eq!(rx.recv().unwrap(), b"hello");
//! master.stop("echo")?; // TERM, then KILL after the grace period; reaped.
//! # Ok::<(), forkexec::Error>(())
//! ```
//!
//! # Threading model
//! A master owns **one thread**, its loop, and nothing else: a thousand workers cost one
//! thread and no busy waiting. ([`Master::with_loops`] gives it several loops, for
//! throughput on a machine with several CPUs: each worker is served by one of them for its
//! whole life, and what follows holds per loop.) The loop waits in `epoll` on every worker's pidfd (its
//! exit), the parent's ends of its stdout and stderr pipes (non-blocking), the stdin
//! pipes that have bytes waiting, and one `eventfd` by which the API wakes it. Requests
//! (start, input, stop) reach it through a channel and that eventfd (requests made by a
//! callback, on the loop thread itself, need no wakeup). Every fd the master creates is
//! close-on-exec. When a worker's process ends, the loop reaps it, reads what it left in
//! its pipes, closes them and reports: the master keeps no fd of a reaped process. (A
//! grandchild still holding the pipes loses whatever it writes later.)
//!
//! # Callbacks
//! `on_line`, `on_finish` and the stderr callback of every worker run **on the loop
//! thread**, one at a time, never while the master holds a lock (with several loops: one
//! at a time per loop; the callbacks of one worker never run at once). So:
//! - a callback must not block or run long: every other worker waits for it;
//! - it may use a [`Handle`] (cloned from [`Master::handle`] and moved into it) for every
//!   non-blocking request: [`start`](Handle::start), [`input`](Handle::input),
//!   [`close_input`](Handle::close_input), [`stop_nowait`](Handle::stop_nowait),
//!   [`list`](Handle::list), [`state`](Handle::state);
//! - the blocking requests — [`input_wait`](Handle::input_wait), [`stop`](Handle::stop),
//!   [`remove`](Handle::remove), [`stop_all`](Handle::stop_all) — wait for the loop, so
//!   from a callback they would deadlock: there they return [`ErrorKind::InvalidInput`]
//!   at once instead;
//! - a panic in a callback is caught: that worker's line callbacks are no longer called
//!   (but its `on_finish`), and it is stopped without restart.
//!
//! A [`Handle`] does not keep the master alive: once the master is dropped, its requests
//! fail. A [`Master`] dereferences to its own [`Handle`]: both have the same requests.
//!
//! # Lines
//! Lines are bytes (any encoding), cut at `\n`, delivered without it as a [`Line`]. A
//! partial line is held until its newline comes, or delivered as a last line when the
//! stream ends (flagged not [`complete`](Line::complete)). A line longer than
//! [`max_line`](WorkerOptions::max_line) bytes is delivered **in pieces**: consecutive
//! calls with exactly `max_line` bytes each, flagged not complete, then one with the rest
//! (`1..=max_line` bytes), complete; no more than `max_line` bytes of output are ever held
//! per stream.
//!
//! # Input and delivery
//! [`Handle::input`] sends one line per call (it adds the newline) and refuses one that
//! contains `\n`, so one call can never inject a second line. Lines are queued per
//! worker, up to [`input_limit`](WorkerOptions::input_limit) bytes, and written by the
//! loop as the stdin pipe takes them. `input` never blocks (a full queue is an error,
//! errno `ENOBUFS`); [`Handle::input_wait`] waits for room instead, with a timeout, woken
//! when the queue drains to a quarter of its limit: a producer needs no retry loop at any
//! limit. The loop never holds a queue's lock during a system call.
//!
//! **Delivery rule: a line `input` accepted is either written whole to one process's
//! stdin, and counted in that process's [`Finish::lines_written`], or handed back in
//! [`Finish::unsent`] when the worker is over. The master never drops one.**
//! - Written is not read: what sits in the stdin pipe (its capacity, 64 KiB by default,
//!   see [`stdin_pipe_size`](WorkerOptions::stdin_pipe_size)) or in the worker's own
//!   buffers when its process dies is lost with it, and counted as written.
//! - A restart **carries the queue over**: lines not yet written go to the next process,
//!   in order, and `input` keeps taking lines during the back-off. A line the dying
//!   process got only part of (no newline) goes again whole to the next process, the only
//!   case in which bytes of a line reach two processes (the first saw no complete line).
//! - When the worker is over (no restart: its policy, [`stop`](Handle::stop), a
//!   stop during the back-off, the restart limit, a panicking callback, the master
//!   dropped), its last [`Finish`] hands back what was not written whole.
//! - [`close_input`](Handle::close_input) is for the worker, not one process: the queue is
//!   written, then stdin closed, and a process started later gets the rest of the queue
//!   then end of file. [`stop`](Handle::stop) too: during a back-off it cancels the
//!   restart (reported to `on_finish` as [`ErrorKind::ProcessDone`]).
//!
//! # Stderr
//! [`Stderr`] chooses: [`inherit`](Stderr::inherit) (the master's own stderr, the
//! default), [`null`](Stderr::null), [`file`](Stderr::file) (written by the workers
//! directly), or [`lines`](Stderr::lines) to a callback, with the same rules as stdout.
//!
//! # Restarts
//! [`Restart`] says when a worker whose process ended is started again; [`Backoff`] spaces
//! the restarts (exponential back-off) and limits them per time window, after which the
//! master gives up: a crash-looping worker cannot spin the CPU. `on_finish` is called
//! exactly once per process start, restarts included, and once for a restart that failed
//! to spawn or was cancelled.
//!
//! # Signals
//! The loop thread blocks every signal, so that writing to a worker whose stdin closed
//! fails with `EPIPE` instead of raising `SIGPIPE` in the process. Workers start with an
//! empty signal mask, as every child of this crate.

mod handle;
mod input;
mod lines;
mod master;
mod options;
mod runloop;
mod types;
mod worker;

use std::sync::{Mutex, MutexGuard};

pub use handle::Handle;
pub use master::Master;
pub use options::{Backoff, Restart, Stderr, WorkerOptions};
pub use types::{Finish, Line, WorkerState};

#[cfg(doc)]
use crate::ErrorKind;

type LineFn = Box<dyn FnMut(&str, Line<'_>) + Send + 'static>;
type FinishFn = Box<dyn FnMut(&str, Finish) + Send + 'static>;

/// Locks, ignoring poisoning (no callback ever runs under these locks).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
