//! What the master reports: lines, the end of a process, a worker's state.

use std::fmt;
use std::ops::Deref;

use crate::{ErrorKind, ProcessState, Result};

/// A line a worker wrote (to stdout for `on_line`, to stderr for
/// [`Stderr::lines`](super::Stderr::lines)), without its newline.
///
/// It dereferences to its bytes, so `&line[..]`, `line.to_vec()`, `line.starts_with(..)`
/// work, and it compares with byte strings and `str`.
///
/// # Examples
/// ```
/// use forkexec::agent::Line;
/// let line = Line { bytes: b"hello", complete: true };
/// assert_eq!(line, "hello");
/// assert_eq!(line, b"hello");
/// assert_eq!(line.len(), 5);
/// assert_eq!(String::from_utf8_lossy(&line), "hello");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "BizRunning")]
pub struct Line<'a> {
    /// The bytes (any encoding; only `\n` is removed).
    pub bytes: &'a [u8],
    /// Whether this piece ends a line: `true` when its newline was read. `false` for a
    /// piece cut at [`max_line`](super::WorkerOptions::max_line) (more of the same line
    /// follows; the last piece of it is complete) and for a last line the worker ended
    /// without a newline.
    pub complete: bool,
}

impl<'a> Line<'a> {
    /// A line of `bytes`, complete or not (for tests of callbacks).
    ///
    /// # Examples
    /// ```
    /// let cut = forkexec::agent::Line::new(b"abc", false);
    /// assert!(!cut.complete);
    /// ```
    pub fn new(bytes: &'a [u8], complete: bool) -> Line<'a> {
        Line { bytes, complete }
    }
}

impl Deref for Line<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl AsRef<[u8]> for Line<'_> {
    fn as_ref(&self) -> &[u8] {
        self.bytes
    }
}

impl fmt::Debug for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Line({:?}", self.bytes.escape_ascii().to_string())?;
        if !self.complete {
            f.write_str(", cut")?;
        }
        f.write_str(")")
    }
}

impl PartialEq<[u8]> for Line<'_> {
    fn eq(&self, other: &[u8]) -> bool {
        self.bytes == other
    }
}

impl PartialEq<&[u8]> for Line<'_> {
    fn eq(&self, other: &&[u8]) -> bool {
        self.bytes == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Line<'_> {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.bytes == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Line<'_> {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.bytes == *other
    }
}

impl PartialEq<str> for Line<'_> {
    fn eq(&self, other: &str) -> bool {
        self.bytes == other.as_bytes()
    }
}

impl PartialEq<&str> for Line<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.bytes == other.as_bytes()
    }
}

/// How one process of a worker ended, and what became of its input: what `on_finish`
/// gets, exactly once per process start (and once for a restart that could not spawn or
/// was cancelled by a stop during its back-off).
///
/// Delivery: every line [`input`](super::Handle::input) accepted for the worker is either
/// written to one process's stdin, counted in that process's `lines_written`, or handed
/// back in `unsent` of the worker's last `Finish`. While the worker will be restarted
/// (`restart` is true) its queue is carried over to the next process, not handed back.
///
/// # Examples
/// ```
/// use std::sync::mpsc;
/// use forkexec::{Cmd, agent::{Finish, Master}};
/// let master = Master::new()?;
/// let (tx, rx) = mpsc::channel::<Finish>();
/// let mut head = Cmd::new("head");
/// head.args(["-n", "1"]);
/// master.start("head", head, |_, _| {}, move |_, end| tx.send(end).unwrap())?;
/// master.input("head", "one")?;
/// master.close_input("head")?;
/// let end = rx.recv().unwrap();
/// assert!(end.result.unwrap().success());
/// assert_eq!((end.lines_written, end.bytes_written), (1, 4));
/// assert!(end.unsent.is_empty() && !end.restart);
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
#[doc(alias = "BizFinish")]
pub struct Finish {
    /// How the process ended (`Ok` whatever its exit status), or why there was none: the
    /// error of a restart that could not spawn, or [`ErrorKind::ProcessDone`] for a
    /// restart cancelled by a stop during its back-off.
    pub result: Result<ProcessState>,
    /// The process id, when there was a process.
    pub pid: Option<i32>,
    /// The lines written completely (newline included) to this process's stdin.
    pub lines_written: u64,
    /// The bytes written to this process's stdin (a line cut short by the end of the
    /// process counts here, not in `lines_written`, and goes again whole to the next
    /// process or back in `unsent`).
    pub bytes_written: u64,
    /// Whether the worker will be restarted; its queued input waits for the next process.
    pub restart: bool,
    /// The lines accepted but never written whole, in order, without newline: handed
    /// back when the worker is over (empty while it restarts).
    pub unsent: Vec<Vec<u8>>,
}

/// What a worker is doing.
///
/// # Examples
/// ```
/// # fn sleep30() -> forkexec::Cmd { let mut c = forkexec::Cmd::new("sleep"); c.arg("30"); c }
/// use forkexec::{Cmd, agent::{Master, WorkerState}};
/// let master = Master::new()?;
/// master.start("s", sleep30(), |_, _| {}, |_, _| {})?;
/// assert!(matches!(master.state("s"), Some(WorkerState::Running { .. })));
/// master.stop("s")?;
/// assert_eq!(master.state("s").unwrap().exit_state().unwrap().to_string(), "signal: terminated");
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum WorkerState {
    /// Its process runs.
    Running {
        /// The process id.
        pid: i32,
    },
    /// It was asked to stop: `SIGTERM` was sent, `SIGKILL` follows after the grace period.
    Stopping {
        /// The process id.
        pid: i32,
    },
    /// Its process ended and it waits out the back-off before it is started again.
    Restarting {
        /// The restarts so far, this one included.
        restarts: u32,
    },
    /// Its last process ended (how), and it will not be restarted.
    Exited(ProcessState),
    /// Its last start failed, and it will not be restarted.
    Failed(ErrorKind),
}

impl WorkerState {
    /// The pid of its running process.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::agent::WorkerState::Running { pid: 7 }.pid(), Some(7));
    /// ```
    pub fn pid(&self) -> Option<i32> {
        match *self {
            WorkerState::Running { pid } | WorkerState::Stopping { pid } => Some(pid),
            _ => None,
        }
    }

    /// Whether the worker is over: [`Exited`](WorkerState::Exited) or
    /// [`Failed`](WorkerState::Failed).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{ErrorKind, agent::WorkerState};
    /// assert!(WorkerState::Failed(ErrorKind::NotFound).is_over());
    /// assert!(!WorkerState::Restarting { restarts: 1 }.is_over());
    /// ```
    pub fn is_over(&self) -> bool {
        matches!(self, WorkerState::Exited(_) | WorkerState::Failed(_))
    }

    /// How its last process ended, for [`Exited`](WorkerState::Exited).
    ///
    /// # Examples
    /// ```
    /// assert!(forkexec::agent::WorkerState::Running { pid: 7 }.exit_state().is_none());
    /// ```
    pub fn exit_state(&self) -> Option<&ProcessState> {
        match self {
            WorkerState::Exited(st) => Some(st),
            _ => None,
        }
    }
}
