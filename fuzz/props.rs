//! The properties the fuzz targets check, one function per target. Shared, word for word,
//! by `fuzz/fuzz_targets/*.rs` (libFuzzer drives them) and `tests/it/fuzz_regressions.rs`
//! (`cargo test` replays every saved input through them). No system calls.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use forkexec::ErrorKind;
use forkexec::plan::{FD_LIMIT, FdOpKind, FdTarget, plan_fds};
use forkexec::raw::{CStringArray, WaitStatus, merge_env};

// ---- fuzz/fuzz_targets/fd_plan.rs ------------------------------------------------------
/// The source fd a fuzz byte stands for: small fds (most bytes), the highest possible fds,
/// and numbers that can never be fds (negative, at or above `FD_LIMIT`).
pub fn fd_plan_source(b: u8) -> i32 {
    match b {
        0xf0..=0xf7 => FD_LIMIT - 1 - i32::from(b - 0xf0),
        0xf8 => FD_LIMIT,
        0xf9 => i32::MAX,
        0xfa => i32::MAX - 1,
        0xfb => -1,
        0xfc => i32::MIN,
        0xfd => FD_LIMIT + 63,
        b => (b % 24) as i32,
    }
}

pub fn fd_plan(data: &[u8]) {
    // Each byte is one child fd: 0xff = Close, 0xfe = Inherit, else Fd(fd_plan_source(b)).
    let targets: Vec<FdTarget> = data
        .iter()
        .take(40)
        .map(|&b| match b {
            0xff => FdTarget::Close,
            0xfe => FdTarget::Inherit,
            b => FdTarget::Fd(fd_plan_source(b)),
        })
        .collect();
    let sources = || {
        targets.iter().filter_map(|t| match *t {
            FdTarget::Fd(s) => Some(s),
            _ => None,
        })
    };
    let impossible = sources().any(|s| !(0..FD_LIMIT).contains(&s));
    let huge = sources().any(|s| s >= 64);
    let ops = match plan_fds(&targets) {
        // A number that cannot be an fd is refused, never planned (and never a panic).
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{targets:?}: {e}");
            // Otherwise only the top of the fd range can leave no room for a temporary.
            assert!(impossible || huge, "{targets:?} refused: {e}");
            return;
        }
        Ok(_) if impossible => panic!("{targets:?}: an impossible fd was planned"),
        Ok(ops) => ops,
    };
    // Model: every fd 0..64 is open on object id = fd, and so is every huge source.
    let mut table: BTreeMap<i32, i32> = (0..64).map(|fd| (fd, fd)).collect();
    table.extend(sources().map(|s| (s, s)));
    let start = table.clone();
    let mut temps = Vec::new();
    for op in &ops {
        assert!(
            (0..FD_LIMIT).contains(&op.src) && (0..FD_LIMIT).contains(&op.dst),
            "{op:?}"
        );
        match op.kind {
            FdOpKind::Dup | FdOpKind::DupCloexec => {
                let obj = *table.get(&op.src).expect("source open");
                if op.kind == FdOpKind::DupCloexec {
                    temps.push(op.dst);
                }
                table.insert(op.dst, obj);
            }
            FdOpKind::Close => {
                table.remove(&op.src);
            }
        }
    }
    for (i, t) in targets.iter().enumerate() {
        let i = i as i32;
        match t {
            FdTarget::Fd(s) => assert_eq!(table.get(&i), start.get(s), "{targets:?} {ops:?}"),
            FdTarget::Close => assert_eq!(table.get(&i), None),
            FdTarget::Inherit => assert_eq!(table.get(&i), start.get(&i)),
        }
    }
    // The standard fds the plan does not name are the child's too: untouched.
    for fd in targets.len() as i32..3 {
        assert_eq!(table.get(&fd), start.get(&fd), "fd {fd} touched: {ops:?}");
    }
    for t in temps {
        assert!(t >= (targets.len() as i32).max(3));
        assert!(
            sources().all(|s| s < t),
            "temporary {t} below a source: {ops:?}"
        );
        assert!(!table.contains_key(&t), "temporary {t} left open: {ops:?}");
    }
}

