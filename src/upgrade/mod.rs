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
//! The hand-over text is untrusted and parsed strictly (the parser is fuzzed):
//! - `LISTEN_PID` absent, or naming another pid: nothing is handed over, whatever the other
//!   variables say; `LISTEN_FDS` absent or `0`: likewise;
//! - numbers are ASCII digits only (no sign, no space); `LISTEN_PID` is at most `i32::MAX`
//!   and not 0, `LISTEN_FDS` at most [`MAX_LISTEN_FDS`], the readiness fd at least 3 and
//!   not one of the listening fds;
//! - `LISTEN_FDNAMES`, when present, holds exactly `LISTEN_FDS` names separated by `:`,
//!   each valid ([`is_valid_fd_name`]) and all distinct; when absent the fds are named
//!   `LISTEN_FD_3`, `LISTEN_FD_4`, ... (as go-systemd does);
//! - every fd named must be open and inherited (not close-on-exec), the readiness fd a pipe.
//!
//! The first three variables are exactly systemd's socket-activation protocol, so the new binary
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
//! - the hand-over text is parsed strictly (the [rules][protocol], fuzzed) and never
//!   trusted: counts are bounded, names validated, duplicates refused;
//! - no stale fd or variable reaches a third generation;
//! - a failed upgrade (exit or timeout) kills and reaps the new process, and says which.
//!
//!
//! # Names in tableflip and systemd
//! | here | tableflip (Go) | systemd / go-systemd |
//! |---|---|---|
//! | [`Upgrader::new`], [`Upgrader::builder`] | `tableflip.New(Options)` | |
//! | [`Builder::upgrade_timeout`], [`Builder::pid_file`] | `Options.UpgradeTimeout`, `Options.PIDFile` | |
//! | [`Upgrader::listen_tcp`], [`listen_unix`](Upgrader::listen_unix) | `Fds.Listen` | `activation.ListenersWithNames` |
//! | [`Upgrader::listener`] | `Fds.Listener` | |
//! | [`Upgrader::fd`], [`Upgrader::add_fd`] | `Fds.File`, `Fds.AddFile` | `activation.Files` |
//! | [`Upgrader::ready`] | `Upgrader.Ready` | `sd_notify("READY=1")` |
//! | [`Upgrader::upgrade`] | `Upgrader.Upgrade` | |
//! | [`Upgrader::exit_fd`], [`Upgrader::wait_for_exit`] | `Upgrader.Exit()` | |
//! | [`Upgrader::stop`] | `Upgrader.Stop` | |
//! | [`Upgrader::has_parent`] | `Upgrader.HasParent` | |
//! | [`Signals`] | `signal.Notify` | `signalfd` |
//! | [`sd_notify`] | | `sd_notify`, `daemon.SdNotify` |
//! | [`LISTEN_FDS_START`] | | `SD_LISTEN_FDS_START` |
//!
//! Each of these carries the other names as a `doc(alias)`, so searching the docs for
//! `HasParent` or `SdNotify` finds it.
//!
//! # References
//! - `sd_listen_fds(3)`, `systemd.socket(5)`: the socket-activation variables;
//! - `sd_notify(3)`: `READY=1`, `MAINPID=`, `NOTIFY_SOCKET`;
//! - `execve(2)`, `fcntl(2)` (`FD_CLOEXEC`): how the fds cross to the new binary;
//! - `signalfd(2)`, `pthread_sigmask(3)`: [`Signals`];
//! - `pipe(7)`, `poll(2)`: the readiness pipe and the exit fd;
//! - `socket(7)` (`SO_ACCEPTCONN`, `SO_DOMAIN`), `unix(7)`, `tcp(7)`: the checks of an
//!   inherited socket.
//!
//! [`Cmd::env_child_pid`]: crate::Cmd::env_child_pid
//! [protocol]: #protocol-the-new-processs-environment-and-fds

// No `unsafe` in this module: the system calls that need it (signalfd and the signal mask,
// taking inherited fds by number, removing variables from the environment) are safe
// wrappers in `crate::sys::upgrade`.
#![deny(unsafe_code)]

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::{Error, Result};
// For the intra-doc links of `# Errors` sections only.
#[cfg(doc)]
use crate::ErrorKind;

mod adopt;
mod builder;
mod claim;
mod env;
mod handover;
mod lifecycle;
mod notify;
mod signals;
mod sock;

pub use builder::Builder;
pub use env::{
    ENV_GENERATION, ENV_LISTEN_FDNAMES, ENV_LISTEN_FDS, ENV_LISTEN_PID, ENV_READY_FD,
    LISTEN_FDS_START, MAX_FD_NAME_LEN, MAX_LISTEN_FDS, is_valid_fd_name,
};
// Public only so that the fuzz target (fuzz/fuzz_targets/upgrade_env.rs, a separate crate)
// can reach the parser; not part of the documented API, which states the rules in the
// module documentation ("Protocol") instead. `Builder::build` is the way to use them.
#[doc(hidden)]
pub use env::{parse_listen_env, parse_ready_fd};
pub use handover::{UpgradeOptions, Upgraded};
pub use notify::sd_notify;
pub use signals::Signals;

