//! Go's `os.StartProcess`, `os.Process`, `os.FindProcess` and `os.ProcessState`, ported to
//! [`forkexec::start_process`], [`forkexec::Process`], [`forkexec::find_process`] and
//! [`forkexec::ProcessState`]. Spawn behaviours run on every strategy.

use crate::common;

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::STRATEGIES;
use forkexec::raw::{Strategy, WaitOptions, WaitStatus};
use forkexec::{ErrorKind, ProcAttr, Process, ProcessState, Signal, find_process, start_process};

/// Starts `program argv` with stdout on a pipe (fd 0 and 2 closed unless `setup` says
/// otherwise), reads it to EOF and waits. Returns (stdout, state).
fn capture(
    program: &str,
    argv: &[&str],
    s: Strategy,
    setup: impl for<'a> FnOnce(&mut ProcAttr<'a>),
) -> (String, ProcessState) {
    let (r, w) = forkexec::raw::pipe().expect("pipe");
    let mut attr = ProcAttr {
        files: vec![None, Some(w.as_fd()), None],
        strategy: s,
        ..Default::default()
    };
    setup(&mut attr);
    let p = start_process(program, argv, &attr).unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
    drop(attr);
    drop(w);
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    let st = p.wait().unwrap_or_else(|e| panic!("{s:?}: wait: {e:?}"));
    (out, st)
}

/// `sleep 30` as a Process.
fn sleeper(s: Strategy) -> Process {
    let attr = ProcAttr {
        strategy: s,
        ..Default::default()
    };
    start_process("/bin/sleep", ["sleep", "30"], &attr).unwrap_or_else(|e| panic!("{s:?}: {e:?}"))
}

// ---------------------------------------------------------------------------------------
// start_process and ProcAttr
// ---------------------------------------------------------------------------------------

#[test]
fn start_process_files_are_exact() {
    let _g = common::start("start_process_files_are_exact", 60);
    for s in STRATEGIES {
        // Only fd 1 is given: 0 and 2 are closed in the child.
        let (out, st) = capture("/bin/sh", &["sh", "-c", "ls /proc/$$/fd"], s, |_| {});
        assert!(st.success(), "{s:?}: {st}");
        assert_eq!(out, "1\n", "{s:?}");

        // A fourth entry becomes fd 3; a None in the middle leaves a hole.
        let (r1, w1) = forkexec::raw::pipe().unwrap();
        let (r3, w3) = forkexec::raw::pipe().unwrap();
        let attr = ProcAttr {
            files: vec![None, Some(w1.as_fd()), None, Some(w3.as_fd())],
            strategy: s,
            ..Default::default()
        };
        let script = ["sh", "-c", "echo to3 >&3; ls /proc/$$/fd"];
        let p = start_process("/bin/sh", script, &attr).unwrap();
        drop(attr);
        drop((w1, w3));
        let mut out = String::new();
        std::fs::File::from(r1).read_to_string(&mut out).unwrap();
        let mut got = String::new();
        std::fs::File::from(r3).read_to_string(&mut got).unwrap();
        let st = p.wait().unwrap();
        assert!(st.success(), "{s:?}: {st}");
        assert_eq!(out, "1\n3\n", "{s:?}");
        assert_eq!(got, "to3\n", "{s:?}");
    }
}

#[test]
fn start_process_env_and_dir() {
    let _g = common::start("start_process_env_and_dir", 60);
    for s in STRATEGIES {
        let (out, st) = capture("/usr/bin/env", &["env"], s, |a| {
            a.env = Some(vec!["A=1".into()]);
        });
        assert!(st.success(), "{s:?}");
        assert_eq!(out, "A=1\n", "{s:?}");

        let (out, _) = capture("/usr/bin/env", &["env"], s, |a| a.env = Some(vec![]));
        assert_eq!(out, "", "{s:?}: empty environment");

        let (out, _) = capture("/bin/pwd", &["pwd"], s, |a| a.dir = Some("/".into()));
        assert_eq!(out, "/\n", "{s:?}");

        // None: the parent's environment and directory.
        let (out, _) = capture("/bin/pwd", &["pwd", "-P"], s, |_| {});
        let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
        assert_eq!(out.trim_end(), cwd.to_str().unwrap(), "{s:?}");
        let (out, _) = capture("/usr/bin/printenv", &["printenv", "PATH"], s, |_| {});
        assert_eq!(
            out.trim_end(),
            std::env::var("PATH").unwrap_or_default(),
            "{s:?}"
        );
    }
}

