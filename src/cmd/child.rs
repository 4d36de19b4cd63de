//! A started child: [`Child`](crate::Child), its waits, timeouts and signals.

use std::io;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::process::Process;
use crate::status::{ProcessState, Signal};

use super::timer::{Cancel, Watcher};
use super::{ChildStderr, ChildStdin, ChildStdout, Copiers, CopyEnd, timer};

/// A running child started by [`Cmd::start`](crate::Cmd::start).
///
/// Dropping a `Child` does not wait for it (as `std`); call [`wait`](Child::wait).
///
/// # Examples
/// ```
/// let mut child = forkexec::Cmd::new("sh").args(["-c", "exit 3"]).start()?;
/// assert!(child.pid() > 0);
/// assert_eq!(child.wait()?.exit_code(), 3);
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug)]
pub struct Child {
    pub(super) process: Process,
    /// The parent's end of the child's stdin, when it was [`Stdio::piped()`](crate::Stdio::piped).
    pub stdin: Option<ChildStdin>,
    /// The parent's end of the child's stdout, when it was [`Stdio::piped()`](crate::Stdio::piped).
    pub stdout: Option<ChildStdout>,
    /// The parent's end of the child's stderr, when it was [`Stdio::piped()`](crate::Stdio::piped).
    pub stderr: Option<ChildStderr>,
    pub(super) copiers: Option<Copiers>,
    pub(super) deadline: Option<Instant>,
    pub(super) wait_delay: Option<Duration>,
    pub(super) cancel: Cancel,
    pub(super) timed_out: bool,
    pub(super) watcher: Option<Watcher>,
    /// A wait already returned the child's end: a later one is `ProcessDone` (Go).
    pub(super) waited: bool,
    /// The error of the cancel function, if it failed.
    pub(super) cancel_error: Option<io::Error>,
}

impl Child {
    /// The child's pid (still available after it is waited for); std's `Child::id`.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Stdio};
    /// let mut child = Cmd::new("sh").args(["-c", "echo $$"]).stdout(Stdio::piped()).start()?;
    /// let printed = std::io::read_to_string(child.stdout.take().unwrap())?;
    /// child.wait()?;
    /// assert_eq!(printed.trim_end(), child.pid().to_string());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "id")]
    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// The child as a [`Process`](crate::Process) (signal it, poll it); Go's `Cmd.Process`.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Signal};
    /// let mut child = Cmd::new("sleep").arg("10").start()?;
    /// child.process().signal(Signal::TERM)?;
    /// assert_eq!(child.wait()?.signal(), Some(Signal::TERM));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Process")]
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Sends `SIGKILL`.
    ///
    /// # Errors
    /// [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone) when it has exited already.
    ///
    /// # Examples
    /// ```
    /// let mut child = forkexec::Cmd::new("sleep").arg("30").start()?;
    /// child.kill()?;
    /// assert_eq!(child.wait()?.to_string(), "signal: killed");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `pidfd_send_signal(2)`, `kill(2)`.
    #[doc(alias = "Kill")]
    pub fn kill(&self) -> Result<()> {
        self.process.kill()
    }

    /// Sends `sig` to the child, through its pidfd (Go's `Process.Signal`). Signal 0 probes
    /// whether it is still there.
    ///
    /// # Errors
    /// [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone) when it has been reaped (by a wait); [`ErrorKind::Io`](crate::ErrorKind::Io)
    /// for the kernel's refusals.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Signal};
    /// let mut child = Cmd::new("sleep").arg("30").start()?;
    /// child.signal(Signal::TERM)?;
    /// assert_eq!(child.wait()?.signal(), Some(Signal::TERM));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `pidfd_send_signal(2)`.
    #[doc(alias = "Signal")]
    pub fn signal(&self, sig: Signal) -> Result<()> {
        self.process.signal(sig)
    }

