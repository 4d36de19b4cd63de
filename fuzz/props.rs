//! The properties the fuzz targets check, one function per target. Shared, word for word,
//! by `fuzz/fuzz_targets/*.rs` (libFuzzer drives them) and `tests/fuzz_regressions.rs`
//! (`cargo test` replays every saved input through them). No system calls.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use forkexec::ErrorKind;
use forkexec::plan::{FdOpKind, FdTarget, plan_fds};
use forkexec::raw::{CStringArray, WaitStatus, merge_env};

// ---- fuzz/fuzz_targets/fd_plan.rs ------------------------------------------------------
pub fn fd_plan(data: &[u8]) {
    // Each byte is one child fd: 0xff = Close, 0xfe = Inherit, else Fd(byte % 24).
    let targets: Vec<FdTarget> = data
        .iter()
        .take(40)
        .map(|&b| match b {
            0xff => FdTarget::Close,
            0xfe => FdTarget::Inherit,
            b => FdTarget::Fd((b % 24) as i32),
        })
        .collect();
    // Model: every fd 0..64 is open on object id = fd.
    let mut table: BTreeMap<i32, i32> = (0..64).map(|fd| (fd, fd)).collect();
    let start = table.clone();
    let ops = plan_fds(&targets);
    let mut temps = Vec::new();
    for op in &ops {
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
    for t in temps {
        assert!(t >= targets.len() as i32);
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
}

// ---- fuzz/fuzz_targets/wait_status.rs --------------------------------------------------
pub fn wait_status(word: i32) {
    let s = WaitStatus::from_raw(word);
    assert_eq!(WaitStatus::from_raw(s.to_raw()), s);
    if let Some(s2) = WaitStatus::from_siginfo(word & 7, word >> 3) {
        let _ = s2.to_raw();
    }
}
