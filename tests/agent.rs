//! The worker agent: crash isolation, scale, line handling, stuck workers, restart
//! policies, stopping, callbacks, and no leaks.
#![cfg(feature = "agent")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use forkexec::agent::{Backoff, Finish, Line, Master, Restart, Stderr, WorkerOptions, WorkerState};
use forkexec::{Cmd, ErrorKind, ProcessState, Signal};

fn sh(script: &str) -> Cmd {
    let mut c = Cmd::new("/bin/sh");
    c.args(["-c", script]);
    c
}

fn cat() -> Cmd {
    Cmd::new("cat")
}

type End = Result<ProcessState, ErrorKind>;

#[derive(Debug)]
enum Ev {
    /// A stdout line, and when `on_line` got it (on the master's loop thread).
    Line(String, Vec<u8>, Instant),
    ErrLine(String, Vec<u8>),
    /// The `complete` flag of the stdout line just before.
    Flag(String, bool),
    /// What `on_finish` said of the process's input, just before its `Finish`.
    Delivery(String, Delivery),
    Finish(String, End),
}

/// A `Finish` without its result.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivery {
    pid: Option<i32>,
    lines: u64,
    bytes: u64,
    restart: bool,
    unsent: Vec<Vec<u8>>,
}

/// Everything the callbacks saw, in order, with a condition variable to wait on.
#[derive(Clone, Default)]
struct Log(Arc<(Mutex<Vec<Ev>>, Condvar)>);

impl Log {
    fn push(&self, e: Ev) {
        self.0.0.lock().unwrap().push(e);
        self.0.1.notify_all();
    }

    fn on_line(&self) -> impl FnMut(&str, Line<'_>) + Send + 'static {
        let me = self.clone();
        move |id, line| {
            me.push(Ev::Line(id.to_string(), line.to_vec(), Instant::now()));
            me.push(Ev::Flag(id.to_string(), line.complete));
        }
    }

    fn on_err(&self) -> impl FnMut(&str, Line<'_>) + Send + 'static {
        let me = self.clone();
        move |id, line| me.push(Ev::ErrLine(id.to_string(), line.to_vec()))
    }

    fn on_finish(&self) -> impl FnMut(&str, Finish) + Send + 'static {
        let me = self.clone();
        move |id, end: Finish| {
            let d = Delivery {
                pid: end.pid,
                lines: end.lines_written,
                bytes: end.bytes_written,
                restart: end.restart,
                unsent: end.unsent,
            };
            me.push(Ev::Delivery(id.to_string(), d));
            me.push(Ev::Finish(id.to_string(), end.result.map_err(|e| e.kind())));
        }
    }

    /// Waits (at most 30 s) until `pred` holds over the events.
    fn wait(&self, what: &str, pred: impl Fn(&[Ev]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut g = self.0.0.lock().unwrap();
        while !pred(&g) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}: {:?}", &*g);
            g = self.0.1.wait_timeout(g, left).unwrap().0;
        }
    }

    fn lines(&self, id: &str) -> Vec<Vec<u8>> {
        lines_of(&self.0.0.lock().unwrap(), id)
    }

    fn finishes(&self, id: &str) -> Vec<End> {
        finishes_of(&self.0.0.lock().unwrap(), id)
    }

    /// The `complete` flags of `id`'s stdout lines.
    fn flags(&self, id: &str) -> Vec<bool> {
        self.0
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Ev::Flag(i, c) if i == id => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// What each `on_finish` of `id` said of the input.
    fn deliveries(&self, id: &str) -> Vec<Delivery> {
        self.0
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Ev::Delivery(i, d) if i == id => Some(d.clone()),
                _ => None,
            })
            .collect()
    }

    /// When `on_line` got each stdout line of `id`.
    fn line_times(&self, id: &str) -> Vec<Instant> {
        self.0
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Ev::Line(i, _, t) if i == id => Some(*t),
                _ => None,
            })
            .collect()
    }
}

fn lines_of(evs: &[Ev], id: &str) -> Vec<Vec<u8>> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Line(i, l, _) if i == id => Some(l.clone()),
            _ => None,
        })
        .collect()
}

fn finishes_of(evs: &[Ev], id: &str) -> Vec<End> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Finish(i, r) if i == id => Some(*r),
            _ => None,
        })
        .collect()
}

fn count_finishes(evs: &[Ev]) -> usize {
    evs.iter().filter(|e| matches!(e, Ev::Finish(..))).count()
}

fn has_line(evs: &[Ev], id: &str, line: &[u8]) -> bool {
    evs.iter()
        .any(|e| matches!(e, Ev::Line(i, l, _) if i == id && l == line))
}

/// Polls `f` every 5 ms for at most 30 s.
fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn status_field(name: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
}

/// Threads of this process named `name` (from /proc/self/task/*/comm).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .count()
}

/// Threads of this process whose name starts with `prefix`.
fn threads_like(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .count()
}

/// A temporary directory, removed (with its files) when dropped, pass or fail.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("forkexec-agent-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small deterministic generator (xorshift), seeded from the clock and printed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("rng seed {seed}");
        Rng(seed)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn crash_isolation() {
    let _g = common::start("crash_isolation", 120);
    let master = Master::new().unwrap();
    let log = Log::default();
    let ids: Vec<String> = (0..50).map(|i| format!("w{i:02}")).collect();
    for id in &ids {
        let body = if id.ends_with('0') {
            cat()
        } else {
            sh("while read l; do echo \"$l\"; done")
        };
        master
            .start(id, body, log.on_line(), log.on_finish())
            .unwrap();
    }
    for id in &ids {
        master.input(id, format!("hello {id}")).unwrap();
    }
    log.wait("first replies", |evs| {
        ids.iter()
            .all(|id| has_line(evs, id, format!("hello {id}").as_bytes()))
    });

    // Kill 10 distinct workers at random, by pid, from outside the master.
    let mut rng = Rng::new();
    let mut killed: Vec<String> = Vec::new();
    while killed.len() < 10 {
        let id = &ids[rng.below(ids.len())];
        if !killed.contains(id) {
            killed.push(id.clone());
        }
    }
    for id in &killed {
        let pid = master.state(id).unwrap().pid().expect("running");
        forkexec::find_process(pid)
            .unwrap()
            .signal(Signal::KILL)
            .unwrap();
    }
    log.wait("10 finishes", |evs| count_finishes(evs) == 10);
    for id in &killed {
        let f = log.finishes(id);
        assert_eq!(f.len(), 1, "{id}: {f:?}");
        assert_eq!(f[0].as_ref().unwrap().signal(), Some(Signal::KILL), "{id}");
        let st = master.state(id).unwrap();
        assert_eq!(st.exit_state().unwrap().signal(), Some(Signal::KILL));
        let err = master.input(id, "anyone?").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProcessDone);
    }

    // The 40 others keep answering.
    let alive: Vec<&String> = ids.iter().filter(|id| !killed.contains(id)).collect();
    for round in 0..3 {
        for id in &alive {
            master.input(id, format!("round {round} {id}")).unwrap();
        }
    }
    log.wait("replies of the survivors", |evs| {
        alive
            .iter()
            .all(|id| has_line(evs, id, format!("round 2 {id}").as_bytes()))
    });
    for id in &alive {
        let lines = log.lines(id);
        let want: Vec<Vec<u8>> = std::iter::once(format!("hello {id}"))
            .chain((0..3).map(|r| format!("round {r} {id}")))
            .map(String::into_bytes)
            .collect();
        assert_eq!(lines, want, "{id}");
        assert!(log.finishes(id).is_empty(), "{id}");
    }
    // No late duplicate report of the killed ones.
    std::thread::sleep(Duration::from_millis(100));
    log.wait("still 10", |evs| count_finishes(evs) == 10);

    master.stop_all().unwrap();
    for id in &ids {
        assert_eq!(log.finishes(id).len(), 1, "{id}");
    }
    for id in &alive {
        let f = log.finishes(id);
        // cat and sh die of TERM.
        assert_eq!(f[0].as_ref().unwrap().signal(), Some(Signal::TERM), "{id}");
    }
}

