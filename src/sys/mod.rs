//! The operating-system boundary: every raw `libc` call and raw syscall of the crate.
//!
//! # Safety
//! This module is private. Its safe functions are sound for any arguments; its `unsafe`
//! functions state their contract. Two families live here:
//!
//! - **Parent-side calls** (`pipe2`, `waitid`, `pidfd_open`, ...) may allocate and retry on
//!   `EINTR` where a retry is correct (waits, reads); they never retry calls whose retry could
//!   act twice (`close`).
//! - **Child-side calls** (module [`child`]) run between `fork`/`clone` and `execve`. They are
//!   direct system calls: no allocation, no lock, no panic, no use of glibc's thread list (so
//!   credentials go through the raw syscall, never glibc's `setuid`, which would signal the
//!   parent's threads from a `CLONE_VM` child). They report the errno they got as a return
//!   value and touch nothing but their arguments.
//!
//! Capabilities of the running kernel and C library are probed here, once, and cached in
//! atomics ([`probe`]).

pub(crate) mod child;
pub(crate) mod cstr;
pub(crate) mod fork;
pub(crate) mod pipe;
pub(crate) mod probe;
#[cfg(feature = "upgrade")]
pub(crate) mod upgrade;
pub(crate) mod wait;

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use libc::{c_int, pid_t};

/// The calling thread's `errno`.
#[inline]
pub(crate) fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Turns a `-1` return into `Err(errno)`.
#[inline]
pub(crate) fn cvt(ret: c_int) -> Result<c_int, i32> {
    if ret == -1 { Err(errno()) } else { Ok(ret) }
}

/// Like [`cvt`] for `long` returns (raw `syscall`).
#[inline]
pub(crate) fn cvt_long(ret: libc::c_long) -> Result<libc::c_long, i32> {
    if ret == -1 { Err(errno()) } else { Ok(ret) }
}

/// Calls `f` until it does not fail with `EINTR`.
#[inline]
pub(crate) fn retry<T>(mut f: impl FnMut() -> Result<T, i32>) -> Result<T, i32> {
    loop {
        match f() {
            Err(libc::EINTR) => continue,
            other => return other,
        }
    }
}

/// A system call with up to five arguments, straight to the kernel: `Ok(return value)` or
/// `Err(errno)`. On x86_64 it is the `syscall` instruction itself (the C library's
/// variadic `syscall()` wrapper and its `errno` round trip cost more than the instruction on
/// the spawn path); elsewhere it is that wrapper.
///
/// # Safety
/// As the system call `n` with these arguments: pointers must be valid for what the kernel
/// reads or writes through them. A call that returns twice (a fork-style `clone`) returns
/// here in both processes.
#[inline(always)]
pub(crate) unsafe fn syscall5(
    n: libc::c_long,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
) -> Result<usize, i32> {
    #[cfg(target_arch = "x86_64")]
    {
        let ret: isize;
        // SAFETY: the Linux x86_64 system call convention (rcx and r11 clobbered); the
        // argument contract is the caller's.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") n as isize => ret,
                in("rdi") a1,
                in("rsi") a2,
                in("rdx") a3,
                in("r10") a4,
                in("r8") a5,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        if (-4095..0).contains(&ret) {
            Err(-ret as i32)
        } else {
            Ok(ret as usize)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: the caller's contract.
        let ret = unsafe { libc::syscall(n, a1, a2, a3, a4, a5) };
        if ret == -1 {
            Err(errno())
        } else {
            Ok(ret as usize)
        }
    }
}

/// Takes ownership of a freshly created fd.
///
/// # Safety
/// `fd` must be open and owned by nobody else.
#[inline]
pub(crate) unsafe fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: forwarded to the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The errno of a rustix error: the one conversion between rustix and the crate's errno
/// results (which `Error::os` turns into an [`Error`](crate::Error)).
#[inline]
pub(crate) fn os(e: rustix::io::Errno) -> i32 {
    e.raw_os_error()
}

/// `pipe2(flags | O_CLOEXEC)`.
pub(crate) fn pipe2(flags: c_int) -> Result<(OwnedFd, OwnedFd), i32> {
    let flags = rustix::pipe::PipeFlags::from_bits_retain(flags as _);
    rustix::pipe::pipe_with(flags | rustix::pipe::PipeFlags::CLOEXEC).map_err(os)
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`.
/// `fd` itself when it is 3 or above, else a close-on-exec duplicate at 3 or above (the
/// original closed): a crate fd opened while the application has 0, 1 or 2 closed must not
/// stay there, or it would become the application's stdio once that is restored.
pub(crate) fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, i32> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    dup_cloexec_min(fd.as_fd(), 3)
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`.
pub(crate) fn dup_cloexec_min(fd: BorrowedFd<'_>, min: RawFd) -> Result<OwnedFd, i32> {
    rustix::io::fcntl_dupfd_cloexec(fd, min).map_err(os)
}

/// `fcntl(fd, F_GETFD)` — `Err(EBADF)` for a closed fd.
pub(crate) fn fd_flags(fd: RawFd) -> Result<c_int, i32> {
    // SAFETY: F_GETFD on any integer is harmless; a closed fd gives EBADF.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })
}

/// `open(path, flags | O_CLOEXEC)`.
pub(crate) fn open(path: &CStr, flags: c_int) -> Result<OwnedFd, i32> {
    let flags = rustix::fs::OFlags::from_bits_retain(flags as _) | rustix::fs::OFlags::CLOEXEC;
    retry(|| rustix::fs::open(path, flags, rustix::fs::Mode::from_bits_retain(0o666)).map_err(os))
}

/// `read(fd, buf)` with EINTR retry.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, i32> {
    retry(|| rustix::io::read(fd, &mut *buf).map_err(os))
}

/// One `read(fd)` into the spare room of `buf` (its length grows by what was read); `EINTR`
/// and `EAGAIN` are returned.
pub(crate) fn read_spare(fd: BorrowedFd<'_>, buf: &mut Vec<u8>) -> Result<usize, i32> {
    rustix::io::read(fd, rustix::buffer::spare_capacity(buf)).map_err(os)
}

/// `write(fd, buf)` once, with EINTR retry: how much was written.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> Result<usize, i32> {
    retry(|| rustix::io::write(fd, buf).map_err(os))
}

