//! Spawning `/bin/true`, every way side by side, in one run: each strategy of
//! `raw::fork_exec`, `Cmd::status()` (`Auto`), `std::process::Command`, the C library's
//! bare `posix_spawn`, and the floor — `libc::clone(CLONE_VM|CLONE_VFORK|SIGCHLD)` with a
//! child on its own stack doing only `execve` + `_exit(127)`, then `waitpid`.
//!
//! Two groups, each benchmark named `way/parent RSS`:
//! - `spawn_wait`: spawn + wait for the exit, what `spawn_bench` times (includes `/bin/true`
//!   running: exec, dynamic loader, exit);
//! - `spawn_only`: only the time until the spawning call returns (the child has exec'd),
//!   with the wait for the child outside the timed region (`iter_custom`).
//!
//! By default the parent is small (`0MiB`). With `FORKEXEC_BENCH_RSS=1` every benchmark is
//! repeated with the parent holding 1 GiB and 4 GiB of touched 4 KiB pages: the `Fork`
//! strategy copies the page tables and slows down (at 4 GiB it takes only criterion's
//! minimum of 10 samples, ~0.12 s each here), the vfork-style ways stay flat.
//!
//! ```text
//! cargo bench --bench spawn                           # a couple of minutes
//! cargo bench --bench spawn -- --quick spawn_wait     # one group, shorter
//! FORKEXEC_BENCH_RSS=1 cargo bench --bench spawn      # + 1 GiB and 4 GiB parents
//! ```

mod common;

use std::ffi::{CString, c_char, c_int, c_void};
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group};
use forkexec::Cmd;
use forkexec::raw::{ExecPlan, Strategy, WaitOptions, fork_exec, waitpid};

const PROGRAM: &str = "/bin/true";
const PAGE: usize = 4096;

unsafe extern "C" {
    /// The C library's environment, as `execve` wants it.
    static environ: *const *const c_char;
}

/// argv and envp for the raw C-library ways, built once.
struct Raw {
    path: CString,
    argv: [*const c_char; 2],
    stack: Vec<u8>,
}

impl Raw {
    fn new() -> Raw {
        let path = CString::new(PROGRAM).expect("no NUL");
        let argv = [path.as_ptr(), std::ptr::null()];
        Raw {
            path,
            argv,
            stack: vec![0; 64 * 1024],
        }
    }

    fn envp() -> *const *const c_char {
        // SAFETY: reading the pointer value; nothing modifies the environment meanwhile.
        unsafe { environ }
    }

    /// `posix_spawn` with no file actions and no attributes.
    fn posix_spawn(&self) -> libc::pid_t {
        let mut pid = 0;
        // SAFETY: path/argv/envp are NUL-terminated strings in NULL-terminated arrays that
        // outlive the call; NULL file actions and attributes mean defaults.
        let r = unsafe {
            libc::posix_spawn(
                &mut pid,
                self.path.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                self.argv.as_ptr().cast(),
                Raw::envp().cast(),
            )
        };
        assert_eq!(r, 0, "posix_spawn");
        pid
    }

    /// The floor: `clone(CLONE_VM|CLONE_VFORK|SIGCHLD)`, the child doing `execve` + `_exit`.
    fn clone_floor(&mut self) -> libc::pid_t {
        extern "C" fn child(arg: *mut c_void) -> c_int {
            // SAFETY: `arg` is the parent's `Raw`, alive (and its thread suspended) until
            // this child execs or exits; execve and _exit are async-signal-safe.
            unsafe {
                let raw = &*arg.cast::<Raw>();
                libc::execve(raw.path.as_ptr(), raw.argv.as_ptr(), Raw::envp());
                libc::_exit(127)
            }
        }
        let arg = (self as *mut Raw).cast();
        // SAFETY: `child` only execs or exits; with CLONE_VFORK this thread is suspended
        // until then, so `self` and its stack outlive the child's use of them.
        unsafe { common::clone_vfork(&mut self.stack, child, arg) }
    }
}

fn reap(pid: libc::pid_t) -> c_int {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid");
    status
}

/// The parent RSS levels to measure, in MiB.
fn rss_levels() -> Vec<usize> {
    if std::env::var_os("FORKEXEC_BENCH_RSS").is_some_and(|v| v != "0" && !v.is_empty()) {
        vec![0, 1024, 4096]
    } else {
        vec![0]
    }
}

/// Touched memory in 4 KiB pages (no transparent huge pages), grown level by level.
#[derive(Default)]
struct Ballast(Vec<Vec<u8>>);

impl Ballast {
    fn grow_to(&mut self, mib: usize) {
        let have: usize = self.0.iter().map(Vec::len).sum::<usize>() >> 20;
        if mib <= have {
            return;
        }
        let mut v = vec![0u8; (mib - have) << 20];
        let start = v.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(PAGE);
        let len = (start + v.len()).saturating_sub(aligned) & !(PAGE - 1);
        // SAFETY: the range lies inside `v`; MADV_NOHUGEPAGE only changes how it is backed.
        unsafe { libc::madvise(aligned as *mut c_void, len, libc::MADV_NOHUGEPAGE) };
        v.iter_mut().step_by(PAGE).for_each(|b| *b = 1);
        self.0.push(black_box(v));
    }
}

