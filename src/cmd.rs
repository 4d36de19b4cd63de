//! Go's `exec.Cmd` in blocking Rust: [`Cmd`], [`Stdio`], [`Child`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result, Stage};
use crate::lookpath::look_path_in;
use crate::namespaces::Namespaces;
use crate::process::{Credential, Process, SysProcAttr};
use crate::signal::IgnoredSignals;
use crate::spawn::{self, ChildFd, ExecPlan, Scratch, Strategy, path_cstring};
use crate::status::{ProcessState, Signal};
use crate::sys;
use crate::sys::cstr::{CStringArray, merge_env};

mod interop;
mod output;
mod timer;
mod waitset;
pub use output::{Buffer, Output};
pub use timer::CancelTarget;
use timer::{Cancel, CancelFn, Watcher};
pub use waitset::{Stream, WaitEvent, WaitSet};

/// Where a child's stdin, stdout or stderr goes.
///
/// **The default for every stream of a [`Cmd`] is [`Stdio::null()`]**, as in Go's
/// `exec.Cmd` (whose nil `Stdin`/`Stdout`/`Stderr` mean the null device) — unlike
/// `std::process::Command`, which inherits. Say [`Stdio::inherit()`] to share the parent's.
///
/// # Examples
/// ```
/// use forkexec::{Cmd, Stdio};
/// let out = Cmd::new("cat").stdin(Stdio::from_reader(&b"hi\n"[..])).output()?;
/// assert_eq!(out, b"hi\n");
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Clone)]
pub struct Stdio(StdioKind);

#[derive(Clone)]
enum StdioKind {
    Null,
    Inherit,
    Piped,
    Fd(Arc<OwnedFd>),
    Reader(Arc<Mutex<dyn Read + Send>>),
    Writer(Arc<Mutex<dyn Write + Send>>),
}

impl Stdio {
    /// The null device (`/dev/null`): the default. Reads see end-of-file at once; writes
    /// are discarded.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Stdio};
    /// assert_eq!(Cmd::new("cat").stdin(Stdio::null()).output()?, b"");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "os.DevNull")]
    pub fn null() -> Stdio {
        Stdio(StdioKind::Null)
    }

    /// The parent's stream of the same number.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Stdio};
    /// // The child's stdout is the parent's: both name the same open file.
    /// let mut child = Cmd::new("sh").args(["-c", r#"echo "$(readlink /proc/$$/fd/1)" >&2"#])
    ///     .stdout(Stdio::inherit()).stderr(Stdio::piped()).start()?;
    /// let seen = std::io::read_to_string(child.stderr.take().unwrap())?;
    /// child.wait()?;
    /// assert_eq!(std::path::Path::new(seen.trim_end()), std::fs::read_link("/proc/self/fd/1")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inherit() -> Stdio {
        Stdio(StdioKind::Inherit)
    }

    /// A new pipe; the parent's end is in [`Child::stdin`] / [`Child::stdout`] /
    /// [`Child::stderr`] (Go's `StdinPipe`, `StdoutPipe`, `StderrPipe`).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Stdio};
    /// let mut child = Cmd::new("echo").arg("hi").stdout(Stdio::piped()).start()?;
    /// let out = std::io::read_to_string(child.stdout.take().unwrap())?;
    /// assert!(child.wait()?.success());
    /// assert_eq!(out, "hi\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias("StdinPipe", "StdoutPipe", "StderrPipe"))]
    pub fn piped() -> Stdio {
        Stdio(StdioKind::Piped)
    }

    /// Feeds the child's stdin from any reader, copied by a thread of the crate while the
    /// child runs (Go's `Stdin = io.Reader`). The reader is shared by every start of the
    /// command.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Stdio};
    /// let out = Cmd::new("cat").stdin(Stdio::from_reader(&b"abc"[..])).output()?;
    /// assert_eq!(out, b"abc");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn from_reader(r: impl Read + Send + 'static) -> Stdio {
        Stdio(StdioKind::Reader(Arc::new(Mutex::new(r))))
    }

    /// Sends the child's output to any writer, copied by a thread of the crate while the
    /// child runs (Go's `Stdout = io.Writer`). The same `Stdio` (clones of it) given to
    /// stdout and stderr means one pipe and one copier for both, so the order of the
    /// child's writes is kept, as in Go. The writer is locked for one chunk at a time,
    /// never across a wait. For an in-memory sink, see [`Buffer`].
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Stdio};
    /// let file = tempfile_in_tmp();
    /// let to_file = Stdio::from_writer(std::fs::File::create(&file)?);
    /// Cmd::new("sh").args(["-c", "echo x; echo y >&2"]).stdout(to_file.clone()).stderr(to_file).run()?;
    /// assert_eq!(std::fs::read(&file)?, b"x\ny\n");
    /// std::fs::remove_file(&file)?;
    /// fn tempfile_in_tmp() -> std::path::PathBuf {
    ///     std::env::temp_dir().join(format!("forkexec-doc-{}", std::process::id()))
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_writer(w: impl Write + Send + 'static) -> Stdio {
        Stdio(StdioKind::Writer(Arc::new(Mutex::new(w))))
    }
}

impl fmt::Debug for Stdio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            StdioKind::Null => f.write_str("Stdio::null()"),
            StdioKind::Inherit => f.write_str("Stdio::inherit()"),
            StdioKind::Piped => f.write_str("Stdio::piped()"),
            StdioKind::Fd(fd) => write!(f, "Stdio::Fd({})", fd.as_raw_fd()),
            StdioKind::Reader(_) => f.write_str("Stdio::from_reader(..)"),
            StdioKind::Writer(_) => f.write_str("Stdio::from_writer(..)"),
        }
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(StdioKind::Fd(Arc::new(fd)))
    }
}

impl From<File> for Stdio {
    fn from(f: File) -> Stdio {
        Stdio::from(OwnedFd::from(f))
    }
}

macro_rules! pipe_end {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Debug)]
        pub struct $name(File);

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.0.as_raw_fd()
            }
        }

        impl From<$name> for OwnedFd {
            fn from(p: $name) -> OwnedFd {
                p.0.into()
            }
        }

        impl From<$name> for Stdio {
            fn from(p: $name) -> Stdio {
                Stdio::from(OwnedFd::from(p))
            }
        }
    };
}

pipe_end!(
    /// The parent's end of a child's stdin pipe (Go's `StdinPipe`). Close it (drop) to send
    /// EOF; [`Child::wait`] closes it if it is still in the [`Child`].
    ///
    /// # Examples
    /// ```
    /// use std::io::Write;
    /// use forkexec::{Cmd, Stdio};
    /// let mut child = Cmd::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).start()?;
    /// let mut stdin = child.stdin.take().unwrap();
    /// stdin.write_all(b"ping")?;
    /// drop(stdin); // EOF: cat exits
    /// assert_eq!(std::io::read_to_string(child.stdout.take().unwrap())?, "ping");
    /// assert!(child.wait()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "StdinPipe")]
    ChildStdin
);
pipe_end!(
    /// The parent's end of a child's stdout pipe (Go's `StdoutPipe`). It also converts into
    /// a [`Stdio`], to feed another child.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Stdio};
    /// // echo hi | tr a-z A-Z
    /// let mut echo = Cmd::new("echo").arg("hi").stdout(Stdio::piped()).start()?;
    /// let out = Cmd::new("tr").args(["a-z", "A-Z"]).stdin(echo.stdout.take().unwrap()).output()?;
    /// assert!(echo.wait()?.success());
    /// assert_eq!(out, b"HI\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "StdoutPipe")]
    ChildStdout
);
pipe_end!(
    /// The parent's end of a child's stderr pipe (Go's `StderrPipe`).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Stdio};
    /// let mut child = Cmd::new("sh").args(["-c", "echo oops >&2"]).stderr(Stdio::piped()).start()?;
    /// let err = std::io::read_to_string(child.stderr.take().unwrap())?;
    /// assert!(child.wait()?.success());
    /// assert_eq!(err, "oops\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "StderrPipe")]
    ChildStderr
);

impl Write for ChildStdin {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for ChildStdout {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        self.0.read(b)
    }
}

impl Read for ChildStderr {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        self.0.read(b)
    }
}

/// The null device, opened once per process (close-on-exec) and shared by every child.
/// It is kept at fd 3 or above: opened while the application has fd 0, 1 or 2 closed, it
/// would land there, and once the application restored its stdio, a "null" child would
/// get the real stream.
fn dev_null() -> Result<BorrowedFd<'static>> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd.as_fd());
    }
    let err = |e| Error::from_errno(Stage::Pipe, e).with_path("/dev/null");
    let fd = sys::open(c"/dev/null", libc::O_RDWR)
        .and_then(sys::above_stdio)
        .map_err(err)?;
    Ok(NULL.get_or_init(|| fd).as_fd())
}

/// The parts of a `Cmd` prepared at the first start and reused by the next ones.
#[derive(Clone)]
struct Prepared {
    plan: ExecPlan,
    path: PathBuf,
    /// The fd plan of the last start, reused while the child's fds stay the same.
    scratch: Scratch,
    /// `scratch` holds the plan of the command's own stdio and extra files (no pipe), as
    /// [`Cmd::status`] starts it: it can spawn again without looking at them. Cleared by
    /// the stdio and extra-file setters and by every other kind of start.
    direct: bool,
}

