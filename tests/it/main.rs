//! Most integration tests, in one binary (one link instead of one per file): a module per
//! subject. The tests of one binary are serialised by `common::start`, so the fd and child
//! snapshots it takes are exact.
//!
//! Some tests have binaries of their own, because they must run in a process of their
//! own: `alloc` (it installs a `#[global_allocator]`), `fork_single_thread` (`harness =
//! false`: a process with one thread), `eintr` and `signals` (they change signal
//! dispositions and timers), `cmd_env` (it changes the environment), `upgrade` (it makes
//! the process a child subreaper, so orphans of other tests would become its children),
//! and `agent`.

#[path = "../common/mod.rs"]
mod common;

mod architecture;
mod attrs;
mod bad_input;
mod cmd;
mod exhaustion;
mod faults;
mod fuzz_regressions;
mod lookpath;
mod path_search;
mod process;
mod raw;
mod status_writers;
mod strategies;
mod stress;
