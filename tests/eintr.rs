//! Signals in the parent: a SIGCHLD handler, SIGCHLD ignored, and a storm of SIGALRM
//! interrupting every blocking call (a handler installed without `SA_RESTART`, so the
//! kernel returns `EINTR` instead of restarting). Its own binary: it changes process-wide
//! signal dispositions and timers.

mod common;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::STRATEGIES;
use forkexec::raw::{self, ExecPlan, WaitOptions, WaitStatus};
use forkexec::{Cmd, ErrorKind, ProcAttr, Signal, Stage, Stdio, start_process};

fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

fn set_action(sig: i32, handler: libc::sighandler_t, flags: i32) -> libc::sigaction {
    // SAFETY: a zeroed sigaction is a valid value; both pointers are valid.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, &sa, &mut old), 0);
        old
    }
}

/// A signal disposition set for the length of a test: the one before is put back when
/// the guard drops, also when the test panics, so a failing test cannot leave the next
/// one with, say, `SIGCHLD` ignored.
struct Action {
    sig: i32,
    old: libc::sigaction,
}

impl Action {
    fn set(sig: i32, handler: libc::sighandler_t, flags: i32) -> Action {
        Action {
            sig,
            old: set_action(sig, handler, flags),
        }
    }
}

impl Drop for Action {
    fn drop(&mut self) {
        // SAFETY: `old` came from sigaction. No panic here: this runs while unwinding too.
        if unsafe { libc::sigaction(self.sig, &self.old, std::ptr::null_mut()) } != 0 {
            eprintln!("could not restore the action of signal {}", self.sig);
            std::process::abort();
        }
    }
}

/// The guard's own check: dropping an [`Action`] puts the old disposition back, on the
/// normal path and on a panic.
#[test]
fn action_guard_restores_on_panic() {
    let _g = common::start("action_guard_restores_on_panic", 60);
    let current = |sig| {
        // SAFETY: a null new action only reads the current one.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut sa), 0);
            sa.sa_sigaction
        }
    };
    let before = current(libc::SIGCHLD);
    assert_ne!(before, libc::SIG_IGN);
    let r = std::panic::catch_unwind(|| {
        let _a = Action::set(libc::SIGCHLD, libc::SIG_IGN, 0);
        assert_eq!(current(libc::SIGCHLD), libc::SIG_IGN);
        panic!("a failing check while SIGCHLD is ignored");
    });
    assert!(r.is_err());
    assert_eq!(current(libc::SIGCHLD), before, "SIGCHLD left ignored");
}

// ---------------------------------------------------------------------------------------
// SIGCHLD with a handler
// ---------------------------------------------------------------------------------------

static CHLD: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_chld(_: libc::c_int) {
    CHLD.fetch_add(1, Ordering::SeqCst);
}

/// Every wait API on every strategy, expecting `sh -c 'exit 3'`'s status.
fn all_waits_see_exit_3(label: &str) {
    for s in STRATEGIES {
        let ctx = format!("{label} {s:?}");
        let st = Cmd::new("/bin/sh")
            .args(["-c", "exit 3"])
            .strategy(s)
            .status()
            .unwrap_or_else(|e| panic!("{ctx}: Cmd::status: {e:?}"));
        assert_eq!(st.exit_code(), 3, "{ctx}: Cmd::status");

        let err = Cmd::new("/bin/sh")
            .args(["-c", "echo out; exit 3"])
            .strategy(s)
            .output()
            .expect_err("exit 3 is an error for output()");
        assert_eq!(err.kind(), ErrorKind::ExitStatus, "{ctx}: output: {err:?}");
        assert_eq!(err.state().map(|s| s.exit_code()), Some(3), "{ctx}");

        let attr = ProcAttr {
            strategy: s,
            ..ProcAttr::default()
        };
        let p = start_process("/bin/sh", ["sh", "-c", "sleep 0.05; exit 3"], &attr).unwrap();
        assert_eq!(p.wait().unwrap().exit_code(), 3, "{ctx}: Process::wait");
        assert_eq!(
            p.wait().unwrap_err().kind(),
            ErrorKind::ProcessDone,
            "{ctx}"
        );

        let p = start_process("/bin/sh", ["sh", "-c", "sleep 0.05; exit 3"], &attr).unwrap();
        let st = p
            .wait_timeout(Duration::from_secs(20))
            .unwrap()
            .expect("exited within 20 s");
        assert_eq!(st.exit_code(), 3, "{ctx}: Process::wait_timeout");

        let plan = ExecPlan::new("/bin/sh", ["sh", "-c", "exit 3"]).unwrap();
        let child = raw::fork_exec(&plan, &[], s).unwrap();
        let (pid, st) = raw::waitpid(child.pid, WaitOptions::empty())
            .unwrap()
            .unwrap();
        assert_eq!(
            (pid, st),
            (child.pid, WaitStatus::Exited(3)),
            "{ctx}: waitpid"
        );
    }
}

