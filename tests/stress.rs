//! Load: many threads spawning at once, on every strategy, while other threads hammer the
//! allocator and the fd table. No hang, no error, every exit status right, and no child ever
//! sees an fd it was not given.
//!
//! `FORKEXEC_STRESS_N` (default 500) is the number of children per spawner thread per
//! strategy in the storm (the other tests scale from it): raise it for a soak run, lower it
//! for a quick one. The default keeps this file near 20 s on 2 cores.
//!
//! Its own binary, not a module of tests/it: the cost of a spawn (of `fork` above all)
//! grows with the parent's mappings, so these tests run in a process no other test has
//! grown.

mod common;

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::STRATEGIES;
use forkexec::raw::{self, ChildFd, ExecPlan, WaitOptions, WaitStatus};
use forkexec::{Cmd, Stdio};

/// Runs before `main` (and so before any thread exists): one malloc arena for the whole
/// process. By default glibc gives each thread its own arena, so the spawning threads and
/// the allocator threads would never contend for the same lock and a child side that
/// allocated would get away with it. With a single arena, the lock an allocator thread
/// holds is the very lock a forked child's `malloc` would need.
extern "C" fn one_malloc_arena() {
    // SAFETY: mallopt is called once, before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

#[used]
#[unsafe(link_section = ".init_array")]
static ONE_ARENA: extern "C" fn() = one_malloc_arena;

/// Spawner threads: fixed at 8 (the point is contention, not the count of children).
const THREADS: usize = 8;

fn per_thread(default: usize) -> usize {
    std::env::var("FORKEXEC_STRESS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator: the tests need varied sizes, not good randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Background threads that run `body` in a loop until dropped.
struct Noise {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<u64>>,
}

impl Noise {
    fn start(n: usize, body: fn(&mut Rng) -> ()) -> Noise {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|i| {
                let stop = stop.clone();
                thread::spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
                    let mut rounds = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        body(&mut rng);
                        rounds += 1;
                    }
                    rounds
                })
            })
            .collect();
        Noise { stop, threads }
    }

    /// Stops the threads and returns how many rounds they ran in total.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .drain(..)
            .map(|t| t.join().expect("noise thread panicked"))
            .sum()
    }
}

impl Drop for Noise {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One round of allocator pressure: a few Vecs of random sizes (tcache-sized, arena-sized
/// and mmap-sized, the last crossing glibc's 128 KiB mmap threshold), touched and freed.
fn churn_allocator(rng: &mut Rng) {
    let mut keep: Vec<Vec<u8>> = Vec::with_capacity(8);
    for _ in 0..8 {
        let size = match rng.next() % 4 {
            0 => (rng.next() % 64) as usize + 1,
            1 => (rng.next() % 4096) as usize + 1,
            2 => (rng.next() % 65536) as usize + 1,
            _ => (rng.next() % (1 << 20)) as usize + 128 * 1024,
        };
        let mut v = vec![0u8; size];
        v[size / 2] = rng.next() as u8;
        keep.push(v);
    }
    std::hint::black_box(&keep);
}

/// Waits for `n` spawner threads through `done`, failing (instead of hanging until the
/// watchdog) if one does not finish in time.
fn join_all(
    handles: Vec<thread::JoinHandle<()>>,
    done: &mpsc::Receiver<()>,
    limit: Duration,
    what: &str,
) {
    let deadline = Instant::now() + limit;
    for _ in 0..handles.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if done.recv_timeout(left).is_err() {
            // A spawner that never comes back is the symptom of a child wedged between
            // fork and exec (see `spawn_storm_under_allocator_pressure`).
            panic!("{what}: a spawner thread did not finish within {limit:?}: hang");
        }
    }
    for h in handles {
        h.join().expect("spawner panicked");
    }
}

/// 8 threads × N children each per strategy, while two threads churn the allocator.
///
/// This is the malloc-lock-after-fork deadlock test. At the moment of any `fork`/`clone`
/// here, an allocator thread is very likely inside `malloc`/`free` holding an arena lock
/// (or, for the ≥128 KiB sizes, inside `mmap`/`munmap`). A forked child is a copy of memory
/// with only the forking thread in it: a lock held by another thread is copied *locked*
/// and its owner does not exist in the child, so it is never released. A child side that
/// allocated (or took any other lock: stdout, the environment lock, a custom allocator's
/// lock) between `fork` and `execve` would block forever; it would never exec or exit, so
/// the fork strategy's parent would wait for EOF on the report pipe forever and the vfork
/// strategy's parent would stay suspended in `clone` forever — this test would hang and
/// `join_all` (or the watchdog) would fail it. (glibc's own `fork()` takes the malloc arena
/// locks around the fork, which protects malloc alone; a raw `clone` runs no atfork
/// handler at all, and nothing protects other locks: `canary_allocating_child_side_hangs`
/// shows the wedge happening with this very pressure.) forkexec's child side only makes raw
/// system calls on memory prepared before the clone, so the storm must complete.
#[test]
fn spawn_storm_under_allocator_pressure() {
    let _g = common::start("spawn_storm_under_allocator_pressure", 150);
    let n = per_thread(500);
    let noise = Noise::start(2, churn_allocator);
    let mut report = Vec::new();
    for s in STRATEGIES {
        let t0 = Instant::now();
        let (tx, rx) = mpsc::channel();
        let barrier = Arc::new(Barrier::new(THREADS));
        let spawned = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (tx, barrier, spawned) = (tx.clone(), barrier.clone(), spawned.clone());
                thread::spawn(move || {
                    let yes = ExecPlan::new("/bin/true", ["true"]).unwrap();
                    let no = ExecPlan::new("/bin/false", ["false"]).unwrap();
                    barrier.wait();
                    for i in 0..n {
                        let ok = (i + t) % 2 == 0;
                        // Alternate the two public paths: the raw engine + waitpid, and
                        // Cmd (pidfd-based Process::wait).
                        if i % 3 == 0 {
                            let plan = if ok { &yes } else { &no };
                            let child = raw::fork_exec(plan, &[], s)
                                .unwrap_or_else(|e| panic!("{s:?} t{t} #{i}: {e:?}"));
                            let (pid, st) = raw::waitpid(child.pid, WaitOptions::empty())
                                .unwrap_or_else(|e| panic!("{s:?} t{t} #{i}: wait: {e:?}"))
                                .expect("blocking wait returns a status");
                            assert_eq!(pid, child.pid);
                            assert_eq!(st, WaitStatus::Exited(if ok { 0 } else { 1 }), "{s:?}");
                        } else {
                            let prog = if ok { "/bin/true" } else { "/bin/false" };
                            let st = Cmd::new(prog)
                                .strategy(s)
                                .status()
                                .unwrap_or_else(|e| panic!("{s:?} t{t} #{i}: {e:?}"));
                            assert_eq!(st.exit_code(), if ok { 0 } else { 1 }, "{s:?}: {st}");
                        }
                        spawned.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = tx.send(());
                })
            })
            .collect();
        join_all(handles, &rx, Duration::from_secs(60), &format!("{s:?}"));
        let el = t0.elapsed();
        let total = spawned.load(Ordering::Relaxed);
        assert_eq!(total, (THREADS * n) as u64);
        let rate = total as f64 / el.as_secs_f64();
        println!(
            "stress {s:?}: {total} spawns by {THREADS} threads in {:.2}s = {rate:.0} spawns/s \
             (with 2 allocator threads)",
            el.as_secs_f64()
        );
        report.push((s, total, el));
    }
    let rounds = noise.stop();
    assert!(rounds > 0, "the allocator threads never ran");
    println!("stress: allocator threads ran {rounds} rounds meanwhile");
}

