//! The vocabulary of a process's end: [`Signal`](crate::Signal) numbers, a [`WaitStatus`], the
//! [`Rusage`] the kernel reports, and the [`ProcessState`] that holds them.
//!
//! A leaf: nothing here depends on another module of the crate, so the error type can hold
//! a state and every layer can name them. (The constructors that validate and return an
//! [`Error`](crate::Error), like [`Signal::new`](crate::Signal::new), live one layer up, in `signal.rs`; the
//! conversions to C structs in `sys`.)

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

/// A signal number (`SIGTERM`, `SIGKILL`, ...), Go's `syscall.Signal`.
///
/// # Examples
/// ```
/// use forkexec::Signal;
/// assert_eq!(Signal::KILL.as_raw(), libc::SIGKILL);
/// assert_eq!(Signal::KILL.to_string(), "killed");
/// assert_eq!(Signal::new(libc::SIGTERM)?, Signal::TERM);
/// assert_eq!(Signal::new(0)?, Signal::ZERO); // a liveness probe, as Go's Signal(0)
/// assert!(Signal::new(65).is_err());
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[doc(alias = "syscall.Signal")]
pub struct Signal(pub(crate) i32);

macro_rules! signals {
    ($($name:ident = $c:ident($alias:literal), $text:literal;)*) => {
        impl Signal {
            $(
                #[doc = concat!("`", stringify!($c), "`: \"", $text, "\".")]
                #[doc = ""]
                #[doc = "# Examples"]
                #[doc = "```"]
                #[doc = "use forkexec::Signal;"]
                #[doc = concat!("assert_eq!(Signal::", stringify!($name), ".as_raw(), libc::", stringify!($c), ");")]
                #[doc = concat!("assert_eq!(Signal::", stringify!($name), ".to_string(), \"", $text, "\");")]
                #[doc = concat!("# assert_eq!(", stringify!($alias), ", \"", stringify!($c), "\"); // the alias is the C name")]
                #[doc = "```"]
                #[doc(alias = $alias)]
                pub const $name: Signal = Signal(libc::$c);
            )*
        }

        fn go_name(sig: i32) -> Option<&'static str> {
            match sig {
                $(libc::$c => Some($text),)*
                _ => None,
            }
        }

        fn abbrev(sig: i32) -> Option<&'static str> {
            match sig {
                $(libc::$c => Some(stringify!($c)),)*
                _ => None,
            }
        }
    };
}

signals! {
    HUP = SIGHUP("SIGHUP"), "hangup";
    INT = SIGINT("SIGINT"), "interrupt";
    QUIT = SIGQUIT("SIGQUIT"), "quit";
    ILL = SIGILL("SIGILL"), "illegal instruction";
    TRAP = SIGTRAP("SIGTRAP"), "trace/breakpoint trap";
    ABRT = SIGABRT("SIGABRT"), "aborted";
    BUS = SIGBUS("SIGBUS"), "bus error";
    FPE = SIGFPE("SIGFPE"), "floating point exception";
    KILL = SIGKILL("SIGKILL"), "killed";
    USR1 = SIGUSR1("SIGUSR1"), "user defined signal 1";
    SEGV = SIGSEGV("SIGSEGV"), "segmentation fault";
    USR2 = SIGUSR2("SIGUSR2"), "user defined signal 2";
    PIPE = SIGPIPE("SIGPIPE"), "broken pipe";
    ALRM = SIGALRM("SIGALRM"), "alarm clock";
    TERM = SIGTERM("SIGTERM"), "terminated";
    STKFLT = SIGSTKFLT("SIGSTKFLT"), "stack fault";
    CHLD = SIGCHLD("SIGCHLD"), "child exited";
    CONT = SIGCONT("SIGCONT"), "continued";
    STOP = SIGSTOP("SIGSTOP"), "stopped (signal)";
    TSTP = SIGTSTP("SIGTSTP"), "stopped";
    TTIN = SIGTTIN("SIGTTIN"), "stopped (tty input)";
    TTOU = SIGTTOU("SIGTTOU"), "stopped (tty output)";
    URG = SIGURG("SIGURG"), "urgent I/O condition";
    XCPU = SIGXCPU("SIGXCPU"), "CPU time limit exceeded";
    XFSZ = SIGXFSZ("SIGXFSZ"), "file size limit exceeded";
    VTALRM = SIGVTALRM("SIGVTALRM"), "virtual timer expired";
    PROF = SIGPROF("SIGPROF"), "profiling timer expired";
    WINCH = SIGWINCH("SIGWINCH"), "window changed";
    IO = SIGIO("SIGIO"), "I/O possible";
    PWR = SIGPWR("SIGPWR"), "power failure";
    SYS = SIGSYS("SIGSYS"), "bad system call";
}
impl Signal {
    /// Signal 0: sends nothing, only checks that the process exists and may be signalled
    /// (`kill(pid, 0)`, Go's `p.Signal(syscall.Signal(0))`).
    ///
    /// # Examples
    /// ```
    /// let mut child = forkexec::Cmd::new("sleep").arg("30").start()?;
    /// child.signal(forkexec::Signal::ZERO)?; // alive
    /// child.kill()?;
    /// child.wait()?;
    /// assert!(child.signal(forkexec::Signal::ZERO).is_err()); // done
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Signal(0)")]
    pub const ZERO: Signal = Signal(0);

