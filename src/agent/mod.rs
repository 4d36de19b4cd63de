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
//!     |id, end| println!("{id}: {}", end.unwrap()),
//! )?;
//! master.input("echo", "hello")?;
//! assert_eq!(rx.recv().unwrap(), b"hello");
//! master.stop("echo")?; // TERM, then KILL after the grace period; reaped.
//! # Ok::<(), forkexec::Error>(())
//! ```
//!
//! # Threading model
//! A master owns **one thread**, its loop, and nothing else: a thousand workers cost one
//! thread and no busy waiting. The loop waits in `epoll` on every worker's pidfd (its
//! exit), the parent's ends of its stdout and stderr pipes (non-blocking), the stdin
//! pipes that have bytes waiting, and one `eventfd` by which the API wakes it. Requests
//! (start, input, stop) reach it through a channel and that eventfd. Every fd the master
//! creates is close-on-exec. When a worker's process ends, the loop reaps it, reads what
//! it left in its pipes, closes them and reports: the master keeps no fd of a reaped
//! process. (A grandchild still holding the pipes loses whatever it writes later.)
//!
//! # Callbacks
//! `on_line`, `on_finish` and the stderr callback of every worker run **on the loop
//! thread**, one at a time, never while the master holds a lock. So:
//! - a callback must not block or run long: every other worker waits for it;
//! - it may use a [`Handle`] (cloned from [`Master::handle`] and moved into it) for every
//!   non-blocking request: [`start`](Handle::start), [`input`](Handle::input),
//!   [`close_input`](Handle::close_input), [`stop_nowait`](Handle::stop_nowait),
//!   [`list`](Handle::list), [`state`](Handle::state);
//! - the blocking requests — [`stop`](Handle::stop), [`remove`](Handle::remove),
//!   [`stop_all`](Handle::stop_all) — wait for the loop, so from a callback they would
//!   deadlock: there they return [`ErrorKind::InvalidInput`] at once instead;
//! - a panic in a callback is caught: that worker's callbacks are no longer called
//!   (but its `on_finish`), and it is stopped without restart.
//!
//! A [`Handle`] does not keep the master alive: once the master is dropped, its requests
//! fail.
//!
//! # Lines and buffers
//! Lines are bytes (`&[u8]`, any encoding), cut at `\n`, delivered without it. A partial
//! line is held until its newline comes, or delivered as a last line when the stream ends.
//! A line longer than [`max_line`](WorkerOptions::max_line) bytes is delivered **in
//! pieces**: consecutive calls with exactly `max_line` bytes each, then one with the rest
//! (`1..=max_line` bytes); no more than `max_line` bytes of output are ever held per
//! stream. Input is lines too: [`Master::input`] sends one line per call (it adds the
//! newline) and refuses one that contains `\n`. Input is buffered per worker up to
//! [`input_limit`](WorkerOptions::input_limit) bytes and written by the loop as the pipe
//! takes it: [`Master::input`] never blocks, and a full buffer is an error (errno
//! `ENOBUFS`).
//!
//! # Restarts
//! [`Restart`] says when a worker whose process ended is started again; [`Backoff`] spaces
//! the restarts (exponential back-off) and limits them per time window, after which the
//! master gives up: a crash-looping worker cannot spin the CPU. `on_finish` is called
//! exactly once per process start, restarts included, and for a restart that failed to
//! spawn.
//!
//! # Signals
//! The loop thread blocks every signal, so that writing to a worker whose stdin closed
//! fails with `EPIPE` instead of raising `SIGPIPE` in the process. Workers start with an
//! empty signal mask, as every child of this crate.

mod lines;
mod runloop;

use std::collections::HashMap;
use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak, mpsc};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use runloop::{ErrMode, Input, Loop, Msg, Push, Worker, WorkerSpec};

use crate::Cmd;
use crate::error::{Error, ErrorKind, Result};
use crate::process::ProcessState;

type LineFn = Box<dyn FnMut(&str, &[u8]) + Send + 'static>;
type FinishFn = Box<dyn FnMut(&str, Result<ProcessState>) + Send + 'static>;

/// Locks, ignoring poisoning (no callback ever runs under these locks).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn closed() -> Error {
    Error::new(ErrorKind::Io, "agent: the master has shut down")
}

fn no_worker(id: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("agent: no worker {id:?}"))
}

fn not_running(id: &str) -> Error {
    Error::new(
        ErrorKind::ProcessDone,
        format!("agent: worker {id:?} is not running"),
    )
}

