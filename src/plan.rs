//! The file-descriptor planner: which `dup2`/`close` steps put every requested fd at its
//! child number without clobbering a source that a later step still needs.
//!
//! The planner is pure (no system call) and runs in the parent. Its output is executed by
//! the child side of the `Fork` and `Vfork` strategies, or translated into
//! `posix_spawn_file_actions` by the `PosixSpawn` strategy. It is public so that tests and
//! fuzzers can check its property: applying the ops moves every source to its target,
//! cycles included.
//!
//! # Examples
//! ```
//! use forkexec::plan::{plan_fds, FdTarget, FdOp, FdOpKind};
//! // child fd 0 <- parent fd 1, child fd 1 <- parent fd 0: a swap needs a temporary.
//! let ops = plan_fds(&[FdTarget::Fd(1), FdTarget::Fd(0)]);
//! assert_eq!(ops, vec![
//!     FdOp { kind: FdOpKind::DupCloexec, src: 0, dst: 2 },
//!     FdOp { kind: FdOpKind::Dup, src: 1, dst: 0 },
//!     FdOp { kind: FdOpKind::Dup, src: 2, dst: 1 },
//!     FdOp { kind: FdOpKind::Close, src: 2, dst: 2 },
//! ]);
//! ```

use std::os::fd::RawFd;

/// What the child's fd number `i` (the index in the target list) should be.
///
/// # Examples
/// ```
/// use forkexec::plan::{plan_fds, FdOp, FdOpKind, FdTarget};
/// assert!(plan_fds(&[FdTarget::Inherit]).is_empty());
/// // Keeping fd 0 itself still takes a step: clearing its close-on-exec flag.
/// assert_eq!(plan_fds(&[FdTarget::Fd(0)]), [FdOp { kind: FdOpKind::Dup, src: 0, dst: 0 }]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FdTarget {
    /// Leave fd `i` as the parent has it (open or closed, flags untouched).
    Inherit,
    /// Close fd `i` in the child.
    Close,
    /// Make fd `i` a duplicate of the parent's fd (which may be `i` itself: then it is kept
    /// and its close-on-exec flag cleared).
    Fd(RawFd),
}

/// The kind of an [`FdOp`].
///
/// # Examples
/// ```
/// use forkexec::plan::{plan_fds, FdOpKind, FdTarget};
/// // Swapping fds 0 and 1: one source is saved in a temporary first, closed last.
/// let ops = plan_fds(&[FdTarget::Fd(1), FdTarget::Fd(0)]);
/// let kinds: Vec<FdOpKind> = ops.iter().map(|op| op.kind).collect();
/// assert_eq!(kinds, [FdOpKind::DupCloexec, FdOpKind::Dup, FdOpKind::Dup, FdOpKind::Close]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FdOpKind {
    /// `dup3(src, dst, 0)`; when `src == dst`, clear `FD_CLOEXEC` instead.
    Dup,
    /// `dup3(src, dst, O_CLOEXEC)`: a temporary copy out of harm's way.
    DupCloexec,
    /// `close(src)` (`dst` equals `src`).
    Close,
}

/// One step of the fd plan.
///
/// # Examples
/// ```
/// use forkexec::plan::{plan_fds, FdOp, FdOpKind, FdTarget};
/// let ops = plan_fds(&[FdTarget::Inherit, FdTarget::Inherit, FdTarget::Inherit, FdTarget::Fd(9)]);
/// assert_eq!(ops, [FdOp { kind: FdOpKind::Dup, src: 9, dst: 3 }]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct FdOp {
    /// What to do.
    pub kind: FdOpKind,
    /// The fd read (or closed).
    pub src: RawFd,
    /// The fd written.
    pub dst: RawFd,
}

/// A small-vector of ops: inline for the common case (up to a dozen fds), so a spawn of a
/// plan with few fds allocates nothing.
#[derive(Clone)]
pub(crate) struct OpBuf {
    inline: [FdOp; INLINE],
    len: usize,
    heap: Vec<FdOp>,
}

const INLINE: usize = 12;
const NOOP: FdOp = FdOp {
    kind: FdOpKind::Close,
    src: -1,
    dst: -1,
};

impl OpBuf {
    pub(crate) fn new() -> OpBuf {
        OpBuf {
            inline: [NOOP; INLINE],
            len: 0,
            heap: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, op: FdOp) {
        if self.heap.is_empty() && self.len < INLINE {
            self.inline[self.len] = op;
            self.len += 1;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline[..self.len]);
            }
            self.heap.push(op);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.heap.clear();
    }

