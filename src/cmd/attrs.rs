//! The Linux attributes of a [`Cmd`](crate::Cmd): shortcuts into its [`SysProcAttr`](crate::SysProcAttr), and the
//! attributes std has (`pre_exec`, `umask`, resource limits).

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::attr::{Credential, SysProcAttr};
use crate::namespaces::Namespaces;
use crate::signal::IgnoredSignals;
use crate::status::Signal;

use super::Cmd;

impl Cmd {
    /// All Linux attributes at once (Go's `SysProcAttr`): **it replaces every one set
    /// before**, since the attribute setters of this page ([`setsid`](Cmd::setsid),
    /// [`process_group`](Cmd::process_group), [`pdeathsig`](Cmd::pdeathsig),
    /// [`credential`](Cmd::credential), [`chroot`](Cmd::chroot), [`unshare`](Cmd::unshare),
    /// [`clone_namespaces`](Cmd::clone_namespaces), [`cgroup`](Cmd::cgroup),
    /// [`umask`](Cmd::umask), [`rlimit`](Cmd::rlimit), [`keep_other_fds`](Cmd::keep_other_fds),
    /// [`ignored_signals`](Cmd::ignored_signals), [`sigmask`](Cmd::sigmask),
    /// [`env_child_pid`](Cmd::env_child_pid)) are shortcuts into this one struct. Only
    /// [`pre_exec`](Cmd::pre_exec) functions are kept. To change one field of what is set,
    /// use [`sys_mut`](Cmd::sys_mut).
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
        self.spec.edit().sys = sys;
        self
    }

    /// The Linux attributes, for a change in place (what the setters of this page edit).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Signal};
    /// let mut cmd = Cmd::new("sh");
    /// cmd.args(["-c", "kill -USR1 $$"]).setsid();
    /// cmd.sys_mut().sigmask.push(Signal::USR1); // keeps setsid
    /// assert!(cmd.get_sys().setsid);
    /// assert!(cmd.status()?.success()); // the blocked signal stays pending
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn sys_mut(&mut self) -> &mut SysProcAttr {
        &mut self.spec.edit().sys
    }

    /// The Linux attributes as set.
    ///
    /// # Examples
    /// ```
    /// let mut cmd = forkexec::Cmd::new("true");
    /// assert!(!cmd.get_sys().setsid);
    /// assert!(cmd.setsid().get_sys().setsid);
    /// ```
    pub fn get_sys(&self) -> &SysProcAttr {
        &self.spec.sys
    }

    /// The signal mask the program starts with (empty by default).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, Signal};
    /// // With SIGUSR1 blocked, the shell survives sending it to itself.
    /// assert!(Cmd::new("sh").args(["-c", "kill -USR1 $$"]).sigmask(&[Signal::USR1]).status()?.success());
    /// assert!(!Cmd::new("sh").args(["-c", "kill -USR1 $$"]).status()?.success());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `sigprocmask(2)`.
    #[doc(alias = "sigprocmask")]
    pub fn sigmask(&mut self, signals: &[Signal]) -> &mut Cmd {
        self.spec.edit().sys.sigmask = signals.to_vec();
        self
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
        self.spec.edit().sys.setsid = true;
        self
    }

    /// Puts the child in process group `pgid` (0: a new group it leads). A negative `pgid`
    /// fails the start with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
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
        self.spec.edit().sys.process_group = Some(pgid);
        self
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
        self.spec.edit().sys.pdeathsig = Some(sig);
        self
    }

    /// Runs the child as `uid`/`gid` with exactly the supplementary `groups` (empty: none).
    /// With `CAP_SETGID` (root) the caller's own supplementary groups never reach the child
    /// (std and Go clear them too); without it, clearing them is refused by the kernel and,
    /// as std does, that refusal is ignored: the child keeps the groups the caller could use
    /// anyway. To keep them in every case, set [`Credential::keep_groups`](crate::Credential::keep_groups) through
    /// [`sys`](Cmd::sys).
    /// Switching to other ids needs privilege (`CAP_SETUID`, `CAP_SETGID`); a refusal fails
    /// the start with [`Stage::Credentials`](crate::Stage::Credentials).
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
        self.spec.edit().sys.credential = Some(Credential {
            uid,
            gid,
            groups: groups.into_iter().collect(),
            keep_groups: false,
        });
        self
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
        self.spec.edit().sys.chroot = Some(dir.as_ref().to_owned());
        self
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
        self.spec.edit().sys.unshare = namespaces;
        self
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
        self.spec.edit().sys.env_child_pid = Some(key.as_ref().to_owned());
        self
    }

    /// What happens to the signals this process ignores: by default they stay ignored in
    /// the child, but `SIGPIPE` (which the Rust runtime ignores) gets its default action, as
    /// with std and Go; [`IgnoredSignals::Reset`](crate::IgnoredSignals::Reset) resets every disposition (CPython's
    /// `restore_signals`, extended), [`IgnoredSignals::Keep`](crate::IgnoredSignals::Keep) keeps `SIGPIPE` ignored too.
    /// See [`IgnoredSignals`](crate::IgnoredSignals) for the costs.
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
        self.spec.edit().sys.ignored_signals = how;
        self
    }

    /// Creates the child in new `namespaces` by the `clone` itself (Go's `Cloneflags`):
    /// with [`Namespaces::PID`](crate::Namespaces::PID) the child is pid 1 of its namespace. The `Vfork` and `Fork`
    /// strategies (and `Auto`) can express this, `PosixSpawn` cannot. Only namespaces can
    /// be asked for (see [`Namespaces`](crate::Namespaces)): no value makes the child share the parent's fds,
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
        self.spec.edit().sys.clone_namespaces = namespaces;
        self
    }

    /// Moves the child into the cgroup at `dir` before it execs. The directory's
    /// `cgroup.procs` is opened when the command is prepared (and kept for later starts),
    /// so a bad directory fails the start with [`Stage::Cgroup`](crate::Stage::Cgroup).
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
        self.spec.edit().sys.cgroup = Some(dir.as_ref().to_owned());
        self
    }

    /// The child's file-mode creation mask (`umask(2)`; CPython's `umask`). The `Vfork`
    /// and `Fork` strategies (and `Auto`) set it; `PosixSpawn` cannot.
    ///
    /// # Errors
    /// The start fails with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a mask above `0o777`.
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
        self.spec.edit().sys.umask = Some(mask);
        self
    }

    /// Starts the child with the limit of `resource` set to `soft` (and `hard`), as
    /// `ulimit`/`setrlimit` would; set before the credentials change. Call once per
    /// resource (a later call for the same resource is applied after, so it wins). The
    /// `Vfork` and `Fork` strategies (and `Auto`) set them; `PosixSpawn` cannot.
    ///
    /// # Errors
    /// The start fails with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `soft > hard`, and with
    /// [`Stage::Rlimit`](crate::Stage::Rlimit) when the kernel refuses (raising a hard limit without
    /// `CAP_SYS_RESOURCE`: [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied)).
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
        self.spec.edit().sys.rlimits.push((resource, soft, hard));
        self
    }

    /// Runs `f` in the child just before `execve`, after the crate's own steps (std's
    /// `CommandExt::pre_exec`); several run in the order given. An error of `f` fails the
    /// start with [`Stage::PreExec`](crate::Stage::PreExec) and its errno (`EINVAL` when it has none). The child
    /// gets a copy of this process's memory: with `pre_exec`, `Auto` uses the `Fork`
    /// strategy, and `Vfork` and `PosixSpawn` are refused with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
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
        self.spec.edit().pre_exec.push(Arc::new(f));
        self
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
        self.spec.edit().sys.keep_other_fds = on;
        self
    }
}
