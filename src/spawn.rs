//! The spawn engine: an [`ExecPlan`](crate::raw::ExecPlan) built once in the parent, run by a [`Strategy`](crate::raw::Strategy).

use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libc::c_int;

use crate::attr::{ChildSpec, PID_SLOT, SysProcAttr};
use crate::error::{Error, ErrorKind, Result, Stage};
use crate::plan::{self, FdOp, FdTarget, OpBuf};
use crate::signal::IgnoredSignals;
use crate::status::Signal;
use crate::sys;
use crate::sys::child::{ChildAttrs, ChildCtx};
use crate::sys::cstr::CStringArray;
use crate::sys::wait::PidFd;

/// How a child is created. Every strategy runs the same [`ExecPlan`](crate::raw::ExecPlan) with the same result;
/// they differ in cost and in what they can express.
///
/// | strategy | how | cost | cannot express |
/// |---|---|---|---|
/// | `Vfork` | `clone(CLONE_VM\|CLONE_VFORK)` + the crate's own child code | flat in parent memory; the floor | — |
/// | `PosixSpawn` | the C library's `posix_spawn` | flat; plus the C library's bookkeeping | credentials, chroot, namespaces, pdeathsig, ctty; chdir and close-other-fds where the C library lacks `_np` calls |
/// | `Fork` | `fork` + the crate's own child code | grows with the parent's memory (page tables copied) | — |
///
/// `Auto` takes `Vfork` where `clone(CLONE_VM)` works (probed once: it does not under
/// valgrind or some seccomp filters), else `Fork` (not `PosixSpawn`: the C library's
/// `posix_spawn` relies on the same memory sharing to report exec errors). `Vfork` is chosen
/// over `PosixSpawn` by measurement: it is faster for every request both can express (see
/// the README's Performance section).
///
/// # Examples
/// ```
/// use forkexec::raw::{ExecPlan, Strategy, fork_exec, waitpid, WaitOptions, WaitStatus};
/// let plan = ExecPlan::new("/bin/true", ["true"])?;
/// for s in [Strategy::Auto, Strategy::Vfork, Strategy::PosixSpawn, Strategy::Fork] {
///     let child = fork_exec(&plan, &[], s)?;
///     let (_, status) = waitpid(child.pid, WaitOptions::empty())?.unwrap();
///     assert_eq!(status, WaitStatus::Exited(0));
/// }
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// The fastest strategy that can express the plan on this machine.
    #[default]
    Auto,
    /// The C library's `posix_spawn`.
    PosixSpawn,
    /// `clone(CLONE_VM | CLONE_VFORK)` with the child on its own stack.
    Vfork,
    /// A fork (the raw `clone(CLONE_VFORK)` system call without `CLONE_VM`: the child gets a
    /// copy of the parent's memory, the parent thread waits until it execs), then the child
    /// side, then `execve`. Its cost grows with the parent's memory.
    Fork,
}

/// What a child's fd number (the index in the list handed to [`fork_exec`](crate::raw::fork_exec)) becomes.
///
/// # Examples
/// ```
/// use forkexec::raw::ChildFd;
/// let (r, _w) = forkexec::raw::pipe()?;
/// use std::os::fd::AsFd;
/// let fds = [ChildFd::Fd(r.as_fd()), ChildFd::Inherit, ChildFd::Inherit];
/// assert!(matches!(fds[0], ChildFd::Fd(_)));
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub enum ChildFd<'a> {
    /// The parent's fd of the same number, as it is.
    Inherit,
    /// Closed in the child.
    Close,
    /// A duplicate of this fd of the parent.
    Fd(BorrowedFd<'a>),
}

/// A child created by [`fork_exec`](crate::raw::fork_exec): its pid, and its pidfd where the kernel gave one.
/// Nothing reaps it on drop: wait for it (e.g. [`waitpid`](crate::raw::waitpid) or
/// [`PidFd::wait`]) or it remains a zombie until this process exits.
///
/// # Examples
/// ```
/// use forkexec::raw::{fork_exec, waitpid, ExecPlan, Spawned, Strategy, WaitOptions, WaitStatus};
/// let Spawned { pid, pidfd: _ } = fork_exec(&ExecPlan::new("/bin/true", ["true"])?, &[], Strategy::Auto)?;
/// assert_eq!(waitpid(pid, WaitOptions::empty())?, Some((pid, WaitStatus::Exited(0))));
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a child that is never waited for stays a zombie"]
pub struct Spawned {
    /// The child's process id.
    pub pid: i32,
    /// A pidfd for the child, when the kernel supports them.
    pub pidfd: Option<PidFd>,
}