/// When a worker whose process ended is started again.
///
/// # Examples
/// ```
/// use forkexec::agent::{Restart, WorkerOptions};
/// let opts = WorkerOptions::new().restart(Restart::OnFailure);
/// assert_eq!(Restart::default(), Restart::Never);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Restart {
    /// Never (the default): the worker is over when its process ends.
    #[default]
    Never,
    /// When the process exits with a non-zero status, is killed by a signal, or cannot be
    /// started again.
    OnFailure,
    /// Whenever the process ends, successfully or not.
    Always,
}

/// How restarts are spaced and limited.
///
/// The `n`-th restart within the current window (counting from 0) waits
/// `initial * 2^n`, at most `max`. When `max_restarts` restarts already happened in the
/// last `window`, the master gives up: the worker stays [`WorkerState::Exited`] (or
/// [`WorkerState::Failed`]). A worker that runs well empties its window, and its back-off
/// starts again from `initial`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use forkexec::agent::Backoff;
/// let b = Backoff { initial: Duration::from_millis(10), max_restarts: 3, ..Backoff::default() };
/// assert_eq!(b.window, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// The delay before the first restart of a window (default 100 ms).
    pub initial: Duration,
    /// The longest delay (default 30 s).
    pub max: Duration,
    /// The most restarts within one window (default 5).
    pub max_restarts: u32,
    /// The window (default 60 s).
    pub window: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            max_restarts: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// Where a worker's stderr goes.
///
/// # Examples
/// ```
/// use forkexec::agent::{Stderr, WorkerOptions};
/// let opts = WorkerOptions::new().stderr(Stderr::lines(|id, line| {
///     eprintln!("{id} (stderr): {}", String::from_utf8_lossy(line));
/// }));
/// # let _ = (opts, Stderr::null(), Stderr::inherit());
/// ```
pub struct Stderr(ErrMode);

impl Stderr {
    /// The master's own stderr (the default).
    pub fn inherit() -> Stderr {
        Stderr(ErrMode::Inherit)
    }

    /// The null device.
    pub fn null() -> Stderr {
        Stderr(ErrMode::Null)
    }

    /// Lines delivered to `f(id, line)` on the loop thread, as stdout's to `on_line`
    /// (same rules, same [`max_line`](WorkerOptions::max_line)).
    pub fn lines(f: impl FnMut(&str, &[u8]) + Send + 'static) -> Stderr {
        Stderr(ErrMode::Lines(Box::new(f)))
    }
}

impl fmt::Debug for Stderr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            ErrMode::Inherit => "Stderr::inherit()",
            ErrMode::Null => "Stderr::null()",
            ErrMode::Lines(_) => "Stderr::lines(..)",
        })
    }
}

/// The options of one worker (see [`Master::start_with`]).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use forkexec::agent::{Restart, Stderr, WorkerOptions};
/// let opts = WorkerOptions::new()
///     .restart(Restart::Always)
///     .grace(Duration::from_secs(2))
///     .stderr(Stderr::null())
///     .max_line(4096)
///     .input_limit(1 << 16);
/// # let _ = opts;
/// ```
#[derive(Debug)]
pub struct WorkerOptions {
    stderr: Stderr,
    restart: Restart,
    backoff: Backoff,
    grace: Duration,
    max_line: usize,
    input_limit: usize,
}

impl Default for WorkerOptions {
    fn default() -> WorkerOptions {
        WorkerOptions::new()
    }
}

impl WorkerOptions {
    /// The defaults: stderr inherited, [`Restart::Never`], [`Backoff::default()`], a
    /// grace period of 5 s, lines of at most 1 MiB, 1 MiB of buffered input.
    pub fn new() -> WorkerOptions {
        WorkerOptions {
            stderr: Stderr::inherit(),
            restart: Restart::Never,
            backoff: Backoff::default(),
            grace: Duration::from_secs(5),
            max_line: 1 << 20,
            input_limit: 1 << 20,
        }
    }

    /// Where stderr goes (this overrides the `Cmd`'s stderr).
    pub fn stderr(mut self, s: Stderr) -> WorkerOptions {
        self.stderr = s;
        self
    }

    /// The restart policy.
    pub fn restart(mut self, r: Restart) -> WorkerOptions {
        self.restart = r;
        self
    }

    /// The restart back-off and limit.
    pub fn backoff(mut self, b: Backoff) -> WorkerOptions {
        self.backoff = b;
        self
    }

