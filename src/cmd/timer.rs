//! One thread enforces the timeout of every started child (Go's `CommandContext`): it
//! polls the children's pidfds together, sends the cancel signal at each deadline, and
//! `SIGKILL` after the wait delay. A thousand running children with timeouts cost one
//! thread, not a thousand. The pidfds make it safe: a signal can never reach another
//! process, even after the child is reaped.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::status::Signal;
use crate::sys;

/// A cancel function (Go's `Cmd.Cancel`): see [`Cmd::cancel_with`](super::Cmd::cancel_with).
pub(crate) type CancelFn = dyn Fn(&CancelTarget<'_>) -> std::io::Result<()> + Send + Sync;

/// How a child is cancelled at its deadline.
#[derive(Clone)]
pub(super) struct Cancel {
    pub(super) signal: Signal,
    /// To the child's process group too.
    pub(super) group: bool,
    /// Called instead of sending `signal` (Go's `Cmd.Cancel`).
    pub(super) func: Option<Arc<CancelFn>>,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("signal", &self.signal)
            .field("group", &self.group)
            .field("func", &self.func.is_some())
            .finish()
    }
}

/// The child a [`Cmd::cancel_with`](super::Cmd::cancel_with) function cancels, handed to
/// it at the deadline. It has not been reaped yet, so its pid (and the group it leads)
/// cannot belong to another process while the function runs.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use forkexec::{Cmd, Signal};
/// let err = Cmd::new("sleep").arg("30").timeout(Duration::from_millis(50))
///     .cancel_with(|t| { assert!(t.pid() > 0); t.signal(Signal::INT) })
///     .run().unwrap_err();
/// assert_eq!(err.state().unwrap().signal(), Some(Signal::INT));
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug)]
pub struct CancelTarget<'a> {
    pid: i32,
    pidfd: Option<BorrowedFd<'a>>,
}

impl CancelTarget<'_> {
    /// The child's pid.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let mut child = forkexec::Cmd::new("sleep").arg("30").timeout(Duration::from_millis(20))
    ///     .cancel_with(|t| { assert!(t.pid() > 0); t.signal(forkexec::Signal::TERM) }).start()?;
    /// assert_eq!(child.wait().unwrap_err().state().unwrap().signal(), Some(forkexec::Signal::TERM));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig` to the child (through its pidfd where there is one).
    ///
    /// # Errors
    /// The kernel's refusal (`ESRCH` once it has exited) as an [`std::io::Error`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, Signal};
    /// let err = Cmd::new("sleep").arg("30").timeout(Duration::from_millis(20))
    ///     .cancel_with(|t| t.signal(Signal::INT)).status().unwrap_err();
    /// assert_eq!(err.state().unwrap().signal(), Some(Signal::INT));
    /// ```
    ///
    /// # References
    /// `pidfd_send_signal(2)`, `kill(2)`.
    pub fn signal(&self, sig: Signal) -> std::io::Result<()> {
        let r = match self.pidfd {
            Some(fd) => sys::pidfd_send_signal(fd, sig.as_raw()),
            None => sys::kill(self.pid, sig.as_raw()),
        };
        r.map_err(std::io::Error::from_raw_os_error)
    }

    /// Sends `sig` to the process group the child leads (see
    /// [`Cmd::cancel_process_group`](super::Cmd::cancel_process_group)).
    ///
    /// # Errors
    /// As [`signal`](CancelTarget::signal); `ESRCH` when the child leads no group.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, Signal};
    /// let err = Cmd::new("sh").args(["-c", "sleep 30 & sleep 30"]).process_group(0)
    ///     .timeout(Duration::from_millis(50))
    ///     .cancel_with(|t| t.signal_group(Signal::TERM))
    ///     .run().unwrap_err();
    /// assert_eq!(err.state().unwrap().signal(), Some(Signal::TERM));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn signal_group(&self, sig: Signal) -> std::io::Result<()> {
        sys::kill(-self.pid, sig.as_raw()).map_err(std::io::Error::from_raw_os_error)
    }
}

