//! Safe wrappers over single system calls, and the spawn engine underneath
//! [`Cmd`](crate::Cmd) and [`start_process`](crate::start_process).
//!
//! Every fd created here is close-on-exec from birth and returned as an [`OwnedFd`].

use std::ffi::CStr;
use std::fmt;
use std::mem::MaybeUninit;
use std::ops::BitOr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use libc::c_int;

pub use crate::cstr::{CStringArray, merge_env};
pub use crate::spawn::{ChildFd, ExecPlan, Spawned, Strategy, fork_exec};

use crate::error::{Error, ErrorKind, Result, Stage};
use crate::signal::Signal;
use crate::sys;

/// Flags for [`pipe_with`]. `O_CLOEXEC` is always set and not listed.
///
/// # Examples
/// ```
/// use forkexec::raw::PipeFlags;
/// let f = PipeFlags::NONBLOCK | PipeFlags::DIRECT;
/// assert!(f.contains(PipeFlags::NONBLOCK));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PipeFlags(c_int);

impl PipeFlags {
    /// `O_NONBLOCK` on both ends.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{pipe_with, PipeFlags};
    /// let (r, _w) = pipe_with(PipeFlags::NONBLOCK)?;
    /// // The pipe is empty: the read fails at once instead of blocking.
    /// assert_eq!(rustix::io::read(&r, &mut [0u8; 1]), Err(rustix::io::Errno::AGAIN));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "O_NONBLOCK")]
    pub const NONBLOCK: PipeFlags = PipeFlags(libc::O_NONBLOCK);
    /// `O_DIRECT`: packet mode (each write is one packet; a read returns at most one).
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{pipe_with, PipeFlags};
    /// let (r, w) = pipe_with(PipeFlags::DIRECT)?;
    /// rustix::io::write(&w, b"ab")?;
    /// rustix::io::write(&w, b"cd")?;
    /// assert_eq!(rustix::io::read(&r, &mut [0u8; 8])?, 2); // one packet, not 4 bytes
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "O_DIRECT")]
    pub const DIRECT: PipeFlags = PipeFlags(libc::O_DIRECT);

    /// No extra flag.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::PipeFlags;
    /// assert_eq!(PipeFlags::empty(), PipeFlags::default());
    /// assert!(!PipeFlags::empty().contains(PipeFlags::NONBLOCK));
    /// ```
    pub const fn empty() -> PipeFlags {
        PipeFlags(0)
    }

    /// Whether every flag of `other` is set.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::PipeFlags;
    /// let f = PipeFlags::NONBLOCK | PipeFlags::DIRECT;
    /// assert!(f.contains(PipeFlags::NONBLOCK) && f.contains(PipeFlags::empty()));
    /// assert!(!PipeFlags::NONBLOCK.contains(f));
    /// ```
    pub const fn contains(self, other: PipeFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for PipeFlags {
    type Output = PipeFlags;
    fn bitor(self, rhs: PipeFlags) -> PipeFlags {
        PipeFlags(self.0 | rhs.0)
    }
}

/// Creates a pipe, `(read end, write end)`, both close-on-exec.
///
/// # Errors
/// [`ErrorKind::Io`] with `EMFILE`/`ENFILE` when the fd table is full.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// let (r, w) = forkexec::raw::pipe()?;
/// std::fs::File::from(w).write_all(b"hi")?;
/// let mut s = String::new();
/// std::fs::File::from(r).read_to_string(&mut s)?;
/// assert_eq!(s, "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// `pipe2(2)`.
#[doc(alias = "pipe2")]
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe_with(PipeFlags::empty())
}

/// Creates a pipe with extra `flags` (always close-on-exec).
///
/// # Errors
/// As [`pipe`]; [`ErrorKind::InvalidInput`] when the kernel rejects a flag.
///
/// # Examples
/// ```
/// use forkexec::raw::{pipe_with, PipeFlags};
/// let (r, _w) = pipe_with(PipeFlags::NONBLOCK)?;
/// let mut buf = [0u8; 1];
/// let e = rustix::io::read(&r, &mut buf).unwrap_err();
/// assert_eq!(e, rustix::io::Errno::AGAIN);
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `pipe2(2)`.
#[doc(alias = "pipe2")]
pub fn pipe_with(flags: PipeFlags) -> Result<(OwnedFd, OwnedFd)> {
    sys::pipe2(flags.0).map_err(|e| Error::os(e).with_stage(Stage::Pipe))
}

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

