//! The three ways of running a prepared [`ChildCtx`]: `clone(CLONE_VM|CLONE_VFORK)`,
//! `fork`, and `posix_spawn`. Each returns the pid (and the pidfd where it had one for free)
//! or the failing stage with its errno.

use std::cell::Cell;
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use libc::{c_int, pid_t};

use super::child::{self, ChildCtx, Report};
use super::cstr::CStringArray;
use super::probe;
use crate::error::Stage;
use crate::plan::{FdOp, FdOpKind};

/// The child's stack for the vfork strategy lives in the (suspended) parent's frame: no
/// allocation, no mmap. The child body needs a few KiB (a `PATH` search builds its candidates
/// in a 4 KiB buffer); this leaves ample room for the C library's `execve` wrapper and
/// signal frames.
const CHILD_STACK: usize = 32 * 1024;

/// A child as the strategies create it: its pid and, when asked for and granted, its pidfd
/// (the engine wraps it into the public `Spawned`).
pub(crate) type Forked = (pid_t, Option<OwnedFd>);
pub(crate) type Failure = (Stage, i32);

/// Spawns through `clone(CLONE_VM|CLONE_VFORK)`. The child reports failure through a slot
/// in this frame (shared memory), so no pipe is needed. With `want_pidfd`, the pidfd comes
/// from the same call (`CLONE_PIDFD`) where the kernel has it.
#[inline(never)]
pub(crate) fn vfork(
    ctx: &mut ChildCtx,
    extra_flags: c_int,
    want_pidfd: bool,
) -> Result<Forked, Failure> {
    let mut report = Report::default();
    ctx.report = &mut report;
    ctx.report_fd = -1;
    let mut stack = [MaybeUninit::<u8>::uninit(); CHILD_STACK];
    #[cfg(target_arch = "x86_64")]
    if probe::clone3() {
        // CLONE_CLEAR_SIGHAND resets every handler at creation: only ignored signals can
        // differ from the default, and those are kept when asked.
        let asked = ctx.attrs.reset_signals;
        if asked == child::RESET_HANDLED {
            ctx.attrs.reset_signals = child::RESET_NONE;
        }
        // SAFETY: as below, and the kernel clears the child's signal handlers at creation,
        // so signals need not be blocked.
        let r = unsafe {
            super::clone3_vfork(
                child::clone_entry,
                (ctx as *const ChildCtx).cast_mut().cast(),
                &mut stack,
                want_pidfd,
                extra_flags,
            )
        };
        match r {
            Ok((pid, pidfd)) => {
                ctx.attrs.reset_signals = asked;
                return finish_vfork(ctx, &report, pid, pidfd);
            }
            // No clone3, or a flag of it refused (old kernel, seccomp, emulator): use
            // clone from now on. EINVAL may be the caller's extra flags: clone decides. With
            // namespace flags, EPERM is the caller's missing privilege, not clone3's: not
            // remembered, or one refused namespace would cost every later spawn.
            Err(libc::ENOSYS | libc::E2BIG) => probe::clone3_failed(),
            Err(libc::EPERM) if extra_flags == 0 => probe::clone3_failed(),
            Err(libc::EPERM) => {}
            Err(libc::EINVAL) => {}
            Err(e) => {
                ctx.report = std::ptr::null_mut();
                return Err((Stage::Fork, e));
            }
        }
        ctx.attrs.reset_signals = asked;
    }
    let mut want_pidfd = want_pidfd && probe::clone_pidfd();
    let mut pidfd_refused = false;
    let old = super::block_all_signals();
    let result = loop {
        // SAFETY: `stack` and `report` live in this frame until clone returns, which with
        // CLONE_VFORK is after the child execs or exits; `ctx` was prepared by the caller and
        // is not touched until then; all signals are blocked; `clone_entry` only makes
        // async-signal-safe system calls and ends in execve or _exit.
        let r = unsafe {
            super::clone_vfork(
                child::clone_entry,
                (ctx as *const ChildCtx).cast_mut().cast(),
                &mut stack,
                want_pidfd,
                libc::SIGCHLD | extra_flags,
            )
        };
        match r {
            Err(libc::EINVAL) if want_pidfd => {
                // Maybe CLONE_PIDFD, maybe the caller's extra flags: try without it, and
                // only a success then proves the kernel refuses CLONE_PIDFD.
                pidfd_refused = true;
                want_pidfd = false;
            }
            other => {
                if pidfd_refused && other.is_ok() {
                    probe::clone_pidfd_failed();
                }
                break other;
            }
        }
    };
    super::restore_signals(old);
    let (pid, pidfd) = match result {
        Ok(v) => v,
        Err(e) => {
            ctx.report = std::ptr::null_mut();
            return Err((Stage::Fork, e));
        }
    };
    finish_vfork(ctx, &report, pid, pidfd)
}

