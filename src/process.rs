//! Go's `os.Process`, `os.ProcessState`, `os.StartProcess` and `os.FindProcess`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::attr::SysProcAttr;
use crate::error::{Error, ErrorKind, Result, Stage};
use crate::spawn::{self, ChildFd, ExecPlan, Spawned, Strategy, path_cstring};
use crate::status::ProcessState;
use crate::status::{Signal, WaitStatus};
use crate::sys;
use crate::sys::cstr::CStringArray;

/// A process (Go's `os.Process`): its pid and, on Linux 5.3+, a pidfd, so that signals and
/// waits can never reach a different process that reused the pid.
///
/// Waiting reaps exactly once: a second `wait` (or one racing in another thread) returns
/// [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone); signalling a reaped process does too, without touching the
/// pid. Dropping a `Process` does not wait for it.
///
/// A child whose status is gone before this handle could reap it (the kernel reaped it
/// because `SIGCHLD` is ignored, or another `waitpid` took it) is done as well: the wait
/// that finds out returns [`ErrorKind::Io`](crate::ErrorKind::Io) with `ECHILD`, every later wait returns that
/// same error, and every later signal [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone) without touching the pid
/// or pidfd (the kernel wakes the waiter before it has released the process, so a signal
/// right then could still seem to reach it).
///
/// # Examples
/// ```
/// use forkexec::{start_process, ProcAttr, ErrorKind, Signal};
/// let p = start_process("/bin/sleep", ["sleep", "30"], &ProcAttr::default())?;
/// p.signal(Signal::TERM)?;
/// assert_eq!(p.wait()?.signal(), Some(Signal::TERM));
/// assert_eq!(p.signal(Signal::TERM).unwrap_err().kind(), ErrorKind::ProcessDone);
/// assert_eq!(p.wait().unwrap_err().kind(), ErrorKind::ProcessDone);
/// # Ok::<(), forkexec::Error>(())
/// ```
#[doc(alias = "os.Process")]
pub struct Process {
    pid: i32,
    pidfd: Option<OwnedFd>,
    /// Whether it is done. Write-locked only for the instant of the non-blocking reap, so
    /// a signal holding the read lock can never hit a recycled pid.
    reaped: RwLock<Reaped>,
    /// The state it was reaped with, through this handle: what a `Child` returns when the
    /// process was reaped before the `Child` was waited for.
    state: OnceLock<ProcessState>,
    /// Whether it is a child of this process (`ECHILD` then means its status is gone; for
    /// another process it only means it cannot be waited for).
    child: bool,
}

/// What a [`Process`](crate::Process) knows of its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reaped {
    /// Not reaped yet: it may be running, or a zombie.
    No,
    /// Reaped through this handle.
    Yes,
    /// A child reaped by someone else (or by the kernel, `SIGCHLD` ignored): its status is
    /// gone; a wait found `ECHILD`.
    Lost,
}

/// The wait status `waitid` reports.
fn info_status(c: sys::ChildInfo) -> WaitStatus {
    WaitStatus::from_siginfo(c.code, c.status).unwrap_or(WaitStatus::Exited(c.status))
}

/// Blocks until the child `pid` (known by its pidfd where there is one) exits, reaps it and
/// returns its state: the blocking reap behind [`Process::wait`](crate::Process::wait) for an exclusive owner and
/// behind `Cmd::status`.
#[inline]
pub(crate) fn reap(pid: i32, pidfd: Option<BorrowedFd<'_>>) -> Result<ProcessState> {
    let (idtype, id) = wait_target(pid, pidfd);
    match sys::waitid(idtype, id, libc::WEXITED, true) {
        Ok(Some(c)) => Ok(ProcessState::new(pid, info_status(c), c.rusage)),
        Ok(None) => Err(Error::os(libc::ECHILD).with_stage(Stage::Wait)),
        Err(e) => Err(Error::os(e).with_stage(Stage::Wait)),
    }
}