/// How a child changed state.
///
/// # Examples
/// ```
/// use forkexec::{Signal, raw::WaitStatus};
/// assert_eq!(WaitStatus::from_raw(3 << 8), WaitStatus::Exited(3));
/// assert_eq!(WaitStatus::from_raw(9), WaitStatus::Signaled { signal: Signal::KILL, core_dumped: false });
/// let s = WaitStatus::Signaled { signal: Signal::SEGV, core_dumped: true };
/// assert_eq!(WaitStatus::from_raw(s.to_raw()), s);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "syscall.WaitStatus")]
pub enum WaitStatus {
    /// Exited with this code (0..=255).
    Exited(i32),
    /// Killed by a signal.
    Signaled {
        /// The signal.
        signal: Signal,
        /// Whether a core dump was written.
        core_dumped: bool,
    },
    /// Stopped by a signal (with `UNTRACED`).
    Stopped(Signal),
    /// Continued by `SIGCONT` (with `CONTINUED`).
    Continued,
}

impl WaitStatus {
    /// Decodes a `wait(2)` status word.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Signal, raw::WaitStatus};
    /// assert_eq!(WaitStatus::from_raw(0x0300), WaitStatus::Exited(3));
    /// assert_eq!(WaitStatus::from_raw(0x137f), WaitStatus::Stopped(Signal::STOP));
    /// assert_eq!(WaitStatus::from_raw(0xffff), WaitStatus::Continued);
    /// ```
    ///
    /// # References
    /// `wait(2)` (`WIFEXITED`, `WEXITSTATUS`, `WIFSIGNALED`, `WTERMSIG`, ...).
    #[doc(alias("WIFEXITED", "WEXITSTATUS", "WIFSIGNALED", "WTERMSIG"))]
    pub fn from_raw(status: i32) -> WaitStatus {
        if libc::WIFEXITED(status) {
            WaitStatus::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            WaitStatus::Signaled {
                signal: Signal::from_raw_unchecked(libc::WTERMSIG(status)),
                core_dumped: libc::WCOREDUMP(status),
            }
        } else if libc::WIFSTOPPED(status) {
            WaitStatus::Stopped(Signal::from_raw_unchecked(libc::WSTOPSIG(status)))
        } else {
            WaitStatus::Continued
        }
    }

    /// Encodes the status word `wait(2)` would return (the inverse of [`from_raw`](Self::from_raw)).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Signal, raw::WaitStatus};
    /// assert_eq!(WaitStatus::Exited(1).to_raw(), 0x100);
    /// let raw = WaitStatus::Signaled { signal: Signal::KILL, core_dumped: false }.to_raw();
    /// assert!(libc::WIFSIGNALED(raw) && libc::WTERMSIG(raw) == libc::SIGKILL);
    /// ```
    pub fn to_raw(self) -> i32 {
        match self {
            WaitStatus::Exited(code) => (code & 0xff) << 8,
            WaitStatus::Signaled {
                signal,
                core_dumped,
            } => (signal.as_raw() & 0x7f) | if core_dumped { 0x80 } else { 0 },
            WaitStatus::Stopped(sig) => ((sig.as_raw() & 0xff) << 8) | 0x7f,
            WaitStatus::Continued => 0xffff,
        }
    }

    /// Decodes the `si_code`/`si_status` pair `waitid(2)` reports; `None` for a code that
    /// is not a child's state change.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Signal, raw::WaitStatus};
    /// assert_eq!(WaitStatus::from_siginfo(libc::CLD_EXITED, 2), Some(WaitStatus::Exited(2)));
    /// let dumped = WaitStatus::Signaled { signal: Signal::SEGV, core_dumped: true };
    /// assert_eq!(WaitStatus::from_siginfo(libc::CLD_DUMPED, libc::SIGSEGV), Some(dumped));
    /// assert_eq!(WaitStatus::from_siginfo(0, 0), None);
    /// ```
    ///
    /// # References
    /// `waitid(2)`, `sigaction(2)` (`siginfo_t`).
    pub fn from_siginfo(code: i32, status: i32) -> Option<WaitStatus> {
        Some(match code {
            libc::CLD_EXITED => WaitStatus::Exited(status),
            libc::CLD_KILLED => WaitStatus::Signaled {
                signal: Signal::from_raw_unchecked(status),
                core_dumped: false,
            },
            libc::CLD_DUMPED => WaitStatus::Signaled {
                signal: Signal::from_raw_unchecked(status),
                core_dumped: true,
            },
            libc::CLD_STOPPED | libc::CLD_TRAPPED => {
                WaitStatus::Stopped(Signal::from_raw_unchecked(status))
            }
            libc::CLD_CONTINUED => WaitStatus::Continued,
            _ => return None,
        })
    }
}

