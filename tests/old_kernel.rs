//! The crate on a kernel without the system calls of Linux 5.2+ (as RHEL 8's 4.18): a
//! seccomp filter, installed before any thread exists (`harness = false`) and inherited by
//! every child, makes `clone3`, `pidfd_open`, `pidfd_send_signal`, `close_range`,
//! `openat2`, `pidfd_getfd` and `faccessat2` fail with `ENOSYS`, `clone` with
//! `CLONE_PIDFD` and `waitid(P_PIDFD)` with `EINVAL`, as such a kernel does. Every
//! fallback then runs: no pidfds (waits, timeouts and kills by pid), fds closed one by one,
//! the exits of the agent's workers and of a `WaitSet`'s children found by polling. Each
//! scenario runs under a watchdog.

#[path = "common/mod.rs"]
mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use forkexec::raw::Strategy;
use forkexec::{Cmd, ErrorKind, Signal, Stdio, WaitSet};

/// The native audit architecture, for the filter's check (other arches: not run).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(0xC000_003E);
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: Option<u32> = Some(0xC000_00B7);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: Option<u32> = None;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;
/// `waitid`'s id type for a pidfd (Linux 5.4).
const P_PIDFD: u32 = 3;
/// The system calls added in Linux 5.1–5.8 that the crate uses or probes (numbers shared
/// by every architecture since 5.1).
const NEW_CALLS: [u32; 7] = [424, 434, 435, 436, 437, 438, 439];

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

fn load(offset: u32) -> libc::sock_filter {
    stmt((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, offset)
}

fn ret(k: u32) -> libc::sock_filter {
    stmt((libc::BPF_RET | libc::BPF_K) as u16, k)
}

/// The filter program: see the module docs.
fn program(arch: u32) -> Vec<libc::sock_filter> {
    // A call made in another architecture's convention (none here) is let through: the
    // numbers below are this one's.
    let mut p = vec![load(ARCH), jeq(arch, 1, 0), ret(RET_ALLOW), load(NR)];
    for nr in NEW_CALLS {
        p.push(jeq(nr, 0, 1));
        p.push(ret(RET_ERRNO | libc::ENOSYS as u32));
    }
    // clone(flags with CLONE_PIDFD, ...): EINVAL.
    p.push(jeq(libc::SYS_clone as u32, 0, 3));
    p.push(load(ARG0_LOW));
    p.push(libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16,
        jt: 0,
        jf: 1,
        k: libc::CLONE_PIDFD as u32,
    });
    p.push(ret(RET_ERRNO | libc::EINVAL as u32));
    p.push(load(NR));
    // waitid(P_PIDFD, ...): EINVAL.
    p.push(jeq(libc::SYS_waitid as u32, 0, 3));
    p.push(load(ARG0_LOW));
    p.push(jeq(P_PIDFD, 0, 1));
    p.push(ret(RET_ERRNO | libc::EINVAL as u32));
    p.push(ret(RET_ALLOW));
    p
}

/// Installs the filter; `false` when this kernel has no seccomp filters at all
/// (`CONFIG_SECCOMP_FILTER` off: `EINVAL`), where there is nothing to emulate with.
fn install(arch: u32) -> bool {
    let filter = program(arch);
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).expect("short program"),
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: plain prctl calls; `prog` points to `filter`, alive for the call (the kernel
    // copies it).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let r = libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        );
        let e = std::io::Error::last_os_error();
        if r != 0 && e.raw_os_error() == Some(libc::EINVAL) {
            return false;
        }
        assert_eq!(r, 0, "seccomp: {e}");
    }
    true
}

fn errno_of(ret: libc::c_long) -> i32 {
    assert_eq!(ret, -1);
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

/// The filter works: the new calls are gone.
fn the_kernel_looks_old() {
    // SAFETY: raw system calls with integer arguments that fail before doing anything.
    unsafe {
        assert_eq!(
            errno_of(libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0)),
            libc::ENOSYS
        );
        assert_eq!(
            errno_of(libc::syscall(libc::SYS_close_range, 1000, 1001, 0)),
            libc::ENOSYS
        );
    }
}

