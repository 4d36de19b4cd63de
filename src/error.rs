//! The crate's one error type: a kind, the step that failed, the errno and the path concerned.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What went wrong, coarsely: match on this.
///
/// # Examples
/// ```
/// use forkexec::{ErrorKind, raw};
/// let err = raw::CStringArray::new(["a\0b"]).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file, directory or program does not exist (`ENOENT`, Go's `exec.ErrNotFound`).
    NotFound,
    /// The kernel refused access (`EACCES`, `EPERM`), e.g. a file without an execute bit.
    PermissionDenied,
    /// The request itself is malformed: a NUL byte, `=` in an env key, an empty program,
    /// a bad fd. Detected in the parent, before any fork (or reported by a system call
    /// outside process creation as `EINVAL`, `EBADF` or `E2BIG`).
    InvalidInput,
    /// Go's `exec.ErrDot`: the program was found through a relative `PATH` entry.
    Dot,
    /// The child failed on its way to `execve`; [`Error::stage`] names the step.
    Exec,
    /// The child ran and exited unsuccessfully (Go's `*exec.ExitError`).
    ExitStatus,
    /// The child ran past its timeout and was cancelled.
    Timeout,
    /// Go's `exec.ErrWaitDelay`: the child exited but its stdio was still held open.
    WaitDelay,
    /// Go's `os.ErrProcessDone`: the process was already waited for.
    ProcessDone,
    /// The child wrote more than [`Cmd::output_limit`](crate::Cmd::output_limit) allows
    /// and was killed.
    OutputLimit,
    /// The request cannot be expressed by the chosen strategy or by this kernel.
    Unsupported,
    /// A safe `fork()` was refused because the process has more than one thread, or its
    /// thread count cannot be verified (`/proc` is not the real procfs).
    MultiThreaded,
    /// Any other operating-system error.
    Io,
}

impl fmt::Display for ErrorKind {
    /// A short description: `"not found"`, `"exit status"`, ...
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::ErrorKind::NotFound.to_string(), "not found");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Dot => "found in the current directory",
            ErrorKind::Exec => "exec failed",
            ErrorKind::ExitStatus => "exit status",
            ErrorKind::Timeout => "timed out",
            ErrorKind::WaitDelay => "wait delay expired",
            ErrorKind::ProcessDone => "process already finished",
            ErrorKind::OutputLimit => "output limit exceeded",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::MultiThreaded => "multi-threaded",
            ErrorKind::Io => "I/O error",
        })
    }
}

