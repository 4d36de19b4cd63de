//! [`WaitSet`]: many running children watched from one thread with one epoll: the next
//! chunk of output from any of them, or the next one that finished.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::epoll;

use super::Child;
use super::output::EXIT_POLL;
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::{Error, Result};
use crate::status::ProcessState;

/// Which of a child's streams a chunk of output came from.
///
/// # Examples
/// ```
/// assert_ne!(forkexec::Stream::Stdout, forkexec::Stream::Stderr);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The child's stdout.
    Stdout,
    /// The child's stderr.
    Stderr,
}

/// What a [`WaitSet`] saw.
///
/// # Examples
/// ```
/// use forkexec::{Cmd, Stdio, Stream, WaitEvent, WaitSet};
/// let mut set = WaitSet::new()?;
/// let t = set.add(Cmd::new("echo").arg("hi").stdout(Stdio::piped()).start()?)?;
/// let mut seen = Vec::new();
/// while let Some(ev) = set.next(None)? {
///     match ev {
///         WaitEvent::Output { token, stream: Stream::Stdout, data } => seen.push((token, data)),
///         WaitEvent::Output { .. } => {}
///         WaitEvent::Exited { token, result } => assert!(token == t && result?.success()),
///     }
/// }
/// assert_eq!(seen, [(t, b"hi\n".to_vec())]);
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug)]
pub enum WaitEvent {
    /// A chunk the child wrote (at most 64 KiB; a stream's chunks come in order).
    Output {
        /// The child, as [`WaitSet::add`] named it.
        token: usize,
        /// The stream.
        stream: Stream,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The child ended and both its streams reached end-of-file: it was waited for
    /// ([`Child::wait`], so its stdio copies and its timeout are finished too). Always
    /// the child's last event.
    Exited {
        /// The child, as [`WaitSet::add`] named it.
        token: usize,
        /// What its wait returned.
        result: Result<ProcessState>,
    },
}

struct Slot {
    child: Child,
    streams: [Option<OwnedFd>; 2],
    /// When the child exited (its pidfd became readable, or a poll saw it).
    exited_at: Option<Instant>,
}

impl Slot {
    /// Running, with no pidfd (a kernel before 5.3): its exit is looked for every
    /// `EXIT_POLL`.
    fn polled(&self) -> bool {
        self.exited_at.is_none() && self.child.process().pidfd().is_none()
    }

    /// When its wait delay ends: the child exited, a pipe is still open (a process it
    /// started holds it), and its command has a wait delay.
    fn delay_ends(&self) -> Option<Instant> {
        let open = self.streams.iter().any(Option::is_some);
        match (self.exited_at, self.child.wait_delay) {
            (Some(t), Some(d)) if open => Some(t.checked_add(d).unwrap_or(t)),
            _ => None,
        }
    }
}

/// Many running children, watched from one thread (a job runner's loop): [`next`]
/// returns the next chunk any of them wrote on a [`Stdio::piped`](crate::Stdio::piped)
/// stdout or stderr, or the next one that finished, with no thread per child. One epoll
/// watches every child's pidfd and pipes. (On a kernel before 5.3, without pidfds, the
/// set looks for the exits of its running children every 10 ms, and keeps their
/// timeouts itself.)
///
/// Nothing is lost: a child's [`WaitEvent::Exited`] comes only after its pipes reached
/// end-of-file, so every byte it wrote came before. A process it started that keeps a
/// pipe open delays `Exited` until that pipe closes, or, when the command has a
/// [`wait_delay`](crate::Cmd::wait_delay), until that delay after the child's exit: then
/// its pipes are closed and its `Exited` carries Go's `ErrWaitDelay`
/// ([`ErrorKind::WaitDelay`], with the state) if it had succeeded.
///
/// [`next`]: WaitSet::next
///
/// # Examples
/// ```
/// use forkexec::{Cmd, Stdio, WaitEvent, WaitSet};
/// let mut set = WaitSet::new()?;
/// for i in 0..3 {
///     set.add(Cmd::new("sh").args(["-c", &format!("echo job {i}; exit {i}")])
///         .stdout(Stdio::piped()).start()?)?;
/// }
/// let (mut out, mut codes) = (Vec::new(), Vec::new());
/// while let Some(ev) = set.next(None)? {
///     match ev {
///         WaitEvent::Output { data, .. } => out.extend(data),
///         WaitEvent::Exited { token, result } => codes.push((token, result?.exit_code())),
///     }
/// }
/// codes.sort();
/// assert_eq!(codes, [(0, 0), (1, 1), (2, 2)]);
/// assert_eq!(out.len(), "job 0\n".len() * 3);
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `epoll(7)`, `pidfd_open(2)`.
pub struct WaitSet {
    epoll: OwnedFd,
    slots: Vec<Option<Slot>>,
    /// Slots whose child was reported as exited: reused by `add`.
    free: Vec<usize>,
    live: usize,
    ready: VecDeque<WaitEvent>,
    events: crate::sys::EpollEvents,
    buf: Vec<u8>,
    /// When the children without a pidfd are next looked at.
    next_poll: Option<Instant>,
}

impl std::fmt::Debug for WaitSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitSet")
            .field("children", &self.live)
            .finish_non_exhaustive()
    }
}