/// A command to run (Go's `exec.Cmd`): program, arguments, environment, directory, stdio,
/// extra files, timeouts, Linux attributes and the spawn strategy.
///
/// The program is looked up, when it has no `/`, on the `PATH` the child will see, or the
/// parent's when the child's environment has none (see [`look_path`](crate::look_path)); a
/// result relative to the current directory is refused ([`ErrorKind::Dot`]) unless
/// [`allow_dot`](Cmd::allow_dot) is set.
///
/// A `Cmd` can be started any number of times. The first start prepares argv, envp and the
/// resolved path as C arrays; later starts reuse them, until a builder method changes the
/// command. A command that changes nothing in the environment passes the parent's current
/// environment at every start; one that sets, removes or clears variables (or sets `dir`,
/// which sets `PWD`) computes the child's environment at that first preparation.
///
/// # Examples
/// ```
/// use forkexec::{Cmd, Stdio};
/// let mut cmd = Cmd::new("sh");
/// cmd.args(["-c", "echo $GREETING from $(pwd)"]).env("GREETING", "hello").dir("/");
/// assert_eq!(cmd.output()?, b"hello from /\n");
/// assert_eq!(cmd.output()?, b"hello from /\n"); // started again, nothing rebuilt
/// # Ok::<(), forkexec::Error>(())
/// ```
#[doc(alias = "exec.Cmd")]
#[doc(alias = "Command")]
#[derive(Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    arg0: Option<OsString>,
    env_clear: bool,
    env_changes: Vec<(OsString, Option<OsString>)>,
    dir: Option<PathBuf>,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    extra_files: Vec<Arc<OwnedFd>>,
    strategy: Strategy,
    timeout: Option<Duration>,
    wait_delay: Option<Duration>,
    cancel_signal: Signal,
    allow_dot: bool,
    env_child_pid: Option<OsString>,
    ignored_signals: IgnoredSignals,
    output_limit: Option<usize>,
    cancel_group: bool,
    cancel_fn: Option<Arc<CancelFn>>,
    pre_exec: Vec<Arc<crate::sys::child::PreExecFn>>,
    sys: SysProcAttr,
    prepared: Option<Prepared>,
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cmd")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("dir", &self.dir)
            .field("env_clear", &self.env_clear)
            .field("env_changes", &self.env_changes)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

macro_rules! setter {
    ($self:ident) => {{
        $self.prepared = None;
        $self
    }};
}