    /// How long a stopped worker has between `SIGTERM` and `SIGKILL` (zero: `SIGKILL`
    /// at once).
    pub fn grace(mut self, d: Duration) -> WorkerOptions {
        self.grace = d;
        self
    }

    /// The longest line delivered in one piece, and the most bytes held per stream
    /// waiting for a newline (at least 1).
    pub fn max_line(mut self, bytes: usize) -> WorkerOptions {
        self.max_line = bytes;
        self
    }

    /// The most input bytes buffered for the worker's stdin (at least 1).
    pub fn input_limit(mut self, bytes: usize) -> WorkerOptions {
        self.input_limit = bytes;
        self
    }
}

/// What a worker is doing.
///
/// # Examples
/// ```
/// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
/// use forkexec::{Cmd, agent::{Master, WorkerState}};
/// let master = Master::new()?;
/// master.start("s", sleep30(), |_, _| {}, |_, _| {})?;
/// assert!(matches!(master.state("s"), Some(WorkerState::Running { .. })));
/// master.stop("s")?;
/// assert_eq!(master.state("s").unwrap().exit_state().unwrap().to_string(), "signal: terminated");
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum WorkerState {
    /// Its process runs.
    Running {
        /// The process id.
        pid: i32,
    },
    /// It was asked to stop: `SIGTERM` was sent, `SIGKILL` follows after the grace period.
    Stopping {
        /// The process id.
        pid: i32,
    },
    /// Its process ended and it waits out the back-off before it is started again.
    Restarting {
        /// The restarts so far, this one included.
        restarts: u32,
    },
    /// Its last process ended (how), and it will not be restarted.
    Exited(ProcessState),
    /// Its last start failed, and it will not be restarted.
    Failed(ErrorKind),
}

impl WorkerState {
    /// The pid of its running process.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::agent::WorkerState::Running { pid: 7 }.pid(), Some(7));
    /// ```
    pub fn pid(&self) -> Option<i32> {
        match *self {
            WorkerState::Running { pid } | WorkerState::Stopping { pid } => Some(pid),
            _ => None,
        }
    }

    /// Whether the worker is over: [`Exited`](WorkerState::Exited) or
    /// [`Failed`](WorkerState::Failed).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{ErrorKind, agent::WorkerState};
    /// assert!(WorkerState::Failed(ErrorKind::NotFound).is_over());
    /// assert!(!WorkerState::Restarting { restarts: 1 }.is_over());
    /// ```
    pub fn is_over(&self) -> bool {
        matches!(self, WorkerState::Exited(_) | WorkerState::Failed(_))
    }

    /// How its last process ended, for [`Exited`](WorkerState::Exited).
    ///
    /// # Examples
    /// ```
    /// assert!(forkexec::agent::WorkerState::Running { pid: 7 }.exit_state().is_none());
    /// ```
    pub fn exit_state(&self) -> Option<&ProcessState> {
        match self {
            WorkerState::Exited(st) => Some(st),
            _ => None,
        }
    }
}

/// A worker as the API sees it.
struct Entry {
    key: u64,
    state: WorkerState,
    input: Arc<Mutex<Input>>,
}

/// What the API and the loop share.
struct Shared {
    tx: mpsc::Sender<Msg>,
    wake: OwnedFd,
    wake_pending: AtomicBool,
    closed: AtomicBool,
    table: Mutex<HashMap<Arc<str>, Entry>>,
    next_key: AtomicU64,
    loop_thread: OnceLock<ThreadId>,
}