/// After a vfork-style clone returned: the child has exec'd or exited. Reads its report and
/// reaps it if it failed.
fn finish_vfork(
    ctx: &mut ChildCtx,
    report: &Report,
    pid: pid_t,
    pidfd: Option<OwnedFd>,
) -> Result<Forked, Failure> {
    ctx.report = std::ptr::null_mut();
    // SAFETY: the child has exec'd or exited: nobody writes `report` any more.
    let report = unsafe { std::ptr::read_volatile(report) };
    if report.stage != 0 {
        // The child has exited (_exit(127)): reap it so no zombie remains.
        let _ = super::wait4(pid, 0);
        let stage = Stage::from_u8(report.stage).unwrap_or(Stage::Exec);
        return Err((stage, report.errno));
    }
    Ok((pid, pidfd))
}

static CLONE_VM_SHARED: AtomicU8 = AtomicU8::new(0);

extern "C" fn probe_entry(arg: *mut libc::c_void) -> c_int {
    // SAFETY: `arg` points at the probing frame's flag, valid until this child exits.
    unsafe {
        std::ptr::write_volatile(arg.cast::<u8>(), 1);
        libc::_exit(0)
    }
}

/// Whether `clone(CLONE_VM|CLONE_VFORK)` really shares memory and suspends the parent here.
/// Emulators (valgrind) turn it into a plain fork: then the child's report would be lost,
/// so the vfork strategy must not be used. Probed once with a child that only sets a flag.
pub(crate) fn clone_vm_works() -> bool {
    match CLONE_VM_SHARED.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let mut flag: u8 = 0;
    let mut stack = [MaybeUninit::<u8>::uninit(); 4096];
    let old = super::block_all_signals();
    // SAFETY: the probe body writes one byte of this frame and exits; stack and flag
    // outlive the clone call. No exit signal: the probe exits while this thread blocks every
    // signal, and a SIGCHLD queued then would go to another thread and interrupt its
    // system call (EINTR); it is reaped with __WALL instead.
    let r = unsafe {
        super::clone_vfork(
            probe_entry,
            (&mut flag as *mut u8).cast(),
            &mut stack,
            false,
            0,
        )
    };
    super::restore_signals(old);
    let ok = match r {
        Ok((pid, _)) => {
            let _ = super::wait4(pid, libc::__WALL);
            // SAFETY: the child has exited.
            unsafe { std::ptr::read_volatile(&flag) == 1 }
        }
        Err(_) => false,
    };
    CLONE_VM_SHARED.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
    ok
}

/// Spawns through a fork (the raw `clone` system call, see [`super::fork_clone`]).
///
/// Where the kernel honours `CLONE_VFORK` without `CLONE_VM` (always, but for emulators),
/// the fork is a `clone(CLONE_VFORK)`: this thread is suspended until the child execs or
/// exits, and the child reports a failure into this thread's page of memory shared with
/// its children ([`report_slot`]): no pipe, no read, no close. Elsewhere the child reports
/// on a close-on-exec pipe whose write end is placed at or above `min_fd()`, out of the
/// fd plan's way. With `want_pidfd`, the pidfd comes from the same `clone` (`CLONE_PIDFD`)
/// where the kernel has the flag.
#[inline]
pub(crate) fn fork(
    ctx: &mut ChildCtx,
    ns_flags: c_int,
    min_fd: impl FnOnce() -> c_int,
    want_pidfd: bool,
) -> Result<Forked, Failure> {
    if let Some(slot) = report_slot() {
        if fork_vfork_works(slot) {
            return fork_shared(ctx, ns_flags, slot, want_pidfd);
        }
    }
    fork_piped(ctx, ns_flags, min_fd(), want_pidfd)
}

