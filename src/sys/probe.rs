//! Run-time capability probes, each made once and cached in an atomic.
//!
//! Nothing here is decided at build time: the kernel and the C library that run the binary
//! are the ones that count.

use std::ffi::CStr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use libc::c_int;

const UNKNOWN: u8 = 0;
const YES: u8 = 1;
const NO: u8 = 2;

fn cached(cell: &AtomicU8, probe: impl FnOnce() -> bool) -> bool {
    match cell.load(Ordering::Relaxed) {
        YES => true,
        NO => false,
        _ => {
            let ok = probe();
            cell.store(if ok { YES } else { NO }, Ordering::Relaxed);
            ok
        }
    }
}

static PIDFD_OPEN: AtomicU8 = AtomicU8::new(UNKNOWN);
static CLONE_PIDFD: AtomicU8 = AtomicU8::new(UNKNOWN);
static CLONE3: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether `clone3` with `CLONE_CLEAR_SIGHAND | CLONE_PIDFD` is known to work (Linux 5.5+,
/// not filtered by seccomp, not under an emulator). Optimistic until refused.
pub(crate) fn clone3() -> bool {
    CLONE3.load(Ordering::Relaxed) != NO
}

/// Records that `clone3` (or one of its flags) is refused here.
pub(crate) fn clone3_failed() {
    CLONE3.store(NO, Ordering::Relaxed);
}

/// Whether `pidfd_open(2)` works here (Linux 5.3+, not filtered by seccomp).
pub(crate) fn pidfd_open() -> bool {
    cached(&PIDFD_OPEN, || match super::pidfd_open(super::getpid()) {
        Ok(_fd) => true,
        Err(_) => false,
    })
}

/// Whether `clone(CLONE_PIDFD)` is known to work. Starts optimistic when `pidfd_open`
/// works; [`clone_pidfd_failed`] turns it off after an `EINVAL`.
pub(crate) fn clone_pidfd() -> bool {
    cached(&CLONE_PIDFD, pidfd_open)
}

/// Records that the kernel refused `CLONE_PIDFD`.
pub(crate) fn clone_pidfd_failed() {
    CLONE_PIDFD.store(NO, Ordering::Relaxed);
}

/// A symbol of the C library looked up once with `dlsym`; 0 when absent.
struct Symbol {
    addr: AtomicUsize,
    name: &'static CStr,
}

const SYM_UNKNOWN: usize = usize::MAX;

impl Symbol {
    const fn new(name: &'static CStr) -> Symbol {
        Symbol {
            addr: AtomicUsize::new(SYM_UNKNOWN),
            name,
        }
    }

    fn get(&self) -> usize {
        let a = self.addr.load(Ordering::Relaxed);
        if a != SYM_UNKNOWN {
            return a;
        }
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, self.name.as_ptr()) } as usize;
        self.addr.store(p, Ordering::Relaxed);
        p
    }
}

static ADDCHDIR: Symbol = Symbol::new(c"posix_spawn_file_actions_addchdir_np");
static ADDCLOSEFROM: Symbol = Symbol::new(c"posix_spawn_file_actions_addclosefrom_np");

/// `posix_spawn_file_actions_addchdir_np`, when the C library has it.
pub(crate) type AddChdirFn =
    unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, *const libc::c_char) -> c_int;

/// `posix_spawn_file_actions_addclosefrom_np`, when the C library has it.
pub(crate) type AddClosefromFn =
    unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, c_int) -> c_int;

pub(crate) fn addchdir_np() -> Option<AddChdirFn> {
    match ADDCHDIR.get() {
        0 => None,
        // SAFETY: the symbol has this C signature in glibc (2.29+) and musl (1.1.24+).
        p => Some(unsafe { std::mem::transmute::<usize, AddChdirFn>(p) }),
    }
}

pub(crate) fn addclosefrom_np() -> Option<AddClosefromFn> {
    match ADDCLOSEFROM.get() {
        0 => None,
        // SAFETY: the symbol has this C signature in glibc (2.34+).
        p => Some(unsafe { std::mem::transmute::<usize, AddClosefromFn>(p) }),
    }
}
