//! The master: what the API and the loop share, and the requests behind every
//! [`Handle`] method.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::input::{InputCell, Refused};
use super::runloop::{Loop, Msg, TAG_IN, caller, data, mark_dirty, on_loop, on_loop_of};
use super::worker::{Phase, Worker};
use super::{FinishFn, Handle, LineFn, WorkerOptions, WorkerState, lock};
use crate::{Cmd, Error, ErrorKind, Result};

pub(super) fn closed() -> Error {
    Error::new(ErrorKind::Io, "agent: the master has shut down")
}

/// The most loop threads a master takes.
const MAX_LOOPS: usize = 1024;

fn no_worker(id: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("agent: no worker {id:?}"))
}

fn over(id: &str) -> Error {
    Error::new(
        ErrorKind::ProcessDone,
        format!("agent: worker {id:?} is over"),
    )
}

/// A worker as the API sees it.
pub(super) struct Entry {
    pub(super) key: u64,
    pub(super) state: WorkerState,
    input: Arc<InputCell>,
}

/// One loop thread's inbox, epoll set and wakeup.
pub(super) struct LoopIo {
    tx: mpsc::Sender<Msg>,
    /// The loop's epoll instance.
    pub(super) epoll: OwnedFd,
    pub(super) wake: OwnedFd,
    pub(super) wake_pending: AtomicBool,
}

/// What the API and the loops share.
pub(super) struct Shared {
    /// The loops; worker `key` is served by `loops[key % loops.len()]`, for its whole
    /// life (restarts included).
    pub(super) loops: Vec<LoopIo>,
    pub(super) closed: AtomicBool,
    pub(super) table: Mutex<HashMap<Arc<str>, Entry>>,
    next_key: AtomicU64,
}

impl Shared {
    /// The loop that serves worker `key`.
    pub(super) fn loop_of(&self, key: u64) -> usize {
        (key % self.loops.len() as u64) as usize
    }

    /// Sends a request about worker `key` to its loop. From that loop's own thread no
    /// wakeup is needed: the loop reads its requests before it waits again.
    fn send(&self, key: u64, m: Msg) -> Result<()> {
        self.post(key, m).map_err(|_| closed())
    }

    /// As `send`, giving the request back when the loop is gone.
    fn post(&self, key: u64, m: Msg) -> std::result::Result<(), Msg> {
        let ix = self.loop_of(key);
        let io = &self.loops[ix];
        io.tx.send(m).map_err(|e| e.0)?;
        if !on_loop(self, ix) && !io.wake_pending.swap(true, Ordering::SeqCst) {
            let _ = rustix::io::write(&io.wake, &1u64.to_ne_bytes());
        }
        Ok(())
    }

    /// Tells every loop to stop its workers and end.
    fn shutdown(&self) {
        for ix in 0..self.loops.len() {
            let _ = self.post(ix as u64, Msg::Shutdown);
        }
    }

    /// Whether the calling thread is one of this master's loops (a callback).
    pub(super) fn on_loop_thread(&self) -> bool {
        on_loop_of(self)
    }

