//! `execve`, `fork` and the raw vfork-style clone (public through [`raw`](crate::raw)).

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use libc::c_int;

use crate::error::{Error, ErrorKind, Result, Stage};
use crate::sys;
use crate::sys::cstr::CStringArray;

/// Replaces the current process image: `execve(path, argv, envp)`. It returns only on
/// failure, with the error.
///
/// # Examples
/// ```
/// use forkexec::{ErrorKind, raw::{execve, CStringArray}};
/// let argv = CStringArray::new(["nope"])?;
/// let envp = CStringArray::from_env::<_, &str, &str>([])?;
/// let err = execve(c"/no/such/file", &argv, &envp);
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `execve(2)`.
#[doc(alias = "syscall.Exec")]
pub fn execve(path: &CStr, argv: &CStringArray, envp: &CStringArray) -> Error {
    // SAFETY: both arrays are NULL-terminated arrays of NUL-terminated strings.
    let errno = unsafe { sys::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
    Error::from_errno(Stage::Exec, errno).with_path(path)
}

/// Which side of a [`fork`] this is.
///
/// # Examples
/// ```
/// use forkexec::raw::{fork_unchecked, waitpid, ForkResult, WaitOptions, WaitStatus};
/// // SAFETY: the child only calls _exit.
/// match unsafe { fork_unchecked() }? {
///     ForkResult::Child => unsafe { libc::_exit(4) },
///     ForkResult::Parent { child } => {
///         assert_eq!(waitpid(child, WaitOptions::empty())?, Some((child, WaitStatus::Exited(4))));
///     }
/// }
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkResult {
    /// The parent, with the child's pid.
    Parent {
        /// The child's pid.
        child: i32,
    },
    /// The child.
    Child,
}

/// `fork()`, refused unless this process has exactly one thread: only then may the child
/// do anything it likes (allocate, lock, print). In a multi-threaded process use
/// [`fork_exec`](crate::raw::fork_exec) or the `unsafe` [`fork_unchecked`].
///
/// The thread count comes from `/proc/self/stat`, trusted only when it is procfs's own
/// file: `/proc` must be the root of a procfs mount, `self/stat` must be reached without
/// crossing a mount point (nothing bind-mounted over it: `openat2` with
/// `RESOLVE_NO_XDEV`, Linux 5.6+), and the opened file itself must be on a procfs
/// (`fstatfs` on its fd). An unprivileged process can mount over `/proc` in a user
/// namespace (`unshare -Urm`), so a plain read could be told "1 thread" by a fake.
///
/// # Errors
/// [`ErrorKind::MultiThreaded`](crate::ErrorKind::MultiThreaded) when another thread exists, or when the thread count
/// cannot be verified (something other than procfs at `/proc` or over `/proc/self/stat`);
/// no child is created. [`ErrorKind::Io`](crate::ErrorKind::Io) (`EAGAIN`, `ENOMEM`) when the kernel refuses; an
/// I/O error when `/proc/self/stat` cannot be read to count the threads.
///
/// # Examples
/// ```
/// use forkexec::{ErrorKind, raw::fork};
/// // Doctests run on the main thread, but the test harness may have others: both outcomes
/// // are fine; a refusal must be the typed one.
/// match fork() {
///     Ok(forkexec::raw::ForkResult::Child) => unsafe { libc::_exit(0) },
///     Ok(forkexec::raw::ForkResult::Parent { child }) => {
///         forkexec::raw::waitpid(child, forkexec::raw::WaitOptions::empty())?;
///     }
///     Err(e) => assert_eq!(e.kind(), ErrorKind::MultiThreaded),
/// }
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `fork(2)`, `proc(5)` (`/proc/self/stat`), `openat2(2)`, `statfs(2)`.
pub fn fork() -> Result<ForkResult> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(Error::new(
            ErrorKind::MultiThreaded,
            format!("fork refused: the process has {threads} threads"),
        ));
    }
    // SAFETY: single-threaded, so the child inherits no lock held by another thread.
    unsafe { fork_unchecked() }
}

/// The number of threads of this process: field 20 of `/proc/self/stat`, read through an
/// fd that [`open_procfs`] verified.
pub(crate) fn thread_count() -> Result<usize> {
    let fd = open_procfs(std::path::Path::new("/proc"), "self/stat")?;
    // The line is a few hundred bytes; 4 KiB holds it with room to spare, one read.
    let mut stat = Vec::with_capacity(4096);
    loop {
        match rustix::io::read(&fd, rustix::buffer::spare_capacity(&mut stat)) {
            Ok(0) => break,
            Ok(_) if stat.len() < stat.capacity() => {}
            Ok(_) => stat.reserve(4096),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::os(e.raw_os_error())),
        }
    }
    parse_thread_count(&stat).ok_or_else(|| {
        Error::new(
            ErrorKind::Io,
            "fork refused: malformed /proc/self/stat (no thread count)",
        )
    })
}

