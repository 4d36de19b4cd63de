//! Most integration tests, in one binary (one link instead of one per file): a module per
//! subject. The tests of one binary are serialised by `common::start`, so the fd and child
//! snapshots it takes are exact.
//!
//! Some tests have binaries of their own, because they must run in a process of their
//! own: `alloc` (it installs a `#[global_allocator]`), `fork_single_thread` (`harness =
//! false`: a process with one thread), `eintr` and `signals` (they change signal
//! dispositions and timers), `cmd_env` (it changes the environment), `upgrade` (it makes
//! the process a child subreaper, so orphans of other tests would become its children),
//! `stress` (it measures spawning under load, and `fork` costs more in a process that
//! other tests have grown: one caught panic with `RUST_BACKTRACE=1` makes std load and keep
//! this binary's debug info, ~70 MiB, and the storm's Fork round then took 2.7 times as
//! long), `old_kernel` (`harness = false`: a seccomp filter for the whole process, set
//! before any thread exists). `agent` changes no process-wide state and could be a module
//! here too.
//!
//! A test that re-runs this binary to run a helper in a fresh process names it by its
//! path here (`module::name`): `common::test_path` finds it.

#[path = "../common/mod.rs"]
mod common;

mod architecture;
mod attrs;
mod bad_input;
mod cmd;
mod exhaustion;
mod faults;
mod fixtures;
mod fuzz_regressions;
mod lookpath;
mod path_search;
mod process;
mod raw;
mod status_writers;
mod strategies;
