//! The operating-system calls of [`crate::upgrade`] that need `unsafe`: blocking signals and
//! opening a `signalfd`, taking the fds a hand-over passed to this process, and removing the
//! hand-over variables from the environment. Each function here is safe to call with any
//! argument; the conditions that make its `unsafe` block sound are checked inside it, not
//! left to the caller. (`rustix` has neither `signalfd` nor `pthread_sigmask`, so these go
//! through `libc`.)
//!
//! Errors are the bare `errno` values of the rest of [`crate::sys`].

use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// A set of signals (`sigset_t`), built only from valid signal numbers.
#[derive(Clone, Copy)]
pub(crate) struct SigSet(libc::sigset_t);

impl SigSet {
    /// The set of `signals`; `Err(EINVAL)` when one is not a valid signal number.
    ///
    /// # References
    /// `sigsetops(3)`: `sigemptyset`, `sigaddset`.
    pub(crate) fn new(signals: &[libc::c_int]) -> Result<SigSet, i32> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `set` points to writable memory of the size of a `sigset_t`, which
        // sigemptyset initialises completely (it cannot fail for a valid pointer).
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised by sigemptyset just above.
        let mut set = unsafe { set.assume_init() };
        for &s in signals {
            // SAFETY: `set` is an initialised sigset_t we own; sigaddset checks `s` and
            // returns -1 (EINVAL) for a number outside the set, writing nothing then.
            if unsafe { libc::sigaddset(&mut set, s) } != 0 {
                return Err(libc::EINVAL);
            }
        }
        Ok(SigSet(set))
    }

    /// Blocks these signals in the calling thread (`pthread_sigmask(SIG_BLOCK)`), so that
    /// the kernel queues them instead of running their action.
    ///
    /// # References
    /// `pthread_sigmask(3)`, `sigprocmask(2)`.
    pub(crate) fn block(&self) -> Result<(), i32> {
        // SAFETY: `self.0` is an initialised sigset_t; a null old-set pointer is allowed.
        // Changing the calling thread's own mask affects no memory of the program.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.0, std::ptr::null_mut()) };
        if r == 0 { Ok(()) } else { Err(r) }
    }

    /// A new close-on-exec, non-blocking `signalfd` for these signals.
    ///
    /// # References
    /// `signalfd(2)`.
    pub(crate) fn signalfd(&self) -> Result<OwnedFd, i32> {
        // SAFETY: -1 asks for a new fd; `self.0` is an initialised sigset_t that the kernel
        // only reads.
        let fd = unsafe { libc::signalfd(-1, &self.0, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(super::errno());
        }
        // SAFETY: signalfd just created this fd; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Whether this process's inherited fds were taken (or are being taken) already.
static INHERIT_TAKEN: AtomicBool = AtomicBool::new(false);

/// The right to take the fds a hand-over passed to this process across `execve`: at most
/// one exists in a process at a time, and once it took fds it is never given back, so no
/// inherited fd gets two owners inside the crate.
///
/// Outside the crate, the module documentation of [`crate::upgrade`] ("Who owns the
/// inherited fds") is the contract: the fds a hand-over names belong to the first upgrader
/// that inherits, as those of systemd's `sd_listen_fds` belong to its first caller; no
/// other code may wrap them by number. What this type adds is that the crate itself never
/// breaks it, and never takes an fd this process opened itself (see [`take`]).
///
/// [`take`]: InheritRight::take
#[derive(Debug)]
pub(crate) struct InheritRight(());

/// Why [`InheritRight::take`] refused an fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Below 3 (stdin, stdout, stderr are never handed over) or not open.
    NotOpen,
    /// Close-on-exec: it did not cross `execve`, so this process opened it itself.
    NotInherited,
    /// The readiness fd is not a pipe.
    NotPipe,
    /// Named twice in the hand-over.
    Duplicate,
}

/// What [`InheritRight::take`] took: the listening fds in order, and the readiness pipe.
pub(crate) type Taken = (Vec<OwnedFd>, Option<OwnedFd>);

impl InheritRight {
    /// The right, unless another holder has it or used it already.
    pub(crate) fn acquire() -> Option<InheritRight> {
        if INHERIT_TAKEN.swap(true, Ordering::SeqCst) {
            None
        } else {
            Some(InheritRight(()))
        }
    }

    /// Gives the right back unused (a refused hand-over does not count): a later upgrader
    /// may inherit.
    pub(crate) fn release(self) {
        INHERIT_TAKEN.store(false, Ordering::SeqCst);
    }

    /// Takes ownership of `fds` and of the readiness pipe `ready`, all or none: every fd
    /// must be 3 or above, open, and not close-on-exec; `ready` must also be a pipe. On a
    /// refusal nothing is wrapped, closed or changed, and the right comes back with the
    /// fd and the reason. On success the right is spent for the life of the process.
    ///
    /// The taken fds keep their flags; the caller marks them close-on-exec.
    ///
    /// # References
    /// `fcntl(2)` (`F_GETFD`), `fstat(2)`, `execve(2)` (what crosses it).
    pub(crate) fn take(
        self,
        fds: &[RawFd],
        ready: Option<RawFd>,
    ) -> Result<Taken, (RawFd, Refused, InheritRight)> {
        for &fd in fds.iter().chain(ready.iter()) {
            // SAFETY: F_GETFD on any integer reads only the kernel's fd table; a number
            // that is not open gives EBADF.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            if fd < 3 || flags < 0 {
                return Err((fd, Refused::NotOpen, self));
            }
            if flags & libc::FD_CLOEXEC != 0 {
                return Err((fd, Refused::NotInherited, self));
            }
        }
        if let Some(fd) = ready {
            let mut st = MaybeUninit::<libc::stat>::uninit();
            // SAFETY: `st` is writable memory of the size of a `struct stat`, which fstat
            // fills on success; `fd` is open (checked above).
            let ok = unsafe { libc::fstat(fd, st.as_mut_ptr()) } == 0;
            // SAFETY: fstat succeeded, so it initialised `st`.
            let is_fifo = ok && unsafe { st.assume_init() }.st_mode & libc::S_IFMT == libc::S_IFIFO;
            if !is_fifo {
                return Err((fd, Refused::NotPipe, self));
            }
        }
        let mut seen = Vec::with_capacity(fds.len() + 1);
        for &fd in fds.iter().chain(ready.iter()) {
            if seen.contains(&fd) {
                // Two names for one fd would give it two owners.
                return Err((fd, Refused::Duplicate, self));
            }
            seen.push(fd);
        }
        let own = |fd: RawFd| {
            // SAFETY: `fd` is open and 3 or above (checked), it crossed `execve` (not
            // close-on-exec: every fd this process opened through std, rustix or this
            // crate is close-on-exec from birth, so no owner in the process made it), it
            // appears once in the list (checked), and this right — held by one caller at a
            // time, spent by this call — makes this the one place in the crate that takes
            // it. The crate's documented contract gives the inherited fds to this caller
            // (see `InheritRight`).
            unsafe { OwnedFd::from_raw_fd(fd) }
        };
        let fds = fds.iter().map(|&fd| own(fd)).collect();
        let ready = ready.map(own);
        // `self` is dropped here without `release`: the right stays spent, no second
        // taker, ever.
        Ok((fds, ready))
    }
}

