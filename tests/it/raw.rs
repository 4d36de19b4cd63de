//! Integration tests of `forkexec::raw`: every wrapper's success and failure paths.

use crate::common;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::STRATEGIES;
use forkexec::raw::{
    self, CStringArray, ExecPlan, ForkResult, PipeFlags, Strategy, WaitOptions, WaitStatus,
};
use forkexec::{ErrorKind, Signal, Stage};

fn fd_flags(fd: &impl AsRawFd) -> i32 {
    // SAFETY: F_GETFD on an open fd.
    let f = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert!(f >= 0, "F_GETFD failed");
    f
}

fn fl_flags(fd: &impl AsRawFd) -> i32 {
    // SAFETY: F_GETFL on an open fd.
    let f = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(f >= 0, "F_GETFL failed");
    f
}

fn reap(pid: i32) -> WaitStatus {
    raw::waitpid(pid, WaitOptions::empty())
        .expect("waitpid")
        .expect("status")
        .1
}

// ---------------------------------------------------------------------------------------
// pipe
// ---------------------------------------------------------------------------------------

#[test]
fn pipe_is_cloexec_and_flows() {
    let _g = common::start("pipe_is_cloexec_and_flows", 60);
    let (r, w) = raw::pipe().expect("pipe");
    for (name, fd) in [("read", r.as_raw_fd()), ("write", w.as_raw_fd())] {
        assert_ne!(
            fd_flags(&fd) & libc::FD_CLOEXEC,
            0,
            "{name} end not cloexec"
        );
        assert_eq!(
            fl_flags(&fd) & libc::O_NONBLOCK,
            0,
            "{name} end nonblocking"
        );
    }
    assert_eq!(fl_flags(&r) & libc::O_ACCMODE, libc::O_RDONLY);
    assert_eq!(fl_flags(&w) & libc::O_ACCMODE, libc::O_WRONLY);
    std::fs::File::from(w).write_all(b"data flows").unwrap();
    let mut s = String::new();
    std::fs::File::from(r).read_to_string(&mut s).unwrap();
    assert_eq!(s, "data flows");
}

#[test]
fn pipe_with_nonblock() {
    let _g = common::start("pipe_with_nonblock", 60);
    let (r, w) = raw::pipe_with(PipeFlags::NONBLOCK).expect("pipe_with");
    for (name, fd) in [("read", r.as_raw_fd()), ("write", w.as_raw_fd())] {
        assert_ne!(
            fd_flags(&fd) & libc::FD_CLOEXEC,
            0,
            "{name} end not cloexec"
        );
        assert_ne!(fl_flags(&fd) & libc::O_NONBLOCK, 0, "{name} end blocking");
    }
    let mut buf = [0u8; 8];
    let mut rf = std::fs::File::from(r);
    let e = rf.read(&mut buf).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
    let mut wf = std::fs::File::from(w);
    wf.write_all(b"abc").unwrap();
    let n = rf.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"abc");
    drop(wf);
    assert_eq!(rf.read(&mut buf).unwrap(), 0, "EOF after the writer closed");
}

#[test]
fn pipe_with_empty_equals_pipe() {
    let _g = common::start("pipe_with_empty_equals_pipe", 60);
    let (r, w) = raw::pipe_with(PipeFlags::empty()).expect("pipe_with");
    assert_ne!(fd_flags(&r) & libc::FD_CLOEXEC, 0);
    assert_ne!(fd_flags(&w) & libc::FD_CLOEXEC, 0);
    assert_eq!(fl_flags(&r) & libc::O_NONBLOCK, 0);
}

// ---------------------------------------------------------------------------------------
// exec failures, on every strategy
// ---------------------------------------------------------------------------------------

#[test]
fn exec_missing_file_every_strategy() {
    let _g = common::start("exec_missing_file_every_strategy", 60);
    let prog = "/no/such/program";
    let plan = ExecPlan::new(prog, ["program"]).unwrap();
    for s in STRATEGIES {
        let err = raw::fork_exec(&plan, &[], s).expect_err(&format!("{s:?}: spawned"));
        assert_eq!(err.kind(), ErrorKind::NotFound, "{s:?}: {err:?}");
        assert_eq!(err.stage(), Some(Stage::Exec), "{s:?}: {err:?}");
        assert_eq!(err.path(), Some(Path::new(prog)), "{s:?}: {err:?}");
        assert_eq!(err.errno(), Some(libc::ENOENT), "{s:?}: {err:?}");
        assert!(common::children().is_empty(), "{s:?}: child left behind");
    }
}

