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
    match forked_process_with_the_same_pid_spawns_with_its_own_report() {
        true => println!("test forked_process_with_the_same_pid_spawns_with_its_own_report ... ok"),
        false => println!(
            "test forked_process_with_the_same_pid_spawns_with_its_own_report ... skipped \
             (no pid namespaces here)"
        ),
    }
    println!("3 passed, 0 failed");
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

/// `unshare` of a new pid namespace, as root or in a new user namespace; whether it worked.
fn new_pid_namespace() -> bool {
    // SAFETY: unshare changes this single-threaded process's namespaces only.
    unsafe {
        libc::unshare(libc::CLONE_NEWPID) == 0
            || libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID) == 0
    }
}

/// Waits for `pid` and returns its exit code (-1 for a signal).
fn exit_code(pid: i32) -> i32 {
    match raw::waitpid(pid, WaitOptions::empty()).expect("waitpid") {
        Some((_, WaitStatus::Exited(c))) => c,
        _ => -1,
    }
}

/// As [`forked_process_spawns_with_its_own_report`], between two processes that both are
/// pid 1 (each the first process of its own pid namespace): the report memory must not be
/// told apart by pid. `false`: pid namespaces cannot be made here.
fn forked_process_with_the_same_pid_spawns_with_its_own_report() -> bool {
    // A makes a pid namespace in which its child B is pid 1. B maps its report memory and
    // forks D, which makes another namespace and forks C, pid 1 there too (C inherits B's
    // memory through D). B and C spawn at once; B's children stay in B's namespace.
    let a = match raw::fork().expect("fork") {
        ForkResult::Child => {
            if !new_pid_namespace() {
                // SAFETY: leave without running the parent's atexit/stdio teardown.
                unsafe { libc::_exit(77) }
            }
            let code = match raw::fork().expect("fork") {
                ForkResult::Child => same_pid_b(),
                ForkResult::Parent { child } => exit_code(child),
            };
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    match exit_code(a) {
        0 => true,
        77 => false,
        1 => panic!("wrong outcomes in the first pid-1 process"),
        2 => panic!("wrong outcomes in the second pid-1 process"),
        c => panic!("pid-namespace set-up failed ({c})"),
    }
}

/// Process B of [`forked_process_with_the_same_pid_spawns_with_its_own_report`]: its exit
/// code.
fn same_pid_b() -> i32 {
    if std::process::id() != 1 || spawn_mix(1) != 0 {
        return 3;
    }
    let d = match raw::fork().expect("fork") {
        ForkResult::Child => {
            let code = if !new_pid_namespace() {
                4
            } else {
                match raw::fork().expect("fork") {
                    ForkResult::Child => {
                        let code = match (std::process::id(), spawn_mix(300)) {
                            (1, 0) => 0,
                            (1, _) => 2,
                            _ => 3,
                        };
                        // SAFETY: leave without running the parent's atexit/stdio teardown.
                        unsafe { libc::_exit(code) }
                    }
                    ForkResult::Parent { child } => exit_code(child),
                }
            };
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    let wrong = spawn_mix(300);
    match (wrong, exit_code(d)) {
        (0, c) => c,
        _ => 1,
    }
}