#[test]
fn master_and_handle_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Master>();
    check::<forkexec::agent::Handle>();
    check::<WorkerState>();
}

#[test]
fn scale_500_workers() {
    // AGENT_SCALE_WORKERS=1000 for a bigger run (fds: 3 per worker).
    let workers: usize = std::env::var("AGENT_SCALE_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    const LINES: usize = 100;
    let _g = common::start("scale_500_workers", 120);
    // Reset the peak RSS (VmHWM) so that earlier tests of this binary do not count.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_field("VmRSS:");
    // libtest starts threads of its own at any time, so threads are counted by name: the
    // crate names each of its threads "forkexec-*", an unnamed thread would inherit the
    // name of the thread that spawned it (this one's, or the loop's).
    let me = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
    let me = me.trim_end().to_string();
    let ours = || (threads_named(&me), threads_like("forkexec"));
    // An earlier test's loop thread may still be on its way out after its Master was
    // dropped (it is joined, but the kernel may list it a moment longer).
    wait_for("earlier tests' crate threads to end", || ours().1 == 0);
    let (mine, crate_threads) = ours();
    assert_eq!(crate_threads, 0);
    let master = Master::new().unwrap();
    wait_for("the loop thread's name", || ours() == (mine, 1));
    assert_eq!(threads_named("forkexec-agent"), 1);
    let threads_master = status_field("Threads:");

    let bad = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    let t_start = Instant::now();
    let mut max_threads = 0;
    for w in 0..workers {
        let (bad, total, done_tx) = (bad.clone(), total.clone(), done_tx.clone());
        let mut next = 0usize;
        let on_line = move |_: &str, line: Line<'_>| {
            if line != format!("{w} {next}").as_bytes() {
                bad.fetch_add(1, Ordering::Relaxed);
            }
            next += 1;
            total.fetch_add(1, Ordering::Relaxed);
            if next == LINES {
                let _ = done_tx.send(w);
            }
        };
        master
            .start(&format!("w{w}"), cat(), on_line, |_, _| {})
            .unwrap();
        if w % 50 == 49 {
            max_threads = max_threads.max(status_field("Threads:"));
            assert_eq!(ours(), (mine, 1), "a thread was started for worker {w}");
        }
    }
    let t_started = t_start.elapsed();
    let rss_started = status_field("VmRSS:");

    let t0 = Instant::now();
    for j in 0..LINES {
        for w in 0..workers {
            master.input(&format!("w{w}"), format!("{w} {j}")).unwrap();
        }
    }
    let t_sent = t0.elapsed();
    let mut done = vec![false; workers];
    for _ in 0..workers {
        let w = done_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "replies missing: {} of {}",
                    total.load(Ordering::Relaxed),
                    workers * LINES
                )
            });
        assert!(!done[w]);
        done[w] = true;
    }
    let t_all = t0.elapsed();
    assert_eq!(
        bad.load(Ordering::Relaxed),
        0,
        "lines out of order or wrong"
    );
    assert_eq!(total.load(Ordering::Relaxed), workers * LINES);
    assert_eq!(ours(), (mine, 1));

    let t1 = Instant::now();
    master.stop_all().unwrap();
    let t_stop = t1.elapsed();
    drop(master);
    let lines = (workers * LINES) as f64;
    println!(
        "agent scale: {workers} workers started in {:.0} ms; {} lines queued in {:.0} ms, \
         all echoed back in {:.0} ms = {:.0} lines/s round trip; process threads {}..{} \
         (1 loop thread, the rest libtest's); \
         stop_all {:.0} ms; VmRSS {} KiB before, {} KiB with {workers} workers; VmHWM {} KiB",
        t_started.as_secs_f64() * 1e3,
        workers * LINES,
        t_sent.as_secs_f64() * 1e3,
        t_all.as_secs_f64() * 1e3,
        lines / t_all.as_secs_f64(),
        threads_master,
        max_threads,
        t_stop.as_secs_f64() * 1e3,
        rss_before,
        rss_started,
        status_field("VmHWM:"),
    );
}

#[test]
fn partial_and_split_lines() {
    let _g = common::start("partial_and_split_lines", 60);
    let master = Master::new().unwrap();
    let log = Log::default();
    master
        .start(
            "split",
            sh("printf 'ab'; sleep 0.1; printf 'c\\n'; printf 'd\\ne'; sleep 0.05; printf 'f\\n\\nlast'"),
            log.on_line(),
            log.on_finish(),
        )
        .unwrap();
    log.wait("finish", |evs| count_finishes(evs) == 1);
    assert_eq!(
        log.lines("split"),
        [&b"abc"[..], b"d", b"ef", b"", b"last"],
        "a partial line is held until its newline; the last one comes at end of file"
    );
    // The last line had no newline: it is flagged.
    assert_eq!(log.flags("split"), [true, true, true, true, false]);
    // on_finish comes after every line.
    let g = log.0.0.lock().unwrap();
    assert!(matches!(g.last(), Some(Ev::Finish(..))));
}

#[test]
fn binary_lines() {
    let _g = common::start("binary_lines", 60);
    let master = Master::new().unwrap();
    let log = Log::default();
    master
        .start(
            "bin",
            sh("printf '\\377\\376\\000x\\r\\n\\200\\n'"),
            log.on_line(),
            log.on_finish(),
        )
        .unwrap();
    log.wait("finish", |evs| count_finishes(evs) == 1);
    assert_eq!(
        log.lines("bin"),
        [&[0xff, 0xfe, 0, b'x', b'\r'][..], &[0x80][..]],
        "lines are bytes; only \\n is removed"
    );
}