/// The caller's `pre_exec` functions, shared by the clones of a plan.
#[derive(Clone, Default)]
pub(crate) struct PreExecHooks(pub Vec<std::sync::Arc<sys::child::PreExecFn>>);

impl std::fmt::Debug for PreExecHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreExecHooks({})", self.0.len())
    }
}

/// Everything a child needs, built once in the parent: the program path, argv and envp as
/// C arrays, the working directory and the Linux attributes. A plan is immutable while it
/// spawns, and can spawn any number of children with no per-spawn work beyond the fd plan.
///
/// # Examples
/// ```
/// use forkexec::raw::{ExecPlan, CStringArray, fork_exec, waitpid, WaitOptions, WaitStatus, Strategy};
/// let plan = ExecPlan::new("/bin/sh", ["sh", "-c", "test \"$X\" = 1 && test \"$PWD\" = /"])?
///     .env(CStringArray::from_env([("X", "1"), ("PWD", "/")])?)
///     .dir("/")?;
/// let child = fork_exec(&plan, &[], Strategy::Auto)?;
/// assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(0));
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ExecPlan {
    program: CString,
    argv: CStringArray,
    envp: Option<CStringArray>,
    cwd: Option<CString>,
    /// The child's attributes: the one description (see [`SysProcAttr`](crate::SysProcAttr)).
    sys: SysProcAttr,
    /// The caller's functions run in the child just before `execve` (`Cmd::pre_exec`).
    pre_exec: PreExecHooks,
    /// The `PATH` value the child searches for `program` (a bare name), as `execvp` does
    /// (see `Cmd`'s preparation); `None`: exec `program`.
    search: Option<OsString>,
    /// `sys` as the child side reads it, compiled at the first spawn after a change (every
    /// change goes through [`ExecPlan::sys_mut`](crate::raw::ExecPlan::sys_mut) or `set_cwd`, which drop it).
    spec: OnceLock<ChildSpec>,
}

pub(crate) use crate::attr::path_cstring;