impl Cmd {
    /// A command running `program` (Go's `exec.Command(name)`), with no arguments, the
    /// parent's environment, stdio on the null device, and [`Strategy::Auto`].
    ///
    /// # Examples
    /// ```
    /// assert!(forkexec::Cmd::new("true").status()?.success());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "exec.Command")]
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            arg0: None,
            env_clear: false,
            env_changes: Vec::new(),
            dir: None,
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
            extra_files: Vec::new(),
            strategy: Strategy::Auto,
            timeout: None,
            wait_delay: None,
            cancel_signal: Signal::KILL,
            allow_dot: false,
            env_child_pid: None,
            ignored_signals: IgnoredSignals::KeepExceptPipe,
            output_limit: None,
            cancel_group: false,
            cancel_fn: None,
            pre_exec: Vec::new(),
            sys: SysProcAttr::default(),
            prepared: None,
        }
    }

    /// Appends an argument, passed to the program as it is: no shell splits or expands it.
    ///
    /// # Examples
    /// ```
    /// let out = forkexec::Cmd::new("printf").arg("%s|").arg("a b").arg("$HOME").output()?;
    /// assert_eq!(out, b"a b|$HOME|");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Cmd {
        self.args.push(arg.as_ref().to_owned());
        setter!(self)
    }

    /// Appends arguments.
    ///
    /// # Examples
    /// ```
    /// let mut cmd = forkexec::Cmd::new("printf");
    /// cmd.args(["%s-", "a"]).args(vec![String::from("b")]);
    /// assert_eq!(cmd.get_argv(), ["printf", "%s-", "a", "b"]);
    /// assert_eq!(cmd.output()?, b"a-b-");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn args<I, S>(&mut self, args: I) -> &mut Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        setter!(self)
    }

    /// Sets `argv[0]` (default: the program as given, as Go's `Args[0]`). The program run
    /// is still the one given to [`new`](Cmd::new).
    ///
    /// # Examples
    /// ```
    /// let mut cmd = forkexec::Cmd::new("sh");
    /// cmd.arg0("custom-name").args(["-c", "echo $0"]);
    /// assert_eq!(cmd.get_argv()[0], "custom-name");
    /// assert_eq!(cmd.output()?, b"custom-name\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn arg0(&mut self, arg0: impl AsRef<OsStr>) -> &mut Cmd {
        self.arg0 = Some(arg0.as_ref().to_owned());
        setter!(self)
    }

    /// Sets an environment variable (a later setting of the same key wins).
    ///
    /// # Examples
    /// ```
    /// let out = forkexec::Cmd::new("sh").args(["-c", "echo $GREETING"])
    ///     .env("GREETING", "hi").env("GREETING", "hello").output()?;
    /// assert_eq!(out, b"hello\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Env")]
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Cmd {
        self.env_changes
            .push((key.as_ref().to_owned(), Some(val.as_ref().to_owned())));
        setter!(self)
    }

    /// Sets several environment variables.
    ///
    /// # Examples
    /// ```
    /// let out = forkexec::Cmd::new("sh").args(["-c", "echo $A$B"])
    ///     .envs([("A", "1"), ("B", "2")]).output()?;
    /// assert_eq!(out, b"12\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Cmd
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env_changes
                .push((k.as_ref().to_owned(), Some(v.as_ref().to_owned())));
        }
        setter!(self)
    }

    /// Removes an environment variable from the child's environment.
    ///
    /// # Examples
    /// ```
    /// let mut cmd = forkexec::Cmd::new("sh");
    /// cmd.args(["-c", "echo ${HOME-unset}"]).env_remove("HOME");
    /// assert_eq!(cmd.output()?, b"unset\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Cmd {
        self.env_changes.push((key.as_ref().to_owned(), None));
        setter!(self)
    }

    /// Starts from an empty environment instead of the parent's (the changes made so far
    /// are dropped too). A program name without `/` is then looked up on the parent's
    /// `PATH` unless one is set again.
    ///
    /// # Examples
    /// ```
    /// use forkexec::Cmd;
    /// let mut cmd = Cmd::new("sh");
    /// cmd.env("A", "1").env_clear().env("B", "2");
    /// assert_eq!(cmd.environ()?, ["B=2"]);
    /// assert_eq!(cmd.args(["-c", "echo ${A-none} $B"]).output()?, b"none 2\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn env_clear(&mut self) -> &mut Cmd {
        self.env_clear = true;
        self.env_changes.clear();
        setter!(self)
    }

    /// Runs the child in `dir`. With an inherited environment, `PWD` follows (as Go). The
    /// directory is checked when the command is prepared (by the child instead under
    /// [`chroot`](Cmd::chroot)): a missing one fails the start with [`Stage::Chdir`]. A
    /// relative program path (`./prog`) is resolved in `dir`, as in Go.
    ///
    /// # Examples
    /// ```
    /// let out = forkexec::Cmd::new("sh").args(["-c", "pwd; echo $PWD"]).dir("/").output()?;
    /// assert_eq!(out, b"/\n/\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias("Dir", "current_dir"))]
    pub fn dir(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.dir = Some(dir.as_ref().to_owned());
        setter!(self)
    }

    /// The child's stdin (default [`Stdio::null()`]): a [`Stdio`], or what converts into
    /// one (an [`OwnedFd`], a [`File`], a [`ChildStdout`] of another child).
    ///
    /// # Examples
    /// ```
    /// use std::io::Write;
    /// let (r, w) = forkexec::raw::pipe()?;
    /// std::fs::File::from(w).write_all(b"from a pipe")?; // write end closed: EOF follows
    /// assert_eq!(forkexec::Cmd::new("cat").stdin(r).output()?, b"from a pipe");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stdin(&mut self, s: impl Into<Stdio>) -> &mut Cmd {
        self.stdin = s.into();
        self.fds_changed()
    }

    /// The child's stdout (default [`Stdio::null()`]). [`output`](Cmd::output) and
    /// [`combined_output`](Cmd::combined_output) capture stdout whatever this says.
    ///
    /// # Examples
    /// ```
    /// let (r, w) = forkexec::raw::pipe()?;
    /// forkexec::Cmd::new("echo").arg("to a pipe").stdout(w).run()?; // `w` dropped with the Cmd
    /// assert_eq!(std::io::read_to_string(std::fs::File::from(r))?, "to a pipe\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stdout(&mut self, s: impl Into<Stdio>) -> &mut Cmd {
        self.stdout = s.into();
        self.fds_changed()
    }

    /// The child's stderr (default [`Stdio::null()`]). [`combined_output`](Cmd::combined_output)
    /// captures it whatever this says.
    ///
    /// # Examples
    /// ```
    /// let (r, w) = forkexec::raw::pipe()?;
    /// forkexec::Cmd::new("sh").args(["-c", "echo oops >&2"]).stderr(w).run()?;
    /// assert_eq!(std::io::read_to_string(std::fs::File::from(r))?, "oops\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stderr(&mut self, s: impl Into<Stdio>) -> &mut Cmd {
        self.stderr = s.into();
        self.fds_changed()
    }

    /// Passes `fd` as the child's next extra file: the first is fd 3, then 4, ... (Go's
    /// `ExtraFiles`). Nothing else of the parent's is visible to the child (unless
    /// [`keep_other_fds`](Cmd::keep_other_fds)). The `Cmd` keeps `fd` open until it is dropped.
    ///
    /// # Examples
    /// ```
    /// let (r, w) = forkexec::raw::pipe()?;
    /// forkexec::Cmd::new("sh").args(["-c", "echo hi >&3"]).extra_file(w).run()?;
    /// assert_eq!(std::io::read_to_string(std::fs::File::from(r))?, "hi\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "ExtraFiles")]
    pub fn extra_file(&mut self, fd: impl Into<OwnedFd>) -> &mut Cmd {
        self.extra_files.push(Arc::new(fd.into()));
        self.fds_changed()
    }

    /// The spawn strategy (default [`Strategy::Auto`]). An explicit strategy is used as is:
    /// when it cannot express the command, the start fails with [`ErrorKind::Unsupported`].
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, ErrorKind, raw::Strategy};
    /// Cmd::new("true").strategy(Strategy::Fork).run()?;
    /// let err = Cmd::new("true").strategy(Strategy::PosixSpawn).chroot("/").run();
    /// assert_eq!(err.unwrap_err().kind(), ErrorKind::Unsupported);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn strategy(&mut self, s: Strategy) -> &mut Cmd {
        self.strategy = s;
        self
    }

    /// Cancels the child with [`cancel_signal`](Cmd::cancel_signal) when it runs longer
    /// than `d` (Go's `CommandContext` with a deadline); waiting then returns
    /// [`ErrorKind::Timeout`]. The clock starts at [`start`](Cmd::start). One timer
    /// thread of the crate, polling the pidfds of every child with a timeout, enforces the
    /// deadline while the child runs, whether or not anyone waits (so a caller reading the
    /// child's output is not stuck past it): a thousand children with timeouts cost one
    /// thread, which ends when no timeout is pending. On a kernel without pidfds the
    /// deadline is enforced inside the waits only. To cancel what the child started too,
    /// see [`cancel_process_group`](Cmd::cancel_process_group); to stop waiting without
    /// cancelling, [`Child::wait_timeout`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, ErrorKind};
    /// Cmd::new("true").timeout(Duration::from_secs(10)).run()?;
    /// let err = Cmd::new("sleep").arg("10").timeout(Duration::from_millis(50)).run().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Timeout);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "CommandContext")]
    pub fn timeout(&mut self, d: Duration) -> &mut Cmd {
        self.timeout = Some(d);
        self
    }

    /// After the child exits (or after it is cancelled), waits at most `d` for its stdio
    /// copies to finish — a grandchild may hold a pipe open — then closes them and reports
    /// [`ErrorKind::WaitDelay`] if the run was otherwise successful. A cancelled child still
    /// running after `d` gets `SIGKILL`. Go's `WaitDelay`; zero means none, as in Go.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, ErrorKind, Stdio};
    /// // `sh` exits at once, but the background `sleep` holds its stdout pipe for a second.
    /// let err = Cmd::new("sh").args(["-c", "sleep 1 & echo started"])
    ///     .stdout(Stdio::from_writer(std::io::sink()))
    ///     .wait_delay(Duration::from_millis(100)).run().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WaitDelay);
    /// assert!(err.state().unwrap().success());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "WaitDelay")]
    pub fn wait_delay(&mut self, d: Duration) -> &mut Cmd {
        // As Go: a zero WaitDelay means none (read the pipes to EOF).
        self.wait_delay = Some(d).filter(|d| !d.is_zero());
        self
    }

    /// The signal sent when the timeout passes (default `SIGKILL`; Go's `Cancel`).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, Signal};
    /// let err = Cmd::new("sleep").arg("10").timeout(Duration::from_millis(50))
    ///     .cancel_signal(Signal::TERM).run().unwrap_err();
    /// assert_eq!(err.state().unwrap().signal(), Some(Signal::TERM));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Cancel")]
    pub fn cancel_signal(&mut self, sig: Signal) -> &mut Cmd {
        self.cancel_signal = sig;
        self
    }

    /// Makes the timeout's cancel signal (and the `SIGKILL` after the wait delay) reach the
    /// child's whole process group, so that what it started goes too: `sh -c 'sleep 100 &
    /// sleep 100'` leaves nothing behind. The child is put in a process group of its own
    /// (unless [`setsid`](Cmd::setsid) already makes it lead one). The group is signalled
    /// only while the child itself has not exited: until then its id cannot belong to
    /// anyone else.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, ErrorKind};
    /// let err = Cmd::new("sh").args(["-c", "sleep 30 & sleep 30"])
    ///     .timeout(Duration::from_millis(100)).cancel_process_group(true).run().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Timeout); // and the background sleep is gone too
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # Errors
    /// The start fails with [`ErrorKind::InvalidInput`] when
    /// [`process_group`](Cmd::process_group) puts the child in another process's group.
    #[doc(alias("killpg", "Setpgid"))]
    pub fn cancel_process_group(&mut self, on: bool) -> &mut Cmd {
        self.cancel_group = on;
        setter!(self)
    }

    /// Cancels the child at its timeout by calling `f` instead of sending
    /// [`cancel_signal`](Cmd::cancel_signal) (Go's `Cmd.Cancel`): to ask it to stop in
    /// its own way (a signal to its group, a message on a socket). `f` runs on the crate's
    /// timer thread, shared by every child with a timeout, so it should not block (and
    /// must not wait for another command's timeout); the child is not reaped while it
    /// runs (a `Child` waits for it before reaping; reaping through
    /// [`Child::process`] directly bypasses that). If the child still runs
    /// [`wait_delay`](Cmd::wait_delay) later, it gets `SIGKILL`. An error of `f` is
    /// reported in the wait's [`ErrorKind::Timeout`] error.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, ErrorKind, Signal};
    /// let err = Cmd::new("sleep").arg("30").timeout(Duration::from_millis(50))
    ///     .cancel_with(|t| t.signal(Signal::TERM)).run().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Timeout);
    /// assert_eq!(err.state().unwrap().signal(), Some(Signal::TERM));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Cancel")]
    pub fn cancel_with(
        &mut self,
        f: impl Fn(&CancelTarget<'_>) -> io::Result<()> + Send + Sync + 'static,
    ) -> &mut Cmd {
        self.cancel_fn = Some(Arc::new(f));
        self
    }

    /// Accepts a program found through a relative `PATH` entry (Go: clearing `ErrDot`).
    /// The relative path found is then executed as is.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, ErrorKind};
    /// // From any working directory, twenty `..` reach `/`: a relative PATH entry for /bin.
    /// let mut cmd = Cmd::new("sh");
    /// cmd.env("PATH", format!("{}bin", "../".repeat(20))).args(["-c", "exit 0"]);
    /// assert_eq!(cmd.run().unwrap_err().kind(), ErrorKind::Dot);
    /// cmd.allow_dot(true).run()?;
    /// assert!(cmd.resolved_path()?.is_relative());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "ErrDot")]
    pub fn allow_dot(&mut self, on: bool) -> &mut Cmd {
        self.allow_dot = on;
        setter!(self)
    }

    /// All Linux attributes at once (Go's `SysProcAttr`), replacing those set before by
    /// [`setsid`](Cmd::setsid), [`credential`](Cmd::credential) and the other attribute
    /// setters.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, SysProcAttr};
    /// let leads_session = ["-c", r#"test "$(cut -d' ' -f6 /proc/$$/stat)" = $$"#];
    /// let attrs = SysProcAttr { setsid: true, ..Default::default() };
    /// assert!(Cmd::new("sh").args(leads_session).sys(attrs).status()?.success());
    /// let mut reset = Cmd::new("sh");
    /// reset.args(leads_session).setsid().sys(SysProcAttr::default());
    /// assert!(!reset.status()?.success());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "SysProcAttr")]
    pub fn sys(&mut self, sys: SysProcAttr) -> &mut Cmd {
        self.sys = sys;
        setter!(self)
    }

    /// Starts the child in a new session (`setsid`), which it leads.
    ///
    /// # Examples
    /// ```
    /// use forkexec::Cmd;
    /// let leads_session = ["-c", r#"test "$(cut -d' ' -f6 /proc/$$/stat)" = $$"#];
    /// assert!(Cmd::new("sh").args(leads_session).setsid().status()?.success());
    /// assert!(!Cmd::new("sh").args(leads_session).status()?.success());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `setsid(2)`.
    #[doc(alias = "Setsid")]
    pub fn setsid(&mut self) -> &mut Cmd {
        self.sys.setsid = true;
        setter!(self)
    }

    /// Puts the child in process group `pgid` (0: a new group it leads). A negative `pgid`
    /// fails the start with [`ErrorKind::InvalidInput`].
    ///
    /// # Examples
    /// ```
    /// use forkexec::Cmd;
    /// let leads_group = ["-c", r#"test "$(cut -d' ' -f5 /proc/$$/stat)" = $$"#];
    /// assert!(Cmd::new("sh").args(leads_group).process_group(0).status()?.success());
    /// assert!(!Cmd::new("sh").args(leads_group).status()?.success());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `setpgid(2)`.
    #[doc(alias("Setpgid", "Pgid", "setpgid"))]
    pub fn process_group(&mut self, pgid: i32) -> &mut Cmd {
        self.sys.process_group = Some(pgid);
        setter!(self)
    }

    /// The signal the child gets when the parent thread that started it dies.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Signal};
    /// // Started by a thread that then ends: the child is killed at once.
    /// let started = std::thread::spawn(|| Cmd::new("sleep").arg("10").pdeathsig(Signal::KILL).start());
    /// let mut child = started.join().unwrap()?;
    /// assert_eq!(child.wait()?.signal(), Some(Signal::KILL));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `prctl(2)` (`PR_SET_PDEATHSIG`).
    #[doc(alias("Pdeathsig", "PR_SET_PDEATHSIG"))]
    pub fn pdeathsig(&mut self, sig: Signal) -> &mut Cmd {
        self.sys.pdeathsig = Some(sig);
        setter!(self)
    }

    /// Runs the child as `uid`/`gid` with exactly the supplementary `groups` (empty: none).
    /// With `CAP_SETGID` (root) the caller's own supplementary groups never reach the child
    /// (std and Go clear them too); without it, clearing them is refused by the kernel and,
    /// as std does, that refusal is ignored: the child keeps the groups the caller could use
    /// anyway. To keep them in every case, set [`Credential::keep_groups`] through
    /// [`sys`](Cmd::sys).
    /// Switching to other ids needs privilege (`CAP_SETUID`, `CAP_SETGID`); a refusal fails
    /// the start with [`Stage::Credentials`].
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Stage};
    /// let (euid, egid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    /// let (uid, gid) = if euid == 0 { (65534, 65534) } else { (euid, egid) }; // root: `nobody`
    /// match Cmd::new("id").arg("-G").credential(uid, gid, []).output() {
    ///     // Root's groups (0 and the others) are gone; only the primary group is left.
    ///     Ok(out) if euid == 0 => assert_eq!(out, format!("{gid}\n").into_bytes()),
    ///     Ok(_) => {} // without CAP_SETGID the caller's own groups remain (see above)
    ///     Err(e) => assert_eq!(e.stage(), Some(Stage::Credentials)), // e.g. an unmapped uid
    /// }
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `setgroups(2)`, `setgid(2)`, `setuid(2)`.
    #[doc(alias("Credential", "uid", "gid", "groups"))]
    pub fn credential(
        &mut self,
        uid: u32,
        gid: u32,
        groups: impl IntoIterator<Item = u32>,
    ) -> &mut Cmd {
        self.sys.credential = Some(Credential {
            uid,
            gid,
            groups: groups.into_iter().collect(),
            keep_groups: false,
        });
        setter!(self)
    }

    /// `chroot` the child to `dir` (before `chdir`; needs `CAP_SYS_CHROOT`). The `PATH`
    /// lookup happens in the parent, outside the new root; [`dir`](Cmd::dir) is then a
    /// directory inside it, checked by the child only. Without a `dir`, the child starts
    /// at the new root's `/` (as std does), never in a directory outside it.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, ErrorKind, Stage};
    /// let err = Cmd::new("/bin/true").chroot("/no/such/root").run().unwrap_err();
    /// assert_eq!((err.kind(), err.stage()), (ErrorKind::NotFound, Some(Stage::Chroot)));
    /// assert_eq!(err.path(), Some(std::path::Path::new("/no/such/root")));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `chroot(2)`.
    #[doc(alias = "Chroot")]
    pub fn chroot(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.sys.chroot = Some(dir.as_ref().to_owned());
        setter!(self)
    }

    /// Moves the child into new `namespaces` with `unshare(2)` before exec (Go's
    /// `Unshareflags`). A new mount namespace is made private at once (`MS_REC |
    /// MS_PRIVATE` on `/`, as Go does): the child's mounts never propagate back.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, ErrorKind, Namespaces, Stage};
    /// let ours = std::fs::read_link("/proc/self/ns/uts")?;
    /// match Cmd::new("readlink").arg("/proc/self/ns/uts").unshare(Namespaces::UTS).output() {
    ///     Ok(out) => assert_ne!(out, format!("{}\n", ours.display()).into_bytes()),
    ///     // Without CAP_SYS_ADMIN the child's unshare is refused.
    ///     Err(e) => assert_eq!((e.kind(), e.stage()), (ErrorKind::PermissionDenied, Some(Stage::Unshare))),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// `unshare(2)`, `namespaces(7)`, `mount_namespaces(7)`.
    #[doc(alias = "Unshareflags")]
    pub fn unshare(&mut self, namespaces: Namespaces) -> &mut Cmd {
        self.sys.unshare = namespaces;
        setter!(self)
    }

    /// Adds `key=<the child's own pid>` to its environment, written by the child itself
    /// before `execve` (systemd's `LISTEN_PID`). Vfork and Fork strategies only.
    ///
    /// # Examples
    /// ```
    /// let out = forkexec::Cmd::new("sh").args(["-c", "test $LISTEN_PID = $$ && echo ok"])
    ///     .env_child_pid("LISTEN_PID").output()?;
    /// assert_eq!(out, b"ok\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn env_child_pid(&mut self, key: impl AsRef<OsStr>) -> &mut Cmd {
        self.env_child_pid = Some(key.as_ref().to_owned());
        setter!(self)
    }

    /// What happens to the signals this process ignores: by default they stay ignored in
    /// the child, but `SIGPIPE` (which the Rust runtime ignores) gets its default action, as
    /// with std and Go; [`IgnoredSignals::Reset`] resets every disposition (CPython's
    /// `restore_signals`, extended), [`IgnoredSignals::Keep`] keeps `SIGPIPE` ignored too.
    /// See [`IgnoredSignals`] for the costs.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, IgnoredSignals};
    /// // With a full reset the child ignores nothing, whatever this process ignores.
    /// let out = Cmd::new("grep").args(["^SigIgn", "/proc/self/status"])
    ///     .ignored_signals(IgnoredSignals::Reset).output()?;
    /// assert_eq!(out, b"SigIgn:\t0000000000000000\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "restore_signals")]
    pub fn ignored_signals(&mut self, how: IgnoredSignals) -> &mut Cmd {
        self.ignored_signals = how;
        setter!(self)
    }

    /// Creates the child in new `namespaces` by the `clone` itself (Go's `Cloneflags`):
    /// with [`Namespaces::PID`] the child is pid 1 of its namespace. The `Vfork` and `Fork`
    /// strategies (and `Auto`) can express this, `PosixSpawn` cannot. Only namespaces can
    /// be asked for (see [`Namespaces`]): no value makes the child share the parent's fds,
    /// cwd, signal handlers or thread group.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, ErrorKind, Namespaces};
    /// let ours = std::fs::read_link("/proc/self/ns/uts")?;
    /// match Cmd::new("readlink").arg("/proc/self/ns/uts").clone_namespaces(Namespaces::UTS).output() {
    ///     Ok(out) => assert_ne!(out, format!("{}\n", ours.display()).into_bytes()),
    ///     // Without CAP_SYS_ADMIN `clone` is refused.
    ///     Err(e) => assert_eq!(e.kind(), ErrorKind::PermissionDenied),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// `clone(2)`, `namespaces(7)`.
    #[doc(alias("Cloneflags", "clone_flags"))]
    pub fn clone_namespaces(&mut self, namespaces: Namespaces) -> &mut Cmd {
        self.sys.clone_namespaces = namespaces;
        setter!(self)
    }

    /// Moves the child into the cgroup at `dir` before it execs. The directory's
    /// `cgroup.procs` is opened when the command is prepared (and kept for later starts),
    /// so a bad directory fails the start with [`Stage::Cgroup`].
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, ErrorKind, Stage};
    /// let err = Cmd::new("true").cgroup("/sys/fs/cgroup/no-such-group").run().unwrap_err();
    /// assert_eq!((err.kind(), err.stage()), (ErrorKind::NotFound, Some(Stage::Cgroup)));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `cgroups(7)`.
    #[doc(alias("UseCgroupFD", "CgroupFD"))]
    pub fn cgroup(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.sys.cgroup = Some(dir.as_ref().to_owned());
        setter!(self)
    }

    /// The child's file-mode creation mask (`umask(2)`; CPython's `umask`). The `Vfork`
    /// and `Fork` strategies (and `Auto`) set it; `PosixSpawn` cannot.
    ///
    /// # Errors
    /// The start fails with [`ErrorKind::InvalidInput`] for a mask above `0o777`.
    ///
    /// # Examples
    /// ```
    /// let out = forkexec::Cmd::new("sh").args(["-c", "umask"]).umask(0o027).output()?;
    /// assert_eq!(out, b"0027\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `umask(2)`.
    pub fn umask(&mut self, mask: u32) -> &mut Cmd {
        self.sys.umask = Some(mask);
        setter!(self)
    }

    /// Starts the child with the limit of `resource` set to `soft` (and `hard`), as
    /// `ulimit`/`setrlimit` would; set before the credentials change. Call once per
    /// resource (a later call for the same resource is applied after, so it wins). The
    /// `Vfork` and `Fork` strategies (and `Auto`) set them; `PosixSpawn` cannot.
    ///
    /// # Errors
    /// The start fails with [`ErrorKind::InvalidInput`] when `soft > hard`, and with
    /// [`Stage::Rlimit`] when the kernel refuses (raising a hard limit without
    /// `CAP_SYS_RESOURCE`: [`ErrorKind::PermissionDenied`]).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Resource};
    /// let out = Cmd::new("sh").args(["-c", "ulimit -c; ulimit -n"])
    ///     .rlimit(Resource::CORE, 0, 0).rlimit(Resource::NOFILE, 100, 200).output()?;
    /// assert_eq!(out, b"0\n100\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `setrlimit(2)`, `prlimit(2)`.
    #[doc(alias("setrlimit", "ulimit", "prlimit"))]
    pub fn rlimit(&mut self, resource: crate::Resource, soft: u64, hard: u64) -> &mut Cmd {
        self.sys.rlimits.push((resource, soft, hard));
        setter!(self)
    }

    /// Runs `f` in the child just before `execve`, after the crate's own steps (std's
    /// `CommandExt::pre_exec`); several run in the order given. An error of `f` fails the
    /// start with [`Stage::PreExec`] and its errno (`EINVAL` when it has none). The child
    /// gets a copy of this process's memory: with `pre_exec`, `Auto` uses the `Fork`
    /// strategy, and `Vfork` and `PosixSpawn` are refused with
    /// [`ErrorKind::Unsupported`].
    ///
    /// # Safety
    /// `f` runs in a child forked from a possibly multi-threaded process, between fork and
    /// exec: it must only make async-signal-safe calls (no allocation, no lock, no
    /// panic, no `println!`), exactly as std requires of its `pre_exec`.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, ErrorKind, Stage};
    /// let mut cmd = Cmd::new("sh");
    /// cmd.args(["-c", "echo $(cut -d' ' -f19 /proc/$$/stat)"]); // the nice value
    /// // SAFETY: setpriority is async-signal-safe; nothing is allocated.
    /// unsafe {
    ///     cmd.pre_exec(|| {
    ///         if libc::setpriority(libc::PRIO_PROCESS, 0, 5) == 0 { Ok(()) }
    ///         else { Err(std::io::Error::last_os_error()) }
    ///     });
    /// }
    /// assert_eq!(cmd.output()?, b"5\n");
    /// // SAFETY: building an io::Error from an errno allocates nothing.
    /// let err = unsafe { Cmd::new("true").pre_exec(|| Err(std::io::Error::from_raw_os_error(libc::EPERM))).run() };
    /// assert_eq!(err.unwrap_err().stage(), Some(Stage::PreExec));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    // Declares the caller's contract only: no unsafe block here.
    #[allow(unsafe_code)]
    pub unsafe fn pre_exec(
        &mut self,
        f: impl Fn() -> io::Result<()> + Send + Sync + 'static,
    ) -> &mut Cmd {
        self.pre_exec.push(Arc::new(f));
        setter!(self)
    }

    /// Lets the child see fds of the parent that are not close-on-exec (off by default:
    /// the child sees 0-2 and the extra files only).
    ///
    /// # Examples
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use forkexec::Cmd;
    /// let (r, _w) = forkexec::raw::pipe()?;
    /// let inheritable = rustix::io::dup(&r)?; // a copy without close-on-exec
    /// let probe = format!("test -e /proc/$$/fd/{}", inheritable.as_raw_fd());
    /// assert!(!Cmd::new("sh").args(["-c", &probe]).status()?.success());
    /// assert!(Cmd::new("sh").args(["-c", &probe]).keep_other_fds(true).status()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep_other_fds(&mut self, on: bool) -> &mut Cmd {
        self.sys.keep_other_fds = on;
        setter!(self)
    }

    /// The program as given.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Cmd::new("ls").get_program(), "ls");
    /// ```
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments after the program, as std's `Command::get_args` (without `argv[0]`;
    /// see [`get_argv`](Cmd::get_argv) for the whole argv).
    ///
    /// # Examples
    /// ```
    /// let mut cmd = forkexec::Cmd::new("ls");
    /// cmd.args(["-l", "/"]);
    /// assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["-l", "/"]);
    /// ```
    pub fn get_args(&self) -> impl ExactSizeIterator<Item = &OsStr> {
        self.args.iter().map(OsString::as_os_str)
    }

    /// The full argv (`argv[0]` first), as Go's `Args`.
    ///
    /// # Examples
    /// ```
    /// let mut cmd = forkexec::Cmd::new("ls");
    /// cmd.args(["-l", "/"]);
    /// assert_eq!(cmd.get_argv(), ["ls", "-l", "/"]);
    /// ```
    #[doc(alias = "Args")]
    pub fn get_argv(&self) -> Vec<&OsStr> {
        let arg0 = self.arg0.as_deref().unwrap_or(&self.program);
        std::iter::once(arg0)
            .chain(self.args.iter().map(OsString::as_os_str))
            .collect()
    }

    /// The working directory, if set.
    ///
    /// # Examples
    /// ```
    /// let mut cmd = forkexec::Cmd::new("ls");
    /// assert_eq!(cmd.get_dir(), None);
    /// cmd.dir("/tmp");
    /// assert_eq!(cmd.get_dir(), Some(std::path::Path::new("/tmp")));
    /// ```
    #[doc(alias = "get_current_dir")]
    pub fn get_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The environment the child would get, as `KEY=VALUE` entries (Go's `Environ`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a bad key or value.
    ///
    /// # Examples
    /// ```
    /// let mut cmd = forkexec::Cmd::new("env");
    /// cmd.env_clear().env("A", "1").env("A", "2").env("B", "3");
    /// assert_eq!(cmd.environ()?, ["A=2", "B=3"]);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Environ")]
    pub fn environ(&self) -> Result<Vec<OsString>> {
        let pairs = match self.child_env()? {
            Some(p) => p,
            None => merge_env(parent_env(), std::iter::empty::<(&OsStr, Option<&OsStr>)>())?,
        };
        Ok(pairs
            .into_iter()
            .map(|(k, v)| {
                let mut e = k;
                e.push("=");
                e.push(v);
                e
            })
            .collect())
    }

    /// The child's environment when it differs from the parent's; `None` to inherit as is.
    fn child_env(&self) -> Result<Option<Vec<(OsString, OsString)>>> {
        let pwd = match &self.dir {
            Some(d) if !self.env_clear => {
                let abs = if d.is_absolute() {
                    d.clone()
                } else {
                    logical_cwd()?.join(d)
                };
                // POSIX: PWD is an absolute path without `.` or `..` (Go: filepath.Abs).
                Some(clean_absolute(&abs).into_os_string())
            }
            _ => None,
        };
        if !self.env_clear && self.env_changes.is_empty() && pwd.is_none() {
            return Ok(None);
        }
        let base = if self.env_clear {
            Vec::new()
        } else {
            parent_env()
        };
        let pwd_set = self.env_changes.iter().any(|(k, _)| k == "PWD");
        let pwd = pwd
            .filter(|_| !pwd_set)
            .map(|p| (OsString::from("PWD"), Some(p)));
        let changes = pwd.into_iter().chain(self.env_changes.iter().cloned());
        merge_env(base, changes).map(Some)
    }

    /// The child's fds changed: the fd plan kept for `status` no longer holds.
    fn fds_changed(&mut self) -> &mut Cmd {
        if let Some(p) = &mut self.prepared {
            p.direct = false;
        }
        self
    }

    /// The prepared plan, built at the first start after a change.
    #[inline]
    fn prepare(&mut self) -> Result<&mut Prepared> {
        if self.prepared.is_none() {
            self.prepared = Some(self.build()?);
        }
        Ok(self.prepared.as_mut().expect("prepared above"))
    }

    fn build(&self) -> Result<Prepared> {
        if self.program.is_empty() {
            return Err(Error::invalid("empty program name"));
        }
        let env = self.child_env()?;
        let path = if self.program.as_bytes().contains(&b'/') {
            PathBuf::from(&self.program)
        } else {
            // The PATH the child will see; when its environment has none (say after
            // `env_clear`), the parent's, as `execvp` and Go's `exec.Command` would use.
            let child_path = env
                .as_ref()
                .and_then(|pairs| pairs.iter().rev().find(|(k, _)| k == "PATH"))
                .map(|(_, v)| v.clone());
            let path_var = child_path.or_else(|| std::env::var_os("PATH"));
            match look_path_in(&self.program, path_var.as_deref()) {
                Ok(p) => p,
                Err(e) if e.kind() == ErrorKind::Dot && self.allow_dot => {
                    e.path().map(Path::to_owned).ok_or(e)?
                }
                Err(e) => return Err(e),
            }
        };
        let argv = CStringArray::new(self.get_argv())?;
        let mut plan = ExecPlan::from_parts(path_cstring(&path, "program path")?, argv);
        if let Some(pairs) = env {
            plan.set_env(Some(CStringArray::from_env(pairs)?));
        }
        if let Some(dir) = &self.dir {
            let c = path_cstring(dir, "working directory")?;
            // Checked here, before any fork, unless the child changes root first (then
            // only the child can tell, and reports a Chdir error).
            match sys::stat(&c) {
                _ if self.sys.chroot.is_some() => {}
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                Ok(_) => {
                    return Err(Error::from_errno(Stage::Chdir, libc::ENOTDIR).with_path(dir));
                }
                Err(e) => return Err(Error::from_errno(Stage::Chdir, e).with_path(dir)),
            }
            plan.set_cwd(Some(c));
        }
        self.sys.apply(&mut plan)?;
        plan.attrs_mut().pre_exec = spawn::PreExecHooks(self.pre_exec.clone());
        if self.cancel_group && !self.sys.setsid {
            match self.sys.process_group {
                None => plan.attrs_mut().pgid = Some(0),
                Some(0) => {}
                Some(g) => {
                    return Err(Error::invalid(format!(
                        "cancel_process_group needs the child to lead its own group, not join {g}"
                    )));
                }
            }
        }
        plan.set_env_child_pid(self.env_child_pid.as_deref())?;
        plan = plan.ignored_signals(self.ignored_signals);
        Ok(Prepared {
            plan,
            path,
            scratch: Scratch::new(),
            direct: false,
        })
    }

    /// The resolved program path (after the `PATH` lookup), preparing the command if needed.
    ///
    /// # Errors
    /// As [`start`](Cmd::start) before the spawn: lookup and input errors.
    ///
    /// # Examples
    /// ```
    /// let mut cmd = forkexec::Cmd::new("sh");
    /// assert!(cmd.resolved_path()?.is_absolute());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn resolved_path(&mut self) -> Result<&Path> {
        Ok(&self.prepare()?.path)
    }

    /// Starts the child (Go's `Start`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] (NUL bytes, `=` in a key, empty program),
    /// [`ErrorKind::NotFound`] / [`ErrorKind::Dot`] from the `PATH` lookup or a missing
    /// directory, [`ErrorKind::PermissionDenied`] / [`ErrorKind::Exec`] from the child's
    /// failing step, [`ErrorKind::Unsupported`] when the strategy cannot express the
    /// attributes, [`ErrorKind::Io`] when pipes or processes cannot be created. Nothing is
    /// left behind on error: no child, no fd.
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// use forkexec::{Cmd, Stdio};
    /// let mut child = Cmd::new("tr").arg("a-z").arg("A-Z")
    ///     .stdin(Stdio::piped()).stdout(Stdio::piped()).start()?;
    /// child.stdin.take().unwrap().write_all(b"shout")?;
    /// let mut out = String::new();
    /// child.stdout.take().unwrap().read_to_string(&mut out)?;
    /// assert_eq!(out, "SHOUT");
    /// assert!(child.wait()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias("Start", "spawn"))]
    pub fn start(&mut self) -> Result<Child> {
        let r = self.start_unnamed();
        r.map_err(|e| e.with_program(&self.program))
    }

    fn start_unnamed(&mut self) -> Result<Child> {
        let (stdin, stdout, stderr) =
            (self.stdin.clone(), self.stdout.clone(), self.stderr.clone());
        self.start_with(&stdin, &stdout, &stderr, false)
    }

    /// Starts the child with these stdio settings. `internal`: the caller (`output`) keeps
    /// the child to itself and reaps it, so it needs no pidfd unless a timeout or a wait
    /// delay has to watch it; a `Child` handed to the user always has one where the kernel
    /// allows, so its `Process` can be polled and signalled safely.
    fn start_with(
        &mut self,
        stdin: &Stdio,
        stdout: &Stdio,
        stderr: &Stdio,
        internal: bool,
    ) -> Result<Child> {
        let strategy = self.strategy;
        let (timeout, wait_delay) = (self.timeout, self.wait_delay);
        let cancel = Cancel {
            signal: self.cancel_signal,
            group: self.cancel_group,
            func: self.cancel_fn.clone(),
        };
        if timeout == Some(Duration::ZERO) {
            // A deadline already past: nothing is started (Go's Start returns the context's
            // error).
            return Err(Error::new(
                ErrorKind::Timeout,
                "timed out before the start (a timeout of zero)",
            ));
        }
        self.prepare()?;

        let mut ends: [Option<OwnedFd>; 3] = [None, None, None];
        let mut child_ends: [Option<OwnedFd>; 3] = [None, None, None];
        let mut copies: Vec<Copy> = Vec::new();
        for (i, s) in [stdin, stdout, stderr].into_iter().enumerate() {
            // Stdout and stderr to the same writer: one pipe and one copier for both, so the
            // order of the child's writes is kept (Go does the same).
            if let (2, StdioKind::Writer(a), StdioKind::Writer(b)) = (i, &stdout.0, &s.0) {
                if Arc::ptr_eq(a, b) {
                    if let Some(w) = &child_ends[1] {
                        child_ends[2] = Some(w.try_clone().map_err(Error::from_io)?);
                        continue;
                    }
                }
            }
            match &s.0 {
                StdioKind::Piped | StdioKind::Reader(_) | StdioKind::Writer(_) => {
                    let (r, w) = crate::sys::pipe::pipe()?;
                    let (mine, theirs) = if i == 0 { (w, r) } else { (r, w) };
                    child_ends[i] = Some(theirs);
                    match &s.0 {
                        StdioKind::Reader(rd) => copies.push(Copy::In(rd.clone(), mine)),
                        StdioKind::Writer(wr) => copies.push(Copy::Out(wr.clone(), mine)),
                        _ => ends[i] = Some(mine),
                    }
                }
                _ => {}
            }
        }
        let mut inline = [ChildFd::Inherit; 8];
        let mut heap = Vec::new();
        let fds = child_fds(
            &mut inline,
            &mut heap,
            [stdin, stdout, stderr],
            &child_ends,
            &self.extra_files,
        )?;
        let prepared = self.prepared.as_mut().expect("prepared above");
        prepared.direct = false;
        // Internally, the pidfd serves the timeout watcher and the wait delay; a child with
        // neither is only ever signalled before it is reaped, when its pid cannot be reused.
        let want_pidfd = !internal || timeout.is_some() || wait_delay.is_some();
        let spawned = spawn::spawn_with(
            &prepared.plan,
            fds,
            strategy,
            &mut prepared.scratch,
            want_pidfd,
        )?;
        drop(child_ends);
        let process = Process::from_spawned(spawned);
        let [i, o, e] = ends;
        // A thread that cannot be created must not leave the started child behind.
        let abandon = |process: Process, e: Error| -> Error {
            let _ = process.kill();
            let _ = process.wait();
            e
        };
        let mut deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut watcher = None;
        if let (Some(d), Some(pidfd)) = (deadline, process.pidfd()) {
            match Watcher::start(process.pid(), pidfd, d, &cancel, wait_delay) {
                Ok(w) => watcher = Some(w),
                Err(e) => return Err(abandon(process, e)),
            }
            // The watcher enforces it from now on; waits need not.
            deadline = None;
        }
        let copiers = if copies.is_empty() {
            None
        } else {
            match Copiers::start(copies) {
                Ok(c) => Some(c),
                Err(e) => return Err(abandon(process, e)),
            }
        };
        Ok(Child {
            process,
            stdin: i.map(|f| ChildStdin(File::from(f))),
            stdout: o.map(|f| ChildStdout(File::from(f))),
            stderr: e.map(|f| ChildStderr(File::from(f))),
            copiers,
            deadline,
            wait_delay,
            cancel,
            timed_out: false,
            watcher,
            waited: false,
            cancel_error: None,
        })
    }

    /// Replaces this process with the command (std's `CommandExt::exec`, Go's
    /// `syscall.Exec`): the program is looked up as for [`start`](Cmd::start), and this
    /// process takes the steps a child would (stdio, extra files, directory, session,
    /// credentials, limits, signal mask), then `execve`. It returns only on failure.
    ///
    /// The stdio settings apply as for a child, **including the default null device**: say
    /// [`Stdio::inherit`] to keep this process's stdin, stdout or stderr. Pipes and
    /// readers/writers need a second process and are refused, as are clone namespaces (use
    /// [`unshare`](Cmd::unshare)). When the exec fails after a step changed this process,
    /// the change stays, as with std: its fds (moved, others marked close-on-exec),
    /// directory, session and group, umask, limits, namespaces, cgroup, pdeathsig, the
    /// calling thread's credentials and signal mask, `SIGPIPE` back at its default, and
    /// with [`IgnoredSignals::Reset`] every disposition.
    ///
    /// # Errors
    /// The returned error: [`ErrorKind::InvalidInput`] for a pipe, reader or writer as
    /// stdio; otherwise as [`start`](Cmd::start) (the failing step and errno).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, ErrorKind};
    /// // A failed exec returns; a successful one never does (try it in a child process).
    /// let err = Cmd::new("/no/such/program").exec();
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// let err = Cmd::new("true").stdout(forkexec::Stdio::piped()).exec();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// ```
    ///
    /// # References
    /// `execve(2)`.
    #[doc(alias("Exec", "execve", "execvp"))]
    pub fn exec(&mut self) -> Error {
        let e = self.exec_unnamed();
        e.with_program(&self.program)
    }

    fn exec_unnamed(&mut self) -> Error {
        let (stdin, stdout, stderr) =
            (self.stdin.clone(), self.stdout.clone(), self.stderr.clone());
        for s in [&stdin, &stdout, &stderr] {
            if matches!(
                s.0,
                StdioKind::Piped | StdioKind::Reader(_) | StdioKind::Writer(_)
            ) {
                return Error::invalid(
                    "exec: a pipe, reader or writer needs a second process; this one is replaced",
                );
            }
        }
        if let Err(e) = self.prepare() {
            return e;
        }
        let child_ends: [Option<OwnedFd>; 3] = [None, None, None];
        let mut inline = [ChildFd::Inherit; 8];
        let mut heap = Vec::new();
        let fds = match child_fds(
            &mut inline,
            &mut heap,
            [&stdin, &stdout, &stderr],
            &child_ends,
            &self.extra_files,
        ) {
            Ok(f) => f,
            Err(e) => return e,
        };
        let prepared = self.prepared.as_ref().expect("prepared above");
        spawn::exec_here(&prepared.plan, fds)
    }

    /// Starts the child and waits for it; `Ok` whatever its exit status (std's `status`).
    ///
    /// # Errors
    /// As [`start`](Cmd::start) and [`Child::wait`] (timeouts, wait delay).
    ///
    /// # Examples
    /// ```
    /// let st = forkexec::Cmd::new("sh").args(["-c", "exit 4"]).status()?;
    /// assert_eq!(st.exit_code(), 4);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn status(&mut self) -> Result<ProcessState> {
        let r = self.status_unnamed();
        r.map_err(|e| e.with_program(&self.program))
    }

    fn status_unnamed(&mut self) -> Result<ProcessState> {
        let no_pipe =
            |s: &Stdio| matches!(s.0, StdioKind::Null | StdioKind::Inherit | StdioKind::Fd(_));
        if self.timeout.is_none()
            && no_pipe(&self.stdin)
            && no_pipe(&self.stdout)
            && no_pipe(&self.stderr)
        {
            return self.status_direct();
        }
        self.start()?.wait()
    }

    /// [`status`](Cmd::status) for a child with no pipe and no timeout: nothing to copy,
    /// nothing to watch and nobody who could signal it, so it is spawned and reaped here
    /// without a [`Child`], a [`Process`] or a pidfd. It is reaped by pid (as std and Go
    /// do), which stays its own until this call reaps it, unless some other code of the
    /// process reaps any child (`waitpid(-1)`).
    fn status_direct(&mut self) -> Result<ProcessState> {
        let (n_fds, strategy) = (3 + self.extra_files.len(), self.strategy);
        let prepared = self.prepare()?;
        if prepared.direct {
            // The same fds as the last time: every source is still open (the command owns
            // them, or it is the shared /dev/null).
            let ops = prepared.scratch.ops();
            let spawned = spawn::spawn_planned(&prepared.plan, ops, n_fds, strategy, false)?;
            return crate::process::reap(spawned.pid, None);
        }
        let mut inline = [ChildFd::Inherit; 8];
        let mut heap = Vec::new();
        let none = [None, None, None];
        let fds = child_fds(
            &mut inline,
            &mut heap,
            [&self.stdin, &self.stdout, &self.stderr],
            &none,
            &self.extra_files,
        )?;
        let prepared = self.prepared.as_mut().expect("prepared above");
        let spawned =
            spawn::spawn_with(&prepared.plan, fds, strategy, &mut prepared.scratch, false)?;
        prepared.direct = true;
        crate::process::reap(spawned.pid, None)
    }

    /// Starts the child and waits for it; an unsuccessful exit is an
    /// [`ErrorKind::ExitStatus`] error carrying the state (Go's `Run`).
    ///
    /// # Errors
    /// As [`status`](Cmd::status), plus [`ErrorKind::ExitStatus`].
    ///
    /// # Examples
    /// ```
    /// let err = forkexec::Cmd::new("false").run().unwrap_err();
    /// assert_eq!(err.to_string(), "exit status 1");
    /// assert_eq!(err.state().unwrap().exit_code(), 1);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Run")]
    pub fn run(&mut self) -> Result<()> {
        let r = self.run_unnamed();
        r.map_err(|e| e.with_program(&self.program))
    }

    fn run_unnamed(&mut self) -> Result<()> {
        let st = self.status()?;
        if st.success() {
            Ok(())
        } else {
            Err(Error::exit_status(st))
        }
    }
}