#[test]
fn sigchld_handler_does_not_disturb_waits() {
    let _g = common::start("sigchld_handler_does_not_disturb_waits", 120);
    for (flags, label) in [
        (libc::SA_RESTART, "SIGCHLD handler, SA_RESTART"),
        (0, "SIGCHLD handler, no SA_RESTART"),
    ] {
        let before = CHLD.load(Ordering::SeqCst);
        let action = Action::set(
            libc::SIGCHLD,
            on_chld as *const () as libc::sighandler_t,
            flags,
        );
        all_waits_see_exit_3(label);
        drop(action);
        let got = CHLD.load(Ordering::SeqCst) - before;
        assert!(got > 0, "{label}: the handler never ran");
        println!("{label}: {got} SIGCHLD handled while waiting");
    }
}

// ---------------------------------------------------------------------------------------
// SIGCHLD ignored
// ---------------------------------------------------------------------------------------

/// With `SIGCHLD` set to `SIG_IGN`, the kernel reaps every child as it exits and throws its
/// status away (POSIX: the children of such a process never become zombies; `wait` then
/// fails with `ECHILD`). No API can return a status that no longer exists, so the correct
/// behaviour — and what this test pins down — is:
///
/// - spawning works, and spawn failures are still typed (the report does not go through
///   the wait status);
/// - waiting blocks until the child really exits (it does not fail early while the child
///   runs), then returns `ErrorKind::Io` with `errno() == ECHILD` and stage `Wait`:
///   never a hang, never a made-up status;
/// - no zombie is left, and signalling the gone child is `ProcessDone`: once a wait has
///   returned `ECHILD`, the `Process` is done, and answers so without sending anything
///   (the kernel wakes the waiter before it releases the child, so a signal sent right
///   after could still seem to reach it; this test used to fail that way now and then).
///
/// Go documents this configuration as unsupported (its `Wait` returns the same
/// `wait: no child processes`); forkexec's contract is the typed error above.
#[test]
fn sigchld_ignored_gives_echild_not_a_hang() {
    let _g = common::start("sigchld_ignored_gives_echild_not_a_hang", 120);
    let ignored = Action::set(libc::SIGCHLD, libc::SIG_IGN, 0);
    let check_echild = |e: &forkexec::Error, ctx: &str| {
        assert_eq!(e.kind(), ErrorKind::Io, "{ctx}: {e:?}");
        assert_eq!(e.errno(), Some(libc::ECHILD), "{ctx}: {e:?}");
        assert_eq!(e.stage(), Some(Stage::Wait), "{ctx}: {e:?}");
    };
    let run_time = Duration::from_millis(150);
    for s in STRATEGIES {
        let ctx = format!("SIG_IGN {s:?}");
        // Spawn failures are still reported exactly.
        let err = Cmd::new("/no/such/program")
            .strategy(s)
            .status()
            .unwrap_err();
        assert_eq!(
            (err.kind(), err.stage()),
            (ErrorKind::NotFound, Some(Stage::Exec)),
            "{ctx}: {err:?}"
        );

        // Cmd::status: waits for the child, then ECHILD.
        let t0 = Instant::now();
        let err = Cmd::new("/bin/sh")
            .args(["-c", "sleep 0.15; exit 3"])
            .strategy(s)
            .status()
            .expect_err("the status is gone");
        check_echild(&err, &format!("{ctx}: Cmd::status"));
        assert!(
            t0.elapsed() >= run_time,
            "{ctx}: returned before the child exited"
        );

        // Cmd::output: the output is still all there; the status is not.
        let err = Cmd::new("/bin/sh")
            .args(["-c", "echo hi; exit 3"])
            .strategy(s)
            .output()
            .expect_err("the status is gone");
        check_echild(&err, &format!("{ctx}: Cmd::output"));

        // Process::wait, twice, and the other wait calls.
        let attr = ProcAttr {
            strategy: s,
            ..ProcAttr::default()
        };
        let p = start_process("/bin/sh", ["sh", "-c", "sleep 0.15; exit 3"], &attr).unwrap();
        assert!(
            p.try_wait().unwrap().is_none(),
            "{ctx}: running child reported done"
        );
        assert!(
            p.wait_timeout(Duration::from_millis(10)).unwrap().is_none(),
            "{ctx}: wait_timeout on a running child"
        );
        let t0 = Instant::now();
        check_echild(&p.wait().unwrap_err(), &format!("{ctx}: Process::wait"));
        assert!(
            t0.elapsed() >= run_time - Duration::from_millis(30),
            "{ctx}: Process::wait returned before the child exited"
        );
        check_echild(&p.wait().unwrap_err(), &format!("{ctx}: 2nd Process::wait"));
        check_echild(
            &p.wait_timeout(Duration::from_secs(5)).unwrap_err(),
            &format!("{ctx}: wait_timeout after exit"),
        );
        for _ in 0..2 {
            assert_eq!(
                p.signal(Signal::TERM).unwrap_err().kind(),
                ErrorKind::ProcessDone,
                "{ctx}: signal after exit"
            );
            assert_eq!(
                p.kill().unwrap_err().kind(),
                ErrorKind::ProcessDone,
                "{ctx}: kill after exit"
            );
            check_echild(
                &p.try_wait().unwrap_err(),
                &format!("{ctx}: try_wait after exit"),
            );
        }

        // The race itself, many times: signal at once after the wait that saw ECHILD.
        for k in 0..20 {
            let p = start_process("/bin/true", ["true"], &attr).unwrap();
            check_echild(&p.wait().unwrap_err(), &format!("{ctx}: wait #{k}"));
            let e = p.signal(Signal::TERM).unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::ProcessDone,
                "{ctx}: signal #{k}: {e:?}"
            );
        }

        // raw::waitpid: ECHILD as well.
        let plan = ExecPlan::new("/bin/sh", ["sh", "-c", "exit 3"]).unwrap();
        let child = raw::fork_exec(&plan, &[], s).unwrap();
        check_echild(
            &raw::waitpid(child.pid, WaitOptions::empty()).unwrap_err(),
            &format!("{ctx}: waitpid"),
        );
        // With SIGCHLD ignored the kernel releases an auto-reaped child a moment after it
        // wakes the waiter: give it that moment (bounded), then it must be gone.
        let gone = (0..2000).any(|_| {
            let empty = common::children().is_empty();
            if !empty {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            empty
        });
        assert!(gone, "{ctx}: zombie left");
    }
    drop(ignored);
    // And with SIGCHLD back to default, statuses are exact again.
    all_waits_see_exit_3("SIGCHLD restored");
}