impl Shared {
    fn send(&self, m: Msg) -> Result<()> {
        self.tx.send(m).map_err(|_| closed())?;
        self.wake();
        Ok(())
    }

    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
        }
    }

    fn on_loop_thread(&self) -> bool {
        self.loop_thread.get() == Some(&std::thread::current().id())
    }

    fn refuse_blocking(&self, what: &str) -> Result<()> {
        if self.on_loop_thread() {
            return Err(Error::invalid(format!(
                "agent: {what} from a callback would deadlock (use stop_nowait)"
            )));
        }
        Ok(())
    }

    fn start(
        &self,
        id: &str,
        cmd: Cmd,
        opts: WorkerOptions,
        on_line: LineFn,
        on_finish: FinishFn,
    ) -> Result<()> {
        if opts.max_line == 0 || opts.input_limit == 0 {
            return Err(Error::invalid(
                "agent: max_line and input_limit must be at least 1",
            ));
        }
        // The lock is held from the check of the id to the hand-over to the loop, so no
        // request can see a half-started worker, and the loop's final drain sees it.
        let mut table = lock(&self.table);
        if self.closed.load(Ordering::SeqCst) {
            return Err(closed());
        }
        if table.get(id).is_some_and(|e| !e.state.is_over()) {
            return Err(Error::invalid(format!(
                "agent: worker {id:?} is already running"
            )));
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let id: Arc<str> = Arc::from(id);
        let input = Arc::new(Mutex::new(Input::new(opts.input_limit)));
        let mut w = Worker::new(WorkerSpec {
            key,
            id: id.clone(),
            cmd,
            restart: opts.restart,
            backoff: opts.backoff,
            grace: opts.grace,
            max_line: opts.max_line,
            on_line,
            on_finish,
            stderr: opts.stderr.0,
            input: input.clone(),
        });
        let run = match w.spawn() {
            Ok(run) => run,
            Err(e) => {
                // The callbacks are dropped without the lock: their drop may use a Handle.
                drop(table);
                drop(w);
                return Err(e);
            }
        };
        let pid = run.pid();
        w.set_run(run);
        {
            let mut inp = lock(&input);
            inp.running = true;
            inp.eof = false;
            inp.closed = false;
        }
        table.insert(
            id.clone(),
            Entry {
                key,
                state: WorkerState::Running { pid },
                input,
            },
        );
        match self.tx.send(Msg::Add(Box::new(w))) {
            Ok(()) => {
                self.wake();
                Ok(())
            }
            Err(mpsc::SendError(m)) => {
                table.remove(&id);
                drop(table);
                if let Msg::Add(mut w) = m {
                    if let Some(run) = w.take_run() {
                        run.kill_and_reap();
                    }
                }
                Err(closed())
            }
        }
    }

    fn entry<T>(&self, id: &str, f: impl FnOnce(&Entry) -> T) -> Result<T> {
        let t = lock(&self.table);
        t.get(id).map(f).ok_or_else(|| no_worker(id))
    }

    /// Queues one line for `id`'s stdin: the one implementation of [`Master::input`] and
    /// [`Handle::input`].
    fn input(&self, id: &str, line: &[u8]) -> Result<()> {
        if let Some(at) = memchr::memchr(b'\n', line) {
            return Err(Error::invalid(format!(
                "agent: input for worker {id:?} holds a newline at byte {at}: one call \
                 sends one line (the newline is added), so call input once per line"
            )));
        }
        let (key, input) = self.entry(id, |e| (e.key, e.input.clone()))?;
        let mut inp = lock(&input);
        // Closed by the caller: EPIPE, whether or not the worker has exited since (a
        // worker that reads to EOF and ends races the caller's next input otherwise).
        if inp.closed {
            return Err(Error::os(libc::EPIPE));
        }
        if !inp.running {
            return Err(not_running(id));
        }
        match inp.push(line) {
            Ok(Push::Buffered) => Ok(()),
            Ok(Push::NeedsFlush) => {
                drop(inp);
                self.send(Msg::Flush(key))
            }
            Err(errno) => Err(Error::os(errno)),
        }
    }

    fn close_input(&self, id: &str) -> Result<()> {
        let (key, input) = self.entry(id, |e| (e.key, e.input.clone()))?;
        let mut inp = lock(&input);
        if !inp.running {
            return Err(not_running(id));
        }
        inp.eof = true;
        inp.closed = true;
        drop(inp);
        self.send(Msg::CloseInput(key))
    }

    /// Asks the loop to stop `id`; the receiver answers once it has ended.
    fn request_stop(&self, id: &str, remove: bool) -> Result<mpsc::Receiver<()>> {
        let (tx, rx) = mpsc::channel();
        let t = lock(&self.table);
        let Some((id, e)) = t.get_key_value(id) else {
            return Err(no_worker(id));
        };
        self.send(Msg::Stop {
            key: e.key,
            id: id.clone(),
            remove,
            done: Some(tx),
        })?;
        Ok(rx)
    }

    fn stop(&self, id: &str, remove: bool) -> Result<()> {
        self.refuse_blocking(if remove { "remove()" } else { "stop()" })?;
        let rx = self.request_stop(id, remove)?;
        // The loop answers, or drops the sender when it ends: either way it is over.
        let _ = rx.recv();
        Ok(())
    }

    fn stop_all(&self) -> Result<()> {
        self.refuse_blocking("stop_all()")?;
        let (tx, rx) = mpsc::channel();
        {
            let t = lock(&self.table);
            for (id, e) in t.iter().filter(|(_, e)| !e.state.is_over()) {
                self.send(Msg::Stop {
                    key: e.key,
                    id: id.clone(),
                    remove: false,
                    done: Some(tx.clone()),
                })?;
            }
        }
        drop(tx);
        while rx.recv().is_ok() {}
        Ok(())
    }

    fn list(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.table).keys().map(|k| k.to_string()).collect();
        ids.sort_unstable();
        ids
    }

    fn state(&self, id: &str) -> Option<WorkerState> {
        lock(&self.table).get(id).map(|e| e.state)
    }
}