#[test]
fn start_process_errors() {
    let _g = common::start("start_process_errors", 60);
    for s in STRATEGIES {
        let attr = ProcAttr {
            strategy: s,
            ..Default::default()
        };
        let err = start_process("/no/such/prog", ["x"], &attr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{s:?}: {err:?}");
        // No PATH search.
        let err = start_process("sh", ["sh"], &attr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{s:?}: {err:?}");
        let err = start_process("", ["x"], &attr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{s:?}");
        let err = start_process("/bin/true", ["a\0b"], &attr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{s:?}");
        let bad_env = ProcAttr {
            env: Some(vec!["NOEQUALS".into()]),
            strategy: s,
            ..Default::default()
        };
        let err = start_process("/bin/true", ["true"], &bad_env).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{s:?}: {err:?}");
        assert!(common::children().is_empty(), "{s:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Process: signal, kill, wait, try_wait, wait_timeout, release
// ---------------------------------------------------------------------------------------

#[test]
fn process_signal_and_kill() {
    let _g = common::start("process_signal_and_kill", 60);
    for s in STRATEGIES {
        let p = sleeper(s);
        assert!(p.pid() > 0, "{s:?}");
        assert!(
            std::path::Path::new(&format!("/proc/{}", p.pid())).exists(),
            "{s:?}"
        );
        p.signal(Signal::TERM).unwrap();
        let st = p.wait().unwrap();
        assert_eq!(st.signal(), Some(Signal::TERM), "{s:?}");
        assert_eq!(st.pid(), p.pid(), "{s:?}");
        assert_eq!(st.to_string(), "signal: terminated", "{s:?}");

        let p = sleeper(s);
        p.kill().unwrap();
        let st = p.wait().unwrap();
        assert_eq!(st.signal(), Some(Signal::KILL), "{s:?}");
        assert_eq!(st.exit_code(), -1, "{s:?}");
    }
}

#[test]
fn process_try_wait_and_wait_timeout() {
    let _g = common::start("process_try_wait_and_wait_timeout", 60);
    for s in STRATEGIES {
        let p = sleeper(s);
        assert!(p.try_wait().unwrap().is_none(), "{s:?}");
        let t = Instant::now();
        assert!(
            p.wait_timeout(Duration::from_millis(50)).unwrap().is_none(),
            "{s:?}"
        );
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(50), "{s:?}: {took:?}");
        assert!(
            took < Duration::from_secs(10),
            "{s:?}: hang guard: {took:?}"
        );
        assert!(
            p.wait_timeout(Duration::ZERO).unwrap().is_none(),
            "{s:?}: zero timeout"
        );
        p.kill().unwrap();
        let st = p
            .wait_timeout(Duration::from_secs(10))
            .unwrap()
            .expect("exited after kill");
        assert_eq!(st.signal(), Some(Signal::KILL), "{s:?}");
        assert_eq!(
            p.try_wait().unwrap_err().kind(),
            ErrorKind::ProcessDone,
            "{s:?}"
        );

        // try_wait reaps a process that exited on its own.
        let attr = ProcAttr {
            strategy: s,
            ..Default::default()
        };
        let p = start_process("/bin/true", ["true"], &attr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let st = loop {
            if let Some(st) = p.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "{s:?}: true never exited");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(st.success(), "{s:?}");
    }
}

#[test]
fn process_done_after_wait() {
    let _g = common::start("process_done_after_wait", 60);
    for s in STRATEGIES {
        let attr = ProcAttr {
            strategy: s,
            ..Default::default()
        };
        let p = start_process("/bin/true", ["true"], &attr).unwrap();
        assert!(p.wait().unwrap().success(), "{s:?}");
        let done = |what: &str, r: forkexec::Result<()>| {
            let e = r.expect_err(what);
            assert_eq!(e.kind(), ErrorKind::ProcessDone, "{s:?} {what}: {e:?}");
            assert_eq!(e.to_string(), "os: process already finished", "{s:?}");
        };
        done("wait", p.wait().map(drop));
        done("signal", p.signal(Signal::TERM));
        done("kill", p.kill());
        done("try_wait", p.try_wait().map(drop));
        done(
            "wait_timeout",
            p.wait_timeout(Duration::from_secs(1)).map(drop),
        );
    }
}

#[test]
fn signal_to_exited_unreaped_process_is_done() {
    let _g = common::start("signal_to_exited_unreaped_process_is_done", 60);
    for s in STRATEGIES {
        let attr = ProcAttr {
            strategy: s,
            ..Default::default()
        };
        let p = start_process("/bin/true", ["true"], &attr).unwrap();
        // Wait for the zombie without reaping it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", p.pid())).unwrap();
            let state = stat.rsplit(')').next().unwrap().split_whitespace().next();
            if state == Some("Z") {
                break;
            }
            assert!(Instant::now() < deadline, "{s:?}: never became a zombie");
            std::thread::sleep(Duration::from_millis(1));
        }
        // A zombie still accepts signals (kill(2) succeeds); either Ok or ProcessDone.
        match p.signal(Signal::TERM) {
            Ok(()) => {}
            Err(e) => assert_eq!(e.kind(), ErrorKind::ProcessDone, "{s:?}: {e:?}"),
        }
        assert!(p.wait().unwrap().success(), "{s:?}");
    }
}

/// A child whose status someone else took first (here `raw::waitpid`; the kernel does the
/// same when `SIGCHLD` is ignored, see tests/eintr.rs) is done: the wait that finds out is
/// `Io`/`ECHILD` at `Stage::Wait`, every later wait the same, every signal `ProcessDone`
/// without a system call. A process that is not a child is only unwaitable: it can still
/// be signalled.
#[test]
fn child_whose_status_was_taken_is_done() {
    let _g = common::start("child_whose_status_was_taken_is_done", 60);
    let lost = |e: forkexec::Error, ctx: &str| {
        assert_eq!(
            (e.kind(), e.errno(), e.stage()),
            (
                ErrorKind::Io,
                Some(libc::ECHILD),
                Some(forkexec::Stage::Wait)
            ),
            "{ctx}: {e:?}"
        );
    };
    for s in STRATEGIES {
        let attr = ProcAttr {
            strategy: s,
            ..Default::default()
        };
        let p = start_process("/bin/sh", ["sh", "-c", "exit 7"], &attr).unwrap();
        let found = find_process(p.pid()).unwrap();
        let (_, st) = forkexec::raw::waitpid(p.pid(), WaitOptions::empty())
            .unwrap()
            .expect("status");
        assert_eq!(st, WaitStatus::Exited(7), "{s:?}");
        for h in [&p, &found] {
            lost(h.wait().unwrap_err(), &format!("{s:?}: wait"));
            lost(h.wait().unwrap_err(), &format!("{s:?}: 2nd wait"));
            lost(h.try_wait().unwrap_err(), &format!("{s:?}: try_wait"));
            lost(
                h.wait_timeout(Duration::from_secs(5)).unwrap_err(),
                &format!("{s:?}: wait_timeout"),
            );
            let e = h.signal(Signal::TERM).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ProcessDone, "{s:?}: signal: {e:?}");
            let e = h.kill().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ProcessDone, "{s:?}: kill: {e:?}");
            assert!(format!("{h:?}").contains("Lost"), "{s:?}: {h:?}");
        }
    }
    // Not a child: ECHILD, and still there.
    let me = find_process(std::process::id() as i32).unwrap();
    lost(me.wait().unwrap_err(), "self: wait");
    me.signal(Signal::WINCH).unwrap();
    lost(me.try_wait().unwrap_err(), "self: try_wait");
    me.signal(Signal::WINCH).unwrap();
}

#[test]
fn release_then_raw_waitpid_reaps() {
    let _g = common::start("release_then_raw_waitpid_reaps", 60);
    for s in STRATEGIES {
        let attr = ProcAttr {
            strategy: s,
            ..Default::default()
        };
        let p = start_process("/bin/sh", ["sh", "-c", "exit 7"], &attr).unwrap();
        let pid = p.pid();
        p.release();
        let (got, st) = forkexec::raw::waitpid(pid, WaitOptions::empty())
            .unwrap()
            .expect("status");
        assert_eq!((got, st), (pid, WaitStatus::Exited(7)), "{s:?}");
    }
}

#[test]
fn two_threads_wait_one_process() {
    let _g = common::start("two_threads_wait_one_process", 60);
    for s in STRATEGIES {
        let attr = ProcAttr {
            strategy: s,
            ..Default::default()
        };
        let p = Arc::new(start_process("/bin/sleep", ["sleep", "0.3"], &attr).unwrap());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || p.wait())
            })
            .collect();
        let results: Vec<_> = waiters.into_iter().map(|h| h.join().unwrap()).collect();
        let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let done = results
            .iter()
            .filter(|r| matches!(r, Err(e) if e.kind() == ErrorKind::ProcessDone))
            .count();
        assert_eq!(ok.len(), 1, "{s:?}: {results:?}");
        assert_eq!(done, 1, "{s:?}: {results:?}");
        assert!(ok[0].success(), "{s:?}");
    }
}

#[test]
fn kill_from_another_thread_wakes_wait() {
    let _g = common::start("kill_from_another_thread_wakes_wait", 60);
    for s in STRATEGIES {
        let p = Arc::new(sleeper(s));
        let killer = {
            let p = p.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                p.kill()
            })
        };
        let t = Instant::now();
        let st = p.wait().unwrap();
        assert_eq!(st.signal(), Some(Signal::KILL), "{s:?}");
        assert!(t.elapsed() < Duration::from_secs(10), "{s:?}: hang guard");
        killer.join().unwrap().unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// find_process
// ---------------------------------------------------------------------------------------

#[test]
fn find_process_self_and_invalid() {
    let _g = common::start("find_process_self_and_invalid", 60);
    let me = find_process(std::process::id() as i32).unwrap();
    assert_eq!(me.pid(), std::process::id() as i32);
    // SIGWINCH is ignored by default: a harmless way to check signal delivery works.
    me.signal(Signal::WINCH).unwrap();
    drop(me);
    for pid in [0, -1] {
        let err = find_process(pid).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{pid}: {err:?}");
    }
}

#[test]
fn find_process_of_reaped_child_is_done() {
    let _g = common::start("find_process_of_reaped_child_is_done", 60);
    for s in STRATEGIES {
        let attr = ProcAttr {
            strategy: s,
            ..Default::default()
        };
        let p = start_process("/bin/true", ["true"], &attr).unwrap();
        let pid = p.pid();
        p.wait().unwrap();
        let err = find_process(pid).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProcessDone, "{s:?}: {err:?}");
    }
}