/// One round of fd-table noise: fds opened and closed right away, half of them without
/// close-on-exec (a plain `open`, a plain `pipe`), as careless code in another thread
/// of a real program would.
fn churn_fds(rng: &mut Rng) {
    // SAFETY: plain libc calls on a valid path and a valid 2-int array; every fd returned
    // is closed below and owned by nobody else.
    unsafe {
        let a = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        let mut p = [-1; 2];
        let piped = libc::pipe(p.as_mut_ptr()) == 0;
        let b = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if rng.next() % 4 == 0 {
            thread::yield_now();
        }
        if a >= 0 {
            libc::close(a);
        }
        if piped {
            libc::close(p[0]);
            libc::close(p[1]);
        }
        if b >= 0 {
            libc::close(b);
        }
    }
}

/// The fds of the shell's own process, as listed by a child `ls` (the shell does not exec
/// it: `; exit 0` follows), one number a line.
const LIST_FDS: &str = "ls /proc/$$/fd; exit 0";

fn extra() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

/// While threads open and close fds (some without close-on-exec), children spawned by
/// other threads see exactly 0, 1, 2 and the extra files they were given: nothing leaks
/// across, whatever the interleaving.
#[test]
fn children_see_only_their_fds_while_other_threads_open_fds() {
    let _g = common::start(
        "children_see_only_their_fds_while_other_threads_open_fds",
        90,
    );
    let n = per_thread(500).div_ceil(10).max(4);
    let spawners = 4;
    let noise = Noise::start(2, churn_fds);
    for s in STRATEGIES {
        let t0 = Instant::now();
        let (tx, rx) = mpsc::channel();
        let handles: Vec<_> = (0..spawners)
            .map(|t| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..n {
                        if (i + t) % 2 == 0 {
                            // Cmd: stdout and stderr are pipes, two extra files (fds 3, 4).
                            let out = Cmd::new("/bin/sh")
                                .args(["-c", LIST_FDS])
                                .extra_file(extra())
                                .extra_file(extra())
                                .strategy(s)
                                .output()
                                .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
                            assert_eq!(
                                String::from_utf8_lossy(&out),
                                "0\n1\n2\n3\n4\n",
                                "{s:?} (Cmd, 2 extra files)"
                            );
                        } else {
                            // The raw engine: one extra file at fd 3.
                            let x = extra();
                            let plan = common::sh_plan(LIST_FDS);
                            let (out, st) = common::run_capture(
                                &plan,
                                s,
                                &[
                                    ChildFd::Inherit,
                                    ChildFd::Inherit,
                                    ChildFd::Inherit,
                                    ChildFd::Fd(x.as_fd()),
                                ],
                            );
                            assert_eq!(st, WaitStatus::Exited(0), "{s:?}");
                            assert_eq!(out, "0\n1\n2\n3\n", "{s:?} (raw, 1 extra fd)");
                        }
                    }
                    let _ = tx.send(());
                })
            })
            .collect();
        join_all(handles, &rx, Duration::from_secs(60), &format!("{s:?}"));
        println!(
            "fd hygiene {s:?}: {} children checked in {:.2}s",
            spawners * n,
            t0.elapsed().as_secs_f64()
        );
    }
    let rounds = noise.stop();
    assert!(rounds > 0, "the fd threads never ran");
    println!("fd hygiene: fd threads ran {rounds} open/pipe/close rounds meanwhile");
}