impl ExecPlan {
    /// A plan to exec `program` (a path: no `PATH` search here, see
    /// [`look_path`](crate::look_path)) with `argv` (its first element is conventionally the
    /// program name). The environment is inherited and other fds are closed by default.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an empty program or a NUL byte in the program or an
    /// argument.
    ///
    /// # Examples
    /// ```
    /// use forkexec::{ErrorKind, raw::ExecPlan};
    /// assert!(ExecPlan::new("/bin/echo", ["echo", "hi"]).is_ok());
    /// assert_eq!(ExecPlan::new("", ["x"]).unwrap_err().kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn new<P, I, S>(program: P, argv: I) -> Result<ExecPlan>
    where
        P: AsRef<Path>,
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Ok(ExecPlan::from_parts(
            path_cstring(program.as_ref(), "program path")?,
            CStringArray::new(argv)?,
        ))
    }

    pub(crate) fn from_parts(program: CString, argv: CStringArray) -> ExecPlan {
        ExecPlan {
            program,
            argv,
            envp: None,
            cwd: None,
            sys: SysProcAttr::default(),
            pre_exec: PreExecHooks::default(),
            search: None,
            spec: OnceLock::new(),
        }
    }

    /// The program path the plan execs.
    ///
    /// # Examples
    /// ```
    /// let plan = forkexec::raw::ExecPlan::new("/bin/echo", ["echo", "hi"])?;
    /// assert_eq!(plan.program(), c"/bin/echo");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn program(&self) -> &CStr {
        &self.program
    }

    /// The argv the plan passes.
    ///
    /// # Examples
    /// ```
    /// let plan = forkexec::raw::ExecPlan::new("/bin/echo", ["echo", "hi"])?;
    /// assert_eq!(plan.argv().iter().collect::<Vec<_>>(), [c"echo", c"hi"]);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn argv(&self) -> &CStringArray {
        &self.argv
    }

    /// The environment the plan passes, or `None` when the parent's is inherited.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{CStringArray, ExecPlan};
    /// let plan = ExecPlan::new("/bin/true", ["true"])?;
    /// assert!(plan.envp().is_none());
    /// let plan = plan.env(CStringArray::from_env([("A", "1")])?);
    /// assert_eq!(plan.envp().unwrap().iter().collect::<Vec<_>>(), [c"A=1"]);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn envp(&self) -> Option<&CStringArray> {
        self.envp.as_ref()
    }

    /// Gives the child exactly this environment (instead of inheriting the parent's).
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{fork_exec, waitpid, CStringArray, ExecPlan, Strategy, WaitOptions, WaitStatus};
    /// let plan = ExecPlan::new("/bin/sh", ["sh", "-c", r#"test "$A" = 1 && test -z "$HOME""#])?
    ///     .env(CStringArray::from_env([("A", "1")])?);
    /// let child = fork_exec(&plan, &[], Strategy::Auto)?;
    /// assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(0));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn env(mut self, envp: CStringArray) -> ExecPlan {
        self.envp = Some(envp);
        self
    }

    pub(crate) fn set_env(&mut self, envp: Option<CStringArray>) {
        self.envp = envp;
    }

    /// Lets the child inherit the parent's environment (`environ` at the moment of the
    /// spawn). The default.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{CStringArray, ExecPlan};
    /// let plan = ExecPlan::new("/bin/true", ["true"])?.env(CStringArray::from_env([("A", "1")])?);
    /// assert!(plan.inherit_env().envp().is_none());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn inherit_env(mut self) -> ExecPlan {
        self.envp = None;
        self
    }

    /// Runs the child in `dir` (a relative path is relative to the parent's cwd).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an empty path or one holding a NUL byte. A directory
    /// that does not exist is only found out by the child, as a [`Stage::Chdir`](crate::Stage::Chdir) error of
    /// the spawn.
    ///
    /// # Examples
    /// ```
    /// use forkexec::ErrorKind;
    /// use forkexec::raw::{fork_exec, waitpid, ExecPlan, Strategy, WaitOptions, WaitStatus};
    /// let plan = ExecPlan::new("/bin/sh", ["sh", "-c", r#"test "$(pwd -P)" = /"#])?.dir("/")?;
    /// let child = fork_exec(&plan, &[], Strategy::Auto)?;
    /// assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(0));
    /// assert_eq!(plan.dir("").unwrap_err().kind(), ErrorKind::InvalidInput);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `chdir(2)`.
    #[doc(alias("cwd", "current_dir", "chdir"))]
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Result<ExecPlan> {
        self.set_cwd(Some(path_cstring(dir.as_ref(), "working directory")?));
        Ok(self)
    }

    pub(crate) fn set_cwd(&mut self, cwd: Option<CString>) {
        self.spec = OnceLock::new();
        self.cwd = cwd;
    }

    /// Adds `key=<the child's own pid>` to the child's environment, written by the child
    /// itself just before `execve` (replacing any `key` entry). This is how systemd socket
    /// activation's `LISTEN_PID` is passed on to a program started with inherited sockets;
    /// only the `Vfork` and `Fork` strategies can do it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a key that is empty, holds `=` or NUL, or is longer
    /// than 64 bytes.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{ExecPlan, CStringArray, fork_exec, waitpid, WaitOptions, WaitStatus, Strategy};
    /// let plan = ExecPlan::new("/bin/sh", ["sh", "-c", "test \"$MY_PID\" = $$"])?.env_child_pid("MY_PID")?;
    /// let child = fork_exec(&plan, &[], Strategy::Auto)?;
    /// assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(0));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn env_child_pid(mut self, key: impl AsRef<OsStr>) -> Result<ExecPlan> {
        self.set_env_child_pid(Some(key.as_ref()))?;
        Ok(self)
    }

    pub(crate) fn set_env_child_pid(&mut self, key: Option<&OsStr>) -> Result<()> {
        if let Some(k) = key {
            crate::attr::pid_env_key(k.as_bytes())?;
        }
        self.sys_mut().env_child_pid = key.map(OsStr::to_owned);
        Ok(())
    }

    /// What happens to the signals this process ignores: kept ignored but for `SIGPIPE`
    /// by default (std, Go), see [`IgnoredSignals`](crate::IgnoredSignals). With the `Vfork` strategy on x86_64 the
    /// kernel resets handlers at the clone (`CLONE_CLEAR_SIGHAND`), so the default costs the
    /// child one `rt_sigaction` (for `SIGPIPE`) and [`IgnoredSignals::Keep`](crate::IgnoredSignals::Keep) none, while
    /// [`IgnoredSignals::Reset`](crate::IgnoredSignals::Reset) makes one per signal (62). (The `PosixSpawn` strategy
    /// always resets the C library's reserved signals 32 and 33.)
    ///
    /// # Examples
    /// ```
    /// use forkexec::IgnoredSignals;
    /// use forkexec::raw::{ExecPlan, fork_exec, waitpid, Strategy, WaitOptions, WaitStatus};
    /// // Rust ignores SIGPIPE (bit 12 of SigIgn) in every program; kept, the child has it too.
    /// let script = "test $(( 0x$(grep ^SigIgn /proc/self/status | cut -f2) & 0x1000 )) != 0";
    /// let plan = ExecPlan::new("/bin/sh", ["sh", "-c", script])?;
    /// for (how, ignored) in [(IgnoredSignals::Keep, true), (IgnoredSignals::KeepExceptPipe, false)] {
    ///     let child = fork_exec(&plan.clone().ignored_signals(how), &[], Strategy::Auto)?;
    ///     let want = WaitStatus::Exited(if ignored { 0 } else { 1 });
    ///     assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, want);
    /// }
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "restore_signals")]
    pub fn ignored_signals(mut self, how: IgnoredSignals) -> ExecPlan {
        self.sys_mut().ignored_signals = how;
        self
    }

    /// Starts the child in a new session (`setsid`).
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{fork_exec, waitpid, ExecPlan, Strategy, WaitOptions, WaitStatus};
    /// let leads_session = r#"test "$(cut -d' ' -f6 /proc/$$/stat)" = $$"#;
    /// let plan = ExecPlan::new("/bin/sh", ["sh", "-c", leads_session])?.setsid(true);
    /// let child = fork_exec(&plan, &[], Strategy::Auto)?;
    /// assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(0));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `setsid(2)`.
    pub fn setsid(mut self, on: bool) -> ExecPlan {
        self.sys_mut().setsid = on;
        self
    }

    /// Puts the child in process group `pgid` (0: a new group led by the child).
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{fork_exec, waitpid, ExecPlan, Strategy, WaitOptions, WaitStatus};
    /// let leads_group = r#"test "$(cut -d' ' -f5 /proc/$$/stat)" = $$"#;
    /// let plan = ExecPlan::new("/bin/sh", ["sh", "-c", leads_group])?.process_group(0);
    /// let child = fork_exec(&plan, &[], Strategy::Auto)?;
    /// assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(0));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `setpgid(2)`.
    #[doc(alias = "setpgid")]
    pub fn process_group(mut self, pgid: i32) -> ExecPlan {
        self.sys_mut().process_group = Some(pgid);
        self
    }

    /// The signal mask the program starts with (empty by default).
    ///
    /// # Examples
    /// ```
    /// use forkexec::Signal;
    /// use forkexec::raw::{fork_exec, waitpid, ExecPlan, Strategy, WaitOptions, WaitStatus};
    /// // With SIGUSR1 blocked, the shell survives sending it to itself.
    /// let plan = ExecPlan::new("/bin/sh", ["sh", "-c", "kill -USR1 $$"])?.sigmask(&[Signal::USR1]);
    /// let child = fork_exec(&plan, &[], Strategy::Auto)?;
    /// assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(0));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `sigprocmask(2)`.
    #[doc(alias = "sigprocmask")]
    pub fn sigmask(mut self, signals: &[Signal]) -> ExecPlan {
        self.sys_mut().sigmask = signals.to_vec();
        self
    }

    /// Whether the child may see the parent's fds that are not close-on-exec besides 0-2 and
    /// those handed to [`fork_exec`](crate::raw::fork_exec) (the same switch as [`Cmd::keep_other_fds`](crate::Cmd::keep_other_fds)
    /// and [`SysProcAttr::keep_other_fds`](crate::SysProcAttr::keep_other_fds)). Off by
    /// default: every other fd is marked close-on-exec in the child, so it never reaches the
    /// program.
    ///
    /// # Examples
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use forkexec::raw::{fork_exec, waitpid, ExecPlan, Strategy, WaitOptions, WaitStatus};
    /// let (r, _w) = forkexec::raw::pipe()?;
    /// let inheritable = rustix::io::dup(&r)?; // a copy without close-on-exec
    /// let probe = format!("test -e /proc/$$/fd/{}", inheritable.as_raw_fd());
    /// for (keep, code) in [(false, 1), (true, 0)] {
    ///     let plan = ExecPlan::new("/bin/sh", ["sh", "-c", &probe])?.keep_other_fds(keep);
    ///     let child = fork_exec(&plan, &[], Strategy::Auto)?;
    ///     assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(code));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "close_other_fds")]
    pub fn keep_other_fds(mut self, on: bool) -> ExecPlan {
        self.sys_mut().keep_other_fds = on;
        self
    }

    /// Replaces every Linux attribute of the child with `sys` (Go's `SysProcAttr`, the same
    /// description [`Cmd::sys`](crate::Cmd::sys) and [`ProcAttr`](crate::ProcAttr) take);
    /// the setters above are shortcuts into it.
    ///
    /// # Examples
    /// ```
    /// use forkexec::SysProcAttr;
    /// use forkexec::raw::{fork_exec, waitpid, ExecPlan, Strategy, WaitOptions, WaitStatus};
    /// let leads_session = r#"test "$(cut -d' ' -f6 /proc/$$/stat)" = $$"#;
    /// let plan = ExecPlan::new("/bin/sh", ["sh", "-c", leads_session])?
    ///     .sys(SysProcAttr { setsid: true, ..Default::default() });
    /// assert!(plan.get_sys().setsid);
    /// let child = fork_exec(&plan, &[], Strategy::Auto)?;
    /// assert_eq!(waitpid(child.pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(0));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "SysProcAttr")]
    pub fn sys(mut self, sys: SysProcAttr) -> ExecPlan {
        *self.sys_mut() = sys;
        self
    }

    /// The child's Linux attributes.
    ///
    /// # Examples
    /// ```
    /// let plan = forkexec::raw::ExecPlan::new("/bin/true", ["true"])?.setsid(true);
    /// assert!(plan.get_sys().setsid && !plan.get_sys().keep_other_fds);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn get_sys(&self) -> &SysProcAttr {
        &self.sys
    }

    /// The attributes, for a change: the compiled copy is dropped, compiled again at the
    /// next spawn.
    pub(crate) fn sys_mut(&mut self) -> &mut SysProcAttr {
        self.spec = OnceLock::new();
        &mut self.sys
    }

    pub(crate) fn set_pre_exec(&mut self, hooks: PreExecHooks) {
        self.pre_exec = hooks;
    }

    /// Has the child exec `dir/program` for each `dir` of `path` in turn (a `PATH`
    /// search), passing over those missing or not executable; the `Vfork` and `Fork`
    /// strategies only. The caller has checked that `program` is a bare name and every
    /// element of `path` is absolute.
    pub(crate) fn set_search(&mut self, path: Option<OsString>) {
        self.search = path;
    }

    /// The program name and the `PATH` value of the child's search; `None` without one.
    pub(crate) fn search(&self) -> Option<(&OsStr, &OsStr)> {
        let path = self.search.as_deref()?;
        Some((OsStr::from_bytes(self.program.to_bytes()), path))
    }

    /// The attributes as the child side reads them, compiled (and checked) at the first
    /// call after a change.
    pub(crate) fn spec(&self) -> Result<&ChildSpec> {
        if let Some(spec) = self.spec.get() {
            return Ok(spec);
        }
        let spec = self.sys.compile(self.cwd.as_deref())?;
        // Another thread may have compiled it meanwhile: the same result either way.
        Ok(self.spec.get_or_init(|| spec))
    }

    /// The strategy `Auto` resolves to for this plan on this machine.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{ExecPlan, Strategy};
    /// let plan = ExecPlan::new("/bin/true", ["true"])?;
    /// assert_ne!(plan.resolve(Strategy::Auto), Strategy::Auto);
    /// assert_eq!(plan.resolve(Strategy::Fork), Strategy::Fork);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn resolve(&self, strategy: Strategy) -> Strategy {
        match strategy {
            // A pre_exec function runs arbitrary code in the child: it gets a copy of the
            // memory, not the parent's own (std forks for it too).
            Strategy::Auto if !self.pre_exec.0.is_empty() => Strategy::Fork,
            Strategy::Auto if sys::spawn::clone_vm_works() => Strategy::Vfork,
            // Not PosixSpawn: the C library's posix_spawn also relies on CLONE_VM sharing
            // memory to report exec errors; where it does not (valgrind), they would be lost.
            Strategy::Auto => Strategy::Fork,
            s => s,
        }
    }
}

