//! [`Resource`]: the limits a child can be started with (`setrlimit(2)`).

use std::fmt;

/// A resource whose limit a child can be given ([`Cmd::rlimit`](crate::Cmd::rlimit)), as
/// `setrlimit(2)` names them.
///
/// # Examples
/// ```
/// use forkexec::{Cmd, Resource};
/// let out = Cmd::new("sh").args(["-c", "ulimit -n"]).rlimit(Resource::NOFILE, 64, 64).output()?;
/// assert_eq!(out, b"64\n");
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `setrlimit(2)`, `prlimit(2)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias("RLIMIT_NOFILE", "setrlimit", "ulimit"))]
pub struct Resource(u32);

macro_rules! resources {
    ($($name:ident = $c:ident, $text:literal;)*) => {
        impl Resource {
            $(
                #[doc = concat!("`", stringify!($c), "`: ", $text, ".")]
                pub const $name: Resource = Resource(libc::$c as u32);
            )*
        }

        fn name(r: u32) -> Option<&'static str> {
            match r {
                $(x if x == libc::$c as u32 => Some(stringify!($name)),)*
                _ => None,
            }
        }
    };
}

resources! {
    CPU = RLIMIT_CPU, "CPU time in seconds";
    FSIZE = RLIMIT_FSIZE, "largest file the process may create, in bytes";
    DATA = RLIMIT_DATA, "data segment size, in bytes";
    STACK = RLIMIT_STACK, "main thread's stack size, in bytes";
    CORE = RLIMIT_CORE, "largest core file, in bytes";
    RSS = RLIMIT_RSS, "resident set size (not enforced by Linux)";
    NPROC = RLIMIT_NPROC, "processes (threads) of the real user id";
    NOFILE = RLIMIT_NOFILE, "one more than the highest fd number";
    MEMLOCK = RLIMIT_MEMLOCK, "memory locked into RAM, in bytes";
    AS = RLIMIT_AS, "address space, in bytes";
    LOCKS = RLIMIT_LOCKS, "file locks";
    SIGPENDING = RLIMIT_SIGPENDING, "queued signals";
    MSGQUEUE = RLIMIT_MSGQUEUE, "bytes in POSIX message queues";
    NICE = RLIMIT_NICE, "ceiling of the nice value (20 - limit)";
    RTPRIO = RLIMIT_RTPRIO, "ceiling of the real-time priority";
    RTTIME = RLIMIT_RTTIME, "real-time CPU time without a blocking call, in microseconds";
}

impl Resource {
    /// No limit: `RLIM_INFINITY`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Resource::INFINITY, u64::MAX);
    /// ```
    pub const INFINITY: u64 = libc::RLIM64_INFINITY;

    /// The `RLIMIT_*` number.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Resource::NOFILE.as_raw(), libc::RLIMIT_NOFILE as u32);
    /// ```
    pub const fn as_raw(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match name(self.0) {
            Some(n) => write!(f, "Resource::{n}"),
            None => write!(f, "Resource({})", self.0),
        }
    }
}
