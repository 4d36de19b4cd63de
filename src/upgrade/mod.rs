//! Zero-downtime binary upgrades ("hot restart"): the old process hands its listening
//! sockets to a new binary, waits for it to be ready, then drains and exits. Blocking, no
//! async runtime; compatible with systemd socket activation.
//!
//! # How it works
//! 1. At start-up, [`Upgrader::new`] reads the hand-over environment (if any), adopts the
//!    inherited fds, and learns whether the process was started afresh, by an upgrade, or
//!    by systemd socket activation ([`StartedBy`]).
//! 2. The server asks for its sockets by name: [`listen_tcp`](Upgrader::listen_tcp),
//!    [`listen_unix`](Upgrader::listen_unix), [`listener`](Upgrader::listener) or
//!    [`fd`](Upgrader::fd). Each returns the inherited socket of that name when there is
//!    one (checked first: a listening socket of the right family, bound where asked), else
//!    creates one (close-on-exec, `SO_REUSEADDR`); either way the fd is registered for the
//!    next hand-over.
//! 3. [`ready`](Upgrader::ready) says the process serves: unclaimed inherited fds are
//!    closed, the PID file (if any) is replaced atomically, and the parent of an upgrade is
//!    told, over a pipe, that it can exit (a first process tells systemd `READY=1`).
//! 4. [`upgrade`](Upgrader::upgrade) starts the new binary with every registered fd and
//!    waits for its `ready()`, at most the upgrade timeout. On success
//!    [`exit_requested`](Upgrader::exit_requested) turns true (and
//!    [`exit_fd`](Upgrader::exit_fd) readable, [`wait_for_exit`](Upgrader::wait_for_exit)
//!    returns): the server stops accepting, drains its connections and exits. On failure
//!    — the new process exits first, or the timeout passes — the new process is killed
//!    and reaped, the error says which, and this process goes on serving.
//!
//! # Who owns the inherited fds
//! One `Upgrader` per process takes the hand-over: the first one built with
//! [`inherit(true)`](Builder::inherit) (the default, as [`Upgrader::new`]). From then on
//! it **owns** the inherited fds (3, 4, ... and the readiness pipe): nothing else in the
//! process may close them, wrap them (`from_raw_fd`), or take them through another
//! socket-activation library (`listenfd`, `sd_listen_fds`). Claim them through the
//! upgrader instead ([`listen_tcp`](Upgrader::listen_tcp), [`fd`](Upgrader::fd), ...),
//! which hands the claimed fd over to the caller; the unclaimed ones are closed by
//! [`ready`](Upgrader::ready) or when the upgrader is dropped. A second upgrader that
//! would inherit is refused ([`ErrorKind::InvalidInput`]), for the whole life of the
//! process and whether or not there was a hand-over — by then the fd numbers may name
//! other files, so taking them again would give one fd two owners. Build any further
//! upgrader with `inherit(false)`. A hand-over that [`Builder::build`] refused as
//! malformed was not taken, and does not count.
//!
//! The listening socket itself is never closed during an upgrade: both processes hold the
//! same kernel socket, so a connection that arrives meanwhile waits in its accept queue
//! and is accepted by whichever process is still accepting. Note that file status flags
//! such as `O_NONBLOCK` belong to that shared socket: accept from a non-blocking listener
//! in a `poll` loop (two processes may be woken for one connection).
//!
//! # Protocol (the new process's environment and fds)
//! | fd / variable | meaning |
//! |---|---|
//! | fd 3, 4, ..., 3+N-1 | the registered fds, in registration order (`SD_LISTEN_FDS_START` = 3) |
//! | fd 3+N | the write end of the readiness pipe (not counted in `LISTEN_FDS`) |
//! | `LISTEN_FDS=N` | how many fds are handed over (systemd) |
//! | `LISTEN_FDNAMES=a:b:...` | their names (systemd) |
//! | `LISTEN_PID=<pid>` | the new process's own pid, written by the child itself just before `execve` ([`Cmd::env_child_pid`]) |
//! | `FORKEXEC_UPGRADE_READY_FD=3+N` | where the readiness pipe is; the new process writes one byte there in `ready()` |
//! | `FORKEXEC_UPGRADE_GENERATION=g` | 1 for a fresh start, +1 per upgrade ([`Upgrader::generation`]) |
//!
//! The first three are exactly systemd's socket-activation protocol, so the new binary
//! may be any program that understands it (it must also write to the readiness pipe,
//! else the upgrade times out), and a process started by systemd with sockets adopts
//! them the same way. Every variable is ignored unless `LISTEN_PID` is this process's pid.
//! The hand-over variables are removed from the process's environment by
//! [`Upgrader::new`] when the process is still single-threaded (the usual case: first
//! thing in `main`), and never passed on stale: an upgrade sets them afresh.
//!
//! # A server loop
//! ```no_run
//! use std::os::fd::AsFd;
//! use forkexec::{Signal, upgrade::{Signals, Upgrader}};
//! use rustix::event::{poll, PollFd, PollFlags};
//!
//! let signals = Signals::new(&[Signal::HUP, Signal::TERM])?; // before any thread
//! let upgrader = std::sync::Arc::new(Upgrader::new()?);
//! let listener = upgrader.listen_tcp("http", "127.0.0.1:8080")?;
//! listener.set_nonblocking(true)?;
//! upgrader.ready()?;
//! while !upgrader.exit_requested() {
//!     let mut fds = [PollFd::new(&listener, PollFlags::IN),
//!                    PollFd::new(&signals, PollFlags::IN),
//!                    PollFd::from_borrowed_fd(upgrader.exit_fd(), PollFlags::IN)];
//!     let _ = poll(&mut fds, None);
//!     match signals.try_next()? {
//!         Some(Signal::HUP) => { let u = upgrader.clone(); std::thread::spawn(move || u.upgrade()); }
//!         Some(_) => upgrader.stop(),
//!         None => {}
//!     }
//!     if let Ok((conn, _)) = listener.accept() { /* serve conn on a thread */ drop(conn); }
//! }
//! drop(listener); // stop accepting; then wait for the connections in flight, and exit
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Compared with tableflip, grace, endless, overseer
//! - systemd-compatible hand-over in both directions, with a correct `LISTEN_PID` (the
//!   child writes its own pid before `execve`), `LISTEN_FDNAMES`, and `MAINPID=`/`READY=1`
//!   notifications so systemd follows the new main process;
//! - inherited fds are checked before they are adopted (`SO_ACCEPTCONN`, `SO_DOMAIN`, the
//!   bound address): a changed address in the configuration gets a new socket, and an fd
//!   of the wrong kind is a clear error rather than a mysterious one later;
//! - the hand-over text is parsed strictly ([`parse_listen_env`], fuzzed) and never
//!   trusted: counts are bounded, names validated, duplicates refused;
//! - no stale fd or variable reaches a third generation;
//! - a failed upgrade (exit or timeout) kills and reaps the new process, and says which.
//!
//! [`Cmd::env_child_pid`]: crate::Cmd::env_child_pid

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::cmd::{Child, Cmd, Stdio};
use crate::error::{Error, ErrorKind, Result};