    fn refuse_blocking(&self, what: &str) -> Result<()> {
        if self.on_loop_thread() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("agent: {what} from a callback would deadlock (see the module docs)"),
            ));
        }
        Ok(())
    }

    pub(super) fn start(
        &self,
        id: &str,
        cmd: Cmd,
        opts: WorkerOptions,
        on_line: LineFn,
        on_finish: FinishFn,
    ) -> Result<()> {
        if opts.max_line == 0 || opts.input_limit == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
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
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("agent: worker {id:?} is already running"),
            ));
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let id: Arc<str> = Arc::from(id);
        let input = Arc::new(InputCell::new(opts.input_limit, data(key, TAG_IN)));
        let w = Worker::start(
            key,
            id.clone(),
            cmd,
            opts,
            on_line,
            on_finish,
            input.clone(),
        );
        let w = match w {
            Ok(w) => w,
            Err(e) => {
                // The callbacks were dropped with the worker, after the lock: their drop
                // may use a Handle.
                drop(table);
                return Err(e);
            }
        };
        let pid = w.phase.run().map_or(0, |r| r.pid());
        table.insert(
            id.clone(),
            Entry {
                key,
                state: WorkerState::Running { pid },
                input,
            },
        );
        match self.post(key, Msg::Add(Box::new(w))) {
            Ok(()) => Ok(()),
            Err(m) => {
                // The loop is gone: end the process here.
                table.remove(&id);
                drop(table);
                if let Msg::Add(mut w) = m {
                    let at = Instant::now();
                    if let Phase::Running(run) =
                        std::mem::replace(&mut w.phase, Phase::Backoff { at })
                    {
                        let _ = run.kill_and_reap();
                    }
                }
                Err(closed())
            }
        }
    }

    fn entry(&self, id: &str) -> Result<(u64, Arc<InputCell>)> {
        let t = lock(&self.table);
        let e = t.get(id).ok_or_else(|| no_worker(id))?;
        Ok((e.key, e.input.clone()))
    }

    /// Queues one line for `id`'s stdin; with `wait`, waits for room until the deadline
    /// (`Some(None)`: for ever).
    pub(super) fn input(&self, id: &str, line: &[u8], wait: Option<Option<Instant>>) -> Result<()> {
        if let Some(at) = memchr::memchr(b'\n', line) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "agent: input for worker {id:?} holds a newline at byte {at}: one call \
                     sends one line (the newline is added), so call input once per line"
                ),
            ));
        }
        if wait.is_some() {
            self.refuse_blocking("input_wait()")?;
        }
        // A reply from a worker's own callback: no table lookup (the loop thread is in
        // that callback, so the worker and its queue are the ones the table names, or
        // were until a concurrent `remove`, which then hands the line back).
        let (key, cell) = match self.on_loop_thread().then(|| caller(id)).flatten() {
            Some(kc) => kc,
            None => self.entry(id)?,
        };
        let mut g = cell.lock();
        loop {
            match g.push(line) {
                Ok(false) => return Ok(()),
                // From a callback of the worker's loop: written when it returns, no
                // request needed.
                Ok(true) if on_loop(self, self.loop_of(key)) => {
                    mark_dirty(key);
                    return Ok(());
                }
                Ok(true) => {
                    drop(g);
                    return self.send(key, Msg::Flush(key));
                }
                Err(Refused::Full { ever: false }) if wait.is_some() => {
                    let (g2, in_time) = cell.wait(g, wait.flatten());
                    g = g2;
                    if !in_time {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            format!("agent: no room in worker {id:?}'s input queue in time"),
                        ));
                    }
                }
                Err(Refused::Full { .. }) => return Err(Error::os(libc::ENOBUFS)),
                Err(Refused::Closed) => return Err(Error::os(libc::EPIPE)),
                Err(Refused::Over) => return Err(over(id)),
            }
        }
    }

    pub(super) fn close_input(&self, id: &str) -> Result<()> {
        let (key, cell) = self.entry(id)?;
        let mut g = cell.lock();
        if !g.close() {
            return Err(over(id));
        }
        cell.notify(&g);
        drop(g);
        self.send(key, Msg::Flush(key))
    }

    /// Asks the loop to stop `id`; the receiver answers once it is over.
    pub(super) fn request_stop(&self, id: &str, remove: bool) -> Result<mpsc::Receiver<()>> {
        let (tx, rx) = mpsc::channel();
        let t = lock(&self.table);
        let Some((id, e)) = t.get_key_value(id) else {
            return Err(no_worker(id));
        };
        self.send(
            e.key,
            Msg::Stop {
                key: e.key,
                id: id.clone(),
                remove,
                done: Some(tx),
            },
        )?;
        Ok(rx)
    }

    pub(super) fn stop(&self, id: &str, remove: bool) -> Result<()> {
        self.refuse_blocking(if remove { "remove()" } else { "stop()" })?;
        let rx = self.request_stop(id, remove)?;
        // The loop answers, or drops the sender when it ends: either way it is over.
        let _ = rx.recv();
        Ok(())
    }

    pub(super) fn stop_all(&self) -> Result<()> {
        self.refuse_blocking("stop_all()")?;
        let (tx, rx) = mpsc::channel();
        {
            let t = lock(&self.table);
            for (id, e) in t.iter().filter(|(_, e)| !e.state.is_over()) {
                self.send(
                    e.key,
                    Msg::Stop {
                        key: e.key,
                        id: id.clone(),
                        remove: false,
                        done: Some(tx.clone()),
                    },
                )?;
            }
        }
        drop(tx);
        while rx.recv().is_ok() {}
        Ok(())
    }

    pub(super) fn list(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.table).keys().map(|k| k.to_string()).collect();
        ids.sort_unstable();
        ids
    }

    pub(super) fn state(&self, id: &str) -> Option<WorkerState> {
        lock(&self.table).get(id).map(|e| e.state)
    }
}

/// Owns named workers and the one thread that serves them all (Go pagent's `Master`).
/// Dropping it stops every worker (as [`stop_all`](Handle::stop_all)) and ends the thread.
///
/// Its requests are the methods of [`Handle`], which it dereferences to: `master.input(..)`
/// is [`Handle::input`]. Every method takes `&self`: a `Master` can be shared between
/// threads (it is `Sync`). Callbacks reach the master through a [`Handle`] (from
/// [`handle`](Master::handle)). See the [module docs](super) for the threading model,
/// the delivery rules and the rules for callbacks.
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
#[doc(alias = "pagent")]
pub struct Master {
    handle: Handle,
    /// Keeps the shared state alive: handles hold it weakly.
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Master {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Master")
            .field("workers", &lock(&self.shared.table).len())
            .finish_non_exhaustive()
    }
}