/// Cancels the child of `pid`/`pidfd` now as `how` says (`first`: the cancel; else the
/// `SIGKILL` after the wait delay); the cancel function's error, if any. Its caller knows
/// the child is not reaped.
pub(super) fn cancel_now(
    pid: i32,
    pidfd: Option<BorrowedFd<'_>>,
    how: &Cancel,
    first: bool,
) -> Option<std::io::Error> {
    let t = CancelTarget { pid, pidfd };
    match &how.func {
        Some(f) if first => f(&t).err(),
        _ => {
            let sig = if first { how.signal } else { Signal::KILL };
            if how.group {
                let _ = t.signal_group(sig);
            }
            let _ = t.signal(sig);
            None
        }
    }
}

/// One child's timeout, as the timer thread keeps it.
struct Entry {
    id: u64,
    pid: i32,
    /// A duplicate of the child's pidfd, owned by the timer.
    pidfd: Arc<OwnedFd>,
    deadline: Instant,
    /// The cancel was made: the next deadline is the `SIGKILL` after the wait delay.
    cancelled: bool,
    wait_delay: Option<Duration>,
    cancel: Cancel,
    shared: Arc<Outcome>,
    /// Nothing more to do (the child exited, or was sent its last signal).
    done: bool,
}

/// What the timer did to a child, read by its owner once it was waited for.
#[derive(Default)]
struct Outcome {
    timed_out: AtomicBool,
    /// The cancel function's error.
    error: Mutex<Option<std::io::Error>>,
    /// `(a cancel is being sent or its function runs, the owner finished)`: the owner
    /// reaps only once no cancel is in flight, and none starts after it finished, so a
    /// signal or a cancel function never meets a reaped (reusable) pid.
    gate: Mutex<(bool, bool)>,
    idle: Condvar,
}

struct State {
    entries: Vec<Entry>,
    next_id: u64,
    /// The thread runs (it ends when no entry is left, and is started again by the next).
    running: bool,
}

struct Timer {
    /// The pipe that wakes the thread (a new deadline, a finished entry).
    wake_r: OwnedFd,
    wake_w: OwnedFd,
    state: Mutex<State>,
}

fn timer() -> Result<&'static Timer> {
    static TIMER: OnceLock<std::result::Result<Timer, i32>> = OnceLock::new();
    let t = TIMER.get_or_init(|| {
        let (r, w) = sys::pipe2(libc::O_NONBLOCK)?;
        Ok(Timer {
            wake_r: sys::above_stdio(r)?,
            wake_w: sys::above_stdio(w)?,
            state: Mutex::new(State {
                entries: Vec::new(),
                next_id: 0,
                running: false,
            }),
        })
    });
    t.as_ref().map_err(|&e| Error::os(e))
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Timer {
    fn wake(&self) {
        // A full pipe already means "wake up": the result does not matter.
        let _ = sys::write(self.wake_w.as_fd(), &[1]);
    }
}

/// A child's registration with the timer.
pub(super) struct Watcher {
    id: u64,
    shared: Arc<Outcome>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("id", &self.id).finish()
    }
}

impl Watcher {
    /// Enforces `deadline` on the child of `pidfd`: `cancel` then, `SIGKILL` `wait_delay`
    /// later if it still runs.
    pub(super) fn start(
        pid: i32,
        pidfd: BorrowedFd<'_>,
        deadline: Instant,
        cancel: &Cancel,
        wait_delay: Option<Duration>,
    ) -> Result<Watcher> {
        let fd = Arc::new(sys::dup_cloexec_min(pidfd, 3).map_err(Error::os)?);
        let shared = Arc::new(Outcome::default());
        let t = timer()?;
        let mut s = lock(&t.state);
        if !s.running {
            std::thread::Builder::new()
                .name("forkexec-timeout".into())
                .spawn(move || run(t))
                .map_err(Error::from_io)?;
            s.running = true;
        }
        let id = s.next_id;
        s.next_id += 1;
        s.entries.push(Entry {
            id,
            pid,
            pidfd: fd,
            deadline,
            cancelled: false,
            wait_delay,
            cancel: cancel.clone(),
            shared: shared.clone(),
            done: false,
        });
        t.wake();
        Ok(Watcher { id, shared })
    }

