//! Signal numbers with Go's names for them.

use std::fmt;

use crate::error::{Error, Result};

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
pub struct Signal(i32);

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

    /// A signal from its number; 0 is [`Signal::ZERO`], the liveness probe.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) unless `0 <= sig <= 64`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Signal::new(9)?.as_raw(), 9);
    /// assert!(forkexec::Signal::new(65).is_err());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn new(sig: i32) -> Result<Signal> {
        if (0..=64).contains(&sig) {
            Ok(Signal(sig))
        } else {
            Err(Error::invalid(format!("invalid signal number {sig}")))
        }
    }

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

impl TryFrom<i32> for Signal {
    type Error = Error;
    fn try_from(sig: i32) -> Result<Signal> {
        Signal::new(sig)
    }
}

/// What happens to the signals this process ignores (`SIG_IGN`) when it starts a child.
/// Handlers are always reset (they cannot survive `execve` anyway), the child's signal
/// mask is empty unless asked otherwise, and nothing is pending.
///
/// | choice | ignored signals | `SIGPIPE` | like |
/// |---|---|---|---|
/// | [`KeepExceptPipe`](IgnoredSignals::KeepExceptPipe) (default) | stay ignored | default action | std (which resets the `SIGPIPE` the Rust runtime ignores), Go, POSIX `execve` for the rest |
/// | [`Keep`](IgnoredSignals::Keep) | stay ignored | stays ignored if ignored | a bare `execve` |
/// | [`Reset`](IgnoredSignals::Reset) | default action | default action | CPython's `restore_signals`, extended to every signal |
///
/// So a program run under `nohup` passes `SIGHUP`'s `SIG_IGN` on to its children, as a
/// shell would. `Reset` costs one `rt_sigaction` per signal in the child (62 system calls,
/// ~15 µs on the README's machine); the default costs one.
///
/// # Examples
/// ```
/// use forkexec::{Cmd, IgnoredSignals};
/// // SigIgn's bit 12 is SIGPIPE, which the Rust runtime ignores in this process.
/// let pipe_ignored = |how| -> forkexec::Result<bool> {
///     let out = Cmd::new("grep").args(["^SigIgn", "/proc/self/status"]).ignored_signals(how).output()?;
///     let mask = u64::from_str_radix(String::from_utf8_lossy(&out)[7..].trim(), 16).unwrap();
///     Ok(mask & (1 << (libc::SIGPIPE - 1)) != 0)
/// };
/// assert!(!pipe_ignored(IgnoredSignals::KeepExceptPipe)?);
/// assert!(pipe_ignored(IgnoredSignals::Keep)?);
/// assert!(!pipe_ignored(IgnoredSignals::Reset)?);
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `execve(2)` ("signal dispositions"), `signal(7)`, `sigaction(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[doc(alias("restore_signals", "SIG_IGN"))]
pub enum IgnoredSignals {
    /// Ignored signals stay ignored, but `SIGPIPE` gets its default action (std, Go).
    #[default]
    KeepExceptPipe,
    /// Ignored signals stay ignored, `SIGPIPE` included (POSIX `execve`).
    Keep,
    /// Every disposition is reset to the default action.
    #[doc(alias = "restore_signals")]
    Reset,
}