#[test]
fn line_of_10_mib() {
    let _g = common::start("line_of_10_mib", 120);
    const MIB: usize = 1 << 20;
    let master = Master::new().unwrap();
    let log = Log::default();
    let script = "head -c 10485760 /dev/zero | tr '\\0' a; echo; echo after";
    // Default max_line (1 MiB): ten pieces of exactly 1 MiB.
    master
        .start("pieces", sh(script), log.on_line(), log.on_finish())
        .unwrap();
    // A larger max_line: one line.
    let opts = WorkerOptions::new().max_line(16 * MIB);
    master
        .start_with("whole", sh(script), opts, log.on_line(), log.on_finish())
        .unwrap();
    log.wait("finishes", |evs| count_finishes(evs) == 2);
    let pieces = log.lines("pieces");
    assert_eq!(pieces.len(), 11);
    for p in &pieces[..10] {
        assert_eq!(p.len(), MIB);
        assert!(p.iter().all(|&b| b == b'a'));
    }
    assert_eq!(pieces[10], b"after");
    // Cut pieces are flagged: all but the last piece of the long line.
    let mut want = vec![false; 9];
    want.extend([true, true]);
    assert_eq!(log.flags("pieces"), want);
    let whole = log.lines("whole");
    assert_eq!(whole.len(), 2);
    assert_eq!(whole[0].len(), 10 * MIB);
    assert_eq!(whole[1], b"after");
    assert_eq!(log.flags("whole"), [true, true]);
}

#[test]
fn stuck_worker_does_not_block() {
    let _g = common::start("stuck_worker_does_not_block", 60);
    let master = Master::new().unwrap();
    let log = Log::default();
    let opts = WorkerOptions::new().input_limit(64 * 1024);
    master
        .start_with(
            "deaf",
            sh("exec sleep 30"),
            opts,
            log.on_line(),
            log.on_finish(),
        )
        .unwrap();
    master
        .start("echo", cat(), log.on_line(), log.on_finish())
        .unwrap();
    let line = vec![b'x'; 1023];
    let t0 = Instant::now();
    let mut accepted = 0usize;
    let err = loop {
        match master.input("deaf", &line) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        // The other worker keeps working meanwhile.
        if accepted % 16 == 0 {
            let msg = format!("ping {accepted}");
            master.input("echo", &msg).unwrap();
            log.wait("echo", |evs| has_line(evs, "echo", msg.as_bytes()));
        }
        assert!(accepted < 10_000, "input never refused");
    };
    let took = t0.elapsed();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert_eq!(err.errno(), Some(libc::ENOBUFS), "{err}");
    // The pipe (64 KiB by default) plus the buffer (64 KiB), in KiB lines.
    assert!((64..=1100).contains(&accepted), "accepted {accepted} lines");
    assert!(took < Duration::from_secs(10), "input blocked: {took:?}");
    // Still refused, still not blocking; the other worker still answers.
    assert_eq!(
        master.input("deaf", &line).unwrap_err().errno(),
        Some(libc::ENOBUFS)
    );
    master.input("echo", "still here").unwrap();
    log.wait("echo", |evs| has_line(evs, "echo", b"still here"));
    master.stop_all().unwrap();
    assert_eq!(
        log.finishes("deaf")[0].as_ref().unwrap().signal(),
        Some(Signal::TERM)
    );
}

fn fast_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_secs(1),
        max_restarts: 3,
        window: Duration::from_secs(60),
    }
}

#[test]
fn restart_policies() {
    let _g = common::start("restart_policies", 60);
    let master = Master::new().unwrap();
    let log = Log::default();
    let start = |id: &str, cmd: Cmd, r: Restart| {
        let opts = WorkerOptions::new().restart(r).backoff(fast_backoff());
        master
            .start_with(id, cmd, opts, log.on_line(), log.on_finish())
            .unwrap();
    };
    start("fail-onfailure", sh("echo run; exit 3"), Restart::OnFailure);
    start("fail-never", sh("exit 3"), Restart::Never);
    start("ok-always", sh("echo run"), Restart::Always);
    start("ok-onfailure", sh("exit 0"), Restart::OnFailure);
    let ids = ["fail-onfailure", "fail-never", "ok-always", "ok-onfailure"];
    wait_for("all over", || {
        ids.iter().all(|id| master.state(id).unwrap().is_over())
    });
    // Nothing more comes once they are over.
    std::thread::sleep(Duration::from_millis(300));

    let f = log.finishes("fail-onfailure");
    assert_eq!(f.len(), 4, "first run + 3 restarts, then gave up: {f:?}");
    assert!(f.iter().all(|e| e.as_ref().unwrap().exit_code() == 3));
    assert_eq!(log.lines("fail-onfailure").len(), 4);
    // Exponential back-off: 50, 100, 200 ms between the runs (the schedule itself is
    // pinned exactly by the runloop's unit tests). Here only a bound the code guarantees
    // whatever the load, all on the loop thread's clock: run k's line reaches on_line
    // before the loop reaps run k and schedules the restart at (its now) + delay; run
    // k+1 is spawned no earlier than that, and its line reaches on_line later still. So
    // the gap between the lines is at least the delay; load can only lengthen it.
    let t = log.line_times("fail-onfailure");
    for (k, want) in [50u64, 100, 200].into_iter().enumerate() {
        let gap = t[k + 1] - t[k];
        assert!(
            gap >= Duration::from_millis(want),
            "restart {k}: {gap:?} < {want} ms"
        );
    }
    let st = master.state("fail-onfailure").unwrap();
    assert_eq!(st.exit_state().unwrap().exit_code(), 3);

    assert_eq!(log.finishes("fail-never").len(), 1);
    let a = log.finishes("ok-always");
    assert_eq!(a.len(), 4, "{a:?}");
    assert!(a.iter().all(|e| e.as_ref().unwrap().success()));
    assert_eq!(log.lines("ok-always").len(), 4);
    assert_eq!(log.finishes("ok-onfailure").len(), 1);

    // A finished id can be started again.
    start("fail-never", sh("exit 5"), Restart::Never);
    wait_for("rerun", || log.finishes("fail-never").len() == 2);
    assert_eq!(
        log.finishes("fail-never")[1].as_ref().unwrap().exit_code(),
        5
    );
}

