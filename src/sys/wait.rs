//! Waiting for children: `wait4`, pidfds (public through [`raw`](crate::raw)).

use std::ops::BitOr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use libc::c_int;

use crate::error::{Error, Result, Stage};
use crate::status::{Rusage, Signal, WaitStatus};
use crate::sys;

/// Options for [`waitpid`], [`wait4`] and [`PidFd::wait`].
///
/// # Examples
/// ```
/// use forkexec::raw::WaitOptions;
/// let o = WaitOptions::NOHANG | WaitOptions::UNTRACED;
/// assert!(o.contains(WaitOptions::NOHANG));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WaitOptions(c_int);

impl WaitOptions {
    /// `WNOHANG`: return `None` instead of blocking.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{find_process, raw::{fork_exec, waitpid, ExecPlan, Strategy, WaitOptions}};
    /// let child = fork_exec(&ExecPlan::new("/bin/sleep", ["sleep", "10"])?, &[], Strategy::Auto)?;
    /// assert_eq!(waitpid(child.pid, WaitOptions::NOHANG)?, None); // still running
    /// find_process(child.pid)?.kill()?;
    /// assert!(waitpid(child.pid, WaitOptions::empty())?.is_some());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "WNOHANG")]
    pub const NOHANG: WaitOptions = WaitOptions(libc::WNOHANG);
    /// `WUNTRACED`: also report stopped children.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{find_process, Signal, raw::{fork_exec, waitpid, ExecPlan, Strategy, WaitOptions, WaitStatus}};
    /// let child = fork_exec(&ExecPlan::new("/bin/sleep", ["sleep", "10"])?, &[], Strategy::Auto)?;
    /// let p = find_process(child.pid)?;
    /// p.signal(Signal::STOP)?;
    /// let stopped = WaitStatus::Stopped(Signal::STOP);
    /// assert_eq!(waitpid(child.pid, WaitOptions::UNTRACED)?, Some((child.pid, stopped)));
    /// p.kill()?;
    /// waitpid(child.pid, WaitOptions::empty())?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "WUNTRACED")]
    pub const UNTRACED: WaitOptions = WaitOptions(libc::WUNTRACED);
    /// `WCONTINUED`: also report continued children.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{find_process, Signal, raw::{fork_exec, waitpid, ExecPlan, Strategy, WaitOptions, WaitStatus}};
    /// let child = fork_exec(&ExecPlan::new("/bin/sleep", ["sleep", "10"])?, &[], Strategy::Auto)?;
    /// let p = find_process(child.pid)?;
    /// p.signal(Signal::STOP)?;
    /// waitpid(child.pid, WaitOptions::UNTRACED)?;
    /// p.signal(Signal::CONT)?;
    /// assert_eq!(waitpid(child.pid, WaitOptions::CONTINUED)?, Some((child.pid, WaitStatus::Continued)));
    /// # p.kill()?;
    /// # waitpid(child.pid, WaitOptions::empty())?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "WCONTINUED")]
    pub const CONTINUED: WaitOptions = WaitOptions(libc::WCONTINUED);
    /// `WNOWAIT`: report but leave the child waitable (only for [`PidFd::wait`]).
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{fork_exec, pidfd_open, waitpid, ExecPlan, Strategy, WaitOptions, WaitStatus};
    /// let child = fork_exec(&ExecPlan::new("/bin/true", ["true"])?, &[], Strategy::Auto)?;
    /// let (status, _) = pidfd_open(child.pid)?.wait(WaitOptions::NOWAIT)?.unwrap();
    /// assert_eq!(status, WaitStatus::Exited(0));
    /// // Reported, not reaped: the child can still be waited for.
    /// assert_eq!(waitpid(child.pid, WaitOptions::empty())?, Some((child.pid, status)));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "WNOWAIT")]
    pub const NOWAIT: WaitOptions = WaitOptions(libc::WNOWAIT);

    /// No option: block until the child exits.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::WaitOptions;
    /// assert_eq!(WaitOptions::empty(), WaitOptions::default());
    /// assert!(!WaitOptions::empty().contains(WaitOptions::NOHANG));
    /// ```
    pub const fn empty() -> WaitOptions {
        WaitOptions(0)
    }