    /// Wraps a number the kernel reported, without validation.
    pub(crate) const fn from_raw_unchecked(sig: i32) -> Signal {
        Signal(sig)
    }

    /// The signal number.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Signal::TERM.as_raw(), 15);
    /// ```
    pub const fn as_raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Signal {
    /// Go's description: `"killed"`, `"terminated"`, ..., or `"signal N"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match go_name(self.0) {
            Some(s) => f.write_str(s),
            None => write!(f, "signal {}", self.0),
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match abbrev(self.0) {
            Some(s) => f.write_str(s),
            None => write!(f, "Signal({})", self.0),
        }
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
    pub(crate) utime: libc::timeval,
    pub(crate) stime: libc::timeval,
    pub(crate) maxrss: libc::c_long,
    pub(crate) minflt: libc::c_long,
    pub(crate) majflt: libc::c_long,
    pub(crate) inblock: libc::c_long,
    pub(crate) oublock: libc::c_long,
    pub(crate) nvcsw: libc::c_long,
    pub(crate) nivcsw: libc::c_long,
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
}

/// How a process ended: its status and resource usage (Go's `os.ProcessState`).
///
/// # Examples
/// ```
/// use forkexec::{start_process, ProcAttr};
/// let p = start_process("/bin/sh", ["sh", "-c", "exit 3"], &ProcAttr::default())?;
/// let st = p.wait()?;
/// assert_eq!((st.exit_code(), st.success(), st.exited()), (3, false, true));
/// assert_eq!(st.to_string(), "exit status 3");
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[doc(alias = "os.ProcessState")]
pub struct ProcessState {
    pid: i32,
    status: WaitStatus,
    rusage: Rusage,
}

impl ProcessState {
    pub(crate) fn new(pid: i32, status: WaitStatus, rusage: Rusage) -> ProcessState {
        ProcessState {
            pid,
            status,
            rusage,
        }
    }

    /// The pid of the process that ended.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{start_process, ProcAttr};
    /// let p = start_process("/bin/true", ["true"], &ProcAttr::default())?;
    /// assert_eq!(p.wait()?.pid(), p.pid());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Pid")]
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The exit code, or -1 when the process was killed by a signal (Go's `ExitCode`).
    ///
    /// # Examples
    /// ```
    /// use forkexec::Cmd;
    /// assert_eq!(Cmd::new("sh").args(["-c", "exit 7"]).status()?.exit_code(), 7);
    /// assert_eq!(Cmd::new("sh").args(["-c", "kill -KILL $$"]).status()?.exit_code(), -1);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias("ExitCode", "code"))]
    pub fn exit_code(&self) -> i32 {
        match self.status {
            WaitStatus::Exited(c) => c,
            _ => -1,
        }
    }

    /// Whether the process exited with code 0 (Go's `Success`).
    ///
    /// # Examples
    /// ```
    /// use forkexec::Cmd;
    /// assert!(Cmd::new("true").status()?.success());
    /// assert!(!Cmd::new("false").status()?.success());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Success")]
    pub fn success(&self) -> bool {
        self.status == WaitStatus::Exited(0)
    }

    /// Whether the process exited (rather than being killed by a signal); Go's `Exited`.
    ///
    /// # Examples
    /// ```
    /// use forkexec::Cmd;
    /// assert!(Cmd::new("false").status()?.exited());
    /// assert!(!Cmd::new("sh").args(["-c", "kill -TERM $$"]).status()?.exited());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Exited")]
    pub fn exited(&self) -> bool {
        matches!(self.status, WaitStatus::Exited(_))
    }

    /// The signal that killed the process, if one did.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Signal};
    /// let st = Cmd::new("sh").args(["-c", "kill -TERM $$"]).status()?;
    /// assert_eq!(st.signal(), Some(Signal::TERM));
    /// assert_eq!(Cmd::new("true").status()?.signal(), None);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn signal(&self) -> Option<Signal> {
        match self.status {
            WaitStatus::Signaled { signal, .. } => Some(signal),
            _ => None,
        }
    }