#[test]
fn restart_that_cannot_spawn_reports_the_error() {
    let _g = common::start("restart_that_cannot_spawn_reports_the_error", 60);
    let tmp = TempDir::new("gone");
    let dir = tmp.0.join("cwd");
    std::fs::create_dir_all(&dir).unwrap();
    let master = Master::new().unwrap();
    let log = Log::default();
    let mut cmd = sh("exit 1");
    cmd.dir(&dir);
    let mut b = fast_backoff();
    b.initial = Duration::from_millis(100);
    let opts = WorkerOptions::new().restart(Restart::OnFailure).backoff(b);
    master
        .start_with("gone", cmd, opts, log.on_line(), log.on_finish())
        .unwrap();
    log.wait("first run", |evs| count_finishes(evs) == 1);
    // The directory disappears: the restarts fail in the child's chdir.
    std::fs::remove_dir(&dir).unwrap();
    wait_for("gave up", || master.state("gone").unwrap().is_over());
    let f = log.finishes("gone");
    assert_eq!(f.len(), 4, "{f:?}");
    assert_eq!(f[0].as_ref().unwrap().exit_code(), 1);
    for e in &f[1..] {
        assert_eq!(e.as_ref().unwrap_err(), &ErrorKind::NotFound);
    }
    assert!(matches!(
        master.state("gone"),
        Some(WorkerState::Failed(ErrorKind::NotFound))
    ));
}

#[test]
fn stop_during_backoff_and_restart_window() {
    let _g = common::start("stop_during_backoff_and_restart_window", 60);
    let master = Master::new().unwrap();
    let log = Log::default();
    let b = Backoff {
        initial: Duration::from_secs(20),
        ..fast_backoff()
    };
    let opts = WorkerOptions::new().restart(Restart::Always).backoff(b);
    master
        .start_with("slow", sh("exit 0"), opts, log.on_line(), log.on_finish())
        .unwrap();
    wait_for("back-off", || {
        matches!(
            master.state("slow"),
            Some(WorkerState::Restarting { restarts: 1 })
        )
    });
    // During the back-off, input is taken for the next process, and close_input is
    // remembered for it: no ProcessDone dance.
    master.input("slow", "x").unwrap();
    master.input("slow", "y").unwrap();
    master.close_input("slow").unwrap();
    assert_eq!(
        master.input("slow", "z").unwrap_err().errno(),
        Some(libc::EPIPE)
    );
    let t0 = Instant::now();
    master.stop("slow").unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(
        master
            .state("slow")
            .unwrap()
            .exit_state()
            .unwrap()
            .success()
    );
    // The process, then the cancelled restart, which hands the queue back.
    let f = log.finishes("slow");
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f[0].as_ref().unwrap().success());
    assert_eq!(f[1], Err(ErrorKind::ProcessDone));
    let d = log.deliveries("slow");
    assert!(d[0].restart && d[0].unsent.is_empty() && d[0].lines == 0);
    assert!(!d[1].restart && d[1].pid.is_none());
    assert_eq!(d[1].unsent, [b"x".to_vec(), b"y".to_vec()]);
    assert_eq!(
        master.input("slow", "late").unwrap_err().kind(),
        ErrorKind::ProcessDone
    );
}

#[test]
fn stop_kills_after_grace() {
    let _g = common::start("stop_kills_after_grace", 60);
    let master = Master::new().unwrap();
    let log = Log::default();
    let grace = Duration::from_millis(300);
    let opts = WorkerOptions::new().grace(grace);
    master
        .start_with(
            "stubborn",
            sh("trap '' TERM; echo ready; exec sleep 30"),
            opts,
            log.on_line(),
            log.on_finish(),
        )
        .unwrap();
    let opts = WorkerOptions::new().grace(Duration::from_secs(20));
    master
        .start_with(
            "polite",
            sh("echo ready; exec sleep 30"),
            opts,
            log.on_line(),
            log.on_finish(),
        )
        .unwrap();
    log.wait("ready", |evs| {
        has_line(evs, "stubborn", b"ready") && has_line(evs, "polite", b"ready")
    });

    let t0 = Instant::now();
    master.stop("stubborn").unwrap();
    let took = t0.elapsed();
    assert!(took >= grace, "killed before the grace period: {took:?}");
    assert!(took < grace + Duration::from_secs(5), "{took:?}");
    let f = log.finishes("stubborn");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].as_ref().unwrap().signal(), Some(Signal::KILL));

    let t0 = Instant::now();
    master.remove("polite").unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "TERM was enough");
    assert_eq!(
        log.finishes("polite")[0].as_ref().unwrap().signal(),
        Some(Signal::TERM)
    );
    assert_eq!(master.list(), ["stubborn"]);
    assert_eq!(
        master.stop("polite").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Stopping a worker that is over is a no-op.
    master.stop("stubborn").unwrap();
    assert_eq!(log.finishes("stubborn").len(), 1);
}

#[test]
fn stderr_modes_and_close_input() {
    let _g = common::start("stderr_modes_and_close_input", 60);
    let master = Master::new().unwrap();
    let log = Log::default();
    let script = "while read l; do echo \"out $l\"; echo \"err $l\" >&2; done; echo bye";
    let opts = WorkerOptions::new().stderr(Stderr::lines(log.on_err()));
    master
        .start_with("lines", sh(script), opts, log.on_line(), log.on_finish())
        .unwrap();
    let opts = WorkerOptions::new().stderr(Stderr::null());
    master
        .start_with("null", sh(script), opts, log.on_line(), log.on_finish())
        .unwrap();
    for id in ["lines", "null"] {
        master.input(id, "1").unwrap();
        master.input(id, "2").unwrap();
        master.close_input(id).unwrap();
        assert_eq!(
            master.input(id, "3").unwrap_err().errno(),
            Some(libc::EPIPE)
        );
    }
    log.wait("finishes", |evs| count_finishes(evs) == 2);
    for id in ["lines", "null"] {
        assert_eq!(log.lines(id), [&b"out 1"[..], b"out 2", b"bye"]);
        assert!(log.finishes(id)[0].as_ref().unwrap().success());
    }
    let g = log.0.0.lock().unwrap();
    let errs: Vec<(&str, &[u8])> = g
        .iter()
        .filter_map(|e| match e {
            Ev::ErrLine(i, l) => Some((i.as_str(), l.as_slice())),
            _ => None,
        })
        .collect();
    assert_eq!(errs, [("lines", &b"err 1"[..]), ("lines", b"err 2")]);
}

