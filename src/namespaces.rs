//! [`Namespaces`]: the only `clone`/`unshare` flags a caller can ask for.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use crate::error::{Error, Result};

/// A set of Linux namespaces a child is created in (Go's `Cloneflags`) or moves into before
/// exec (Go's `Unshareflags`).
///
/// Only namespace flags can be expressed: a set is built from the constants below, so no
/// value can make the child share the parent's fd table (`CLONE_FILES`), cwd (`CLONE_FS`),
/// signal handlers (`CLONE_SIGHAND`) or thread group (`CLONE_THREAD`), set the exit signal
/// (the low byte of `clone`'s flags) or ask for thread-local storage or tid pointers.
/// [`Namespaces::from_bits`] checks a raw value from elsewhere (a config file, Go's
/// numbers) and refuses anything else with [`ErrorKind::InvalidInput`](crate::ErrorKind).
///
/// The time namespace is left out: `clone` cannot express it (its bit is the exit-signal
/// byte) and `unshare(CLONE_NEWTIME)` only moves the caller's later children, never the
/// program that is exec'd.
///
/// # Examples
/// ```
/// use forkexec::{ErrorKind, Namespaces};
/// let ns = Namespaces::UTS | Namespaces::IPC;
/// assert!(ns.contains(Namespaces::UTS));
/// assert_eq!(ns.bits(), libc::CLONE_NEWUTS | libc::CLONE_NEWIPC);
/// assert_eq!(format!("{ns:?}"), "Namespaces(UTS | IPC)");
/// assert_eq!(Namespaces::from_bits(libc::CLONE_NEWPID)?, Namespaces::PID);
/// let err = Namespaces::from_bits(libc::CLONE_NEWNS | libc::CLONE_FILES).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `namespaces(7)`, `clone(2)`, `unshare(2)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[doc(alias("Cloneflags", "Unshareflags", "CLONE_NEWNS"))]
pub struct Namespaces(i32);

const NAMES: [(Namespaces, &str); 7] = [
    (Namespaces::MOUNT, "MOUNT"),
    (Namespaces::UTS, "UTS"),
    (Namespaces::IPC, "IPC"),
    (Namespaces::USER, "USER"),
    (Namespaces::PID, "PID"),
    (Namespaces::NET, "NET"),
    (Namespaces::CGROUP, "CGROUP"),
];

impl Namespaces {
    /// No namespace: the child shares every namespace with the parent.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Namespaces::NONE.bits(), 0);
    /// ```
    pub const NONE: Namespaces = Namespaces(0);
    /// A mount namespace (`CLONE_NEWNS`). The child makes its whole mount tree private
    /// (`mount("/", MS_REC | MS_PRIVATE)`, as Go does) right after, so no mount it makes
    /// propagates back into the parent's namespace.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Namespaces::MOUNT.bits(), libc::CLONE_NEWNS);
    /// ```
    pub const MOUNT: Namespaces = Namespaces(libc::CLONE_NEWNS);
    /// A UTS namespace: host and domain name (`CLONE_NEWUTS`).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Namespaces::UTS.bits(), libc::CLONE_NEWUTS);
    /// ```
    pub const UTS: Namespaces = Namespaces(libc::CLONE_NEWUTS);
    /// An IPC namespace: System V IPC, POSIX message queues (`CLONE_NEWIPC`).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Namespaces::IPC.bits(), libc::CLONE_NEWIPC);
    /// ```
    pub const IPC: Namespaces = Namespaces(libc::CLONE_NEWIPC);
    /// A user namespace (`CLONE_NEWUSER`).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Namespaces::USER.bits(), libc::CLONE_NEWUSER);
    /// ```
    pub const USER: Namespaces = Namespaces(libc::CLONE_NEWUSER);
    /// A pid namespace (`CLONE_NEWPID`): with `clone`, the child is its pid 1; with
    /// `unshare`, only the program's own children enter it.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Namespaces::PID.bits(), libc::CLONE_NEWPID);
    /// ```
    pub const PID: Namespaces = Namespaces(libc::CLONE_NEWPID);
    /// A network namespace (`CLONE_NEWNET`).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Namespaces::NET.bits(), libc::CLONE_NEWNET);
    /// ```
    pub const NET: Namespaces = Namespaces(libc::CLONE_NEWNET);
    /// A cgroup namespace (`CLONE_NEWCGROUP`).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Namespaces::CGROUP.bits(), libc::CLONE_NEWCGROUP);
    /// ```
    pub const CGROUP: Namespaces = Namespaces(libc::CLONE_NEWCGROUP);

