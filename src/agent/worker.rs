//! A worker as the loop sees it: its command, callbacks and policy, and the phase it is
//! in, with its current process and the parent's ends of its pipes.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::input::InputCell;
use super::lines::Splitter;
use super::options::ErrMode;
use super::{Backoff, FinishFn, Line, LineFn, Restart, WorkerOptions, WorkerState};
use crate::{Child, Cmd, Error, Result, Stdio};

/// Reads of one pipe per readiness event, for fairness between workers.
pub(super) const READS_PER_EVENT: usize = 4;

/// What a worker is doing, as the loop tracks it.
pub(super) enum Phase {
    /// A process runs.
    Running(Run),
    /// Asked to stop: `SIGTERM` was sent; `SIGKILL` follows at `kill_at` (none: it was
    /// sent already). It will not be restarted; `remove` forgets it once it is over.
    Stopping {
        run: Run,
        kill_at: Option<Instant>,
        remove: bool,
    },
    /// Between two processes: the next starts at `at`.
    Backoff { at: Instant },
}

impl Phase {
    pub(super) fn run(&self) -> Option<&Run> {
        match self {
            Phase::Running(run) | Phase::Stopping { run, .. } => Some(run),
            Phase::Backoff { .. } => None,
        }
    }

    pub(super) fn run_mut(&mut self) -> Option<&mut Run> {
        match self {
            Phase::Running(run) | Phase::Stopping { run, .. } => Some(run),
            Phase::Backoff { .. } => None,
        }
    }

    /// When the loop must act on this worker: the grace period's end, the restart.
    pub(super) fn timer(&self) -> Option<Instant> {
        match self {
            Phase::Running(_) => None,
            Phase::Stopping { kill_at, .. } => *kill_at,
            Phase::Backoff { at } => Some(*at),
        }
    }
}

/// How the loop learns that a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExitWatch {
    /// Its pidfd is in epoll.
    Pidfd,
    /// No pidfd (kernels before 5.3): polled every `POLL_PERIOD`.
    Poll,
}

/// A running process of a worker and the parent's ends of its output pipes (its stdin is
/// with the input queue).
pub(super) struct Run {
    pub(super) child: Child,
    pub(super) stdout: Option<Pipe>,
    pub(super) stderr: Option<Pipe>,
    pub(super) exit: ExitWatch,
}

pub(super) struct Pipe {
    pub(super) fd: OwnedFd,
    split: Splitter,
}

impl Run {
    pub(super) fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Kills and reaps the process (used when it cannot be handed to the loop).
    pub(super) fn kill_and_reap(self) -> Result<crate::ProcessState> {
        let _ = self.child.kill();
        self.child.process().wait()
    }
}

/// A worker: what it runs, how, and where it is.
pub(super) struct Worker {
    pub(super) key: u64,
    pub(super) id: Arc<str>,
    cmd: Cmd,
    pub(super) restart: Restart,
    pub(super) backoff: Backoff,
    pub(super) grace: Duration,
    max_line: usize,
    pipe_size: Option<usize>,
    /// `None` once a callback panicked: no more lines are delivered, and the worker is
    /// stopped and not restarted.
    on_line: Option<LineFn>,
    on_stderr: Option<LineFn>,
    pub(super) on_finish: FinishFn,
    pub(super) input: Arc<InputCell>,
    pub(super) phase: Phase,
    /// When the restarts of the current window happened.
    pub(super) restarts: VecDeque<Instant>,
    pub(super) total_restarts: u32,
    /// Who waits for the worker to be over (`stop`, `remove`, `stop_all`).
    pub(super) waiters: Vec<mpsc::Sender<()>>,
    /// The state to report once the worker is over (after its last process).
    pub(super) last: WorkerState,
}

impl Worker {
    /// The worker and its first process, its pipes non-blocking. On error nothing is left.
    pub(super) fn start(
        key: u64,
        id: Arc<str>,
        mut cmd: Cmd,
        opts: WorkerOptions,
        on_line: LineFn,
        on_finish: FinishFn,
        input: Arc<InputCell>,
    ) -> Result<Worker> {
        let (err_stdio, on_stderr) = match opts.stderr.0 {
            ErrMode::Inherit => (Stdio::inherit(), None),
            ErrMode::Null => (Stdio::null(), None),
            ErrMode::File(s) => (s, None),
            ErrMode::Lines(f) => (Stdio::piped(), Some(f)),
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err_stdio);
        let mut w = Worker {
            key,
            id,
            cmd,
            restart: opts.restart,
            backoff: opts.backoff,
            grace: opts.grace,
            max_line: opts.max_line,
            pipe_size: opts.pipe_size,
            on_line: Some(on_line),
            on_stderr,
            on_finish,
            input,
            phase: Phase::Backoff { at: Instant::now() },
            restarts: VecDeque::new(),
            total_restarts: 0,
            waiters: Vec::new(),
            last: WorkerState::Restarting { restarts: 0 },
        };
        w.phase = Phase::Running(w.spawn()?);
        Ok(w)
    }