#[test]
fn input_is_one_line_per_call() {
    let _g = common::start("input_is_one_line_per_call", 60);
    let master = Master::new().unwrap();
    let h = master.handle();
    let log = Log::default();
    master
        .start("cat", cat(), log.on_line(), log.on_finish())
        .unwrap();
    // A newline anywhere would make one call two lines: refused, nothing queued.
    for bad in [&b"a\nb"[..], b"trailing\n", b"\n", b"\nleading"] {
        let e = master.input("cat", bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
        let e = h.input("cat", bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
    }
    // Checked before anything else.
    let e = master.input("nobody", "x\ny").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // Every other byte goes through as it is.
    master.input("cat", "one").unwrap();
    h.input("cat", b"\r\0 two\xff").unwrap();
    master.input("cat", "").unwrap();
    master.close_input("cat").unwrap();
    log.wait("cat ends", |evs| count_finishes(evs) == 1);
    assert_eq!(log.lines("cat"), [&b"one"[..], b"\r\0 two\xff", b""]);
    assert!(log.finishes("cat")[0].as_ref().unwrap().success());
}

#[test]
fn callbacks_rules() {
    let _g = common::start("callbacks_rules", 60);
    let master = Master::new().unwrap();
    let log = Log::default();
    let h = master.handle();
    let (tx, rx) = mpsc::channel();
    // From a callback: blocking requests are refused, non-blocking ones work.
    let on_line = {
        let (h, log) = (h.clone(), log.clone());
        move |id: &str, line: Line<'_>| {
            if line == b"go" {
                let stop = h.stop(id).unwrap_err().kind();
                let all = h.stop_all().unwrap_err().kind();
                let rm = h.remove(id).unwrap_err().kind();
                tx.send((stop, all, rm)).unwrap();
                let mut child_log = log.on_line();
                h.start(
                    "child",
                    cat(),
                    move |id, l| child_log(id, l),
                    log.on_finish(),
                )
                .unwrap();
                h.input("child", "from a callback").unwrap();
                h.stop_nowait(id).unwrap();
            }
        }
    };
    master
        .start("parent", cat(), on_line, log.on_finish())
        .unwrap();
    master.input("parent", "go").unwrap();
    let (a, b, c) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(
        (a, b, c),
        (
            ErrorKind::InvalidInput,
            ErrorKind::InvalidInput,
            ErrorKind::InvalidInput
        )
    );
    log.wait("child answers, parent stopped", |evs| {
        has_line(evs, "child", b"from a callback") && !finishes_of(evs, "parent").is_empty()
    });

    // A panicking callback: the worker is stopped, on_finish still comes.
    master
        .start(
            "panicky",
            sh("echo boom; exec sleep 30"),
            |_, _| panic!("callback panic (expected by the test)"),
            log.on_finish(),
        )
        .unwrap();
    log.wait("panicky over", |evs| {
        !finishes_of(evs, "panicky").is_empty()
    });
    assert!(master.state("panicky").unwrap().is_over());
    // The loop survived.
    master.input("child", "still alive").unwrap();
    log.wait("child again", |evs| has_line(evs, "child", b"still alive"));

    drop(master);
    // The handle outlives the master: requests fail, nothing hangs.
    assert_eq!(h.input("child", "x").unwrap_err().kind(), ErrorKind::Io);
    assert!(h.list().is_empty());
    assert_eq!(log.finishes("child").len(), 1);
}

/// A reply from a callback goes to the worker the id names in that master: its own
/// worker (the loop's fast path), another worker of the same master, or the worker of the
/// same id in another master (never to the calling worker by mistake).
#[test]
fn replies_from_a_callback_reach_the_named_worker() {
    let _g = common::start("replies_from_a_callback_reach_the_named_worker", 60);
    let (a, b) = (Master::new().unwrap(), Master::new().unwrap());
    let (log_a, log_b) = (Log::default(), Log::default());
    let (ha, hb) = (a.handle(), b.handle());
    // In `a`, "w" forwards "to-b" to `b`'s "w", "to-x" to `a`'s "x", and answers "ping"
    // itself with "pong".
    let on_line = {
        let mut log_line = log_a.on_line();
        move |id: &str, line: Line<'_>| {
            match &*line {
                b"to-b" => hb.input(id, "from a's w").unwrap(),
                b"to-x" => ha.input("x", "from w").unwrap(),
                b"ping" => ha.input(id, "pong").unwrap(),
                _ => {}
            }
            log_line(id, line);
        }
    };
    a.start("w", cat(), on_line, log_a.on_finish()).unwrap();
    a.start("x", cat(), log_a.on_line(), log_a.on_finish())
        .unwrap();
    b.start("w", cat(), log_b.on_line(), log_b.on_finish())
        .unwrap();
    for l in ["to-b", "to-x", "ping"] {
        a.input("w", l).unwrap();
    }
    log_a.wait("a's lines", |evs| {
        has_line(evs, "x", b"from w") && has_line(evs, "w", b"pong")
    });
    log_b.wait("b's line", |evs| has_line(evs, "w", b"from a's w"));
    a.stop_all().unwrap();
    b.stop_all().unwrap();
    let got = |l: &[u8]| l.to_vec();
    assert_eq!(
        log_a.lines("w"),
        [got(b"to-b"), got(b"to-x"), got(b"ping"), got(b"pong")]
    );
    assert_eq!(log_a.lines("x"), [got(b"from w")]);
    assert_eq!(log_b.lines("w"), [got(b"from a's w")]);
    assert_eq!(
        log_a.deliveries("w")[0].lines,
        4,
        "the caller's own queue got pong only"
    );
}

/// Several loops: workers spread over them, a reply from a callback to a worker on another
/// loop goes through (the other loop is woken), callbacks of different loops run at once
/// while each worker's stay in order, blocking requests are refused on every loop, and
/// dropping the master stops and reaps everything.
#[test]
fn several_loops_pass_a_line_around_a_ring() {
    let _g = common::start("several_loops_pass_a_line_around_a_ring", 60);
    const WORKERS: usize = 6;
    const HOPS: usize = 600;
    assert_eq!(
        Master::with_loops(0).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        Master::with_loops(1025).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let master = Master::with_loops(3).unwrap();
    wait_for("three loop threads", || {
        threads_named("forkexec-agent") >= 3
    });
    let log = Log::default();
    let (refused_tx, refused_rx) = mpsc::channel();
    for i in 0..WORKERS {
        let h = master.handle();
        let mut log_line = log.on_line();
        let refused = refused_tx.clone();
        let on_line = move |id: &str, line: Line<'_>| {
            let k: usize = std::str::from_utf8(&line).unwrap().parse().unwrap();
            if k < WORKERS {
                // Each worker's first line: a blocking request from this loop is refused.
                refused.send(h.stop_all().unwrap_err().kind()).unwrap();
            }
            if k < HOPS {
                let next = format!("w{}", (i + 1) % WORKERS);
                h.input(&next, (k + 1).to_string()).unwrap();
            }
            log_line(id, line);
        };
        master
            .start(&format!("w{i}"), cat(), on_line, log.on_finish())
            .unwrap();
    }
    master.input("w0", "0").unwrap();
    log.wait("the line's last hop", |evs| {
        has_line(
            evs,
            &format!("w{}", HOPS % WORKERS),
            HOPS.to_string().as_bytes(),
        )
    });
    for _ in 0..WORKERS {
        assert_eq!(
            refused_rx.recv_timeout(Duration::from_secs(30)).unwrap(),
            ErrorKind::InvalidInput
        );
    }
    drop(master);
    let left = common::children();
    for i in 0..WORKERS {
        let id = format!("w{i}");
        let want: Vec<Vec<u8>> = (i..=HOPS)
            .step_by(WORKERS)
            .map(|k| k.to_string().into_bytes())
            .collect();
        assert_eq!(log.lines(&id), want, "{id}");
        assert_eq!(log.finishes(&id).len(), 1, "{id}");
        let pid = log.deliveries(&id)[0].pid.expect("a pid");
        assert!(!left.contains(&pid), "{id}: pid {pid} reaped on drop");
    }
}

