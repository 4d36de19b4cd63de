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
/// assert!(Signal::new(0).is_err());
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[doc(alias = "syscall.Signal")]
pub struct Signal(i32);

macro_rules! signals {
    ($($name:ident = $c:ident, $text:expr;)*) => {
        impl Signal {
            $(
                #[doc = concat!("`", stringify!($c), "`: \"", $text, "\".")]
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
    HUP = SIGHUP, "hangup";
    INT = SIGINT, "interrupt";
    QUIT = SIGQUIT, "quit";
    ILL = SIGILL, "illegal instruction";
    TRAP = SIGTRAP, "trace/breakpoint trap";
    ABRT = SIGABRT, "aborted";
    BUS = SIGBUS, "bus error";
    FPE = SIGFPE, "floating point exception";
    KILL = SIGKILL, "killed";
    USR1 = SIGUSR1, "user defined signal 1";
    SEGV = SIGSEGV, "segmentation fault";
    USR2 = SIGUSR2, "user defined signal 2";
    PIPE = SIGPIPE, "broken pipe";
    ALRM = SIGALRM, "alarm clock";
    TERM = SIGTERM, "terminated";
    STKFLT = SIGSTKFLT, "stack fault";
    CHLD = SIGCHLD, "child exited";
    CONT = SIGCONT, "continued";
    STOP = SIGSTOP, "stopped (signal)";
    TSTP = SIGTSTP, "stopped";
    TTIN = SIGTTIN, "stopped (tty input)";
    TTOU = SIGTTOU, "stopped (tty output)";
    URG = SIGURG, "urgent I/O condition";
    XCPU = SIGXCPU, "CPU time limit exceeded";
    XFSZ = SIGXFSZ, "file size limit exceeded";
    VTALRM = SIGVTALRM, "virtual timer expired";
    PROF = SIGPROF, "profiling timer expired";
    WINCH = SIGWINCH, "window changed";
    IO = SIGIO, "I/O possible";
    PWR = SIGPWR, "power failure";
    SYS = SIGSYS, "bad system call";
}

impl Signal {
    /// A signal from its number.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) unless `1 <= sig <= 64`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Signal::new(9)?.as_raw(), 9);
    /// assert!(forkexec::Signal::new(65).is_err());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn new(sig: i32) -> Result<Signal> {
        if (1..=64).contains(&sig) {
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
