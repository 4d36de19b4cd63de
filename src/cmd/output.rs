//! Capturing a child's output: Go's `Output`/`CombinedOutput`, std's `Output` (from
//! [`Cmd::capture`] and [`Child::wait_with_output`]), the output limit, and the poll loop
//! that reads both pipes in the calling thread.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Child, Cmd, Stdio, StdioKind};
use crate::capture::{Capture, Keep};
use crate::error::{Error, ErrorKind, Result};
use crate::status::ProcessState;
use crate::sys;

/// What a finished child wrote and how it ended (std's `std::process::Output`): from
/// [`Cmd::capture`] and [`Child::wait_with_output`], whatever the exit status.
///
/// # Examples
/// ```
/// let out = forkexec::Cmd::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]).capture()?;
/// assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
/// assert_eq!(out.state.exit_code(), 3);
/// let std_out: std::process::Output = out.into();
/// assert_eq!(std_out.status.code(), Some(3));
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug, Clone)]
#[doc(alias = "std::process::Output")]
pub struct Output {
    /// How the child ended.
    pub state: ProcessState,
    /// What it wrote to stdout (empty when stdout was not captured).
    pub stdout: Vec<u8>,
    /// What it wrote to stderr (empty when stderr was not captured).
    pub stderr: Vec<u8>,
}

impl From<Output> for std::process::Output {
    fn from(o: Output) -> std::process::Output {
        std::process::Output {
            status: o.state.into(),
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}

/// An in-memory sink for a child's output, filled by the crate's copier while the child
/// runs: `Stdio::from(buffer.clone())`, then read it with [`contents`](Buffer::contents)
/// once the child was waited for. Clones share the bytes. Give stdout and stderr clones of
/// one `Stdio` made from it and they share one pipe, so the order of the child's writes is
/// kept. Unbounded: it holds everything the child writes.
///
/// # Examples
/// ```
/// use forkexec::{Buffer, Cmd, Stdio};
/// let buf = Buffer::new();
/// let both = Stdio::from(buf.clone());
/// Cmd::new("sh").args(["-c", "echo 1; echo 2 >&2; echo 3"]).stdout(both.clone()).stderr(both).run()?;
/// assert_eq!(buf.contents(), b"1\n2\n3\n");
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Clone, Default, Debug)]
pub struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    /// An empty buffer.
    ///
    /// # Examples
    /// ```
    /// assert!(forkexec::Buffer::new().contents().is_empty());
    /// ```
    pub fn new() -> Buffer {
        Buffer::default()
    }

    /// A copy of the bytes written so far.
    ///
    /// # Examples
    /// ```
    /// use std::io::Write;
    /// let mut b = forkexec::Buffer::new();
    /// b.write_all(b"hi")?;
    /// assert_eq!(b.contents(), b"hi");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes the bytes written so far, leaving the buffer empty.
    ///
    /// # Examples
    /// ```
    /// use std::io::Write;
    /// let mut b = forkexec::Buffer::new();
    /// b.write_all(b"hi")?;
    /// assert_eq!(b.take(), b"hi");
    /// assert!(b.contents().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl From<Buffer> for Stdio {
    fn from(b: Buffer) -> Stdio {
        Stdio::from_writer(b)
    }
}

impl Cmd {
    /// Runs the child with stdout captured and returns it (Go's `Output`). When stderr is
    /// left at its default, it is captured too and carried by the error of an unsuccessful
    /// exit ([`Error::stderr`], bounded as Go bounds it).
    ///
    /// Every error of a child that ran (an unsuccessful exit, a timeout, an expired wait
    /// delay, the output limit) carries what it wrote to stdout too ([`Error::stdout`]),
    /// as Go returns it beside its error: nothing the child wrote is lost. For stdout,
    /// stderr and the state together whatever the exit status, see [`capture`](Cmd::capture).
    ///
    /// Both pipes are read with `poll` in this thread: any amount of output on both at once
    /// cannot deadlock.
    ///
    /// # Errors
    /// As [`run`](Cmd::run), with the captured stdout and stderr; [`ErrorKind::InvalidInput`]
    /// when stdout is already set (Go's "exec: Stdout already set": it would get nothing).
    ///
    /// # Examples
    /// ```
    /// let err = forkexec::Cmd::new("sh").args(["-c", "echo partial; echo oops >&2; exit 2"]).output().unwrap_err();
    /// assert_eq!((err.stdout(), err.stderr()), (&b"partial\n"[..], &b"oops\n"[..]));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Output")]
    pub fn output(&mut self) -> Result<Vec<u8>> {
        let r = self.output_unnamed();
        r.map_err(|e| e.with_program(&self.spec.program))
    }

