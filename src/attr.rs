//! The child's Linux attributes: [`SysProcAttr`](crate::SysProcAttr) (Go's `syscall.SysProcAttr`), the one
//! description that [`Cmd`](crate::Cmd), [`start_process`](crate::start_process) and
//! [`ExecPlan`](crate::raw::ExecPlan) share, and [`SysProcAttr::compile`](crate::SysProcAttr::compile), its one
//! conversion into what the child side reads ([`ChildSpec`]).
//!
//! A new attribute is: a field here (with its doc and example), its check and conversion
//! in `compile`, its step in `sys/child.rs` (and a [`Stage`](crate::Stage) if it can fail), a line in
//! `posix_spawn_lacks` if `posix_spawn` cannot express it, and, if it deserves one, a
//! shortcut setter on `Cmd` (src/cmd/attrs.rs) and `ExecPlan`.

use std::ffi::{CStr, CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libc::c_int;

use crate::error::{Error, ErrorKind, Result, Stage};
use crate::namespaces::Namespaces;
use crate::signal::IgnoredSignals;
use crate::status::Signal;
use crate::sys;
use crate::sys::child::{ChildAttrs, RlimitReq};

/// Linux process attributes (Go's `syscall.SysProcAttr`), applied by the child before exec.
///
/// # Examples
/// ```
/// use forkexec::{start_process, ProcAttr, SysProcAttr};
/// let attr = ProcAttr { sys: SysProcAttr { setsid: true, ..Default::default() }, ..Default::default() };
/// let p = start_process("/bin/true", ["true"], &attr)?;
/// assert!(p.wait()?.success());
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[doc(alias = "syscall.SysProcAttr")]
pub struct SysProcAttr {
    /// Start a new session (`setsid`).
    pub setsid: bool,
    /// Put the child in a process group (`setpgid`): `Some(0)` makes a new group led by it.
    pub process_group: Option<i32>,
    /// Make the child's fd `ctty` (a child fd number, as in Go) its controlling terminal
    /// (`TIOCSCTTY`); needs `setsid`.
    pub ctty: Option<i32>,
    /// Detach from the controlling terminal (`TIOCNOTTY` on fd 0).
    pub noctty: bool,
    /// Make the child's process group the terminal's foreground group (`tcsetpgrp`).
    pub foreground: bool,
    /// Signal the child gets when its parent thread dies (`PR_SET_PDEATHSIG`); if the
    /// parent already died before it took effect, the child signals itself.
    pub pdeathsig: Option<Signal>,
    /// Credentials to switch to.
    pub credential: Option<Credential>,
    /// `chroot` to this directory before `chdir`.
    pub chroot: Option<PathBuf>,
    /// Namespaces the child moves into with `unshare(2)` before exec (Go's
    /// `Unshareflags`). A new mount namespace is made private at once (`MS_REC |
    /// MS_PRIVATE` on `/`, as Go does), so the child's mounts never reach the parent.
    #[doc(alias = "Unshareflags")]
    pub unshare: Namespaces,
    /// Namespaces the child is created in, by the `clone` itself (Go's `Cloneflags`): the
    /// `Vfork` and `Fork` strategies (and `Auto`) can pass them, `PosixSpawn` cannot. Only
    /// namespaces can be asked for: nothing here can make the child share the parent's
    /// fds, cwd, signal handlers or thread group.
    #[doc(alias("Cloneflags", "clone_flags"))]
    pub clone_namespaces: Namespaces,
    /// Move the child into this cgroup (a directory of the cgroup filesystem) before exec,
    /// by writing to its `cgroup.procs` (Go's `UseCgroupFD`).
    pub cgroup: Option<PathBuf>,
    /// The user namespace's uid map (Go's `UidMappings`), written by the child itself into
    /// `/proc/self/uid_map` once it is in the new user namespace (which
    /// [`Namespaces::USER`](crate::Namespaces::USER) by clone or unshare must create). A process may write only the
    /// one line that maps its own effective uid outside (any id inside, size 1: `unshare
    /// --map-root-user`); other maps are refused with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) before any
    /// clone (Go's parent writes them; here the parent is suspended until the child execs).
    #[doc(alias = "UidMappings")]
    pub uid_mappings: Vec<IdMap>,
    /// The user namespace's gid map (Go's `GidMappings`); `setgroups` is denied in the
    /// namespace first (as Go does, and as the kernel requires without privilege) unless
    /// [`gid_mappings_enable_setgroups`](SysProcAttr::gid_mappings_enable_setgroups).
    #[doc(alias = "GidMappings")]
    pub gid_mappings: Vec<IdMap>,
    /// Leave `setgroups` allowed in the new user namespace (Go's
    /// `GidMappingsEnableSetgroups`; needs privilege).
    #[doc(alias = "GidMappingsEnableSetgroups")]
    pub gid_mappings_enable_setgroups: bool,
    /// The child's file-mode creation mask (`umask(2)`; CPython's `umask`): `Some(0o022)`.
    pub umask: Option<u32>,
    /// Resource limits the child starts with: `(resource, soft, hard)`, set with
    /// `prlimit64` before the credentials change (raising a hard limit needs
    /// `CAP_SYS_RESOURCE`). [`Resource::INFINITY`](crate::Resource::INFINITY) is no limit.
    pub rlimits: Vec<(crate::Resource, u64, u64)>,
    /// Let the child inherit the parent's fds that are not close-on-exec. Off by default:
    /// the child then sees only the fds asked for (see [`ProcAttr::files`](crate::ProcAttr::files)), every other
    /// one being marked close-on-exec in the child.
    pub keep_other_fds: bool,
    /// What happens to the signals this process ignores: kept ignored but for `SIGPIPE`
    /// by default, as std and Go do (see [`IgnoredSignals`](crate::IgnoredSignals) for the choices and their cost).
    #[doc(alias = "restore_signals")]
    pub ignored_signals: IgnoredSignals,
    /// The signal mask the program starts with (empty by default, as POSIX `execve` would
    /// otherwise pass on the starting thread's mask).
    #[doc(alias = "sigprocmask")]
    pub sigmask: Vec<Signal>,
    /// `KEY` of an environment entry `KEY=<the child's own pid>` the child writes itself
    /// just before `execve`, replacing any `KEY` entry (systemd's `LISTEN_PID`): the `Vfork`
    /// and `Fork` strategies only. A key that is empty, holds `=` or NUL, or is longer than
    /// 64 bytes fails the start with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
    pub env_child_pid: Option<OsString>,
}

/// One line of a user namespace's uid or gid map (Go's `syscall.SysProcIDMap`): ids
/// `container_id..container_id+size` in the namespace are `host_id..` outside it.
///
/// # Examples
/// ```
/// use forkexec::{Cmd, IdMap, Namespaces, SysProcAttr};
/// let me = rustix::process::geteuid().as_raw();
/// let sys = SysProcAttr {
///     clone_namespaces: Namespaces::USER,
///     uid_mappings: vec![IdMap { container_id: 0, host_id: me, size: 1 }],
///     ..Default::default()
/// };
/// match Cmd::new("id").arg("-u").sys(sys).output() {
///     Ok(out) => assert_eq!(out, b"0\n"), // root inside, `me` outside
///     Err(e) => eprintln!("user namespaces refused here: {e}"),
/// }
/// ```
///
/// # References
/// `user_namespaces(7)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "SysProcIDMap")]
pub struct IdMap {
    /// The first id inside the namespace.
    pub container_id: u32,
    /// The first id outside it.
    pub host_id: u32,
    /// How many ids.
    pub size: u32,
}

/// The text of an id map file: one `inside outside count` line per entry.
fn id_map_text(maps: &[IdMap]) -> Option<std::ffi::CString> {
    if maps.is_empty() {
        return None;
    }
    let mut t = String::new();
    for m in maps {
        t.push_str(&format!("{} {} {}\n", m.container_id, m.host_id, m.size));
    }
    std::ffi::CString::new(t).ok()
}

/// A user, group and supplementary groups to run as (Go's `syscall.Credential`).
///
/// # Examples
/// ```
/// let c = forkexec::Credential { uid: 65534, gid: 65534, ..Default::default() };
/// assert!(c.groups.is_empty() && !c.keep_groups); // the caller's groups are dropped
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credential {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups the child gets (`setgroups`); empty: none. Unless
    /// [`keep_groups`](Credential::keep_groups) is set, the caller's supplementary groups
    /// are always replaced, so dropping root to another uid does not keep root's groups
    /// (as std and Go do). A refusal of the empty list for want of privilege (`EPERM`: the
    /// caller has no `CAP_SETGID`, so no group it could not already use) is ignored, as
    /// std does; any other failure fails the start with [`Stage::Credentials`](crate::Stage::Credentials).
    pub groups: Vec<u32>,
    /// Leave the supplementary groups as they are (Go's `NoSetGroups`); `groups` is then
    /// ignored.
    #[doc(alias = "NoSetGroups")]
    pub keep_groups: bool,
}

/// Room for `KEY=` (up to 64 bytes + '='), 20 digits and a NUL: the per-spawn environment
/// entry the child fills with its own pid.
pub(crate) const PID_SLOT: usize = 64 + 1 + 20 + 1;

/// A [`SysProcAttr`](crate::SysProcAttr) as the child side reads it, built once by [`SysProcAttr::compile`](crate::SysProcAttr::compile):
/// the plain values, and the buffers the child's pointers point into.
#[derive(Debug, Clone)]
pub(crate) struct ChildSpec {
    /// The plain attributes the child copies.
    pub child: ChildAttrs,
    pub sigmask: libc::sigset_t,
    pub chroot: Option<CString>,
    /// The supplementary groups to set; `None`: leave them.
    pub groups: Option<Vec<libc::gid_t>>,
    /// An open `cgroup.procs` file of the cgroup the child moves into (shared by clones
    /// of a plan).
    pub cgroup_procs: Option<Arc<OwnedFd>>,
    pub rlimits: Vec<RlimitReq>,
    /// The text the child writes to `/proc/self/uid_map` / `gid_map`.
    pub uid_map: Option<CString>,
    pub gid_map: Option<CString>,
    /// `KEY=` of the environment entry whose value is the child's own pid.
    pub pid_env: Option<CString>,
    /// Namespace bits for the `clone` itself.
    pub clone_flags: c_int,
    pub keep_other_fds: bool,
    /// The `setpgid` argument `posix_spawn` gets (`None`: no `setpgid`).
    pub pgid: Option<i32>,
    pub ignored_signals: IgnoredSignals,
    /// What of these attributes `posix_spawn` cannot express, if anything.
    pub posix_spawn_lacks: Option<&'static str>,
}

impl SysProcAttr {
    /// Checks every attribute and converts them into what the child reads, for a child
    /// that changes into `cwd` (its working directory, when it has one). Everything that
    /// could corrupt this process or that the child could only fail on is refused here,
    /// before any clone.
    pub(crate) fn compile(&self, cwd: Option<&CStr>) -> Result<ChildSpec> {
        if let Some(g) = self.process_group.filter(|g| *g < 0) {
            return Err(Error::invalid(format!("invalid process group {g}")));
        }
        if let Some(c) = self.ctty.filter(|c| *c < 0) {
            return Err(Error::invalid(format!(
                "invalid controlling terminal fd {c}"
            )));
        }
        // Built from `Namespaces` only; checked again because a flag outside them
        // (CLONE_FILES, CLONE_SIGHAND, an exit signal...) would corrupt this process.
        Namespaces::from_bits(self.clone_namespaces.bits() | self.unshare.bits())?;
        let chroot = match &self.chroot {
            Some(p) => Some(path_cstring(p, "chroot directory")?),
            None => None,
        };
        // A relative directory after a chroot would be resolved from the old cwd, outside
        // the new root: a way out of it.
        if chroot.is_some() && cwd.is_some_and(|c| !c.to_bytes().starts_with(b"/")) {
            return Err(Error::invalid(
                "a working directory relative to a chroot must be absolute (inside the new root)",
            ));
        }
        let cgroup_procs = match &self.cgroup {
            Some(dir) => {
                let procs = path_cstring(&dir.join("cgroup.procs"), "cgroup directory")?;
                let fd = sys::open(&procs, libc::O_WRONLY)
                    .map_err(|e| Error::from_errno(Stage::Cgroup, e).with_path(dir))?;
                Some(Arc::new(fd))
            }
            None => None,
        };
        let (uid_map, gid_map) = self.id_maps()?;
        let umask = match self.umask {
            Some(m) if m > 0o777 => {
                return Err(Error::invalid(format!("umask {m:#o} is not within 0o777")));
            }
            m => m,
        };
        let rlimits = self
            .rlimits
            .iter()
            .map(|&(res, soft, hard)| {
                if soft > hard {
                    return Err(Error::invalid(format!(
                        "rlimit {res:?}: soft limit {soft} above hard limit {hard}"
                    )));
                }
                Ok(RlimitReq {
                    resource: res.as_raw(),
                    cur: soft,
                    max: hard,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let pid_env = match &self.env_child_pid {
            None => None,
            Some(k) => Some(pid_env_key(k.as_bytes())?),
        };
        let groups = match &self.credential {
            Some(c) if !c.keep_groups => Some(c.groups.clone()),
            _ => None,
        };
        let deny_setgroups = gid_map.is_some() && !self.gid_mappings_enable_setgroups;
        let child = ChildAttrs {
            setsid: self.setsid,
            // A foreground child leads its own process group unless told which (Go). (Not
            // after setsid: a session leader already leads its group, and setpgid would
            // refuse it.)
            pgid: self
                .process_group
                .or((self.foreground && !self.setsid).then_some(0))
                .unwrap_or(-1),
            ctty: self.ctty.unwrap_or(-1),
            foreground: self.foreground,
            noctty: self.noctty,
            pdeathsig: self.pdeathsig.map_or(0, Signal::as_raw),
            unshare: self.unshare.bits(),
            private_mounts: (self.unshare | self.clone_namespaces).contains(Namespaces::MOUNT),
            deny_setgroups,
            cgroup_procs: cgroup_procs.as_ref().map_or(-1, |f| f.as_raw_fd()),
            set_groups: groups.is_some(),
            n_groups: groups.as_ref().map_or(0, Vec::len),
            gid: self.credential.as_ref().map_or(u32::MAX, |c| c.gid),
            uid: self.credential.as_ref().map_or(u32::MAX, |c| c.uid),
            reset_signals: match self.ignored_signals {
                IgnoredSignals::Reset => sys::child::RESET_ALL,
                _ => sys::child::RESET_HANDLED,
            },
            dfl_sigpipe: self.ignored_signals == IgnoredSignals::KeepExceptPipe,
            umask: umask.map_or(-1, |m| m as c_int),
        };
        let mut spec = ChildSpec {
            child,
            sigmask: sys::sigset_of(&self.sigmask),
            chroot,
            groups,
            cgroup_procs,
            rlimits,
            uid_map,
            gid_map,
            pid_env,
            clone_flags: self.clone_namespaces.bits(),
            keep_other_fds: self.keep_other_fds,
            pgid: self.process_group,
            ignored_signals: self.ignored_signals,
            posix_spawn_lacks: None,
        };
        spec.posix_spawn_lacks = spec.posix_spawn_lacks(self, cwd.is_some());
        Ok(spec)
    }

    /// The id map texts, checked: the child writes its own maps (the parent is suspended
    /// until it execs), and the kernel lets a process in a new user namespace write only
    /// the one line that maps its own effective id outside.
    fn id_maps(&self) -> Result<(Option<CString>, Option<CString>)> {
        let user_ns = (self.clone_namespaces | self.unshare).contains(Namespaces::USER);
        let has_maps = !self.uid_mappings.is_empty() || !self.gid_mappings.is_empty();
        if has_maps && !user_ns {
            return Err(Error::invalid(
                "uid/gid mappings need a new user namespace (Namespaces::USER)",
            ));
        }
        if !has_maps {
            return Ok((None, None));
        }
        let (euid, egid) = sys::effective_ids();
        for (maps, own, what) in [
            (&self.uid_mappings, euid, "uid"),
            (&self.gid_mappings, egid, "gid"),
        ] {
            if maps.len() > 1 || maps.iter().any(|m| m.host_id != own || m.size != 1) {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "{what} mappings: the child writes its own map, which can only be one \
                         line mapping this process's effective {what} ({own}) with size 1"
                    ),
                ));
            }
        }
        Ok((
            id_map_text(&self.uid_mappings),
            id_map_text(&self.gid_mappings),
        ))
    }
}

impl ChildSpec {
    /// The first attribute `posix_spawn` cannot express, by its name in the error.
    fn posix_spawn_lacks(&self, sys: &SysProcAttr, has_cwd: bool) -> Option<&'static str> {
        let checks: [(bool, &'static str); 14] = [
            (sys.pdeathsig.is_some(), "pdeathsig"),
            (sys.credential.is_some(), "credentials"),
            (self.chroot.is_some(), "chroot"),
            (!sys.unshare.is_empty(), "unshare"),
            (!sys.clone_namespaces.is_empty(), "clone namespaces"),
            (self.cgroup_procs.is_some(), "cgroup placement"),
            (sys.umask.is_some(), "umask"),
            (self.uid_map.is_some() || self.gid_map.is_some(), "id maps"),
            (!self.rlimits.is_empty(), "resource limits"),
            (sys.ctty.is_some() || sys.foreground, "controlling terminal"),
            (sys.noctty, "noctty"),
            (self.pid_env.is_some(), "a child-pid environment entry"),
            (
                has_cwd && !sys::spawn::posix_spawn_can(true, false),
                "chdir (the C library lacks posix_spawn_file_actions_addchdir_np)",
            ),
            (
                !self.keep_other_fds && !sys::spawn::posix_spawn_can(false, true),
                "closing other fds (the C library lacks posix_spawn_file_actions_addclosefrom_np)",
            ),
        ];
        checks.iter().find(|(bad, _)| *bad).map(|(_, what)| *what)
    }
}

/// `key` as the `KEY=` prefix of a child-pid environment entry, checked.
pub(crate) fn pid_env_key(key: &[u8]) -> Result<CString> {
    sys::cstr::check_env_key(key)?;
    if key.len() > PID_SLOT - 22 {
        return Err(Error::invalid(
            "child-pid environment key longer than 64 bytes",
        ));
    }
    let mut v = key.to_vec();
    v.push(b'=');
    CString::new(v).map_err(|_| Error::invalid("NUL in environment key"))
}

/// A path as a C string: refused when empty or holding a NUL byte.
pub(crate) fn path_cstring(p: &Path, what: &str) -> Result<CString> {
    let b = p.as_os_str().as_bytes();
    if b.is_empty() {
        return Err(Error::invalid(format!("empty {what}")));
    }
    CString::new(b).map_err(|_| Error::invalid(format!("{what} {:?} contains a NUL byte", p)))
}