mod env;
mod notify;
mod signals;
mod sock;

pub use env::{
    ENV_GENERATION, ENV_LISTEN_FDNAMES, ENV_LISTEN_FDS, ENV_LISTEN_PID, ENV_READY_FD,
    LISTEN_FDS_START, MAX_FD_NAME_LEN, MAX_LISTEN_FDS, is_valid_fd_name, parse_listen_env,
    parse_ready_fd,
};
pub use notify::sd_notify;
pub use signals::Signals;

use env::{HANDOVER_VARS, check_fd_name};
use sock::Want;

/// The default time a new process has to call [`Upgrader::ready`].
pub const DEFAULT_UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

/// The byte the new process writes to the readiness pipe.
const READY_BYTE: u8 = b'R';

/// Set by the first `Upgrader` built with `inherit(true)` (unless its hand-over was
/// refused): the inherited fds have one owner, and no later `Upgrader` may take them.
static ADOPTED: AtomicBool = AtomicBool::new(false);

/// How this process was started, as [`Upgrader::new`] found it.
///
/// # Examples
/// ```
/// use forkexec::upgrade::{StartedBy, Upgrader};
/// let up = Upgrader::new()?;
/// if up.started_by() == StartedBy::Fresh {
///     assert_eq!(up.generation(), 1);
/// }
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StartedBy {
    /// No hand-over: every socket is created afresh.
    Fresh,
    /// By an [`Upgrader::upgrade`] of the previous generation, which waits for
    /// [`Upgrader::ready`].
    Upgrade,
    /// By systemd socket activation (`LISTEN_PID` is this process, and there is no
    /// readiness pipe).
    SocketActivation,
}

/// The outcome of a successful [`Upgrader::upgrade`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Upgraded {
    /// The pid of the new process, now serving.
    pub pid: i32,
    /// The time from the call of `upgrade` to the new process's `ready()`.
    pub ready_after: Duration,
}

/// Per-upgrade choices for [`Upgrader::upgrade_with`]: another program or arguments, extra
/// environment, another timeout.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use forkexec::upgrade::UpgradeOptions;
/// let mut opts = UpgradeOptions::new();
/// opts.program("/opt/app/v2/server").env("APP_VERSION", "2").timeout(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Default)]
pub struct UpgradeOptions {
    program: Option<PathBuf>,
    args: Option<Vec<OsString>>,
    env: Vec<(OsString, Option<OsString>)>,
    timeout: Option<Duration>,
}

impl UpgradeOptions {
    /// No change: the same program, arguments and environment, the default timeout.
    pub fn new() -> UpgradeOptions {
        UpgradeOptions::default()
    }

    /// Runs this program instead of the upgrader's (by default this process's executable).
    pub fn program(&mut self, path: impl AsRef<Path>) -> &mut UpgradeOptions {
        self.program = Some(path.as_ref().to_owned());
        self
    }