    fn output_unnamed(&mut self) -> Result<Vec<u8>> {
        if !matches!(self.io.stdout.0, StdioKind::Null) {
            return Err(Error::invalid("exec: Stdout already set"));
        }
        let capture_err = matches!(self.io.stderr.0, StdioKind::Null);
        let (st, out, err) = self.captured(capture_err.then_some(Keep::PrefixSuffix))?;
        match st.and_then(exit_ok) {
            Ok(_) => Ok(out.into_bytes()),
            Err(e) => Err(e.with_stdout(out.into_bytes()).with_stderr(err)),
        }
    }

    /// Runs the child, captures stdout and stderr (each one left at its default
    /// [`Stdio::null`]; one set elsewhere goes there) and returns them with the state,
    /// whatever the exit status (std's `Command::output`).
    ///
    /// # Errors
    /// As [`start`](Cmd::start); [`ErrorKind::Timeout`], [`ErrorKind::WaitDelay`] and
    /// [`ErrorKind::OutputLimit`] carry what was captured ([`Error::stdout`],
    /// [`Error::stderr`]). A non-zero exit is not an error.
    ///
    /// # Examples
    /// ```
    /// let out = forkexec::Cmd::new("sh").args(["-c", "echo building; echo 'error: x' >&2; exit 1"]).capture()?;
    /// assert_eq!(out.stdout, b"building\n");
    /// assert_eq!(out.stderr, b"error: x\n");
    /// assert!(!out.state.success());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias("output", "Command::output"))]
    pub fn capture(&mut self) -> Result<Output> {
        let r = self.capture_unnamed();
        r.map_err(|e| e.with_program(&self.spec.program))
    }

    fn capture_unnamed(&mut self) -> Result<Output> {
        let capture_out = matches!(self.io.stdout.0, StdioKind::Null);
        let capture_err = matches!(self.io.stderr.0, StdioKind::Null);
        let (st, out, err) =
            self.captured_with(capture_out, capture_err.then(|| self.keep_output()))?;
        match st {
            Ok(state) => Ok(Output {
                state,
                stdout: out.into_bytes(),
                stderr: err.into_bytes(),
            }),
            Err(e) => Err(e.with_stdout(out.into_bytes()).with_stderr(err)),
        }
    }

