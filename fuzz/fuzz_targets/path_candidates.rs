//! PATH splitting and candidate order against a model: one candidate per PATH entry, in
//! order, each ending in the name; an empty entry means the current directory.
#![no_main]

#[path = "../props.rs"]
mod props;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| props::path_candidates(data));