fn sh(script: &str) -> Cmd {
    let mut c = Cmd::new("/bin/sh");
    c.args(["-c", script]);
    c
}

const STRATEGIES: [Strategy; 4] = [
    Strategy::Auto,
    Strategy::Vfork,
    Strategy::Fork,
    Strategy::PosixSpawn,
];

fn spawns_and_reports_on_every_strategy() {
    for s in STRATEGIES {
        let st = Cmd::new("true").strategy(s).status().unwrap();
        assert!(st.success(), "{s:?}");
        let out = sh("echo $0-ok").strategy(s).output().unwrap();
        assert_eq!(out, b"/bin/sh-ok\n", "{s:?}");
        let err = Cmd::new("/nonexistent/prog")
            .strategy(s)
            .status()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{s:?}: {err}");
        // A bare name, searched on PATH.
        assert!(Cmd::new("true").strategy(s).status().unwrap().success());
    }
}

/// A descriptor the caller left inheritable (no CLOEXEC) does not reach the child: without
/// `close_range` the child marks the fds one by one.
fn the_child_sees_only_its_own_fds() {
    let f = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: dup of a valid fd into a new one we own.
    let leaky = unsafe { libc::dup(f.as_raw_fd()) };
    assert!(leaky > 2);
    // SAFETY: clearing FD_CLOEXEC on our own fd.
    assert_eq!(unsafe { libc::fcntl(leaky, libc::F_SETFD, 0) }, 0);
    let extra: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    for s in STRATEGIES {
        let mut cmd = sh("cd /proc/self/fd && echo *");
        cmd.strategy(s).extra_file(extra.try_clone().unwrap());
        let out = String::from_utf8(cmd.output().unwrap()).unwrap();
        // 0-2, the extra file at 3, and the directory `echo *` reads (a fd of its own).
        let fds: Vec<i32> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
        assert!(!fds.contains(&leaky), "{s:?}: {out}");
        assert!(fds.starts_with(&[0, 1, 2, 3]), "{s:?}: {out}");
        assert!(fds.len() <= 5, "{s:?}: {out}");
    }
    // SAFETY: closing the fd made above.
    unsafe { libc::close(leaky) };
}

/// Without pidfds: waits with a timeout poll, a kill goes by pid, and a reaped process is
/// not signalled.
fn waits_and_kills_without_pidfds() {
    let mut child = Cmd::new("sleep").arg("30").start().unwrap();
    assert!(child.process().pidfd().is_none());
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    child.kill().unwrap();
    let st = child
        .wait_timeout(Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(st.signal(), Some(Signal::KILL));
    assert_eq!(child.kill().unwrap_err().kind(), ErrorKind::ProcessDone);

    let p = forkexec::start_process(
        "/bin/sleep",
        ["sleep", "30"],
        &forkexec::ProcAttr::default(),
    )
    .unwrap();
    let found = forkexec::find_process(p.pid()).unwrap();
    found.signal(Signal::TERM).unwrap();
    assert_eq!(p.wait().unwrap().signal(), Some(Signal::TERM));
}

/// A timeout cancels the child and the error says so; `wait_delay` ends a run whose pipe a
/// grandchild holds, for `output()`, for `status()` with a writer and for a started child.
fn timeouts_and_wait_delays() {
    // (Had the timeout not worked, `sleep 30` would succeed and `unwrap_err` fail; had the
    // wait delay not, the runs below would wait for the grandchild and succeed.)
    let err = Cmd::new("sleep")
        .arg("30")
        .timeout(Duration::from_millis(100))
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");

    // The grandchild outlives the wait delay by far, and ends soon after the test.
    let held = "sleep 10 & echo started";
    let err = sh(held)
        .wait_delay(Duration::from_millis(100))
        .output()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WaitDelay, "output: {err}");
    assert_eq!(err.stdout(), b"started\n");

    let err = sh(held)
        .stdout(Stdio::from_writer(Vec::new()))
        .wait_delay(Duration::from_millis(100))
        .run()
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::WaitDelay,
        "status with a writer: {err}"
    );

    let mut child = sh(held)
        .stdout(Stdio::from_writer(Vec::new()))
        .wait_delay(Duration::from_millis(100))
        .start()
        .unwrap();
    let err = child.wait().unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::WaitDelay,
        "a started child with a writer: {err}"
    );

    let mut child = sh(held)
        .stdout(Stdio::piped())
        .wait_delay(Duration::from_millis(100))
        .start()
        .unwrap();
    let mut first = [0u8; 8];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(&first, b"started\n");
    drop(child.stdout.take());
    assert!(child.wait().unwrap().success());
}