/// What `waitid` waits for: the pidfd where there is one, else the pid.
fn wait_target(pid: i32, pidfd: Option<BorrowedFd<'_>>) -> (libc::idtype_t, libc::id_t) {
    match pidfd {
        Some(fd) => (libc::P_PIDFD, fd.as_raw_fd() as libc::id_t),
        None => (libc::P_PID, pid as libc::id_t),
    }
}

pub(crate) fn process_done() -> Error {
    Error::new(ErrorKind::ProcessDone, "os: process already finished")
}

/// The wait error of a child whose status is gone.
fn status_lost() -> Error {
    Error::os(libc::ECHILD).with_stage(Stage::Wait)
}

impl Reaped {
    /// The error of a wait when not [`Reaped::No`].
    fn wait_error(self) -> Option<Error> {
        match self {
            Reaped::No => None,
            Reaped::Yes => Some(process_done()),
            Reaped::Lost => Some(status_lost()),
        }
    }
}

impl Process {
    pub(crate) fn from_spawned(s: Spawned) -> Process {
        Process {
            pid: s.pid,
            pidfd: s.pidfd.map(OwnedFd::from),
            reaped: RwLock::new(Reaped::No),
            state: OnceLock::new(),
            child: true,
        }
    }

    /// The process id (Go's `Pid`).
    ///
    /// # Examples
    /// ```
    /// use std::os::fd::AsFd;
    /// use forkexec::{start_process, ProcAttr};
    /// let (r, w) = forkexec::raw::pipe()?;
    /// let files = vec![None, Some(w.as_fd())];
    /// let p = start_process("/bin/sh", ["sh", "-c", "echo $$"], &ProcAttr { files, ..Default::default() })?;
    /// drop(w);
    /// assert_eq!(std::io::read_to_string(std::fs::File::from(r))?.trim_end(), p.pid().to_string());
    /// p.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "Pid")]
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd, where the kernel supports them (Linux 5.3+).
    ///
    /// # Examples
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let p = forkexec::start_process("/bin/sleep", ["sleep", "10"], &Default::default())?;
    /// if let Some(fd) = p.pidfd() {
    ///     let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    ///     assert!(info.contains(&format!("Pid:\t{}\n", p.pid())));
    /// }
    /// p.kill()?;
    /// p.wait()?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    fn reaped(&self) -> Reaped {
        *self.reaped.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A wait found `ECHILD`: for a child, its status is gone for good (mark it, unless a
    /// racing wait reaped it meanwhile); for another process, it cannot be waited for.
    fn echild(&self) -> Error {
        if !self.child {
            return status_lost();
        }
        let mut reaped = self.reaped.write().unwrap_or_else(|p| p.into_inner());
        if *reaped == Reaped::No {
            *reaped = Reaped::Lost;
        }
        reaped.wait_error().unwrap_or_else(status_lost)
    }

    /// Sends `sig` to the process.
    ///
    /// # Errors
    /// [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone) when the process was reaped (through this handle, or it is
    /// gone entirely), or a wait found its status gone (`ECHILD`); an exited child not yet
    /// waited for still accepts signals, as in Go; [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied) when not
    /// allowed.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{start_process, ProcAttr, Signal};
    /// let p = start_process("/bin/sleep", ["sleep", "30"], &ProcAttr::default())?;
    /// p.signal(Signal::KILL)?;
    /// assert_eq!(p.wait()?.to_string(), "signal: killed");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `pidfd_send_signal(2)`, `kill(2)`.
    #[doc(alias("Signal", "pidfd_send_signal"))]
    pub fn signal(&self, sig: Signal) -> Result<()> {
        let reaped = self.reaped.read().unwrap_or_else(|p| p.into_inner());
        if *reaped != Reaped::No {
            return Err(process_done());
        }
        let r = match &self.pidfd {
            Some(fd) => sys::pidfd_send_signal(fd.as_fd(), sig.as_raw()),
            None => sys::kill(self.pid, sig.as_raw()),
        };
        drop(reaped);
        match r {
            Ok(()) => Ok(()),
            Err(libc::ESRCH) => Err(process_done()),
            Err(e) => Err(Error::os(e)),
        }
    }

    /// Sends `SIGKILL` (Go's `Kill`).
    ///
    /// # Errors
    /// As [`signal`](Self::signal).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{start_process, ProcAttr, Signal};
    /// let p = start_process("/bin/sleep", ["sleep", "30"], &ProcAttr::default())?;
    /// p.kill()?;
    /// assert_eq!(p.wait()?.signal(), Some(Signal::KILL));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `pidfd_send_signal(2)`, `kill(2)`.
    #[doc(alias = "Kill")]
    pub fn kill(&self) -> Result<()> {
        self.signal(Signal::KILL)
    }

    /// Blocks until the process has exited (without reaping it).
    fn wait_exit(&self) -> Result<()> {
        let (idtype, id) = wait_target(self.pid, self.pidfd.as_ref().map(|f| f.as_fd()));
        match sys::waitid(idtype, id, libc::WEXITED | libc::WNOWAIT, false) {
            Ok(_) => Ok(()),
            Err(libc::ECHILD) => Err(self.echild()),
            Err(e) => Err(Error::os(e).with_stage(Stage::Wait)),
        }
    }

    /// Whether the process has exited, without waiting and without reaping it (also
    /// `true` once it is reaped, by this value or through another). For the waits that
    /// have no pidfd to poll (kernels before 5.3).
    pub(crate) fn exited_nowait(&self) -> Result<bool> {
        if self.state.get().is_some() {
            return Ok(true);
        }
        let (idtype, id) = wait_target(self.pid, self.pidfd.as_ref().map(|f| f.as_fd()));
        match sys::waitid(
            idtype,
            id,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            false,
        ) {
            Ok(found) => Ok(found.is_some()),
            Err(libc::ECHILD) => Ok(true),
            Err(e) => Err(Error::os(e).with_stage(Stage::Wait)),
        }
    }

    /// Reaps the process if it has exited; `None` if it is still running.
    fn reap_now(&self) -> Result<Option<ProcessState>> {
        let mut reaped = self.reaped.write().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = reaped.wait_error() {
            return Err(e);
        }
        let (idtype, id) = wait_target(self.pid, self.pidfd.as_ref().map(|f| f.as_fd()));
        match sys::waitid(idtype, id, libc::WEXITED | libc::WNOHANG, true) {
            Ok(None) => Ok(None),
            Ok(Some(c)) => {
                *reaped = Reaped::Yes;
                let st = ProcessState::new(self.pid, info_status(c), c.rusage);
                let _ = self.state.set(st);
                Ok(Some(st))
            }
            Err(libc::ECHILD) if self.child => {
                *reaped = Reaped::Lost;
                Err(status_lost())
            }
            Err(e) => Err(Error::os(e).with_stage(Stage::Wait)),
        }
    }

    /// Waits for the process to exit, reaps it and returns its state (Go's `Wait`).
    ///
    /// # Errors
    /// [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone) when it was already reaped (by an earlier call, or by a
    /// call racing in another thread); [`ErrorKind::Io`](crate::ErrorKind::Io) with `ECHILD` (stage
    /// [`Stage::Wait`](crate::Stage::Wait)) when the process is not a child of this one, or is a child whose
    /// status is gone (`SIGCHLD` ignored, or reaped by another `waitpid`): then this and
    /// every later wait return that error, and signals [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{start_process, ProcAttr};
    /// let p = start_process("/bin/true", ["true"], &ProcAttr::default())?;
    /// assert!(p.wait()?.success());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `waitid(2)`.
    #[doc(alias("Wait", "waitid"))]
    pub fn wait(&self) -> Result<ProcessState> {
        loop {
            if let Some(e) = self.reaped().wait_error() {
                return Err(e);
            }
            self.wait_exit()?;
            if let Some(st) = self.reap_now()? {
                return Ok(st);
            }
        }
    }

    /// The state this handle reaped the process with, if it did.
    pub(crate) fn reaped_state(&self) -> Option<ProcessState> {
        self.state.get().copied()
    }

    /// [`wait`](Self::wait) for a caller with exclusive access: nobody can signal or wait
    /// through this handle meanwhile, so one blocking `waitid` reaps (no lock, no
    /// `WNOWAIT` round trip).
    pub(crate) fn wait_exclusive(&mut self) -> Result<ProcessState> {
        let reaped = self.reaped.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = reaped.wait_error() {
            return Err(e);
        }
        match reap(self.pid, self.pidfd.as_ref().map(|f| f.as_fd())) {
            Ok(st) => {
                *reaped = Reaped::Yes;
                let _ = self.state.set(st);
                Ok(st)
            }
            Err(e) => {
                if self.child && e.errno() == Some(libc::ECHILD) {
                    *reaped = Reaped::Lost;
                }
                Err(e)
            }
        }
    }

    /// Reaps the process if it has exited, without blocking.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{start_process, ProcAttr};
    /// let p = start_process("/bin/sleep", ["sleep", "30"], &ProcAttr::default())?;
    /// assert!(p.try_wait()?.is_none());
    /// p.kill()?;
    /// p.wait()?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `waitid(2)` (`WNOHANG`).
    pub fn try_wait(&self) -> Result<Option<ProcessState>> {
        self.reap_now()
    }

    /// Waits at most `timeout` for the process to exit; `None` if it is still running then.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{start_process, ProcAttr};
    /// let p = start_process("/bin/sleep", ["sleep", "30"], &ProcAttr::default())?;
    /// assert!(p.wait_timeout(Duration::from_millis(20))?.is_none());
    /// p.kill()?;
    /// assert!(p.wait_timeout(Duration::from_secs(10))?.is_some());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `waitid(2)`, `poll(2)` on the pidfd.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<ProcessState>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(st) = self.reap_now()? {
                return Ok(Some(st));
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => return self.wait().map(Some),
            };
            if left.is_zero() {
                return Ok(None);
            }
            match &self.pidfd {
                Some(fd) => {
                    crate::sys::wait::poll_readable(fd.as_fd(), Some(left))?;
                }
                // Without a pidfd there is nothing to poll: sleep in short steps.
                None => std::thread::sleep(left.min(Duration::from_millis(5))),
            }
        }
    }

    /// Gives up the handle without waiting (Go's `Release`): the pidfd is closed and the
    /// process is no longer signalled or waited through this value.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{start_process, ProcAttr};
    /// let p = start_process("/bin/true", ["true"], &ProcAttr::default())?;
    /// let pid = p.pid();
    /// p.release();
    /// forkexec::raw::waitpid(pid, forkexec::raw::WaitOptions::empty())?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Release")]
    pub fn release(self) {}
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("pidfd", &self.pidfd.as_ref().map(|f| f.as_raw_fd()))
            .field("reaped", &self.reaped())
            .finish()
    }
}