/// The child's fds: 0-2 from `stdio` (or the child end of their pipe), then the extra files;
/// in `inline` when they fit (no allocation), else in `heap`.
fn child_fds<'a, 'b>(
    inline: &'b mut [ChildFd<'a>; 8],
    heap: &'b mut Vec<ChildFd<'a>>,
    stdio: [&'a Stdio; 3],
    child_ends: &'a [Option<OwnedFd>; 3],
    extra: &'a [Arc<OwnedFd>],
) -> Result<&'b mut [ChildFd<'a>]> {
    let n = 3 + extra.len();
    let fds: &mut [ChildFd<'a>] = if n <= inline.len() {
        &mut inline[..n]
    } else {
        heap.resize(n, ChildFd::Inherit);
        heap
    };
    for (i, s) in stdio.into_iter().enumerate() {
        fds[i] = match (&s.0, &child_ends[i]) {
            (_, Some(fd)) => ChildFd::Fd(fd.as_fd()),
            (StdioKind::Null, _) => ChildFd::Fd(dev_null()?),
            (StdioKind::Inherit, _) => ChildFd::Inherit,
            (StdioKind::Fd(fd), _) => ChildFd::Fd(fd.as_fd()),
            _ => unreachable!("pipes have a child end"),
        };
    }
    for (i, f) in extra.iter().enumerate() {
        fds[3 + i] = ChildFd::Fd(f.as_fd());
    }
    Ok(fds)
}