/// Resource usage of a reaped child (`struct rusage`).
///
/// # Examples
/// ```
/// use forkexec::raw::{wait4, WaitOptions, ExecPlan, fork_exec, Strategy};
/// let child = fork_exec(&ExecPlan::new("/bin/true", ["true"])?, &[], Strategy::Auto)?;
/// let (_, _, usage) = wait4(child.pid, WaitOptions::empty())?.unwrap();
/// assert!(usage.user_time() + usage.system_time() < std::time::Duration::from_secs(5));
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `getrusage(2)`, `wait4(2)`.
#[derive(Clone, Copy)]
#[doc(alias("rusage", "syscall.Rusage"))]
pub struct Rusage {
    // The fields Linux maintains (getrusage(2)); the others are always zero there. Kept
    // apart so that a process state is small enough to move without a memcpy call.
    utime: libc::timeval,
    stime: libc::timeval,
    maxrss: libc::c_long,
    minflt: libc::c_long,
    majflt: libc::c_long,
    inblock: libc::c_long,
    oublock: libc::c_long,
    nvcsw: libc::c_long,
    nivcsw: libc::c_long,
}

impl PartialEq for Rusage {
    fn eq(&self, o: &Rusage) -> bool {
        let t = |a: libc::timeval| (a.tv_sec, a.tv_usec);
        (t(self.utime), t(self.stime)) == (t(o.utime), t(o.stime))
            && [self.maxrss, self.minflt, self.majflt, self.inblock]
                == [o.maxrss, o.minflt, o.majflt, o.inblock]
            && [self.oublock, self.nvcsw, self.nivcsw] == [o.oublock, o.nvcsw, o.nivcsw]
    }
}

impl Eq for Rusage {}

fn tv(t: libc::timeval) -> Duration {
    Duration::new(
        t.tv_sec.max(0) as u64,
        (t.tv_usec.clamp(0, 999_999) as u32) * 1000,
    )
}

impl Rusage {
    /// User CPU time (`ru_utime`).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let usage = *forkexec::Cmd::new("true").status()?.rusage();
    /// assert!(usage.user_time() + usage.system_time() > Duration::ZERO); // it ran
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn user_time(&self) -> Duration {
        tv(self.utime)
    }
    /// System CPU time (`ru_stime`).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let usage = *forkexec::Cmd::new("true").status()?.rusage();
    /// let raw = usage.as_raw().ru_stime;
    /// assert_eq!(usage.system_time(), Duration::new(raw.tv_sec as u64, raw.tv_usec as u32 * 1000));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn system_time(&self) -> Duration {
        tv(self.stime)
    }
    /// Peak resident set size in KiB (`ru_maxrss`).
    ///
    /// # Examples
    /// ```
    /// let usage = *forkexec::Cmd::new("true").status()?.rusage();
    /// assert!(usage.max_rss_kib() > 0);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn max_rss_kib(&self) -> u64 {
        self.maxrss.max(0) as u64
    }
    /// Minor page faults (`ru_minflt`).
    ///
    /// # Examples
    /// ```
    /// // Loading a program faults its pages in.
    /// let usage = *forkexec::Cmd::new("true").status()?.rusage();
    /// assert!(usage.minor_faults() > 0);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn minor_faults(&self) -> u64 {
        self.minflt.max(0) as u64
    }
    /// Major page faults (`ru_majflt`): those that needed I/O.
    ///
    /// # Examples
    /// ```
    /// let usage = *forkexec::Cmd::new("true").status()?.rusage();
    /// assert_eq!(usage.major_faults(), usage.as_raw().ru_majflt as u64);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn major_faults(&self) -> u64 {
        self.majflt.max(0) as u64
    }
    /// Voluntary context switches (`ru_nvcsw`).
    ///
    /// # Examples
    /// ```
    /// // A sleeping process gives up the CPU at least once.
    /// let usage = *forkexec::Cmd::new("sleep").arg("0.01").status()?.rusage();
    /// assert!(usage.voluntary_switches() >= 1);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn voluntary_switches(&self) -> u64 {
        self.nvcsw.max(0) as u64
    }
    /// Involuntary context switches (`ru_nivcsw`).
    ///
    /// # Examples
    /// ```
    /// let usage = *forkexec::Cmd::new("true").status()?.rusage();
    /// assert_eq!(usage.involuntary_switches(), usage.as_raw().ru_nivcsw as u64);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn involuntary_switches(&self) -> u64 {
        self.nivcsw.max(0) as u64
    }
    /// Blocks read from storage by file systems (`ru_inblock`, in 512-byte units).
    ///
    /// # Examples
    /// ```
    /// let usage = *forkexec::Cmd::new("true").status()?.rusage();
    /// assert_eq!(usage.block_reads(), usage.as_raw().ru_inblock as u64);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn block_reads(&self) -> u64 {
        self.inblock.max(0) as u64
    }
    /// Blocks written to storage by file systems (`ru_oublock`, in 512-byte units).
    ///
    /// # Examples
    /// ```
    /// let usage = *forkexec::Cmd::new("true").status()?.rusage();
    /// assert_eq!(usage.block_writes(), usage.as_raw().ru_oublock as u64);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn block_writes(&self) -> u64 {
        self.oublock.max(0) as u64
    }
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
}