    /// Whether every option of `other` is set.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::WaitOptions;
    /// let o = WaitOptions::NOHANG | WaitOptions::UNTRACED;
    /// assert!(o.contains(WaitOptions::UNTRACED) && !o.contains(WaitOptions::CONTINUED));
    /// ```
    pub const fn contains(self, other: WaitOptions) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for WaitOptions {
    type Output = WaitOptions;
    fn bitor(self, rhs: WaitOptions) -> WaitOptions {
        WaitOptions(self.0 | rhs.0)
    }
}

fn wait_err(e: i32) -> Error {
    Error::os(e).with_stage(Stage::Wait)
}

/// `waitpid(pid, options)`: `Some((pid, status))` for a child that changed state, `None`
/// with `NOHANG` when none did. `pid` may be `-1` (any child) or `-pgid`.
///
/// # Errors
/// [`ErrorKind::Io`](crate::ErrorKind::Io) with `ECHILD` when `pid` is not a child of this process (or was reaped
/// already), `EINVAL` for bad options. `EINTR` is retried.
///
/// # Examples
/// ```
/// use forkexec::raw::{waitpid, WaitOptions};
/// let err = waitpid(1, WaitOptions::NOHANG).unwrap_err();
/// assert_eq!(err.errno(), Some(libc::ECHILD));
/// ```
///
/// # References
/// `waitpid(2)`.
pub fn waitpid(pid: i32, options: WaitOptions) -> Result<Option<(i32, WaitStatus)>> {
    Ok(wait4(pid, options)?.map(|(pid, status, _)| (pid, status)))
}

/// `wait4(pid, options)`: as [`waitpid`], plus the child's resource usage.
///
/// # Errors
/// As [`waitpid`].
///
/// # Examples
/// ```
/// use forkexec::raw::{wait4, WaitOptions, WaitStatus, ExecPlan, fork_exec, Strategy};
/// let child = fork_exec(&ExecPlan::new("/bin/sh", ["sh", "-c", "exit 7"])?, &[], Strategy::Auto)?;
/// let (pid, status, _usage) = wait4(child.pid, WaitOptions::empty())?.unwrap();
/// assert_eq!((pid, status), (child.pid, WaitStatus::Exited(7)));
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `wait4(2)`.
#[doc(alias = "syscall.Wait4")]
pub fn wait4(pid: i32, options: WaitOptions) -> Result<Option<(i32, WaitStatus, Rusage)>> {
    let (got, status, ru) = sys::wait4(pid, options.0).map_err(wait_err)?;
    if got == 0 {
        return Ok(None);
    }
    Ok(Some((
        got,
        WaitStatus::from_raw(status),
        Rusage::from_raw(&ru),
    )))
}

/// An owned pidfd: a handle on one process that can never refer to another, even after the
/// pid is reused. Close-on-exec.
///
/// # Examples
/// ```
/// use forkexec::{Signal, raw::{ExecPlan, fork_exec, Strategy, WaitOptions, WaitStatus}};
/// let child = fork_exec(&ExecPlan::new("/bin/sleep", ["sleep", "10"])?, &[], Strategy::Auto)?;
/// let pidfd = child.pidfd.unwrap();
/// pidfd.send_signal(Signal::TERM)?;
/// let (status, _) = pidfd.wait(WaitOptions::empty())?.unwrap();
/// assert_eq!(status, WaitStatus::Signaled { signal: Signal::TERM, core_dumped: false });
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
    pid: i32,
}

/// Opens a pidfd for `pid` (which must exist; for a child, before it is reaped).
///
/// # Errors
/// [`ErrorKind::Io`](crate::ErrorKind::Io) with `ESRCH` for no such process, `ENOSYS` before Linux 5.3;
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for `pid <= 0`.
///
/// # Examples
/// ```
/// let me = forkexec::raw::pidfd_open(std::process::id() as i32)?;
/// assert_eq!(me.pid(), std::process::id() as i32);
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `pidfd_open(2)`.
pub fn pidfd_open(pid: i32) -> Result<PidFd> {
    if pid <= 0 {
        return Err(Error::invalid(format!("pidfd_open: invalid pid {pid}")));
    }
    let fd = sys::pidfd_open(pid).map_err(Error::os)?;
    Ok(PidFd { fd, pid })
}

impl PidFd {
    pub(crate) fn from_parts(fd: OwnedFd, pid: i32) -> PidFd {
        PidFd { fd, pid }
    }