    /// Starts a process of the command, its pipes non-blocking, its stdin given to the
    /// input queue. On error nothing is left.
    pub(super) fn spawn(&mut self) -> Result<Run> {
        let mut child = self.cmd.start()?;
        let stdin = child.stdin.take().map(OwnedFd::from);
        let stdout = child.stdout.take().map(OwnedFd::from);
        let stderr = child.stderr.take().map(OwnedFd::from);
        let os = |e: Errno| Error::os(e.raw_os_error());
        let mut set = [&stdin, &stdout, &stderr]
            .into_iter()
            .flatten()
            .try_for_each(|fd| rustix::io::ioctl_fionbio(fd, true).map_err(os));
        if let (Ok(()), Some(size), Some(fd)) = (&set, self.pipe_size, &stdin) {
            set = rustix::pipe::fcntl_setpipe_size(fd, size)
                .map(drop)
                .map_err(os);
        }
        let pipe = |fd| Pipe {
            fd,
            split: Splitter::default(),
        };
        let run = Run {
            child,
            stdout: stdout.map(pipe),
            stderr: stderr.map(pipe),
            exit: ExitWatch::Poll,
        };
        if let Err(e) = set {
            let _ = run.kill_and_reap();
            return Err(e);
        }
        self.input.lock().attach(stdin);
        Ok(run)
    }

    /// Whether its callbacks still run (none panicked).
    pub(super) fn healthy(&self) -> bool {
        self.on_line.is_some()
    }

    /// Reads its stdout or stderr (at most `reads` times), delivering lines; `true` at end
    /// of file (or on a read error, which ends the stream too).
    pub(super) fn read(&mut self, is_err: bool, scratch: &mut [u8], reads: usize) -> bool {
        let Some(run) = self.phase.run_mut() else {
            return false;
        };
        let pipe = if is_err {
            run.stderr.as_mut()
        } else {
            run.stdout.as_mut()
        };
        let Some(pipe) = pipe else {
            return false;
        };
        let mut emit = Emit {
            id: &self.id,
            is_err,
            on_line: &mut self.on_line,
            on_stderr: &mut self.on_stderr,
        };
        for _ in 0..reads {
            match rustix::io::read(&pipe.fd, &mut *scratch) {
                Ok(0) => {
                    pipe.split.finish(&mut |l, c| emit.line(l, c));
                    return true;
                }
                Ok(n) => {
                    pipe.split
                        .feed(&scratch[..n], self.max_line, &mut |l, c| emit.line(l, c));
                    if n < scratch.len() && reads == READS_PER_EVENT {
                        return false;
                    }
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => return false,
                Err(_) => {
                    pipe.split.finish(&mut |l, c| emit.line(l, c));
                    return true;
                }
            }
        }
        false
    }

    /// Closes its stdout or stderr (the caller stops watching it first), delivering a last
    /// line without newline.
    pub(super) fn end_pipe(&mut self, is_err: bool) -> Option<OwnedFd> {
        let run = self.phase.run_mut()?;
        let slot = if is_err {
            &mut run.stderr
        } else {
            &mut run.stdout
        };
        let mut p = slot.take()?;
        let mut emit = Emit {
            id: &self.id,
            is_err,
            on_line: &mut self.on_line,
            on_stderr: &mut self.on_stderr,
        };
        p.split.finish(&mut |l, c| emit.line(l, c));
        Some(p.fd)
    }
}

/// Delivers lines to a worker's callback, catching a panic (which drops both line
/// callbacks: the worker is then stopped).
struct Emit<'a> {
    id: &'a str,
    is_err: bool,
    on_line: &'a mut Option<LineFn>,
    on_stderr: &'a mut Option<LineFn>,
}

impl Emit<'_> {
    fn line(&mut self, bytes: &[u8], complete: bool) {
        if self.on_line.is_none() {
            return;
        }
        let cb = if self.is_err {
            self.on_stderr.as_mut()
        } else {
            self.on_line.as_mut()
        };
        let Some(cb) = cb else {
            return;
        };
        let id = self.id;
        if !guarded(|| cb(id, Line { bytes, complete })) {
            *self.on_line = None;
            *self.on_stderr = None;
        }
    }
}

/// Runs a callback, catching a panic; `false` if it panicked.
pub(super) fn guarded(f: impl FnOnce()) -> bool {
    std::panic::catch_unwind(AssertUnwindSafe(f)).is_ok()
}