    /// Passes these arguments (after `argv[0]`) instead of this process's.
    pub fn args<I, S>(&mut self, args: I) -> &mut UpgradeOptions
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args = Some(args.into_iter().map(|a| a.as_ref().to_owned()).collect());
        self
    }

    /// Sets an environment variable for the new process (the hand-over variables cannot
    /// be overridden).
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut UpgradeOptions {
        self.env
            .push((key.as_ref().to_owned(), Some(val.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable from the new process's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut UpgradeOptions {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// The time the new process has to become ready (default: the upgrader's).
    pub fn timeout(&mut self, d: Duration) -> &mut UpgradeOptions {
        self.timeout = Some(d);
        self
    }
}

/// Builds an [`Upgrader`] with non-default settings.
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
/// # std::fs::remove_file(&pid_file)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    pub fn program(&mut self, path: impl AsRef<Path>) -> &mut Builder {
        self.program = Some(path.as_ref().to_owned());
        self
    }

    /// The time a new process has to become ready (default
    /// [`DEFAULT_UPGRADE_TIMEOUT`], 30 s).
    pub fn upgrade_timeout(&mut self, d: Duration) -> &mut Builder {
        self.timeout = d;
        self
    }

    /// A PID file, written atomically by [`Upgrader::ready`] (so by each generation in
    /// turn, when it serves).
    pub fn pid_file(&mut self, path: impl AsRef<Path>) -> &mut Builder {
        self.pid_file = Some(path.as_ref().to_owned());
        self
    }

    /// Whether to adopt the fds of a hand-over (default `true`). `false` ignores the
    /// hand-over environment entirely, for a process that must listen afresh (after a
    /// hand-over that [`build`](Builder::build) refused, say), and for every upgrader
    /// after the first: only one per process may inherit (see
    /// [who owns the inherited fds](self#who-owns-the-inherited-fds)).
    pub fn inherit(&mut self, on: bool) -> &mut Builder {
        self.inherit = on;
        self
    }

    /// The `listen(2)` backlog of new sockets (default `SOMAXCONN`): connections that
    /// arrive while an upgrade is under way wait there.
    pub fn backlog(&mut self, n: i32) -> &mut Builder {
        self.backlog = n;
        self
    }

    /// Reads the hand-over environment and adopts its fds (unless
    /// [`inherit(false)`](Builder::inherit)). Only the first upgrader of the process that
    /// inherits takes them, and owns them from then on (see
    /// [who owns the inherited fds](self#who-owns-the-inherited-fds)).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when another upgrader of this process inherited
    /// already (even one dropped since, even without a hand-over): build this one with
    /// `inherit(false)`. [`ErrorKind::InvalidInput`] when the hand-over is malformed: a
    /// bad number, name or name count ([`parse_listen_env`]), an fd that is not open or
    /// was not inherited (it is close-on-exec: this process opened it itself), a
    /// readiness fd that is not a pipe. Nothing is adopted or closed then and the
    /// environment is left as it was, so the process can go on with `inherit(false)` and
    /// listen afresh.
    /// [`ErrorKind::Io`] when the exit pipe cannot be created.
    pub fn build(&self) -> Result<Upgrader> {
        let mut started_by = StartedBy::Fresh;
        let mut generation = 1;
        let mut inherited = Vec::new();
        let mut ready_pipe = None;
        if self.inherit {
            if ADOPTED.swap(true, Ordering::SeqCst) {
                return Err(Error::invalid(
                    "Upgrader: another Upgrader of this process has inherited already (one \
                     per process owns the inherited fds); build this one with inherit(false)",
                ));
            }
            match adopt() {
                Ok(a) => {
                    (started_by, generation, inherited, ready_pipe) =
                        (a.started_by, a.generation, a.fds, a.ready_pipe);
                    remove_handover_env();
                }
                Err(e) => {
                    ADOPTED.store(false, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        // After the adoption, so that it cannot take an fd number the hand-over uses.
        let (exit_r, exit_w) = crate::raw::pipe()?;
        let program = match &self.program {
            Some(p) => p.clone(),
            None => current_exe(),
        };
        Ok(Upgrader {
            started_by,
            generation,
            program,
            args: std::env::args_os().collect(),
            timeout: self.timeout,
            pid_file: self.pid_file.clone(),
            backlog: self.backlog,
            state: Mutex::new(State {
                inherited,
                registry: Vec::new(),
                ready_pipe,
                ready: false,
            }),
            upgrading: AtomicBool::new(false),
            exiting: AtomicBool::new(false),
            exit_r,
            exit_w: Mutex::new(Some(exit_w)),
        })
    }
}

/// What a hand-over gave this process.
struct Adopted {
    started_by: StartedBy,
    generation: u64,
    fds: Vec<(String, OwnedFd)>,
    ready_pipe: Option<OwnedFd>,
}

/// Parses the hand-over environment and takes ownership of its fds, all or none.
fn adopt() -> Result<Adopted> {
    let var = std::env::var_os;
    let (pid_v, fds_v, names_v) = (
        var(ENV_LISTEN_PID),
        var(ENV_LISTEN_FDS),
        var(ENV_LISTEN_FDNAMES),
    );
    let my_pid = std::process::id() as i32;
    let mut out = Adopted {
        started_by: StartedBy::Fresh,
        generation: 1,
        fds: Vec::new(),
        ready_pipe: None,
    };
    if !env::listen_pid_matches(pid_v.as_deref(), my_pid)? {
        return Ok(out);
    }
    let listen = parse_listen_env(
        pid_v.as_deref(),
        fds_v.as_deref(),
        names_v.as_deref(),
        my_pid,
    )?;
    let ready_fd = parse_ready_fd(var(ENV_READY_FD).as_deref(), &listen)?;
    let generation = env::parse_generation(var(ENV_GENERATION).as_deref())?;
    // Take every fd, or, on the first bad one, give back those taken (nothing is closed).
    let mut taken: Vec<(String, OwnedFd)> = Vec::with_capacity(listen.len());
    let give_back = |taken: Vec<(String, OwnedFd)>| {
        for (_, fd) in taken {
            let _ = fd.into_raw_fd();
        }
    };
    let mut all = listen.clone();
    if let Some(fd) = ready_fd {
        all.push((ENV_READY_FD.to_string(), fd));
    }
    for (name, fd) in all {
        // SAFETY: the hand-over protocol gives this process fd `fd` for this purpose, and
        // the ADOPTED flag makes this the only place that takes it; `owned_fd` checks that
        // it is open.
        let owned = match unsafe { crate::raw::owned_fd(fd) } {
            Ok(owned) => owned,
            Err(_) => {
                give_back(taken);
                return Err(Error::invalid(format!(
                    "hand-over environment: fd {fd} ({name:?}) is not open"
                )));
            }
        };
        // An fd that crossed `execve` cannot be close-on-exec: one that is was opened by
        // this process itself (before `Upgrader::new`), so the hand-over lies about it.
        // Taking it would give it two owners.
        let cloexec = rustix::io::fcntl_getfd(&owned)
            .map_or(true, |f| f.contains(rustix::io::FdFlags::CLOEXEC));
        if cloexec {
            let _ = owned.into_raw_fd();
            give_back(taken);
            return Err(Error::invalid(format!(
                "hand-over environment: fd {fd} ({name:?}) was not inherited (it is \
                 close-on-exec, so this process opened it); the hand-over names more fds \
                 than it passed"
            )));
        }
        taken.push((name, owned));
    }
    let ready_pipe = if ready_fd.is_some() {
        let (_, p) = taken.pop().expect("the ready fd was pushed last");
        let is_fifo = rustix::fs::fstat(&p)
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_fifo());
        if !is_fifo {
            let fd = p.into_raw_fd();
            give_back(taken);
            return Err(Error::invalid(format!(
                "hand-over environment: {ENV_READY_FD}={fd} is not a pipe"
            )));
        }
        Some(p)
    } else {
        None
    };
    // Adopted: no other program this process starts may inherit them by accident.
    for (_, fd) in taken.iter() {
        let _ = sock::set_cloexec(fd);
    }
    if let Some(p) = &ready_pipe {
        let _ = sock::set_cloexec(p);
    }
    out.started_by = if ready_pipe.is_some() {
        StartedBy::Upgrade
    } else {
        StartedBy::SocketActivation
    };
    out.generation = generation;
    out.fds = taken;
    out.ready_pipe = ready_pipe;
    Ok(out)
}

/// Removes the hand-over variables from this process's environment, when that is sound:
/// only while the process has a single thread (no other thread can read the environment
/// meanwhile, nor be started by anyone but this thread).
fn remove_handover_env() {
    if !HANDOVER_VARS.iter().any(|k| std::env::var_os(k).is_some()) {
        return;
    }
    let threads = std::fs::read_dir("/proc/self/task").map(|d| d.count());
    if let Ok(1) = threads {
        for k in HANDOVER_VARS {
            // SAFETY: this process has one thread, this one (checked just above; only
            // this thread could start another), so nothing reads or writes the
            // environment concurrently.
            unsafe { std::env::remove_var(k) };
        }
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

struct State {
    /// Inherited fds not claimed yet; closed by `ready()`.
    inherited: Vec<(String, OwnedFd)>,
    /// Fds handed to the next generation, in order (a duplicate of what the caller holds).
    registry: Vec<(String, OwnedFd)>,
    /// The write end of the readiness pipe to the parent of an upgrade.
    ready_pipe: Option<OwnedFd>,
    ready: bool,
}

/// The hot-restart coordinator of a process: created once at start-up, it knows how the
/// process was started, owns the registry of named fds to hand over, and runs upgrades.
///
/// Every method takes `&self`; share it between threads with an `Arc` (or a `static`).
/// See the [module documentation](self) for the protocol and a server loop.
///
/// # Examples
/// ```
/// use forkexec::upgrade::{StartedBy, Upgrader};
/// let up = Upgrader::new()?;
/// let l = up.listen_tcp("http", "127.0.0.1:0")?;
/// assert_eq!(up.registered(), ["http"]);
/// up.ready()?;
/// assert!(!up.exit_requested());
/// up.stop(); // as on SIGTERM
/// assert!(up.exit_requested());
/// up.wait_for_exit()?; // returns at once
/// # drop(l);
/// # Ok::<(), forkexec::Error>(())
/// ```
pub struct Upgrader {
    started_by: StartedBy,
    generation: u64,
    program: PathBuf,
    args: Vec<OsString>,
    timeout: Duration,
    pid_file: Option<PathBuf>,
    backlog: i32,
    state: Mutex<State>,
    upgrading: AtomicBool,
    exiting: AtomicBool,
    exit_r: OwnedFd,
    exit_w: Mutex<Option<OwnedFd>>,
}

impl fmt::Debug for Upgrader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("Upgrader")
            .field("started_by", &self.started_by)
            .field("generation", &self.generation)
            .field("program", &self.program)
            .field(
                "inherited",
                &st.inherited.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field(
                "registry",
                &st.registry.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("ready", &st.ready)
            .field("exiting", &self.exit_requested())
            .finish_non_exhaustive()
    }
}

/// Whether an inherited fd is adopted for a request.
enum Verdict {
    /// Yes.
    Adopt,
    /// It is of the right kind but bound elsewhere (a changed configuration): create a new
    /// one, and leave the old one to be closed by `ready()`.
    Elsewhere,
}

fn io_error(e: io::Error, context: String) -> Error {
    let kind = match e.raw_os_error() {
        Some(n) => Error::os(n).kind(),
        None => Error::from_io(io::Error::from(e.kind())).kind(),
    };
    Error::new(kind, format!("{context}: {e}"))
}

impl Upgrader {
    /// Reads the hand-over environment, adopts the inherited fds (marking them
    /// close-on-exec) and removes the hand-over variables from the environment while the
    /// process is single-threaded. Create it once, first thing in `main`: it owns the
    /// inherited fds from then on, and nothing else in the process may close or wrap them
    /// (see [who owns the inherited fds](self#who-owns-the-inherited-fds)).
    ///
    /// # Errors
    /// As [`Builder::build`]: [`ErrorKind::InvalidInput`] when an upgrader of this process
    /// inherited already (a second `Upgrader::new()` is refused, whether or not there was
    /// a hand-over; build further ones with `inherit(false)`), or for a malformed
    /// hand-over (see [`parse_listen_env`]); nothing is adopted then, and
    /// `Upgrader::builder().inherit(false).build()` listens afresh.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{ErrorKind, upgrade::Upgrader};
    /// let up = Upgrader::new()?;
    /// println!("generation {} started by {:?}", up.generation(), up.started_by());
    /// // The inherited fds have one owner: a second upgrader may not inherit.
    /// assert_eq!(Upgrader::new().unwrap_err().kind(), ErrorKind::InvalidInput);
    /// let other = Upgrader::builder().inherit(false).build()?;
    /// # drop(other);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn new() -> Result<Upgrader> {
        Builder::default().build()
    }

    /// A [`Builder`] for non-default settings (PID file, timeout, program, backlog).
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::builder().inherit(false).build()?;
    /// assert_eq!(up.started_by(), forkexec::upgrade::StartedBy::Fresh);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How this process was started.
    pub fn started_by(&self) -> StartedBy {
        self.started_by
    }

    /// Whether this process was started by an upgrade (tableflip's `HasParent`).
    pub fn has_parent(&self) -> bool {
        self.started_by == StartedBy::Upgrade
    }

    /// The generation: 1 for a fresh start (or socket activation), one more than the
    /// parent's after an upgrade.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The names of the inherited fds not claimed yet (they are closed by
    /// [`ready`](Upgrader::ready)).
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// for name in up.inherited() { println!("inherited {name}"); }
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn inherited(&self) -> Vec<String> {
        self.lock()
            .inherited
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The names of the fds that the next upgrade hands over, in fd order (3, 4, ...).
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let _l = up.listen_tcp("a", "127.0.0.1:0")?;
    /// let _m = up.listen_tcp("b", "127.0.0.1:0")?;
    /// assert_eq!(up.registered(), ["a", "b"]);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn registered(&self) -> Vec<String> {
        self.lock()
            .registry
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Claims the inherited fd `name` if `check` accepts it, else creates one; registers
    /// a duplicate of the result for the next hand-over.
    fn claim<T>(
        &self,
        name: &str,
        what: &str,
        check: impl FnOnce(BorrowedFd<'_>) -> std::result::Result<Verdict, String>,
        create: impl FnOnce() -> io::Result<T>,
    ) -> Result<T>
    where
        T: From<OwnedFd> + AsFd,
    {
        check_fd_name(name)?;
        let taken = |name: &str| {
            Error::invalid(format!(
                "upgrade: the fd name {name:?} is registered already"
            ))
        };
        {
            let mut st = self.lock();
            if st.registry.iter().any(|(n, _)| n == name) {
                return Err(taken(name));
            }
            if let Some(i) = st.inherited.iter().position(|(n, _)| n == name) {
                match check(st.inherited[i].1.as_fd()) {
                    Ok(Verdict::Adopt) => {
                        let keep = sock::dup(st.inherited[i].1.as_fd()).map_err(|e| {
                            io_error(e, format!("upgrade: duplicating inherited {name:?}"))
                        })?;
                        let (n, fd) = st.inherited.remove(i);
                        st.registry.push((n, keep));
                        return Ok(T::from(fd));
                    }
                    Ok(Verdict::Elsewhere) => {}
                    Err(why) => {
                        let (_, fd) = st.inherited.remove(i);
                        let raw = fd.as_raw_fd();
                        drop(fd);
                        return Err(Error::invalid(format!(
                            "upgrade: inherited fd {raw} named {name:?} {why}; it was closed, \
                             and a new call creates a fresh {what}"
                        )));
                    }
                }
            }
        }
        let made = create().map_err(|e| io_error(e, format!("upgrade: creating {name:?}")))?;
        let keep = sock::dup(made.as_fd())
            .map_err(|e| io_error(e, format!("upgrade: duplicating {name:?}")))?;
        let mut st = self.lock();
        if st.registry.iter().any(|(n, _)| n == name) {
            return Err(taken(name));
        }
        st.registry.push((name.to_owned(), keep));
        Ok(made)
    }

    /// A listening TCP socket named `name` on `addr`: the inherited one of that name when
    /// it is a listening TCP socket bound to `addr` (a requested port 0 matches any port),
    /// else a new one (close-on-exec, `SO_REUSEADDR`, the builder's backlog). An inherited
    /// socket bound elsewhere (the address changed in the configuration) is left unclaimed
    /// and closed by [`ready`](Upgrader::ready).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid or already registered name, an address
    /// that resolves to nothing, or an inherited fd of that name that is not a listening
    /// TCP socket (that fd is closed: calling again creates a new socket);
    /// [`ErrorKind::Io`] (`EADDRINUSE`, ...) or [`ErrorKind::PermissionDenied`] when the
    /// socket cannot be created.
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let l = up.listen_tcp("http", "127.0.0.1:0")?;
    /// let addr = l.local_addr()?;
    /// let _c = std::net::TcpStream::connect(addr)?;
    /// assert!(l.accept().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listen_tcp(&self, name: &str, addr: impl ToSocketAddrs) -> Result<TcpListener> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| io_error(e, format!("upgrade: resolving the address of {name:?}")))?
            .collect();
        if addrs.is_empty() {
            return Err(Error::invalid(format!(
                "upgrade: the address of {name:?} resolves to nothing"
            )));
        }
        let backlog = self.backlog;
        self.claim(
            name,
            "TCP socket",
            |fd| {
                sock::check_listener(fd, Want::Tcp)?;
                match sock::tcp_local_addr(fd) {
                    Some(local) if sock::tcp_addr_matches(local, &addrs) => Ok(Verdict::Adopt),
                    _ => Ok(Verdict::Elsewhere),
                }
            },
            || {
                let mut last = None;
                for a in &addrs {
                    match sock::create_tcp(*a, backlog) {
                        Ok(l) => return Ok(l),
                        Err(e) => last = Some(io::Error::new(e.kind(), format!("{a}: {e}"))),
                    }
                }
                Err(last.expect("at least one address"))
            },
        )
    }

    /// A listening Unix stream socket named `name` at `path` (`@name` for an abstract
    /// socket): the inherited one of that name when it is a listening Unix stream socket
    /// bound to that same path, else a new one (close-on-exec; a socket file left behind by
    /// a dead process is replaced, a live one is `EADDRINUSE`).
    ///
    /// The socket file is not removed when the listener is dropped — the next generation
    /// serves on it.
    ///
    /// # Errors
    /// As [`listen_tcp`](Upgrader::listen_tcp), for a Unix socket.
    ///
    /// # Examples
    /// ```
    /// let dir = std::env::temp_dir().join(format!("listen-unix-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let l = up.listen_unix("control", dir.join("control.sock"))?;
    /// let _c = std::os::unix::net::UnixStream::connect(dir.join("control.sock"))?;
    /// assert!(l.accept().is_ok());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listen_unix(&self, name: &str, path: impl AsRef<Path>) -> Result<UnixListener> {
        let path = path.as_ref();
        let backlog = self.backlog;
        self.claim(
            name,
            "Unix socket",
            |fd| {
                sock::check_listener(fd, Want::Unix)?;
                if sock::unix_addr_matches(fd, path) {
                    Ok(Verdict::Adopt)
                } else {
                    Ok(Verdict::Elsewhere)
                }
            },
            || {
                sock::create_unix(path, backlog)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
            },
        )
    }

    /// Any listening socket named `name`: the inherited one of that name when it is a
    /// listening socket (of any family), else the result of `create`. For sockets made
    /// with options of your own (`SO_REUSEPORT`, `IPV6_V6ONLY`, ...) or of other types.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid or already registered name, or an
    /// inherited fd of that name that is not a listening socket (closed: calling again
    /// creates one); the error of `create`.
    ///
    /// # Examples
    /// ```
    /// use std::net::TcpListener;
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let l: TcpListener = up.listener("api", || TcpListener::bind("127.0.0.1:0"))?;
    /// assert!(l.local_addr()?.port() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listener<T>(&self, name: &str, create: impl FnOnce() -> io::Result<T>) -> Result<T>
    where
        T: From<OwnedFd> + AsFd,
    {
        self.claim(
            name,
            "listener",
            |fd| sock::check_listener(fd, Want::Listener).map(|()| Verdict::Adopt),
            create,
        )
    }

    /// Any fd named `name` that must survive upgrades — a UDP socket, a `memfd` with state,
    /// a pipe: the inherited one of that name as it is (no check), else the result of
    /// `create`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid or already registered name; the error of
    /// `create`.
    ///
    /// # Examples
    /// ```
    /// use std::net::UdpSocket;
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let dns: UdpSocket = up.fd("dns", || UdpSocket::bind("127.0.0.1:0"))?;
    /// assert!(dns.local_addr().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fd<T>(&self, name: &str, create: impl FnOnce() -> io::Result<T>) -> Result<T>
    where
        T: From<OwnedFd> + AsFd,
    {
        self.claim(name, "fd", |_| Ok(Verdict::Adopt), create)
    }

    /// Registers an fd you already hold for the next hand-over under `name` (a
    /// close-on-exec duplicate is kept; yours is untouched).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid or already registered name;
    /// [`ErrorKind::Io`] when the fd cannot be duplicated.
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// up.add_fd("legacy", &l)?;
    /// assert!(up.add_fd("legacy", &l).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_fd(&self, name: &str, fd: impl AsFd) -> Result<()> {
        check_fd_name(name)?;
        let keep = sock::dup(fd.as_fd())
            .map_err(|e| io_error(e, format!("upgrade: duplicating {name:?}")))?;
        let mut st = self.lock();
        if st.registry.iter().any(|(n, _)| n == name) {
            return Err(Error::invalid(format!(
                "upgrade: the fd name {name:?} is registered already"
            )));
        }
        st.registry.push((name.to_owned(), keep));
        Ok(())
    }

    /// Says this process serves: closes the inherited fds nobody claimed, writes the PID
    /// file (if one was asked for) atomically, then tells the parent of an upgrade that it
    /// can exit — or, for a first process under systemd, sends `READY=1` and `MAINPID=`.
    /// A second call does nothing.
    ///
    /// A parent that is gone (killed meanwhile) is not an error: this process serves.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] (or [`ErrorKind::PermissionDenied`]...) when the PID file cannot
    /// be written — nothing else happened then, and the call can be repeated; the error of
    /// [`sd_notify`].
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// up.ready()?;
    /// up.ready()?;
    /// assert!(up.is_ready());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn ready(&self) -> Result<()> {
        let mut st = self.lock();
        if st.ready {
            return Ok(());
        }
        let pid = std::process::id();
        if let Some(p) = &self.pid_file {
            notify::write_pid_file(p, pid).map_err(|e| {
                io_error(e, format!("upgrade: writing the PID file {}", p.display()))
            })?;
        }
        st.inherited.clear();
        st.ready = true;
        match st.ready_pipe.take() {
            Some(pipe) => {
                drop(st);
                match rustix::io::write(&pipe, &[READY_BYTE]) {
                    // EPIPE: the parent is gone; this process serves all the same.
                    Ok(_) | Err(rustix::io::Errno::PIPE) => {}
                    Err(e) => return Err(Error::os(e.raw_os_error())),
                }
            }
            None => {
                drop(st);
                sd_notify(&format!("READY=1\nMAINPID={pid}"))?;
            }
        }
        Ok(())
    }

    /// Whether [`ready`](Upgrader::ready) was called.
    pub fn is_ready(&self) -> bool {
        self.lock().ready
    }

    /// [`upgrade_with`](Upgrader::upgrade_with) the default options: the same program
    /// (path), arguments and environment.
    ///
    /// # Errors
    /// As [`upgrade_with`](Upgrader::upgrade_with).
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// // Not ready yet: refused.
    /// assert!(up.upgrade().unwrap_err().to_string().contains("ready()"));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn upgrade(&self) -> Result<Upgraded> {
        self.upgrade_with(&UpgradeOptions::new())
    }

    /// Starts the new binary with every registered fd (fd 3 on, names in
    /// `LISTEN_FDNAMES`, `LISTEN_PID` its own pid) and a readiness pipe, with stdin, stdout
    /// and stderr shared, and waits for its [`ready`](Upgrader::ready) at most the timeout.
    ///
    /// On success this process is told to exit ([`exit_requested`](Upgrader::exit_requested),
    /// [`exit_fd`](Upgrader::exit_fd), [`wait_for_exit`](Upgrader::wait_for_exit)), systemd
    /// (if `NOTIFY_SOCKET` is set) is told `MAINPID=<new pid>`, and the new process is left
    /// running: it is reparented when this one exits. On failure the new process is killed
    /// and reaped, and this one goes on serving; another upgrade may be tried.
    ///
    /// # Errors
    /// - [`ErrorKind::InvalidInput`]: [`ready`](Upgrader::ready) was not called yet; an
    ///   upgrade is already in progress (in another thread); this process was upgraded
    ///   (or [`stop`](Upgrader::stop)ped) already and is exiting.
    /// - [`ErrorKind::ExitStatus`] (with [`Error::state`]): the new process exited before
    ///   it was ready.
    /// - [`ErrorKind::Timeout`] (with [`Error::state`]): it was not ready in time, and was
    ///   killed.
    /// - [`ErrorKind::Io`] (with [`Error::state`]): it closed the readiness pipe without
    ///   writing to it and did not exit soon after (2 s at most); it was killed. Also for a failing
    ///   `poll` or `read` of the pipe.
    /// - [`ErrorKind::Exec`] / [`ErrorKind::NotFound`] / [`ErrorKind::PermissionDenied`]:
    ///   it could not be started (see [`Cmd::start`](crate::Cmd::start)).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{ErrorKind, upgrade::{UpgradeOptions, Upgrader}};
    /// let up = Upgrader::new()?;
    /// let _l = up.listen_tcp("http", "127.0.0.1:0")?;
    /// up.ready()?;
    /// // A "new binary" that fails before ready(): the error says so, we keep serving.
    /// let mut opts = UpgradeOptions::new();
    /// opts.program("/bin/sh").args(["-c", "test \"$LISTEN_FDNAMES\" = http && exit 7"]);
    /// let err = up.upgrade_with(&opts).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::ExitStatus);
    /// assert_eq!(err.state().unwrap().exit_code(), 7);
    /// // One that never becomes ready: killed at the timeout.
    /// opts.args(["-c", "exec sleep 30"]).timeout(Duration::from_millis(100));
    /// assert_eq!(up.upgrade_with(&opts).unwrap_err().kind(), ErrorKind::Timeout);
    /// // One that signals ready on the pipe it is told of: success.
    /// opts.args(["-c", "printf R >&$FORKEXEC_UPGRADE_READY_FD"]).timeout(Duration::from_secs(10));
    /// let done = up.upgrade_with(&opts)?;
    /// assert!(done.pid > 0 && up.exit_requested());
    /// # forkexec::raw::waitpid(done.pid, forkexec::raw::WaitOptions::empty())?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn upgrade_with(&self, opts: &UpgradeOptions) -> Result<Upgraded> {
        let started = Instant::now();
        if !self.is_ready() {
            return Err(Error::invalid(
                "upgrade: call ready() before upgrade(): this process must serve first",
            ));
        }
        if self.exit_requested() {
            return Err(Error::invalid(
                "upgrade: this process was upgraded (or stopped) already and is exiting",
            ));
        }
        if self.upgrading.swap(true, Ordering::SeqCst) {
            return Err(Error::invalid("upgrade: an upgrade is already in progress"));
        }
        struct InProgress<'a>(&'a AtomicBool);
        impl Drop for InProgress<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        let _in_progress = InProgress(&self.upgrading);

        let (mut cmd, ready_r) = self.command(opts)?;
        let mut child = cmd.start()?;
        // The child holds its copies now; the parent's (in `cmd`) must go, or the pipe
        // never reports the child's exit.
        drop(cmd);
        let timeout = opts.timeout.unwrap_or(self.timeout);
        let deadline = started.checked_add(timeout);
        let outcome = wait_ready(&child, &ready_r, deadline);
        match outcome {
            Ok(true) => {
                let pid = child.pid();
                self.exiting.store(true, Ordering::SeqCst);
                self.lock().registry.clear();
                self.close_exit_pipe();
                // Under systemd: the new process is the main one now. Best effort; the
                // upgrade has happened whatever systemd says.
                let _ = sd_notify(&format!("MAINPID={pid}\nREADY=1"));
                Ok(Upgraded {
                    pid,
                    ready_after: started.elapsed(),
                })
            }
            Ok(false) => Err(fail(&mut child, timeout, deadline)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// The command that starts the next generation, and the read end of its readiness pipe.
    fn command(&self, opts: &UpgradeOptions) -> Result<(Cmd, OwnedFd)> {
        let mut fds = Vec::new();
        let mut names = Vec::new();
        {
            let st = self.lock();
            for (name, fd) in &st.registry {
                let d = sock::dup(fd.as_fd())
                    .map_err(|e| io_error(e, format!("upgrade: duplicating {name:?}")))?;
                fds.push(d);
                names.push(name.as_str().to_owned());
            }
        }
        let (ready_r, ready_w) = crate::raw::pipe()?;
        let program = opts.program.as_deref().unwrap_or(&self.program);
        let mut cmd = Cmd::new(program);
        match self.args.first() {
            Some(a0) if opts.program.is_none() => {
                cmd.arg0(a0);
            }
            _ => {}
        }
        match &opts.args {
            Some(a) => cmd.args(a),
            None => cmd.args(self.args.iter().skip(1)),
        };
        cmd.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        for (k, v) in &opts.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        for k in HANDOVER_VARS {
            cmd.env_remove(k);
        }
        let n = fds.len();
        cmd.env(ENV_LISTEN_FDS, n.to_string());
        if n > 0 {
            cmd.env(ENV_LISTEN_FDNAMES, names.join(":"));
        }
        cmd.env(ENV_READY_FD, (LISTEN_FDS_START as usize + n).to_string());
        cmd.env(
            ENV_GENERATION,
            self.generation.saturating_add(1).to_string(),
        );
        cmd.env_child_pid(ENV_LISTEN_PID);
        for fd in fds {
            cmd.extra_file(fd);
        }
        cmd.extra_file(ready_w);
        Ok((cmd, ready_r))
    }

    fn close_exit_pipe(&self) {
        let w = self.exit_w.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(w);
    }

    /// Asks this process to exit, as a successful upgrade does (for `SIGTERM`, say): the
    /// server loop sees [`exit_requested`](Upgrader::exit_requested) and drains. Further
    /// upgrades are refused.
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// up.stop();
    /// assert!(up.exit_requested());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn stop(&self) {
        self.exiting.store(true, Ordering::SeqCst);
        self.close_exit_pipe();
    }

    /// Whether this process must exit: an upgrade succeeded, or [`stop`](Upgrader::stop)
    /// was called.
    pub fn exit_requested(&self) -> bool {
        self.exiting.load(Ordering::SeqCst)
    }

    /// An fd that polls readable (and stays so) once this process must exit, for a
    /// `poll`/`epoll` loop next to the listeners.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use rustix::event::{poll, PollFd, PollFlags, Timespec};
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
    /// let mut p = [PollFd::from_borrowed_fd(up.exit_fd(), PollFlags::IN)];
    /// assert_eq!(poll(&mut p, Some(&zero))?, 0);
    /// up.stop();
    /// assert_eq!(poll(&mut p, Some(&zero))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exit_fd(&self) -> BorrowedFd<'_> {
        self.exit_r.as_fd()
    }

    /// Blocks until this process must exit.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when polling fails.
    ///
    /// # Examples
    /// ```
    /// let up = std::sync::Arc::new(forkexec::upgrade::Upgrader::new()?);
    /// let u = up.clone();
    /// let t = std::thread::spawn(move || u.wait_for_exit());
    /// up.stop();
    /// t.join().unwrap()?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn wait_for_exit(&self) -> Result<()> {
        while !self.wait_for_exit_timeout(Duration::from_secs(3600))? {}
        Ok(())
    }

    /// Waits at most `timeout` for this process to be asked to exit; `true` if it was.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when polling fails.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// assert!(!up.wait_for_exit_timeout(Duration::from_millis(5))?);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn wait_for_exit_timeout(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if self.exit_requested() {
                return Ok(true);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => timeout,
            };
            if left.is_zero() {
                return Ok(self.exit_requested());
            }
            signals::poll_in(self.exit_fd(), Some(left))?;
        }
    }
}

