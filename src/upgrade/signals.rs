//! Signals as readable events: `signalfd(2)`, for a blocking or `poll` loop.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::sys::upgrade::SigSet;
use crate::{Error, ErrorKind, Result, Signal};

/// A set of signals delivered as readable events on an fd (`signalfd(2)`), so a server can
/// react to `SIGHUP`/`SIGUSR2` (upgrade) or `SIGTERM` (stop) in its own loop, without a
/// signal handler of its own.
///
/// [`Signals::new`] **blocks** the signals in the calling thread, which is what makes the
/// kernel queue them for the fd instead of running their default action (for `SIGHUP`,
/// `SIGUSR2`, `SIGTERM`: terminating the process). A signal is taken by any thread that
/// does not block it, so **the signals must be blocked in every thread**: create the
/// `Signals` first thing in `main`, before any thread is spawned (threads inherit the
/// mask of the thread that spawns them). Children started by this crate get an empty
/// signal mask, so a new generation is not affected; it blocks the signals again in its
/// own `main`.
///
/// Dropping a `Signals` closes the fd but leaves the signals blocked: unblocking would run
/// the default action of any that are pending.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use forkexec::{Signal, upgrade::Signals};
/// let sigs = Signals::new(&[Signal::HUP, Signal::USR2])?;
/// assert_eq!(sigs.try_next()?, None);
/// // A signal to ourselves: blocked, so queued for the fd.
/// forkexec::find_process(std::process::id() as i32)?.signal(Signal::USR2)?;
/// assert_eq!(sigs.wait(Some(Duration::from_secs(5)))?, Some(Signal::USR2));
/// assert_eq!(sigs.try_next()?, None);
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `signalfd(2)`, `pthread_sigmask(3)`, `signal(7)`.
#[derive(Debug)]
#[doc(alias = "signalfd")]
#[doc(alias = "Notify")]
pub struct Signals {
    fd: OwnedFd,
}

impl Signals {
    /// Blocks `signals` in the calling thread and opens a close-on-exec, non-blocking
    /// `signalfd` for them.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty list, `SIGKILL` or `SIGSTOP` (which cannot
    /// be caught); [`ErrorKind::Io`] when the kernel refuses the mask or the fd.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{ErrorKind, Signal, upgrade::Signals};
    /// assert_eq!(Signals::new(&[Signal::KILL]).unwrap_err().kind(), ErrorKind::InvalidInput);
    /// let _sigs = Signals::new(&[Signal::TERM, Signal::INT])?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `signalfd(2)` (`SFD_CLOEXEC`, `SFD_NONBLOCK`), `pthread_sigmask(3)` (`SIG_BLOCK`).
    #[doc(alias = "signalfd")]
    #[doc(alias = "Notify")]
    pub fn new(signals: &[Signal]) -> Result<Signals> {
        if signals.is_empty() {
            return Err(Error::invalid("Signals::new: no signal given"));
        }
        for s in signals {
            if *s == Signal::KILL || *s == Signal::STOP {
                return Err(Error::invalid(format!(
                    "Signals::new: {s:?} cannot be caught"
                )));
            }
        }
        let raw: Vec<i32> = signals.iter().map(|s| s.as_raw()).collect();
        let set = SigSet::new(&raw)
            .map_err(|_| Error::invalid(format!("Signals::new: bad signal in {signals:?}")))?;
        set.block().map_err(Error::os)?;
        let fd = set.signalfd().map_err(Error::os)?;
        Ok(Signals { fd })
    }

    /// The next pending signal, without blocking; `None` when none is pending.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when reading the fd fails.
    ///
    /// # Examples
    /// ```
    /// let sigs = forkexec::upgrade::Signals::new(&[forkexec::Signal::USR1])?;
    /// assert_eq!(sigs.try_next()?, None);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `signalfd(2)` (`struct signalfd_siginfo`), `read(2)`.
    pub fn try_next(&self) -> Result<Option<Signal>> {
        // One `struct signalfd_siginfo` is 128 bytes; `ssi_signo` (u32) comes first.
        let mut buf = [0u8; 128];
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(n) if n >= 4 => {
                    let signo = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    return Ok(Some(Signal::from_raw_unchecked(signo as i32)));
                }
                Ok(_) => {
                    return Err(Error::new(ErrorKind::Io, "signalfd: short read"));
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return Ok(None),
                Err(e) => return Err(Error::os(e.raw_os_error())),
            }
        }
    }

    /// Waits for the next signal, at most `timeout` (`None`: forever); `None` when the
    /// time passed first.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when polling or reading the fd fails.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let sigs = forkexec::upgrade::Signals::new(&[forkexec::Signal::USR1])?;
    /// assert_eq!(sigs.wait(Some(Duration::from_millis(10)))?, None);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `poll(2)`, `signalfd(2)`.
    #[doc(alias = "sigtimedwait")]
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Option<Signal>> {
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        loop {
            if let Some(s) = self.try_next()? {
                return Ok(Some(s));
            }
            let left = match (timeout, deadline) {
                (None, _) | (Some(_), None) => None,
                (Some(_), Some(d)) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    Some(left)
                }
            };
            poll_in(self.fd.as_fd(), left)?;
        }
    }
}

/// Polls `fd` for input at most `timeout` (`None`: forever); `true` when it is readable.
pub(crate) fn poll_in(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<bool> {
    crate::sys::wait::poll_readable(fd, timeout)
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
