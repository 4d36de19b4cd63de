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
//! // The temporary goes above 0-2: fd 2, not named here, is the child's too.
//! let ops = plan_fds(&[FdTarget::Fd(1), FdTarget::Fd(0)])?;
//! assert_eq!(ops, vec![
//!     FdOp { kind: FdOpKind::DupCloexec, src: 0, dst: 3 },
//!     FdOp { kind: FdOpKind::Dup, src: 1, dst: 0 },
//!     FdOp { kind: FdOpKind::Dup, src: 3, dst: 1 },
//!     FdOp { kind: FdOpKind::Close, src: 3, dst: 3 },
//! ]);
//! # Ok::<(), forkexec::Error>(())
//! ```

use std::os::fd::RawFd;

use crate::error::{Error, Result};

/// What the child's fd number `i` (the index in the target list) should be.
///
/// # Examples
/// ```
/// use forkexec::plan::{plan_fds, FdOp, FdOpKind, FdTarget};
/// assert!(plan_fds(&[FdTarget::Inherit])?.is_empty());
/// // Keeping fd 0 itself still takes a step: clearing its close-on-exec flag.
/// assert_eq!(plan_fds(&[FdTarget::Fd(0)])?, [FdOp { kind: FdOpKind::Dup, src: 0, dst: 0 }]);
/// # Ok::<(), forkexec::Error>(())
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
/// let ops = plan_fds(&[FdTarget::Fd(1), FdTarget::Fd(0)])?;
/// let kinds: Vec<FdOpKind> = ops.iter().map(|op| op.kind).collect();
/// assert_eq!(kinds, [FdOpKind::DupCloexec, FdOpKind::Dup, FdOpKind::Dup, FdOpKind::Close]);
/// # Ok::<(), forkexec::Error>(())
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
/// use FdTarget::{Fd, Inherit};
/// let ops = plan_fds(&[Inherit, Inherit, Inherit, Fd(9)])?;
/// assert_eq!(ops, [FdOp { kind: FdOpKind::Dup, src: 9, dst: 3 }]);
/// # Ok::<(), forkexec::Error>(())
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

    /// Drops every op after the first `n`.
    fn truncate(&mut self, n: usize) {
        if self.heap.is_empty() {
            self.len = self.len.min(n);
        } else {
            self.heap.truncate(n);
        }
    }

    pub(crate) fn as_slice(&self) -> &[FdOp] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

/// One more than the largest fd number Linux can ever hand out: `RLIMIT_NOFILE` is capped
/// by `fs.nr_open`, whose maximum (`sysctl_nr_open_max`) is `INT_MAX` rounded down to a
/// multiple of 64. No fd at or above this number can be open, or be made by `dup3`.
///
/// # Examples
/// ```
/// use forkexec::plan::{plan_fds, FdTarget, FD_LIMIT};
/// assert!(plan_fds(&[FdTarget::Fd(FD_LIMIT - 1)]).is_ok());
/// assert!(plan_fds(&[FdTarget::Fd(FD_LIMIT)]).is_err());
/// ```
pub const FD_LIMIT: RawFd = RawFd::MAX & !63;

/// Plans the fd moves for `targets` (index = child fd) and returns the ops in order.
///
/// Sources that a lower-numbered step would overwrite first are copied to temporaries
/// above every fd involved and above the standard fds 0-2 (close-on-exec, and closed
/// again at the end), so no source is ever clobbered, whatever the permutation, and no fd
/// the plan leaves alone is touched below that.
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when a source is not a
/// possible fd number (negative, or at least [`FD_LIMIT`]), when there are more than
/// [`FD_LIMIT`] targets, or when a temporary would have to be at or above [`FD_LIMIT`].
/// Nothing is planned then.
///
/// # Examples
/// ```
/// use forkexec::ErrorKind;
/// use forkexec::plan::{plan_fds, FdTarget, FdOp, FdOpKind};
/// let ops = plan_fds(&[FdTarget::Inherit, FdTarget::Fd(7), FdTarget::Close])?;
/// assert_eq!(ops, vec![
///     FdOp { kind: FdOpKind::Dup, src: 7, dst: 1 },
///     FdOp { kind: FdOpKind::Close, src: 2, dst: 2 },
/// ]);
/// let err = plan_fds(&[FdTarget::Fd(i32::MAX), FdTarget::Fd(0)]).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// # Ok::<(), forkexec::Error>(())
/// ```
pub fn plan_fds(targets: &[FdTarget]) -> Result<Vec<FdOp>> {
    let mut buf = OpBuf::new();
    try_plan_into(targets, &mut buf)?;
    Ok(buf.as_slice().to_vec())
}

/// Whether step `s` changes fd `s` (so a later step must not read it).
fn clobbers(targets: &[FdTarget], s: RawFd) -> bool {
    let Ok(at) = usize::try_from(s) else {
        return false;
    };
    match targets.get(at) {
        Some(FdTarget::Inherit) | None => false,
        Some(FdTarget::Fd(src)) => *src != s,
        Some(FdTarget::Close) => true,
    }
}