    /// Caps what [`output`](Cmd::output), [`combined_output`](Cmd::combined_output) and
    /// [`capture`](Cmd::capture) collect at `bytes` per stream. A child that writes more
    /// is killed (`SIGKILL`) and the read ends of its pipes are closed (a process it
    /// started that still writes gets `EPIPE`, so none can keep the call waiting); the call
    /// fails with [`ErrorKind::OutputLimit`], carrying the first `bytes` bytes. Without a
    /// limit (the default) everything is kept. The stderr an error carries is bounded
    /// either way: its first and last 32 KiB (Go's bound), see [`Error::stderr`].
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, ErrorKind};
    /// let err = Cmd::new("yes").output_limit(1 << 20).output().unwrap_err();
    /// assert_eq!((err.kind(), err.stdout().len()), (ErrorKind::OutputLimit, 1 << 20));
    /// let out = Cmd::new("echo").arg("small").output_limit(1 << 20).output()?;
    /// assert_eq!(out, b"small\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn output_limit(&mut self, bytes: usize) -> &mut Cmd {
        self.output_limit = Some(bytes);
        self
    }

    fn keep_output(&self) -> Keep {
        self.output_limit.map_or(Keep::All, Keep::Cap)
    }

    /// [`captured_with`](Cmd::captured_with) with stdout captured.
    fn captured(&mut self, err: Option<Keep>) -> Result<(Result<ProcessState>, Capture, Capture)> {
        self.captured_with(true, err)
    }

    /// Starts the child with stdout piped when `out`, and stderr piped when `err` says how
    /// much of it to keep; reads both to EOF in this thread and waits. The outer error is a
    /// start (or poll) failure, the inner one the child's end: a timeout, an expired wait
    /// delay, the output limit; the captures come back either way.
    fn captured_with(
        &mut self,
        out: bool,
        err: Option<Keep>,
    ) -> Result<(Result<ProcessState>, Capture, Capture)> {
        let stdout = if out {
            Stdio::piped()
        } else {
            self.io.stdout.clone()
        };
        let stderr = if err.is_some() {
            Stdio::piped()
        } else {
            self.io.stderr.clone()
        };
        let stdin = self.io.stdin.clone();
        let mut child = self.start_with(&stdin, &stdout, &stderr, true, false)?;
        // As `wait`: the child's stdin pipe (if any) is closed, or a reading child never ends.
        drop(child.stdin.take());
        let o = child.stdout.take().map(OwnedFd::from);
        let e = child.stderr.take().map(OwnedFd::from);
        let keep = [self.keep_output(), err.unwrap_or(Keep::All)];
        let ([o, e], delay_hit) = child.drain(o, e, keep.map(Capture::new))?;
        let st = child.finish(delay_hit);
        let st = match st {
            Ok(st) if o.overflowed() || e.overflowed() => Err(self.limit_error(st)),
            other => other,
        };
        Ok((st, o, e))
    }

    fn limit_error(&self, st: ProcessState) -> Error {
        let limit = self.output_limit.unwrap_or(0);
        Error::new(
            ErrorKind::OutputLimit,
            format!("output limit of {limit} bytes exceeded; child killed ({st})"),
        )
        .with_state(st)
    }

    /// Runs the child with stdout and stderr on one pipe and returns what it wrote, in
    /// write order (Go's `CombinedOutput`).
    ///
    /// # Errors
    /// As [`run`](Cmd::run), every error of a child that ran carrying what it wrote
    /// ([`Error::stdout`]); [`ErrorKind::InvalidInput`] when stdout or stderr is already
    /// set (Go's "exec: Stdout already set").
    ///
    /// # Examples
    /// ```
    /// let out = forkexec::Cmd::new("sh").args(["-c", "echo 1; echo 2 >&2; echo 3"]).combined_output()?;
    /// assert_eq!(out, b"1\n2\n3\n");
    /// let err = forkexec::Cmd::new("sh").args(["-c", "echo building; echo 'error: x' >&2; exit 1"])
    ///     .combined_output().unwrap_err();
    /// assert_eq!(err.stdout(), b"building\nerror: x\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "CombinedOutput")]
    pub fn combined_output(&mut self) -> Result<Vec<u8>> {
        let r = self.combined_output_unnamed();
        r.map_err(|e| e.with_program(&self.spec.program))
    }

    fn combined_output_unnamed(&mut self) -> Result<Vec<u8>> {
        if !matches!(self.io.stdout.0, StdioKind::Null) {
            return Err(Error::invalid("exec: Stdout already set"));
        }
        if !matches!(self.io.stderr.0, StdioKind::Null) {
            return Err(Error::invalid("exec: Stderr already set"));
        }
        let (r, w) = crate::sys::pipe::pipe()?;
        let w = Stdio::from(w);
        let stdin = self.io.stdin.clone();
        let mut child = self.start_with(&stdin, &w, &w, true, false)?;
        drop(w);
        drop(child.stdin.take());
        let keep = [self.keep_output(), Keep::All];
        let ([out, _], delay_hit) = child.drain(Some(r), None, keep.map(Capture::new))?;
        let st = match child.finish(delay_hit) {
            Ok(st) if out.overflowed() => Err(self.limit_error(st)),
            Ok(st) => exit_ok(st),
            Err(e) => Err(e),
        };
        match st {
            Ok(_) => Ok(out.into_bytes()),
            Err(e) => Err(e.with_stdout(out.into_bytes())),
        }
    }
}