#[test]
fn exec_non_executable_file_every_strategy() {
    let _g = common::start("exec_non_executable_file_every_strategy", 60);
    let tmp = common::TempDir::new("noexec");
    let script = tmp.file("noexec", "#!/bin/sh\nexit 0\n", 0o644);
    let plan = ExecPlan::new(&script, ["noexec"]).unwrap();
    for s in STRATEGIES {
        let err = raw::fork_exec(&plan, &[], s).expect_err(&format!("{s:?}: spawned"));
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{s:?}: {err:?}");
        assert_eq!(err.stage(), Some(Stage::Exec), "{s:?}: {err:?}");
        assert_eq!(err.errno(), Some(libc::EACCES), "{s:?}: {err:?}");
        assert_eq!(err.path(), Some(script.as_path()), "{s:?}: {err:?}");
        assert!(common::children().is_empty(), "{s:?}: child left behind");
    }
}

#[test]
fn exec_directory_every_strategy() {
    let _g = common::start("exec_directory_every_strategy", 60);
    let plan = ExecPlan::new("/tmp", ["tmp"]).unwrap();
    for s in STRATEGIES {
        let err = raw::fork_exec(&plan, &[], s).expect_err(&format!("{s:?}: spawned"));
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{s:?}: {err:?}");
        assert_eq!(err.stage(), Some(Stage::Exec), "{s:?}: {err:?}");
        assert_eq!(err.errno(), Some(libc::EACCES), "{s:?}: {err:?}");
        assert_eq!(err.path(), Some(Path::new("/tmp")), "{s:?}: {err:?}");
        assert!(common::children().is_empty(), "{s:?}: child left behind");
    }
}

#[test]
fn exec_success_every_strategy() {
    let _g = common::start("exec_success_every_strategy", 60);
    let plan = ExecPlan::new("/bin/true", ["true"]).unwrap();
    for s in STRATEGIES {
        let child = raw::fork_exec(&plan, &[], s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert!(child.pid > 0, "{s:?}");
        assert_eq!(reap(child.pid), WaitStatus::Exited(0), "{s:?}");
    }
}

#[test]
fn error_display_go_style() {
    let _g = common::start("error_display_go_style", 60);
    let plan = ExecPlan::new("/no/such", ["x"]).unwrap();
    for s in STRATEGIES {
        let err = raw::fork_exec(&plan, &[], s).expect_err(&format!("{s:?}: spawned"));
        assert_eq!(
            err.to_string(),
            "fork/exec /no/such: no such file or directory",
            "{s:?}"
        );
        let io: std::io::Error = err.into();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound, "{s:?}");
    }
}

#[test]
fn execve_missing_file_returns() {
    let _g = common::start("execve_missing_file_returns", 60);
    let argv = CStringArray::new(["nope"]).unwrap();
    let envp = CStringArray::from_env([("A", "1")]).unwrap();
    let err = raw::execve(c"/no/such/file", &argv, &envp);
    // Still here: the image was not replaced.
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.stage(), Some(Stage::Exec));
    assert_eq!(err.errno(), Some(libc::ENOENT));
    assert_eq!(err.path(), Some(Path::new("/no/such/file")));
    assert_eq!(
        err.to_string(),
        "fork/exec /no/such/file: no such file or directory"
    );
}

#[test]
fn execve_directory_returns_eacces() {
    let _g = common::start("execve_directory_returns_eacces", 60);
    let argv = CStringArray::new(["tmp"]).unwrap();
    let envp = CStringArray::from_env::<_, &str, &str>([]).unwrap();
    let err = raw::execve(c"/tmp", &argv, &envp);
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(err.errno(), Some(libc::EACCES));
}

// ---------------------------------------------------------------------------------------
// waiting
// ---------------------------------------------------------------------------------------

#[test]
fn waitpid_non_child_is_echild() {
    let _g = common::start("waitpid_non_child_is_echild", 60);
    for opts in [WaitOptions::empty(), WaitOptions::NOHANG] {
        let err = raw::waitpid(1, opts).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ECHILD), "{opts:?}: {err:?}");
        assert_eq!(err.kind(), ErrorKind::Io, "{opts:?}: {err:?}");
        assert_eq!(err.stage(), Some(Stage::Wait), "{opts:?}: {err:?}");
    }
}