/// The default time a new process has to call [`Upgrader::ready`].
///
/// # Examples
/// ```
/// assert_eq!(forkexec::upgrade::DEFAULT_UPGRADE_TIMEOUT.as_secs(), 30);
/// ```
pub const DEFAULT_UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

/// The byte the new process writes to the readiness pipe.
const READY_BYTE: u8 = b'R';

/// How this process was started, as [`Upgrader::new`] found it.
///
/// # Examples
/// ```
/// use forkexec::upgrade::{StartedBy, Upgrader};
/// let up = Upgrader::new()?;
/// match up.started_by() {
///     StartedBy::Fresh => assert_eq!(up.generation(), 1),
///     StartedBy::Upgrade => assert!(up.generation() > 1),
///     StartedBy::SocketActivation => assert_eq!(up.generation(), 1),
///     _ => {} // non_exhaustive
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

/// The mutable part of an [`Upgrader`], behind its lock.
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
/// Its methods live next to what they do: building and adopting the hand-over
/// ([`Builder`]), claiming sockets ([`listen_tcp`](Upgrader::listen_tcp), ...), readiness
/// and exit ([`ready`](Upgrader::ready), [`stop`](Upgrader::stop), ...), and the hand-over
/// to a new binary ([`upgrade`](Upgrader::upgrade)).
///
/// # Examples
/// ```
/// use forkexec::upgrade::Upgrader;
/// let up = Upgrader::new()?;
/// let l = up.listen_tcp("http", "127.0.0.1:0")?;
/// assert_eq!(up.registered(), ["http"]);
/// up.ready()?;
/// assert!(!up.exit_requested());
/// up.stop(); // as on SIGTERM
/// assert!(up.exit_requested());
/// up.wait_for_exit()?; // returns at once
/// drop(l);
/// # Ok::<(), forkexec::Error>(())
/// ```
#[doc(alias = "tableflip")]
#[doc(alias = "hot_restart")]
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

/// An [`Error`] of the kind `e` maps to, its message prefixed with `context`.
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
    /// The same as `Upgrader::builder().build()`.
    ///
    /// # Errors
    /// As [`Builder::build`]: [`ErrorKind::InvalidInput`] when an upgrader of this process
    /// inherited already (a second `Upgrader::new()` is refused, whether or not there was
    /// a hand-over; build further ones with `inherit(false)`), or for a malformed
    /// hand-over (see the [protocol](self#protocol-the-new-processs-environment-and-fds));
    /// nothing is adopted then, and `Upgrader::builder().inherit(false).build()` listens
    /// afresh.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{ErrorKind, upgrade::Upgrader};
    /// let up = Upgrader::new()?;
    /// println!("generation {} started by {:?}", up.generation(), up.started_by());
    /// // The inherited fds have one owner: a second upgrader may not inherit.
    /// assert_eq!(Upgrader::new().unwrap_err().kind(), ErrorKind::InvalidInput);
    /// let other = Upgrader::builder().inherit(false).build()?;
    /// drop(other);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `sd_listen_fds(3)`, `execve(2)`.
    ///
    /// [`ErrorKind::InvalidInput`]: crate::ErrorKind::InvalidInput
    #[doc(alias = "New")]
    #[doc(alias = "sd_listen_fds")]
    pub fn new() -> Result<Upgrader> {
        Builder::default().build()
    }

    /// A [`Builder`] for non-default settings (PID file, timeout, program, backlog).
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::{StartedBy, Upgrader};
    /// let up = Upgrader::builder().inherit(false).build()?;
    /// assert_eq!(up.started_by(), StartedBy::Fresh);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Options")]
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How this process was started.
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::{StartedBy, Upgrader};
    /// let up = Upgrader::builder().inherit(false).build()?;
    /// // Not inheriting: a fresh start, whatever the environment says.
    /// assert_eq!(up.started_by(), StartedBy::Fresh);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn started_by(&self) -> StartedBy {
        self.started_by
    }

    /// Whether this process was started by an upgrade (tableflip's `HasParent`): the same
    /// as `started_by() == StartedBy::Upgrade`.
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::{StartedBy, Upgrader};
    /// let up = Upgrader::new()?;
    /// assert_eq!(up.has_parent(), up.started_by() == StartedBy::Upgrade);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "HasParent")]
    pub fn has_parent(&self) -> bool {
        self.started_by == StartedBy::Upgrade
    }

    /// The generation: 1 for a fresh start (or socket activation), one more than the
    /// parent's after an upgrade (passed in `FORKEXEC_UPGRADE_GENERATION`).
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::Upgrader;
    /// let up = Upgrader::builder().inherit(false).build()?;
    /// assert_eq!(up.generation(), 1);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The names of the inherited fds not claimed yet (they are closed by
    /// [`ready`](Upgrader::ready)).
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// for name in up.inherited() {
    ///     println!("inherited {name}");
    /// }
    /// up.ready()?;
    /// assert!(up.inherited().is_empty());
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
}