/// Owns named workers and the one thread that serves them all. Dropping it stops every
/// worker (as [`stop_all`](Master::stop_all)) and ends the thread.
///
/// Every method takes `&self`: a `Master` can be shared between threads (it is `Sync`).
/// Callbacks reach the master through a [`Handle`]. See the [module docs](self) for the
/// threading model and the rules for callbacks.
///
/// # Examples
/// ```
/// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
/// use forkexec::{Cmd, agent::Master};
/// let master = Master::new()?;
/// master.start("a", sleep30(), |_, _| {}, |_, _| {})?;
/// master.start("b", sleep30(), |_, _| {}, |_, _| {})?;
/// assert_eq!(master.list(), ["a", "b"]);
/// drop(master); // both stopped and reaped
/// # Ok::<(), forkexec::Error>(())
/// ```
pub struct Master {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Master {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Master")
            .field("workers", &lock(&self.shared.table).len())
            .finish_non_exhaustive()
    }
}

impl Master {
    /// A master with no worker, and its loop thread.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the epoll instance, the eventfd or the thread cannot be
    /// created (fd or thread limits).
    ///
    /// # Examples
    /// ```
    /// let master = forkexec::agent::Master::new()?;
    /// assert!(master.list().is_empty());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn new() -> Result<Master> {
        use rustix::event::{EventfdFlags, epoll};
        let os = |e: rustix::io::Errno| Error::os(e.raw_os_error());
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(os)?;
        let wake = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(os)?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            tx,
            wake,
            wake_pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            table: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(1),
            loop_thread: OnceLock::new(),
        });
        let lp = Loop::new(shared.clone(), rx, epoll);
        let thread = std::thread::Builder::new()
            .name("forkexec-agent".into())
            .spawn(move || lp.run())
            .map_err(Error::from_io)?;
        let _ = shared.loop_thread.set(thread.thread().id());
        Ok(Master {
            shared,
            thread: Some(thread),
        })
    }

    /// A handle for callbacks and other threads; it does not keep the master alive.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, agent::Master};
    /// let master = Master::new()?;
    /// let h = master.handle();
    /// // A worker that answers each line by sending "again" to itself, twice.
    /// let mut n = 0;
    /// master.start("loop", Cmd::new("cat"), move |id, _line| {
    ///     n += 1;
    ///     if n < 3 { h.input(id, "again").unwrap(); } else { h.close_input(id).unwrap(); }
    /// }, |_, end| assert!(end.unwrap().success()))?;
    /// master.input("loop", "go")?;
    /// while !master.state("loop").unwrap().is_over() {
    ///     std::thread::sleep(std::time::Duration::from_millis(5));
    /// }
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn handle(&self) -> Handle {
        Handle {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// Starts worker `id` running `cmd` with [`WorkerOptions::default()`]: see
    /// [`start_with`](Master::start_with).
    ///
    /// # Errors
    /// As [`start_with`](Master::start_with).
    ///
    /// # Examples
    /// ```
    /// use std::sync::mpsc;
    /// use forkexec::{Cmd, agent::Master};
    /// let master = Master::new()?;
    /// let (tx, rx) = mpsc::channel();
    /// let mut cmd = Cmd::new("printf");
    /// cmd.arg("one\ntwo\n");
    /// master.start("p", cmd, |_, line| println!("{}", String::from_utf8_lossy(line)),
    ///     move |_, end| tx.send(end.unwrap().success()).unwrap())?;
    /// assert!(rx.recv().unwrap());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn start(
        &self,
        id: &str,
        cmd: Cmd,
        on_line: impl FnMut(&str, &[u8]) + Send + 'static,
        on_finish: impl FnMut(&str, Result<ProcessState>) + Send + 'static,
    ) -> Result<()> {
        self.start_with(id, cmd, WorkerOptions::default(), on_line, on_finish)
    }

    /// Starts worker `id` running `cmd`, with its stdin and stdout on pipes (the `Cmd`'s
    /// own stdin, stdout and stderr settings are replaced; its timeout is not applied).
    ///
    /// Each line the worker writes to stdout reaches `on_line(id, line)`; each time its
    /// process ends, `on_finish(id, result)` gets how (`Ok` whatever the exit status), or
    /// the error of a restart that could not spawn — exactly once per process start. Both
    /// run on the loop thread (see the [module docs](self)). An `id` whose worker is over
    /// may be reused: the new worker replaces it.
    ///
    /// The first process is spawned by the calling thread (so its errors are returned
    /// here), restarts by the loop thread: a [`Cmd::pdeathsig`] fires when *that* thread
    /// ends — for the first process, when the caller's thread ends.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `id` names a worker that is not over, or an option
    /// is zero; any error of [`Cmd::start`] (the worker is then not added, and `on_finish`
    /// is not called); [`ErrorKind::Io`] when the master has shut down.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, ErrorKind, agent::{Master, Restart, Stderr, WorkerOptions}};
    /// let master = Master::new()?;
    /// let opts = WorkerOptions::new()
    ///     .stderr(Stderr::lines(|id, l| eprintln!("{id}: {}", String::from_utf8_lossy(l))))
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
        on_line: impl FnMut(&str, &[u8]) + Send + 'static,
        on_finish: impl FnMut(&str, Result<ProcessState>) + Send + 'static,
    ) -> Result<()> {
        self.shared
            .start(id, cmd, opts, Box::new(on_line), Box::new(on_finish))
    }

    /// Queues `line` and a newline for the worker's stdin. Never blocks: the loop writes
    /// the bytes as the pipe takes them.
    ///
    /// One call sends exactly one line: `line` must not contain `\n` (it would reach the
    /// worker as two lines and break the one-call-one-line framing). Send several lines
    /// with one call each. The line may hold any other byte (`\r`, NUL, invalid UTF-8);
    /// there is no way to send bytes that do not end in a newline (use [`Cmd`] with
    /// [`Stdio::piped`](crate::Stdio::piped) for a byte stream).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `line` contains `\n` (nothing is queued);
    /// [`ErrorKind::NotFound`] for an unknown `id`; [`ErrorKind::ProcessDone`] when no
    /// process of the worker is running; [`ErrorKind::Io`] with errno `ENOBUFS` when the
    /// buffer would pass [`input_limit`](WorkerOptions::input_limit) (the worker does
    /// not read fast enough; nothing was queued), with errno `EPIPE` after
    /// [`close_input`](Master::close_input) or once the worker closed its stdin;
    /// [`ErrorKind::Io`] when the master has shut down.
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
    /// // A worker that never reads: its buffer fills, and input() says so.
    /// let opts = WorkerOptions::new().input_limit(1000);
    /// master.start_with("deaf", sleep30(), opts, |_, _| {}, |_, _| {})?;
    /// let err = (0..).find_map(|_| master.input("deaf", [b'x'; 100]).err()).unwrap();
    /// assert_eq!(err.errno(), Some(libc::ENOBUFS));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn input(&self, id: &str, line: impl AsRef<[u8]>) -> Result<()> {
        self.shared.input(id, line.as_ref())
    }

    /// Closes the worker's stdin once the queued input is written (the worker sees end of
    /// file).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown `id`; [`ErrorKind::ProcessDone`] when no
    /// process of the worker is running; [`ErrorKind::Io`] when the master has shut down.
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
    ///     assert_eq!(String::from_utf8_lossy(l).trim(), "2");
    /// }, move |_, end| tx.send(end.unwrap().success()).unwrap())?;
    /// master.input("wc", "a")?;
    /// master.input("wc", "b")?;
    /// master.close_input("wc")?;
    /// assert!(rx.recv().unwrap());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn close_input(&self, id: &str) -> Result<()> {
        self.shared.close_input(id)
    }

    /// Stops the worker and waits until its process is reaped: `SIGTERM`, then `SIGKILL`
    /// after its grace period. It is not restarted and stays listed
    /// ([`WorkerState::Exited`]). Its `on_finish` has run when this returns. A worker
    /// that is over already is left as it is.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown `id`; [`ErrorKind::InvalidInput`] when
    /// called from a callback (it would deadlock: use [`stop_nowait`](Master::stop_nowait));
    /// [`ErrorKind::Io`] when the master has shut down.
    ///
    /// # Examples
    /// ```
    /// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
    /// use forkexec::{Cmd, Signal, agent::Master};
    /// let master = Master::new()?;
    /// master.start("s", sleep30(), |_, _| {}, |_, end| {
    ///     assert_eq!(end.unwrap().signal(), Some(Signal::TERM));
    /// })?;
    /// master.stop("s")?;
    /// assert!(master.state("s").unwrap().is_over());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn stop(&self, id: &str) -> Result<()> {
        self.shared.stop(id, false)
    }

    /// Starts stopping the worker (as [`stop`](Master::stop)) without waiting; its
    /// `on_finish` tells when it is over. Callbacks may call it.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown `id`; [`ErrorKind::Io`] when the master has
    /// shut down.
    ///
    /// # Examples
    /// ```
    /// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
    /// use std::sync::mpsc;
    /// use forkexec::{Cmd, agent::Master};
    /// let master = Master::new()?;
    /// let (tx, rx) = mpsc::channel();
    /// master.start("s", sleep30(), |_, _| {}, move |_, end| {
    ///     tx.send(end.unwrap().to_string()).unwrap();
    /// })?;
    /// master.stop_nowait("s")?;
    /// assert_eq!(rx.recv().unwrap(), "signal: terminated");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn stop_nowait(&self, id: &str) -> Result<()> {
        self.shared.request_stop(id, false).map(drop)
    }

    /// Stops the worker as [`stop`](Master::stop), then forgets it: it leaves
    /// [`list`](Master::list) and its id is free.
    ///
    /// # Errors
    /// As [`stop`](Master::stop).
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
    pub fn remove(&self, id: &str) -> Result<()> {
        self.shared.stop(id, true)
    }

    /// Stops every worker (as [`stop`](Master::stop), all at once) and waits until all are
    /// reaped. The workers stay listed; the master keeps no fd of theirs.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when called from a callback; [`ErrorKind::Io`] when
    /// the master has shut down.
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
        self.shared.stop_all()
    }

    /// The ids of the workers, sorted (those that are over included, until removed).
    ///
    /// # Examples
    /// ```
    /// let master = forkexec::agent::Master::new()?;
    /// assert_eq!(master.list(), Vec::<String>::new());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn list(&self) -> Vec<String> {
        self.shared.list()
    }

    /// What worker `id` is doing; `None` for an unknown id.
    ///
    /// # Examples
    /// ```
    /// let master = forkexec::agent::Master::new()?;
    /// assert!(master.state("nobody").is_none());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn state(&self, id: &str) -> Option<WorkerState> {
        self.shared.state(id)
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let _ = self.shared.send(Msg::Shutdown);
        if let Some(t) = self.thread.take() {
            // Dropped by a callback: the loop ends by itself once every worker is over.
            if !self.shared.on_loop_thread() {
                let _ = t.join();
            }
        }
    }
}