#[test]
fn waitpid_any_without_children_is_echild() {
    let _g = common::start("waitpid_any_without_children_is_echild", 60);
    let err = raw::waitpid(-1, WaitOptions::NOHANG).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ECHILD), "{err:?}");
    let err = raw::wait4(-1, WaitOptions::empty()).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ECHILD), "{err:?}");
}

#[test]
fn waitpid_nohang_running_child_is_none() {
    let _g = common::start("waitpid_nohang_running_child_is_none", 60);
    let plan = ExecPlan::new("/bin/sleep", ["sleep", "30"]).unwrap();
    for s in STRATEGIES {
        let child = raw::fork_exec(&plan, &[], s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(
            raw::waitpid(child.pid, WaitOptions::NOHANG).unwrap(),
            None,
            "{s:?}"
        );
        // SAFETY: plain kill of our own child.
        assert_eq!(unsafe { libc::kill(child.pid, libc::SIGTERM) }, 0);
        assert_eq!(
            reap(child.pid),
            WaitStatus::Signaled {
                signal: Signal::TERM,
                core_dumped: false
            },
            "{s:?}"
        );
        // Reaped already: ECHILD.
        let err = raw::waitpid(child.pid, WaitOptions::NOHANG).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ECHILD), "{s:?}");
    }
}

#[test]
fn wait4_returns_rusage() {
    let _g = common::start("wait4_returns_rusage", 60);
    let plan = common::sh_plan("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 4");
    for s in STRATEGIES {
        let child = raw::fork_exec(&plan, &[], s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let (pid, status, usage) = raw::wait4(child.pid, WaitOptions::empty())
            .unwrap()
            .expect("status");
        assert_eq!(pid, child.pid, "{s:?}");
        assert_eq!(status, WaitStatus::Exited(4), "{s:?}");
        assert!(usage.max_rss_kib() > 0, "{s:?}: {usage:?}");
        assert!(
            usage.user_time() + usage.system_time() > std::time::Duration::ZERO,
            "{s:?}: the busy loop used no CPU: {usage:?}"
        );
        assert!(usage.minor_faults() > 0, "{s:?}: {usage:?}");
        assert_eq!(usage.as_raw().ru_maxrss as u64, usage.max_rss_kib());
    }
}

#[test]
fn pidfd_wait_nohang_then_kill() {
    let _g = common::start("pidfd_wait_nohang_then_kill", 60);
    let plan = ExecPlan::new("/bin/sleep", ["sleep", "30"]).unwrap();
    for s in STRATEGIES {
        let child = raw::fork_exec(&plan, &[], s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let pidfd = child.pidfd.expect("pidfd on this kernel");
        assert_eq!(pidfd.pid(), child.pid, "{s:?}");
        assert!(
            pidfd.wait(WaitOptions::NOHANG).unwrap().is_none(),
            "{s:?}: running child reported a state change"
        );
        assert!(
            !pidfd
                .wait_readable(Some(std::time::Duration::from_millis(10)))
                .unwrap(),
            "{s:?}: readable while running"
        );
        pidfd.send_signal(Signal::KILL).unwrap();
        assert!(pidfd.wait_readable(None).unwrap(), "{s:?}");
        let (status, _usage) = pidfd.wait(WaitOptions::empty()).unwrap().expect("status");
        assert_eq!(
            status,
            WaitStatus::Signaled {
                signal: Signal::KILL,
                core_dumped: false
            },
            "{s:?}"
        );
        // Reaped: waiting again is ECHILD, and the process is gone for signals (ESRCH).
        let err = pidfd.wait(WaitOptions::NOHANG).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ECHILD), "{s:?}: {err:?}");
        let err = pidfd.send_signal(Signal::TERM).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ESRCH), "{s:?}: {err:?}");
    }
}

#[test]
fn pidfd_wait_exit_code() {
    let _g = common::start("pidfd_wait_exit_code", 60);
    let plan = common::sh_plan("exit 9");
    for s in STRATEGIES {
        let child = raw::fork_exec(&plan, &[], s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let pidfd = child.pidfd.expect("pidfd on this kernel");
        let (status, _) = pidfd.wait(WaitOptions::empty()).unwrap().expect("status");
        assert_eq!(status, WaitStatus::Exited(9), "{s:?}");
    }
}

#[test]
fn pidfd_open_invalid_pid() {
    let _g = common::start("pidfd_open_invalid_pid", 60);
    for pid in [0, -5, -1, i32::MIN] {
        let err = raw::pidfd_open(pid).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "pid {pid}: {err:?}");
    }
}

