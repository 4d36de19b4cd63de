//! PATH splitting and candidate order against a model: one candidate per PATH entry, in
//! order, each ending in the name; an empty entry means the current directory.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use forkexec::path_candidates;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (name, path) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"prog"[..], data),
    };
    if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
        return;
    }
    let c = path_candidates(OsStr::from_bytes(name), Some(OsStr::from_bytes(path)));
    let entries = if path.is_empty() { 0 } else { path.split(|&b| b == b':').count() };
    assert_eq!(c.len(), entries);
    for cand in &c {
        assert!(cand.as_os_str().as_bytes().ends_with(name), "{cand:?}");
    }
});