/// Waits for the readiness byte: `Ok(true)` when it came, `Ok(false)` when the pipe closed
/// without it (the child exited or gave up its end) or the deadline passed.
fn wait_ready(child: &Child, ready_r: &OwnedFd, deadline: Option<Instant>) -> Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ts = left.map(|t| Timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        let pidfd = child.process().pidfd();
        let mut p = [
            PollFd::new(ready_r, PollFlags::IN),
            match pidfd {
                Some(fd) => PollFd::from_borrowed_fd(fd, PollFlags::IN),
                None => PollFd::from_borrowed_fd(ready_r.as_fd(), PollFlags::empty()),
            },
        ];
        match rustix::event::poll(&mut p, ts.as_ref()) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::os(e.raw_os_error())),
            Ok(_) => {}
        }
        // The byte counts even when the child exited right after writing it.
        if !p[0].revents().is_empty() || !p[1].revents().is_empty() || left == Some(Duration::ZERO)
        {
            return read_ready_byte(ready_r);
        }
    }
}

/// Reads the readiness byte if it is there, without blocking when the pipe is still open.
fn read_ready_byte(ready_r: &OwnedFd) -> Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut p = [PollFd::new(ready_r, PollFlags::IN)];
    match rustix::event::poll(&mut p, Some(&zero)) {
        Ok(0) | Err(rustix::io::Errno::INTR) => return Ok(false),
        Ok(_) => {}
        Err(e) => return Err(Error::os(e.raw_os_error())),
    }
    let mut b = [0u8; 1];
    loop {
        match rustix::io::read(ready_r, &mut b) {
            Ok(1) => return Ok(b[0] == READY_BYTE),
            Ok(_) => return Ok(false),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::os(e.raw_os_error())),
        }
    }
}