    /// Reaps the child if it has exited, without blocking (std's `try_wait`); `None` while
    /// it runs. Its stdio copies are not waited for here: [`wait`](Child::wait) finishes
    /// them afterwards and returns this same state. On a kernel without pidfds (before
    /// 5.3), where no timer watches the child, it also cancels a child found running past
    /// its [`timeout`](crate::Cmd::timeout) (the cancel function then runs here).
    ///
    /// # Errors
    /// As [`wait`](Child::wait).
    ///
    /// # Examples
    /// ```
    /// let mut child = forkexec::Cmd::new("sleep").arg("30").start()?;
    /// assert!(child.try_wait()?.is_none());
    /// child.kill()?;
    /// while child.try_wait()?.is_none() {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// assert_eq!(child.wait()?.to_string(), "signal: killed");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `waitid(2)` with `WNOHANG`.
    pub fn try_wait(&mut self) -> Result<Option<ProcessState>> {
        if self.waited {
            return Err(crate::process::process_done());
        }
        if let Some(st) = self.process.reaped_state() {
            return Ok(Some(st));
        }
        if self.watcher.is_some() && !self.exited_unreaped(Some(Duration::ZERO))? {
            return Ok(None);
        }
        self.keep_deadline()?;
        self.end_watch();
        self.process.try_wait()
    }

    /// Without a timer (no pidfd to watch it by: kernels before 5.3) the waits keep the
    /// deadline themselves: a child still running at the deadline is cancelled here and,
    /// with a wait delay, killed that long after. Returns when this has something to do
    /// next (`None`: nothing more). Never signals a reaped child: it checks the exit first,
    /// and only its owner reaps it.
    pub(super) fn keep_deadline(&mut self) -> Result<Option<Instant>> {
        let Some(d) = self.deadline.filter(|_| self.watcher.is_none()) else {
            return Ok(None);
        };
        if self.process.reaped_state().is_some() || self.process.exited_nowait()? {
            return Ok(None);
        }
        let now = Instant::now();
        if !self.timed_out {
            if now < d {
                return Ok(Some(d));
            }
            self.cancel_now();
        }
        let Some(kill_at) = self.wait_delay.and_then(|w| d.checked_add(w)) else {
            return Ok(None);
        };
        if now < kill_at {
            return Ok(Some(kill_at));
        }
        let _ = self.process.kill();
        Ok(None)
    }

    /// Whether the child has exited (not reaped: its pid stays its own), waiting at most
    /// `timeout` (`None`: until it does). Through the pidfd.
    pub(super) fn exited_unreaped(&self, timeout: Option<Duration>) -> Result<bool> {
        match self.process.pidfd() {
            Some(fd) => crate::sys::wait::poll_readable(fd, timeout),
            None => Ok(true),
        }
    }

    /// Ends the timeout's registration, once the child has exited and before it is reaped
    /// (the timer never signals a reaped pid), keeping what it did.
    pub(super) fn end_watch(&mut self) {
        if let Some(w) = self.watcher.take() {
            (self.timed_out, self.cancel_error) = w.finish();
        }
    }