/// Finds a running process by pid (Go's `os.FindProcess`), holding a pidfd to it where the
/// kernel allows, so later signals cannot reach a process that reused the pid. Only a child
/// of this process can be waited for.
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for `pid <= 0`; [`ErrorKind::ProcessDone`](crate::ErrorKind::ProcessDone) when no such
/// process exists (Go returns a handle whose every call fails that way).
///
/// # Examples
/// ```
/// let me = forkexec::find_process(std::process::id() as i32)?;
/// me.signal(forkexec::Signal::new(libc::SIGWINCH)?)?;
/// assert_eq!(forkexec::find_process(0).unwrap_err().kind(), forkexec::ErrorKind::InvalidInput);
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `pidfd_open(2)`; `kill(2)` with signal 0 where pidfds are unavailable.
#[doc(alias = "FindProcess")]
pub fn find_process(pid: i32) -> Result<Process> {
    if pid <= 0 {
        return Err(Error::invalid(format!("find_process: invalid pid {pid}")));
    }
    let pidfd = if sys::probe::pidfd_open() {
        match sys::pidfd_open(pid) {
            Ok(fd) => Some(fd),
            Err(libc::ESRCH) => return Err(process_done()),
            Err(e) => return Err(Error::os(e)),
        }
    } else {
        match sys::kill(pid, 0) {
            Ok(()) | Err(libc::EPERM) => None,
            Err(_) => return Err(process_done()),
        }
    };
    // A child of ours (running or a zombie) is waitable: ask without waiting or reaping.
    let (idtype, id) = wait_target(pid, pidfd.as_ref().map(|f| f.as_fd()));
    let child = sys::waitid(
        idtype,
        id,
        libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        false,
    )
    .is_ok();
    Ok(Process {
        pid,
        pidfd,
        reaped: RwLock::new(Reaped::No),
        state: OnceLock::new(),
        child,
    })
}