/// The current directory as the user reached it (Go's `os.Getwd`): `$PWD` when it is
/// absolute and names the same directory as `.` (through symbolic links, say), else the
/// physical path.
fn logical_cwd() -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    if let Some(pwd) = std::env::var_os("PWD").map(PathBuf::from) {
        if pwd.is_absolute() {
            if let (Ok(a), Ok(b)) = (std::fs::metadata(&pwd), std::fs::metadata(".")) {
                if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
                    return Ok(pwd);
                }
            }
        }
    }
    std::env::current_dir().map_err(Error::from_io)
}

/// `p` (absolute) without `.` and `..` components, lexically (Go's `filepath.Clean`).
fn clean_absolute(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn parent_env() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k;
            e.push("=");
            e.push(v);
            e
        })
        .collect()
}

/// A running child started by [`Cmd::start`].
///
/// Dropping a `Child` does not wait for it (as `std`); call [`wait`](Child::wait).
///
/// # Examples
/// ```
/// let mut child = forkexec::Cmd::new("sh").args(["-c", "exit 3"]).start()?;
/// assert!(child.pid() > 0);
/// assert_eq!(child.wait()?.exit_code(), 3);
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug)]
pub struct Child {
    process: Process,
    /// The parent's end of the child's stdin, when it was [`Stdio::piped()`].
    pub stdin: Option<ChildStdin>,
    /// The parent's end of the child's stdout, when it was [`Stdio::piped()`].
    pub stdout: Option<ChildStdout>,
    /// The parent's end of the child's stderr, when it was [`Stdio::piped()`].
    pub stderr: Option<ChildStderr>,
    copiers: Option<Copiers>,
    deadline: Option<Instant>,
    wait_delay: Option<Duration>,
    cancel: Cancel,
    timed_out: bool,
    watcher: Option<Watcher>,
    /// A wait already returned the child's end: a later one is `ProcessDone` (Go).
    waited: bool,
    /// The error of the cancel function, if it failed.
    cancel_error: Option<io::Error>,
}

