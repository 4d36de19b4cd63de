//! The child side: the code that runs between `fork`/`clone` and `execve`.
//!
//! # Safety
//! Everything here may run in a `CLONE_VM|CLONE_VFORK` child that shares the parent's
//! memory, or in the child of a multi-threaded `fork` where another thread may have held the
//! allocator's lock. So this module only reads memory prepared by the parent before the
//! clone ([`ChildCtx`]), makes direct system calls, writes its report either into the
//! parent-provided report slot (shared memory) or onto a close-on-exec pipe, and ends in
//! `execve` or `_exit(127)`. No allocation, no lock, no panic (no indexing, no unwrap, no
//! arithmetic that can overflow-check), no `Drop` of heap data.

use libc::{c_char, c_int, c_long, c_void, pid_t};

use crate::error::Stage;
use crate::plan::{FdOp, FdOpKind};

/// The report the child leaves when it fails: the stage and the errno. `stage == 0` means
/// no failure (the child reached `execve` successfully).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Report {
    pub stage: u8,
    pub errno: i32,
}

impl Report {
    /// The wire form written on the fork strategy's pipe: 1 byte of stage, 3 zero bytes,
    /// then the errno in native byte order.
    pub(crate) fn encode(self) -> [u8; 8] {
        let e = self.errno.to_ne_bytes();
        [self.stage, 0, 0, 0, e[0], e[1], e[2], e[3]]
    }

    /// Decodes [`Report::encode`]'s output; `None` for anything else (a short read, an
    /// unknown stage, non-zero padding).
    pub(crate) fn decode(bytes: &[u8]) -> Option<(Stage, i32)> {
        let b: &[u8; 8] = bytes.try_into().ok()?;
        if b[1] != 0 || b[2] != 0 || b[3] != 0 {
            return None;
        }
        let stage = Stage::from_u8(b[0])?;
        let errno = i32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
        if errno <= 0 || errno > 4095 {
            return None;
        }
        Some((stage, errno))
    }
}

/// [`ChildAttrs::reset_signals`]: every disposition to `SIG_DFL`.
pub(crate) const RESET_ALL: u8 = 2;
/// [`ChildAttrs::reset_signals`]: handlers to `SIG_DFL`, `SIG_IGN` kept.
pub(crate) const RESET_HANDLED: u8 = 1;
/// [`ChildAttrs::reset_signals`]: nothing (the kernel cleared the handlers).
pub(crate) const RESET_NONE: u8 = 0;

/// A function the caller runs in the child just before `execve` (`Cmd::pre_exec`).
pub(crate) type PreExecFn = dyn Fn() -> std::io::Result<()> + Send + Sync;

/// One resource limit for the child: `prlimit64(0, resource, &{cur, max}, NULL)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RlimitReq {
    pub resource: u32,
    pub cur: u64,
    pub max: u64,
}

/// The child's attributes as plain values (no pointer), derived once per plan.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChildAttrs {
    pub setsid: bool,
    /// `setpgid(0, pgid)` when `>= 0`.
    pub pgid: pid_t,
    /// `ioctl(ctty, TIOCSCTTY)` when `>= 0` (after setsid).
    pub ctty: c_int,
    /// Make the child's process group the foreground group of `ctty` (`tcsetpgrp`).
    pub foreground: bool,
    /// `TIOCNOTTY` on fd 0 before anything else.
    pub noctty: bool,
    pub pdeathsig: c_int,
    pub unshare: c_int,
    /// The child is in a new mount namespace (by `clone` or `unshare`): make every mount
    /// private (`MS_REC | MS_PRIVATE` on `/`) so nothing propagates back to the parent's.
    pub private_mounts: bool,
    /// An fd open on a `cgroup.procs` file: the child writes "0" to it to move itself.
    pub cgroup_procs: c_int,
    pub set_groups: bool,
    pub n_groups: usize,
    /// `u32::MAX` = unchanged.
    pub gid: u32,
    /// `u32::MAX` = unchanged.
    pub uid: u32,
    /// Which dispositions to reset to `SIG_DFL`: [`RESET_ALL`], [`RESET_HANDLED`] (keep
    /// `SIG_IGN`), or [`RESET_NONE`] (the kernel already cleared the handlers with
    /// `CLONE_CLEAR_SIGHAND` and the caller keeps ignored signals ignored).
    pub reset_signals: u8,
    /// Then `SIGPIPE` to `SIG_DFL` (std's rule: the Rust runtime ignores it) unless
    /// `reset_signals` already reset everything.
    pub dfl_sigpipe: bool,
    /// `umask(umask)` when `>= 0`.
    pub umask: c_int,
    /// Write "deny" to `/proc/self/setgroups` before the gid map.
    pub deny_setgroups: bool,
}