#[test]
fn no_leaks_after_stop_all() {
    let _g = common::start("no_leaks_after_stop_all", 60);
    let master = Master::new().unwrap();
    let fds_master = common::open_fds();
    let log = Log::default();
    for i in 0..20 {
        let id = format!("w{i}");
        let opts = match i % 4 {
            0 => WorkerOptions::new().stderr(Stderr::lines(log.on_err())),
            1 => WorkerOptions::new().restart(Restart::Always),
            2 => WorkerOptions::new().input_limit(4096),
            _ => WorkerOptions::new().stderr(Stderr::null()),
        };
        let cmd = match i % 5 {
            0 => cat(),
            1 => sh("echo quick"),
            2 => sh("echo oops >&2; exec sleep 30"),
            3 => sh("sleep 3 & wait"),
            _ => sh("exec sleep 30"),
        };
        master
            .start_with(&id, cmd, opts, log.on_line(), log.on_finish())
            .unwrap();
        // Some input stays queued (sleep never reads).
        let _ = master.input(&id, vec![b'y'; 3000]);
    }
    std::thread::sleep(Duration::from_millis(200));
    master.stop_all().unwrap();
    assert_eq!(common::open_fds(), fds_master, "fds left after stop_all");
    // `sh -c 'sleep 3 & wait'` leaves its sleep to init: only direct children count.
    assert!(
        common::children().is_empty(),
        "children left after stop_all"
    );
    assert!(
        master
            .list()
            .iter()
            .all(|id| master.state(id).unwrap().is_over())
    );
    let mut starts: HashMap<String, usize> = HashMap::new();
    for id in master.list() {
        starts.insert(id.clone(), log.finishes(&id).len());
    }
    assert!(starts.values().all(|&n| n >= 1));
    drop(master);
}

#[test]
fn dropping_the_master_stops_everything() {
    let _g = common::start("dropping_the_master_stops_everything", 60);
    let log = Log::default();
    {
        let master = Master::new().unwrap();
        for i in 0..10 {
            master
                .start(&format!("w{i}"), cat(), log.on_line(), log.on_finish())
                .unwrap();
        }
    }
    assert!(common::children().is_empty());
    assert_eq!(log.0.0.lock().map(|g| count_finishes(&g)).unwrap(), 10);
}

/// A worker that logs every line it reads to `dir/<its pid>`, one write per line (mawk
/// in interactive mode: its reads are at most 4 KiB, its writes flushed per line; another
/// awk without that mode, whose larger read-ahead only means more lines die with it).
fn logger(dir: &std::path::Path) -> Cmd {
    let mut c = sh(r#"prog='{ print > f; fflush(f) }'
if awk -W version 2>/dev/null | grep -q mawk; then exec awk -W interactive -v f="$0/$$" "$prog"; fi
exec awk -v f="$0/$$" "$prog""#);
    c.arg(dir);
    c
}

/// The lines of `path`, none if it does not exist (a process killed before its first
/// line).
fn read_lines(path: &std::path::Path) -> Vec<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => b
            .split_inclusive(|&c| c == b'\n')
            .map(|l| l.strip_suffix(b"\n").expect("whole lines").to_vec())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// Issue 15's delivery proof: 8 workers that log every line they read, a 200,000-line
/// stream, workers killed at random (restarted), then input closed. For each worker, the
/// master's per-process counts cut the accepted lines into consecutive ranges, one per
/// process: each process's log is a prefix of its range (it read in order, and the rest
/// died in its pipe or its buffer, at most the pipe plus awk's buffer), a process that
/// ended by itself read its whole range, and accepted = written + handed back. No line is
/// logged twice.
#[test]
fn delivery_under_random_kills() {
    const WORKERS: usize = 8;
    const LINES: usize = 200_000;
    const PIPE: usize = 4096;
    let _g = common::start("delivery_under_random_kills", 300);
    let tmp = TempDir::new("kills");
    let master = Master::new().unwrap();
    let ends: Arc<Mutex<Vec<(String, Finish)>>> = Arc::default();
    let backoff = Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(20),
        max_restarts: 100_000,
        window: Duration::from_secs(60),
    };
    let ids: Vec<String> = (0..WORKERS).map(|i| format!("w{i}")).collect();
    for id in &ids {
        let opts = WorkerOptions::new()
            .restart(Restart::OnFailure)
            .backoff(backoff)
            .stderr(Stderr::null())
            .input_limit(16 * 1024)
            .stdin_pipe_size(PIPE);
        let ends = ends.clone();
        master
            .start_with(
                id,
                logger(&tmp.0),
                opts,
                |_, _| {},
                move |id, end| {
                    ends.lock().unwrap().push((id.to_string(), end));
                },
            )
            .unwrap();
    }

    // The killer: SIGKILL to a random worker's running process every 1-8 ms.
    let stop_killing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let (h, ids, stop) = (master.handle(), ids.clone(), stop_killing.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::new();
            let mut kills = 0;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1 + rng.below(8) as u64));
                let id = &ids[rng.below(ids.len())];
                if let Some(pid) = h.state(id).and_then(|s| s.pid()) {
                    if let Ok(p) = forkexec::find_process(pid) {
                        if p.signal(Signal::KILL).is_ok() {
                            kills += 1;
                        }
                    }
                }
            }
            kills
        })
    };

    // The producer: every line accepted is remembered, in order, per worker.
    let mut accepted: HashMap<&str, Vec<Vec<u8>>> = HashMap::new();
    for n in 0..LINES {
        let id = &ids[n % WORKERS];
        let line = format!("{id} {n:07}").into_bytes();
        match master.input_wait(id, &line, Some(Duration::from_secs(60))) {
            Ok(()) => accepted.entry(id).or_default().push(line),
            Err(e) => panic!("line {n} to {id}: {e}"),
        }
    }
    stop_killing.store(true, Ordering::SeqCst);
    let kills = killer.join().unwrap();
    for id in &ids {
        master.close_input(id).unwrap();
    }
    wait_for("every worker over", || {
        ids.iter().all(|id| master.state(id).unwrap().is_over())
    });
    drop(master);

    let ends = std::mem::take(&mut *ends.lock().unwrap());
    let mut seen: std::collections::HashSet<Vec<u8>> = Default::default();
    let (mut died_total, mut processes, mut killed) = (0usize, 0usize, 0usize);
    let mut worst = 0usize;
    for id in &ids {
        let acc = &accepted[id.as_str()];
        let mine: Vec<&Finish> = ends
            .iter()
            .filter(|(i, _)| i == id)
            .map(|(_, f)| f)
            .collect();
        let (last, before) = mine.split_last().expect("at least one end");
        assert!(!last.restart, "{id}: the last end is final");
        assert!(
            before.iter().all(|f| f.restart && f.unsent.is_empty()),
            "{id}"
        );
        let mut next = 0usize;
        for f in &mine {
            let n = f.lines_written as usize;
            let range = &acc[next..next + n];
            next += n;
            let Some(pid) = f.pid else {
                assert_eq!(
                    (n, f.bytes_written),
                    (0, 0),
                    "{id}: no process, nothing written"
                );
                continue;
            };
            processes += 1;
            let log = read_lines(&tmp.0.join(pid.to_string()));
            assert!(
                log.len() <= n,
                "{id} pid {pid}: read {} > written {n}",
                log.len()
            );
            assert_eq!(log[..], range[..log.len()], "{id} pid {pid}: not a prefix");
            for l in &log {
                assert!(seen.insert(l.clone()), "{id}: line {l:?} read twice");
            }
            let died: usize = range[log.len()..].iter().map(|l| l.len() + 1).sum();
            let status = f.result.as_ref().expect("a process");
            if status.signal() == Some(Signal::KILL) {
                killed += 1;
                worst = worst.max(died);
                // What died: in the pipe (PIPE bytes, plus the part of a line the master
                // was writing when the pipe filled), or in awk's read buffer (4 KiB).
                assert!(died <= 2 * PIPE + 4096, "{id} pid {pid}: {died} bytes died");
            } else {
                assert!(status.success(), "{id} pid {pid}: {status}");
                assert_eq!(died, 0, "{id} pid {pid}: ended by itself, read everything");
            }
            died_total += range.len() - log.len();
        }
        // accepted = written + handed back.
        assert_eq!(
            acc[next..],
            last.unsent[..],
            "{id}: the rest is handed back"
        );
        assert_eq!(next + last.unsent.len(), acc.len(), "{id}");
    }
    let total: usize = accepted.values().map(Vec::len).sum();
    assert_eq!(total, LINES, "input_wait accepted every line");
    assert_eq!(
        seen.len() + died_total,
        LINES,
        "read + died = written = accepted"
    );
    assert!(std::fs::read_dir(&tmp.0).unwrap().count() <= processes);
    println!(
        "delivery: {LINES} lines to {WORKERS} workers; {kills} kills sent, {killed} processes \
         killed of {processes}; {died_total} lines died in pipes or buffers (worst {worst} \
         bytes for one process), 0 lost or duplicated by the master"
    );
}