/// The fork strategy through `clone(CLONE_VFORK)` and a shared report slot.
#[inline]
fn fork_shared(
    ctx: &mut ChildCtx,
    ns_flags: c_int,
    slot: *mut Report,
    want_pidfd: bool,
) -> Result<Forked, Failure> {
    // SAFETY: `slot` is this thread's report page, written only by children of this
    // thread while it is suspended in a CLONE_VFORK clone, so nobody writes it now.
    unsafe { std::ptr::write_volatile(slot, Report::default()) };
    ctx.report = slot;
    ctx.report_fd = -1;
    let result = fork_retrying(ctx, libc::CLONE_VFORK | ns_flags, want_pidfd);
    ctx.report = std::ptr::null_mut();
    let (pid, pidfd) = result.map_err(|e| (Stage::Fork, e))?;
    // SAFETY: the child has exec'd or exited (CLONE_VFORK): nobody writes the slot now.
    let report = unsafe { std::ptr::read_volatile(slot) };
    if report.stage != 0 {
        drop(pidfd);
        let _ = super::wait4(pid, 0);
        let stage = Stage::from_u8(report.stage).unwrap_or(Stage::Exec);
        return Err((stage, report.errno));
    }
    Ok((pid, pidfd))
}

/// The fork strategy with a report pipe (where `CLONE_VFORK` does not suspend the parent).
fn fork_piped(
    ctx: &mut ChildCtx,
    ns_flags: c_int,
    min_fd: c_int,
    want_pidfd: bool,
) -> Result<Forked, Failure> {
    let (r, w) = super::pipe2(0).map_err(|e| (Stage::Pipe, e))?;
    // Move the write end above every fd the plan touches. The original must be closed
    // here: a second write end open in the parent would keep the report read from ever
    // seeing EOF.
    let w = if w.as_raw_fd() < min_fd {
        let moved = super::dup_cloexec_min(w.as_fd(), min_fd).map_err(|e| (Stage::Pipe, e))?;
        drop(w);
        moved
    } else {
        w
    };
    ctx.report = std::ptr::null_mut();
    ctx.report_fd = w.as_raw_fd();
    let result = fork_retrying(ctx, ns_flags, want_pidfd);
    ctx.report_fd = -1;
    drop(w);
    let (pid, pidfd) = result.map_err(|e| (Stage::Fork, e))?;
    // Read the report: EOF (0 bytes) means the exec succeeded.
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        match super::read(r.as_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => break,
        }
    }
    if got == 0 {
        return Ok((pid, pidfd));
    }
    drop(pidfd);
    let _ = super::wait4(pid, 0);
    Err(Report::decode(&buf[..got]).unwrap_or((Stage::Exec, libc::EIO)))
}

/// Forks with `flags` (`CLONE_VFORK` and namespace flags only, plus `SIGCHLD`, plus `CLONE_PIDFD` when wanted and not known to be
/// refused) with every signal blocked, the child running the plan; retries without
/// `CLONE_PIDFD` when the kernel refuses it (`EINVAL`), and remembers.
#[inline]
fn fork_retrying(ctx: &ChildCtx, flags: c_int, want_pidfd: bool) -> Result<Forked, i32> {
    let clone_pidfd = want_pidfd && probe::clone_pidfd();
    let pidfd_flag = if clone_pidfd { libc::CLONE_PIDFD } else { 0 };
    let old = super::block_all_signals();
    let mut result = fork_run(ctx, flags | libc::SIGCHLD | pidfd_flag);
    if clone_pidfd && matches!(result, Err(libc::EINVAL)) {
        result = fork_run(ctx, flags | libc::SIGCHLD);
        if result.is_ok() {
            probe::clone_pidfd_failed();
        }
    }
    super::restore_signals(old);
    result
}

/// One fork attempt: in the child, runs the plan (never returns); in the parent, returns
/// the pid and the pidfd the kernel gave.
#[inline(always)]
fn fork_run(ctx: &ChildCtx, flags: c_int) -> Result<Forked, i32> {
    // SAFETY: the child branch only runs `child::run`, which makes async-signal-safe system
    // calls and ends in execve or _exit; signals are blocked by the caller.
    let r = unsafe { super::fork_clone(flags) };
    if let Ok((0, _)) = r {
        // SAFETY: we are the child; `ctx` is our copy of the prepared plan.
        unsafe { child::run(ctx) }
    }
    r
}

