//! Wait-status decoding round trips: any status word decodes without panicking, and every
//! decoded status encodes back to a word that decodes to itself.
#![no_main]

use forkexec::raw::WaitStatus;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|word: i32| {
    let s = WaitStatus::from_raw(word);
    assert_eq!(WaitStatus::from_raw(s.to_raw()), s);
    if let Some(s2) = WaitStatus::from_siginfo(word & 7, word >> 3) {
        let _ = s2.to_raw();
    }
});
