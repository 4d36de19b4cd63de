//! The fd planner's property: applying the planned ops to a model fd table moves every
//! source to its target (cycles and duplicates included), never reads a clobbered source,
//! and leaves no temporary behind.
#![no_main]

use std::collections::BTreeMap;

use forkexec::plan::{FdOpKind, FdTarget, plan_fds};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