/// A cloneable, `Send + Sync` handle to a [`Master`], for callbacks and other threads.
/// It does not keep the master alive: once the master is dropped, every request fails
/// with [`ErrorKind::Io`] (and `list`/`state` see no worker).
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
    fn shared(&self) -> Result<Arc<Shared>> {
        self.shared.upgrade().ok_or_else(closed)
    }

    /// As [`Master::start`].
    ///
    /// # Errors
    /// As [`Master::start`].
    ///
    /// # Examples
    /// ```
    /// let master = forkexec::agent::Master::new()?;
    /// master.handle().start("s", forkexec::Cmd::new("true"), |_, _| {}, |_, _| {})?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn start(
        &self,
        id: &str,
        cmd: Cmd,
        on_line: impl FnMut(&str, &[u8]) + Send + 'static,
        on_finish: impl FnMut(&str, Result<ProcessState>) + Send + 'static,
    ) -> Result<()> {
        self.start_with(id, cmd, WorkerOptions::default(), on_line, on_finish)
    }

    /// As [`Master::start_with`].
    ///
    /// # Errors
    /// As [`Master::start_with`].
    ///
    /// # Examples
    /// ```
    /// use forkexec::agent::{Master, WorkerOptions};
    /// let master = Master::new()?;
    /// let h = master.handle();
    /// h.start_with("s", forkexec::Cmd::new("true"), WorkerOptions::new(), |_, _| {}, |_, _| {})?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn start_with(
        &self,
        id: &str,
        cmd: Cmd,
        opts: WorkerOptions,
        on_line: impl FnMut(&str, &[u8]) + Send + 'static,
        on_finish: impl FnMut(&str, Result<ProcessState>) + Send + 'static,
    ) -> Result<()> {
        self.shared()?
            .start(id, cmd, opts, Box::new(on_line), Box::new(on_finish))
    }

    /// As [`Master::input`]: one line per call, without `\n`.
    ///
    /// # Errors
    /// As [`Master::input`]: [`ErrorKind::InvalidInput`] when `line` contains `\n`.
    ///
    /// # Examples
    /// ```
    /// let master = forkexec::agent::Master::new()?;
    /// let h = master.handle();
    /// master.start("c", forkexec::Cmd::new("cat"), |_, _| {}, |_, _| {})?;
    /// h.input("c", "hi")?;
    /// assert_eq!(h.input("c", "a\nb").unwrap_err().kind(), forkexec::ErrorKind::InvalidInput);
    /// drop(master);
    /// assert!(h.input("c", "hi").is_err());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn input(&self, id: &str, line: impl AsRef<[u8]>) -> Result<()> {
        self.shared()?.input(id, line.as_ref())
    }

    /// As [`Master::close_input`].
    ///
    /// # Errors
    /// As [`Master::close_input`].
    ///
    /// # Examples
    /// ```
    /// let master = forkexec::agent::Master::new()?;
    /// master.start("c", forkexec::Cmd::new("cat"), |_, _| {}, |_, _| {})?;
    /// master.handle().close_input("c")?; // cat sees end of file and exits
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn close_input(&self, id: &str) -> Result<()> {
        self.shared()?.close_input(id)
    }

    /// As [`Master::stop`].
    ///
    /// # Errors
    /// As [`Master::stop`]: [`ErrorKind::InvalidInput`] from a callback.
    ///
    /// # Examples
    /// ```
    /// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
    /// let master = forkexec::agent::Master::new()?;
    /// master.start("s", sleep30(), |_, _| {}, |_, _| {})?;
    /// master.handle().stop("s")?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn stop(&self, id: &str) -> Result<()> {
        self.shared()?.stop(id, false)
    }

    /// As [`Master::stop_nowait`]; callbacks may call it.
    ///
    /// # Errors
    /// As [`Master::stop_nowait`].
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, agent::Master};
    /// let master = Master::new()?;
    /// let h = master.handle();
    /// // A worker that is stopped by its own first line.
    /// let mut sh = Cmd::new("sh");
    /// sh.args(["-c", "echo ready; exec sleep 30"]);
    /// master.start("s", sh, move |id, _| h.stop_nowait(id).unwrap(), |_, _| {})?;
    /// while !master.state("s").unwrap().is_over() {
    ///     std::thread::sleep(std::time::Duration::from_millis(5));
    /// }
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn stop_nowait(&self, id: &str) -> Result<()> {
        self.shared()?.request_stop(id, false).map(drop)
    }

    /// As [`Master::remove`].
    ///
    /// # Errors
    /// As [`Master::remove`].
    ///
    /// # Examples
    /// ```
    /// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
    /// let master = forkexec::agent::Master::new()?;
    /// master.start("s", sleep30(), |_, _| {}, |_, _| {})?;
    /// master.handle().remove("s")?;
    /// assert!(master.list().is_empty());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn remove(&self, id: &str) -> Result<()> {
        self.shared()?.stop(id, true)
    }

    /// As [`Master::stop_all`].
    ///
    /// # Errors
    /// As [`Master::stop_all`].
    ///
    /// # Examples
    /// ```
    /// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
    /// let master = forkexec::agent::Master::new()?;
    /// master.start("s", sleep30(), |_, _| {}, |_, _| {})?;
    /// master.handle().stop_all()?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn stop_all(&self) -> Result<()> {
        self.shared()?.stop_all()
    }

    /// As [`Master::list`]; empty once the master is gone.
    ///
    /// # Examples
    /// ```
    /// let master = forkexec::agent::Master::new()?;
    /// assert!(master.handle().list().is_empty());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn list(&self) -> Vec<String> {
        self.shared().map(|s| s.list()).unwrap_or_default()
    }

    /// As [`Master::state`]; `None` once the master is gone.
    ///
    /// # Examples
    /// ```
    /// let master = forkexec::agent::Master::new()?;
    /// assert!(master.handle().state("x").is_none());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn state(&self, id: &str) -> Option<WorkerState> {
        self.shared().ok().and_then(|s| s.state(id))
    }
}