#[test]
fn find_process_of_running_child() {
    let _g = common::start("find_process_of_running_child", 60);
    for s in STRATEGIES {
        let p = sleeper(s);
        let found = find_process(p.pid()).unwrap();
        assert_eq!(found.pid(), p.pid(), "{s:?}");
        found.kill().unwrap();
        assert_eq!(p.wait().unwrap().signal(), Some(Signal::KILL), "{s:?}");
        // The found handle no longer reaches it: the process is gone.
        let err = found.signal(Signal::TERM).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProcessDone, "{s:?}: {err:?}");
    }
}

// ---------------------------------------------------------------------------------------
// ProcessState
// ---------------------------------------------------------------------------------------

fn state_of(script: &str, s: Strategy) -> ProcessState {
    let attr = ProcAttr {
        strategy: s,
        ..Default::default()
    };
    start_process("/bin/sh", ["sh", "-c", script], &attr)
        .unwrap_or_else(|e| panic!("{s:?}: {e:?}"))
        .wait()
        .unwrap()
}

#[test]
fn process_state_display_and_accessors() {
    let _g = common::start("process_state_display_and_accessors", 60);
    for s in STRATEGIES {
        for code in [0, 1, 255] {
            let st = state_of(&format!("exit {code}"), s);
            assert_eq!(st.to_string(), format!("exit status {code}"), "{s:?}");
            assert_eq!(st.exit_code(), code, "{s:?}");
            assert!(st.exited(), "{s:?}");
            assert_eq!(st.success(), code == 0, "{s:?}");
            assert_eq!(st.signal(), None, "{s:?}");
            assert!(!st.core_dumped(), "{s:?}");
            assert_eq!(st.wait_status(), WaitStatus::Exited(code), "{s:?}");
        }
        // `ulimit -c 0`: no core dump, whatever the system's core settings.
        for (sig, name, text) in [
            (Signal::KILL, "KILL", "signal: killed"),
            (Signal::TERM, "TERM", "signal: terminated"),
            (Signal::SEGV, "SEGV", "signal: segmentation fault"),
        ] {
            let st = state_of(&format!("ulimit -c 0; kill -{name} $$"), s);
            assert_eq!(st.to_string(), text, "{s:?}");
            assert_eq!(st.signal(), Some(sig), "{s:?}");
            assert_eq!(st.exit_code(), -1, "{s:?}");
            assert!(!st.exited() && !st.success() && !st.core_dumped(), "{s:?}");
            assert_eq!(
                st.wait_status(),
                WaitStatus::Signaled {
                    signal: sig,
                    core_dumped: false
                },
                "{s:?}"
            );
        }
    }
}