/// Makes `fd` non-blocking (`FIONBIO`).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), i32> {
    rustix::io::ioctl_fionbio(fd, true).map_err(os)
}

/// Sets the capacity of the pipe `fd` (`F_SETPIPE_SZ`); the kernel may round it up.
pub(crate) fn set_pipe_size(fd: BorrowedFd<'_>, size: usize) -> Result<(), i32> {
    rustix::pipe::fcntl_setpipe_size(fd, size)
        .map(drop)
        .map_err(os)
}

/// `stat(path)`, symlinks followed.
pub(crate) fn stat(path: impl rustix::path::Arg) -> Result<rustix::fs::Stat, i32> {
    rustix::fs::stat(path).map_err(os)
}

/// Whether `path` is executable for the effective ids (`faccessat(X_OK, AT_EACCESS)`).
pub(crate) fn executable(path: &std::path::Path) -> Result<(), i32> {
    use rustix::fs::{Access, AtFlags, CWD};
    rustix::fs::accessat(CWD, path, Access::EXEC_OK, AtFlags::EACCESS).map_err(os)
}

/// The effective uid and gid of this process.
pub(crate) fn effective_ids() -> (u32, u32) {
    (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

/// The parent's pid; 0 when it has none (this process is its namespace's init).
pub(crate) fn getppid() -> pid_t {
    rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get())
}

/// Raw `wait4` result: `(pid, status, rusage)`.
pub(crate) fn wait4(pid: pid_t, options: c_int) -> Result<(pid_t, c_int, libc::rusage), i32> {
    let mut status: c_int = 0;
    let mut ru = MaybeUninit::<libc::rusage>::zeroed();
    let got = retry(|| {
        // SAFETY: `status` and `ru` are valid out-pointers.
        cvt(unsafe { libc::wait4(pid, &mut status, options, ru.as_mut_ptr()) })
    })?;
    // SAFETY: zero-initialised and possibly filled by the kernel.
    Ok((got, status, unsafe { ru.assume_init() }))
}

/// What `waitid` reports of a child that changed state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChildInfo {
    /// `si_code`: `CLD_EXITED`, `CLD_KILLED`, ...
    pub code: c_int,
    /// `si_status`: the exit code or the signal.
    pub status: c_int,
    /// The child's resource usage (zero unless asked for).
    pub rusage: crate::status::Rusage,
}