impl Child {
    /// The child's pid (still available after it is waited for); std's `Child::id`.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Stdio};
    /// let mut child = Cmd::new("sh").args(["-c", "echo $$"]).stdout(Stdio::piped()).start()?;
    /// let printed = std::io::read_to_string(child.stdout.take().unwrap())?;
    /// child.wait()?;
    /// assert_eq!(printed.trim_end(), child.pid().to_string());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "id")]
    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// The child as a [`Process`] (signal it, poll it); Go's `Cmd.Process`.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Signal};
    /// let mut child = Cmd::new("sleep").arg("10").start()?;
    /// child.process().signal(Signal::TERM)?;
    /// assert_eq!(child.wait()?.signal(), Some(Signal::TERM));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Process")]
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Sends `SIGKILL`.
    ///
    /// # Errors
    /// [`ErrorKind::ProcessDone`] when it has exited already.
    ///
    /// # Examples
    /// ```
    /// let mut child = forkexec::Cmd::new("sleep").arg("30").start()?;
    /// child.kill()?;
    /// assert_eq!(child.wait()?.to_string(), "signal: killed");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `pidfd_send_signal(2)`, `kill(2)`.
    #[doc(alias = "Kill")]
    pub fn kill(&self) -> Result<()> {
        self.process.kill()
    }

