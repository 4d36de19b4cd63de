//! `Cmd::status` with stdout/stderr going to the caller's writers copies in the calling
//! thread (issue 14 target 3): no copier thread, and the same results as the threads gave.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use forkexec::{Cmd, ErrorKind, Stdio};

use crate::common;

/// A writer that records the bytes and the threads that wrote them.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<(Vec<u8>, Vec<ThreadId>)>>);

impl Write for Recorder {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let mut g = self.0.lock().unwrap();
        g.0.extend_from_slice(b);
        g.1.push(std::thread::current().id());
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn writers_are_fed_by_the_waiting_thread_on_every_strategy() {
    let _w = common::start(
        "writers_are_fed_by_the_waiting_thread_on_every_strategy",
        60,
    );
    for s in common::STRATEGIES {
        let (out, err) = (Recorder::default(), Recorder::default());
        let st = Cmd::new("sh")
            .args(["-c", "head -c 300000 /dev/zero; echo done >&2; exit 3"])
            .strategy(s)
            .stdout(Stdio::from_writer(out.clone()))
            .stderr(Stdio::from_writer(err.clone()))
            .status()
            .unwrap();
        assert_eq!(st.exit_code(), 3, "{s:?}");
        let me = std::thread::current().id();
        let (o, e) = (out.0.lock().unwrap(), err.0.lock().unwrap());
        assert_eq!(
            (o.0.len(), e.0.as_slice()),
            (300_000, &b"done\n"[..]),
            "{s:?}"
        );
        assert!(
            o.1.iter().chain(&e.1).all(|t| *t == me),
            "{s:?}: a writer ran on another thread"
        );
    }
}

#[test]
fn one_writer_for_both_streams_keeps_the_write_order() {
    let _w = common::start("one_writer_for_both_streams_keeps_the_write_order", 60);
    let w = Recorder::default();
    let both = Stdio::from_writer(w.clone());
    Cmd::new("sh")
        .args(["-c", "echo 1; echo 2 >&2; echo 3; echo 4 >&2"])
        .stdout(both.clone())
        .stderr(both)
        .run()
        .unwrap();
    assert_eq!(w.0.lock().unwrap().0, b"1\n2\n3\n4\n");
}

/// A writer that fails after `ok` bytes.
struct Failing(usize);

impl Write for Failing {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("disk full"));
        }
        let n = b.len().min(self.0);
        self.0 -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_is_an_error_after_the_wait_and_the_child_gets_epipe() {
    let _w = common::start("a_failing_writer_is_an_error_after_the_wait", 60);
    for s in common::STRATEGIES {
        // `yes` would write forever: it ends by EPIPE once the pipe is closed.
        let err = Cmd::new("yes")
            .strategy(s)
            .stdout(Stdio::from_writer(Failing(10_000)))
            .status()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{s:?}: {err}");
        assert!(err.to_string().contains("disk full"), "{s:?}: {err}");
        // The writer's own error is the source.
        let src = std::error::Error::source(&err).expect("a source");
        assert_eq!(src.to_string(), "disk full", "{s:?}");
        let st = err.state().expect("the state of the reaped child");
        assert!(!st.success(), "{s:?}: {st}"); // killed by SIGPIPE (or exit 1)
    }
}

#[test]
fn a_timeout_still_cancels_and_flushes_what_came() {
    let _w = common::start("a_timeout_still_cancels_and_flushes_what_came", 60);
    let out = Recorder::default();
    let err = Cmd::new("sh")
        .args(["-c", "echo early; exec sleep 30"])
        .timeout(std::time::Duration::from_millis(200))
        .stdout(Stdio::from_writer(out.clone()))
        .status()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(out.0.lock().unwrap().0, b"early\n");
}

/// The threads of this process named `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim_end() == name)
        .count()
}

#[test]
fn a_started_child_gets_one_copier_for_all_its_writers() {
    let _w = common::start("a_started_child_gets_one_copier_for_all_its_writers", 60);
    // Copier threads an earlier test left stuck in a caller's writer are not this child's.
    let before = threads_named("forkexec-copy");
    let (out, err) = (Recorder::default(), Recorder::default());
    let mut child = Cmd::new("sh")
        .args(["-c", "echo out; echo err >&2; read _"])
        .stdin(Stdio::piped())
        .stdout(Stdio::from_writer(out.clone()))
        .stderr(Stdio::from_writer(err.clone()))
        .start()
        .unwrap();
    // The thread names itself once it runs: wait for it (the watchdog bounds the wait).
    while threads_named("forkexec-copy") == before {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(
        threads_named("forkexec-copy"),
        before + 1,
        "one thread for both writers"
    );
    child.wait().unwrap(); // closes stdin: `read` ends
    assert_eq!(out.0.lock().unwrap().0, b"out\n");
    assert_eq!(err.0.lock().unwrap().0, b"err\n");
}

#[test]
fn a_wait_set_ends_a_child_whose_grandchild_holds_its_pipe_after_the_wait_delay() {
    let _w = common::start(
        "a_wait_set_ends_a_child_whose_grandchild_holds_its_pipe",
        60,
    );
    use forkexec::{WaitEvent, WaitSet};
    let mut set = WaitSet::new().unwrap();
    // The shell exits at once; the `sleep` it leaves behind keeps stdout open.
    let child = Cmd::new("sh")
        .args(["-c", "echo hi; sleep 5 & exit 0"])
        .stdout(Stdio::piped())
        .wait_delay(std::time::Duration::from_millis(100))
        .start()
        .unwrap();
    let token = set.add(child).unwrap();
    let mut out = Vec::new();
    let result = loop {
        match set.next(None).unwrap().expect("an event") {
            WaitEvent::Output { data, .. } => out.extend(data),
            WaitEvent::Exited { token: t, result } => {
                assert_eq!(t, token);
                break result;
            }
        }
    };
    assert_eq!(out, b"hi\n");
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WaitDelay, "{err}");
    assert!(err.state().unwrap().success());
    assert!(set.is_empty());
}