/// A started child's timeout, with no timer thread to keep it (no pidfd): `wait_timeout`
/// and `try_wait` cancel it at the deadline, and kill it after the wait delay when the
/// cancel signal is ignored.
fn started_children_keep_their_deadline() {
    let mut child = Cmd::new("sleep")
        .arg("30")
        .timeout(Duration::from_millis(100))
        .start()
        .unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    let err = child.wait_timeout(Duration::from_secs(30)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "wait_timeout: {err}");
    assert_eq!(err.state().unwrap().signal(), Some(Signal::KILL));

    let mut child = Cmd::new("sleep")
        .arg("30")
        .timeout(Duration::from_millis(100))
        .start()
        .unwrap();
    // try_wait reports the state (the cancel's SIGKILL); wait then says it timed out.
    let st = loop {
        match child.try_wait().unwrap() {
            None => std::thread::sleep(Duration::from_millis(5)),
            Some(st) => break st,
        }
    };
    assert_eq!(st.signal(), Some(Signal::KILL), "try_wait: {st}");
    let err = child.wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "try_wait, then wait: {err}");

    // TERM ignored (and inherited by `sleep` through exec): KILL after the wait delay.
    let mut child = sh("trap '' TERM; sleep 30")
        .timeout(Duration::from_millis(100))
        .cancel_signal(Signal::TERM)
        .wait_delay(Duration::from_millis(100))
        .start()
        .unwrap();
    let err = child.wait_timeout(Duration::from_secs(30)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "TERM ignored: {err}");
    assert_eq!(err.state().unwrap().signal(), Some(Signal::KILL));
}