/// The epoll key: the slot and what it is (0: the pidfd, 1: stdout, 2: stderr).
fn key(token: usize, what: usize) -> epoll::EventData {
    epoll::EventData::new_u64((token as u64) * 3 + what as u64)
}

fn io_err(e: rustix::io::Errno) -> Error {
    Error::os(e.raw_os_error())
}

impl WaitSet {
    /// An empty set.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the kernel refuses an epoll instance (`EMFILE`, ...).
    ///
    /// # Examples
    /// ```
    /// let mut set = forkexec::WaitSet::new()?;
    /// assert!(set.is_empty());
    /// assert!(set.next(None)?.is_none());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn new() -> Result<WaitSet> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(io_err)?;
        Ok(WaitSet {
            epoll: crate::sys::above_stdio(epoll).map_err(Error::os)?,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            ready: VecDeque::new(),
            events: crate::sys::EpollEvents(Vec::with_capacity(64)),
            buf: vec![0; 64 * 1024],
            next_poll: None,
        })
    }

    /// Adds a started child; its token (the number events carry) is returned. Its piped
    /// stdout and stderr, if any, are taken from it and read by the set. A token is reused
    /// for a later child once its child's [`WaitEvent::Exited`] was returned, so the set's
    /// memory follows the number of running children. Children still in the set when it
    /// is dropped are neither killed nor waited for (as a dropped [`Child`]).
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when epoll refuses it (the child is not handed back: it is killed
    /// and waited for).
    ///
    /// # Examples
    /// ```
    /// let mut set = forkexec::WaitSet::new()?;
    /// let t = set.add(forkexec::Cmd::new("true").start()?)?;
    /// assert_eq!(set.len(), 1);
    /// assert!(matches!(set.next(None)?, Some(forkexec::WaitEvent::Exited { token, .. }) if token == t));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn add(&mut self, mut child: Child) -> Result<usize> {
        let token = self.free.last().copied().unwrap_or(self.slots.len());
        let r = self.register(token, &mut child);
        match r {
            Ok(streams) => {
                let slot = Some(Slot {
                    child,
                    streams,
                    exited_at: None,
                });
                if self.free.pop().is_some() {
                    self.slots[token] = slot;
                } else {
                    self.slots.push(slot);
                }
                self.live += 1;
                Ok(token)
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    fn register(&mut self, token: usize, child: &mut Child) -> Result<[Option<OwnedFd>; 2]> {
        let flags = epoll::EventFlags::IN;
        // Without a pidfd (before Linux 5.3) the exit is polled for instead.
        if let Some(pidfd) = child.process().pidfd() {
            epoll::add(&self.epoll, pidfd, key(token, 0), flags).map_err(io_err)?;
        }
        let streams = [
            child.stdout.take().map(OwnedFd::from),
            child.stderr.take().map(OwnedFd::from),
        ];
        for (i, s) in streams.iter().enumerate() {
            if let Some(fd) = s {
                rustix::io::ioctl_fionbio(fd, true).map_err(io_err)?;
                epoll::add(&self.epoll, fd, key(token, i + 1), flags).map_err(io_err)?;
            }
        }
        Ok(streams)
    }

    /// How many children are in the set (added and not yet reported as exited).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::WaitSet::new()?.len(), 0);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the set has no child left.
    ///
    /// # Examples
    /// ```
    /// assert!(forkexec::WaitSet::new()?.is_empty());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The next event of any child: waits at most `timeout` (`None`: as long as it takes).
    /// `Ok(None)` when the set is empty or the timeout passed with nothing to report.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when epoll or a read of a pipe fails; the child's own end comes in
    /// its [`WaitEvent::Exited`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let mut set = forkexec::WaitSet::new()?;
    /// let mut child = forkexec::Cmd::new("sleep").arg("30").start()?;
    /// child.kill()?;
    /// set.add(child)?;
    /// let ev = set.next(Some(Duration::from_secs(30)))?.expect("an event");
    /// assert!(matches!(ev, forkexec::WaitEvent::Exited { .. }));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Option<WaitEvent>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if let Some(ev) = self.ready.pop_front() {
                if let WaitEvent::Exited { token, .. } = &ev {
                    // Reusable only once its Exited is in the caller's hands.
                    self.free.push(*token);
                }
                return Ok(Some(ev));
            }
            if self.live == 0 {
                return Ok(None);
            }
            // Woken for the caller's deadline or the nearest wait delay, whichever is first.
            let delay_ends = self
                .slots
                .iter()
                .flatten()
                .filter_map(Slot::delay_ends)
                .min();
            // Children without a pidfd: looked at every `EXIT_POLL`.
            let poll_tick = self
                .slots
                .iter()
                .flatten()
                .any(Slot::polled)
                .then(|| Instant::now() + EXIT_POLL);
            let wake = [deadline, delay_ends, poll_tick]
                .into_iter()
                .flatten()
                .min();
            let left = match wake {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    Some(rustix::event::Timespec {
                        tv_sec: left.as_secs() as _,
                        tv_nsec: left.subsec_nanos() as _,
                    })
                }
                None => None,
            };
            self.events.0.clear();
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut self.events.0),
                left.as_ref(),
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io_err(e)),
            }
            if poll_tick.is_some() && self.next_poll.is_none_or(|t| Instant::now() >= t) {
                self.poll_exits();
                self.next_poll = Some(Instant::now() + EXIT_POLL);
            }
            if self.events.0.is_empty() {
                if delay_ends.is_some_and(|d| Instant::now() >= d) {
                    self.end_delays();
                    continue;
                }
                if !self.ready.is_empty() {
                    continue;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(None);
                }
                continue;
            }
            let events = std::mem::take(&mut self.events.0);
            let mut r = Ok(());
            for ev in &events {
                let k = ev.data.u64();
                r = self.handle((k / 3) as usize, (k % 3) as usize);
                if r.is_err() {
                    break;
                }
            }
            // Given back before any error is returned: the next wait needs its capacity.
            self.events.0 = events;
            r?;
            // A busy set still ends a lingering child on time.
            if delay_ends.is_some_and(|d| Instant::now() >= d) {
                self.end_delays();
            }
        }
    }

    /// Ends the children whose wait delay ran out: their pipes are closed (what is still
    /// in them is lost, as Go's `WaitDelay` closes them) and their `Exited` is queued.
    fn end_delays(&mut self) {
        let now = Instant::now();
        for token in 0..self.slots.len() {
            let due = self.slots[token]
                .as_ref()
                .and_then(Slot::delay_ends)
                .is_some_and(|d| d <= now);
            if !due {
                continue;
            }
            if let Some(mut slot) = self.slots[token].take() {
                for fd in slot.streams.iter_mut().filter_map(Option::take) {
                    let _ = epoll::delete(&self.epoll, fd.as_fd());
                }
                drop(slot.child.stdin.take());
                let result = slot.child.finish(true);
                self.live -= 1;
                self.ready.push_back(WaitEvent::Exited { token, result });
            }
        }
    }

    /// The children without a pidfd: those that exited handled as a pidfd readiness
    /// would be, the others' timeouts kept (no timer watches them). A child whose exit
    /// cannot be asked for is treated as exited: its wait then reports why, in its
    /// `Exited`, and the other children go on.
    fn poll_exits(&mut self) {
        for token in 0..self.slots.len() {
            let Some(Some(slot)) = self.slots.get_mut(token) else {
                continue;
            };
            if !slot.polled() {
                continue;
            }
            let exited = slot.child.process().exited_nowait().unwrap_or(true);
            if exited || slot.child.keep_deadline().is_err() {
                // Reads nothing for `what` 0: cannot fail.
                let _ = self.handle(token, 0);
            }
        }
    }

    /// One readiness: `what` 0 is the pidfd, 1 and 2 the streams.
    fn handle(&mut self, token: usize, what: usize) -> Result<()> {
        let Some(Some(slot)) = self.slots.get_mut(token) else {
            return Ok(());
        };
        if what == 0 {
            if let Some(pidfd) = slot.child.process().pidfd() {
                let _ = epoll::delete(&self.epoll, pidfd);
            }
            slot.exited_at = Some(Instant::now());
        } else {
            let i = what - 1;
            let Some(fd) = &slot.streams[i] else {
                return Ok(());
            };
            // One read per readiness, so that a chatty child cannot starve the others
            // (epoll is level-triggered: what is left is reported again).
            match rustix::io::read(fd, &mut self.buf) {
                Ok(0) => {
                    let _ = epoll::delete(&self.epoll, fd.as_fd());
                    slot.streams[i] = None;
                }
                Ok(n) => self.ready.push_back(WaitEvent::Output {
                    token,
                    stream: if i == 0 {
                        Stream::Stdout
                    } else {
                        Stream::Stderr
                    },
                    data: self.buf[..n].to_vec(),
                }),
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        if slot.exited_at.is_some() && slot.streams.iter().all(Option::is_none) {
            if let Some(mut slot) = self.slots[token].take() {
                let result = slot.child.wait();
                self.live -= 1;
                self.ready.push_back(WaitEvent::Exited { token, result });
            }
        }
        Ok(())
    }
}