/// How [`start_process`] runs the program (Go's `os.ProcAttr`).
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// use forkexec::{start_process, ProcAttr};
/// let (r, w) = forkexec::raw::pipe()?;
/// let attr = ProcAttr {
///     dir: Some("/".into()),
///     env: Some(vec!["GREETING=hi".into()]),
///     files: vec![None, Some(w.as_fd()), None],
///     ..Default::default()
/// };
/// let p = start_process("/bin/sh", ["sh", "-c", "echo $GREETING $(pwd)"], &attr)?;
/// drop(attr);
/// drop(w);
/// let out = std::io::read_to_string(std::fs::File::from(r))?;
/// assert_eq!(out, "hi /\n");
/// p.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
#[doc(alias = "os.ProcAttr")]
pub struct ProcAttr<'a> {
    /// Working directory of the child (`None`: the parent's).
    pub dir: Option<PathBuf>,
    /// The environment as `KEY=VALUE` entries (`None`: the parent's).
    pub env: Option<Vec<OsString>>,
    /// `files[i]` becomes the child's fd `i`; `None` leaves it closed. The child gets
    /// exactly these fds: 0-2 beyond the list are closed too, and every other fd of the
    /// parent is kept from it (unless `sys.keep_other_fds`).
    pub files: Vec<Option<BorrowedFd<'a>>>,
    /// Linux attributes.
    pub sys: SysProcAttr,
    /// The spawn strategy (default [`Strategy::Auto`](crate::raw::Strategy::Auto)).
    pub strategy: Strategy,
}