/// Issue 15: what a restart does with queued input (carries it over, the line cut by the
/// end of a process again whole) and what the end of a worker does (hands it back), with
/// exact counts: lines of 1001 bytes into a 4 KiB pipe that no process reads. (How much a
/// pipe takes depends on how the writes were cut, so the counts are checked against each
/// other, not against fixed numbers.)
#[test]
fn restart_carries_the_queue_over_and_the_end_hands_it_back() {
    let _g = common::start("restart_carries_the_queue_over", 60);
    let master = Master::new().unwrap();
    let log = Log::default();
    let backoff = Backoff {
        initial: Duration::from_millis(10),
        ..fast_backoff()
    };
    let opts = WorkerOptions::new()
        .restart(Restart::Always)
        .backoff(backoff)
        .stdin_pipe_size(4096);
    let mut deaf = Cmd::new("sleep");
    deaf.arg("30");
    master
        .start_with("deaf", deaf, opts, log.on_line(), log.on_finish())
        .unwrap();
    let lines: Vec<Vec<u8>> = (0..10u8).map(|i| vec![b'a' + i; 1000]).collect();
    for l in &lines {
        master.input("deaf", l).unwrap();
    }
    // The pipe takes about 4 lines and part of the 5th.
    let pid = master.state("deaf").unwrap().pid().unwrap();
    wait_for("bytes in the pipe", || pipe_fill(pid) > 0);
    forkexec::find_process(pid)
        .unwrap()
        .signal(Signal::KILL)
        .unwrap();
    log.wait("restart", |evs| count_finishes(evs) == 1);
    wait_for("second process", || {
        master
            .state("deaf")
            .unwrap()
            .pid()
            .is_some_and(|p| p != pid)
    });
    // Input is taken across the restart.
    master.input("deaf", "late").unwrap();
    let pid = master.state("deaf").unwrap().pid().unwrap();
    wait_for("bytes in the pipe again", || pipe_fill(pid) > 0);
    master.stop("deaf").unwrap();
    let d = log.deliveries("deaf");
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].restart && d[0].unsent.is_empty(), "{:?}", d[0]);
    assert!(!d[1].restart, "{:?}", d[1]);
    // Each process got whole lines, then maybe part of one: that one went again whole to
    // the next process (or back). No more than the pipe.
    for p in &d {
        assert!(p.bytes > 0 && p.bytes <= 4096, "{p:?}");
        assert_eq!(p.lines, p.bytes / 1001, "{p:?}");
    }
    let (first, second) = (d[0].lines as usize, d[1].lines as usize);
    let mut want: Vec<Vec<u8>> = lines[first + second..].to_vec();
    want.push(b"late".to_vec());
    assert_eq!(d[1].unsent, want, "the rest, in order, handed back");
    assert_eq!(
        first + second + d[1].unsent.len(),
        11,
        "accepted = written + handed back"
    );
    assert_eq!(
        log.finishes("deaf")[0].as_ref().unwrap().signal(),
        Some(Signal::KILL)
    );
}

/// The bytes waiting in the stdin pipe of process `pid` (0 if it cannot be seen).
fn pipe_fill(pid: i32) -> usize {
    std::fs::File::open(format!("/proc/{pid}/fd/0"))
        .ok()
        .and_then(|f| rustix::io::ioctl_fionread(&f).ok())
        .map_or(0, |n| n as usize)
}

