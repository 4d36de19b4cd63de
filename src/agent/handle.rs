//! The requests a master takes, one method set for [`Master`](super::Master) (which
//! dereferences to a [`Handle`]) and for the handles given to callbacks and threads.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::master::{Shared, closed, deadline};
use super::{Finish, Line, WorkerOptions, WorkerState};
use crate::{Cmd, Result};

/// The requests of a [`Master`](super::Master): a cloneable, `Send + Sync` handle for
/// callbacks and other threads, and what a `Master` dereferences to.
///
/// It does not keep the master alive: once the master is dropped, every request fails
/// with [`ErrorKind::Io`](crate::ErrorKind::Io) (and `list`/`state` see no worker).
///
/// # Examples
/// ```
/// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
/// use forkexec::{Cmd, agent::Master};
/// let master = Master::new()?;
/// let h = master.handle();
/// std::thread::spawn(move || {
///     h.start("t", sleep30(), |_, _| {}, |_, _| {}).unwrap();
/// }).join().unwrap();
/// assert!(master.state("t").unwrap().pid().is_some());
/// drop(master);
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Weak<Shared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("alive", &(self.shared.strong_count() > 0))
            .finish()
    }
}

impl Handle {
    pub(super) fn new(shared: Weak<Shared>) -> Handle {
        Handle { shared }
    }

    fn shared(&self) -> Result<Arc<Shared>> {
        self.shared.upgrade().ok_or_else(closed)
    }