/// Starts `program` (a path; no `PATH` search — see [`look_path`](crate::look_path)) with
/// `argv` (`argv[0]` included) and `attr` (Go's `os.StartProcess`).
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an empty program, NUL bytes, a malformed env entry;
/// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) / [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied) / [`ErrorKind::Exec`](crate::ErrorKind::Exec) from the
/// child's failing step (the child is reaped); [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) when the strategy
/// cannot express `attr.sys`.
///
/// # Examples
/// ```
/// use forkexec::{start_process, ProcAttr, ErrorKind};
/// let err = start_process("/no/such", ["x"], &ProcAttr::default()).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// # Ok::<(), forkexec::Error>(())
/// ```
#[doc(alias = "StartProcess")]
pub fn start_process<P, I, S>(program: P, argv: I, attr: &ProcAttr<'_>) -> Result<Process>
where
    P: AsRef<Path>,
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut plan = ExecPlan::new(program, argv)?;
    if let Some(env) = &attr.env {
        plan.set_env(Some(env_array(env)?));
    }
    if let Some(dir) = &attr.dir {
        plan.set_cwd(Some(path_cstring(dir, "working directory")?));
    }
    let plan = plan.sys(attr.sys.clone());
    let mut fds: Vec<ChildFd<'_>> = attr
        .files
        .iter()
        .map(|f| f.map_or(ChildFd::Close, ChildFd::Fd))
        .collect();
    while fds.len() < 3 {
        fds.push(ChildFd::Close);
    }
    let spawned = spawn::fork_exec(&plan, &fds, attr.strategy)?;
    Ok(Process::from_spawned(spawned))
}

