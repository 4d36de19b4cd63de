//! How a worker is run: restart policy, back-off, stderr, buffer sizes.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::time::{Duration, Instant};

use super::{Line, LineFn};
use crate::Stdio;

/// When a worker whose process ended is started again.
///
/// # Examples
/// ```
/// use forkexec::agent::{Restart, WorkerOptions};
/// let opts = WorkerOptions::new().restart(Restart::OnFailure);
/// assert_eq!(Restart::default(), Restart::Never);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Restart {
    /// Never (the default): the worker is over when its process ends.
    #[default]
    Never,
    /// When the process exits with a non-zero status, is killed by a signal, or cannot be
    /// started again.
    OnFailure,
    /// Whenever the process ends, successfully or not.
    Always,
}

/// How restarts are spaced and limited.
///
/// The `n`-th restart within the current window (counting from 0) waits
/// `initial * 2^n`, at most `max`. When `max_restarts` restarts already happened in the
/// last `window`, the master gives up: the worker stays
/// [`WorkerState::Exited`](super::WorkerState::Exited) (or
/// [`WorkerState::Failed`](super::WorkerState::Failed)). A worker that runs well empties
/// its window, and its back-off starts again from `initial`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use forkexec::agent::Backoff;
/// let b = Backoff { initial: Duration::from_millis(10), max_restarts: 3, ..Backoff::default() };
/// assert_eq!(b.window, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// The delay before the first restart of a window (default 100 ms).
    pub initial: Duration,
    /// The longest delay (default 30 s).
    pub max: Duration,
    /// The most restarts within one window (default 5).
    pub max_restarts: u32,
    /// The window (default 60 s).
    pub window: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            max_restarts: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// How a worker's stderr is handled (inside [`Stderr`]).
pub(super) enum ErrMode {
    Inherit,
    Null,
    File(Stdio),
    Lines(LineFn),
}

/// Where a worker's stderr goes: the master's own stderr (the default), the null device,
/// a file, or lines to a callback.
///
/// # Examples
/// ```
/// use forkexec::agent::{Stderr, WorkerOptions};
/// let opts = WorkerOptions::new().stderr(Stderr::lines(|id, line| {
///     eprintln!("{id} (stderr): {}", String::from_utf8_lossy(&line));
/// }));
/// # let _ = opts;
/// ```
pub struct Stderr(pub(super) ErrMode);

impl Stderr {
    /// The master's own stderr (the default): every worker writes to the same stream.
    ///
    /// # Examples
    /// ```
    /// use forkexec::agent::{Stderr, WorkerOptions};
    /// let opts = WorkerOptions::new().stderr(Stderr::inherit());
    /// # let _ = opts;
    /// ```
    pub fn inherit() -> Stderr {
        Stderr(ErrMode::Inherit)
    }

    /// The null device: what the worker writes there is discarded.
    ///
    /// # Examples
    /// ```
    /// use forkexec::agent::{Stderr, WorkerOptions};
    /// let opts = WorkerOptions::new().stderr(Stderr::null());
    /// # let _ = opts;
    /// ```
    #[doc(alias = "DEVNULL")]
    pub fn null() -> Stderr {
        Stderr(ErrMode::Null)
    }

    /// An open file: every process of the worker (restarts included) writes to it
    /// directly, the master never reads it. Open it in append mode
    /// ([`OpenOptions::append`](std::fs::OpenOptions::append)) when several workers or
    /// processes share it, so their writes do not overwrite each other.
    ///
    /// # Examples
    /// ```
    /// use std::fs::OpenOptions;
    /// use forkexec::{Cmd, agent::{Master, Stderr, WorkerOptions}};
    /// let path = std::env::temp_dir().join(format!("agent-stderr-doc-{}", std::process::id()));
    /// let file = OpenOptions::new().create(true).append(true).open(&path)?;
    /// let master = Master::new()?;
    /// let mut sh = Cmd::new("sh");
    /// sh.args(["-c", "echo oops >&2"]);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let opts = WorkerOptions::new().stderr(Stderr::file(file));
    /// master.start_with("w", sh, opts, |_, _| {}, move |_, _| tx.send(()).unwrap())?;
    /// rx.recv().unwrap();
    /// assert_eq!(std::fs::read_to_string(&path)?, "oops\n");
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file(file: File) -> Stderr {
        Stderr(ErrMode::File(Stdio::from(file)))
    }

