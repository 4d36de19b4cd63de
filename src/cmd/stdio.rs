//! Where a child's stdin, stdout and stderr go: [`Stdio`](crate::Stdio), and the parent's ends of its pipes.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::{fmt, io};

use crate::error::{Error, Result, Stage};
use crate::sys;

/// Where a child's stdin, stdout or stderr goes.
///
/// **The default for every stream of a [`Cmd`](crate::Cmd) is [`Stdio::null()`]**, as in Go's
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
pub struct Stdio(pub(super) StdioKind);

#[derive(Clone)]
pub(super) enum StdioKind {
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

    /// A new pipe; the parent's end is in [`Child::stdin`](crate::Child::stdin) / [`Child::stdout`](crate::Child::stdout) /
    /// [`Child::stderr`](crate::Child::stderr) (Go's `StdinPipe`, `StdoutPipe`, `StderrPipe`).
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
    /// never across a wait. For an in-memory sink, see [`Buffer`](crate::Buffer).
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
        pub struct $name(pub(super) File);

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
    /// EOF; [`Child::wait`](crate::Child::wait) closes it if it is still in the [`Child`](crate::Child).
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
    /// a [`Stdio`](crate::Stdio), to feed another child.
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
pub(super) fn dev_null() -> Result<BorrowedFd<'static>> {
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