/// Raw `waitid(idtype, id, options)` through the syscall, which also reports the child's
/// resource usage when `rusage` is asked for. Returns `None` when `WNOHANG` was given and
/// no child was ready.
pub(crate) fn waitid(
    idtype: libc::idtype_t,
    id: libc::id_t,
    options: c_int,
    rusage: bool,
) -> Result<Option<ChildInfo>, i32> {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    let mut ru = MaybeUninit::<libc::rusage>::zeroed();
    let ru_ptr = if rusage {
        ru.as_mut_ptr()
    } else {
        std::ptr::null_mut()
    };
    retry(|| {
        // SAFETY: the waitid syscall takes (idtype, id, siginfo*, options, rusage*); the
        // siginfo pointer is valid, the rusage one valid or null.
        unsafe {
            syscall5(
                libc::SYS_waitid,
                idtype as usize,
                id as usize,
                info.as_mut_ptr() as usize,
                options as usize,
                ru_ptr as usize,
            )
        }
    })?;
    // SAFETY: zeroed, then filled in by the kernel; reading the SIGCHLD fields of a zeroed or
    // filled siginfo is always defined.
    let (pid, code, status) = unsafe {
        let info = info.assume_init_ref();
        (info.si_pid(), info.si_code, info.si_status())
    };
    if pid == 0 {
        return Ok(None);
    }
    // SAFETY: zeroed, then (when asked for) filled in by the kernel.
    let rusage = crate::status::Rusage::from_raw(unsafe { ru.assume_init_ref() });
    Ok(Some(ChildInfo {
        code,
        status,
        rusage,
    }))
}

/// `pidfd_open(pid, 0)`; the fd is close-on-exec by definition.
pub(crate) fn pidfd_open(pid: pid_t) -> Result<OwnedFd, i32> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or(libc::EINVAL)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).map_err(os)
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: c_int) -> Result<(), i32> {
    // SAFETY: plain syscall; a NULL siginfo is allowed.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// `kill(pid, sig)`.
pub(crate) fn kill(pid: pid_t, sig: c_int) -> Result<(), i32> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// One `poll(2)` call: `timeout_ms` (-1 forever); `EINTR` is returned. Use [`poll_until`].
fn poll(fds: &mut [libc::pollfd], timeout_ms: c_int) -> Result<usize, i32> {
    // SAFETY: `fds` is a valid slice of pollfd.
    cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) })
        .map(|n| n as usize)
}

/// The crate's one poll loop: waits until one of `fds` has an event or `deadline` passes
/// (`None`: no deadline), and returns how many fds have events: 0 only once the deadline
/// has passed (a deadline already past polls once without waiting, so what is ready is
/// still seen). `EINTR` is retried with the time that is left; waits are rounded up to the
/// millisecond, so a short one is no busy loop. Other errors are returned (the errno).
///
/// # References
/// `poll(2)`.
pub(crate) fn poll_until(
    fds: &mut [libc::pollfd],
    deadline: Option<std::time::Instant>,
) -> Result<usize, i32> {
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => d
                .saturating_duration_since(std::time::Instant::now())
                .as_nanos()
                .div_ceil(1_000_000)
                .min(c_int::MAX as u128) as c_int,
        };
        match poll(fds, ms) {
            Ok(0) if deadline.is_some_and(|d| std::time::Instant::now() < d) => {}
            Ok(n) if n > 0 || ms >= 0 => return Ok(n),
            Ok(_) | Err(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// A buffer of epoll events that may cross threads: rustix's `Event` holds a union with a
/// pointer member, which makes it neither `Send` nor `Sync`, but the crate only ever
/// stores integers in it (its keys), so nothing thread-bound is behind one.
pub(crate) struct EpollEvents(pub(crate) Vec<rustix::event::epoll::Event>);

// SAFETY: the events carry `u64` keys written by the crate, never pointers (see above); a
// plain integer buffer may be sent to and shared with another thread.
unsafe impl Send for EpollEvents {}
// SAFETY: as above; `&EpollEvents` gives read access to integers only.
unsafe impl Sync for EpollEvents {}

/// A `pollfd` waiting for input on `fd` (-1: an entry poll skips).
pub(crate) fn poll_in(fd: c_int) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// `getpid()`.
pub(crate) fn getpid() -> pid_t {
    // SAFETY: getpid takes no argument and always succeeds.
    unsafe { syscall5(libc::SYS_getpid, 0, 0, 0, 0, 0) }.map_or(0, |p| p as pid_t)
}

/// A signal set with every bit set, the C library's reserved signals included.
pub(crate) fn sigset_all_bits() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigset_t is plain bits; every byte is written before it is read.
    unsafe {
        std::ptr::write_bytes(set.as_mut_ptr(), 0xff, 1);
        set.assume_init()
    }
}

/// An empty signal set.
pub(crate) fn sigset_empty() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    }
}