/// The cancel runs once, whichever wait finds the deadline passed first: `try_wait`, then
/// `wait_timeout`, then `wait` (TERM ignored: the kill comes after the wait delay).
fn the_cancel_runs_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let mut child = sh("trap '' TERM; sleep 30")
        .timeout(Duration::from_millis(50))
        .cancel_with(move |t| {
            counted.fetch_add(1, Ordering::SeqCst);
            t.signal(Signal::TERM)
        })
        .wait_delay(Duration::from_millis(300))
        .start()
        .unwrap();
    while calls.load(Ordering::SeqCst) == 0 {
        assert_eq!(child.try_wait().unwrap(), None);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Cancelled, TERM ignored: still running until the kill (unless a slow machine got
    // there already).
    let err = match child.wait_timeout(Duration::from_millis(10)) {
        Ok(None) => child.wait().unwrap_err(),
        Ok(Some(st)) => panic!("ended without the timeout: {st}"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.state().unwrap().signal(), Some(Signal::KILL));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the cancel function ran once"
    );
}

/// A `WaitSet` without pidfds: it looks for its children's exits, keeps their timeouts
/// and their wait delays, and loses no output.
fn waitset_polls_for_exits() {
    use forkexec::{Stream, WaitEvent};
    let mut set = WaitSet::new().unwrap();
    let mut tokens = Vec::new();
    for i in 0..3 {
        let child = sh(&format!("echo job {i}; exit {i}"))
            .stdout(Stdio::piped())
            .start()
            .unwrap();
        tokens.push(set.add(child).unwrap());
    }
    // No output, no pipe: only the exit says it ended.
    let quiet = set.add(Cmd::new("true").start().unwrap()).unwrap();
    // A timeout no timer watches.
    let slow = set
        .add(
            Cmd::new("sleep")
                .arg("30")
                .timeout(Duration::from_millis(100))
                .start()
                .unwrap(),
        )
        .unwrap();
    // A grandchild holds the pipe: the wait delay ends it.
    let held = set
        .add(
            sh("sleep 10 & echo started")
                .stdout(Stdio::piped())
                .wait_delay(Duration::from_millis(100))
                .start()
                .unwrap(),
        )
        .unwrap();
    let mut out = vec![Vec::new(); 6];
    let mut ends = Vec::new();
    while let Some(ev) = set.next(None).unwrap() {
        match ev {
            WaitEvent::Output {
                token,
                stream: Stream::Stdout,
                data,
            } => out[token].extend(data),
            WaitEvent::Output { .. } => {}
            WaitEvent::Exited { token, result } => ends.push((token, result)),
        }
    }
    ends.sort_by_key(|e| e.0);
    assert_eq!(ends.len(), 6);
    for (i, &t) in tokens.iter().enumerate() {
        assert_eq!(out[t], format!("job {i}\n").into_bytes());
        assert_eq!(ends[t].1.as_ref().unwrap().exit_code(), i as i32);
    }
    assert!(ends[quiet].1.as_ref().unwrap().success());
    let e = ends[slow].1.as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let e = ends[held].1.as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WaitDelay, "{e}");
    assert_eq!(out[held], b"started\n");
}

/// The agent finds its workers' exits by polling.
#[cfg(feature = "agent")]
fn the_agent_polls_for_exits() {
    use forkexec::agent::Master;
    let master = Master::new().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    master
        .start(
            "cat",
            Cmd::new("cat"),
            move |_, l| tx.send(l.to_vec()).unwrap(),
            move |_, end| done_tx.send(end.result.map(|s| s.success())).unwrap(),
        )
        .unwrap();
    master.input("cat", "hello").unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), b"hello");
    master.close_input("cat").unwrap();
    let end = done_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(end.unwrap(), "cat ended with success after end of input");
    master.stop_all().unwrap();
}

#[cfg(not(feature = "agent"))]
fn the_agent_polls_for_exits() {}

fn main() {
    let Some(arch) = AUDIT_ARCH else {
        println!("old_kernel: not run on this architecture");
        return;
    };
    // Before any thread: the filter then holds for every thread and child.
    if !install(arch) {
        println!("old_kernel: not run: this kernel has no seccomp filters");
        return;
    }
    let tests: [(&'static str, fn()); 8] = [
        (
            "spawns_and_reports_on_every_strategy",
            spawns_and_reports_on_every_strategy,
        ),
        (
            "the_child_sees_only_its_own_fds",
            the_child_sees_only_its_own_fds,
        ),
        (
            "waits_and_kills_without_pidfds",
            waits_and_kills_without_pidfds,
        ),
        ("timeouts_and_wait_delays", timeouts_and_wait_delays),
        (
            "started_children_keep_their_deadline",
            started_children_keep_their_deadline,
        ),
        ("the_cancel_runs_once", the_cancel_runs_once),
        ("waitset_polls_for_exits", waitset_polls_for_exits),
        ("the_agent_polls_for_exits", the_agent_polls_for_exits),
    ];
    the_kernel_looks_old();
    println!("test the_kernel_looks_old ... ok");
    for (name, f) in tests {
        let _w = common::start(name, 60);
        f();
        println!("test {name} ... ok");
    }
}