    /// Starts worker `id` running `cmd` with [`WorkerOptions::default()`]: see
    /// [`start_with`](Handle::start_with).
    ///
    /// # Errors
    /// As [`start_with`](Handle::start_with).
    ///
    /// # Examples
    /// ```
    /// use std::sync::mpsc;
    /// use forkexec::{Cmd, agent::Master};
    /// let master = Master::new()?;
    /// let (tx, rx) = mpsc::channel();
    /// let mut cmd = Cmd::new("printf");
    /// cmd.arg("one\ntwo\n");
    /// master.start("p", cmd, |_, line| println!("{}", String::from_utf8_lossy(&line)),
    ///     move |_, end| tx.send(end.result.unwrap().success()).unwrap())?;
    /// assert!(rx.recv().unwrap());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Start", alias = "GetWorker", alias = "spawn")]
    pub fn start(
        &self,
        id: &str,
        cmd: Cmd,
        on_line: impl FnMut(&str, Line<'_>) + Send + 'static,
        on_finish: impl FnMut(&str, Finish) + Send + 'static,
    ) -> Result<()> {
        self.start_with(id, cmd, WorkerOptions::default(), on_line, on_finish)
    }

    /// Starts worker `id` running `cmd`, with its stdin and stdout on pipes (the `Cmd`'s
    /// own stdin, stdout and stderr settings are replaced; its timeout is not applied).
    ///
    /// Each line the worker writes to stdout reaches `on_line(id, line)` (pagent's
    /// `BizRunning`); each time its process ends, `on_finish(id, end)` (pagent's
    /// `BizFinish`) gets how, what was written to it and, when the worker is over, the
    /// input handed back ([`Finish`]) — exactly once per process start, and once for a
    /// restart that could not spawn or was cancelled by a stop. Both run on the loop
    /// thread (see the [module docs](super)). An `id` whose worker is over may be reused:
    /// the new worker replaces it.
    ///
    /// The first process is spawned by the calling thread (so its errors are returned
    /// here), restarts by the loop thread: a [`Cmd::pdeathsig`] fires when *that* thread
    /// ends — for the first process, when the caller's thread ends.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `id` names a
    /// worker that is not over, or an option is zero; any error of [`Cmd::start`] or of
    /// [`stdin_pipe_size`](WorkerOptions::stdin_pipe_size) (the worker is then not added,
    /// and `on_finish` is not called); [`ErrorKind::Io`](crate::ErrorKind::Io) when the
    /// master has shut down.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, ErrorKind, agent::{Master, Restart, Stderr, WorkerOptions}};
    /// let master = Master::new()?;
    /// let opts = WorkerOptions::new()
    ///     .stderr(Stderr::lines(|id, l| eprintln!("{id}: {}", String::from_utf8_lossy(&l))))
    ///     .restart(Restart::OnFailure)
    ///     .grace(Duration::from_millis(500));
    /// master.start_with("w", Cmd::new("cat"), opts, |_, _| {}, |_, _| {})?;
    /// let again = master.start("w", Cmd::new("cat"), |_, _| {}, |_, _| {});
    /// assert_eq!(again.unwrap_err().kind(), ErrorKind::InvalidInput);
    /// let missing = master.start("x", Cmd::new("/no/such"), |_, _| {}, |_, _| {});
    /// assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn start_with(
        &self,
        id: &str,
        cmd: Cmd,
        opts: WorkerOptions,
        on_line: impl FnMut(&str, Line<'_>) + Send + 'static,
        on_finish: impl FnMut(&str, Finish) + Send + 'static,
    ) -> Result<()> {
        self.shared()?
            .start(id, cmd, opts, Box::new(on_line), Box::new(on_finish))
    }

    /// Queues `line` and a newline for the worker's stdin. Never blocks: the loop writes
    /// the bytes as the pipe takes them (see [`input_wait`](Handle::input_wait) for a
    /// producer that should wait for room instead).
    ///
    /// One call sends exactly one line: `line` must not contain `\n` (it would reach the
    /// worker as two lines and break the one-call-one-line framing). The line may hold
    /// any other byte (`\r`, NUL, invalid UTF-8); there is no way to send bytes that do
    /// not end in a newline (use [`Cmd`] with [`Stdio::piped`](crate::Stdio::piped) for a
    /// byte stream).
    ///
    /// A line accepted here (`Ok`) is written whole to the worker's stdin or handed back
    /// in [`Finish::unsent`] when the worker is over (see the [module docs](super)). Lines
    /// are taken while a process runs and while the worker waits out a restart back-off
    /// (they go to the next process).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `line` contains
    /// `\n` (nothing is queued); [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for an
    /// unknown `id`; [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone) when the
    /// worker is over; [`ErrorKind::Io`](crate::ErrorKind::Io) with errno `ENOBUFS` when the
    /// queue would pass [`input_limit`](WorkerOptions::input_limit) (the worker does not
    /// read fast enough; nothing was queued), with errno `EPIPE` after
    /// [`close_input`](Handle::close_input) (not when a process closed its stdin or died:
    /// lines are then queued for the next process, or handed back);
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when the master has shut down.
    ///
    /// # Examples
    /// ```
    /// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
    /// use std::sync::mpsc;
    /// use forkexec::{Cmd, ErrorKind, agent::{Master, WorkerOptions}};
    /// let master = Master::new()?;
    /// let (tx, rx) = mpsc::channel();
    /// let mut tr = Cmd::new("tr");
    /// tr.args(["a-z", "A-Z"]);
    /// master.start("up", tr, move |_, l| tx.send(l.to_vec()).unwrap(), |_, _| {})?;
    /// master.input("up", "shout")?;
    /// // One call, one line: a newline inside is refused, nothing is sent.
    /// let err = master.input("up", "two\nlines").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// master.close_input("up")?; // tr writes when its input ends
    /// assert_eq!(rx.recv().unwrap(), b"SHOUT");
    /// assert!(rx.recv().is_err()); // and nothing else
    ///
    /// // A worker that never reads: its queue fills, and input() says so.
    /// let opts = WorkerOptions::new().input_limit(1000);
    /// master.start_with("deaf", sleep30(), opts, |_, _| {}, |_, _| {})?;
    /// let err = (0..).find_map(|_| master.input("deaf", [b'x'; 100]).err()).unwrap();
    /// assert_eq!(err.errno(), Some(libc::ENOBUFS));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Input", alias = "try_send")]
    pub fn input(&self, id: &str, line: impl AsRef<[u8]>) -> Result<()> {
        self.shared()?.input(id, line.as_ref(), None)
    }

    /// Queues `line` as [`input`](Handle::input) does, but when the queue is full waits
    /// for room — at most `timeout`, for ever with `None` — instead of failing with
    /// `ENOBUFS`. The loop wakes a waiting producer once the queue has drained to a quarter
    /// of its [`input_limit`](WorkerOptions::input_limit) (the stdin pipe keeps the worker
    /// busy meanwhile), so a producer sleeps rather than spins whatever the limit.
    ///
    /// # Errors
    /// As [`input`](Handle::input), except that a full queue is waited out:
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when `timeout` passed without
    /// room (nothing queued); `ENOBUFS` still for a line longer than the limit (it can
    /// never fit); `EPIPE` or [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone)
    /// when input is closed or the worker over while waiting;
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when called from a
    /// callback (the loop that makes room would wait for itself).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, ErrorKind, agent::{Master, WorkerOptions}};
    /// let master = Master::new()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let opts = WorkerOptions::new().input_limit(4096);
    /// let mut wc = Cmd::new("wc");
    /// wc.arg("-l");
    /// master.start_with("wc", wc, opts, move |_, l| tx.send(l.to_vec()).unwrap(), |_, _| {})?;
    /// // 100,000 lines through a 4 KiB queue: the producer sleeps while it is full.
    /// for i in 0..100_000 {
    ///     master.input_wait("wc", i.to_string(), None)?;
    /// }
    /// master.close_input("wc")?;
    /// assert_eq!(String::from_utf8(rx.recv().unwrap()).unwrap().trim(), "100000");
    ///
    /// // A worker that never reads: the wait times out.
    /// let mut sleep = Cmd::new("sleep");
    /// sleep.arg("30");
    /// master.start_with("deaf", sleep, WorkerOptions::new().input_limit(10), |_, _| {}, |_, _| {})?;
    /// let err = (0..).find_map(|_| {
    ///     master.input_wait("deaf", "line", Some(Duration::from_millis(50))).err()
    /// }).unwrap();
    /// assert_eq!(err.kind(), ErrorKind::Timeout);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "send", alias = "send_timeout")]
    pub fn input_wait(
        &self,
        id: &str,
        line: impl AsRef<[u8]>,
        timeout: Option<Duration>,
    ) -> Result<()> {
        // No deadline: for ever (also for a timeout beyond what the clock holds).
        self.shared()?
            .input(id, line.as_ref(), Some(deadline(timeout)))
    }

    /// Ends the worker's input: the queued lines are written, then its stdin is closed
    /// (the worker sees end of file). This holds across restarts: a process started later
    /// gets the rest of the queue, then end of file. Called during a back-off, it is
    /// remembered for the next process.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for an unknown `id`;
    /// [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone) when the worker is over;
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when the master has shut down.
    ///
    /// # Examples
    /// ```
    /// use std::sync::mpsc;
    /// use forkexec::{Cmd, agent::Master};
    /// let master = Master::new()?;
    /// let (tx, rx) = mpsc::channel();
    /// let mut wc = Cmd::new("wc");
    /// wc.arg("-l");
    /// master.start("wc", wc, |_, l| {
    ///     assert_eq!(String::from_utf8_lossy(&l).trim(), "2");
    /// }, move |_, end| tx.send(end.result.unwrap().success()).unwrap())?;
    /// master.input("wc", "a")?;
    /// master.input("wc", "b")?;
    /// master.close_input("wc")?;
    /// assert!(rx.recv().unwrap());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "CloseStdin")]
    pub fn close_input(&self, id: &str) -> Result<()> {
        self.shared()?.close_input(id)
    }

    /// Stops the worker and waits until it is over: `SIGTERM` to its process, then
    /// `SIGKILL` after its grace period, and reaped; during a restart back-off, the
    /// restart is cancelled. It is not restarted and stays listed
    /// ([`WorkerState::Exited`]). Its last `on_finish`, with the unwritten input handed
    /// back, has run when this returns. A worker that is over already is left as it is.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for an unknown `id`;
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when called from a
    /// callback (it would deadlock: use [`stop_nowait`](Handle::stop_nowait));
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when the master has shut down.
    ///
    /// # Examples
    /// ```
    /// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
    /// use std::sync::mpsc;
    /// use forkexec::{Cmd, Signal, agent::{Master, WorkerOptions}};
    /// let master = Master::new()?;
    /// let (tx, rx) = mpsc::channel();
    /// // A worker that never reads, with a one-page stdin pipe.
    /// let opts = WorkerOptions::new().stdin_pipe_size(4096);
    /// master.start_with("s", sleep30(), opts, |_, _| {}, move |_, end| tx.send(end).unwrap())?;
    /// for _ in 0..10 {
    ///     master.input("s", [b'x'; 999])?;
    /// }
    /// master.stop("s")?;
    /// assert!(master.state("s").unwrap().is_over());
    /// let end = rx.recv().unwrap();
    /// assert_eq!(end.result?.signal(), Some(Signal::TERM));
    /// // What the pipe took was written (and died with the process); the rest comes back.
    /// assert!(end.lines_written <= 4 && !end.unsent.is_empty());
    /// assert_eq!(end.lines_written as usize + end.unsent.len(), 10);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Kill", alias = "kill")]
    pub fn stop(&self, id: &str) -> Result<()> {
        self.shared()?.stop(id, false)
    }

    /// Starts stopping the worker (as [`stop`](Handle::stop)) without waiting; its
    /// `on_finish` tells when it is over. Callbacks may call it.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for an unknown `id`;
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when the master has shut down.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, agent::Master};
    /// let master = Master::new()?;
    /// let h = master.handle();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// // A worker that is stopped by its own first line.
    /// let mut sh = Cmd::new("sh");
    /// sh.args(["-c", "echo ready; exec sleep 30"]);
    /// master.start("s", sh, move |id, _| h.stop_nowait(id).unwrap(), move |_, end| {
    ///     tx.send(end.result.unwrap().to_string()).unwrap();
    /// })?;
    /// assert_eq!(rx.recv().unwrap(), "signal: terminated");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn stop_nowait(&self, id: &str) -> Result<()> {
        self.shared()?.request_stop(id, false).map(drop)
    }

    /// Stops the worker as [`stop`](Handle::stop), then forgets it: it leaves
    /// [`list`](Handle::list) and its id is free.
    ///
    /// # Errors
    /// As [`stop`](Handle::stop).
    ///
    /// # Examples
    /// ```
    /// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
    /// use forkexec::{Cmd, agent::Master};
    /// let master = Master::new()?;
    /// master.start("s", sleep30(), |_, _| {}, |_, _| {})?;
    /// master.remove("s")?;
    /// assert!(master.list().is_empty() && master.state("s").is_none());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "DelWorker")]
    pub fn remove(&self, id: &str) -> Result<()> {
        self.shared()?.stop(id, true)
    }

    /// Stops every worker (as [`stop`](Handle::stop), all at once) and waits until all
    /// are over. The workers stay listed; the master keeps no fd of theirs.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when called from a
    /// callback; [`ErrorKind::Io`](crate::ErrorKind::Io) when the master has shut down.
    ///
    /// # Examples
    /// ```
    /// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
    /// use forkexec::{Cmd, agent::Master};
    /// let master = Master::new()?;
    /// for id in ["a", "b", "c"] {
    ///     master.start(id, sleep30(), |_, _| {}, |_, _| {})?;
    /// }
    /// master.stop_all()?;
    /// assert!(master.list().iter().all(|id| master.state(id).unwrap().is_over()));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn stop_all(&self) -> Result<()> {
        self.shared()?.stop_all()
    }

    /// The ids of the workers, sorted (those that are over included, until removed);
    /// empty once the master is gone.
    ///
    /// # Examples
    /// ```
    /// let master = forkexec::agent::Master::new()?;
    /// assert_eq!(master.list(), Vec::<String>::new());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn list(&self) -> Vec<String> {
        self.shared().map(|s| s.list()).unwrap_or_default()
    }

    /// What worker `id` is doing; `None` for an unknown id or once the master is gone.
    ///
    /// # Examples
    /// ```
    /// let master = forkexec::agent::Master::new()?;
    /// assert!(master.state("nobody").is_none());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn state(&self, id: &str) -> Option<WorkerState> {
        self.shared().ok().and_then(|s| s.state(id))
    }
}