/// Reusable spawn scratch: the planned fd ops (inline for few fds: no allocation), kept
/// with the targets they were planned for, so that a spawn with the same child fds as the
/// previous one (a `Cmd` started again) reuses them without planning again.
#[derive(Clone)]
pub(crate) struct Scratch {
    targets: [FdTarget; 8],
    /// How many of `targets` `ops` was planned for; `usize::MAX`: nothing planned.
    planned: usize,
    ops: OpBuf,
}

impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch {
            targets: [FdTarget::Inherit; 8],
            planned: usize::MAX,
            ops: OpBuf::new(),
        }
    }

    /// The ops planned by the last [`spawn_with`].
    pub(crate) fn ops(&self) -> &[FdOp] {
        self.ops.as_slice()
    }
}

/// Creates a child running `plan`, with `fds[i]` as its fd `i` (fds 0-2 not listed are
/// inherited), by `strategy`. Go's `syscall.ForkExec`.
///
/// The child starts with an empty signal mask (unless the plan says otherwise), default
/// signal dispositions, and (by default) no fd but 0-2 and those in `fds`.
///
/// # Errors
/// - [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) / [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied) / [`ErrorKind::Exec`](crate::ErrorKind::Exec) when the
///   child failed before or at `execve`, with [`Error::stage`](crate::Error::stage) naming the step, the errno,
///   and the path concerned; the child has been reaped.
/// - [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) when an explicit strategy cannot express the plan.
/// - [`ErrorKind::Io`](crate::ErrorKind::Io) when the kernel refused to create the process (`EAGAIN`, ...).
///
/// # Examples
/// ```
/// use forkexec::{ErrorKind, Stage};
/// use forkexec::raw::{ExecPlan, Strategy, fork_exec};
/// let plan = ExecPlan::new("/no/such/program", ["x"])?;
/// let err = fork_exec(&plan, &[], Strategy::Vfork).unwrap_err();
/// assert_eq!((err.kind(), err.stage()), (ErrorKind::NotFound, Some(Stage::Exec)));
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `clone(2)`, `fork(2)`, `posix_spawn(3)`, `execve(2)`.
#[doc(alias = "ForkExec")]
pub fn fork_exec(plan: &ExecPlan, fds: &[ChildFd<'_>], strategy: Strategy) -> Result<Spawned> {
    let mut scratch = Scratch::new();
    spawn_with(plan, fds, strategy, &mut scratch, true)
}

/// [`fork_exec`](crate::raw::fork_exec) with a reusable [`Scratch`], and the pidfd only when `want_pidfd` (a caller
/// that reaps the child itself before anyone could signal it needs none).
pub(crate) fn spawn_with(
    plan: &ExecPlan,
    fds: &[ChildFd<'_>],
    strategy: Strategy,
    scratch: &mut Scratch,
    want_pidfd: bool,
) -> Result<Spawned> {
    if fds.len() <= scratch.targets.len() {
        let mut same = scratch.planned == fds.len();
        for (t, f) in scratch.targets.iter_mut().zip(fds) {
            let new = to_target(f);
            same &= *t == new;
            *t = new;
        }
        if !same {
            scratch.ops.clear();
            scratch.planned = usize::MAX;
            plan::try_plan_into(&scratch.targets[..fds.len()], &mut scratch.ops)?;
            scratch.planned = fds.len();
        }
    } else {
        let targets: Vec<FdTarget> = fds.iter().map(to_target).collect();
        scratch.ops.clear();
        scratch.planned = usize::MAX;
        plan::try_plan_into(&targets, &mut scratch.ops)?;
    }
    spawn_planned(
        plan,
        scratch.ops.as_slice(),
        fds.len(),
        strategy,
        want_pidfd,
    )
}

/// Spawns `plan` with fd `ops` already planned for `n_fds` child fds.
#[inline]
pub(crate) fn spawn_planned(
    plan: &ExecPlan,
    ops: &[FdOp],
    n_fds: usize,
    strategy: Strategy,
    want_pidfd: bool,
) -> Result<Spawned> {
    let spec = plan.spec()?;
    let n = n_fds.max(3) as c_int;
    let close_from = if spec.keep_other_fds { -1 } else { n };

    with_envp(plan, spec, |envp, pid_slot| {
        spawn_with_envp(
            plan, spec, ops, n, close_from, strategy, want_pidfd, envp, pid_slot,
        )
    })
}

/// [`spawn_planned`] once the environment is ready.
#[inline]
#[allow(clippy::too_many_arguments)]
fn spawn_with_envp(
    plan: &ExecPlan,
    spec: &ChildSpec,
    ops: &[FdOp],
    n: c_int,
    close_from: c_int,
    strategy: Strategy,
    want_pidfd: bool,
    envp: *const *const libc::c_char,
    pid_slot: *mut u8,
) -> Result<Spawned> {
    let strategy = plan.resolve(strategy);
    let result = match strategy {
        Strategy::PosixSpawn => {
            let lacks = spec
                .posix_spawn_lacks
                .or_else(|| (!plan.pre_exec.0.is_empty()).then_some("pre_exec"));
            if let Some(what) = lacks {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!("{what} is not supported by the posix_spawn strategy"),
                ));
            }
            let req = sys::spawn::PosixSpawnReq {
                path: &plan.program,
                argv: plan.argv.as_ptr(),
                envp,
                ops,
                close_from,
                cwd: plan.cwd.as_deref(),
                setsid: spec.child.setsid,
                pgid: spec.pgid.unwrap_or(-1),
                sigmask: &spec.sigmask,
                ignored: spec.ignored_signals,
            };
            sys::spawn::posix_spawn(&req)
                .map(|pid| (pid, None))
                .map_err(|(stage, errno)| (refine_posix_spawn_stage(plan, stage, errno), errno))
        }
        Strategy::Vfork | Strategy::Fork => {
            let ca = spec.child;
            let parent = if ca.pdeathsig != 0 { sys::getpid() } else { 0 };
            let mut ctx = child_ctx(plan, spec, ca, ops, close_from, envp, pid_slot, parent);
            if strategy == Strategy::Vfork {
                if !plan.pre_exec.0.is_empty() {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        "pre_exec needs the child to have its own memory: use Strategy::Fork \
                         or Auto",
                    ));
                }
                if !sys::spawn::clone_vm_works() {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        "clone(CLONE_VM|CLONE_VFORK) does not share memory here (valgrind or a \
                         seccomp filter); use Strategy::Auto or Strategy::Fork",
                    ));
                }
                sys::spawn::vfork(&mut ctx, spec.clone_flags, want_pidfd)
            } else {
                let min_fd = || ops.iter().map(|o| o.dst.max(o.src) + 1).fold(n, c_int::max);
                sys::spawn::fork(&mut ctx, spec.clone_flags, min_fd, want_pidfd)
            }
        }
        Strategy::Auto => unreachable!("resolved above"),
    };
    match result {
        Ok((pid, mut pidfd)) => {
            if want_pidfd && pidfd.is_none() && sys::probe::pidfd_open() {
                pidfd = sys::pidfd_open(pid).ok();
            }
            Ok(Spawned {
                pid,
                pidfd: pidfd.map(|fd| PidFd::from_parts(fd, pid)),
            })
        }
        Err((stage, errno)) => Err(spawn_error(plan, stage, errno)),
    }
}

