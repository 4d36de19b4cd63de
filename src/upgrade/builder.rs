//! [`Builder`]: the settings of an [`Upgrader`], and building one (which adopts the
//! hand-over, see [`adopt`](super::adopt)).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::{DEFAULT_UPGRADE_TIMEOUT, State, Upgrader, adopt};
use crate::Result;

/// Builds an [`Upgrader`] with non-default settings (tableflip's `Options`).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use forkexec::upgrade::Upgrader;
/// let pid_file = std::env::temp_dir().join(format!("builder-doc-{}.pid", std::process::id()));
/// let up = Upgrader::builder()
///     .upgrade_timeout(Duration::from_secs(10))
///     .pid_file(&pid_file)
///     .build()?;
/// up.ready()?;
/// assert_eq!(std::fs::read_to_string(&pid_file)?, format!("{}\n", std::process::id()));
/// std::fs::remove_file(&pid_file)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "Options")]
#[derive(Debug, Clone)]
pub struct Builder {
    program: Option<PathBuf>,
    timeout: Duration,
    pid_file: Option<PathBuf>,
    inherit: bool,
    backlog: i32,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            program: None,
            timeout: DEFAULT_UPGRADE_TIMEOUT,
            pid_file: None,
            inherit: true,
            backlog: libc::SOMAXCONN,
        }
    }
}