/// Many children alive at once from many threads, each with piped stdout, all read and
/// reaped: the pipes of one never reach another (an inherited write end would keep a
/// reader from seeing EOF and hang it).
#[test]
fn concurrent_pipes_never_cross() {
    let _g = common::start("concurrent_pipes_never_cross", 90);
    let n = per_thread(500).div_ceil(100).max(3);
    for s in STRATEGIES {
        let (tx, rx) = mpsc::channel();
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..n {
                        // The child lingers a little, so that siblings spawn while its pipe
                        // is open; a leaked write end in a sibling would delay our EOF.
                        let tag = format!("t{t}i{i}");
                        let mut child = Cmd::new("/bin/sh")
                            .args(["-c", &format!("echo {tag}; sleep 0.02")])
                            .stdout(Stdio::piped())
                            .strategy(s)
                            .start()
                            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
                        let mut out = String::new();
                        child
                            .stdout
                            .take()
                            .unwrap()
                            .read_to_string(&mut out)
                            .unwrap();
                        assert_eq!(out, format!("{tag}\n"), "{s:?}");
                        assert!(child.wait().unwrap().success(), "{s:?}");
                    }
                    let _ = tx.send(());
                })
            })
            .collect();
        join_all(handles, &rx, Duration::from_secs(60), &format!("{s:?}"));
    }
}

/// Whether `pid` is blocked in the `futex` system call (`/proc/PID/syscall`).
fn blocked_in_futex(pid: libc::pid_t) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<libc::c_long>().ok())
        == Some(libc::SYS_futex)
}

/// The canary that keeps the storm honest: under the same allocator pressure, a child side
/// that *does* allocate between fork and exec wedges. The child here is made the way a
/// careless spawner would (a raw `clone(SIGCHLD)`, i.e. `fork` without glibc's atfork
/// handlers) and allocates a `Vec`; it is given 200 ms to exit, then killed and reaped.
/// A child counts as wedged when, 200 ms on, it sits in a `futex` wait (a lock it will
/// never get). Measured here: one child in 1 to 16 wedges. If this ever stops failing children,
/// the storm above has stopped being a deadlock detector.
#[test]
fn canary_allocating_child_side_hangs() {
    let _g = common::start("canary_allocating_child_side_hangs", 120);
    let noise = Noise::start(2, churn_allocator);
    let mut tries = 0;
    let mut wedged = 0;
    while tries < 300 && wedged == 0 {
        tries += 1;
        // SAFETY: this deliberately breaks the rule forkexec keeps: the child allocates in
        // the copy of a multi-threaded process. The child never returns into the test: it
        // ends in _exit, or is killed below.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::SIGCHLD as libc::c_long,
                0 as libc::c_long,
                0 as libc::c_long,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        } as libc::pid_t;
        assert!(pid >= 0, "clone failed");
        if pid == 0 {
            let mut v: Vec<Vec<u8>> = Vec::new();
            for k in 0..16 {
                v.push(vec![1u8; 1 + k * 9000]);
            }
            std::hint::black_box(&v);
            // SAFETY: ends the child without running anything of the parent's.
            unsafe { libc::_exit(0) };
        }
        let t0 = Instant::now();
        loop {
            match raw::waitpid(pid, WaitOptions::NOHANG).expect("waitpid") {
                Some(_) => break,
                None if t0.elapsed() >= Duration::from_millis(200) => {
                    // Wedged means: blocked on a lock (a futex wait), not merely slow.
                    let in_futex = blocked_in_futex(pid);
                    if in_futex || t0.elapsed() >= Duration::from_secs(2) {
                        wedged += usize::from(in_futex);
                        // SAFETY: signalling our own, still unreaped, child.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                        raw::waitpid(pid, WaitOptions::empty()).expect("reap the child");
                        break;
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                None => thread::sleep(Duration::from_micros(200)),
            }
        }
    }
    noise.stop();
    println!("canary: a child that allocated after fork wedged after {tries} tries");
    assert!(
        wedged > 0,
        "no allocating child wedged in {tries} tries: the storm no longer detects the \
         malloc-after-fork deadlock (allocator changed?)"
    );
}
