//! The hand-over environment parser (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`,
//! `FORKEXEC_UPGRADE_READY_FD`) against a model written differently: numbers compared as
//! digit strings, names checked by sorting. Pure functions only: no system call.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use forkexec::ErrorKind;
use forkexec::upgrade::{
    MAX_FD_NAME_LEN, MAX_LISTEN_FDS, is_valid_fd_name, parse_listen_env, parse_ready_fd,
};
use libfuzzer_sys::fuzz_target;

/// A decimal number of ASCII digits at most `max`, by comparing digit strings.
fn model_num(s: &[u8], max: u64) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let first = s.iter().position(|&c| c != b'0').unwrap_or(s.len());
    let t = &s[first..];
    let m = max.to_string();
    if t.len() > m.len() || (t.len() == m.len() && t > m.as_bytes()) {
        return None;
    }
    Some(if t.is_empty() {
        0
    } else {
        std::str::from_utf8(t).unwrap().parse().unwrap()
    })
}

fn model_name_ok(n: &[u8]) -> bool {
    (1..=MAX_FD_NAME_LEN).contains(&n.len())
        && n.iter().all(|&c| (0x20..0x7f).contains(&c) && c != b':')
}

/// `Some(list)` for success, `None` for an error.
fn model(
    pid: Option<&[u8]>,
    fds: Option<&[u8]>,
    names: Option<&[u8]>,
    my_pid: i32,
) -> Option<Vec<(String, i32)>> {
    let Some(pid) = pid else { return Some(vec![]) };
    let pid = model_num(pid, i32::MAX as u64)?;
    if pid == 0 {
        return None;
    }
    if pid != my_pid as u64 {
        return Some(vec![]);
    }
    let Some(fds) = fds else { return Some(vec![]) };
    let n = model_num(fds, MAX_LISTEN_FDS as u64)? as usize;
    if n == 0 {
        return Some(vec![]);
    }
    let list: Vec<Vec<u8>> = match names {
        None => (0..n)
            .map(|i| format!("LISTEN_FD_{}", 3 + i).into_bytes())
            .collect(),
        Some(b"") => return None,
        Some(b) => b.split(|&c| c == b':').map(<[u8]>::to_vec).collect(),
    };
    if list.len() != n || !list.iter().all(|x| model_name_ok(x)) {
        return None;
    }
    let mut sorted = list.clone();
    sorted.sort();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    Some(
        list.into_iter()
            .enumerate()
            .map(|(i, x)| (String::from_utf8(x).unwrap(), 3 + i as i32))
            .collect(),
    )
}

fn os(b: Option<&[u8]>) -> Option<&OsStr> {
    b.map(OsStr::from_bytes)
}

fn model_ready(v: Option<&[u8]>, listen: &[(String, i32)]) -> Option<Option<i32>> {
    let Some(v) = v else { return Some(None) };
    let fd = model_num(v, i32::MAX as u64)? as i32;
    if fd < 3 || listen.iter().any(|(_, f)| *f == fd) {
        return None;
    }
    Some(Some(fd))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.split(|&b| b == 1);
    let mut field = |bit: u8| {
        let p = parts.next().unwrap_or(b"");
        (flags & (1 << bit) != 0).then_some(p)
    };
    let (pid, fds, names, ready) = (field(0), field(1), field(2), field(3));
    // Mostly aim at this process (the interesting path), sometimes at another.
    let my_pid = match (
        flags & 0x10 != 0,
        pid.and_then(|p| model_num(p, i32::MAX as u64)),
    ) {
        (true, Some(p)) if p > 0 => p as i32,
        _ => 4242,
    };

    let got = parse_listen_env(os(pid), os(fds), os(names), my_pid);
    let want = model(pid, fds, names, my_pid);
    let listen = match (got, want) {
        (Ok(g), Some(w)) => {
            assert_eq!(g, w);
            g
        }
        (Err(e), None) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().len() < 512, "unbounded message: {e}");
            Vec::new()
        }
        (g, w) => panic!("parser {g:?} vs model {w:?} for {pid:?} {fds:?} {names:?} {my_pid}"),
    };
    match (
        parse_ready_fd(os(ready), &listen),
        model_ready(ready, &listen),
    ) {
        (Ok(g), Some(w)) => assert_eq!(g, w),
        (Err(e), None) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
        (g, w) => panic!("ready fd {g:?} vs model {w:?} for {ready:?}"),
    }
    if let Some(n) = names {
        if let Ok(s) = std::str::from_utf8(n) {
            assert_eq!(is_valid_fd_name(s), model_name_ok(n));
        }
    }
});