/// The environment the child gets: the plan's, or `environ`, with the child-pid slot when
/// the plan asks for one (see [`sys::spawn::with_envp`]).
#[inline]
fn with_envp<R>(
    plan: &ExecPlan,
    spec: &ChildSpec,
    f: impl FnOnce(*const *const libc::c_char, *mut u8) -> R,
) -> R {
    sys::spawn::with_envp::<PID_SLOT, R>(plan.envp.as_ref(), spec.pid_env.as_deref(), f)
}

/// What the child side reads, pointing into `plan` and the caller's buffers.
#[allow(clippy::too_many_arguments)]
fn child_ctx(
    plan: &ExecPlan,
    spec: &ChildSpec,
    a: ChildAttrs,
    ops: &[FdOp],
    close_from: c_int,
    envp: *const *const libc::c_char,
    pid_slot: *mut u8,
    parent_pid: libc::pid_t,
) -> ChildCtx {
    let attrs = spec;
    ChildCtx {
        path: plan.program.as_ptr(),
        search: plan
            .search
            .as_ref()
            .map_or(std::ptr::null(), |p| p.as_bytes().as_ptr()),
        search_len: plan.search.as_ref().map_or(0, |p| p.len()),
        argv: plan.argv.as_ptr(),
        envp,
        ops: ops.as_ptr(),
        n_ops: ops.len(),
        close_from,
        cwd: plan.cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        chroot: attrs
            .chroot
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr()),
        parent_pid,
        groups: attrs
            .groups
            .as_ref()
            .map_or(std::ptr::null(), |g| g.as_ptr()),
        rlimits: attrs.rlimits.as_ptr(),
        n_rlimits: attrs.rlimits.len(),
        pre_exec: plan.pre_exec.0.as_ptr(),
        n_pre_exec: plan.pre_exec.0.len(),
        uid_map: attrs
            .uid_map
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr()),
        gid_map: attrs
            .gid_map
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr()),
        sigmask: &spec.sigmask,
        report: std::ptr::null_mut(),
        report_fd: -1,
        pid_slot,
        attrs: a,
    }
}