impl fmt::Debug for Rusage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rusage")
            .field("user_time", &self.user_time())
            .field("system_time", &self.system_time())
            .field("max_rss_kib", &self.max_rss_kib())
            .finish()
    }
}

impl Rusage {
    /// The maintained fields of a C struct.
    pub(crate) fn from_raw(ru: &libc::rusage) -> Rusage {
        Rusage {
            utime: ru.ru_utime,
            stime: ru.ru_stime,
            maxrss: ru.ru_maxrss,
            minflt: ru.ru_minflt,
            majflt: ru.ru_majflt,
            inblock: ru.ru_inblock,
            oublock: ru.ru_oublock,
            nvcsw: ru.ru_nvcsw,
            nivcsw: ru.ru_nivcsw,
        }
    }

    /// All zero (a state built without a wait, in tests).
    #[cfg(test)]
    pub(crate) fn zeroed() -> Rusage {
        // SAFETY: `rusage` is plain integers, for which all-zero is a valid value.
        Rusage::from_raw(&unsafe { std::mem::zeroed() })
    }
}

fn wait_err(e: i32) -> Error {
    Error::os(e).with_stage(Stage::Wait)
}

/// `waitpid(pid, options)`: `Some((pid, status))` for a child that changed state, `None`
/// with `NOHANG` when none did. `pid` may be `-1` (any child) or `-pgid`.
///
/// # Errors
/// [`ErrorKind::Io`] with `ECHILD` when `pid` is not a child of this process (or was reaped
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

