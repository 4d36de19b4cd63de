//! Wait-status decoding round trips: any status word decodes without panicking, and every
//! decoded status encodes back to a word that decodes to itself.
#![no_main]

#[path = "../props.rs"]
mod props;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|word: i32| props::wait_status(word));
