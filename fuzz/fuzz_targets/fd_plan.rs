//! The fd planner's property: applying the planned ops to a model fd table moves every
//! source to its target (cycles and duplicates included), never reads a clobbered source,
//! and leaves no temporary behind.
#![no_main]

#[path = "../props.rs"]
mod props;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| props::fd_plan(data));