    /// Sends `sig` to the child, through its pidfd (Go's `Process.Signal`). Signal 0 probes
    /// whether it is still there.
    ///
    /// # Errors
    /// [`ErrorKind::ProcessDone`] when it has been reaped (by a wait); [`ErrorKind::Io`]
    /// for the kernel's refusals.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Signal};
    /// let mut child = Cmd::new("sleep").arg("30").start()?;
    /// child.signal(Signal::TERM)?;
    /// assert_eq!(child.wait()?.signal(), Some(Signal::TERM));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `pidfd_send_signal(2)`.
    #[doc(alias = "Signal")]
    pub fn signal(&self, sig: Signal) -> Result<()> {
        self.process.signal(sig)
    }

    /// Reaps the child if it has exited, without blocking (std's `try_wait`); `None` while
    /// it runs. Its stdio copies are not waited for here: [`wait`](Child::wait) finishes
    /// them afterwards and returns this same state.
    ///
    /// # Errors
    /// As [`wait`](Child::wait).
    ///
    /// # Examples
    /// ```
    /// let mut child = forkexec::Cmd::new("sleep").arg("30").start()?;
    /// assert!(child.try_wait()?.is_none());
    /// child.kill()?;
    /// while child.try_wait()?.is_none() {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// assert_eq!(child.wait()?.to_string(), "signal: killed");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `waitid(2)` with `WNOHANG`.
    pub fn try_wait(&mut self) -> Result<Option<ProcessState>> {
        if self.waited {
            return Err(crate::process::process_done());
        }
        if let Some(st) = self.process.reaped_state() {
            return Ok(Some(st));
        }
        if self.watcher.is_some() && !self.exited_unreaped(Some(Duration::ZERO))? {
            return Ok(None);
        }
        self.end_watch();
        self.process.try_wait()
    }

    /// Whether the child has exited (not reaped: its pid stays its own), waiting at most
    /// `timeout` (`None`: until it does). Through the pidfd.
    fn exited_unreaped(&self, timeout: Option<Duration>) -> Result<bool> {
        match self.process.pidfd() {
            Some(fd) => crate::sys::wait::poll_readable(fd, timeout),
            None => Ok(true),
        }
    }