impl Master {
    /// A master with no worker, and its loop thread (named `forkexec-agent`).
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the epoll instance, the eventfd or the thread cannot be
    /// created (fd or thread limits).
    ///
    /// # References
    /// `epoll_create1(2)`, `eventfd(2)`.
    ///
    /// # Examples
    /// ```
    /// let master = forkexec::agent::Master::new()?;
    /// assert!(master.list().is_empty());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "NewMaster")]
    pub fn new() -> Result<Master> {
        Master::with_loops(1)
    }

    /// A master with `loops` loop threads (all named `forkexec-agent`), for throughput
    /// on a machine with several CPUs: workers are spread over the loops in turn as they
    /// start, and a worker stays on its loop for its whole life, restarts included. The
    /// rules of the [module docs](super) hold per loop: the callbacks of one loop's
    /// workers run one at a time on that loop's thread, and **the callbacks of workers on
    /// different loops may run at the same time**. A callback's blocking requests are
    /// refused on every loop thread. With `1` this is [`new`](Master::new).
    ///
    /// One loop thread serves its workers' pipes one system call after the other; with
    /// many busy workers on a machine with several CPUs, a loop per CPU (see
    /// [`std::thread::available_parallelism`]) keeps them all busy: the README's agent
    /// figures compare both with a thread per worker.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for `0` loops or more than 1024; [`ErrorKind::Io`] as
    /// [`new`](Master::new).
    ///
    /// # References
    /// `epoll_create1(2)`, `eventfd(2)`.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, ErrorKind, agent::Master};
    /// let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// let master = Master::with_loops(cpus)?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// for i in 0..4 {
    ///     let tx = tx.clone();
    ///     master.start(&format!("w{i}"), Cmd::new("cat"), move |id, l| {
    ///         tx.send(format!("{id}: {}", String::from_utf8_lossy(&l))).unwrap()
    ///     }, |_, _| {})?;
    ///     master.input(&format!("w{i}"), "hi")?;
    /// }
    /// let mut got: Vec<String> = rx.iter().take(4).collect();
    /// got.sort();
    /// assert_eq!(got, ["w0: hi", "w1: hi", "w2: hi", "w3: hi"]);
    /// assert_eq!(Master::with_loops(0).unwrap_err().kind(), ErrorKind::InvalidInput);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn with_loops(loops: usize) -> Result<Master> {
        use rustix::event::{EventfdFlags, epoll};
        if !(1..=MAX_LOOPS).contains(&loops) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("agent: {loops} loops (1 to {MAX_LOOPS})"),
            ));
        }
        let os = |e: rustix::io::Errno| Error::os(e.raw_os_error());
        let mut ios = Vec::with_capacity(loops);
        let mut rxs = Vec::with_capacity(loops);
        for _ in 0..loops {
            let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(os)?;
            let wake = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(os)?;
            let (tx, rx) = mpsc::channel();
            ios.push(LoopIo {
                tx,
                epoll,
                wake,
                wake_pending: AtomicBool::new(false),
            });
            rxs.push(rx);
        }
        let shared = Arc::new(Shared {
            loops: ios,
            closed: AtomicBool::new(false),
            table: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(1),
        });
        let mut master = Master {
            handle: Handle::new(Arc::downgrade(&shared)),
            shared,
            threads: Vec::with_capacity(loops),
        };
        for (ix, rx) in rxs.into_iter().enumerate() {
            let lp = Loop::new(master.shared.clone(), ix, rx);
            // On failure the loops already running are shut down by `master`'s drop.
            let thread = std::thread::Builder::new()
                .name("forkexec-agent".into())
                .spawn(move || lp.run())
                .map_err(Error::from_io)?;
            master.threads.push(thread);
        }
        Ok(master)
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
    /// }, |_, end| assert!(end.result.unwrap().success()))?;
    /// master.input("loop", "go")?;
    /// while !master.state("loop").unwrap().is_over() {
    ///     std::thread::sleep(std::time::Duration::from_millis(5));
    /// }
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

impl Deref for Master {
    type Target = Handle;

    /// The master's requests are [`Handle`]'s.
    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.shutdown();
        // Dropped by a callback: the loops end by themselves once their workers are over.
        if !self.shared.on_loop_thread() {
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

/// A deadline `timeout` from now (`None`: none, or beyond what the clock holds).
pub(super) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}