impl Builder {
    /// The program an upgrade runs (default: this process's executable, as its path was
    /// at start-up, so that a new binary renamed over the old one is the one started).
    /// [`UpgradeOptions::program`](super::UpgradeOptions::program) overrides it for one
    /// upgrade.
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::Upgrader;
    /// let up = Upgrader::builder().inherit(false).program("/usr/local/bin/server-v2").build()?;
    /// assert!(format!("{up:?}").contains("server-v2"));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn program(&mut self, path: impl AsRef<Path>) -> &mut Builder {
        self.program = Some(path.as_ref().to_owned());
        self
    }

    /// The time a new process has to become ready (default
    /// [`DEFAULT_UPGRADE_TIMEOUT`], 30 s).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{ErrorKind, upgrade::{UpgradeOptions, Upgrader}};
    /// let up = Upgrader::builder()
    ///     .inherit(false)
    ///     .upgrade_timeout(Duration::from_millis(50))
    ///     .program("/bin/sh")
    ///     .build()?;
    /// up.ready()?;
    /// // A new process that never signals ready: killed at the builder's timeout.
    /// let err = up.upgrade_with(UpgradeOptions::new().args(["-c", "exec sleep 30"])).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Timeout);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "UpgradeTimeout")]
    pub fn upgrade_timeout(&mut self, d: Duration) -> &mut Builder {
        self.timeout = d;
        self
    }

    /// A PID file, written atomically by [`Upgrader::ready`] (so by each generation in
    /// turn, when it serves).
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::Upgrader;
    /// let path = std::env::temp_dir().join(format!("pid-file-doc-{}.pid", std::process::id()));
    /// let up = Upgrader::builder().inherit(false).pid_file(&path).build()?;
    /// assert!(!path.exists()); // written by ready(), not before
    /// up.ready()?;
    /// assert_eq!(std::fs::read_to_string(&path)?.trim(), std::process::id().to_string());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// `open(2)` (`O_CREAT | O_EXCL | O_NOFOLLOW`), `fsync(2)`, `rename(2)`.
    #[doc(alias = "PIDFile")]
    pub fn pid_file(&mut self, path: impl AsRef<Path>) -> &mut Builder {
        self.pid_file = Some(path.as_ref().to_owned());
        self
    }

    /// Whether to adopt the fds of a hand-over (default `true`). `false` ignores the
    /// hand-over environment entirely, for a process that must listen afresh (after a
    /// hand-over that [`build`](Builder::build) refused, say), and for every upgrader
    /// after the first: only one per process may inherit (see
    /// [who owns the inherited fds](super#who-owns-the-inherited-fds)).
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::{StartedBy, Upgrader};
    /// let first = Upgrader::new()?; // inherits
    /// let second = Upgrader::builder().inherit(false).build()?;
    /// assert_eq!(second.started_by(), StartedBy::Fresh);
    /// assert!(second.inherited().is_empty());
    /// drop((first, second));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn inherit(&mut self, on: bool) -> &mut Builder {
        self.inherit = on;
        self
    }

    /// The `listen(2)` backlog of new sockets (default `SOMAXCONN`): connections that
    /// arrive while an upgrade is under way wait there.
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::Upgrader;
    /// let up = Upgrader::builder().inherit(false).backlog(1024).build()?;
    /// let l = up.listen_tcp("http", "127.0.0.1:0")?;
    /// assert!(l.local_addr()?.port() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// `listen(2)` (the backlog is capped at `/proc/sys/net/core/somaxconn`).
    pub fn backlog(&mut self, n: i32) -> &mut Builder {
        self.backlog = n;
        self
    }

    /// Reads the hand-over environment and adopts its fds (unless
    /// [`inherit(false)`](Builder::inherit)). Only the first upgrader of the process that
    /// inherits takes them, and owns them from then on (see
    /// [who owns the inherited fds](super#who-owns-the-inherited-fds)).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when another upgrader of this process inherited
    /// already (even one dropped since, even without a hand-over): build this one with
    /// `inherit(false)`. [`ErrorKind::InvalidInput`] when the hand-over is malformed: a
    /// bad number, name or name count (the
    /// [rules](super#protocol-the-new-processs-environment-and-fds)), an fd that is not
    /// open or was not inherited (it is close-on-exec: this process opened it itself), a
    /// readiness fd that is not a pipe. Nothing is adopted or closed then and the
    /// environment is left as it was, so the process can go on with `inherit(false)` and
    /// listen afresh.
    /// [`ErrorKind::Io`] when the exit pipe cannot be created.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{ErrorKind, upgrade::{StartedBy, Upgrader}};
    /// let up = Upgrader::builder().build()?; // as Upgrader::new()
    /// assert!(up.generation() >= 1);
    /// // Only one upgrader per process inherits.
    /// let err = Upgrader::builder().build().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// assert_eq!(Upgrader::builder().inherit(false).build()?.started_by(), StartedBy::Fresh);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `sd_listen_fds(3)`, `fcntl(2)` (`F_GETFD`, `FD_CLOEXEC`), `pipe(2)`.
    ///
    /// [`ErrorKind::InvalidInput`]: crate::ErrorKind::InvalidInput
    /// [`ErrorKind::Io`]: crate::ErrorKind::Io
    pub fn build(&self) -> Result<Upgrader> {
        let adopted = if self.inherit {
            adopt::adopt()?
        } else {
            adopt::Adopted::fresh()
        };
        // After the adoption, so that it cannot take an fd number the hand-over uses.
        let (exit_r, exit_w) = crate::raw::pipe()?;
        let program = match &self.program {
            Some(p) => p.clone(),
            None => current_exe(),
        };
        Ok(Upgrader {
            started_by: adopted.started_by,
            generation: adopted.generation,
            program,
            args: std::env::args_os().collect(),
            timeout: self.timeout,
            pid_file: self.pid_file.clone(),
            backlog: self.backlog,
            state: Mutex::new(State {
                inherited: adopted.fds,
                registry: Vec::new(),
                ready_pipe: adopted.ready_pipe,
                ready: false,
            }),
            upgrading: AtomicBool::new(false),
            exiting: AtomicBool::new(false),
            exit_r,
            exit_w: Mutex::new(Some(exit_w)),
        })
    }
}

/// This process's executable as a path (not `/proc/self/exe`, which would run the old
/// binary after a new one was renamed over it), without the kernel's ` (deleted)` mark.
fn current_exe() -> PathBuf {
    match std::env::current_exe() {
        Ok(p) => {
            let b = p.as_os_str().as_bytes();
            match b.strip_suffix(b" (deleted)") {
                Some(s) => PathBuf::from(OsStr::from_bytes(s)),
                None => p,
            }
        }
        Err(_) => PathBuf::from("/proc/self/exe"),
    }
}