// ---------------------------------------------------------------------------------------
// EINTR: a SIGALRM storm
// ---------------------------------------------------------------------------------------

/// The thread whose blocking calls the storm targets, and how often its handler ran there.
static TARGET_TID: AtomicI32 = AtomicI32::new(0);
static HITS: AtomicU64 = AtomicU64::new(0);
static ALRMS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_alrm(_: libc::c_int) {
    ALRMS.fetch_add(1, Ordering::Relaxed);
    if gettid() == TARGET_TID.load(Ordering::Relaxed) {
        HITS.fetch_add(1, Ordering::Relaxed);
    }
}

/// SIGALRM every 100 µs from `setitimer(ITIMER_REAL)` (process-directed: the kernel
/// delivers it to the main thread when it can), plus the same rate sent straight to the
/// calling thread with `tgkill`, so that its blocking system calls are the ones
/// interrupted. The handler is installed without `SA_RESTART`: every interrupted `read`,
/// `poll`, `waitid`, `wait4` returns `EINTR`.
/// Dropping it (also on a panic) stops the storm and puts back the `SIGALRM` disposition
/// and the `ITIMER_REAL` timer it replaced.
struct Storm {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<u64>>,
    started: Instant,
    old_action: libc::sigaction,
    old_timer: libc::itimerval,
}