/// Replaces the current process image: `execve(path, argv, envp)`. It returns only on
/// failure, with the error.
///
/// # Examples
/// ```
/// use forkexec::{ErrorKind, raw::{execve, CStringArray}};
/// let argv = CStringArray::new(["nope"])?;
/// let envp = CStringArray::from_env::<_, &str, &str>([])?;
/// let err = execve(c"/no/such/file", &argv, &envp);
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `execve(2)`.
#[doc(alias = "syscall.Exec")]
pub fn execve(path: &CStr, argv: &CStringArray, envp: &CStringArray) -> Error {
    // SAFETY: both arrays are NULL-terminated arrays of NUL-terminated strings.
    let errno = unsafe { sys::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
    Error::from_errno(Stage::Exec, errno).with_path(path)
}

/// Which side of a [`fork`] this is.
///
/// # Examples
/// ```
/// use forkexec::raw::{fork_unchecked, waitpid, ForkResult, WaitOptions, WaitStatus};
/// // SAFETY: the child only calls _exit.
/// match unsafe { fork_unchecked() }? {
///     ForkResult::Child => unsafe { libc::_exit(4) },
///     ForkResult::Parent { child } => {
///         assert_eq!(waitpid(child, WaitOptions::empty())?, Some((child, WaitStatus::Exited(4))));
///     }
/// }
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkResult {
    /// The parent, with the child's pid.
    Parent {
        /// The child's pid.
        child: i32,
    },
    /// The child.
    Child,
}

/// `fork()`, refused unless this process has exactly one thread: only then may the child
/// do anything it likes (allocate, lock, print). In a multi-threaded process use
/// [`fork_exec`] or the `unsafe` [`fork_unchecked`].
///
/// The thread count comes from `/proc/self/stat`, trusted only when it is procfs's own
/// file: `/proc` must be the root of a procfs mount, `self/stat` must be reached without
/// crossing a mount point (nothing bind-mounted over it: `openat2` with
/// `RESOLVE_NO_XDEV`, Linux 5.6+), and the opened file itself must be on a procfs
/// (`fstatfs` on its fd). An unprivileged process can mount over `/proc` in a user
/// namespace (`unshare -Urm`), so a plain read could be told "1 thread" by a fake.
///
/// # Errors
/// [`ErrorKind::MultiThreaded`] when another thread exists, or when the thread count
/// cannot be verified (something other than procfs at `/proc` or over `/proc/self/stat`);
/// no child is created. [`ErrorKind::Io`] (`EAGAIN`, `ENOMEM`) when the kernel refuses; an
/// I/O error when `/proc/self/stat` cannot be read to count the threads.
///
/// # Examples
/// ```
/// use forkexec::{ErrorKind, raw::fork};
/// // Doctests run on the main thread, but the test harness may have others: both outcomes
/// // are fine; a refusal must be the typed one.
/// match fork() {
///     Ok(forkexec::raw::ForkResult::Child) => unsafe { libc::_exit(0) },
///     Ok(forkexec::raw::ForkResult::Parent { child }) => {
///         forkexec::raw::waitpid(child, forkexec::raw::WaitOptions::empty())?;
///     }
///     Err(e) => assert_eq!(e.kind(), ErrorKind::MultiThreaded),
/// }
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `fork(2)`, `proc(5)` (`/proc/self/stat`), `openat2(2)`, `statfs(2)`.
pub fn fork() -> Result<ForkResult> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(Error::new(
            ErrorKind::MultiThreaded,
            format!("fork refused: the process has {threads} threads"),
        ));
    }
    // SAFETY: single-threaded, so the child inherits no lock held by another thread.
    unsafe { fork_unchecked() }
}

/// The number of threads of this process: field 20 of `/proc/self/stat`, read through an
/// fd that [`open_procfs`] verified.
fn thread_count() -> Result<usize> {
    let fd = open_procfs(std::path::Path::new("/proc"), "self/stat")?;
    // The line is a few hundred bytes; 4 KiB holds it with room to spare, one read.
    let mut stat = Vec::with_capacity(4096);
    loop {
        match rustix::io::read(&fd, rustix::buffer::spare_capacity(&mut stat)) {
            Ok(0) => break,
            Ok(_) if stat.len() < stat.capacity() => {}
            Ok(_) => stat.reserve(4096),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::os(e.raw_os_error())),
        }
    }
    parse_thread_count(&stat).ok_or_else(|| {
        Error::new(
            ErrorKind::Io,
            "fork refused: malformed /proc/self/stat (no thread count)",
        )
    })
}

/// Field 20 (`num_threads`) of a `/proc/<pid>/stat` line.
fn parse_thread_count(stat: &[u8]) -> Option<usize> {
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    let close = memchr::memrchr(b')', stat)?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // After ')' come fields 3.. ; num_threads is field 20, i.e. the 18th of these.
    rest.split_ascii_whitespace().nth(17)?.parse().ok()
}

/// The refusal when the thread count cannot be trusted.
fn unverifiable(why: String) -> Error {
    Error::new(
        ErrorKind::MultiThreaded,
        format!("fork refused: the thread count cannot be verified: {why}"),
    )
}

/// Whether the open `fd` is on a procfs (`fstatfs`: `PROC_SUPER_MAGIC`). The check is on
/// the fd, so it is about the file actually opened, whatever is mounted where.
fn on_procfs(fd: BorrowedFd<'_>) -> Result<bool> {
    let st = rustix::fs::fstatfs(fd).map_err(|e| Error::os(e.raw_os_error()))?;
    Ok(st.f_type == rustix::fs::PROC_SUPER_MAGIC)
}

