//! Signal numbers with Go's names for them.

use crate::error::{Error, Result};

use crate::status::Signal;

impl Signal {
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
