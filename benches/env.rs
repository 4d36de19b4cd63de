//! Spawn + wait of `/bin/true` with 0 and 200 environment variables set on the command:
//! `Cmd::envs` against `std::process::Command::envs`.
//!
//! A `Cmd` merges the parent's environment with its changes and builds the envp array once,
//! at its first start, and reuses it; std merges and rebuilds it on every spawn. Benchmarks,
//! named `way/variables`:
//! - `cmd_envs`: one `Cmd` with the variables set, `status()` each iteration;
//! - `std_envs`: `Command::new(..).envs(&vars).status()` each iteration, as usually written;
//! - `std_envs_reused`: one `Command` with the variables set, `status()` each iteration (the
//!   builder's own cost left out: what remains is std's per-spawn environment work).
//!
//! ```text
//! cargo bench --bench env
//! ```

mod common;

use std::ffi::OsString;
use std::hint::black_box;
use std::process::Command;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group};
use forkexec::Cmd;

const PROGRAM: &str = "/bin/true";

fn vars(n: usize) -> Vec<(OsString, OsString)> {
    (0..n)
        .map(|i| {
            (
                OsString::from(format!("FORKEXEC_BENCH_VAR_{i}")),
                OsString::from(format!("value of variable number {i}")),
            )
        })
        .collect()
}

fn env(c: &mut Criterion) {
    let mut g = c.benchmark_group("env");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in [0usize, 200] {
        let vars = vars(n);

        let mut cmd = Cmd::new(PROGRAM);
        cmd.envs(vars.iter().map(|(k, v)| (k, v)));
        assert!(cmd.status().expect("Cmd warm-up").success());
        g.bench_function(BenchmarkId::new("cmd_envs", n), |b| {
            b.iter(|| black_box(cmd.status().expect("status")))
        });

        g.bench_function(BenchmarkId::new("std_envs", n), |b| {
            b.iter(|| {
                black_box(
                    Command::new(PROGRAM)
                        .envs(vars.iter().map(|(k, v)| (k, v)))
                        .status()
                        .expect("status"),
                )
            })
        });

        let mut std_cmd = Command::new(PROGRAM);
        std_cmd.envs(vars.iter().map(|(k, v)| (k, v)));
        g.bench_function(BenchmarkId::new("std_envs_reused", n), |b| {
            b.iter(|| black_box(std_cmd.status().expect("status")))
        });
    }
    g.finish();
}

criterion_group!(benches, env);
fn main() {
    common::drop_cargo_library_path();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