    /// Lines delivered to `f(id, line)` on the loop thread, as stdout's to `on_line`
    /// (same rules, same [`max_line`](WorkerOptions::max_line)).
    ///
    /// # Examples
    /// ```
    /// use forkexec::agent::{Stderr, WorkerOptions};
    /// let opts = WorkerOptions::new().stderr(Stderr::lines(|id, line| {
    ///     if !line.complete { eprint!("(cut) ") }
    ///     eprintln!("{id}: {}", String::from_utf8_lossy(&line));
    /// }));
    /// # let _ = opts;
    /// ```
    pub fn lines(f: impl FnMut(&str, Line<'_>) + Send + 'static) -> Stderr {
        Stderr(ErrMode::Lines(Box::new(f)))
    }
}

impl fmt::Debug for Stderr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            ErrMode::Inherit => "Stderr::inherit()",
            ErrMode::Null => "Stderr::null()",
            ErrMode::File(_) => "Stderr::file(..)",
            ErrMode::Lines(_) => "Stderr::lines(..)",
        })
    }
}

/// The options of one worker (see [`Handle::start_with`](super::Handle::start_with)).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use forkexec::agent::{Restart, Stderr, WorkerOptions};
/// let opts = WorkerOptions::new()
///     .restart(Restart::Always)
///     .grace(Duration::from_secs(2))
///     .stderr(Stderr::null())
///     .max_line(4096)
///     .input_limit(1 << 16)
///     .stdin_pipe_size(4096);
/// # let _ = opts;
/// ```
#[derive(Debug)]
pub struct WorkerOptions {
    pub(super) stderr: Stderr,
    pub(super) restart: Restart,
    pub(super) backoff: Backoff,
    pub(super) grace: Duration,
    pub(super) max_line: usize,
    pub(super) input_limit: usize,
    pub(super) pipe_size: Option<usize>,
}

impl Default for WorkerOptions {
    fn default() -> WorkerOptions {
        WorkerOptions::new()
    }
}

impl WorkerOptions {
    /// The defaults: stderr inherited, [`Restart::Never`], [`Backoff::default()`], a
    /// grace period of 5 s, lines of at most 1 MiB, 1 MiB of queued input, the system's
    /// default stdin pipe (64 KiB on Linux).
    ///
    /// # Examples
    /// ```
    /// let opts = forkexec::agent::WorkerOptions::new();
    /// # let _ = opts;
    /// ```
    pub fn new() -> WorkerOptions {
        WorkerOptions {
            stderr: Stderr::inherit(),
            restart: Restart::Never,
            backoff: Backoff::default(),
            grace: Duration::from_secs(5),
            max_line: 1 << 20,
            input_limit: 1 << 20,
            pipe_size: None,
        }
    }

    /// Where stderr goes (this overrides the `Cmd`'s stderr).
    ///
    /// # Examples
    /// ```
    /// use forkexec::agent::{Stderr, WorkerOptions};
    /// let opts = WorkerOptions::new().stderr(Stderr::null());
    /// # let _ = opts;
    /// ```
    pub fn stderr(mut self, s: Stderr) -> WorkerOptions {
        self.stderr = s;
        self
    }

    /// The restart policy.
    ///
    /// # Examples
    /// ```
    /// use forkexec::agent::{Restart, WorkerOptions};
    /// let opts = WorkerOptions::new().restart(Restart::Always);
    /// # let _ = opts;
    /// ```
    pub fn restart(mut self, r: Restart) -> WorkerOptions {
        self.restart = r;
        self
    }

    /// The restart back-off and limit.
    ///
    /// # Examples
    /// ```
    /// use forkexec::agent::{Backoff, WorkerOptions};
    /// let opts = WorkerOptions::new().backoff(Backoff { max_restarts: 10, ..Backoff::default() });
    /// # let _ = opts;
    /// ```
    pub fn backoff(mut self, b: Backoff) -> WorkerOptions {
        self.backoff = b;
        self
    }

    /// How long a stopped worker has between `SIGTERM` and `SIGKILL` (zero: `SIGKILL`
    /// at once).
    ///
    /// # Examples
    /// ```
    /// let opts = forkexec::agent::WorkerOptions::new().grace(std::time::Duration::ZERO);
    /// # let _ = opts;
    /// ```
    pub fn grace(mut self, d: Duration) -> WorkerOptions {
        self.grace = d;
        self
    }

    /// The longest line delivered in one piece, and the most bytes held per stream
    /// waiting for a newline (at least 1). A longer line comes in pieces, each flagged
    /// not [`complete`](Line::complete) but the last.
    ///
    /// # Examples
    /// ```
    /// let opts = forkexec::agent::WorkerOptions::new().max_line(64 * 1024);
    /// # let _ = opts;
    /// ```
    pub fn max_line(mut self, bytes: usize) -> WorkerOptions {
        self.max_line = bytes;
        self
    }

    /// The most input bytes queued for the worker's stdin, not yet taken by its pipe (at
    /// least 1; a line needs its length + 1 bytes).
    ///
    /// # Examples
    /// ```
    /// let opts = forkexec::agent::WorkerOptions::new().input_limit(16 * 1024);
    /// # let _ = opts;
    /// ```
    pub fn input_limit(mut self, bytes: usize) -> WorkerOptions {
        self.input_limit = bytes;
        self
    }