#[test]
fn process_state_into_std_exit_status() {
    let _g = common::start("process_state_into_std_exit_status", 60);
    for s in STRATEGIES {
        for script in [
            "exit 0",
            "exit 1",
            "exit 255",
            "kill -KILL $$",
            "kill -TERM $$",
        ] {
            let st = state_of(script, s);
            let by_ref = std::process::ExitStatus::from(&st);
            let std_st = std::process::ExitStatus::from(st);
            assert_eq!(by_ref, std_st, "{s:?} {script}");
            assert_eq!(std_st.success(), st.success(), "{s:?} {script}");
            if st.exited() {
                assert_eq!(std_st.code(), Some(st.exit_code()), "{s:?} {script}");
                assert_eq!(std_st.signal(), None, "{s:?} {script}");
            } else {
                assert_eq!(std_st.code(), None, "{s:?} {script}");
                assert_eq!(
                    std_st.signal(),
                    st.signal().map(Signal::as_raw),
                    "{s:?} {script}"
                );
            }
        }
    }
}

#[test]
fn process_state_rusage_is_plausible() {
    let _g = common::start("process_state_rusage_is_plausible", 60);
    for s in STRATEGIES {
        let t = Instant::now();
        let st = state_of("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done", s);
        let wall = t.elapsed();
        assert!(st.success(), "{s:?}");
        assert!(st.user_time() > Duration::ZERO, "{s:?}: {st:?}");
        // CPU time of a single-threaded child cannot exceed the wall time it ran.
        assert!(
            st.user_time() + st.system_time() <= wall + Duration::from_millis(50),
            "{s:?}: {st:?} in {wall:?}"
        );
        assert!(st.rusage().max_rss_kib() > 0, "{s:?}");
    }
}
