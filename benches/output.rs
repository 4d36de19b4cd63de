//! Capturing a child's stdout: `Cmd::output()` against `std::process::Command::output()`,
//! and the floor (a pipe, `clone(CLONE_VM|CLONE_VFORK)` with a child doing only `dup2` +
//! `execve`, `read_to_end`, `waitpid`).
//!
//! Groups:
//! - `output_true`: `true`, no output: the cost of the pipes and the poll loop on top of a
//!   spawn;
//! - `output_64MiB`: `head -c 67108864 /dev/zero`, reported as throughput (bytes/s): moving
//!   64 MiB through a pipe into a `Vec`.
//!
//! ```text
//! cargo bench --bench output                  # under a minute
//! cargo bench --bench output -- --quick
//! ```

mod common;

use std::ffi::{CString, c_char, c_int, c_void};
use std::fs::File;
use std::hint::black_box;
use std::io::Read;
use std::os::fd::FromRawFd;
use std::process::Command;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use forkexec::Cmd;

const SIZE: usize = 64 << 20;

unsafe extern "C" {
    /// The C library's environment, as `execve` wants it.
    static environ: *const *const c_char;
}

/// The floor: what any `output()` must do at the least.
struct Floor {
    path: CString,
    _args: Vec<CString>,
    argv: Vec<*const c_char>,
    stack: Vec<u8>,
    out_fd: c_int,
}

impl Floor {
    fn new(program: &str, args: &[&str]) -> Floor {
        let path = CString::new(program).expect("no NUL");
        let args: Vec<CString> = std::iter::once(program)
            .chain(args.iter().copied())
            .map(|a| CString::new(a).expect("no NUL"))
            .collect();
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        Floor {
            path,
            _args: args,
            argv,
            stack: vec![0; 64 * 1024],
            out_fd: -1,
        }
    }

    fn output(&mut self) -> Vec<u8> {
        extern "C" fn child(arg: *mut c_void) -> c_int {
            // SAFETY: `arg` is the parent's `Floor`, alive (its thread suspended) until this
            // child execs or exits; dup2, execve and _exit are async-signal-safe.
            unsafe {
                let f = &*arg.cast::<Floor>();
                if libc::dup2(f.out_fd, 1) < 0 {
                    libc::_exit(127);
                }
                libc::execve(f.path.as_ptr(), f.argv.as_ptr(), environ);
                libc::_exit(127)
            }
        }
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` is a valid out-array of two ints.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: pipe2 just returned these fds; nothing else owns them.
        let (mut r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        self.out_fd = fds[1];
        let arg = (self as *mut Floor).cast();
        // SAFETY: `child` only execs or exits; with CLONE_VFORK this thread is suspended
        // until then, so `self` and its stack outlive the child's use of them.
        let pid = unsafe { common::clone_vfork(&mut self.stack, child, arg) };
        drop(w);
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(status, 0, "child failed");
        out
    }
}

fn bench_output(
    c: &mut Criterion,
    group: &str,
    program: &str,
    args: &[&str],
    expect: usize,
    heavy: bool,
) {
    let mut g = c.benchmark_group(group);
    if heavy {
        g.throughput(Throughput::Bytes(expect as u64))
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
    } else {
        g.sample_size(50)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
    }

    let mut cmd = Cmd::new(program);
    cmd.args(args);
    assert_eq!(cmd.output().expect("Cmd warm-up").len(), expect);
    g.bench_function(BenchmarkId::new("cmd_output", "Auto"), |b| {
        b.iter(|| black_box(cmd.output().expect("output")))
    });

    g.bench_function(BenchmarkId::new("std_output", "std"), |b| {
        b.iter(|| {
            let out = Command::new(program).args(args).output().expect("output");
            black_box(out)
        })
    });

    let mut floor = Floor::new(
        &forkexec::look_path(program)
            .expect("look_path")
            .to_string_lossy(),
        args,
    );
    assert_eq!(floor.output().len(), expect);
    g.bench_function(BenchmarkId::new("libc_clone_floor", "pipe"), |b| {
        b.iter(|| black_box(floor.output()))
    });
    g.finish();
}

fn output(c: &mut Criterion) {
    bench_output(c, "output_true", "true", &[], 0, false);
    let size = SIZE.to_string();
    bench_output(
        c,
        "output_64MiB",
        "head",
        &["-c", &size, "/dev/zero"],
        SIZE,
        true,
    );
}

criterion_group!(benches, output);
fn main() {
    common::drop_cargo_library_path();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