/// A page of memory shared (`MAP_SHARED`) with the children of the thread that owns it: a
/// forked child writes its report there, and the thread reads it once the child has exec'd
/// or exited. One per thread, because a thread is suspended while its child runs.
///
/// A process forked from this one (by any means) inherits the mapping, still shared with
/// us: it must not use it. Beside it, a private page marked `MADV_WIPEONFORK` holds a 1,
/// which reads as 0 in every forked process: there the thread maps pages of its own. (A
/// pid check would not do: in a new pid namespace the forked process may have our pid.)
struct ReportPage {
    page: Cell<*mut Report>,
    marker: Cell<*mut u8>,
}

const PAGE: usize = 4096;

impl ReportPage {
    /// Unmaps both pages (ours, or our view of an inherited pair).
    fn unmap(&self) {
        for p in [
            self.page.get().cast::<libc::c_void>(),
            self.marker.get().cast(),
        ] {
            if !p.is_null() {
                // SAFETY: a mapping of PAGE bytes made by `map_pages`, no longer used.
                unsafe { libc::munmap(p, PAGE) };
            }
        }
        self.page.set(std::ptr::null_mut());
        self.marker.set(std::ptr::null_mut());
    }
}

impl Drop for ReportPage {
    fn drop(&mut self) {
        self.unmap();
    }
}

thread_local! {
    static REPORT_PAGE: ReportPage = const {
        ReportPage { page: Cell::new(std::ptr::null_mut()), marker: Cell::new(std::ptr::null_mut()) }
    };
}

/// An anonymous PAGE-byte mapping with these flags, or null.
fn map_page(flags: c_int) -> *mut libc::c_void {
    // SAFETY: a fresh anonymous mapping; no existing memory is touched.
    let m = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            flags | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if m == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        m
    }
}

/// This thread's report slot, mapped at its first use (and again in a forked process);
/// `None` if it cannot be mapped (no memory, a kernel before 4.14 without
/// `MADV_WIPEONFORK`) or the thread is exiting: the caller then uses a pipe.
fn report_slot() -> Option<*mut Report> {
    REPORT_PAGE
        .try_with(|p| {
            let marker = p.marker.get();
            // SAFETY: a private page of ours (or our copy of the forking process's, which the
            // kernel zeroed), readable.
            if !marker.is_null() && unsafe { std::ptr::read_volatile(marker) } == 1 {
                return Some(p.page.get());
            }
            // First use, or inherited from the process this one was forked from.
            p.unmap();
            let page = map_page(libc::MAP_SHARED);
            let marker = map_page(libc::MAP_PRIVATE);
            p.page.set(page.cast());
            p.marker.set(marker.cast());
            let wiped_on_fork = !marker.is_null()
                // SAFETY: madvise on the private page just mapped.
                && unsafe { libc::madvise(marker, PAGE, libc::MADV_WIPEONFORK) } == 0;
            if page.is_null() || !wiped_on_fork {
                p.unmap();
                return None;
            }
            // SAFETY: the private page just mapped, writable.
            unsafe { std::ptr::write_volatile(marker.cast::<u8>(), 1) };
            Some(p.page.get())
        })
        .ok()
        .flatten()
}

static FORK_VFORK: AtomicU8 = AtomicU8::new(0);

/// Whether `clone(CLONE_VFORK)` without `CLONE_VM` suspends the parent until the child
/// exits here (emulators may run it as a plain fork: then a report in shared memory could be
/// read before the child wrote it, or land in the next spawn's slot). Probed once, failing
/// safe: in each of three trials the child sleeps 2 ms, then writes `slot`, and the parent
/// must see the write as soon as the clone returns. A plain fork would pass only if this
/// thread were held up 2 ms between those two points three times over. The probe costs
/// ~6 ms, once per process, on the first use of the `Fork` strategy, with every signal
/// blocked in the calling thread meanwhile.
fn fork_vfork_works(slot: *mut Report) -> bool {
    match FORK_VFORK.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let ok = (0..3).all(|_| fork_vfork_trial(slot));
    FORK_VFORK.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
    ok
}