/// Replaces this process with `plan`, `fds[i]` becoming its fd `i` (Go's `syscall.Exec`
/// with the plan's attributes): the steps a child would take, taken here. Returns only on
/// failure, with this process's state possibly changed by the steps that ran (fds moved,
/// directory, session, credentials, signal mask), as with std's `CommandExt::exec`.
pub(crate) fn exec_here(plan: &ExecPlan, fds: &[ChildFd<'_>]) -> Error {
    let targets: Vec<FdTarget> = fds.iter().map(to_target).collect();
    let mut ops = OpBuf::new();
    if let Err(e) = plan::try_plan_into(&targets, &mut ops) {
        return e;
    }
    let spec = match plan.spec() {
        Ok(s) => s,
        Err(e) => return e,
    };
    if spec.clone_flags != 0 {
        return Error::new(
            ErrorKind::Unsupported,
            "clone namespaces need a new process: use unshare to replace this one",
        );
    }
    let n = fds.len().max(3) as c_int;
    let close_from = if spec.keep_other_fds { -1 } else { n };
    let mut ca = spec.child;
    // execve itself resets the handlers; only a full reset has more to do (the ignored
    // signals, and with them this process's handlers if the exec fails).
    if ca.reset_signals == sys::child::RESET_HANDLED {
        ca.reset_signals = sys::child::RESET_NONE;
    }
    let parent = if ca.pdeathsig != 0 { sys::getppid() } else { 0 };
    let (stage, errno) = with_envp(plan, spec, |envp, pid_slot| {
        let ctx = child_ctx(
            plan,
            spec,
            ca,
            ops.as_slice(),
            close_from,
            envp,
            pid_slot,
            parent,
        );
        sys::child::exec_here(&ctx)
    });
    spawn_error(plan, stage, errno)
}

fn to_target(f: &ChildFd<'_>) -> FdTarget {
    match f {
        ChildFd::Inherit => FdTarget::Inherit,
        ChildFd::Close => FdTarget::Close,
        ChildFd::Fd(b) => FdTarget::Fd(b.as_raw_fd()),
    }
}

fn os_path(c: &CStr) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(c.to_bytes()))
}