/// Removes the variables `keys` from this process's environment when that is sound: only
/// while the process has a single thread. Returns whether they were removed (`true` too
/// when none was set); `false` leaves the environment as it was.
///
/// # References
/// `environ(7)`, `unsetenv(3)`; `proc(5)` (`/proc/self/stat`).
pub(crate) fn remove_env_single_threaded(keys: &[&str]) -> bool {
    if !keys.iter().any(|k| std::env::var_os(k).is_some()) {
        return true;
    }
    // The count `fork` trusts: read from a verified procfs.
    if !matches!(super::fork::thread_count(), Ok(1)) {
        return false;
    }
    for k in keys {
        // SAFETY: `remove_var` is unsound only while another thread may read or write the
        // environment. This process has one thread — this one (counted just above, from
        // the kernel's list) — and no other can appear before the loop ends: only this
        // thread could start one, and it is here. (A `CLONE_VM` child of this crate runs
        // only while this thread waits for its `execve`, never during this loop.)
        unsafe { std::env::remove_var(k) };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigset_refuses_bad_numbers() {
        assert_eq!(SigSet::new(&[0]).err(), Some(libc::EINVAL));
        assert_eq!(SigSet::new(&[1000]).err(), Some(libc::EINVAL));
        assert!(SigSet::new(&[libc::SIGUSR1]).is_ok());
    }

    #[test]
    fn take_refuses_what_was_not_inherited() {
        use std::os::fd::AsRawFd;
        // `InheritRight` is process-wide; tests in this binary that build an inheriting
        // upgrader may hold it, so exercise the checks only when it is free.
        let Some(right) = InheritRight::acquire() else {
            return;
        };
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let (fd, why, right) = right.take(&[r.as_raw_fd()], None).unwrap_err();
        assert_eq!((fd, why), (r.as_raw_fd(), Refused::NotInherited));
        let (_, why, right) = right.take(&[], Some(1)).unwrap_err();
        assert_eq!(why, Refused::NotOpen);
        let (_, why, right) = right.take(&[999_999], None).unwrap_err();
        assert_eq!(why, Refused::NotOpen);
        right.release();
        drop((r, w));
    }
}
