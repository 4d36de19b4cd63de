//! Spawns per second with 1 and 2 threads spawning at once on the `Vfork` path, each thread
//! with its own `Cmd` (`Strategy::Vfork`), and the same for `raw::fork_exec(Vfork)`, std,
//! and the floor (`clone(CLONE_VM|CLONE_VFORK)` + `execve`, per-thread stacks).
//!
//! One iteration is one spawn + wait *per thread*, and the group's throughput is set to
//! that many elements, so criterion prints `thrpt: .. Kelem/s` = spawns per second: the
//! ratio of the `/2` and `/1` lines of one way is how spawning scales to two threads (with
//! C CPUs, C× is the ceiling; what keeps a way below it is work that serialises — locks in
//! the C library or the kernel — or that competes for the CPUs). Threads start together at
//! a barrier; the wall time runs until the last one is done.
//!
//! ```text
//! cargo bench --bench concurrency
//! ```

mod common;

use std::ffi::{CString, c_char, c_int, c_void};
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use forkexec::Cmd;
use forkexec::raw::{ExecPlan, Strategy, WaitOptions, fork_exec, waitpid};

const PROGRAM: &str = "/bin/true";

unsafe extern "C" {
    /// The C library's environment, as `execve` wants it.
    static environ: *const *const c_char;
}

/// What one spawning thread owns.
struct Worker {
    cmd: Cmd,
    stack: Vec<u8>,
}

/// Read-only data shared by the threads.
struct Shared {
    plan: ExecPlan,
    path: CString,
    argv: [*const c_char; 2],
}

// SAFETY: `argv` points into `path`, owned and never modified; the threads only read.
unsafe impl Sync for Shared {}

#[derive(Clone, Copy)]
enum Way {
    Cmd,
    ForkExec,
    Std,
    Floor,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Cmd => "cmd_Vfork",
            Way::ForkExec => "fork_exec_Vfork",
            Way::Std => "std_command",
            Way::Floor => "libc_clone_floor",
        }
    }
}

fn clone_floor(shared: &Shared, stack: &mut [u8]) -> libc::pid_t {
    extern "C" fn child(arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the parent's `Shared`, alive while this child runs (the parent
        // thread is suspended until it execs or exits); execve and _exit are AS-safe.
        unsafe {
            let s = &*arg.cast::<Shared>();
            libc::execve(s.path.as_ptr(), s.argv.as_ptr(), environ);
            libc::_exit(127)
        }
    }
    // SAFETY: `child` only execs or exits; the stack is this thread's alone and `shared`
    // outlives the call (with CLONE_VFORK this thread waits for the exec or exit).
    unsafe { common::clone_vfork(stack, child, (shared as *const Shared).cast_mut().cast()) }
}

fn spawn_wait(shared: &Shared, w: &mut Worker, way: Way) {
    match way {
        Way::Cmd => {
            w.cmd.status().expect("status");
        }
        Way::ForkExec => {
            let child = fork_exec(&shared.plan, &[], Strategy::Vfork).expect("spawn");
            waitpid(child.pid, WaitOptions::empty()).expect("wait");
        }
        Way::Std => {
            Command::new(PROGRAM).status().expect("status");
        }
        Way::Floor => {
            let pid = clone_floor(shared, &mut w.stack);
            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        }
    }
}

/// `iters` spawns on each of the workers' threads at once; the wall time.
fn run(shared: &Shared, workers: &mut [Worker], way: Way, iters: u64) -> Duration {
    let barrier = Barrier::new(workers.len() + 1);
    let mut start = None;
    // The scope joins every thread before it returns: the clock stops when the last is done.
    std::thread::scope(|s| {
        for w in workers.iter_mut() {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for _ in 0..iters {
                    spawn_wait(shared, w, way);
                }
            });
        }
        barrier.wait();
        start = Some(Instant::now());
    });
    start.expect("set in the scope").elapsed()
}

fn concurrency(c: &mut Criterion) {
    let path = CString::new(PROGRAM).expect("no NUL");
    let argv = [path.as_ptr(), std::ptr::null()];
    let shared = Shared {
        plan: ExecPlan::new(PROGRAM, ["true"]).expect("plan"),
        path,
        argv,
    };
    let mut g = c.benchmark_group("concurrency");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for way in [Way::Cmd, Way::ForkExec, Way::Std, Way::Floor] {
        for threads in [1usize, 2] {
            let mut workers: Vec<Worker> = (0..threads)
                .map(|_| {
                    let mut cmd = Cmd::new(PROGRAM);
                    cmd.strategy(Strategy::Vfork);
                    cmd.status().expect("Cmd warm-up");
                    Worker {
                        cmd,
                        stack: vec![0; 64 * 1024],
                    }
                })
                .collect();
            g.throughput(Throughput::Elements(threads as u64));
            g.bench_function(BenchmarkId::new(way.name(), threads), |b| {
                b.iter_custom(|iters| run(&shared, &mut workers, way, iters))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, concurrency);
fn main() {
    common::drop_cargo_library_path();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