    pub(crate) fn as_slice(&self) -> &[FdOp] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

/// Plans the fd moves for `targets` (index = child fd) and returns the ops in order.
///
/// Sources that a lower-numbered step would overwrite first are copied to temporaries
/// above every fd involved (close-on-exec, and closed again at the end), so no source is
/// ever clobbered, whatever the permutation.
///
/// # Examples
/// ```
/// use forkexec::plan::{plan_fds, FdTarget, FdOp, FdOpKind};
/// let ops = plan_fds(&[FdTarget::Inherit, FdTarget::Fd(7), FdTarget::Close]);
/// assert_eq!(ops, vec![
///     FdOp { kind: FdOpKind::Dup, src: 7, dst: 1 },
///     FdOp { kind: FdOpKind::Close, src: 2, dst: 2 },
/// ]);
/// ```
pub fn plan_fds(targets: &[FdTarget]) -> Vec<FdOp> {
    let mut buf = OpBuf::new();
    plan_into(targets, &mut buf);
    buf.as_slice().to_vec()
}

/// Whether step `s` changes fd `s` (so a later step must not read it).
fn clobbers(targets: &[FdTarget], s: usize) -> bool {
    match targets.get(s) {
        Some(FdTarget::Inherit) | None => false,
        Some(FdTarget::Fd(src)) => *src as usize != s,
        Some(FdTarget::Close) => true,
    }
}

pub(crate) fn plan_into(targets: &[FdTarget], out: &mut OpBuf) {
    let first = out.as_slice().len();
    // The common case needs no temporary: no source is overwritten before it is read
    // (stdio from fds above the targets, or kept in place).
    let conflict = targets.iter().enumerate().any(|(i, t)| {
        matches!(*t, FdTarget::Fd(s) if s >= 0 && (s as usize) < i && clobbers(targets, s as usize))
    });
    if conflict {
        // Pass 1: save every source that an earlier (lower-numbered) step would overwrite,
        // at temporaries above every fd involved.
        let mut next_tmp = targets.len() as RawFd;
        for t in targets {
            if let FdTarget::Fd(s) = *t {
                next_tmp = next_tmp.max(s.saturating_add(1));
            }
        }
        for (i, t) in targets.iter().enumerate() {
            let FdTarget::Fd(s) = *t else { continue };
            if s < 0 || (s as usize) >= i || !clobbers(targets, s as usize) {
                continue;
            }
            if out.as_slice()[first..].iter().any(|op| op.src == s) {
                continue;
            }
            out.push(FdOp {
                kind: FdOpKind::DupCloexec,
                src: s,
                dst: next_tmp,
            });
            next_tmp += 1;
        }
    }
    let temps = out.as_slice().len() - first;
    // Pass 2: put each target in place, reading from the temporary where one was made.
    for (i, t) in targets.iter().enumerate() {
        let dst = i as RawFd;
        match *t {
            FdTarget::Inherit => {}
            FdTarget::Close => out.push(FdOp {
                kind: FdOpKind::Close,
                src: dst,
                dst,
            }),
            FdTarget::Fd(s) if temps == 0 => out.push(FdOp {
                kind: FdOpKind::Dup,
                src: s,
                dst,
            }),
            FdTarget::Fd(s) => {
                let src = out.as_slice()[first..first + temps]
                    .iter()
                    .find(|op| op.src == s && (s as usize) < i)
                    .map_or(s, |op| op.dst);
                out.push(FdOp {
                    kind: FdOpKind::Dup,
                    src,
                    dst,
                });
            }
        }
    }
    // Pass 3: the temporaries go away (the child side would lose them at exec anyway;
    // posix_spawn's dup2 does not keep close-on-exec, so close them explicitly).
    for k in 0..temps {
        let tmp = out.as_slice()[first + k].dst;
        out.push(FdOp {
            kind: FdOpKind::Close,
            src: tmp,
            dst: tmp,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies ops to a model fd table (fd -> object id) and returns it.
    fn apply(
        ops: &[FdOp],
        mut table: std::collections::BTreeMap<RawFd, u32>,
    ) -> std::collections::BTreeMap<RawFd, u32> {
        for op in ops {
            match op.kind {
                FdOpKind::Dup | FdOpKind::DupCloexec => {
                    let obj = *table.get(&op.src).expect("source open");
                    table.insert(op.dst, obj);
                }
                FdOpKind::Close => {
                    table.remove(&op.src);
                }
            }
        }
        table
    }

    #[test]
    fn permutations_of_four() {
        let fds = [0, 1, 2, 3];
        // All 4^4 maps from child fd to parent fd among 0..4.
        for code in 0..256u32 {
            let targets: Vec<FdTarget> = (0..4)
                .map(|k| FdTarget::Fd(fds[((code >> (2 * k)) & 3) as usize]))
                .collect();
            let start: std::collections::BTreeMap<RawFd, u32> =
                (0..4).map(|fd| (fd, fd as u32 + 100)).collect();
            let ops = plan_fds(&targets);
            let end = apply(&ops, start.clone());
            for (i, t) in targets.iter().enumerate() {
                let FdTarget::Fd(s) = t else { unreachable!() };
                assert_eq!(end[&(i as RawFd)], start[s], "{targets:?} -> {ops:?}");
            }
            assert_eq!(end.len(), 4, "temporaries left behind: {ops:?}");
        }
    }

    #[test]
    fn inline_then_heap() {
        let targets: Vec<FdTarget> = (0..40).rev().map(FdTarget::Fd).collect();
        let ops = plan_fds(&targets);
        assert!(ops.len() > INLINE);
    }
}