#[test]
fn pidfd_open_self_and_reaped() {
    let _g = common::start("pidfd_open_self_and_reaped", 60);
    let me = std::process::id() as i32;
    let pfd = raw::pidfd_open(me).expect("pidfd_open(self)");
    assert_eq!(pfd.pid(), me);
    assert_ne!(fd_flags(&pfd) & libc::FD_CLOEXEC, 0, "pidfd not cloexec");
    drop(pfd);

    let child = raw::fork_exec(
        &ExecPlan::new("/bin/true", ["true"]).unwrap(),
        &[],
        Strategy::Auto,
    )
    .unwrap();
    let pid = child.pid;
    drop(child.pidfd);
    assert_eq!(reap(pid), WaitStatus::Exited(0));
    let err = raw::pidfd_open(pid).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ESRCH), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
}

/// `fork_exec` with only child fds 0 and 1 named, swapped: the planner needs a temporary,
/// which must not be fd 2 (the child's stderr, inherited because it is not named). It used
/// to be: fd 2 was overwritten with the temporary copy and then closed.
#[test]
fn fork_exec_swap_of_0_and_1_keeps_unnamed_fd_2() {
    let _g = common::start("fork_exec_swap_of_0_and_1_keeps_unnamed_fd_2", 60);
    let link = |fd: i32| std::fs::read_link(format!("/proc/self/fd/{fd}"));
    let (Ok(_), Ok(_), Ok(stderr)) = (link(0), link(1), link(2)) else {
        println!("skipped: fds 0-2 of the test process are not all open");
        return;
    };
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    let fds = [
        raw::ChildFd::Fd(std::os::fd::AsFd::as_fd(&stdout)),
        raw::ChildFd::Fd(std::os::fd::AsFd::as_fd(&stdin)),
    ];
    let plan = ExecPlan::new(
        "/bin/sh",
        [
            OsStr::new("sh"),
            OsStr::new("-c"),
            OsStr::new(r#"[ "$(readlink /proc/$$/fd/2)" = "$1" ]"#),
            OsStr::new("sh"),
            stderr.as_os_str(),
        ],
    )
    .expect("plan");
    for s in STRATEGIES {
        let child = raw::fork_exec(&plan, &fds, s).unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(
            reap(child.pid),
            WaitStatus::Exited(0),
            "{s:?}: the child's fd 2 is not the parent's {stderr:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// fork, fork_unchecked, clone_vfork
// ---------------------------------------------------------------------------------------

#[test]
fn fork_refused_when_multithreaded() {
    let _g = common::start("fork_refused_when_multithreaded", 60);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let before = common::children();
    match raw::fork() {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::MultiThreaded, "{e:?}");
            assert!(e.to_string().contains("threads"), "{e}");
        }
        Ok(ForkResult::Child) => {
            // Must never happen; leave without running the parent's code.
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(99) }
        }
        Ok(ForkResult::Parent { child }) => {
            let _ = raw::waitpid(child, WaitOptions::empty());
            panic!("fork() succeeded with a second thread alive");
        }
    }
    assert_eq!(common::children(), before, "a child was created");
    assert!(common::children().is_empty());
    drop(tx);
    t.join().unwrap();
}

/// Not a test by itself: the body [`fork_refuses_a_faked_proc`] runs in a user and mount
/// namespace with a faked `/proc`, by re-executing this test binary with
/// `FORKEXEC_FAKE_PROC` set. It makes sure the process has a second thread, calls
/// `raw::fork()`, and prints what happened on a `RESULT:` line.
#[test]
fn fake_proc_helper() {
    if std::env::var_os("FORKEXEC_FAKE_PROC").is_none() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    match raw::fork() {
        Ok(ForkResult::Child) => {
            // SAFETY: leave at once, running nothing of the parent's.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => {
            reap(child);
            println!("RESULT: forked with two threads");
        }
        Err(e) => println!("RESULT: refused {:?}: {e}", e.kind()),
    }
    drop(tx);
    t.join().unwrap();
    if let Some(pid) = std::env::var("SLEEPER").ok().and_then(|p| p.parse().ok()) {
        // SAFETY: kill(2) on our own child, the `sleep` the shell left before its exec.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = raw::waitpid(pid, WaitOptions::empty());
    }
}

/// `raw::fork()` in a process with two threads, under a `/proc` faked the way any
/// unprivileged user can (`unshare -Urm`, then mount over `/proc`) to say "1 thread":
/// a tmpfs over `/proc`, a regular file bind-mounted over `/proc/<pid>/stat`, and the real
/// stat file of a single-threaded process bind-mounted there. Each must be refused; fork()
/// used to trust the read and fork.
#[test]
fn fork_refuses_a_faked_proc() {
    let _g = common::start("fork_refuses_a_faked_proc", 60);
    let probe = std::process::Command::new("unshare")
        .args(["-Urm", "true"])
        .stderr(std::process::Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        println!("skipped: unshare -Urm is not available here");
        return;
    }
    // openat2(2) (Linux 5.6+) is what sees a bind mount over the file: probe it with a
    // zeroed `struct open_how` (flags, mode, resolve).
    let how = [0u64; 3];
    // SAFETY: a valid path and a valid open_how of the size given.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            how.as_ptr(),
            std::mem::size_of_val(&how),
        )
    };
    let has_openat2 = fd >= 0;
    if has_openat2 {
        // SAFETY: the fd just opened, owned here.
        unsafe { libc::close(fd as i32) };
    }
    let tmp = common::TempDir::new("fake-stat");
    let stat = "1 (x) R 0 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0\n";
    let fake = tmp.file("stat", stat, 0o644);
    let exe = std::env::current_exe().unwrap();
    let modes = [
        (
            "tmpfs over /proc",
            format!(
                "mount -t tmpfs none /proc && mkdir /proc/self && printf '{}' > /proc/self/stat",
                stat.trim_end()
            ),
            true,
        ),
        (
            "file over /proc/<pid>/stat",
            format!("mount --bind '{}' /proc/$$/stat", fake.display()),
            true,
        ),
        (
            "procfs file of another process over /proc/<pid>/stat",
            "sleep 1000 & export SLEEPER=$! && mount --bind /proc/$SLEEPER/stat /proc/$$/stat"
                .to_string(),
            has_openat2,
        ),
    ];
    let helper = common::test_path("fake_proc_helper");
    for (what, setup, enforced) in modes {
        let script = format!(
            "{setup} || exit 97; exec \"$0\" {helper} --exact --nocapture --test-threads=1"
        );
        let out = std::process::Command::new("unshare")
            .args(["-Urm", "sh", "-c", &script])
            .arg(&exe)
            .env("FORKEXEC_FAKE_PROC", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let result = stdout
            .lines()
            .find_map(|l| l.find("RESULT:").map(|at| &l[at..]))
            .unwrap_or_else(|| {
                panic!(
                    "{what}: no result ({:?}): {stdout}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        println!("{what}: {result}");
        if enforced {
            assert!(
                result.starts_with("RESULT: refused MultiThreaded")
                    && result.contains("cannot be verified"),
                "{what}: {result}"
            );
        }
    }
}

#[test]
fn fork_unchecked_child_exits_42() {
    let _g = common::start("fork_unchecked_child_exits_42", 60);
    // SAFETY: the child only calls _exit.
    match unsafe { raw::fork_unchecked() }.expect("fork") {
        ForkResult::Child => unsafe { libc::_exit(42) },
        ForkResult::Parent { child } => {
            assert!(child > 0);
            assert_eq!(reap(child), WaitStatus::Exited(42));
        }
    }
}

#[test]
fn clone_vfork_exit_code_and_shared_memory() {
    let _g = common::start("clone_vfork_exit_code_and_shared_memory", 60);
    let mut stack = vec![MaybeUninit::<u8>::uninit(); 64 * 1024];
    let mut touched: i32 = 0;
    let slot: *mut i32 = &mut touched;
    let mut body = || {
        // SAFETY: the parent's frame is suspended until we exit; the slot is valid.
        unsafe { std::ptr::write_volatile(slot, 1234) };
        7
    };
    // SAFETY: the body writes one i32 the parent prepared and returns a constant.
    let pid = unsafe { raw::clone_vfork(&mut stack, &mut body) }.expect("clone_vfork");
    assert!(pid > 0);
    // SAFETY: the child has exited (CLONE_VFORK suspended us until then).
    let seen = unsafe { std::ptr::read_volatile(slot) };
    assert_eq!(
        seen, 1234,
        "the child's write is not visible: memory not shared"
    );
    assert_eq!(reap(pid), WaitStatus::Exited(7));
    assert_eq!(touched, 1234);
}

#[test]
fn clone_vfork_closure_captures_by_mut_ref() {
    let _g = common::start("clone_vfork_closure_captures_by_mut_ref", 60);
    let mut stack = [MaybeUninit::<u8>::uninit(); 16 * 1024];
    let mut counter = 10u64;
    let mut body = || {
        counter += 5;
        0
    };
    // SAFETY: the body only adds to a captured integer and returns.
    let pid = unsafe { raw::clone_vfork(&mut stack, &mut body) }.expect("clone_vfork");
    assert_eq!(reap(pid), WaitStatus::Exited(0));
    assert_eq!(counter, 15);
}

#[test]
fn clone_vfork_restores_signal_mask() {
    let _g = common::start("clone_vfork_restores_signal_mask", 60);
    let current = || {
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: query only.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), old.as_mut_ptr());
            old.assume_init()
        }
    };
    let member = |set: &libc::sigset_t, sig| {
        // SAFETY: valid set.
        unsafe { libc::sigismember(set, sig) }
    };
    let before = current();
    let mut stack = [MaybeUninit::<u8>::uninit(); 16 * 1024];
    // SAFETY: the body returns a constant.
    let pid = unsafe { raw::clone_vfork(&mut stack, &mut || 0) }.unwrap();
    assert_eq!(reap(pid), WaitStatus::Exited(0));
    let after = current();
    for sig in 1..=31 {
        assert_eq!(member(&before, sig), member(&after, sig), "signal {sig}");
    }
}