    /// The capacity of each process's stdin pipe (`F_SETPIPE_SZ`; the kernel rounds it
    /// up to a power-of-two number of pages, and an unprivileged process may ask for at
    /// most `/proc/sys/fs/pipe-max-size`, 1 MiB by default). Without it the pipe has the
    /// system's default size, 64 KiB on Linux.
    ///
    /// What sits in the pipe when a process dies is lost with it (it was counted as
    /// written): a smaller pipe loses fewer lines of a killed worker, a larger one lets
    /// the master write further ahead of a slow reader. A size the kernel refuses makes
    /// [`start_with`](super::Handle::start_with) fail with the `fcntl` error (`EPERM`
    /// above the limit, `EINVAL` for zero).
    ///
    /// # References
    /// `fcntl(2)` (`F_SETPIPE_SZ`), `pipe(7)`.
    ///
    /// # Examples
    /// ```
    /// let opts = forkexec::agent::WorkerOptions::new().stdin_pipe_size(4096);
    /// # let _ = opts;
    /// ```
    #[doc(alias = "F_SETPIPE_SZ")]
    pub fn stdin_pipe_size(mut self, bytes: usize) -> WorkerOptions {
        self.pipe_size = Some(bytes);
        self
    }
}

/// When a worker whose process ended at `now` is started again: `now` plus its back-off
/// delay, `initial * 2^n` (at most `max`) for the `n`-th restart of the window; `None`
/// when `max_restarts` restarts already happened within the last `window` (the master
/// gives up). `restarts` holds the times of the window's restarts; a restart is recorded.
pub(super) fn next_restart(
    b: &Backoff,
    restarts: &mut VecDeque<Instant>,
    now: Instant,
) -> Option<Instant> {
    while let Some(&t) = restarts.front() {
        if now.saturating_duration_since(t) >= b.window {
            restarts.pop_front();
        } else {
            break;
        }
    }
    let n = restarts.len();
    if n >= b.max_restarts as usize {
        return None;
    }
    let factor = 1u32 << n.min(30);
    let delay = b.initial.saturating_mul(factor).min(b.max);
    restarts.push_back(now);
    // A delay past what `Instant` can hold is as good as never: a year, not at once.
    Some(
        now.checked_add(delay)
            .or_else(|| now.checked_add(FAR))
            .unwrap_or(now),
    )
}

/// Where a restart goes whose delay does not fit in an `Instant`.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// The delays the schedule gives at `at` (offsets from one start), `None` for "gave up".
    fn delays(b: &Backoff, at: &[Duration]) -> Vec<Option<Duration>> {
        let t0 = Instant::now();
        let mut restarts = VecDeque::new();
        at.iter()
            .map(|&d| {
                let now = t0 + d;
                next_restart(b, &mut restarts, now).map(|r| r - now)
            })
            .collect()
    }

    #[test]
    fn backoff_doubles_then_gives_up() {
        let b = Backoff {
            initial: 50 * MS,
            max: Duration::from_secs(1),
            max_restarts: 3,
            window: Duration::from_secs(60),
        };
        let s = Duration::from_secs(1);
        assert_eq!(
            delays(&b, &[Duration::ZERO, s, 2 * s, 3 * s, 4 * s]),
            [Some(50 * MS), Some(100 * MS), Some(200 * MS), None, None]
        );
        // The first restart leaves the window: one more, at the third step's delay.
        assert_eq!(
            delays(&b, &[Duration::ZERO, s, 2 * s, 60 * s, 60 * s]),
            [
                Some(50 * MS),
                Some(100 * MS),
                Some(200 * MS),
                Some(200 * MS),
                None
            ]
        );
        // A worker that ran well for a window starts again from `initial`.
        assert_eq!(
            delays(&b, &[Duration::ZERO, s, 2 * s, 200 * s]),
            [Some(50 * MS), Some(100 * MS), Some(200 * MS), Some(50 * MS)]
        );
    }

    #[test]
    fn backoff_is_capped_and_bounded() {
        let b = Backoff {
            initial: 400 * MS,
            max: Duration::from_secs(1),
            max_restarts: 40,
            window: Duration::from_secs(3600),
        };
        let at: Vec<Duration> = (0..40).map(|i| i * MS).collect();
        let d = delays(&b, &at);
        assert_eq!(
            d[..4],
            [Some(400 * MS), Some(800 * MS), Some(b.max), Some(b.max)]
        );
        assert!(d[2..].iter().all(|d| *d == Some(b.max)), "{d:?}");
        let huge = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
            ..b
        };
        // Not "at once" when the delay overflows the clock.
        assert!(delays(&huge, &at).iter().all(|d| d.unwrap() >= FAR));
        let never = Backoff {
            max_restarts: 0,
            ..b
        };
        assert_eq!(delays(&never, &[Duration::ZERO]), [None]);
    }
}
