//! One thread enforces the timeout of every started child (Go's `CommandContext`): it
//! polls the children's pidfds together, sends the cancel signal at each deadline, and
//! `SIGKILL` after the wait delay. A thousand running children with timeouts cost one
//! thread, not a thousand. The pidfds make it safe: a signal can never reach another
//! process, even after the child is reaped.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::signal::Signal;
use crate::sys;

/// One child's timeout, as the timer thread keeps it.
struct Entry {
    id: u64,
    pid: i32,
    /// A duplicate of the child's pidfd, owned by the timer.
    pidfd: OwnedFd,
    deadline: Instant,
    /// What is sent at the deadline: the cancel signal, then (after the wait delay)
    /// `SIGKILL`.
    next: Signal,
    wait_delay: Option<Duration>,
    /// Signal the child's whole process group (it leads one) while it runs.
    group: bool,
    timed_out: Arc<AtomicBool>,
    /// Nothing more to do (the child exited, or was sent its last signal).
    done: bool,
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
        let (r, w) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .map_err(|e| e.raw_os_error())?;
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
        let _ = rustix::io::write(&self.wake_w, &[1]);
    }
}

/// A child's registration with the timer.
#[derive(Debug)]
pub(super) struct Watcher {
    id: u64,
    timed_out: Arc<AtomicBool>,
}

impl Watcher {
    /// Enforces `deadline` on the child of `pidfd`: `cancel` then, `SIGKILL` `wait_delay`
    /// later if it still runs; to its process group too when `group`.
    pub(super) fn start(
        pid: i32,
        pidfd: BorrowedFd<'_>,
        deadline: Instant,
        cancel: Signal,
        wait_delay: Option<Duration>,
        group: bool,
    ) -> Result<Watcher> {
        let fd = sys::dup_cloexec_min(pidfd, 3).map_err(Error::os)?;
        let timed_out = Arc::new(AtomicBool::new(false));
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
            next: cancel,
            wait_delay,
            group,
            timed_out: timed_out.clone(),
            done: false,
        });
        t.wake();
        Ok(Watcher { id, timed_out })
    }

    /// Ends the registration (the child was reaped); whether the deadline cancelled it.
    pub(super) fn finish(self) -> bool {
        if let Ok(t) = timer() {
            // Dropped here, so the duplicate pidfd is closed when the wait returns. (The
            // thread may be polling its number: it maps events to ids, and ignores an id
            // that is gone.)
            let mut s = lock(&t.state);
            s.entries.retain(|e| e.id != self.id);
            t.wake();
        }
        self.timed_out.load(Ordering::SeqCst)
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
            pfds.push(pollin(t.wake_r.as_raw_fd()));
            for e in &s.entries {
                pfds.push(pollin(e.pidfd.as_raw_fd()));
                ids.push(e.id);
            }
            let now = Instant::now();
            s.entries
                .iter()
                .map(|e| e.deadline.saturating_duration_since(now))
                .min()
        };
        let ms = timeout.map_or(-1, |d| {
            d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        });
        if sys::poll(&mut pfds, ms).is_err() {
            continue; // EINTR (or ENOMEM): poll again
        }
        if pfds[0].revents != 0 {
            let mut buf = [0u8; 64];
            while matches!(rustix::io::read(&t.wake_r, &mut buf), Ok(n) if n > 0) {}
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
        for e in s
            .entries
            .iter_mut()
            .filter(|e| !e.done && e.deadline <= now)
        {
            e.timed_out.store(true, Ordering::SeqCst);
            send(e);
            match (e.next == Signal::KILL, e.wait_delay) {
                (false, Some(d)) => {
                    e.next = Signal::KILL;
                    e.deadline = now.checked_add(d).unwrap_or(now);
                }
                _ => e.done = true,
            }
        }
    }
}

/// Sends the entry's next signal: to the child's process group first, but only while the
/// child (its leader) has not exited (checked on its pidfd right before: until it exits and
/// is reaped, its pid, and so the group's id, cannot be reused), then to the child through
/// its pidfd.
fn send(e: &Entry) {
    if e.group {
        let mut p = [pollin(e.pidfd.as_raw_fd())];
        if matches!(sys::poll(&mut p, 0), Ok(0)) {
            let _ = sys::kill(-e.pid, e.next.as_raw());
        }
    }
    let _ = sys::pidfd_send_signal(e.pidfd.as_fd(), e.next.as_raw());
}

fn pollin(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}