/// `posix_spawn` reports one errno for chdir and exec alike: tell them apart by looking
/// at the directory (only on this failure path).
fn refine_posix_spawn_stage(plan: &ExecPlan, stage: Stage, errno: i32) -> Stage {
    // Process creation itself was refused (the process limit, memory): `execve` cannot
    // return these without a credential change, which posix_spawn never makes.
    if stage == Stage::Exec && matches!(errno, libc::EAGAIN | libc::ENOMEM) {
        return Stage::Fork;
    }
    match &plan.cwd {
        Some(cwd)
            if stage == Stage::Exec
                && sys::stat(cwd).map_or(true, |st| st.st_mode & libc::S_IFMT != libc::S_IFDIR) =>
        {
            Stage::Chdir
        }
        _ => stage,
    }
}

/// The typed error for a failed spawn, naming the path the failing step concerns.
fn spawn_error(plan: &ExecPlan, stage: Stage, errno: i32) -> Error {
    let path = match stage {
        Stage::Chdir => plan.cwd.as_deref().map(os_path),
        Stage::Chroot => plan.sys.chroot.clone(),
        Stage::Exec | Stage::Spawn => Some(os_path(&plan.program)),
        _ => None,
    };
    let e = match stage {
        // The kernel refused to create the process or its pipe: an OS error (EAGAIN,
        // EMFILE, ENOMEM as Io; EINVAL as InvalidInput), not a failure of the child.
        Stage::Fork | Stage::Pipe => Error::os(errno).with_stage(stage),
        _ => Error::from_errno(stage, errno),
    };
    match path {
        Some(p) => e.with_path(p),
        None => e,
    }
}