    /// Ends the timeout's registration, once the child has exited and before it is reaped
    /// (the timer never signals a reaped pid), keeping what it did.
    fn end_watch(&mut self) {
        if let Some(w) = self.watcher.take() {
            (self.timed_out, self.cancel_error) = w.finish();
        }
    }

    /// Waits at most `timeout` for the child to exit. When it has, this finishes as
    /// [`wait`](Child::wait) does (the stdio copies complete, bounded by the wait delay) and
    /// returns its state; `None` while it still runs, and a later `wait` or `wait_timeout`
    /// goes on from there. Reaping the child through [`process`](Child::process) does not
    /// break a later `wait` either: it still finishes the copies and returns the state.
    ///
    /// # Errors
    /// As [`wait`](Child::wait).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, Stdio};
    /// let (r, w) = forkexec::raw::pipe()?;
    /// let mut child = Cmd::new("sh").args(["-c", "read x; echo got $x"])
    ///     .stdin(Stdio::from(r)).stdout(Stdio::piped()).start()?;
    /// assert!(child.wait_timeout(Duration::from_millis(10))?.is_none());
    /// drop(w); // EOF: `read` returns, the shell echoes and exits
    /// let mut out = child.stdout.take().unwrap();
    /// let st = child.wait_timeout(Duration::from_secs(30))?.expect("exited");
    /// assert!(st.success());
    /// assert_eq!(std::io::read_to_string(&mut out)?, "got\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ProcessState>> {
        if self.waited {
            return Err(crate::process::process_done());
        }
        if self.process.reaped_state().is_none() && self.process.wait_timeout(timeout)?.is_none() {
            return Ok(None);
        }
        self.wait().map(Some)
    }

    /// Waits for the process itself, applying the timeout and the cancel signal.
    fn wait_process(&mut self) -> Result<ProcessState> {
        if let Some(st) = self.process.reaped_state() {
            // Reaped already (try_wait, or through `process()`).
            self.end_watch();
            return Ok(st);
        }
        if self.watcher.is_some() {
            // Exited first, then the timer lets go, then the reap: a cancel in flight never
            // meets a reused pid.
            self.exited_unreaped(None)?;
            self.end_watch();
            return self.process.wait_exclusive();
        }
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(st) = self.process.wait_timeout(left)? {
                return Ok(st);
            }
            self.cancel_now();
            if let Some(d) = self.wait_delay {
                if let Some(st) = self.process.wait_timeout(d)? {
                    return Ok(st);
                }
                let _ = self.process.kill();
            }
        }
        self.process.wait_exclusive()
    }

    fn cancel_now(&mut self) {
        self.timed_out = true;
        // Not reaped yet (this is its owner, before the wait): its pid is its own.
        let pidfd = self.process.pidfd();
        self.cancel_error = timer::cancel_now(self.process.pid(), pidfd, &self.cancel, true);
    }

    /// Waits for the child to exit and for its stdio copies to finish, then returns its
    /// state (Go's `Wait`). Closes the child's stdin pipe first, so a child reading it sees
    /// EOF.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] (with the state) when the timeout cancelled it;
    /// [`ErrorKind::WaitDelay`] when stdio copies outlived the wait delay of a successful
    /// run; [`ErrorKind::ProcessDone`] when it was waited for already;
    /// [`ErrorKind::Io`] when a copy failed.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{Cmd, ErrorKind};
    /// let err = Cmd::new("sleep").arg("30").timeout(Duration::from_millis(50)).status().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Timeout);
    /// assert_eq!(err.state().unwrap().to_string(), "signal: killed");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `waitid(2)`.
    #[doc(alias = "Wait")]
    pub fn wait(&mut self) -> Result<ProcessState> {
        drop(self.stdin.take());
        self.finish(false)
    }

    fn finish(&mut self, delay_hit: bool) -> Result<ProcessState> {
        if self.waited {
            return Err(crate::process::process_done());
        }
        let st = self.wait_process()?;
        self.waited = true;
        let mut delay_hit = delay_hit;
        if let Some(c) = self.copiers.take() {
            match c.finish(self.wait_delay).map_err(|e| e.with_state(st))? {
                CopyEnd::Done => {}
                CopyEnd::DelayExpired => delay_hit = true,
            }
        }
        if self.timed_out {
            let msg = match self.cancel_error.take() {
                // Go: Wait reports an error of Cmd.Cancel.
                Some(e) => format!("timed out: {st} (the cancel function failed: {e})"),
                None => format!("timed out: {st}"),
            };
            return Err(Error::new(ErrorKind::Timeout, msg).with_state(st));
        }
        if delay_hit && st.success() {
            return Err(Error::new(
                ErrorKind::WaitDelay,
                "exec: WaitDelay expired before I/O complete",
            )
            .with_state(st));
        }
        Ok(st)
    }
}

enum Copy {
    In(Arc<Mutex<dyn Read + Send>>, OwnedFd),
    Out(Arc<Mutex<dyn Write + Send>>, OwnedFd),
}

enum CopyEnd {
    Done,
    DelayExpired,
}

/// Threads copying between a child's pipes and user readers/writers. Each polls its pipe
/// together with a cancel pipe, so the wait delay can stop it.
#[derive(Debug)]
struct Copiers {
    threads: Vec<JoinHandle<io::Result<()>>>,
    done: mpsc::Receiver<()>,
    cancel: Option<OwnedFd>,
}

impl Copiers {
    fn start(copies: Vec<Copy>) -> Result<Copiers> {
        let (cancel_r, cancel_w) = crate::sys::pipe::pipe()?;
        let cancel_r = Arc::new(cancel_r);
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::new();
        for c in copies {
            let (tx, cancel_r) = (tx.clone(), cancel_r.clone());
            let h = std::thread::Builder::new()
                .name("forkexec-copy".into())
                .spawn(move || {
                    let r = copy_loop(c, cancel_r.as_fd());
                    let _ = tx.send(());
                    r
                })
                .map_err(Error::from_io)?;
            threads.push(h);
        }
        Ok(Copiers {
            threads,
            done: rx,
            cancel: Some(cancel_w),
        })
    }

    fn finish(mut self, wait_delay: Option<Duration>) -> Result<CopyEnd> {
        let mut end = CopyEnd::Done;
        if let Some(d) = wait_delay {
            let deadline = Instant::now().checked_add(d);
            for _ in 0..self.threads.len() {
                let left = deadline.map_or(Duration::MAX, |t| {
                    t.saturating_duration_since(Instant::now())
                });
                if self.done.recv_timeout(left).is_err() {
                    end = CopyEnd::DelayExpired;
                    break;
                }
            }
        }
        // Stop the copies only when the delay ran out; otherwise they end at EOF.
        if let CopyEnd::DelayExpired = end {
            drop(self.cancel.take());
            // A copy blocked in the caller's own reader or writer cannot see the cancel:
            // give the others a moment to stop, then leave the stuck ones behind (as Go
            // leaves its goroutine) rather than blocking past the delay.
            let grace = Instant::now() + Duration::from_millis(50);
            while self.threads.iter().any(|t| !t.is_finished()) && Instant::now() < grace {
                let _ = self.done.recv_timeout(Duration::from_millis(5));
            }
            self.threads.retain(|t| t.is_finished());
        }
        let mut first_err = None;
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(io::Error::other("stdio copy thread panicked"));
                }
            }
        }
        match (end, first_err) {
            (CopyEnd::DelayExpired, _) => Ok(CopyEnd::DelayExpired),
            (_, Some(e)) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::from_io(e)),
            _ => Ok(CopyEnd::Done),
        }
    }
}

/// Waits until `fd` is ready for `events` or the cancel pipe closes; `false` on cancel.
fn wait_ready(fd: BorrowedFd<'_>, events: i16, cancel: BorrowedFd<'_>) -> io::Result<bool> {
    loop {
        let mut p = [
            libc::pollfd {
                fd: fd.as_raw_fd(),
                events,
                revents: 0,
            },
            libc::pollfd {
                fd: cancel.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        match sys::poll(&mut p, -1) {
            Err(libc::EINTR) => continue,
            Err(e) => return Err(io::Error::from_raw_os_error(e)),
            Ok(_) => {}
        }
        if p[1].revents != 0 {
            return Ok(false);
        }
        if p[0].revents != 0 {
            return Ok(true);
        }
    }
}

fn copy_loop(c: Copy, cancel: BorrowedFd<'_>) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    match c {
        // The user's writer or reader is locked for one chunk at a time, never across a
        // wait on the pipe: any number of copiers sharing one writer take turns and cannot
        // deadlock (one waiting for the lock while its child blocks on a full pipe).
        Copy::Out(w, fd) => loop {
            if !wait_ready(fd.as_fd(), libc::POLLIN, cancel)? {
                return Ok(());
            }
            let n = sys::read(fd.as_fd(), &mut buf).map_err(io::Error::from_raw_os_error)?;
            let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
            if n == 0 {
                return w.flush();
            }
            w.write_all(&buf[..n])?;
        },
        Copy::In(r, fd) => {
            let mut file = File::from(fd);
            loop {
                let n = r.lock().unwrap_or_else(|p| p.into_inner()).read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                if !wait_ready(file.as_fd(), libc::POLLOUT, cancel)? {
                    return Ok(());
                }
                file.write_all(&buf[..n])?;
            }
        }
    }
}
