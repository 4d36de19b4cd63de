//! Pipes, and taking a raw fd into ownership (public through [`raw`](crate::raw)).

use std::ops::BitOr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use libc::c_int;

use crate::error::{Error, Result, Stage};
use crate::sys;

/// Flags for [`pipe_with`]. `O_CLOEXEC` is always set and not listed.
///
/// # Examples
/// ```
/// use forkexec::raw::PipeFlags;
/// let f = PipeFlags::NONBLOCK | PipeFlags::DIRECT;
/// assert!(f.contains(PipeFlags::NONBLOCK));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PipeFlags(c_int);

impl PipeFlags {
    /// `O_NONBLOCK` on both ends.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{pipe_with, PipeFlags};
    /// let (r, _w) = pipe_with(PipeFlags::NONBLOCK)?;
    /// // The pipe is empty: the read fails at once instead of blocking.
    /// assert_eq!(rustix::io::read(&r, &mut [0u8; 1]), Err(rustix::io::Errno::AGAIN));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "O_NONBLOCK")]
    pub const NONBLOCK: PipeFlags = PipeFlags(libc::O_NONBLOCK);
    /// `O_DIRECT`: packet mode (each write is one packet; a read returns at most one).
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::{pipe_with, PipeFlags};
    /// let (r, w) = pipe_with(PipeFlags::DIRECT)?;
    /// rustix::io::write(&w, b"ab")?;
    /// rustix::io::write(&w, b"cd")?;
    /// assert_eq!(rustix::io::read(&r, &mut [0u8; 8])?, 2); // one packet, not 4 bytes
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "O_DIRECT")]
    pub const DIRECT: PipeFlags = PipeFlags(libc::O_DIRECT);

    /// No extra flag.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::PipeFlags;
    /// assert_eq!(PipeFlags::empty(), PipeFlags::default());
    /// assert!(!PipeFlags::empty().contains(PipeFlags::NONBLOCK));
    /// ```
    pub const fn empty() -> PipeFlags {
        PipeFlags(0)
    }

    /// Whether every flag of `other` is set.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::PipeFlags;
    /// let f = PipeFlags::NONBLOCK | PipeFlags::DIRECT;
    /// assert!(f.contains(PipeFlags::NONBLOCK) && f.contains(PipeFlags::empty()));
    /// assert!(!PipeFlags::NONBLOCK.contains(f));
    /// ```
    pub const fn contains(self, other: PipeFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for PipeFlags {
    type Output = PipeFlags;
    fn bitor(self, rhs: PipeFlags) -> PipeFlags {
        PipeFlags(self.0 | rhs.0)
    }
}

/// Creates a pipe, `(read end, write end)`, both close-on-exec.
///
/// # Errors
/// [`ErrorKind::Io`](crate::ErrorKind::Io) with `EMFILE`/`ENFILE` when the fd table is full.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// let (r, w) = forkexec::raw::pipe()?;
/// std::fs::File::from(w).write_all(b"hi")?;
/// let mut s = String::new();
/// std::fs::File::from(r).read_to_string(&mut s)?;
/// assert_eq!(s, "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// `pipe2(2)`.
#[doc(alias = "pipe2")]
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe_with(PipeFlags::empty())
}

/// Creates a pipe with extra `flags` (always close-on-exec).
///
/// # Errors
/// As [`pipe`]; [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the kernel rejects a flag.
///
/// # Examples
/// ```
/// use forkexec::raw::{pipe_with, PipeFlags};
/// let (r, _w) = pipe_with(PipeFlags::NONBLOCK)?;
/// let mut buf = [0u8; 1];
/// let e = rustix::io::read(&r, &mut buf).unwrap_err();
/// assert_eq!(e, rustix::io::Errno::AGAIN);
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `pipe2(2)`.
#[doc(alias = "pipe2")]
pub fn pipe_with(flags: PipeFlags) -> Result<(OwnedFd, OwnedFd)> {
    sys::pipe2(flags.0).map_err(|e| Error::os(e).with_stage(Stage::Pipe))
}

/// Takes a raw fd number the caller vouches for into an [`OwnedFd`] after checking it is
/// open.
///
/// # Safety
/// `fd` must not be owned by anything else (it will be closed when the result drops).
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `fd` is negative or not open.
///
/// # Examples
/// ```
/// use std::os::fd::IntoRawFd;
/// let (r, _w) = forkexec::raw::pipe()?;
/// // SAFETY: we own the raw fd we just released.
/// let r = unsafe { forkexec::raw::owned_fd(r.into_raw_fd()) }?;
/// // SAFETY: 999_999 is not open, and not owned by anything.
/// assert!(unsafe { forkexec::raw::owned_fd(999_999) }.is_err());
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `fcntl(2)` (`F_GETFD`).
pub unsafe fn owned_fd(fd: RawFd) -> Result<OwnedFd> {
    if fd < 0 || sys::fd_flags(fd).is_err() {
        return Err(Error::invalid(format!("bad file descriptor {fd}")));
    }
    // SAFETY: open, and the caller vouches nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