/// Declares [`Stage`] from one table: its number (what the child side writes), its doc,
/// and the short name error messages use; `from_u8` and `name` are generated from it, so a
/// new step is one line here.
macro_rules! stages {
    ($($(#[doc = $doc:literal])* $name:ident = $n:literal, $text:literal;)*) => {
        /// The step of process creation that failed. The child side reports it to the
        /// parent together with the errno.
        ///
        /// # Examples
        /// ```
        /// use forkexec::Stage;
        /// assert_eq!(Stage::from_u8(Stage::Chdir as u8), Some(Stage::Chdir));
        /// assert_eq!(Stage::Exec.to_string(), "exec");
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        #[non_exhaustive]
        pub enum Stage {
            $($(#[doc = $doc])* $name = $n,)*
        }

        impl Stage {
            /// Decodes a stage number as written by the child side; `None` for an unknown
            /// number.
            ///
            /// # Examples
            /// ```
            /// assert_eq!(forkexec::Stage::from_u8(15), Some(forkexec::Stage::Exec));
            /// assert_eq!(forkexec::Stage::from_u8(0), None);
            /// ```
            pub const fn from_u8(n: u8) -> Option<Stage> {
                match n {
                    $($n => Some(Stage::$name),)*
                    _ => None,
                }
            }

            /// The short name used in error messages (`"chdir"`, `"exec"`, ...).
            ///
            /// # Examples
            /// ```
            /// assert_eq!(forkexec::Stage::Dup.name(), "dup2");
            /// ```
            pub const fn name(self) -> &'static str {
                match self {
                    $(Stage::$name => $text,)*
                }
            }
        }
    };
}

stages! {
    /// Creating a pipe or other fd in the parent.
    Pipe = 1, "pipe";
    /// `fork`/`clone` itself.
    Fork = 2, "fork";
    /// `posix_spawn` or its attribute set-up.
    Spawn = 3, "posix_spawn";
    /// Resetting signal dispositions or the signal mask in the child.
    Signals = 4, "signal reset";
    /// `setsid` in the child.
    Setsid = 5, "setsid";
    /// `setpgid` in the child.
    Setpgid = 6, "setpgid";
    /// Moving file descriptors into place (`dup2`/`dup3`/`fcntl`).
    Dup = 7, "dup2";
    /// Closing file descriptors the child must not see.
    CloseFds = 8, "close fds";
    /// `chroot` in the child.
    Chroot = 9, "chroot";
    /// `chdir` in the child.
    Chdir = 10, "chdir";
    /// Setting credentials (`setgroups`, `setgid`, `setuid`).
    Credentials = 11, "set credentials";
    /// `prctl(PR_SET_PDEATHSIG)` or the parent-died check.
    Pdeathsig = 12, "pdeathsig";
    /// Acquiring the controlling terminal (`TIOCSCTTY`) or the foreground group.
    Ctty = 13, "set controlling terminal";
    /// `unshare` of namespaces.
    Unshare = 14, "unshare";
    /// The `execve` itself.
    Exec = 15, "exec";
    /// Waiting for the child.
    Wait = 16, "wait";
    /// Moving the child into its cgroup.
    Cgroup = 17, "cgroup placement";
    /// Setting a resource limit in the child (`prlimit64`).
    Rlimit = 18, "setrlimit";
    /// Writing the user namespace's id maps (`/proc/self/{uid_map,gid_map,setgroups}`).
    IdMap = 19, "write id maps";
    /// A [`Cmd::pre_exec`](crate::Cmd::pre_exec) function failed.
    PreExec = 20, "pre_exec";
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The crate's error: a [`kind`](Error::kind), the failing [`stage`](Error::stage) when a
/// process was being created, the [`errno`](Error::errno) and the [`path`](Error::path)
/// concerned. Converts into [`std::io::Error`].
///
/// # Examples
/// ```
/// use forkexec::{Error, ErrorKind, Stage};
/// let e = Error::from_errno(Stage::Exec, libc::ENOENT).with_path("/no/such");
/// assert_eq!(e.kind(), ErrorKind::NotFound);
/// assert_eq!(e.to_string(), "fork/exec /no/such: no such file or directory");
/// let io: std::io::Error = e.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
/// ```
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    stage: Option<Stage>,
    errno: Option<i32>,
    path: Option<PathBuf>,
    message: Option<String>,
    stderr: Vec<u8>,
    stdout: Vec<u8>,
    program: Option<std::ffi::OsString>,
    state: Option<crate::status::ProcessState>,
    /// The I/O error underneath, when there is one: the errno's, or the caller's reader
    /// or writer's (see [`Error::source`](std::error::Error::source)).
    source: Option<io::Error>,
}

/// `Result<T, forkexec::Error>`.
///
/// # Examples
/// ```
/// fn shell(script: &str) -> forkexec::Result<Vec<u8>> {
///     forkexec::Cmd::new("sh").args(["-c", script]).output()
/// }
/// assert_eq!(shell("echo ok")?, b"ok\n");
/// # Ok::<(), forkexec::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn kind_of_errno(errno: i32, stage: Option<Stage>) -> ErrorKind {
    match errno {
        libc::ENOENT => ErrorKind::NotFound,
        libc::EACCES | libc::EPERM => ErrorKind::PermissionDenied,
        libc::EINVAL | libc::EBADF | libc::E2BIG if stage.is_none() => ErrorKind::InvalidInput,
        _ if stage.is_some() && stage != Some(Stage::Wait) => ErrorKind::Exec,
        _ => ErrorKind::Io,
    }
}

/// The C library's description of `errno`, lower-cased as Go prints it.
pub(crate) fn errno_text(errno: i32) -> String {
    let s = io::Error::from_raw_os_error(errno).to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    if let Some(c) = chars.next() {
        out.extend(c.to_lowercase());
    }
    out.push_str(chars.as_str());
    out
}

impl Error {
    fn with_inner(kind: ErrorKind, stage: Option<Stage>, errno: Option<i32>) -> Error {
        Error(Box::new(Inner {
            kind,
            stage,
            errno,
            path: None,
            message: None,
            stderr: Vec::new(),
            stdout: Vec::new(),
            program: None,
            state: None,
            source: errno.map(io::Error::from_raw_os_error),
        }))
    }

    /// An error of `kind` with a message.
    ///
    /// # Examples
    /// ```
    /// let e = forkexec::Error::new(forkexec::ErrorKind::InvalidInput, "empty program");
    /// assert_eq!(e.to_string(), "empty program");
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        let mut e = Error::with_inner(kind, None, None);
        e.0.message = Some(message.into());
        e
    }

    /// An error for `errno` at a process-creation `stage`; the kind follows the errno
    /// (`ENOENT` → [`ErrorKind::NotFound`], `EACCES`/`EPERM` →
    /// [`ErrorKind::PermissionDenied`], anything else → [`ErrorKind::Exec`], or
    /// [`ErrorKind::Io`] at [`Stage::Wait`]).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Error, ErrorKind, Stage};
    /// let e = Error::from_errno(Stage::Chdir, libc::ENOTDIR);
    /// assert_eq!((e.kind(), e.stage(), e.errno()), (ErrorKind::Exec, Some(Stage::Chdir), Some(libc::ENOTDIR)));
    /// ```
    pub fn from_errno(stage: Stage, errno: i32) -> Error {
        Error::with_inner(kind_of_errno(errno, Some(stage)), Some(stage), Some(errno))
    }

    /// An error from a plain `errno` with no stage.
    pub(crate) fn os(errno: i32) -> Error {
        Error::with_inner(kind_of_errno(errno, None), None, Some(errno))
    }

    pub(crate) fn from_io(err: io::Error) -> Error {
        let mut e = match err.raw_os_error() {
            Some(errno) => Error::os(errno),
            None => {
                let kind = match err.kind() {
                    io::ErrorKind::NotFound => ErrorKind::NotFound,
                    io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                    io::ErrorKind::InvalidInput => ErrorKind::InvalidInput,
                    io::ErrorKind::Unsupported => ErrorKind::Unsupported,
                    _ => ErrorKind::Io,
                };
                Error::new(kind, err.to_string())
            }
        };
        e.0.source = Some(err);
        e
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Attaches the path the error concerns (the program, the directory, ...).
    ///
    /// # Examples
    /// ```
    /// let e = forkexec::Error::from_errno(forkexec::Stage::Exec, libc::EACCES).with_path("/etc/passwd");
    /// assert_eq!(e.path(), Some(std::path::Path::new("/etc/passwd")));
    /// ```
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Error {
        self.0.path = Some(path.into());
        self
    }

    pub(crate) fn with_stage(mut self, stage: Stage) -> Error {
        self.0.stage = Some(stage);
        self
    }

    /// The program of the command that failed, for an error of a [`Cmd`](crate::Cmd) call
    /// (as given to [`Cmd::new`](crate::Cmd::new)); shown first by the alternate form of
    /// `Display` (`{:#}`).
    ///
    /// # Examples
    /// ```
    /// let err = forkexec::Cmd::new("ls").arg("/no/such/dir").run().unwrap_err();
    /// assert_eq!(err.to_string(), "exit status 2"); // Go's text
    /// assert_eq!(err.program(), Some(std::ffi::OsStr::new("ls")));
    /// assert_eq!(format!("{err:#}"), "ls: exit status 2");
    /// ```
    pub fn program(&self) -> Option<&std::ffi::OsStr> {
        self.0.program.as_deref()
    }

    /// Names the program the error concerns, unless one is named already.
    pub(crate) fn with_program(mut self, program: &std::ffi::OsStr) -> Error {
        if self.0.program.is_none() {
            self.0.program = Some(program.to_owned());
        }
        self
    }

    /// Attaches what a child wrote to stdout (see [`Error::stdout`]).
    pub(crate) fn with_stdout(mut self, stdout: Vec<u8>) -> Error {
        self.0.stdout = stdout;
        self
    }

    /// Attaches a child's stderr, bounded: at most its first and last 32 KiB, around Go's
    /// marker `"\n... omitting N bytes ...\n"`.
    pub(crate) fn with_stderr(mut self, stderr: crate::capture::Capture) -> Error {
        self.0.stderr = stderr.into_bounded();
        self
    }

    /// The kind of error.
    ///
    /// # Examples
    /// ```
    /// let err = forkexec::Cmd::new("/no/such/program").run().unwrap_err();
    /// assert_eq!(err.kind(), forkexec::ErrorKind::NotFound);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The process-creation step that failed, when the error comes from one.
    ///
    /// # Examples
    /// ```
    /// let err = forkexec::Cmd::new("/no/such/program").run().unwrap_err();
    /// assert_eq!(err.stage(), Some(forkexec::Stage::Exec));
    /// assert_eq!(err.to_string(), "fork/exec /no/such/program: no such file or directory");
    /// ```
    pub fn stage(&self) -> Option<Stage> {
        self.0.stage
    }

    /// The raw `errno`, when the error comes from the operating system.
    ///
    /// # Examples
    /// ```
    /// let err = forkexec::Cmd::new("true").dir("/no/such/dir").run().unwrap_err();
    /// assert_eq!(err.errno(), Some(libc::ENOENT));
    /// assert_eq!(forkexec::Cmd::new("false").run().unwrap_err().errno(), None);
    /// ```
    pub fn errno(&self) -> Option<i32> {
        self.0.errno
    }

    /// The path the error concerns, when there is one.
    ///
    /// # Examples
    /// ```
    /// let err = forkexec::Cmd::new("true").dir("/no/such/dir").run().unwrap_err();
    /// assert_eq!(err.path(), Some(std::path::Path::new("/no/such/dir")));
    /// ```
    pub fn path(&self) -> Option<&Path> {
        self.0.path.as_deref()
    }

    /// The child's captured standard error, for an error of a child that ran, returned by
    /// an output-capturing call; empty otherwise. It is bounded as Go bounds
    /// `ExitError.Stderr`: a longer stream keeps its first and last 32 KiB, with
    /// `"\n... omitting N bytes ...\n"` between them.
    ///
    /// # Examples
    /// ```
    /// use forkexec::Cmd;
    /// let err = Cmd::new("sh").args(["-c", "echo bad input >&2; exit 1"]).output().unwrap_err();
    /// assert_eq!(err.stderr(), b"bad input\n");
    /// assert!(Cmd::new("false").run().unwrap_err().stderr().is_empty());
    /// ```
    pub fn stderr(&self) -> &[u8] {
        &self.0.stderr
    }

    /// What the child wrote to stdout (both streams, for
    /// [`combined_output`](crate::Cmd::combined_output)), for an error of a child that ran,
    /// returned by an output-capturing call: the bytes `output()` would have returned, so an
    /// unsuccessful exit, a timeout or an expired wait delay loses nothing (Go returns them
    /// beside its error). Empty otherwise. Bounded only by
    /// [`Cmd::output_limit`](crate::Cmd::output_limit).
    ///
    /// # Examples
    /// ```
    /// use forkexec::Cmd;
    /// let err = Cmd::new("sh").args(["-c", "echo building; exit 1"]).output().unwrap_err();
    /// assert_eq!(err.stdout(), b"building\n");
    /// ```
    pub fn stdout(&self) -> &[u8] {
        &self.0.stdout
    }

    pub(crate) fn with_state(mut self, state: crate::status::ProcessState) -> Error {
        self.0.state = Some(state);
        self
    }

    /// An [`ErrorKind::ExitStatus`] error for a child that exited unsuccessfully; its
    /// `Display` is the state's (`"exit status 1"`, `"signal: killed"`), as Go's `ExitError`.
    pub(crate) fn exit_status(state: crate::status::ProcessState) -> Error {
        Error::new(ErrorKind::ExitStatus, state.to_string()).with_state(state)
    }

    /// The process state, for errors about a child that ran: [`ErrorKind::ExitStatus`],
    /// [`ErrorKind::Timeout`], [`ErrorKind::WaitDelay`].
    ///
    /// # Examples
    /// ```
    /// let err = forkexec::Cmd::new("sh").args(["-c", "exit 5"]).run().unwrap_err();
    /// assert_eq!(err.state().map(|st| st.exit_code()), Some(5));
    /// ```
    #[doc(alias = "ExitError")]
    pub fn state(&self) -> Option<&crate::status::ProcessState> {
        self.0.state.as_ref()
    }
}

impl fmt::Display for Error {
    /// Go's text (`"exit status 2"`, `"fork/exec /x: no such file or directory"`). The
    /// alternate form (`{:#}`) puts the program first when the error names one:
    /// `"ls: exit status 2"`, so that a log line says what failed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        if let (true, Some(p)) = (f.alternate(), &i.program) {
            write!(f, "{}: ", p.to_string_lossy())?;
        }
        if let Some(m) = &i.message {
            return f.write_str(m);
        }
        let err = i.errno.map(errno_text).unwrap_or_default();
        match (i.stage, &i.path) {
            (Some(Stage::Exec), Some(p)) => write!(f, "fork/exec {}: {err}", p.display()),
            (Some(stage), Some(p)) => write!(f, "{stage} {}: {err}", p.display()),
            (Some(stage), None) => write!(f, "{stage}: {err}"),
            (None, Some(p)) => write!(f, "{}: {err}", p.display()),
            (None, None) => f.write_str(&err),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        let mut d = f.debug_struct("Error");
        d.field("kind", &i.kind);
        if let Some(p) = &i.program {
            d.field("program", p);
        }
        if let Some(s) = i.stage {
            d.field("stage", &s);
        }
        if let Some(e) = i.errno {
            d.field("errno", &e);
        }
        if let Some(p) = &i.path {
            d.field("path", p);
        }
        d.field("message", &self.to_string());
        if !i.stdout.is_empty() {
            d.field("stdout_len", &i.stdout.len());
        }
        if !i.stderr.is_empty() {
            d.field("stderr", &String::from_utf8_lossy(&i.stderr));
        }
        if let Some(st) = &i.state {
            d.field("state", st);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    /// The I/O error underneath, where there is one: the `errno`'s
    /// ([`io::Error::from_raw_os_error`]), or the error of the caller's own reader or
    /// writer a copy got. (Its text is part of this error's message too.)
    ///
    /// # Examples
    /// ```
    /// use std::error::Error as _;
    /// let err = forkexec::Cmd::new("/no/such/program").run().unwrap_err();
    /// let io = err.source().unwrap().downcast_ref::<std::io::Error>().unwrap();
    /// assert_eq!(io.raw_os_error(), Some(libc::ENOENT));
    /// let exit = forkexec::Cmd::new("false").run().unwrap_err();
    /// assert!(exit.source().is_none()); // an exit status: no I/O error underneath
    /// ```
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::from_io(err)
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match err.kind() {
            ErrorKind::NotFound | ErrorKind::Dot => io::ErrorKind::NotFound,
            ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::InvalidInput => io::ErrorKind::InvalidInput,
            ErrorKind::Timeout | ErrorKind::WaitDelay => io::ErrorKind::TimedOut,
            ErrorKind::OutputLimit => io::ErrorKind::FileTooLarge,
            ErrorKind::Unsupported | ErrorKind::MultiThreaded => io::ErrorKind::Unsupported,
            ErrorKind::Io | ErrorKind::Exec | ErrorKind::ExitStatus | ErrorKind::ProcessDone => {
                match err.errno() {
                    Some(e) if err.0.message.is_none() && err.0.path.is_none() => {
                        return io::Error::from_raw_os_error(e);
                    }
                    _ => io::ErrorKind::Other,
                }
            }
        };
        io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_round_trip() {
        for n in 0..=255u8 {
            if let Some(s) = Stage::from_u8(n) {
                assert_eq!(s as u8, n);
            }
        }
    }

    #[test]
    fn errno_text_is_lowercase_go_style() {
        assert_eq!(errno_text(libc::ENOENT), "no such file or directory");
        assert_eq!(errno_text(libc::EACCES), "permission denied");
    }
}