/// Opens `rel` (relative, no `..`) under `root` for reading, only if it is procfs's own
/// file: `root` is the root directory of a procfs mount (on a procfs, inode 1), `rel` is
/// reached from it without crossing a mount point, and the opened file is on a procfs.
/// The tests call it with other roots.
fn open_procfs(root: &std::path::Path, rel: &str) -> Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let shown = || format!("{}/{rel}", root.display());
    let os = |e: rustix::io::Errno| Error::os(e.raw_os_error()).with_path(shown());
    let dir = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(os)?;
    // PROC_ROOT_INO: the root of every procfs mount is inode 1; a procfs subdirectory (a
    // /proc/<pid> bind-mounted at /proc) is not.
    let root_ino = rustix::fs::fstat(&dir).map_err(os)?.st_ino;
    if !on_procfs(dir.as_fd())? || root_ino != 1 {
        return Err(unverifiable(format!(
            "{} is not the root of a procfs",
            root.display()
        )));
    }
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    let file = match rustix::fs::openat2(
        &dir,
        rel,
        flags,
        Mode::empty(),
        ResolveFlags::NO_XDEV | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(f) => f,
        Err(rustix::io::Errno::XDEV) => {
            return Err(unverifiable(format!(
                "something is mounted over {}",
                shown()
            )));
        }
        // No openat2 (Linux < 5.6, or a seccomp filter refusing it): a bind mount over
        // the file cannot be seen; the file system check on the fd below still holds.
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
            rustix::fs::openat(&dir, rel, flags, Mode::empty()).map_err(os)?
        }
        Err(e) => return Err(os(e)),
    };
    if !on_procfs(file.as_fd())? {
        return Err(unverifiable(format!("{} is not on a procfs", shown())));
    }
    Ok(file)
}

/// `fork()` without the single-thread check.
///
/// # Safety
/// When the process has other threads, in the child, until it calls `execve` or `_exit`:
/// - call only async-signal-safe functions (see `signal-safety(7)`): no allocation, no
///   `println!`, no lock (another thread may have held it at the fork and never will
///   release it in the child);
/// - do not unwind or return into code that assumes the other threads exist;
/// - do not drop values owning heap memory or fds shared with the parent's threads'
///   bookkeeping.
///
/// # Errors
/// [`ErrorKind::Io`] (`EAGAIN`, `ENOMEM`).
///
/// # Examples
/// ```
/// use forkexec::raw::{fork_unchecked, ForkResult, waitpid, WaitOptions, WaitStatus};
/// // SAFETY: the child only calls _exit.
/// match unsafe { fork_unchecked() }? {
///     ForkResult::Child => unsafe { libc::_exit(5) },
///     ForkResult::Parent { child } => {
///         assert_eq!(waitpid(child, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(5));
///     }
/// }
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `fork(2)`, `signal-safety(7)`.
#[doc(alias = "fork")]
pub unsafe fn fork_unchecked() -> Result<ForkResult> {
    // SAFETY: forwarded to the caller.
    match unsafe { sys::fork() } {
        Ok(0) => Ok(ForkResult::Child),
        Ok(child) => Ok(ForkResult::Parent { child }),
        Err(e) => Err(Error::os(e).with_stage(Stage::Fork)),
    }
}

struct Trampoline<'a, F> {
    body: &'a mut F,
}