/// Field 20 (`num_threads`) of a `/proc/<pid>/stat` line.
fn parse_thread_count(stat: &[u8]) -> Option<usize> {
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    let close = memchr::memrchr(b')', stat)?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // After ')' come fields 3.. ; num_threads is field 20, i.e. the 18th of these.
    rest.split_ascii_whitespace().nth(17)?.parse().ok()
}

/// The refusal when the thread count cannot be trusted.
fn unverifiable(why: String) -> Error {
    Error::new(
        ErrorKind::MultiThreaded,
        format!("fork refused: the thread count cannot be verified: {why}"),
    )
}

/// Whether the open `fd` is on a procfs (`fstatfs`: `PROC_SUPER_MAGIC`). The check is on
/// the fd, so it is about the file actually opened, whatever is mounted where.
fn on_procfs(fd: BorrowedFd<'_>) -> Result<bool> {
    let st = rustix::fs::fstatfs(fd).map_err(|e| Error::os(e.raw_os_error()))?;
    Ok(st.f_type == rustix::fs::PROC_SUPER_MAGIC)
}

/// Opens `rel` (relative, no `..`) under `root` for reading, only if it is procfs's own
/// file: `root` is the root directory of a procfs mount (on a procfs, inode 1), `rel` is
/// reached from it without crossing a mount point, and the opened file is on a procfs.
/// The tests call it with other roots.
fn open_procfs(root: &std::path::Path, rel: &str) -> Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let shown = || format!("{}/{rel}", root.display());
    let os = |e: rustix::io::Errno| Error::os(e.raw_os_error()).with_path(shown());
    let dir = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(os)?;
    // PROC_ROOT_INO: the root of every procfs mount is inode 1; a procfs subdirectory (a
    // /proc/<pid> bind-mounted at /proc) is not.
    let root_ino = rustix::fs::fstat(&dir).map_err(os)?.st_ino;
    if !on_procfs(dir.as_fd())? || root_ino != 1 {
        return Err(unverifiable(format!(
            "{} is not the root of a procfs",
            root.display()
        )));
    }
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    let file = match rustix::fs::openat2(
        &dir,
        rel,
        flags,
        Mode::empty(),
        ResolveFlags::NO_XDEV | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(f) => f,
        Err(rustix::io::Errno::XDEV) => {
            return Err(unverifiable(format!(
                "something is mounted over {}",
                shown()
            )));
        }
        // No openat2 (Linux < 5.6, or a seccomp filter refusing it): a bind mount over
        // the file cannot be seen; the file system check on the fd below still holds.
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
            rustix::fs::openat(&dir, rel, flags, Mode::empty()).map_err(os)?
        }
        Err(e) => return Err(os(e)),
    };
    if !on_procfs(file.as_fd())? {
        return Err(unverifiable(format!("{} is not on a procfs", shown())));
    }
    Ok(file)
}

/// `fork()` without the single-thread check.
///
/// # Safety
/// When the process has other threads, in the child, until it calls `execve` or `_exit`:
/// - call only async-signal-safe functions (see `signal-safety(7)`): no allocation, no
///   `println!`, no lock (another thread may have held it at the fork and never will
///   release it in the child);
/// - do not unwind or return into code that assumes the other threads exist;
/// - do not drop values owning heap memory or fds shared with the parent's threads'
///   bookkeeping.
///
/// # Errors
/// [`ErrorKind::Io`](crate::ErrorKind::Io) (`EAGAIN`, `ENOMEM`).
///
/// # Examples
/// ```
/// use forkexec::raw::{fork_unchecked, ForkResult, waitpid, WaitOptions, WaitStatus};
/// // SAFETY: the child only calls _exit.
/// match unsafe { fork_unchecked() }? {
///     ForkResult::Child => unsafe { libc::_exit(5) },
///     ForkResult::Parent { child } => {
///         assert_eq!(waitpid(child, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(5));
///     }
/// }
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `fork(2)`, `signal-safety(7)`.
#[doc(alias = "fork")]
pub unsafe fn fork_unchecked() -> Result<ForkResult> {
    // SAFETY: forwarded to the caller.
    match unsafe { sys::fork() } {
        Ok(0) => Ok(ForkResult::Child),
        Ok(child) => Ok(ForkResult::Parent { child }),
        Err(e) => Err(Error::os(e).with_stage(Stage::Fork)),
    }
}

struct Trampoline<'a, F> {
    body: &'a mut F,
}