/// Issue 15: a blocking producer at a 16 KiB input limit costs no more CPU than at 1 MiB
/// (+10%): it sleeps while the queue is full and is woken once it drained to half, so it
/// never spins. Measured as the producer thread's own CPU time (getrusage RUSAGE_THREAD),
/// best of several rounds.
#[test]
fn blocking_input_costs_the_same_at_any_limit() {
    const LINES: usize = 200_000;
    let _g = common::start("blocking_input_costs_the_same_at_any_limit", 240);
    // The producer, the loop thread and the workers on one CPU (the loop and `cat`
    // inherit this thread's affinity): what is compared is the CPU each limit costs, not
    // where the scheduler happened to put three busy tasks on a shared machine.
    let _pin = PinnedToOneCpu::new();
    let master = Master::new().unwrap();
    let line = [b'x'; 40];
    // (CPU of the producer thread, its voluntary context switches) for one stream.
    let round = |limit: usize, k: usize| -> (Duration, i64) {
        let id = format!("sink-{limit}-{k}");
        let opts = WorkerOptions::new().input_limit(limit);
        let (tx, rx) = mpsc::channel();
        master
            .start_with(
                &id,
                sh("exec cat >/dev/null"),
                opts,
                |_, _| {},
                move |_, e| {
                    tx.send(e.lines_written).unwrap();
                },
            )
            .unwrap();
        let before = thread_usage();
        for _ in 0..LINES {
            master.input_wait(&id, line, None).unwrap();
        }
        let after = thread_usage();
        master.close_input(&id).unwrap();
        assert_eq!(rx.recv().unwrap(), LINES as u64);
        master.remove(&id).unwrap();
        (after.0 - before.0, after.1 - before.1)
    };
    // Best of at least 3 interleaved rounds, more (up to 12) while the machine's noise
    // keeps the ratio above the bound: the best only improves with more rounds, and a
    // producer that spun or slept-and-retried would never reach it.
    let mut best = [(Duration::MAX, 0i64); 2];
    let mut rounds = 0;
    let ratio = |b: &[(Duration, i64); 2]| b[0].0.as_secs_f64() / b[1].0.as_secs_f64();
    while rounds < 3 || (rounds < 12 && ratio(&best) > 1.10) {
        for (i, limit) in [16 * 1024, 1 << 20].into_iter().enumerate() {
            let r = round(limit, rounds);
            if r.0 < best[i].0 {
                best[i] = r;
            }
        }
        rounds += 1;
    }
    let [(small, sw_small), (large, sw_large)] = best;
    println!(
        "blocking producer, {LINES} lines: 16 KiB limit {small:?} CPU ({sw_small} sleeps), \
         1 MiB limit {large:?} ({sw_large} sleeps): {:.3}x, best of {rounds} rounds",
        ratio(&best)
    );
    assert!(ratio(&best) <= 1.10, "16 KiB: {small:?}, 1 MiB: {large:?}");
    // It sleeps about once per quarter of the limit's worth of lines written, not per
    // line: (41 bytes a line) / (3/4 of 16 KiB) = one sleep per ~300 lines.
    let wakes = (LINES * (line.len() + 1)) / (16 * 1024 * 3 / 4);
    assert!(
        sw_small <= 3 * wakes as i64,
        "{sw_small} sleeps, expected about {wakes}"
    );
}

/// This thread's CPU time (user + system) and voluntary context switches.
/// This thread pinned to the CPU it runs on, until dropped (its former affinity back).
struct PinnedToOneCpu(libc::cpu_set_t);

impl PinnedToOneCpu {
    fn new() -> PinnedToOneCpu {
        // SAFETY: cpu_set_t is plain data; the calls get and set this thread's affinity
        // (pid 0) with a valid set of the right size.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            assert_eq!(libc::sched_getaffinity(0, size, &mut old), 0);
            let cpu = libc::sched_getcpu();
            assert!(cpu >= 0);
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut one);
            assert_eq!(libc::sched_setaffinity(0, size, &one), 0);
            PinnedToOneCpu(old)
        }
    }
}

impl Drop for PinnedToOneCpu {
    fn drop(&mut self) {
        // SAFETY: as in `new`, with the set saved there.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0);
        }
    }
}

fn thread_usage() -> (Duration, i64) {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_THREAD is the calling thread.
    let ru = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()), 0);
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_nvcsw)
}

/// Issue 15: input_wait's errors: a timeout, a line that can never fit, a callback.
#[test]
fn input_wait_errors() {
    let _g = common::start("input_wait_errors", 60);
    let master = Master::new().unwrap();
    let opts = WorkerOptions::new().input_limit(100).stdin_pipe_size(4096);
    let mut deaf = Cmd::new("sleep");
    deaf.arg("30");
    master
        .start_with("deaf", deaf, opts, |_, _| {}, |_, _| {})
        .unwrap();
    let short = Some(Duration::from_millis(20));
    let e = master.input_wait("deaf", [b'x'; 100], short).unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOBUFS), "never fits: {e}");
    let t0 = Instant::now();
    let e = (0..10_000)
        .find_map(|_| master.input_wait("deaf", [b'y'; 50], short).err())
        .expect("the pipe fills");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(20));
    // A producer waiting for room is woken when the worker is stopped.
    let h = master.handle();
    let waiter = std::thread::spawn(move || h.input_wait("deaf", [b'z'; 50], None));
    std::thread::sleep(Duration::from_millis(50));
    master.stop("deaf").unwrap();
    let e = waiter.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ProcessDone, "{e}");
    // From a callback it would wait for itself: refused.
    let (tx, rx) = mpsc::channel();
    let h = master.handle();
    master
        .start(
            "cb",
            cat(),
            move |id, _| tx.send(h.input_wait(id, "x", None)).unwrap(),
            |_, _| {},
        )
        .unwrap();
    master.input("cb", "go").unwrap();
    let e = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    master.stop_all().unwrap();
}

/// Issue 15: the four stderr choices. Lines and null are in
/// `stderr_modes_and_close_input`; here a file shared by two workers and a restart, and
/// inherit, checked from a helper process whose stderr this test reads.
#[test]
fn stderr_file_and_inherit() {
    if common::is_helper("stderr_file_and_inherit") {
        let master = Master::new().unwrap();
        let (tx, rx) = mpsc::channel();
        master
            .start(
                "loud",
                sh("echo inherited-stderr-marker >&2"),
                |_, _| {},
                move |_, _| tx.send(()).unwrap(),
            )
            .unwrap();
        rx.recv().unwrap();
        println!("HELPER-OK");
        return;
    }
    let _g = common::start("stderr_file_and_inherit", 60);
    let tmp = TempDir::new("stderr");
    let path = tmp.0.join("err.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let master = Master::new().unwrap();
    let log = Log::default();
    for (id, restart) in [("a", Restart::OnFailure), ("b", Restart::Never)] {
        let opts = WorkerOptions::new()
            .stderr(Stderr::file(file.try_clone().unwrap()))
            .restart(restart)
            .backoff(Backoff {
                max_restarts: 1,
                ..fast_backoff()
            });
        let script = format!("echo {id} to stderr >&2; echo {id} to stdout; exit 1");
        master
            .start_with(id, sh(&script), opts, log.on_line(), log.on_finish())
            .unwrap();
    }
    drop(file);
    wait_for("all over", || {
        ["a", "b"]
            .iter()
            .all(|id| master.state(id).unwrap().is_over())
    });
    let mut got: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    got.sort();
    assert_eq!(got, ["a to stderr", "a to stderr", "b to stderr"]);
    // Stdout still reaches on_line; the master holds no fd of the file.
    assert_eq!(
        log.lines("a"),
        [b"a to stdout".to_vec(), b"a to stdout".to_vec()]
    );
    assert_eq!(log.lines("b"), [b"b to stdout".to_vec()]);
    drop(master);
    let out = common::run_helper("stderr_file_and_inherit", &[], |_| {});
    assert!(out.contains("inherited-stderr-marker"), "{out}");
}