// ---------------------------------------------------------------------------------------
// input validation
// ---------------------------------------------------------------------------------------

#[test]
fn exec_plan_input_validation() {
    let _g = common::start("exec_plan_input_validation", 60);
    let kind = |r: forkexec::Result<ExecPlan>| r.unwrap_err().kind();
    assert_eq!(
        kind(ExecPlan::new("/bin/ec\0ho", ["echo"])),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(ExecPlan::new("/bin/echo", ["echo", "a\0b"])),
        ErrorKind::InvalidInput
    );
    assert_eq!(kind(ExecPlan::new("", ["x"])), ErrorKind::InvalidInput);
    let nul_arg = OsStr::from_bytes(b"\xff\0");
    assert_eq!(
        kind(ExecPlan::new("/bin/echo", [OsStr::new("echo"), nul_arg])),
        ErrorKind::InvalidInput
    );
    let plan = ExecPlan::new("/bin/true", ["true"]).unwrap();
    assert_eq!(kind(plan.clone().dir("/tm\0p")), ErrorKind::InvalidInput);
    assert_eq!(kind(plan.clone().dir("")), ErrorKind::InvalidInput);
    // Accessors report what was given.
    assert_eq!(plan.program(), c"/bin/true");
    assert_eq!(
        plan.argv().iter().map(|s| s.to_bytes()).collect::<Vec<_>>(),
        [b"true"]
    );
    assert!(plan.envp().is_none());
    assert!(common::children().is_empty());
}

#[test]
fn cstring_array_validation() {
    let _g = common::start("cstring_array_validation", 60);
    let k = |r: forkexec::Result<CStringArray>| r.unwrap_err().kind();
    assert_eq!(
        k(CStringArray::from_env([("A=B", "1")])),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        k(CStringArray::from_env([("", "1")])),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        k(CStringArray::from_env([("A\0B", "1")])),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        k(CStringArray::from_env([("A", "1\0")])),
        ErrorKind::InvalidInput
    );
    assert_eq!(k(CStringArray::new(["ok", "n\0"])), ErrorKind::InvalidInput);
    // Valid: '=' in a value, empty value.
    let env = CStringArray::from_env([("A", "x=y"), ("B", "")]).unwrap();
    assert_eq!(
        env.iter().map(|s| s.to_bytes()).collect::<Vec<_>>(),
        [&b"A=x=y"[..], &b"B="[..]]
    );
    assert_eq!(env.len(), 2);
    let empty = CStringArray::new::<_, &str>([]).unwrap();
    assert!(empty.is_empty());
}