    /// Waits at most `timeout` for the child to exit. When it has, this finishes as
    /// [`wait`](Child::wait) does (the stdio copies complete, bounded by the wait delay) and
    /// returns its state; `None` while it still runs, and a later `wait` or `wait_timeout`
    /// goes on from there. Reaping the child through [`process`](Child::process) does not
    /// break a later `wait` either: it still finishes the copies and returns the state.
    ///
    /// # Errors
    /// As [`wait`](Child::wait).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, Stdio};
    /// let (r, w) = forkexec::raw::pipe()?;
    /// let mut child = Cmd::new("sh").args(["-c", "read x; echo got $x"])
    ///     .stdin(Stdio::from(r)).stdout(Stdio::piped()).start()?;
    /// assert!(child.wait_timeout(Duration::from_millis(10))?.is_none());
    /// drop(w); // EOF: `read` returns, the shell echoes and exits
    /// let mut out = child.stdout.take().unwrap();
    /// let st = child.wait_timeout(Duration::from_secs(30))?.expect("exited");
    /// assert!(st.success());
    /// assert_eq!(std::io::read_to_string(&mut out)?, "got\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ProcessState>> {
        if self.waited {
            return Err(crate::process::process_done());
        }
        let end = Instant::now().checked_add(timeout);
        while self.process.reaped_state().is_none() {
            // In steps to the deadline's instants when the waits keep it (no timer).
            let next = self.keep_deadline()?;
            let until = match (end, next) {
                (Some(e), Some(n)) => Some(e.min(n)),
                (e, n) => e.or(n),
            };
            let left = until.map_or(Duration::MAX, |u| {
                u.saturating_duration_since(Instant::now())
            });
            if self.process.wait_timeout(left)?.is_some() {
                break;
            }
            if end.is_some_and(|e| Instant::now() >= e) {
                return Ok(None);
            }
        }
        self.wait().map(Some)
    }

    /// Waits for the process itself, applying the timeout and the cancel signal.
    pub(super) fn wait_process(&mut self) -> Result<ProcessState> {
        if let Some(st) = self.process.reaped_state() {
            // Reaped already (try_wait, or through `process()`).
            self.end_watch();
            return Ok(st);
        }
        if self.watcher.is_some() {
            // Exited first, then the timer lets go, then the reap: a cancel in flight never
            // meets a reused pid.
            self.exited_unreaped(None)?;
            self.end_watch();
            return self.process.wait_exclusive();
        }
        // No timer (no pidfd): the deadline is kept here, from wherever an earlier wait
        // left it (cancelled once, killed wait_delay after the deadline).
        while let Some(t) = self.keep_deadline()? {
            let left = t.saturating_duration_since(Instant::now());
            if let Some(st) = self.process.wait_timeout(left)? {
                return Ok(st);
            }
        }
        self.process.wait_exclusive()
    }

    pub(super) fn cancel_now(&mut self) {
        self.timed_out = true;
        // Not reaped yet (this is its owner, before the wait): its pid is its own.
        let pidfd = self.process.pidfd();
        self.cancel_error = timer::cancel_now(self.process.pid(), pidfd, &self.cancel, true);
    }

    /// Waits for the child to exit and for its stdio copies to finish, then returns its
    /// state (Go's `Wait`). Closes the child's stdin pipe first, so a child reading it sees
    /// EOF.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) (with the state) when the timeout cancelled it;
    /// [`ErrorKind::WaitDelay`](crate::ErrorKind::WaitDelay) when stdio copies outlived the wait delay of a successful
    /// run; [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone) when it was waited for already;
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when a copy failed.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, ErrorKind};
    /// let err = Cmd::new("sleep").arg("30").timeout(Duration::from_millis(50)).status().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Timeout);
    /// assert_eq!(err.state().unwrap().to_string(), "signal: killed");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `waitid(2)`.
    #[doc(alias = "Wait")]
    pub fn wait(&mut self) -> Result<ProcessState> {
        drop(self.stdin.take());
        self.finish(false)
    }

    pub(super) fn finish(&mut self, delay_hit: bool) -> Result<ProcessState> {
        if self.waited {
            return Err(crate::process::process_done());
        }
        let st = self.wait_process()?;
        self.waited = true;
        let mut delay_hit = delay_hit;
        if let Some(c) = self.copiers.take() {
            match c.finish(self.wait_delay).map_err(|e| e.with_state(st))? {
                CopyEnd::Done => {}
                CopyEnd::DelayExpired => delay_hit = true,
            }
        }
        if self.timed_out {
            let msg = match self.cancel_error.take() {
                // Go: Wait reports an error of Cmd.Cancel.
                Some(e) => format!("timed out: {st} (the cancel function failed: {e})"),
                None => format!("timed out: {st}"),
            };
            return Err(Error::new(ErrorKind::Timeout, msg).with_state(st));
        }
        if delay_hit && st.success() {
            return Err(Error::new(
                ErrorKind::WaitDelay,
                "exec: WaitDelay expired before I/O complete",
            )
            .with_state(st));
        }
        Ok(st)
    }
}