/// The ways of spawning, by benchmark name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Forkexec(Strategy),
    Cmd,
    Std,
    LibcPosixSpawn,
    LibcCloneFloor,
}

const WAYS: [Way; 8] = [
    Way::Forkexec(Strategy::Vfork),
    Way::Forkexec(Strategy::PosixSpawn),
    Way::Forkexec(Strategy::Fork),
    Way::Forkexec(Strategy::Auto),
    Way::Cmd,
    Way::Std,
    Way::LibcPosixSpawn,
    Way::LibcCloneFloor,
];

impl Way {
    fn name(self) -> String {
        match self {
            Way::Forkexec(s) => format!("fork_exec_{s:?}"),
            Way::Cmd => "cmd_Auto".to_owned(),
            Way::Std => "std_command".to_owned(),
            Way::LibcPosixSpawn => "libc_posix_spawn".to_owned(),
            Way::LibcCloneFloor => "libc_clone_floor".to_owned(),
        }
    }
}

/// Everything the ways need, built once.
struct Fixture {
    plan: ExecPlan,
    cmd: Cmd,
    raw: Raw,
}

impl Fixture {
    fn new() -> Fixture {
        let mut cmd = Cmd::new(PROGRAM);
        cmd.status().expect("Cmd warm-up");
        Fixture {
            plan: ExecPlan::new(PROGRAM, ["true"]).expect("plan"),
            cmd,
            raw: Raw::new(),
        }
    }

    /// Spawns and waits.
    fn spawn_wait(&mut self, way: Way) {
        match way {
            Way::Forkexec(s) => {
                let child = fork_exec(&self.plan, &[], s).expect("spawn");
                black_box(waitpid(child.pid, WaitOptions::empty()).expect("wait"));
            }
            Way::Cmd => {
                black_box(self.cmd.status().expect("status"));
            }
            Way::Std => {
                black_box(Command::new(PROGRAM).status().expect("status"));
            }
            Way::LibcPosixSpawn => {
                black_box(reap(self.raw.posix_spawn()));
            }
            Way::LibcCloneFloor => {
                black_box(reap(self.raw.clone_floor()));
            }
        }
    }

    /// Spawns, timing only the spawning call; the wait happens after the clock stopped.
    fn spawn_only(&mut self, way: Way) -> Duration {
        let t = Instant::now();
        match way {
            Way::Forkexec(s) => {
                let child = fork_exec(&self.plan, &[], s).expect("spawn");
                let d = t.elapsed();
                waitpid(child.pid, WaitOptions::empty()).expect("wait");
                d
            }
            Way::Cmd => {
                let mut child = self.cmd.start().expect("start");
                let d = t.elapsed();
                child.wait().expect("wait");
                d
            }
            Way::Std => {
                let mut child = Command::new(PROGRAM).spawn().expect("spawn");
                let d = t.elapsed();
                child.wait().expect("wait");
                d
            }
            Way::LibcPosixSpawn => {
                let pid = self.raw.posix_spawn();
                let d = t.elapsed();
                reap(pid);
                d
            }
            Way::LibcCloneFloor => {
                let pid = self.raw.clone_floor();
                let d = t.elapsed();
                reap(pid);
                d
            }
        }
    }
}

/// Sample counts: the Fork strategy in a large parent takes ~0.12 s per spawn here, so it
/// gets criterion's minimum of 10 one-iteration samples.
fn configure(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    way: Way,
    rss: usize,
) {
    let slow = matches!(way, Way::Forkexec(Strategy::Fork)) && rss > 0;
    if slow {
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_secs(1));
    } else {
        g.sampling_mode(SamplingMode::Auto)
            .sample_size(50)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
    }
}

fn spawn(c: &mut Criterion) {
    let mut fx = Fixture::new();
    let mut ballast = Ballast::default();
    for rss in rss_levels() {
        ballast.grow_to(rss);
        let param = format!("{rss}MiB");

        let mut g = c.benchmark_group("spawn_wait");
        for way in WAYS {
            configure(&mut g, way, rss);
            g.bench_function(BenchmarkId::new(way.name(), &param), |b| {
                b.iter(|| fx.spawn_wait(way))
            });
        }
        g.finish();

        let mut g = c.benchmark_group("spawn_only");
        for way in WAYS {
            configure(&mut g, way, rss);
            g.bench_function(BenchmarkId::new(way.name(), &param), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| fx.spawn_only(way)).sum())
            });
        }
        g.finish();
    }
}

criterion_group!(benches, spawn);
fn main() {
    common::drop_cargo_library_path();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