/// Ends a child that did not become ready: reaps it when it exited (or kills it first),
/// and says which happened.
fn fail(child: &mut Child, timeout: Duration, deadline: Option<Instant>) -> Error {
    let pid = child.pid();
    let now = Instant::now();
    let timed_out = deadline.is_some_and(|d| now >= d);
    // A child that closed the pipe is exiting, most likely: give it a moment to finish
    // (at most 2 s, and not much past the deadline).
    let grace = match deadline {
        _ if timed_out => Duration::ZERO,
        Some(d) => d
            .saturating_duration_since(now)
            .clamp(Duration::from_millis(50), Duration::from_secs(2)),
        None => Duration::from_secs(2),
    };
    if let Ok(Some(st)) = child.process().wait_timeout(grace) {
        return Error::new(
            ErrorKind::ExitStatus,
            format!("upgrade: the new process (pid {pid}) exited before it was ready: {st}"),
        )
        .with_state(st);
    }
    let _ = child.kill();
    let st = child.process().wait();
    let (kind, what) = if timed_out {
        (
            ErrorKind::Timeout,
            format!("was not ready within {timeout:?}"),
        )
    } else {
        (
            ErrorKind::Io,
            "closed its readiness pipe without becoming ready".to_string(),
        )
    };
    let mut e = Error::new(
        kind,
        format!("upgrade: the new process (pid {pid}) {what}; it was killed"),
    );
    if let Ok(st) = st {
        e = e.with_state(st);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_rules() {
        let up = Upgrader::builder().inherit(false).build().unwrap();
        let l = up.listen_tcp("a", "127.0.0.1:0").unwrap();
        assert!(up.listen_tcp("a", "127.0.0.1:0").is_err());
        assert!(up.add_fd("a", &l).is_err());
        assert!(up.add_fd("bad:name", &l).is_err());
        assert!(up.listen_tcp("", "127.0.0.1:0").is_err());
        assert_eq!(up.registered(), ["a"]);
        assert!(up.upgrade().is_err());
    }

    #[test]
    fn one_upgrade_at_a_time() {
        let up = std::sync::Arc::new(Upgrader::builder().inherit(false).build().unwrap());
        up.ready().unwrap();
        let mut slow = UpgradeOptions::new();
        slow.program("/bin/sh")
            .args(["-c", "exec sleep 30"])
            .timeout(Duration::from_millis(1500));
        let u = up.clone();
        let t = std::thread::spawn(move || u.upgrade_with(&slow));
        let t0 = Instant::now();
        while !up.upgrading.load(Ordering::SeqCst) {
            assert!(t0.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(1));
        }
        let e = up.upgrade().unwrap_err();
        assert!(e.to_string().contains("already in progress"), "{e}");
        let e = t.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert_eq!(e.state().unwrap().to_string(), "signal: killed");
        assert!(!up.exit_requested());
        // Free again after the failure.
        let mut quick = UpgradeOptions::new();
        quick.program("/bin/sh").args(["-c", "exit 4"]);
        assert_eq!(
            up.upgrade_with(&quick)
                .unwrap_err()
                .state()
                .unwrap()
                .exit_code(),
            4
        );
    }

    #[test]
    fn inherited_checks() {
        let up = Upgrader::builder().inherit(false).build().unwrap();
        // Simulate a hand-over: a pipe named like a listener, a UDP socket, a TCP listener
        // bound elsewhere, and a good one.
        let (r, _w) = crate::raw::pipe().unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = TcpListener::bind("127.0.0.1:0").unwrap();
        let good_addr = good.local_addr().unwrap();
        {
            let mut st = up.lock();
            st.inherited.push(("pipe".into(), r));
            st.inherited.push(("udp".into(), OwnedFd::from(udp)));
            st.inherited.push(("moved".into(), OwnedFd::from(other)));
            st.inherited.push(("http".into(), OwnedFd::from(good)));
        }
        let e = up.listen_tcp("pipe", "127.0.0.1:0").unwrap_err();
        assert!(e.to_string().contains("is not a socket"), "{e}");
        // Closed, so a second call creates afresh.
        assert!(up.listen_tcp("pipe", "127.0.0.1:0").is_ok());
        let e = up.listen_tcp("udp", "127.0.0.1:0").unwrap_err();
        assert!(e.to_string().contains("not a TCP socket"), "{e}");
        // Bound elsewhere: a new one, the inherited one left for ready() to close.
        let m = up.listen_tcp("moved", "127.0.0.2:0").unwrap();
        assert_eq!(m.local_addr().unwrap().ip().to_string(), "127.0.0.2");
        assert_eq!(up.inherited(), ["moved", "http"]);
        let h = up.listen_tcp("http", good_addr).unwrap();
        assert_eq!(h.local_addr().unwrap(), good_addr);
        assert_eq!(up.inherited(), ["moved"]);
        up.ready().unwrap();
        assert!(up.inherited().is_empty());
        assert_eq!(up.registered(), ["pipe", "moved", "http"]);
    }
}