    /// Ends the registration: call it once the child has exited and before it is reaped
    /// (it waits for a cancel in flight, and none starts after it). Whether the deadline
    /// cancelled the child, and the cancel function's error.
    pub(super) fn finish(self) -> (bool, Option<std::io::Error>) {
        {
            let o = &self.shared;
            let mut g = o.gate.lock().unwrap_or_else(|p| p.into_inner());
            while g.0 {
                g = o.idle.wait(g).unwrap_or_else(|p| p.into_inner());
            }
            g.1 = true;
        }
        if let Ok(t) = timer() {
            // Dropped here, so the duplicate pidfd is closed when the wait returns. (The
            // thread may be polling its number: it maps events to ids, and ignores an id
            // that is gone.)
            let mut s = lock(&t.state);
            s.entries.retain(|e| e.id != self.id);
            t.wake();
        }
        let err = self
            .shared
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        (self.shared.timed_out.load(Ordering::SeqCst), err)
    }
}

/// The timer thread: polls the wake pipe and every pidfd until the nearest deadline; ends
/// when no entry is left (the next registration starts it again).
fn run(t: &'static Timer) {
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    let mut ids: Vec<u64> = Vec::new();
    loop {
        let timeout = {
            let mut s = lock(&t.state);
            s.entries.retain(|e| !e.done);
            if s.entries.is_empty() {
                s.running = false;
                return;
            }
            pfds.clear();
            ids.clear();
            pfds.push(sys::poll_in(t.wake_r.as_raw_fd()));
            for e in &s.entries {
                pfds.push(sys::poll_in(e.pidfd.as_raw_fd()));
                ids.push(e.id);
            }
            s.entries.iter().map(|e| e.deadline).min()
        };
        if sys::poll_until(&mut pfds, timeout).is_err() {
            // ENOMEM: no event can be trusted; wait a little and poll again.
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        if pfds[0].revents != 0 {
            let mut buf = [0u8; 64];
            while matches!(sys::read(t.wake_r.as_fd(), &mut buf), Ok(n) if n > 0) {}
        }
        let mut s = lock(&t.state);
        // Exited children need nothing more (their owner reaps them and finishes).
        for (p, id) in pfds[1..].iter().zip(&ids) {
            if p.revents != 0 {
                if let Some(e) = s.entries.iter_mut().find(|e| e.id == *id) {
                    e.done = true;
                }
            }
        }
        let now = Instant::now();
        let mut due = Vec::new();
        for e in s
            .entries
            .iter_mut()
            .filter(|e| !e.done && e.deadline <= now)
        {
            let first = !e.cancelled;
            due.push((
                e.pid,
                e.pidfd.clone(),
                first,
                e.cancel.clone(),
                e.shared.clone(),
            ));
            match (first, e.wait_delay) {
                (true, Some(d)) => {
                    e.cancelled = true;
                    match now.checked_add(d) {
                        Some(t) => e.deadline = t,
                        None => e.done = true, // a wait delay beyond time: never killed
                    }
                }
                _ => e.done = true,
            }
        }
        // Signals are sent, and a cancel function runs, without the lock: the function is
        // the caller's code, and may start a command with a timeout of its own.
        drop(s);
        for (pid, pidfd, first, cancel, shared) in due {
            {
                let mut g = shared.gate.lock().unwrap_or_else(|p| p.into_inner());
                if g.1 {
                    continue; // its owner is done with it (and may reap it any moment)
                }
                g.0 = true;
            }
            if send_allowed(&pidfd) {
                shared.timed_out.store(true, Ordering::SeqCst);
                // A panicking cancel function must not take the timer thread (and every
                // later timeout of the process) with it: it counts as its error.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    cancel_now(pid, Some(pidfd.as_fd()), &cancel, first)
                }));
                let err = r.unwrap_or_else(|_| {
                    Some(std::io::Error::other("the cancel function panicked"))
                });
                if let Some(e) = err {
                    *shared.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                }
            }
            shared.gate.lock().unwrap_or_else(|p| p.into_inner()).0 = false;
            shared.idle.notify_all();
        }
    }
}

/// Whether the child has not exited yet (checked on its pidfd right before signalling):
/// until it exits and is reaped, its pid, and so the group it leads, cannot be reused.
fn send_allowed(pidfd: &OwnedFd) -> bool {
    let mut p = [sys::poll_in(pidfd.as_raw_fd())];
    matches!(sys::poll_until(&mut p, Some(Instant::now())), Ok(0))
}