    /// Whether the process dumped core (Go's `WaitStatus.CoreDump`).
    ///
    /// # Examples
    /// ```
    /// // SIGTERM ends a process without a core dump.
    /// let st = forkexec::Cmd::new("sh").args(["-c", "kill -TERM $$"]).status()?;
    /// assert!(!st.core_dumped());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "CoreDump")]
    pub fn core_dumped(&self) -> bool {
        matches!(
            self.status,
            WaitStatus::Signaled {
                core_dumped: true,
                ..
            }
        )
    }

    /// The decoded wait status (Go's `Sys()`).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, raw::WaitStatus};
    /// let st = Cmd::new("sh").args(["-c", "exit 3"]).status()?;
    /// assert_eq!(st.wait_status(), WaitStatus::Exited(3));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Sys")]
    pub fn wait_status(&self) -> WaitStatus {
        self.status
    }

    /// The resource usage (Go's `SysUsage()`).
    ///
    /// # Examples
    /// ```
    /// let st = forkexec::Cmd::new("true").status()?;
    /// assert!(st.rusage().max_rss_kib() > 0);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "SysUsage")]
    pub fn rusage(&self) -> &Rusage {
        &self.rusage
    }

    /// User CPU time of the process (Go's `UserTime`).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let busy = ["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"];
    /// let st = forkexec::Cmd::new("sh").args(busy).status()?;
    /// assert!(st.user_time() + st.system_time() > Duration::ZERO);
    /// assert_eq!(st.user_time(), st.rusage().user_time());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "UserTime")]
    pub fn user_time(&self) -> Duration {
        self.rusage.user_time()
    }

    /// System CPU time of the process (Go's `SystemTime`).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let st = forkexec::Cmd::new("true").status()?;
    /// assert_eq!(st.system_time(), st.rusage().system_time());
    /// assert!(st.system_time() < Duration::from_secs(5));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "SystemTime")]
    pub fn system_time(&self) -> Duration {
        self.rusage.system_time()
    }
}

impl fmt::Display for ProcessState {
    /// As Go prints it: `exit status 1`, `signal: killed`, `signal: segmentation fault
    /// (core dumped)`, `stop signal: stopped`, `continued`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            WaitStatus::Exited(c) => write!(f, "exit status {c}"),
            WaitStatus::Signaled {
                signal,
                core_dumped,
            } => {
                write!(f, "signal: {signal}")?;
                if core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
            WaitStatus::Stopped(sig) => write!(f, "stop signal: {sig}"),
            WaitStatus::Continued => f.write_str("continued"),
        }
    }
}

impl fmt::Debug for ProcessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessState")
            .field("pid", &self.pid)
            .field("status", &self.status)
            .field("user_time", &self.user_time())
            .field("system_time", &self.system_time())
            .finish()
    }
}

impl From<ProcessState> for std::process::ExitStatus {
    fn from(s: ProcessState) -> std::process::ExitStatus {
        std::process::ExitStatus::from_raw(s.status.to_raw())
    }
}

impl From<&ProcessState> for std::process::ExitStatus {
    fn from(s: &ProcessState) -> std::process::ExitStatus {
        std::process::ExitStatus::from_raw(s.status.to_raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_like_go() {
        let ru = Rusage::zeroed();
        let st = |s| ProcessState::new(1, s, ru).to_string();
        assert_eq!(st(WaitStatus::Exited(1)), "exit status 1");
        assert_eq!(
            st(WaitStatus::Signaled {
                signal: Signal::KILL,
                core_dumped: false
            }),
            "signal: killed"
        );
        assert_eq!(
            st(WaitStatus::Signaled {
                signal: Signal::SEGV,
                core_dumped: true
            }),
            "signal: segmentation fault (core dumped)"
        );
        assert_eq!(
            st(WaitStatus::Stopped(Signal::TSTP)),
            "stop signal: stopped"
        );
    }
}