/// One trial of [`fork_vfork_works`].
fn fork_vfork_trial(slot: *mut Report) -> bool {
    // SAFETY: this thread's slot; no child of it runs now.
    unsafe { std::ptr::write_volatile(slot, Report::default()) };
    let old = super::block_all_signals();
    // SAFETY: the child only sleeps, writes the shared slot and exits. No exit signal: a
    // SIGCHLD queued while this thread blocks every signal would interrupt another thread's
    // system call; it is reaped with __WALL instead.
    let r = unsafe { super::fork_clone(libc::CLONE_VFORK) };
    if let Ok((0, _)) = r {
        let ms = libc::timespec {
            tv_sec: 0,
            tv_nsec: 2_000_000,
        };
        // SAFETY: nanosleep and _exit are async-signal-safe; the slot is shared memory.
        unsafe {
            libc::nanosleep(&ms, std::ptr::null_mut());
            std::ptr::write_volatile(slot, Report { stage: 1, errno: 0 });
            libc::_exit(0);
        }
    }
    // SAFETY: read right after the clone returned, as the spawns do.
    let seen = r.is_ok() && unsafe { std::ptr::read_volatile(slot) }.stage == 1;
    super::restore_signals(old);
    if let Ok((pid, _)) = r {
        let _ = super::wait4(pid, libc::__WALL);
    }
    seen
}

/// What `posix_spawn` is asked to do besides the fds.
pub(crate) struct PosixSpawnReq<'a> {
    pub path: &'a CStr,
    pub argv: *const *const libc::c_char,
    pub envp: *const *const libc::c_char,
    pub ops: &'a [FdOp],
    pub close_from: c_int,
    pub cwd: Option<&'a CStr>,
    pub setsid: bool,
    pub pgid: pid_t,
    pub sigmask: &'a libc::sigset_t,
    pub ignored: crate::signal::IgnoredSignals,
}

struct FileActions(MaybeUninit<libc::posix_spawn_file_actions_t>);

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `posix_spawn` before the guard was created.
        unsafe { libc::posix_spawn_file_actions_destroy(self.0.as_mut_ptr()) };
    }
}

struct Attr(MaybeUninit<libc::posix_spawnattr_t>);

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised before the guard was created.
        unsafe { libc::posix_spawnattr_destroy(self.0.as_mut_ptr()) };
    }
}

fn rc(r: c_int) -> Result<(), Failure> {
    if r == 0 {
        Ok(())
    } else {
        Err((Stage::Spawn, r))
    }
}

/// Whether this C library can express the request through `posix_spawn`.
pub(crate) fn posix_spawn_can(cwd: bool, close_from: bool) -> bool {
    (!cwd || probe::addchdir_np().is_some()) && (!close_from || probe::addclosefrom_np().is_some())
}