/// Everything the child needs, prepared by the parent. Plain data and raw pointers into
/// parent memory that outlives the child's run up to `execve`.
#[derive(Clone, Copy)]
pub(crate) struct ChildCtx {
    pub path: *const c_char,
    /// The `PATH` value to search for `path` (a bare name), as `execvp` does: `dir/path`
    /// for each of its `:`-separated elements in turn; null: exec `path`.
    pub search: *const u8,
    /// The length of `search`, in bytes.
    pub search_len: usize,
    pub argv: *const *const c_char,
    pub envp: *const *const c_char,
    pub ops: *const FdOp,
    pub n_ops: usize,
    /// Mark every fd `>= close_from` close-on-exec; -1 to leave other fds alone.
    pub close_from: c_int,
    pub cwd: *const c_char,
    pub chroot: *const c_char,
    /// The parent's pid, to detect that it died before `PR_SET_PDEATHSIG` took effect.
    pub parent_pid: pid_t,
    pub groups: *const libc::gid_t,
    /// `n_rlimits` limits to set (points into the plan).
    pub rlimits: *const RlimitReq,
    pub n_rlimits: usize,
    /// `n_pre_exec` caller functions to run last (points into the plan).
    pub pre_exec: *const std::sync::Arc<PreExecFn>,
    pub n_pre_exec: usize,
    /// The uid and gid map texts to write (NUL-terminated; null: none).
    pub uid_map: *const c_char,
    pub gid_map: *const c_char,
    /// The signal mask the program starts with (points into the plan).
    pub sigmask: *const libc::sigset_t,
    /// Where the child reports (memory shared with the parent); null when it reports on
    /// `report_fd`.
    pub report: *mut Report,
    /// Where the child reports when `report` is null (a close-on-exec pipe); else -1.
    pub report_fd: c_int,
    /// Where to write the child's own pid in decimal, NUL-terminated (the value part of a
    /// `KEY=` entry of a per-spawn envp copy, with at least 12 bytes of room); null: none.
    pub pid_slot: *mut u8,
    /// The plain attributes.
    pub attrs: ChildAttrs,
}