extern "C" fn trampoline<F: FnMut() -> c_int>(arg: *mut libc::c_void) -> c_int {
    // SAFETY: `arg` is the `Trampoline` of `clone_vfork`'s frame, alive until we exit.
    let t = unsafe { &mut *arg.cast::<Trampoline<'_, F>>() };
    let code = (t.body)();
    // SAFETY: leaving the child without returning into the parent's stack.
    unsafe { libc::_exit(code) }
}

/// `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)` running `body` as the child on `stack`, with
/// this thread suspended until the child calls `execve` or exits. Never a `vfork()` that
/// returns twice: the child has its own stack and ends in `_exit(body())` if it returns.
/// Returns the child's pid. All signals are blocked in the parent for the duration, the C
/// library's internal ones (32 and 33 with glibc) included, and `body` starts with that
/// full mask: a body that calls `execve` should first set the mask the program is to
/// start with (`rt_sigprocmask`), or the program inherits every signal blocked.
///
/// For the common case (fd moves, chdir, `execve`) use the safe [`fork_exec`](crate::raw::fork_exec) with [`Strategy::Vfork`](crate::raw::Strategy::Vfork).
///
/// # Safety
/// `body` runs in this process's memory while the other threads keep running:
/// - it must only call async-signal-safe functions, must not allocate, lock, panic or
///   unwind, and must not drop anything that owns heap memory;
/// - it may write only to memory it owns on `stack` or that this thread prepared for it
///   (this thread is suspended; other threads are not);
/// - credentials must be changed with raw syscalls, never glibc's `setuid` family (which
///   would signal the parent's threads);
/// - `stack` must be large enough for `body` (a few KiB suffice for system calls).
///
/// # Errors
/// [`ErrorKind::Io`](crate::ErrorKind::Io) when `clone` fails (`EAGAIN`, `ENOMEM`, `EINVAL` where `CLONE_VM` is
/// filtered).
///
/// # Examples
/// ```
/// use std::mem::MaybeUninit;
/// use forkexec::raw::{clone_vfork, waitpid, WaitOptions, WaitStatus};
/// let mut stack = [MaybeUninit::<u8>::uninit(); 16 * 1024];
/// // SAFETY: the body only returns a constant.
/// let pid = unsafe { clone_vfork(&mut stack, &mut || 3) }?;
/// assert_eq!(waitpid(pid, WaitOptions::empty())?.unwrap().1, WaitStatus::Exited(3));
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `clone(2)`, `vfork(2)`.
#[doc(alias("vfork", "clone", "CLONE_VFORK"))]
pub unsafe fn clone_vfork<F: FnMut() -> c_int>(
    stack: &mut [MaybeUninit<u8>],
    body: &mut F,
) -> Result<i32> {
    let mut t = Trampoline { body };
    let old = sys::block_all_signals();
    // SAFETY: contract forwarded to the caller; `t` and `stack` outlive the call.
    let r = unsafe {
        sys::clone_vfork(
            trampoline::<F>,
            (&mut t as *mut Trampoline<'_, F>).cast(),
            stack,
            false,
            libc::SIGCHLD,
        )
    };
    sys::restore_signals(old);
    r.map(|(pid, _)| pid)
        .map_err(|e| Error::os(e).with_stage(Stage::Fork))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    /// A `/proc`-shaped directory tree (`self/stat` with a 1-thread line) on whatever file
    /// system the temp dir is, removed when dropped.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(tag: &str) -> FakeProc {
            let root = std::env::temp_dir()
                .join(format!("forkexec-fakeproc-{}-{tag}", std::process::id()));
            std::fs::create_dir_all(root.join("self")).unwrap();
            std::fs::write(root.join("self/stat"), FAKE_STAT).unwrap();
            FakeProc(root)
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A stat line saying "1 thread".
    const FAKE_STAT: &str = "1 (x) R 0 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0\n";

    fn assert_refused(r: Result<OwnedFd>, what: &str) {
        match r {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::MultiThreaded, "{what}: {e:?}");
                assert!(e.to_string().contains("cannot be verified"), "{what}: {e}");
            }
        }
    }

    #[test]
    fn real_procfs_is_accepted() {
        let fd = open_procfs(Path::new("/proc"), "self/stat").unwrap();
        assert!(on_procfs(fd.as_fd()).unwrap());
        // The test harness runs this on a thread of its own.
        assert!(thread_count().unwrap() >= 1);
    }

    #[test]
    fn the_file_system_check_is_on_the_opened_fd() {
        let fake = FakeProc::new("fd");
        let file = std::fs::File::open(fake.0.join("self/stat")).unwrap();
        assert!(!on_procfs(file.as_fd()).unwrap(), "a regular file");
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(on_procfs(file.as_fd()).unwrap(), "/proc/self/stat");
        if let Ok(shm) = std::fs::File::open("/dev/shm") {
            assert!(!on_procfs(shm.as_fd()).unwrap(), "tmpfs");
        }
    }

    #[test]
    fn a_fake_proc_is_refused() {
        let fake = FakeProc::new("root");
        // The fake's content alone would pass.
        assert_eq!(parse_thread_count(FAKE_STAT.as_bytes()), Some(1));
        assert_refused(open_procfs(&fake.0, "self/stat"), "a fake /proc tree");
    }

    #[test]
    fn a_procfs_subdirectory_as_root_is_refused() {
        // On a procfs, but not its root (as a /proc/<pid> bind-mounted at /proc would be).
        assert_refused(open_procfs(Path::new("/proc/self"), "stat"), "/proc/self");
    }

    #[test]
    fn parse_thread_count_skips_odd_command_names() {
        let line = b"42 (a) b) c (d) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 7 0 5\n";
        assert_eq!(parse_thread_count(line), Some(7));
        assert_eq!(parse_thread_count(b"42 (x) S 1 2"), None);
        assert_eq!(parse_thread_count(b"no paren"), None);
    }
}