/// Builds an envp array from `KEY=VALUE` entries, checking each.
pub(crate) fn env_array(env: &[OsString]) -> Result<CStringArray> {
    use std::os::unix::ffi::OsStrExt;
    let mut pairs = Vec::with_capacity(env.len());
    for e in env {
        let b = e.as_bytes();
        let eq = b
            .iter()
            .skip(1)
            .position(|&c| c == b'=')
            .map(|p| p + 1)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "environment entry {e:?} is not of the form KEY=VALUE"
                ))
            })?;
        pairs.push((OsStr::from_bytes(&b[..eq]), OsStr::from_bytes(&b[eq + 1..])));
    }
    CStringArray::from_env(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handle on "a child" that no wait can see (`ECHILD`) but that a signal still
    /// reaches: what a child reaped by the kernel (`SIGCHLD` ignored) is for an instant,
    /// made to last by pointing the handle at this very process. A signal whose default
    /// action is to do nothing tells whether anything was sent.
    fn lost_child(with_pidfd: bool) -> Process {
        let me = sys::getpid();
        Process {
            pid: me,
            pidfd: if with_pidfd {
                sys::pidfd_open(me).ok()
            } else {
                None
            },
            reaped: RwLock::new(Reaped::No),
            state: OnceLock::new(),
            child: true,
        }
    }

    fn assert_lost(e: Error, ctx: &str) {
        assert_eq!(
            (e.kind(), e.errno(), e.stage()),
            (ErrorKind::Io, Some(libc::ECHILD), Some(Stage::Wait)),
            "{ctx}: {e:?}"
        );
    }

    #[test]
    fn a_child_whose_status_is_gone_is_done() {
        let urg = Signal::new(libc::SIGURG).unwrap();
        for with_pidfd in [false, true] {
            for first in ["wait", "try_wait", "wait_timeout"] {
                let ctx = format!("pidfd {with_pidfd}, found by {first}");
                let p = lost_child(with_pidfd);
                // The process is alive and signallable until the wait finds its status gone.
                let e = match first {
                    "wait" => p.wait().unwrap_err(),
                    "try_wait" => p.try_wait().unwrap_err(),
                    _ => p.wait_timeout(Duration::from_secs(5)).unwrap_err(),
                };
                assert_lost(e, &ctx);
                // Done: every later wait is the same error, every signal ProcessDone, and
                // nothing is sent (it used to be: the signal reached the process).
                assert_eq!(
                    p.signal(urg).unwrap_err().kind(),
                    ErrorKind::ProcessDone,
                    "{ctx}"
                );
                assert_eq!(
                    p.kill().unwrap_err().kind(),
                    ErrorKind::ProcessDone,
                    "{ctx}"
                );
                assert_lost(p.wait().unwrap_err(), &ctx);
                assert_lost(p.try_wait().unwrap_err(), &ctx);
                assert_lost(p.wait_timeout(Duration::from_secs(5)).unwrap_err(), &ctx);
                assert_eq!(p.reaped(), Reaped::Lost, "{ctx}");
            }
            let mut p = lost_child(with_pidfd);
            assert_lost(p.wait_exclusive().unwrap_err(), "wait_exclusive");
            assert_eq!(p.signal(urg).unwrap_err().kind(), ErrorKind::ProcessDone);
            assert_lost(p.wait_exclusive().unwrap_err(), "2nd wait_exclusive");
        }
    }

    #[test]
    fn a_process_that_is_not_a_child_stays_signallable_after_echild() {
        // find_process(self): not a child, so ECHILD says nothing about its end.
        let urg = Signal::new(libc::SIGURG).unwrap();
        let p = find_process(sys::getpid()).unwrap();
        assert!(!p.child);
        assert_lost(p.wait().unwrap_err(), "wait");
        assert_lost(p.try_wait().unwrap_err(), "try_wait");
        p.signal(urg).unwrap();
        assert_eq!(p.reaped(), Reaped::No);
    }
}
