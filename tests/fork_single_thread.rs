//! `raw::fork()` in a process that really has one thread (no test harness: `harness =
//! false`), where the child may allocate and format freely.

use std::io::{Read, Write};

use forkexec::raw::{self, ForkResult, WaitOptions, WaitStatus};

fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads: line")
}

fn main() {
    assert_eq!(thread_count(), 1, "the process must be single-threaded");
    let (r, w) = raw::pipe().expect("pipe");
    let parent_pid = std::process::id();
    match raw::fork().expect("fork in a single-threaded process") {
        ForkResult::Child => {
            drop(r);
            // Allocation and formatting are fine here: no other thread held a lock.
            let msg = format!(
                "child {} of {} says {}",
                std::process::id(),
                std::os::unix::process::parent_id(),
                (0..3)
                    .map(|_| String::from("hello"))
                    .collect::<Vec<_>>()
                    .join("-")
            );
            let ok = std::fs::File::from(w).write_all(msg.as_bytes()).is_ok();
            // SAFETY: leave without running the parent's atexit/stdio teardown.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut got = String::new();
            std::fs::File::from(r)
                .read_to_string(&mut got)
                .expect("read from the child");
            let (pid, status) = raw::waitpid(child, WaitOptions::empty())
                .expect("waitpid")
                .expect("status");
            assert_eq!(pid, child);
            assert_eq!(status, WaitStatus::Exited(0));
            assert_eq!(
                got,
                format!("child {child} of {parent_pid} says hello-hello-hello")
            );
            // Still one thread, and no child left.
            assert_eq!(thread_count(), 1);
            let err = raw::waitpid(-1, WaitOptions::NOHANG).unwrap_err();
            assert_eq!(err.errno(), Some(libc::ECHILD));
        }
    }
    println!("test fork_in_single_threaded_process ... ok");
    forked_process_spawns_with_its_own_report();
    println!("test forked_process_spawns_with_its_own_report ... ok");
    println!("2 passed, 0 failed");
}

/// Spawns alternately a missing program and `/bin/true` with the Fork strategy, `n` times
/// each; the number of wrong outcomes (a missing program reported as started, or the
/// reverse).
fn spawn_mix(n: usize) -> usize {
    let ok = raw::ExecPlan::new("/bin/true", ["true"]).expect("plan");
    let missing = raw::ExecPlan::new("/no/such/program/here", ["x"]).expect("plan");
    let mut wrong = 0;
    for _ in 0..n {
        match raw::fork_exec(&missing, &[], raw::Strategy::Fork) {
            Err(e) if e.kind() == forkexec::ErrorKind::NotFound => {}
            Err(_) => wrong += 1,
            Ok(s) => {
                wrong += 1;
                let _ = raw::waitpid(s.pid, WaitOptions::empty());
            }
        }
        match raw::fork_exec(&ok, &[], raw::Strategy::Fork) {
            Ok(s) => {
                let st = raw::waitpid(s.pid, WaitOptions::empty()).expect("waitpid");
                if st.map(|(_, st)| st) != Some(WaitStatus::Exited(0)) {
                    wrong += 1;
                }
            }
            Err(_) => wrong += 1,
        }
    }
    wrong
}

/// The Fork strategy's children report exec failures through memory shared with the
/// spawning thread. A process forked from one that spawned inherits that memory (still
/// shared): spawning in both at once must still give each its own children's reports.
fn forked_process_spawns_with_its_own_report() {
    // The parent's thread maps its report memory here.
    assert_eq!(spawn_mix(1), 0);
    match raw::fork().expect("fork in a single-threaded process") {
        ForkResult::Child => {
            let wrong = spawn_mix(300);
            // SAFETY: leave without running the parent's atexit/stdio teardown.
            unsafe { libc::_exit(if wrong == 0 { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            let wrong = spawn_mix(300);
            let (_, status) = raw::waitpid(child, WaitOptions::empty())
                .expect("waitpid")
                .expect("status");
            assert_eq!(wrong, 0, "wrong outcomes in the parent");
            assert_eq!(status, WaitStatus::Exited(0), "wrong outcomes in the child");
        }
    }
}