/// Whether the source `s` of child fd `i` must be saved before step `i`: an earlier step
/// (step `s`) overwrites it.
fn needs_saving(targets: &[FdTarget], i: usize, s: RawFd) -> bool {
    usize::try_from(s).is_ok_and(|at| at < i) && clobbers(targets, s)
}

/// [`plan_fds`] into `out` (appended after what it holds). On error `out` is left as it was.
pub(crate) fn try_plan_into(targets: &[FdTarget], out: &mut OpBuf) -> Result<()> {
    let first = out.as_slice().len();
    let r = plan_checked(targets, out);
    if r.is_err() {
        out.truncate(first);
    }
    r
}

fn plan_checked(targets: &[FdTarget], out: &mut OpBuf) -> Result<()> {
    let first = out.as_slice().len();
    // Every child fd number is an fd the child must be able to have.
    let count = match RawFd::try_from(targets.len()) {
        Ok(n) if n <= FD_LIMIT => n,
        _ => {
            return Err(Error::invalid(format!(
                "fd plan: {} child fds, more than the {FD_LIMIT} fds a process can have",
                targets.len()
            )));
        }
    };
    let mut max_src: Option<RawFd> = None;
    for (i, t) in targets.iter().enumerate() {
        if let FdTarget::Fd(s) = *t {
            if !(0..FD_LIMIT).contains(&s) {
                return Err(Error::invalid(format!(
                    "fd plan: child fd {i} from fd {s}, which cannot be an open fd \
                     (fds are 0..{FD_LIMIT})"
                )));
            }
            max_src = max_src.max(Some(s));
        }
    }
    // The common case needs no temporary: no source is overwritten before it is read
    // (stdio from fds above the targets, or kept in place).
    let conflict = targets
        .iter()
        .enumerate()
        .any(|(i, t)| matches!(*t, FdTarget::Fd(s) if needs_saving(targets, i, s)));
    if conflict {
        // Pass 1: save every source that an earlier (lower-numbered) step would overwrite,
        // at temporaries above every fd involved, and above 0-2 (which the child keeps even
        // when `targets` does not name them). All numbers are below FD_LIMIT here, so
        // `+ 1` cannot overflow; the temporaries' own range is checked.
        let mut next_tmp = count.max(3).max(max_src.map_or(0, |s| s + 1));
        for (i, t) in targets.iter().enumerate() {
            let FdTarget::Fd(s) = *t else { continue };
            if !needs_saving(targets, i, s) || out.as_slice()[first..].iter().any(|op| op.src == s)
            {
                continue;
            }
            if next_tmp >= FD_LIMIT {
                return Err(Error::invalid(format!(
                    "fd plan: no fd number below {FD_LIMIT} is free for a temporary copy of fd {s}"
                )));
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
    // `i < targets.len() <= FD_LIMIT`, so `dst` is exact.
    for (dst, t) in (0..count).zip(targets) {
        match *t {
            FdTarget::Inherit => {}
            FdTarget::Close => out.push(FdOp {
                kind: FdOpKind::Close,
                src: dst,
                dst,
            }),
            FdTarget::Fd(s) => {
                let src = out.as_slice()[first..first + temps]
                    .iter()
                    .find(|op| op.src == s && s < dst)
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
    Ok(())
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
            let ops = plan_fds(&targets).unwrap();
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
        let ops = plan_fds(&targets).unwrap();
        assert!(ops.len() > INLINE);
    }

    /// Plans `targets` and checks the result on a model fd table where every source (and
    /// 0-2) is open on its own object: each target gets its source, `Close` closes,
    /// `Inherit` and fds 0-2 not named keep what they had, and no temporary is left open.
    fn check(targets: &[FdTarget]) -> Result<Vec<FdOp>> {
        let ops = plan_fds(targets)?;
        let mut start: std::collections::BTreeMap<RawFd, u32> =
            (0..3).map(|fd| (fd, fd as u32 + 100)).collect();
        for t in targets {
            if let FdTarget::Fd(s) = *t {
                start.insert(s, s as u32 + 100);
            }
        }
        let end = apply(&ops, start.clone());
        for (i, t) in targets.iter().enumerate() {
            let i = i as RawFd;
            match *t {
                FdTarget::Fd(s) => assert_eq!(end.get(&i), start.get(&s), "{targets:?} {ops:?}"),
                FdTarget::Close => assert_eq!(end.get(&i), None, "{targets:?} {ops:?}"),
                FdTarget::Inherit => assert_eq!(end.get(&i), start.get(&i), "{targets:?}"),
            }
        }
        for fd in targets.len() as RawFd..3 {
            assert_eq!(end.get(&fd), start.get(&fd), "fd {fd} touched: {ops:?}");
        }
        for op in &ops {
            assert!((0..FD_LIMIT).contains(&op.src), "{op:?}");
            assert!((0..FD_LIMIT).contains(&op.dst), "{op:?}");
            if op.kind == FdOpKind::DupCloexec {
                assert!(op.dst >= 3 && op.dst as usize >= targets.len(), "{op:?}");
                assert!(!end.contains_key(&op.dst), "temporary left: {ops:?}");
            }
        }
        Ok(ops)
    }

    fn invalid(targets: &[FdTarget]) {
        match plan_fds(targets) {
            Err(e) => assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{targets:?}: {e}"),
            Ok(ops) => panic!("{targets:?} planned as {ops:?}"),
        }
    }

    #[test]
    fn huge_source_is_invalid_input_not_an_overflow() {
        // Used to overflow computing the temporary (debug panic, release wrap-around).
        invalid(&[FdTarget::Fd(i32::MAX), FdTarget::Fd(0)]);
        invalid(&[FdTarget::Fd(0), FdTarget::Fd(i32::MAX)]);
        invalid(&[FdTarget::Fd(FD_LIMIT), FdTarget::Fd(0)]);
        invalid(&[FdTarget::Fd(FD_LIMIT)]);
        invalid(&[FdTarget::Fd(-1)]);
        invalid(&[FdTarget::Close, FdTarget::Fd(i32::MIN), FdTarget::Fd(0)]);
        let e = plan_fds(&[FdTarget::Fd(i32::MAX), FdTarget::Fd(0)]).unwrap_err();
        assert!(
            e.to_string().contains("child fd 0 from fd 2147483647"),
            "{e}"
        );
    }

    #[test]
    fn largest_fds_plan_or_fail_cleanly() {
        let top = FD_LIMIT - 1;
        // No temporary needed: fine up to the very last fd.
        check(&[FdTarget::Fd(top)]).unwrap();
        check(&[FdTarget::Fd(0), FdTarget::Fd(top), FdTarget::Close]).unwrap();
        // A temporary above the last fd in use still fits...
        let ops = check(&[FdTarget::Fd(top - 1), FdTarget::Fd(0)]).unwrap();
        assert_eq!(
            ops[0],
            FdOp {
                kind: FdOpKind::DupCloexec,
                src: 0,
                dst: top
            }
        );
        // ...but not above the last possible fd: a typed error, nothing planned.
        invalid(&[FdTarget::Fd(top), FdTarget::Fd(0)]);
        invalid(&[FdTarget::Fd(top - 1), FdTarget::Fd(0), FdTarget::Fd(1)]);
    }

    #[test]
    fn mixes_of_small_and_huge_fds() {
        // Every map from child fds 0..4 to sources among 0..3 and the top few fds.
        let top = FD_LIMIT - 1;
        let srcs = [0, 1, 2, 3, top - 8, top - 1, top, FD_LIMIT, i32::MAX, -1];
        let n = srcs.len() as u32;
        for code in 0..n.pow(4) {
            let targets: Vec<FdTarget> = (0..4)
                .map(|k| FdTarget::Fd(srcs[(code / n.pow(k) % n) as usize]))
                .collect();
            let bad = targets
                .iter()
                .any(|t| matches!(*t, FdTarget::Fd(s) if !(0..FD_LIMIT).contains(&s)));
            match check(&targets) {
                Ok(_) => assert!(!bad, "{targets:?}"),
                Err(e) => assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{targets:?}"),
            }
            if bad {
                invalid(&targets);
            }
        }
    }

    #[test]
    fn temporaries_never_touch_stdio() {
        // A swap of 0 and 1 with fd 2 not named: fd 2 is the child's stderr and must stay.
        let ops = check(&[FdTarget::Fd(1), FdTarget::Fd(0)]).unwrap();
        assert!(ops.iter().all(|op| op.dst != 2 && op.src != 2), "{ops:?}");
        check(&[FdTarget::Fd(0)]).unwrap();
        check(&[FdTarget::Close, FdTarget::Fd(0)]).unwrap();
    }

    #[test]
    fn failed_plan_leaves_the_buffer_as_it_was() {
        let mut buf = OpBuf::new();
        try_plan_into(&[FdTarget::Fd(5)], &mut buf).unwrap();
        let before = buf.as_slice().to_vec();
        assert!(try_plan_into(&[FdTarget::Fd(FD_LIMIT - 1), FdTarget::Fd(0)], &mut buf).is_err());
        assert_eq!(buf.as_slice(), before);
        // The same once the ops have moved to the heap.
        let many: Vec<FdTarget> = (0..20).rev().map(FdTarget::Fd).collect();
        try_plan_into(&many, &mut buf).unwrap();
        let before = buf.as_slice().to_vec();
        assert!(before.len() > INLINE);
        assert!(try_plan_into(&[FdTarget::Fd(-3)], &mut buf).is_err());
        assert_eq!(buf.as_slice(), before);
    }
}