impl Storm {
    fn start() -> Storm {
        let old_action = set_action(libc::SIGALRM, on_alrm as *const () as libc::sighandler_t, 0);
        let me = gettid();
        TARGET_TID.store(me, Ordering::Relaxed);
        HITS.store(0, Ordering::Relaxed);
        let tick = libc::timeval {
            tv_sec: 0,
            tv_usec: 100,
        };
        let it = libc::itimerval {
            it_interval: tick,
            it_value: tick,
        };
        // SAFETY: a zeroed itimerval is valid; both pointers are valid.
        let mut old_timer: libc::itimerval = unsafe { std::mem::zeroed() };
        // SAFETY: valid itimervals.
        assert_eq!(
            unsafe { libc::setitimer(libc::ITIMER_REAL, &it, &mut old_timer) },
            0
        );
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            // SAFETY: getpid cannot fail.
            let pid = unsafe { libc::getpid() };
            thread::spawn(move || {
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: tgkill to a thread of this process that outlives the storm.
                    unsafe { libc::syscall(libc::SYS_tgkill, pid, me, libc::SIGALRM) };
                    sent += 1;
                    thread::sleep(Duration::from_micros(100));
                }
                sent
            })
        };
        Storm {
            stop,
            thread: Some(thread),
            started: Instant::now(),
            old_action,
            old_timer,
        }
    }

    fn stop(mut self, label: &str) {
        let sent = self.halt();
        let hits = HITS.load(Ordering::Relaxed);
        println!(
            "{label}: {:.2}s of storm, {} SIGALRM handled, {hits} on the waiting thread \
             ({sent} sent to it)",
            self.started.elapsed().as_secs_f64(),
            ALRMS.load(Ordering::Relaxed),
        );
        assert!(
            hits > 0,
            "{label}: the storm never reached the waiting thread"
        );
    }

    fn halt(&mut self) -> u64 {
        let zero = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        // SAFETY: valid itimerval. The no-op handler stays installed until the drop, so a
        // SIGALRM still pending can never kill the test binary.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &zero, std::ptr::null_mut()) };
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map_or(0, |t| t.join().expect("storm thread"))
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        // No more SIGALRM is generated once the timer is off and the sender joined; the
        // ones still pending are discarded by SIG_IGN (POSIX), so the old disposition
        // (normally SIG_DFL: terminate) can come back without one arriving under it.
        self.halt();
        set_action(libc::SIGALRM, libc::SIG_IGN, 0);
        // SAFETY: both values came from sigaction / setitimer.
        unsafe {
            libc::sigaction(libc::SIGALRM, &self.old_action, std::ptr::null_mut());
            libc::setitimer(libc::ITIMER_REAL, &self.old_timer, std::ptr::null_mut());
        }
    }
}

const MIB4: usize = 4 * 1024 * 1024;

#[test]
fn output_of_4_mib_survives_eintr_storm() {
    let _g = common::start("output_of_4_mib_survives_eintr_storm", 120);
    let storm = Storm::start();
    for s in STRATEGIES {
        // stdout and stderr both large, so both pipes fill and poll/read are interrupted
        // over and over.
        let script = format!("head -c {MIB4} /dev/zero; head -c {MIB4} /dev/zero >&2; exit 0");
        let mut cmd = Cmd::new("/bin/sh");
        cmd.args(["-c", &script]).strategy(s);
        let out = cmd.output().unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(out.len(), MIB4, "{s:?}: stdout length");
        assert!(out.iter().all(|&b| b == 0), "{s:?}: stdout content");

        // combined_output: one pipe carrying both.
        let out = Cmd::new("/bin/sh")
            .args(["-c", &script])
            .strategy(s)
            .combined_output()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(out.len(), 2 * MIB4, "{s:?}: combined length");

        // A reader on Child::stdout (std's read through the pipe end).
        let mut child = Cmd::new("/usr/bin/head")
            .args(["-c", &MIB4.to_string(), "/dev/zero"])
            .stdout(Stdio::piped())
            .strategy(s)
            .start()
            .unwrap();
        let mut buf = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut buf).unwrap();
        assert_eq!(buf.len(), MIB4, "{s:?}: ChildStdout");
        assert!(child.wait().unwrap().success(), "{s:?}");
    }
    storm.stop("output under storm");
}

