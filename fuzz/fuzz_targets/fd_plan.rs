//! The fd planner's property: applying the planned ops to a model fd table moves every
//! source to its target (cycles and duplicates included), never reads a clobbered source,
//! never touches an unnamed fd 0-2, and leaves no temporary behind; a number that cannot
//! be an fd (negative, or at or above `FD_LIMIT`) is an `InvalidInput` error, never a
//! panic or an overflow.
#![no_main]

#[path = "../props.rs"]
mod props;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| props::fd_plan(data));