    /// The pid this pidfd was opened for.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{fork_exec, waitpid, ExecPlan, Strategy, WaitOptions};
    /// let child = fork_exec(&ExecPlan::new("/bin/true", ["true"])?, &[], Strategy::Auto)?;
    /// if let Some(pidfd) = &child.pidfd {
    ///     assert_eq!(pidfd.pid(), child.pid);
    /// }
    /// waitpid(child.pid, WaitOptions::empty())?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig` to the process (never to a process that reused its pid).
    ///
    /// # Errors
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) with `ESRCH` once the process has been reaped (an exited child not
    /// yet waited for still accepts signals, which it ignores);
    /// [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Signal, raw::{fork_exec, pidfd_open, ExecPlan, Strategy, WaitOptions, WaitStatus}};
    /// let child = fork_exec(&ExecPlan::new("/bin/sleep", ["sleep", "10"])?, &[], Strategy::Auto)?;
    /// let pidfd = pidfd_open(child.pid)?;
    /// pidfd.send_signal(Signal::INT)?;
    /// let (status, _) = pidfd.wait(WaitOptions::empty())?.unwrap();
    /// assert_eq!(status, WaitStatus::Signaled { signal: Signal::INT, core_dumped: false });
    /// // Reaped: the pid may be reused, but this pidfd reaches nothing any more.
    /// assert_eq!(pidfd.send_signal(Signal::INT).unwrap_err().errno(), Some(libc::ESRCH));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `pidfd_send_signal(2)`.
    #[doc(alias = "pidfd_send_signal")]
    pub fn send_signal(&self, sig: Signal) -> Result<()> {
        sys::pidfd_send_signal(self.fd.as_fd(), sig.as_raw()).map_err(Error::os)
    }

    /// Waits for the process (which must be a child of this process) through
    /// `waitid(P_PIDFD)`: `Some((status, usage))`, or `None` with `NOHANG` when it has
    /// not changed state. `WEXITED` is implied.
    ///
    /// # Errors
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) with `ECHILD` when it is not a child or was reaped already.
    ///
    /// # Examples
    /// ```
    /// use forkexec::Signal;
    /// use forkexec::raw::{fork_exec, pidfd_open, ExecPlan, Strategy, WaitOptions, WaitStatus};
    /// let child = fork_exec(&ExecPlan::new("/bin/sleep", ["sleep", "10"])?, &[], Strategy::Auto)?;
    /// let pidfd = pidfd_open(child.pid)?;
    /// assert!(pidfd.wait(WaitOptions::NOHANG)?.is_none()); // still running
    /// pidfd.send_signal(Signal::KILL)?;
    /// let (status, _usage) = pidfd.wait(WaitOptions::empty())?.unwrap();
    /// assert_eq!(status, WaitStatus::Signaled { signal: Signal::KILL, core_dumped: false });
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `waitid(2)` (`P_PIDFD`).
    #[doc(alias = "waitid")]
    pub fn wait(&self, options: WaitOptions) -> Result<Option<(WaitStatus, Rusage)>> {
        let r = sys::waitid(
            libc::P_PIDFD,
            self.fd.as_raw_fd() as libc::id_t,
            options.0 | libc::WEXITED,
            true,
        )
        .map_err(wait_err)?;
        Ok(r.and_then(|c| WaitStatus::from_siginfo(c.code, c.status).map(|s| (s, c.rusage))))
    }

    /// Whether the process has exited (the pidfd polls readable), waiting at most `timeout`
    /// (`None`: forever).
    ///
    /// # Errors
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) from `poll`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Signal, raw::{fork_exec, pidfd_open, ExecPlan, Strategy, WaitOptions}};
    /// let child = fork_exec(&ExecPlan::new("/bin/sleep", ["sleep", "10"])?, &[], Strategy::Auto)?;
    /// let pidfd = pidfd_open(child.pid)?;
    /// assert!(!pidfd.wait_readable(Some(Duration::from_millis(10)))?);
    /// pidfd.send_signal(Signal::KILL)?;
    /// assert!(pidfd.wait_readable(None)?); // exited (not yet reaped)
    /// pidfd.wait(WaitOptions::empty())?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `poll(2)`, `pidfd_open(2)`.
    #[doc(alias = "poll")]
    pub fn wait_readable(&self, timeout: Option<Duration>) -> Result<bool> {
        poll_readable(self.fd.as_fd(), timeout)
    }
}

/// Polls one fd for readability at most `timeout` (`None`: forever); `true` when readable.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<bool> {
    // A timeout beyond what an Instant can hold is no deadline.
    let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
    let mut p = [sys::poll_in(fd.as_raw_fd())];
    sys::poll_until(&mut p, deadline)
        .map(|n| n > 0)
        .map_err(Error::os)
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<PidFd> for OwnedFd {
    fn from(p: PidFd) -> OwnedFd {
        p.fd
    }
}

impl IntoRawFd for PidFd {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

impl Rusage {
    /// The C struct, with the fields Linux does not maintain (`ru_ixrss`, `ru_idrss`,
    /// `ru_isrss`, `ru_nswap`, `ru_msgsnd`, `ru_msgrcv`, `ru_nsignals`) zero, as the kernel
    /// reports them.
    ///
    /// # Examples
    /// ```
    /// let usage = *forkexec::Cmd::new("true").status()?.rusage();
    /// assert_eq!(usage.as_raw().ru_maxrss as u64, usage.max_rss_kib());
    /// assert_eq!(usage.as_raw().ru_nswap, 0);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn as_raw(&self) -> libc::rusage {
        // SAFETY: `rusage` is plain integers, for which all-zero is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        ru.ru_utime = self.utime;
        ru.ru_stime = self.stime;
        ru.ru_maxrss = self.maxrss;
        ru.ru_minflt = self.minflt;
        ru.ru_majflt = self.majflt;
        ru.ru_inblock = self.inblock;
        ru.ru_oublock = self.oublock;
        ru.ru_nvcsw = self.nvcsw;
        ru.ru_nivcsw = self.nivcsw;
        ru
    }

    /// All zero (a state built without a wait, in tests).
    #[cfg(test)]
    pub(crate) fn zeroed() -> Rusage {
        // SAFETY: `rusage` is plain integers, for which all-zero is a valid value.
        Rusage::from_raw(&unsafe { std::mem::zeroed() })
    }
}