    const ALL: i32 = libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWCGROUP;

    /// The set for a raw flag value (`libc::CLONE_NEW*` bits).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind) for any bit that is not one of the
    /// namespaces above.
    ///
    /// # Examples
    /// ```
    /// use forkexec::Namespaces;
    /// assert_eq!(Namespaces::from_bits(0)?, Namespaces::NONE);
    /// assert!(Namespaces::from_bits(libc::CLONE_SIGHAND).is_err());
    /// assert!(Namespaces::from_bits(8).is_err()); // an exit signal, not a namespace
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn from_bits(bits: i32) -> Result<Namespaces> {
        if bits & !Self::ALL != 0 {
            return Err(Error::invalid(format!(
                "clone/unshare flags {bits:#x}: only namespace flags (CLONE_NEWNS, CLONE_NEWUTS, \
                 CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP) are \
                 accepted; {:#x} is not one",
                bits & !Self::ALL
            )));
        }
        Ok(Namespaces(bits))
    }

    /// The raw `CLONE_NEW*` bits.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(forkexec::Namespaces::NET.bits(), libc::CLONE_NEWNET);
    /// ```
    pub const fn bits(self) -> i32 {
        self.0
    }

    /// Whether the set is empty.
    ///
    /// # Examples
    /// ```
    /// use forkexec::Namespaces;
    /// assert!(Namespaces::NONE.is_empty());
    /// assert!(!Namespaces::PID.is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every namespace of `other` is in the set.
    ///
    /// # Examples
    /// ```
    /// use forkexec::Namespaces;
    /// assert!((Namespaces::PID | Namespaces::NET).contains(Namespaces::NET));
    /// assert!(!Namespaces::PID.contains(Namespaces::NET));
    /// ```
    pub const fn contains(self, other: Namespaces) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Namespaces {
    type Output = Namespaces;
    fn bitor(self, rhs: Namespaces) -> Namespaces {
        Namespaces(self.0 | rhs.0)
    }
}

impl BitOrAssign for Namespaces {
    fn bitor_assign(&mut self, rhs: Namespaces) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Namespaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Namespaces(")?;
        let mut first = true;
        for (ns, name) in NAMES {
            if self.contains(ns) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("NONE")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespace_bits() {
        for bad in [
            libc::CLONE_VM,
            libc::CLONE_FS,
            libc::CLONE_FILES,
            libc::CLONE_SIGHAND,
            libc::CLONE_THREAD | libc::CLONE_SIGHAND,
            libc::CLONE_SETTLS,
            libc::CLONE_CHILD_SETTID,
            libc::CLONE_CHILD_CLEARTID,
            libc::CLONE_PARENT,
            libc::CLONE_VFORK,
            libc::CLONE_PTRACE,
            libc::CLONE_SYSVSEM,
            libc::CLONE_PIDFD,
            libc::CLONE_NEWNS | 8,
            0x80, // CLONE_NEWTIME: the exit-signal byte for clone
            -1,
            i32::MIN,
        ] {
            assert!(Namespaces::from_bits(bad).is_err(), "{bad:#x} accepted");
        }
        let all = Namespaces::from_bits(Namespaces::ALL).unwrap();
        for (ns, _) in NAMES {
            assert!(all.contains(ns));
        }
        assert_eq!(
            format!("{all:?}"),
            "Namespaces(MOUNT | UTS | IPC | USER | PID | NET | CGROUP)"
        );
        assert_eq!(format!("{:?}", Namespaces::NONE), "Namespaces(NONE)");
    }
}