#[test]
fn waits_survive_eintr_storm() {
    let _g = common::start("waits_survive_eintr_storm", 120);
    let storm = Storm::start();
    let nap = Duration::from_millis(200);
    for s in STRATEGIES {
        let attr = ProcAttr {
            strategy: s,
            ..ProcAttr::default()
        };
        // Process::wait blocks in waitid for the whole nap.
        let t0 = Instant::now();
        let p = start_process("/bin/sh", ["sh", "-c", "sleep 0.2; exit 4"], &attr).unwrap();
        let st = p
            .wait()
            .unwrap_or_else(|e| panic!("{s:?}: Process::wait: {e:?}"));
        assert_eq!(st.exit_code(), 4, "{s:?}: Process::wait");
        assert!(t0.elapsed() >= nap, "{s:?}: returned early");

        // wait_timeout: a short timeout still times out (not cut short into an error, not
        // stretched), and a long one returns the status.
        let p = start_process("/bin/sh", ["sh", "-c", "sleep 0.2; exit 5"], &attr).unwrap();
        let t0 = Instant::now();
        let r = p
            .wait_timeout(Duration::from_millis(50))
            .unwrap_or_else(|e| panic!("{s:?}: wait_timeout: {e:?}"));
        let el = t0.elapsed();
        assert!(r.is_none(), "{s:?}: still running after 50 ms");
        assert!(
            el >= Duration::from_millis(50) && el < Duration::from_secs(5),
            "{s:?}: 50 ms timeout took {el:?}"
        );
        let st = p
            .wait_timeout(Duration::from_secs(20))
            .unwrap()
            .expect("exits");
        assert_eq!(st.exit_code(), 5, "{s:?}: wait_timeout");

        // raw::waitpid (wait4) and PidFd::wait (waitid P_PIDFD).
        let plan = ExecPlan::new("/bin/sh", ["sh", "-c", "sleep 0.2; exit 6"]).unwrap();
        let child = raw::fork_exec(&plan, &[], s).unwrap();
        let (_, st) = raw::waitpid(child.pid, WaitOptions::empty())
            .unwrap_or_else(|e| panic!("{s:?}: waitpid: {e:?}"))
            .unwrap();
        assert_eq!(st, WaitStatus::Exited(6), "{s:?}: waitpid");
        let child = raw::fork_exec(&plan, &[], s).unwrap();
        match &child.pidfd {
            Some(fd) => {
                assert!(
                    !fd.wait_readable(Some(Duration::from_millis(30))).unwrap(),
                    "{s:?}: pidfd readable early"
                );
                let (st, _) = fd.wait(WaitOptions::empty()).unwrap().unwrap();
                assert_eq!(st, WaitStatus::Exited(6), "{s:?}: PidFd::wait");
            }
            None => {
                raw::waitpid(child.pid, WaitOptions::empty()).unwrap();
            }
        }

        // Cmd with a timeout: cancelled on time despite the storm.
        let t0 = Instant::now();
        let err = Cmd::new("/bin/sleep")
            .arg("30")
            .timeout(Duration::from_millis(150))
            .strategy(s)
            .status()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}: {err:?}");
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{s:?}: timeout late"
        );

        // Spawn failures too: the fork strategy reads its report pipe through the storm.
        let err = Cmd::new("/no/such").strategy(s).status().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{s:?}: {err:?}");
    }
    storm.stop("waits under storm");
}