/// Spawns through the C library's `posix_spawn`. Its return value carries the errno of a
/// failed exec; the stage is [`Stage::Exec`] (the caller refines it).
pub(crate) fn posix_spawn(req: &PosixSpawnReq<'_>) -> Result<pid_t, Failure> {
    let mut fa = FileActions(MaybeUninit::uninit());
    // SAFETY: initialising a file-actions object in place.
    rc(unsafe { libc::posix_spawn_file_actions_init(fa.0.as_mut_ptr()) })?;
    let fap = fa.0.as_mut_ptr();
    if let Some(cwd) = req.cwd {
        let f = probe::addchdir_np().ok_or((Stage::Spawn, libc::ENOSYS))?;
        // SAFETY: `fap` is initialised; `cwd` is NUL-terminated and outlives the spawn.
        rc(unsafe { f(fap, cwd.as_ptr()) })?;
    }
    for op in req.ops {
        // SAFETY: `fap` is initialised; fds are plain integers.
        rc(unsafe {
            match op.kind {
                FdOpKind::Dup | FdOpKind::DupCloexec => {
                    libc::posix_spawn_file_actions_adddup2(fap, op.src, op.dst)
                }
                FdOpKind::Close => libc::posix_spawn_file_actions_addclose(fap, op.src),
            }
        })?;
    }
    if req.close_from >= 0 {
        let f = probe::addclosefrom_np().ok_or((Stage::Spawn, libc::ENOSYS))?;
        // SAFETY: `fap` is initialised.
        rc(unsafe { f(fap, req.close_from) })?;
    }

    let mut at = Attr(MaybeUninit::uninit());
    // SAFETY: initialising an attribute object in place.
    rc(unsafe { libc::posix_spawnattr_init(at.0.as_mut_ptr()) })?;
    let atp = at.0.as_mut_ptr();
    let mut flags = (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short;
    if req.setsid {
        flags |= libc::POSIX_SPAWN_SETSID as libc::c_short;
    }
    if req.pgid >= 0 {
        flags |= libc::POSIX_SPAWN_SETPGROUP as libc::c_short;
        // SAFETY: `atp` is initialised.
        rc(unsafe { libc::posix_spawnattr_setpgroup(atp, req.pgid) })?;
    }
    // Every bit set: glibc's sigfillset leaves out its internal signals (32, 33), and its
    // posix_spawn child would leave those SIG_IGN across exec. To keep ignored signals
    // ignored, only those two (and SIGPIPE by default): the C library resets handlers by
    // itself.
    let all = match req.ignored {
        crate::signal::IgnoredSignals::Reset => super::sigset_all_bits(),
        keep => {
            let mut bits: u64 = 0b11 << 31;
            if keep == crate::signal::IgnoredSignals::KeepExceptPipe {
                bits |= 1 << (libc::SIGPIPE - 1);
            }
            let mut set = super::sigset_empty();
            // SAFETY: sigset_t starts with the bit array of signals 1..=64 (bit n-1 for
            // signal n) on Linux; sigaddset would refuse the C library's reserved signals.
            unsafe { *(&mut set as *mut libc::sigset_t).cast::<u64>() |= bits };
            set
        }
    };
    // SAFETY: `atp` is initialised; the sets are valid.
    unsafe {
        rc(libc::posix_spawnattr_setsigmask(atp, req.sigmask))?;
        rc(libc::posix_spawnattr_setsigdefault(atp, &all))?;
        rc(libc::posix_spawnattr_setflags(atp, flags))?;
    }

    let mut pid: pid_t = 0;
    // SAFETY: all pointers are valid; argv/envp are NULL-terminated arrays prepared by the
    // caller.
    let r = unsafe {
        libc::posix_spawn(
            &mut pid,
            req.path.as_ptr(),
            fap,
            atp,
            req.argv.cast::<*mut libc::c_char>(),
            req.envp.cast::<*mut libc::c_char>(),
        )
    };
    if r != 0 {
        return Err((Stage::Exec, r));
    }
    Ok(pid)
}

/// Runs `f` with the environment the child gets (`envp`, or `environ` when `None`) and,
/// when `pid_key` (`KEY=`) is given, a per-spawn copy of it without any `KEY` entry plus a
/// slot `KEY=` + room for the digits and the NUL (`N` bytes in all) that the child fills with
/// its own pid; the second argument of `f` points right after the key (null without one).
/// Only that case allocates; the plan's own arrays are shared and never written.
#[inline]
pub(crate) fn with_envp<const N: usize, R>(
    envp: Option<&CStringArray>,
    pid_key: Option<&CStr>,
    f: impl FnOnce(*const *const libc::c_char, *mut u8) -> R,
) -> R {
    let mut envp = match envp {
        Some(e) => e.as_ptr(),
        None => super::environ(),
    };
    let mut pid_buf = [std::mem::MaybeUninit::<u8>::uninit(); N];
    let mut pid_envp: Vec<*const libc::c_char> = Vec::new();
    let mut pid_slot: *mut u8 = std::ptr::null_mut();
    if let Some(key) = pid_key {
        let key = key.to_bytes();
        // `KEY=`, 20 digits and the NUL fill at most the N bytes (checked by the plan).
        assert!(key.len() + 21 <= N, "child-pid key checked by the plan");
        for (d, &b) in pid_buf.iter_mut().zip(key) {
            d.write(b);
        }
        // The child writes the digits and the NUL after the key.
        pid_slot = pid_buf[key.len()..].as_mut_ptr().cast();
        let mut p = envp;
        // SAFETY: `envp` is a NULL-terminated array of C strings (the plan's or `environ`).
        unsafe {
            while !(*p).is_null() {
                if !CStr::from_ptr(*p).to_bytes().starts_with(key) {
                    pid_envp.push(*p);
                }
                p = p.add(1);
            }
        }
        pid_envp.push(pid_buf.as_ptr().cast());
        pid_envp.push(std::ptr::null());
        envp = pid_envp.as_ptr();
    }
    f(envp, pid_slot)
}