/// The set of `signals`.
pub(crate) fn sigset_of(signals: &[crate::status::Signal]) -> libc::sigset_t {
    let mut set = sigset_empty();
    for s in signals {
        // SAFETY: `set` is initialised; an out-of-range number is ignored by sigaddset.
        unsafe { libc::sigaddset(&mut set, s.as_raw()) };
    }
    set
}

/// Blocks, for good, every signal the application could handle in the calling thread (a
/// service thread that must never run a handler). The C library's internal signals stay
/// deliverable: glibc's `setuid` in another thread waits for every thread to take one.
#[cfg(feature = "agent")]
pub(crate) fn block_app_signals() {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises the set (without the C library's internal signals);
    // pthread_sigmask on the calling thread with a valid set.
    unsafe {
        libc::sigfillset(set.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut());
    }
}

/// A signal mask as the kernel takes it in `rt_sigprocmask` (64 bits, signal `n` at bit
/// `n - 1`): no C library set to fill or copy.
pub(crate) type KernelSigset = u64;

/// Blocks every signal in the calling thread (the raw syscall with every bit set, so the C
/// library's internal signals are blocked too) and returns the previous mask; `None` if the
/// kernel refused (a seccomp filter), when there is nothing to restore. Used around `clone`
/// so that no handler of the parent can run in the child before it resets them.
#[inline]
pub(crate) fn block_all_signals() -> Option<KernelSigset> {
    let all: KernelSigset = !0;
    let mut old: KernelSigset = 0;
    // SAFETY: both sets are valid 8-byte kernel sigsets.
    let r = unsafe {
        syscall5(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            &all as *const KernelSigset as usize,
            &mut old as *mut KernelSigset as usize,
            8,
            0,
        )
    };
    r.ok().map(|_| old)
}

/// Restores a mask returned by [`block_all_signals`] (nothing for `None`).
#[inline]
pub(crate) fn restore_signals(old: Option<KernelSigset>) {
    let Some(old) = old else { return };
    // SAFETY: `old` is a valid 8-byte kernel sigset.
    let _ = unsafe {
        syscall5(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            &old as *const KernelSigset as usize,
            0,
            8,
            0,
        )
    };
}

/// `fork()` through the C library (so its `atfork` handlers run).
///
/// # Safety
/// See `raw::fork_unchecked`: in the child of a multi-threaded process only
/// async-signal-safe calls are allowed.
pub(crate) unsafe fn fork() -> Result<pid_t, i32> {
    // SAFETY: forwarded to the caller.
    cvt(unsafe { libc::fork() })
}

/// A fork through the raw `clone(flags)` system call, bypassing the C library's `fork`: no
/// `atfork` handlers, no allocator or stdio locks taken in the parent (so a spawning thread
/// never waits on another thread's `malloc`), and the pidfd in the same call when `flags`
/// has `CLONE_PIDFD`. `flags` holds the exit signal and may add `CLONE_VFORK` (the caller
/// is suspended until the child execs or exits); it must not hold `CLONE_VM`. Returns
/// `(0, None)` in the child, `(pid, pidfd)` in the parent; the pidfd is `None` when not
/// asked for or when the kernel (or an emulator) ignored the flag.
///
/// # Safety
/// - The child shares no lock state with the C library (its `fork` bookkeeping is skipped):
///   it may only make async-signal-safe system calls and must end in `execve` or `_exit`,
///   never returning into code that could allocate or unwind.
/// - The caller should block signals around the call when handlers are installed: the
///   child starts with a copy of them.
///
/// # References
/// `clone(2)`.
pub(crate) unsafe fn fork_clone(flags: c_int) -> Result<(pid_t, Option<OwnedFd>), i32> {
    debug_assert!(flags & libc::CLONE_VM == 0);
    let mut pidfd: c_int = -1;
    let flags = flags as libc::c_ulong;
    let ptid = &mut pidfd as *mut c_int;
    // SAFETY: a fork-style clone (no CLONE_VM: the child gets a copy of the address space
    // and of this stack, so no new stack is given); `pidfd` is a valid out-pointer for
    // CLONE_PIDFD (parent_tid, the third argument on every architecture; s390 swaps the
    // first two). The child side is the caller's contract.
    let ret = unsafe {
        #[cfg(not(target_arch = "s390x"))]
        let r = syscall5(libc::SYS_clone, flags as usize, 0, ptid as usize, 0, 0);
        #[cfg(target_arch = "s390x")]
        let r = syscall5(libc::SYS_clone, 0, flags as usize, ptid as usize, 0, 0);
        r
    };
    let pid = ret? as pid_t;
    if pid == 0 || pidfd < 0 || flags & libc::CLONE_PIDFD as libc::c_ulong == 0 {
        return Ok((pid, None));
    }
    // SAFETY: the kernel created this fd for us (CLONE_PIDFD sets O_CLOEXEC).
    Ok((pid, Some(unsafe { owned(pidfd) })))
}

/// The signature of a child body run by [`clone_vfork`].
pub(crate) type CloneBody = extern "C" fn(*mut libc::c_void) -> c_int;

/// `clone(CLONE_VM | CLONE_VFORK | extra_flags [| CLONE_PIDFD])` running `body(arg)` on
/// `stack`; `extra_flags` carries the exit signal (`SIGCHLD` for an ordinary child, 0 for
/// one reaped with `__WALL` that must not signal the parent) and any namespace flags.
/// Returns the child's pid and, when asked for and granted, its pidfd. The caller is
/// suspended until the child execs or exits.
///
/// # Safety
/// - `stack` must be writable memory that stays valid until this call returns, aligned as
///   the ABI needs at its top end, and large enough for `body`.
/// - `body` runs in the caller's address space with a separate stack: it must only make
///   async-signal-safe system calls on memory prepared before the call, must not unwind,
///   must not allocate or take locks, and must end in `execve` or `_exit`.
/// - All signals should be blocked in the calling thread around the call.
pub(crate) unsafe fn clone_vfork(
    body: CloneBody,
    arg: *mut libc::c_void,
    stack: &mut [MaybeUninit<u8>],
    want_pidfd: bool,
    extra_flags: c_int,
) -> Result<(pid_t, Option<OwnedFd>), i32> {
    let mut pidfd: c_int = -1;
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | extra_flags;
    if want_pidfd {
        flags |= libc::CLONE_PIDFD;
    }
    // The stack grows down on every architecture Linux-first means here; align the top to 16.
    let top = stack.as_mut_ptr_range().end as usize & !15;
    // SAFETY: contract forwarded to the caller; with CLONE_PIDFD the kernel writes the pidfd
    // through the parent_tid argument, which points at `pidfd`. The variadic tail is
    // passed in full (parent_tid, tls, child_tid), with explicit nulls for the two this
    // crate never asks for, so no stack garbage can reach the kernel.
    let pid = unsafe {
        libc::clone(
            body,
            top as *mut libc::c_void,
            flags,
            arg,
            &mut pidfd as *mut c_int,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<c_int>(),
        )
    };
    if pid == -1 {
        return Err(errno());
    }
    let pidfd = if want_pidfd && pidfd >= 0 {
        // SAFETY: the kernel created this pidfd for us (close-on-exec by definition).
        Some(unsafe { owned(pidfd) })
    } else {
        None
    };
    Ok((pid, pidfd))
}

/// `execve(path, argv, envp)`; returns the errno (it only returns on failure).
///
/// # Safety
/// `argv` and `envp` must be NULL-terminated arrays of NUL-terminated strings.
pub(crate) unsafe fn execve(
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> i32 {
    // SAFETY: forwarded to the caller.
    unsafe { libc::execve(path, argv, envp) };
    errno()
}

/// The current process environment (`environ`).
pub(crate) fn environ() -> *const *const libc::c_char {
    unsafe extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: reading the pointer value of libc's `environ`; concurrent `setenv` is excluded
    // by the contract of `std::env::set_var` (unsafe since Rust 2024).
    unsafe { environ }
}

/// The kernel's `struct clone_args` (version 2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_CLEAR_SIGHAND` (Linux 5.5): the child starts with every handler reset to
/// `SIG_DFL` (ignored signals stay ignored).
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// `clone3(CLONE_VM | CLONE_VFORK | CLONE_CLEAR_SIGHAND [| CLONE_PIDFD] | extra_flags)`
/// running `body(arg)` on `stack`, with `SIGCHLD` as exit signal. Returns the pid and, with
/// `want_pidfd`, the pidfd. Because the kernel clears the child's handlers at creation, no handler of the
/// parent can ever run in the child, and the parent need not block signals around the call
/// (so no child exit is ever queued as a stray `SIGCHLD` for another thread).
///
/// The child starts on `stack` in the middle of this function's `syscall` instruction, so the
/// switch to `body` is a few instructions of assembly: x86_64 only; elsewhere the caller uses
/// [`clone_vfork`].
///
/// # Safety
/// As [`clone_vfork`], except that signals need not be blocked.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn clone3_vfork(
    body: CloneBody,
    arg: *mut libc::c_void,
    stack: &mut [MaybeUninit<u8>],
    want_pidfd: bool,
    extra_flags: c_int,
) -> Result<(pid_t, Option<OwnedFd>), i32> {
    let mut pidfd: c_int = -1;
    let pidfd_flag = if want_pidfd { libc::CLONE_PIDFD } else { 0 };
    let range = stack.as_mut_ptr_range();
    let base = (range.start as usize + 15) & !15;
    let top = range.end as usize & !15;
    let args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK | pidfd_flag) as u64
            | CLONE_CLEAR_SIGHAND
            | extra_flags as u32 as u64,
        pidfd: &mut pidfd as *mut c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: base as u64,
        stack_size: (top - base) as u64,
        ..CloneArgs::default()
    };
    let ret: i64;
    // SAFETY: the parent path is a plain syscall (rcx and r11 clobbered, result in rax).
    // The child path runs on the new stack, whose top is 16-byte aligned as `call` needs:
    // it calls `body(arg)` (kept in the callee-saved r12/r13, which the child inherits) and
    // exits with its return value; it never returns into this frame. The contract on
    // `body`, `arg` and `stack` is the caller's.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "mov edi, eax",
            "mov eax, {exit}",
            "syscall",
            "ud2",
            "2:",
            exit = const libc::SYS_exit_group,
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") body,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        return Err(-ret as i32);
    }
    if pidfd < 0 {
        return Ok((ret as pid_t, None));
    }
    // SAFETY: the kernel created this pidfd for us (close-on-exec by definition).
    Ok((ret as pid_t, Some(unsafe { owned(pidfd) })))
}

