//! Go's `exec.Cmd` in blocking Rust: [`Cmd`](crate::Cmd), [`Stdio`](crate::Stdio), [`Child`](crate::Child).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::attr::SysProcAttr;
use crate::error::Result;
use crate::spawn::{ExecPlan, Scratch, Strategy};
use crate::status::Signal;
use crate::sys::cstr::merge_env;

mod attrs;
mod cached;
mod child;
mod copy;
mod interop;
mod output;
mod start;
mod stdio;
mod timer;
mod waitset;
use cached::Cached;
pub use child::Child;
use copy::{Copiers, CopyEnd, CopyJob};
pub use output::{Buffer, Output};
use start::parent_env;
pub use stdio::{ChildStderr, ChildStdin, ChildStdout, Stdio};
use stdio::{StdioKind, dev_null};
use timer::CancelFn;
pub use timer::CancelTarget;
pub use waitset::{Stream, WaitEvent, WaitSet};

/// The parts of a `Cmd` prepared at the first start and reused by the next ones.
#[derive(Clone)]
struct Prepared {
    plan: ExecPlan,
    /// The program's path: `None` while the child does the `PATH` search (until
    /// [`Cmd::resolved_path`] asks).
    path: Option<PathBuf>,
    /// The fd plan of the last start, reused while the child's fds stay the same.
    scratch: Scratch,
    /// `scratch` holds the plan of the command's own stdio and extra files (no pipe), as
    /// [`Cmd::status`](crate::Cmd::status) starts it: it can spawn again without looking at them. Cleared by
    /// the stdio and extra-file setters and by every other kind of start.
    direct: bool,
}

/// A command to run (Go's `exec.Cmd`): program, arguments, environment, directory, stdio,
/// extra files, timeouts, Linux attributes and the spawn strategy.
///
/// The program is looked up, when it has no `/`, on the `PATH` the child will see, or the
/// parent's when the child's environment has none (see [`look_path`](crate::look_path)); a
/// result relative to the current directory is refused ([`ErrorKind::Dot`](crate::ErrorKind::Dot)) unless
/// [`allow_dot`](Cmd::allow_dot) is set. When every `PATH` element is absolute (so `ErrDot`
/// cannot be the answer) without a `.` or `..` component (Go resolves those by text, `execve`
/// through symbolic links), and neither `chroot` nor credentials change what a path names or
/// who may run it, the child itself tries each candidate in turn, as `execvp` and std do,
/// so the parent makes no system call for the lookup; the program that runs and the
/// errors are those of the lookup (a program not found is started and reaped, then
/// reported with Go's `executable file not found in $PATH`).
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
    /// What a start prepares the plan from; changed only through `spec.edit()`, which drops
    /// the prepared plan.
    spec: Cached<Spec, Prepared>,
    /// The child's stdio and extra files; changed only through [`Cmd::io_mut`](crate::Cmd::io_mut).
    io: Io,
    timeout: Option<Duration>,
    wait_delay: Option<Duration>,
    cancel_signal: Signal,
    output_limit: Option<usize>,
    cancel_fn: Option<Arc<CancelFn>>,
}

/// The parts of a [`Cmd`](crate::Cmd) its plan is prepared from.
#[derive(Clone)]
struct Spec {
    program: OsString,
    args: Vec<OsString>,
    arg0: Option<OsString>,
    env_clear: bool,
    env_changes: Vec<(OsString, Option<OsString>)>,
    dir: Option<PathBuf>,
    allow_dot: bool,
    cancel_group: bool,
    pre_exec: Vec<Arc<crate::sys::child::PreExecFn>>,
    sys: SysProcAttr,
    strategy: Strategy,
}

/// The child's stdio and extra files.
#[derive(Clone)]
struct Io {
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    extra_files: Vec<Arc<OwnedFd>>,
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cmd")
            .field("program", &self.spec.program)
            .field("args", &self.spec.args)
            .field("dir", &self.spec.dir)
            .field("env_clear", &self.spec.env_clear)
            .field("env_changes", &self.spec.env_changes)
            .field("stdin", &self.io.stdin)
            .field("stdout", &self.io.stdout)
            .field("stderr", &self.io.stderr)
            .field("strategy", &self.spec.strategy)
            .finish_non_exhaustive()
    }
}