extern "C" fn trampoline<F: FnMut() -> c_int>(arg: *mut libc::c_void) -> c_int {
    // SAFETY: `arg` is the `Trampoline` of `clone_vfork`'s frame, alive until we exit.
    let t = unsafe { &mut *arg.cast::<Trampoline<'_, F>>() };
    let code = (t.body)();
    // SAFETY: leaving the child without returning into the parent's stack.
    unsafe { libc::_exit(code) }
}

/// `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)` running `body` as the child on `stack`, with
/// this thread suspended until the child calls `execve` or exits. Never a `vfork()` that
/// returns twice: the child has its own stack and ends in `_exit(body())` if it returns.
/// Returns the child's pid. All signals are blocked in the parent for the duration, the C
/// library's internal ones (32 and 33 with glibc) included, and `body` starts with that
/// full mask: a body that calls `execve` should first set the mask the program is to
/// start with (`rt_sigprocmask`), or the program inherits every signal blocked.
///
/// For the common case (fd moves, chdir, `execve`) use the safe [`vfork_exec`].
///
/// # Safety
/// `body` runs in this process's memory while the other threads keep running:
/// - it must only call async-signal-safe functions, must not allocate, lock, panic or
///   unwind, and must not drop anything that owns heap memory;
/// - it may write only to memory it owns on `stack` or that this thread prepared for it
///   (this thread is suspended; other threads are not);
/// - credentials must be changed with raw syscalls, never glibc's `setuid` family (which
///   would signal the parent's threads);
/// - `stack` must be large enough for `body` (a few KiB suffice for system calls).
///
/// # Errors
/// [`ErrorKind::Io`] when `clone` fails (`EAGAIN`, `ENOMEM`, `EINVAL` where `CLONE_VM` is
/// filtered).
///
/// # Examples
/// ```
/// use std::mem::MaybeUninit;
/// use forkexec::raw::{clone_vfork, waitpid, WaitOptions, WaitStatus};
/// let mut stack = [MaybeUninit::<u8>::uninit(); 16 * 1024];
/// // SAFETY: the body only returns a constant.
/// let pid = unsafe { clone_vfork(&mut stack, &mut || 3) }?;
/// assert_eq!(waitpid(pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(3));
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `clone(2)`, `vfork(2)`.
#[doc(alias("vfork", "clone", "CLONE_VFORK"))]
pub unsafe fn clone_vfork<F: FnMut() -> c_int>(
    stack: &mut [MaybeUninit<u8>],
    body: &mut F,
) -> Result<i32> {
    let mut t = Trampoline { body };
    let old = sys::block_all_signals();
    // SAFETY: contract forwarded to the caller; `t` and `stack` outlive the call.
    let r = unsafe {
        sys::clone_vfork(
            trampoline::<F>,
            (&mut t as *mut Trampoline<'_, F>).cast(),
            stack,
            false,
            libc::SIGCHLD,
        )
    };
    sys::restore_signals(old);
    r.map(|(pid, _)| pid)
        .map_err(|e| Error::os(e).with_stage(Stage::Fork))
}

/// The safe vfork: runs `plan` in a `clone(CLONE_VM|CLONE_VFORK)` child (fd moves, chdir,
/// attributes, `execve`) and returns the pid, or the child's failure (stage + errno).
/// Shorthand for [`fork_exec`] with [`Strategy::Vfork`].
///
/// # Errors
/// As [`fork_exec`]; [`ErrorKind::Unsupported`] where `CLONE_VM` does not share memory
/// (valgrind).
///
/// # Examples
/// ```
/// use forkexec::raw::{vfork_exec, ExecPlan, waitpid, WaitOptions, WaitStatus};
/// let child = vfork_exec(&ExecPlan::new("/bin/true", ["true"])?, &[])?;
/// assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(0));
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `clone(2)`, `execve(2)`.
#[doc(alias("vfork", "clone"))]
pub fn vfork_exec(plan: &ExecPlan, fds: &[ChildFd<'_>]) -> Result<Spawned> {
    fork_exec(plan, fds, Strategy::Vfork)
}

/// Runs `plan` through the C library's `posix_spawn` (file actions for the fds, chdir and
/// close-from where the C library has them; attributes for setsid, process group, signal
/// mask and default signals). Shorthand for [`fork_exec`] with [`Strategy::PosixSpawn`].
///
/// # Errors
/// As [`fork_exec`]: the errno comes from `posix_spawn`'s return value;
/// [`ErrorKind::Unsupported`] for attributes `posix_spawn` cannot express.
///
/// # Examples
/// ```
/// use forkexec::{ErrorKind, raw::{posix_spawn, ExecPlan, waitpid, WaitOptions}};
/// let err = posix_spawn(&ExecPlan::new("/etc/passwd", ["x"])?, &[]).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::PermissionDenied);
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `posix_spawn(3)`.
#[doc(alias = "posix_spawn_file_actions_adddup2")]
pub fn posix_spawn(plan: &ExecPlan, fds: &[ChildFd<'_>]) -> Result<Spawned> {
    fork_exec(plan, fds, Strategy::PosixSpawn)
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
/// [`ErrorKind::Io`] with `ESRCH` for no such process, `ENOSYS` before Linux 5.3;
/// [`ErrorKind::InvalidInput`] for `pid <= 0`.
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
    /// [`ErrorKind::Io`] with `ESRCH` once the process has been reaped (an exited child not
    /// yet waited for still accepts signals, which it ignores);
    /// [`ErrorKind::PermissionDenied`].
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
    /// [`ErrorKind::Io`] with `ECHILD` when it is not a child or was reaped already.
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
    /// [`ErrorKind::Io`] from `poll`.
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

/// Polls one fd for readability, retrying `EINTR` with the remaining time.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<bool> {
    let deadline = timeout.map(|t| std::time::Instant::now().checked_add(t));
    loop {
        let ms = match deadline {
            None | Some(None) => -1,
            Some(Some(d)) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                // Round up so a short wait is not a busy loop.
                left.as_micros().div_ceil(1000).min(c_int::MAX as u128) as c_int
            }
        };
        let mut p = [libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        match sys::poll(&mut p, ms) {
            Ok(0) if ms != -1 => {
                if let Some(Some(d)) = deadline {
                    if std::time::Instant::now() >= d {
                        return Ok(false);
                    }
                }
            }
            Ok(0) => {}
            Ok(_) => return Ok(true),
            Err(libc::EINTR) => {}
            Err(e) => return Err(Error::os(e)),
        }
    }
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

/// Takes a raw fd number the caller vouches for into an [`OwnedFd`] after checking it is
/// open.
///
/// # Safety
/// `fd` must not be owned by anything else (it will be closed when the result drops).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when `fd` is negative or not open.
///
/// # Examples
/// ```
/// use std::os::fd::IntoRawFd;
/// let (r, _w) = forkexec::raw::pipe()?;
/// // SAFETY: we own the raw fd we just released.
/// let r = unsafe { forkexec::raw::owned_fd(r.into_raw_fd()) }?;
/// // SAFETY: 999_999 is not open, and not owned by anything.
/// assert!(unsafe { forkexec::raw::owned_fd(999_999) }.is_err());
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `fcntl(2)` (`F_GETFD`).
pub unsafe fn owned_fd(fd: RawFd) -> Result<OwnedFd> {
    if fd < 0 || sys::fd_flags(fd).is_err() {
        return Err(Error::invalid(format!("bad file descriptor {fd}")));
    }
    // SAFETY: open, and the caller vouches nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    /// A `/proc`-shaped directory tree (`self/stat` with a 1-thread line) on whatever file
    /// system the temp dir is, removed when dropped.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(tag: &str) -> FakeProc {
            let root = std::env::temp_dir()
                .join(format!("forkexec-fakeproc-{}-{tag}", std::process::id()));
            std::fs::create_dir_all(root.join("self")).unwrap();
            std::fs::write(root.join("self/stat"), FAKE_STAT).unwrap();
            FakeProc(root)
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A stat line saying "1 thread".
    const FAKE_STAT: &str = "1 (x) R 0 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0\n";

    fn assert_refused(r: Result<OwnedFd>, what: &str) {
        match r {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::MultiThreaded, "{what}: {e:?}");
                assert!(e.to_string().contains("cannot be verified"), "{what}: {e}");
            }
        }
    }

    #[test]
    fn real_procfs_is_accepted() {
        let fd = open_procfs(Path::new("/proc"), "self/stat").unwrap();
        assert!(on_procfs(fd.as_fd()).unwrap());
        // The test harness runs this on a thread of its own.
        assert!(thread_count().unwrap() >= 1);
    }

    #[test]
    fn the_file_system_check_is_on_the_opened_fd() {
        let fake = FakeProc::new("fd");
        let file = std::fs::File::open(fake.0.join("self/stat")).unwrap();
        assert!(!on_procfs(file.as_fd()).unwrap(), "a regular file");
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(on_procfs(file.as_fd()).unwrap(), "/proc/self/stat");
        if let Ok(shm) = std::fs::File::open("/dev/shm") {
            assert!(!on_procfs(shm.as_fd()).unwrap(), "tmpfs");
        }
    }

    #[test]
    fn a_fake_proc_is_refused() {
        let fake = FakeProc::new("root");
        // The fake's content alone would pass.
        assert_eq!(parse_thread_count(FAKE_STAT.as_bytes()), Some(1));
        assert_refused(open_procfs(&fake.0, "self/stat"), "a fake /proc tree");
    }

    #[test]
    fn a_procfs_subdirectory_as_root_is_refused() {
        // On a procfs, but not its root (as a /proc/<pid> bind-mounted at /proc would be).
        assert_refused(open_procfs(Path::new("/proc/self"), "stat"), "/proc/self");
    }

    #[test]
    fn parse_thread_count_skips_odd_command_names() {
        let line = b"42 (a) b) c (d) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 7 0 5\n";
        assert_eq!(parse_thread_count(line), Some(7));
        assert_eq!(parse_thread_count(b"42 (x) S 1 2"), None);
        assert_eq!(parse_thread_count(b"no paren"), None);
    }
}