/// Whether Go's `LookPath` accepts `path`: a regular file (symlinks followed) with an
/// execute bit that `faccessat(X_OK, AT_EACCESS)` grants to the effective ids, or, where
/// that call is missing or refused (`ENOSYS`, `EPERM`), the mode bits alone (the parent's
/// rules in `lookpath.rs`). Async-signal-safe: `fstatat` and `faccessat` on a stack buffer.
///
/// # Safety
/// `path` must be a NUL-terminated string.
unsafe fn go_would_choose(path: *const c_char) -> bool {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path` is NUL-terminated (caller), `st` is writable.
    if unsafe { libc::fstatat(libc::AT_FDCWD, path, st.as_mut_ptr(), 0) } != 0 {
        return false;
    }
    // SAFETY: fstatat succeeded and filled `st`.
    let mode = unsafe { st.assume_init() }.st_mode;
    if mode & libc::S_IFMT != libc::S_IFREG {
        return false;
    }
    // SAFETY: as above.
    if unsafe { libc::faccessat(libc::AT_FDCWD, path, libc::X_OK, libc::AT_EACCESS) } == 0 {
        return true;
    }
    matches!(err(), libc::ENOSYS | libc::EPERM) && mode & 0o111 != 0
}

#[inline(always)]
fn err() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot; reading it is AS-safe.
    unsafe { *libc::__errno_location() }
}

#[inline(always)]
fn check(ret: c_long) -> Result<(), i32> {
    if ret < 0 { Err(err()) } else { Ok(()) }
}

#[inline(always)]
fn sys3(n: c_long, a: c_long, b: c_long, c: c_long) -> Result<(), i32> {
    // SAFETY: the callers pass integer arguments or pointers into prepared memory.
    check(unsafe { libc::syscall(n, a, b, c) })
}

/// The kernel's `struct sigaction` layout (x86, x86_64, arm, aarch64, riscv, ...).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Runs the plan and never returns: `execve` replaces the image, or the child reports the
/// failing stage and `_exit(127)`s.
///
/// # Safety
/// `ctx` and everything it points to must be valid, prepared before the clone, and not
/// written by anyone until the child execs or exits.
pub(crate) unsafe fn run(ctx: &ChildCtx) -> ! {
    // SAFETY: forwarded.
    let (stage, errno) = match unsafe { steps(ctx) } {
        Ok(never) => match never {},
        Err(e) => e,
    };
    report(ctx, stage, errno);
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(127) }
}

/// Takes the child's steps in this process, ending in `execve`: returns only on failure,
/// with the failing stage and errno (nothing is reported, nothing exits). Used to replace
/// the calling process (`Cmd::exec`).
pub(crate) fn exec_here(ctx: &ChildCtx) -> (Stage, i32) {
    // SAFETY: `ctx` was built by the spawn engine from a live plan and buffers that outlive
    // this call; the steps only change this process's own state before `execve`.
    match unsafe { steps(ctx) } {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn report(ctx: &ChildCtx, stage: Stage, errno: i32) {
    let r = Report {
        stage: stage as u8,
        errno,
    };
    if !ctx.report.is_null() {
        // SAFETY: the parent gave us a valid slot it reads only after we exit or exec.
        unsafe { std::ptr::write_volatile(ctx.report, r) };
    }
    if ctx.report_fd >= 0 {
        let bytes = r.encode();
        loop {
            // SAFETY: writing 8 bytes from a stack buffer to the report pipe.
            let n = unsafe { libc::write(ctx.report_fd, bytes.as_ptr().cast::<c_void>(), 8) };
            if n >= 0 || err() != libc::EINTR {
                break;
            }
        }
    }
}

enum Never {}

/// The steps in order. On entry either every signal is blocked (the parent blocked them
/// all around `clone`/`fork`), or no handler exists (`clone3(CLONE_CLEAR_SIGHAND)`): no
/// handler of the parent can run here either way.
///
/// # Safety
/// As [`run`].
unsafe fn steps(ctx: &ChildCtx) -> Result<Never, (Stage, i32)> {
    // 1. Default dispositions, so that no parent handler survives (it would run on
    //    borrowed memory in a vfork child once signals are unblocked); ignored signals are
    //    kept (POSIX, Go, std) unless a full reset was asked for, except SIGPIPE, which
    //    the Rust runtime ignores and std resets.
    let dfl = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let mut sig: c_long = 1;
    while ctx.attrs.reset_signals != RESET_NONE && sig <= 64 {
        if sig != libc::SIGKILL as c_long && sig != libc::SIGSTOP as c_long {
            let mut reset = true;
            if ctx.attrs.reset_signals == RESET_HANDLED {
                let mut old = KernelSigaction {
                    handler: 0,
                    flags: 0,
                    restorer: 0,
                    mask: 0,
                };
                // SAFETY: rt_sigaction(sig, NULL, &old, sizeof(kernel sigset)).
                let q = unsafe {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        std::ptr::null::<KernelSigaction>(),
                        &mut old as *mut KernelSigaction,
                        8usize,
                    )
                };
                // SIG_DFL is 0, SIG_IGN is 1: only a handler needs resetting.
                reset = q == 0 && old.handler > 1;
            }
            if reset {
                // Errors (signals the kernel reserves) are irrelevant here.
                // SAFETY: rt_sigaction(sig, &dfl, NULL, sizeof(kernel sigset)).
                let _ = check(unsafe {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        &dfl as *const KernelSigaction,
                        std::ptr::null_mut::<KernelSigaction>(),
                        8usize,
                    )
                });
            }
        }
        sig += 1;
    }
    if ctx.attrs.dfl_sigpipe && ctx.attrs.reset_signals != RESET_ALL {
        // SAFETY: rt_sigaction(SIGPIPE, &dfl, NULL, sizeof(kernel sigset)).
        let _ = check(unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                libc::SIGPIPE as c_long,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        });
    }

    // 2. Terminal detach, session, process group.
    if ctx.attrs.noctty {
        // SAFETY: ioctl on fd 0 with no argument.
        check(unsafe { libc::ioctl(0, libc::TIOCNOTTY) } as c_long)
            .map_err(|e| (Stage::Ctty, e))?;
    }
    if ctx.attrs.setsid {
        // SAFETY: setsid takes no argument.
        check(unsafe { libc::syscall(libc::SYS_setsid) }).map_err(|e| (Stage::Setsid, e))?;
    }
    if ctx.attrs.pgid >= 0 {
        sys3(libc::SYS_setpgid, 0, ctx.attrs.pgid as c_long, 0).map_err(|e| (Stage::Setpgid, e))?;
    }
    // 3. Namespaces, root, credentials (raw syscalls: only this thread, only this child).
    if ctx.attrs.cgroup_procs >= 0 {
        // SAFETY: writing one byte from a static buffer.
        let n = unsafe { libc::write(ctx.attrs.cgroup_procs, b"0".as_ptr().cast::<c_void>(), 1) };
        if n < 0 {
            return Err((Stage::Cgroup, err()));
        }
    }
    if ctx.attrs.umask >= 0 {
        // umask cannot fail.
        let _ = sys3(libc::SYS_umask, ctx.attrs.umask as c_long, 0, 0);
    }
    // Resource limits, before the credentials change (a raised hard limit needs the
    // privilege the child may be about to drop).
    // SAFETY: `rlimits` points at `n_rlimits` prepared entries (or dangles with 0).
    let rlimits = unsafe { std::slice::from_raw_parts(ctx.rlimits, ctx.n_rlimits) };
    for r in rlimits {
        let mut lim = [r.cur, r.max];
        if r.resource == crate::Resource::NOFILE.as_raw() {
            // The fd steps below need the current fd limit (a lowered one could fail a
            // dup to a high temporary, or shorten the close-on-exec sweep): only raise it
            // here (privilege may be dropped below); it is set exactly after the fd steps.
            let mut old = [0u64; 2];
            prlimit(r.resource, None, Some(&mut old)).map_err(|e| (Stage::Rlimit, e))?;
            lim = [r.cur.max(old[0]), r.max.max(old[1])];
        }
        prlimit(r.resource, Some(&lim), None).map_err(|e| (Stage::Rlimit, e))?;
    }
    if ctx.attrs.unshare != 0 {
        sys3(libc::SYS_unshare, ctx.attrs.unshare as c_long, 0, 0)
            .map_err(|e| (Stage::Unshare, e))?;
    }
    if ctx.attrs.private_mounts {
        // A new mount namespace starts as a copy whose mounts may be shared with the
        // parent's (a shared `/`): make them private, or a mount made here would appear in
        // the parent's namespace too (Go does the same, golang/go#38471).
        // SAFETY: mount("none", "/", NULL, MS_REC|MS_PRIVATE, NULL) with static strings.
        check(unsafe {
            libc::syscall(
                libc::SYS_mount,
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null::<c_char>(),
                (libc::MS_REC | libc::MS_PRIVATE) as libc::c_ulong,
                std::ptr::null::<c_void>(),
            )
        })
        .map_err(|e| (Stage::Unshare, e))?;
    }
    // The user namespace's id maps, written by the child itself (it is in the new
    // namespace now, by clone or by the unshare above), before any credential change.
    if ctx.attrs.deny_setgroups {
        write_file(c"/proc/self/setgroups".as_ptr(), c"deny".as_ptr())
            .map_err(|e| (Stage::IdMap, e))?;
    }
    if !ctx.gid_map.is_null() {
        write_file(c"/proc/self/gid_map".as_ptr(), ctx.gid_map).map_err(|e| (Stage::IdMap, e))?;
    }
    if !ctx.uid_map.is_null() {
        write_file(c"/proc/self/uid_map".as_ptr(), ctx.uid_map).map_err(|e| (Stage::IdMap, e))?;
    }
    if !ctx.chroot.is_null() {
        sys3(libc::SYS_chroot, ctx.chroot as c_long, 0, 0).map_err(|e| (Stage::Chroot, e))?;
        if ctx.cwd.is_null() {
            // No directory asked for: start at the new root (as std), never in a cwd left
            // outside it; before the credentials change, which may forbid entering it.
            sys3(libc::SYS_chdir, c"/".as_ptr() as c_long, 0, 0).map_err(|e| (Stage::Chroot, e))?;
        }
    }
    if ctx.attrs.set_groups {
        match sys3(
            libc::SYS_setgroups,
            ctx.attrs.n_groups as c_long,
            ctx.groups as c_long,
            0,
        ) {
            // Clearing the groups without CAP_SETGID: the caller's groups are its own to
            // use anyway (std ignores this too); a non-empty list must be applied.
            Err(libc::EPERM) if ctx.attrs.n_groups == 0 => {}
            r => r.map_err(|e| (Stage::Credentials, e))?,
        }
    }
    if ctx.attrs.gid != u32::MAX {
        sys3(libc::SYS_setgid, ctx.attrs.gid as c_long, 0, 0)
            .map_err(|e| (Stage::Credentials, e))?;
    }
    if ctx.attrs.uid != u32::MAX {
        sys3(libc::SYS_setuid, ctx.attrs.uid as c_long, 0, 0)
            .map_err(|e| (Stage::Credentials, e))?;
    }

    // 4. Parent-death signal, and the check for a parent that already died.
    if ctx.attrs.pdeathsig != 0 {
        sys3(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG as c_long,
            ctx.attrs.pdeathsig as c_long,
            0,
        )
        .map_err(|e| (Stage::Pdeathsig, e))?;
        // SAFETY: getppid has no argument.
        if unsafe { libc::getppid() } != ctx.parent_pid {
            // The parent is gone: deliver the signal to ourselves as the kernel would have.
            // SAFETY: signal ourselves; with default dispositions this ends us.
            unsafe {
                libc::syscall(
                    libc::SYS_kill,
                    libc::syscall(libc::SYS_getpid),
                    ctx.attrs.pdeathsig,
                )
            };
        }
    }

    // 5. Working directory (after chroot, before the fd moves: a relative cwd is relative
    //    to the parent's).
    if !ctx.cwd.is_null() {
        sys3(libc::SYS_chdir, ctx.cwd as c_long, 0, 0).map_err(|e| (Stage::Chdir, e))?;
    }

    // 6. The fd plan, as computed by `plan::plan_fds` in the parent.
    // SAFETY: `ops` points at `n_ops` prepared entries (or is dangling with n_ops == 0).
    let ops = unsafe { std::slice::from_raw_parts(ctx.ops, ctx.n_ops) };
    for op in ops {
        match op.kind {
            FdOpKind::Dup => {
                if op.src == op.dst {
                    // Keep the fd, but let it survive exec.
                    sys3(
                        libc::SYS_fcntl,
                        op.src as c_long,
                        libc::F_SETFD as c_long,
                        0,
                    )
                    .map_err(|e| (Stage::Dup, e))?;
                } else {
                    sys3(libc::SYS_dup3, op.src as c_long, op.dst as c_long, 0)
                        .map_err(|e| (Stage::Dup, e))?;
                }
            }
            FdOpKind::DupCloexec => {
                sys3(
                    libc::SYS_dup3,
                    op.src as c_long,
                    op.dst as c_long,
                    libc::O_CLOEXEC as c_long,
                )
                .map_err(|e| (Stage::Dup, e))?;
            }
            FdOpKind::Close => {
                // EBADF is fine: the fd should be closed and is.
                let _ = sys3(libc::SYS_close, op.src as c_long, 0, 0);
            }
        }
    }

    // Controlling terminal and foreground group: `ctty` is a child fd number.
    if ctx.attrs.ctty >= 0 {
        // SAFETY: TIOCSCTTY with argument 0 (do not steal).
        check(unsafe { libc::ioctl(ctx.attrs.ctty, libc::TIOCSCTTY, 0) } as c_long)
            .map_err(|e| (Stage::Ctty, e))?;
    }
    if ctx.attrs.foreground {
        // A background process group that sets the terminal's foreground group gets
        // SIGTTOU, which stops it (its disposition is the default by now): block SIGTTOU
        // and SIGTTIN until the final mask below, as Go's child does.
        let ttou_ttin: u64 = (1 << (libc::SIGTTOU - 1)) | (1 << (libc::SIGTTIN - 1));
        // SAFETY: rt_sigprocmask(SIG_BLOCK, &set, NULL, 8) with a stack set.
        check(unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                &ttou_ttin as *const u64,
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        })
        .map_err(|e| (Stage::Signals, e))?;
        // SAFETY: getpgrp has no argument.
        let pgrp = unsafe { libc::syscall(libc::SYS_getpgid, 0) };
        let tty = if ctx.attrs.ctty >= 0 {
            ctx.attrs.ctty
        } else {
            0
        };
        let pgrp = pgrp as pid_t;
        // SAFETY: TIOCSPGRP reads a pid_t from a valid pointer.
        check(unsafe { libc::ioctl(tty, libc::TIOCSPGRP, &pgrp as *const pid_t) } as c_long)
            .map_err(|e| (Stage::Ctty, e))?;
    }

    // 7. Nothing else crosses exec: mark every other fd close-on-exec.
    if ctx.close_from >= 0 {
        // SAFETY: forwarded to close_others.
        unsafe { close_others(ctx.close_from) }.map_err(|e| (Stage::CloseFds, e))?;
    }

    // The fd limit as asked, now that the fd steps are done (lowering needs no privilege).
    for r in rlimits {
        if r.resource == crate::Resource::NOFILE.as_raw() {
            prlimit(r.resource, Some(&[r.cur, r.max]), None).map_err(|e| (Stage::Rlimit, e))?;
        }
    }

    // 8. The signal mask the program starts with (empty unless asked otherwise). From here a
    //    signal may be delivered, but every disposition is the default one.
    // SAFETY: valid set pointer; 8 is the kernel's sigset size.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            ctx.sigmask,
            std::ptr::null_mut::<libc::sigset_t>(),
            8usize,
        )
    })
    .map_err(|e| (Stage::Signals, e))?;

    // The caller's pre_exec functions (`Cmd::pre_exec`, an unsafe promise to make only
    // async-signal-safe calls), in the Fork strategy's copy of the memory. An error is
    // reported by its errno; it is forgotten, not dropped (a drop could free memory).
    // SAFETY: `pre_exec` points at `n_pre_exec` prepared entries (or dangles with 0).
    let hooks = unsafe { std::slice::from_raw_parts(ctx.pre_exec, ctx.n_pre_exec) };
    for f in hooks {
        // A panic must not unwind out of the child into the caller's frames (this is a
        // copy of the parent): it fails the step like an error.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
                std::mem::forget(e);
                return Err((Stage::PreExec, errno));
            }
            Err(payload) => {
                std::mem::forget(payload);
                return Err((Stage::PreExec, libc::EINVAL));
            }
        }
    }

    // 9. The child's own pid into its environment (`LISTEN_PID=` for socket activation):
    //    a per-spawn buffer of the parent's frame, owned by this spawn alone.
    if !ctx.pid_slot.is_null() {
        // SAFETY: getpid has no argument.
        let mut pid = unsafe { libc::syscall(libc::SYS_getpid) } as u64;
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            if let Some(d) = digits.get_mut(n) {
                *d = b'0' + (pid % 10) as u8;
            }
            n += 1;
            pid /= 10;
            if pid == 0 || n >= digits.len() {
                break;
            }
        }
        let mut k = 0;
        while k < n {
            // SAFETY: the slot has room for 20 digits and the NUL (see `PID_SLOT`).
            unsafe { *ctx.pid_slot.add(k) = digits.get(n - 1 - k).copied().unwrap_or(b'0') };
            k += 1;
        }
        // SAFETY: as above.
        unsafe { *ctx.pid_slot.add(n) = 0 };
    }

    // 10. Exec: the path, or each candidate of a `PATH` search in turn (as `execvp` does,
    //     so the parent need not look the program up). A candidate whose exec fails is
    //     passed over only when Go's `LookPath` would have passed it over too (missing,
    //     not a regular file, not executable): one it would have chosen (a script whose
    //     interpreter is missing, say) stops the search with its errno, as Go's exec of
    //     it would fail.
    if ctx.search.is_null() {
        // SAFETY: path/argv/envp were prepared as NUL-terminated arrays in the parent.
        unsafe { libc::execve(ctx.path, ctx.argv, ctx.envp) };
        return Err((Stage::Exec, err()));
    }
    // SAFETY: `search` holds `search_len` bytes and `path` is NUL-terminated, prepared by
    // the parent.
    Err((Stage::Exec, unsafe {
        search_path(ctx.search, ctx.search_len, ctx.path, ctx.argv, ctx.envp)
    }))
}

/// The longest path `execve` takes, with its NUL (Linux's `PATH_MAX`).
pub(crate) const PATH_MAX: usize = 4096;

/// Execs `dir/name` for each `:`-separated `dir` of `path` in turn, as `execvp` does,
/// built in a buffer on this (the child's) stack; returns the errno that ends the search
/// (it returns only on failure). A candidate too long for `execve` is passed over, as
/// `execve` would fail it with `ENAMETOOLONG` and Go's lookup passes it over.
///
/// # Safety
/// `path` holds `path_len` bytes; `name` is NUL-terminated; `argv` and `envp`
/// NULL-terminated arrays of NUL-terminated strings.
#[inline(never)]
unsafe fn search_path(
    path: *const u8,
    path_len: usize,
    name: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> i32 {
    // Written before it is read, and only through raw pointers: no bounds check, so no
    // panic path, in the child.
    let mut buf = std::mem::MaybeUninit::<[u8; PATH_MAX]>::uninit();
    let b = buf.as_mut_ptr().cast::<u8>();
    let mut name_len = 0usize;
    // SAFETY: `name` is NUL-terminated (caller).
    while unsafe { *name.add(name_len) } != 0 {
        name_len += 1;
    }
    let mut denied = false;
    // The offset in `path` of the element being tried.
    let mut at = 0usize;
    loop {
        // SAFETY: `at <= path_len`, within (or at the end of) `path`.
        let dir = unsafe { path.add(at) };
        let mut dir_len = 0usize;
        // SAFETY: `at + dir_len < path_len`: within `path` (caller).
        while at + dir_len < path_len && unsafe { *dir.add(dir_len) } != b':' {
            dir_len += 1;
        }
        let e = if dir_len + 1 + name_len < PATH_MAX {
            // SAFETY: `dir_len + 1 + name_len + 1 <= PATH_MAX` bytes are written into `buf`,
            // copied from the element and from `name`, which do not overlap it.
            unsafe {
                std::ptr::copy_nonoverlapping(dir, b, dir_len);
                *b.add(dir_len) = b'/';
                std::ptr::copy_nonoverlapping(name.cast::<u8>(), b.add(dir_len + 1), name_len);
                *b.add(dir_len + 1 + name_len) = 0;
            }
            let candidate = b.cast_const().cast::<c_char>();
            // SAFETY: `candidate` is NUL-terminated in `buf`; argv/envp from the caller.
            unsafe { libc::execve(candidate, argv, envp) };
            let e = err();
            match e {
                libc::EACCES
                | libc::ENOENT
                | libc::ENOTDIR
                | libc::ELOOP
                | libc::ENAMETOOLONG
                | libc::ESTALE
                | libc::ENODEV
                | libc::ETIMEDOUT => {
                    // SAFETY: `candidate` is NUL-terminated.
                    if unsafe { go_would_choose(candidate) } {
                        return e;
                    }
                    e
                }
                e => return e,
            }
        } else {
            libc::ENAMETOOLONG
        };
        denied |= e == libc::EACCES;
        // The element ends at a `:` or at the end of `path`.
        at += dir_len + 1;
        if at > path_len {
            break;
        }
    }
    if denied { libc::EACCES } else { libc::ENOENT }
}

/// `prlimit64(0, resource, new, old)` on this process; `[cur, max]` is the kernel's
/// `struct rlimit64`.
fn prlimit(resource: u32, new: Option<&[u64; 2]>, old: Option<&mut [u64; 2]>) -> Result<(), i32> {
    let new = new.map_or(std::ptr::null(), |n| n.as_ptr());
    let old = old.map_or(std::ptr::null_mut(), |o| o.as_mut_ptr());
    // SAFETY: prlimit64 on this process with valid or null pointers to two u64.
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0 as c_long,
            resource as c_long,
            new,
            old,
        )
    })
}

/// Writes the NUL-terminated `text` to the file at `path` in one `write` (as the kernel
/// wants id maps), with raw system calls only.
fn write_file(path: *const c_char, text: *const c_char) -> Result<(), i32> {
    let mut len = 0usize;
    // SAFETY: `text` is a NUL-terminated string prepared by the parent.
    while unsafe { *text.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: openat(AT_FDCWD, path, O_WRONLY|O_CLOEXEC) on a static path.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD as c_long,
            path,
            (libc::O_WRONLY | libc::O_CLOEXEC) as c_long,
        )
    };
    check(fd)?;
    // SAFETY: writing `len` bytes of `text` to the fd just opened.
    let n = unsafe { libc::syscall(libc::SYS_write, fd, text, len) };
    let r = if n < 0 { Err(err()) } else { Ok(()) };
    // SAFETY: closing the fd opened above.
    unsafe { libc::syscall(libc::SYS_close, fd) };
    r
}

/// Marks every fd `>= from` close-on-exec: one `close_range` where the kernel has it,
/// else an `fcntl` per fd up to the soft `RLIMIT_NOFILE`.
///
/// # Safety
/// Child side only (it changes fd flags of the whole fd table).
unsafe fn close_others(from: c_int) -> Result<(), i32> {
    // SAFETY: integer arguments.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            from as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    check(unsafe { libc::syscall(libc::SYS_getrlimit, libc::RLIMIT_NOFILE, &mut lim) })?;
    let max = if lim.rlim_cur > 1 << 20 {
        1 << 20
    } else {
        lim.rlim_cur as c_int
    };
    let mut fd = from;
    while fd < max {
        // EBADF for the (many) closed fds is expected.
        let _ = sys3(
            libc::SYS_fcntl,
            fd as c_long,
            libc::F_SETFD as c_long,
            libc::FD_CLOEXEC as c_long,
        );
        fd += 1;
    }
    Ok(())
}

/// The entry point handed to `clone`: `arg` is a `*const ChildCtx`.
pub(crate) extern "C" fn clone_entry(arg: *mut c_void) -> c_int {
    // SAFETY: the parent passes a pointer to a ChildCtx that lives until we exec or exit.
    unsafe { run(&*(arg as *const ChildCtx)) }
}
