//! Spawn + wait of `/bin/true` by each strategy, by `Cmd::status()`, and by
//! `std::process::Command::status()`, measured side by side in one run.
//!
//! `cargo bench --bench spawn` (or `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use forkexec::raw::{ExecPlan, Strategy, WaitOptions, fork_exec, waitpid};

const PROGRAM: &str = "/bin/true";

fn spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_wait");
    g.sample_size(50);
    let plan = ExecPlan::new(PROGRAM, ["true"]).expect("plan");
    for s in [
        Strategy::Auto,
        Strategy::Vfork,
        Strategy::PosixSpawn,
        Strategy::Fork,
    ] {
        g.bench_with_input(
            BenchmarkId::new("fork_exec", format!("{s:?}")),
            &s,
            |b, &s| {
                b.iter(|| {
                    let child = fork_exec(&plan, &[], s).expect("spawn");
                    black_box(waitpid(child.pid, WaitOptions::empty()).expect("wait"));
                })
            },
        );
    }
    let mut cmd = forkexec::Cmd::new(PROGRAM);
    g.bench_function(BenchmarkId::new("cmd_status", "Auto"), |b| {
        b.iter(|| black_box(cmd.status().expect("status")))
    });
    g.bench_function(BenchmarkId::new("std_status", "std"), |b| {
        b.iter(|| {
            black_box(
                std::process::Command::new(PROGRAM)
                    .status()
                    .expect("status"),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, spawn);
criterion_main!(benches);