impl Cmd {
    /// A command running `program` (Go's `exec.Command(name)`), with no arguments, the
    /// parent's environment, stdio on the null device, and [`Strategy::Auto`](crate::raw::Strategy::Auto).
    ///
    /// # Examples
    /// ```
    /// assert!(forkexec::Cmd::new("true").status()?.success());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "exec.Command")]
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            spec: Cached::new(Spec {
                program: program.as_ref().to_owned(),
                args: Vec::new(),
                arg0: None,
                env_clear: false,
                env_changes: Vec::new(),
                dir: None,
                allow_dot: false,
                cancel_group: false,
                pre_exec: Vec::new(),
                sys: SysProcAttr::default(),
                strategy: Strategy::Auto,
            }),
            io: Io {
                stdin: Stdio::null(),
                stdout: Stdio::null(),
                stderr: Stdio::null(),
                extra_files: Vec::new(),
            },
            timeout: None,
            wait_delay: None,
            cancel_signal: Signal::KILL,
            output_limit: None,
            cancel_fn: None,
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
        self.spec.edit().args.push(arg.as_ref().to_owned());
        self
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
        self.spec
            .edit()
            .args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
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
        self.spec.edit().arg0 = Some(arg0.as_ref().to_owned());
        self
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
        self.spec
            .edit()
            .env_changes
            .push((key.as_ref().to_owned(), Some(val.as_ref().to_owned())));
        self
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
            self.spec
                .edit()
                .env_changes
                .push((k.as_ref().to_owned(), Some(v.as_ref().to_owned())));
        }
        self
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
        self.spec
            .edit()
            .env_changes
            .push((key.as_ref().to_owned(), None));
        self
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
        self.spec.edit().env_clear = true;
        self.spec.edit().env_changes.clear();
        self
    }

    /// Runs the child in `dir`. With an inherited environment, `PWD` follows (as Go). The
    /// directory is checked when the command is prepared (by the child instead under
    /// [`chroot`](Cmd::chroot)): a missing one fails the start with [`Stage::Chdir`](crate::Stage::Chdir). A
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
        self.spec.edit().dir = Some(dir.as_ref().to_owned());
        self
    }

    /// The child's stdin (default [`Stdio::null()`]): a [`Stdio`](crate::Stdio), or what converts into
    /// one (an [`OwnedFd`](std::os::fd::OwnedFd), a [`File`](std::fs::File), a [`ChildStdout`] of another child).
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
        self.io_mut().stdin = s.into();
        self
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
        self.io_mut().stdout = s.into();
        self
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
        self.io_mut().stderr = s.into();
        self
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
        self.io_mut().extra_files.push(Arc::new(fd.into()));
        self
    }

    /// The spawn strategy (default [`Strategy::Auto`](crate::raw::Strategy::Auto)). An explicit strategy is used as is:
    /// when it cannot express the command, the start fails with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
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
        self.spec.edit().strategy = s;
        self
    }

    /// Cancels the child with [`cancel_signal`](Cmd::cancel_signal) when it runs longer
    /// than `d` (Go's `CommandContext` with a deadline); waiting then returns
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout). The clock starts at [`start`](Cmd::start). One timer
    /// thread of the crate, polling the pidfds of every child with a timeout, enforces the
    /// deadline while the child runs, whether or not anyone waits (so a caller reading the
    /// child's output is not stuck past it): a thousand children with timeouts cost one
    /// thread, which ends when no timeout is pending. On a kernel without pidfds (before
    /// 5.3) the deadline is enforced inside the waits only: [`Child::wait`](crate::Child::wait),
    /// [`wait_timeout`](crate::Child::wait_timeout) and [`try_wait`](crate::Child::try_wait)
    /// cancel a child found running past it (`tests/old_kernel.rs`). To cancel what the child started too,
    /// see [`cancel_process_group`](Cmd::cancel_process_group); to stop waiting without
    /// cancelling, [`Child::wait_timeout`](crate::Child::wait_timeout).
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
    /// [`ErrorKind::WaitDelay`](crate::ErrorKind::WaitDelay) if the run was otherwise successful. A cancelled child still
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
    /// The start fails with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when
    /// [`process_group`](Cmd::process_group) puts the child in another process's group.
    #[doc(alias("killpg", "Setpgid"))]
    pub fn cancel_process_group(&mut self, on: bool) -> &mut Cmd {
        self.spec.edit().cancel_group = on;
        self
    }

    /// Cancels the child at its timeout by calling `f` instead of sending
    /// [`cancel_signal`](Cmd::cancel_signal) (Go's `Cmd.Cancel`): to ask it to stop in
    /// its own way (a signal to its group, a message on a socket). `f` runs on the crate's
    /// timer thread, shared by every child with a timeout, so it should not block (and
    /// must not wait for another command's timeout); the child is not reaped while it
    /// runs (a `Child` waits for it before reaping; reaping through
    /// [`Child::process`](crate::Child::process) directly bypasses that). If the child still runs
    /// [`wait_delay`](Cmd::wait_delay) later, it gets `SIGKILL`. An error of `f` is
    /// reported in the wait's [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) error.
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
        self.spec.edit().allow_dot = on;
        self
    }

    /// The program as given.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Cmd::new("ls").get_program(), "ls");
    /// ```
    pub fn get_program(&self) -> &OsStr {
        &self.spec.program
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
        self.spec.args.iter().map(OsString::as_os_str)
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
        self.spec.argv()
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
        self.spec.dir.as_deref()
    }

    /// The environment the child would get, as `KEY=VALUE` entries (Go's `Environ`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a bad key or value.
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
        let pairs = match self.spec.child_env()? {
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
}
