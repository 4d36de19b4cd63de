//! A repeated start of one `Cmd` makes no heap allocation in the parent when stdio is
//! null or inherited, and only its output buffers when output is captured. Proved with a
//! counting global allocator (a count, not a time). Own binary: it replaces the allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use forkexec::raw::{ExecPlan, WaitOptions, fork_exec, waitpid};
use forkexec::{Cmd, Stdio};

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counters are const thread-locals without
// destructors, so touching them never allocates or recurses.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ON.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: forwarded.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Heap allocations made by this thread while running `f`.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    ON.with(|o| o.set(true));
    f();
    ON.with(|o| o.set(false));
    COUNT.with(Cell::get)
}

#[test]
fn repeated_status_allocates_nothing() {
    let _g = common::start("repeated_status_allocates_nothing", 60);
    for s in common::STRATEGIES {
        for stdio in [Stdio::null(), Stdio::inherit()] {
            let mut cmd = Cmd::new("true");
            cmd.strategy(s)
                .stdin(stdio.clone())
                .stdout(stdio.clone())
                .stderr(stdio.clone());
            // The first start prepares argv/envp and resolves the path.
            assert!(cmd.status().unwrap().success());
            let n = allocations(|| {
                for _ in 0..20 {
                    assert!(cmd.status().unwrap().success());
                }
            });
            assert_eq!(
                n, 0,
                "{s:?} {stdio:?}: {n} allocations in 20 repeated starts"
            );
            // The same through start() and wait(): a Child with its pidfd.
            let n = allocations(|| {
                for _ in 0..20 {
                    let mut child = cmd.start().unwrap();
                    assert!(child.wait().unwrap().success());
                }
            });
            assert_eq!(
                n, 0,
                "{s:?} {stdio:?}: {n} allocations in 20 start() + wait()"
            );
        }
    }
}

#[test]
fn repeated_fork_exec_allocates_nothing() {
    let _g = common::start("repeated_fork_exec_allocates_nothing", 60);
    let plan = ExecPlan::new("/bin/true", ["true"]).unwrap();
    for s in common::STRATEGIES {
        let n = allocations(|| {
            for _ in 0..20 {
                let c = fork_exec(&plan, &[], s).unwrap();
                waitpid(c.pid, WaitOptions::empty()).unwrap();
            }
        });
        assert_eq!(n, 0, "{s:?}: {n} allocations in 20 spawns");
    }
}

#[test]
fn output_allocates_only_its_buffers() {
    let _g = common::start("output_allocates_only_its_buffers", 60);
    for s in common::STRATEGIES {
        let mut cmd = Cmd::new("echo");
        cmd.arg("hello").strategy(s);
        assert_eq!(cmd.output().unwrap(), b"hello\n");
        let mut out = Vec::new();
        let n = allocations(|| out = cmd.output().unwrap());
        assert_eq!(out, b"hello\n");
        // One buffer for stdout, of its size; nothing for the empty stderr, per argument or
        // per environment variable.
        assert_eq!(n, 1, "{s:?}: {n} allocations for one output()");
        // A child that writes nothing costs nothing.
        let mut quiet = Cmd::new("true");
        quiet.strategy(s);
        assert!(quiet.output().unwrap().is_empty());
        let n = allocations(|| assert!(quiet.output().unwrap().is_empty()));
        assert_eq!(n, 0, "{s:?}: {n} allocations for an empty output()");
    }
}
