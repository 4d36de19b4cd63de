//! argv/envp building against a simple model: NUL anywhere or `=` in a key is an
//! InvalidInput error, anything else round-trips; merge_env keeps the last value of a key.
#![no_main]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use forkexec::ErrorKind;
use forkexec::raw::{CStringArray, merge_env};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
        k.is_empty() || k.as_bytes().contains(&b'=') || k.as_bytes().contains(&0) || v.as_bytes().contains(&0)
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
    match merge_env(Vec::<OsString>::new(), pairs.iter().map(|(k, v)| (*k, Some(*v)))) {
        Ok(merged) => {
            assert!(!any_bad);
            // Model: last value wins, keys unique.
            for (k, v) in &merged {
                let last = pairs.iter().rev().find(|(pk, _)| *pk == k.as_os_str()).unwrap();
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
});
