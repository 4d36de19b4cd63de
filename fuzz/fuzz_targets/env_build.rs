//! argv/envp building against a simple model: NUL anywhere or `=` in a key is an
//! InvalidInput error, anything else round-trips; merge_env keeps the last value of a key.
#![no_main]

#[path = "../props.rs"]
mod props;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| props::env_build(data));