pub(crate) mod spawn;

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn poll_until_sees_what_is_ready_and_ends_at_the_deadline() {
        let (r, w) = pipe::pipe().unwrap();
        let mut p = [poll_in(r.as_raw_fd())];
        // A deadline already past: one poll that does not wait.
        assert_eq!(poll_until(&mut p, Some(Instant::now())), Ok(0));
        // A short deadline: waits for it, then 0.
        let start = Instant::now();
        let deadline = start + Duration::from_millis(20);
        assert_eq!(poll_until(&mut p, Some(deadline)), Ok(0));
        assert!(Instant::now() >= deadline, "returned before its deadline");
        rustix::io::write(&w, b"x").unwrap();
        // Ready: seen with no deadline, and with one already past.
        assert_eq!(poll_until(&mut p, None), Ok(1));
        assert_eq!(p[0].revents & libc::POLLIN, libc::POLLIN);
        assert_eq!(poll_until(&mut p, Some(start)), Ok(1));
        // A closed write end is an event too (POLLHUP), and -1 entries are skipped.
        let mut b = [0u8; 1];
        rustix::io::read(&r, &mut b).unwrap();
        drop(w);
        let mut p = [poll_in(-1), poll_in(r.as_raw_fd())];
        assert_eq!(poll_until(&mut p, None), Ok(1));
        assert_eq!(
            (p[0].revents, p[1].revents & libc::POLLHUP),
            (0, libc::POLLHUP)
        );
    }
}