// ---- fuzz/fuzz_targets/env_build.rs ----------------------------------------------------
pub fn env_build(data: &[u8]) {
    // Split into strings at 0x01; pairs alternate key, value.
    let parts: Vec<&[u8]> = data.split(|&b| b == 1).take(64).collect();
    match CStringArray::new(parts.iter().map(|p| OsStr::from_bytes(p))) {
        Ok(a) => {
            assert!(parts.iter().all(|p| !p.contains(&0)));
            let got: Vec<&[u8]> = a.iter().map(|c| c.to_bytes()).collect();
            assert_eq!(got, parts);
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(parts.iter().any(|p| p.contains(&0)));
        }
    }
    let pairs: Vec<(&OsStr, &OsStr)> = parts
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (OsStr::from_bytes(c[0]), OsStr::from_bytes(c[1])))
        .collect();
    let bad = |k: &OsStr, v: &OsStr| {
        k.is_empty()
            || k.as_bytes().contains(&b'=')
            || k.as_bytes().contains(&0)
            || v.as_bytes().contains(&0)
    };
    let any_bad = pairs.iter().any(|(k, v)| bad(k, v));
    match CStringArray::from_env(pairs.iter().copied()) {
        Ok(a) => {
            assert!(!any_bad);
            assert_eq!(a.len(), pairs.len());
        }
        Err(e) => {
            assert!(any_bad);
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }
    match merge_env(
        Vec::<OsString>::new(),
        pairs.iter().map(|(k, v)| (*k, Some(*v))),
    ) {
        Ok(merged) => {
            assert!(!any_bad);
            // Model: last value wins, keys unique.
            for (k, v) in &merged {
                let last = pairs
                    .iter()
                    .rev()
                    .find(|(pk, _)| *pk == k.as_os_str())
                    .unwrap();
                assert_eq!(last.1, v.as_os_str());
            }
            let mut keys: Vec<_> = merged.iter().map(|(k, _)| k.clone()).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), merged.len());
        }
        Err(e) => {
            assert!(any_bad);
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }
}

// ---- fuzz/fuzz_targets/path_candidates.rs ----------------------------------------------
pub fn path_candidates(data: &[u8]) {
    let (name, path) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"prog"[..], data),
    };
    if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
        return;
    }
    let c = forkexec::path_candidates(OsStr::from_bytes(name), Some(OsStr::from_bytes(path)));
    let entries = if path.is_empty() {
        0
    } else {
        path.split(|&b| b == b':').count()
    };
    assert_eq!(c.len(), entries);
    for cand in &c {
        assert!(cand.as_os_str().as_bytes().ends_with(name), "{cand:?}");
    }
    // Where the child searches itself, each `dir/name` it execs as written names the file
    // of Go's (cleaned) candidate: they differ at most in repeated slashes, which path
    // resolution ignores, and fit `execve`.
    if forkexec::searched_by_child(OsStr::from_bytes(name), OsStr::from_bytes(path)) {
        for (dir, cand) in path.split(|&b| b == b':').zip(&c) {
            let raw = [dir, b"/", name].concat();
            assert!(raw.len() < 4096, "{raw:?}");
            let mut squeezed = raw.clone();
            squeezed.dedup_by(|a, b| *a == b'/' && *b == b'/');
            assert_eq!(squeezed, cand.as_os_str().as_bytes(), "{raw:?}");
        }
    }
}

// ---- fuzz/fuzz_targets/wait_status.rs --------------------------------------------------
pub fn wait_status(word: i32) {
    let s = WaitStatus::from_raw(word);
    assert_eq!(WaitStatus::from_raw(s.to_raw()), s);
    if let Some(s2) = WaitStatus::from_siginfo(word & 7, word >> 3) {
        let _ = s2.to_raw();
    }
}