/// `st` when it is a success, else Go's `ExitError`.
fn exit_ok(st: ProcessState) -> Result<ProcessState> {
    if st.success() {
        Ok(st)
    } else {
        Err(Error::exit_status(st))
    }
}

/// How often a wait with a wait delay looks for the child's exit when it has no pidfd to
/// poll (kernels before 5.3).
pub(super) const EXIT_POLL: Duration = Duration::from_millis(10);

impl Child {
    /// Reads the child's stdout and stderr pipes (those that are [`Stdio::piped`] and not
    /// taken) to EOF in this thread, closes its stdin, waits for it and returns everything
    /// (std's `Child::wait_with_output`), whatever the exit status.
    ///
    /// # Errors
    /// As [`wait`](Child::wait); a timeout or an expired wait delay carries what was read
    /// ([`Error::stdout`], [`Error::stderr`]).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Stdio};
    /// let child = Cmd::new("sh").args(["-c", "echo out; echo err >&2; exit 2"])
    ///     .stdout(Stdio::piped()).stderr(Stdio::piped()).start()?;
    /// let out = child.wait_with_output()?;
    /// assert_eq!((out.stdout.as_slice(), out.stderr.as_slice(), out.state.exit_code()), (&b"out\n"[..], &b"err\n"[..], 2));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn wait_with_output(mut self) -> Result<Output> {
        drop(self.stdin.take());
        let o = self.stdout.take().map(OwnedFd::from);
        let e = self.stderr.take().map(OwnedFd::from);
        let ([o, e], delay_hit) = self.drain(o, e, [Keep::All, Keep::All].map(Capture::new))?;
        match self.finish(delay_hit) {
            Ok(state) => Ok(Output {
                state,
                stdout: o.into_bytes(),
                stderr: e.into_bytes(),
            }),
            Err(err) => Err(err.with_stdout(o.into_bytes()).with_stderr(e)),
        }
    }

    /// Reads `out` and `err` to EOF with poll in this thread, cancelling at the deadline
    /// and giving up `wait_delay` after the child exited. Returns (out, err, delay expired).
    pub(super) fn drain(
        &mut self,
        out: Option<OwnedFd>,
        err: Option<OwnedFd>,
        mut caps: [Capture; 2],
    ) -> Result<([Capture; 2], bool)> {
        let mut fds = [out, err];
        let mut exited_at: Option<Instant> = None;
        // Set when the wait delay ran out: one last poll that does not block, to take what
        // is already in the pipes before declaring the delay expired.
        let mut final_pass = false;
        let mut bulk = [false; 2];
        loop {
            if fds.iter().all(Option::is_none) {
                return Ok((caps, false));
            }
            let now = Instant::now();
            let mut limit: Option<Instant> = None;
            if !self.timed_out {
                limit = self.deadline;
            }
            if let (Some(t), Some(d)) = (exited_at, self.wait_delay) {
                let l = t.checked_add(d);
                limit = match (limit, l) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let limit = if final_pass { Some(now) } else { limit };
            let mut pfds: [libc::pollfd; 3] = [libc::pollfd {
                fd: -1,
                events: 0,
                revents: 0,
            }; 3];
            for (p, f) in pfds.iter_mut().zip(&fds) {
                if let Some(f) = f {
                    *p = libc::pollfd {
                        fd: f.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                }
            }
            let watch_exit = exited_at.is_none() && self.wait_delay.is_some();
            // Without a pidfd (kernels before 5.3) the exit is looked for every
            // `EXIT_POLL`, so that the wait delay still starts.
            let poll_exit = watch_exit && self.process.pidfd().is_none();
            let limit = match limit {
                _ if !poll_exit => limit,
                Some(l) => Some(l.min(now + EXIT_POLL)),
                None => Some(now + EXIT_POLL),
            };
            if let (true, Some(pfd)) = (watch_exit, self.process.pidfd()) {
                pfds[2] = libc::pollfd {
                    fd: pfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
            }
            sys::poll_until(&mut pfds, limit).map_err(Error::os)?;
            if pfds[2].revents != 0 || (poll_exit && self.process.exited_nowait()?) {
                exited_at = Some(Instant::now());
            }
            for k in 0..2 {
                if pfds[k].revents == 0 {
                    continue;
                }
                let Some(f) = &fds[k] else { continue };
                let cap = &mut caps[k];
                let b = &mut cap.buf;
                if !bulk[k] && b.capacity() - b.len() < 4096 {
                    // With little room left, read to the stack first: a child that writes
                    // nothing (or little) costs no allocation (or one of the right size),
                    // and the buffer only grows by 64 KiB when a full chunk came.
                    let mut first = [0u8; 4096];
                    match sys::read(f.as_fd(), &mut first) {
                        Ok(0) => {
                            fds[k] = None;
                            continue;
                        }
                        Ok(n) => {
                            b.extend_from_slice(first.get(..n).unwrap_or(&first));
                            cap.trim();
                            if cap.sink_failed() {
                                // The writer failed: the pipe is closed (the child gets
                                // EPIPE, as when a copy thread stopped).
                                fds[k] = None;
                            }
                            // Back to poll: the pipe is blocking, and another read now
                            // could wait on an empty pipe while the child fills the other
                            // one (or a grandchild holds this one past the wait delay).
                            continue;
                        }
                        Err(libc::EAGAIN) => continue,
                        Err(e) => return Err(Error::os(e)),
                    }
                }
                // Read straight into the buffer's spare room; grow it only when it is
                // nearly full, so a short output costs one allocation. A stream that
                // fills the pipe is switched (once) to a 1 MiB non-blocking pipe read to
                // EAGAIN after each poll: bulk output then costs a poll per MiB, not per
                // 64 KiB.
                loop {
                    let b = &mut cap.buf;
                    if b.capacity() - b.len() < 4096 {
                        b.reserve(64 * 1024);
                    }
                    let r = sys::read_spare(f.as_fd(), b);
                    cap.trim();
                    if cap.overflowed() {
                        break;
                    }
                    if cap.sink_failed() {
                        fds[k] = None;
                        break;
                    }
                    match r {
                        Ok(0) => {
                            fds[k] = None;
                            break;
                        }
                        Ok(n) if n >= 64 * 1024 && !bulk[k] => {
                            bulk[k] = true;
                            let _ = sys::set_nonblocking(f.as_fd());
                            let _ = sys::set_pipe_size(f.as_fd(), 1 << 20);
                        }
                        Ok(_) if bulk[k] => {}
                        Ok(_) | Err(libc::EAGAIN) => break,
                        Err(libc::EINTR) => {}
                        Err(e) => return Err(Error::os(e)),
                    }
                }
            }
            if caps.iter().any(Capture::overflowed) {
                // Past the output limit: the child is killed and its pipes are closed here,
                // so neither it nor a process it started can keep them open, or block on
                // them (they get EPIPE); stdio copies of other streams are stopped at once.
                let _ = self.process.kill();
                self.wait_delay = Some(Duration::ZERO);
                return Ok((caps, false));
            }
            let now = Instant::now();
            if let Some(d) = self.deadline {
                if !self.timed_out && now >= d {
                    self.cancel_now();
                    if exited_at.is_none() && self.wait_delay.is_some() {
                        // Go: WaitDelay also bounds the time after cancellation.
                        exited_at = Some(now);
                    }
                }
            }
            if let (Some(t), Some(d)) = (exited_at, self.wait_delay) {
                if now.saturating_duration_since(t) >= d {
                    if !final_pass {
                        final_pass = true;
                        continue;
                    }
                    if self.timed_out {
                        let _ = self.process.kill();
                    }
                    return Ok((caps, true));
                }
            }
        }
    }
}
