//! How much does it cost to start a program and wait for it?
//!
//! `spawn_bench` spawns a program (`/bin/true` by default) N times in each of several ways —
//! each [`Strategy`] of this crate, [`Cmd`], `std::process::Command`, and three baselines
//! written directly against the C library — and prints one row per way of spawning:
//!
//! | row | key | what one sample is |
//! |---|---|---|
//! | `forkexec Auto (..)` | `auto` | `fork_exec(&plan, &[], Strategy::Auto)` + `waitpid`; the parenthesis says what `Auto` resolved to on this machine |
//! | `forkexec Vfork` / `PosixSpawn` / `Fork` | `vfork`, `posix_spawn`, `fork` | the same with that explicit strategy |
//! | `forkexec Cmd, ignored_signals(Reset)` | `cmd_reset_all` | the same `Cmd` with `ignored_signals(IgnoredSignals::Reset)`: every disposition reset (one `rt_sigaction` per signal in the child), the opt-in cost over the default, which keeps ignored signals ignored as POSIX/Go/std |
//! | `forkexec Cmd::status() (Auto)` | `cmd` | `cmd.status()` on one `Cmd` built once (argv/envp prepared at the first start, reused after); stdio on `/dev/null` (the crate's default), the fd plan reused, the child reaped inside `status()` (no `Child`, no pidfd: nothing can signal it before it is reaped) |
//! | `std Command::status()` | `std` | `Command::new(program).args(..).status()` (built and run each time, as usually written; stdio inherited, std's default) |
//! | `raw libc posix_spawn` | `libc_posix_spawn` | `libc::posix_spawn` + `libc::waitpid`, argv prebuilt, envp = `environ` |
//! | `raw libc fork+execve` | `libc_fork` | `libc::fork`; the child `execve`s (or `_exit(127)`s); the parent `waitpid`s |
//! | `raw libc clone(CLONE_VM\|CLONE_VFORK) floor` | `libc_clone` | `libc::clone(CLONE_VM\|CLONE_VFORK\|SIGCHLD)`, the child on its own stack doing only `execve` + `_exit(127)`; then `waitpid`. Nothing else: no signal blocking, no error report, no pidfd, no fd hygiene. **The floor**: no way of starting a program does less work |
//!
//! With `--output` the rows capture the child's stdout instead: `forkexec Cmd::output()`
//! (`cmd_output`), `std Command::output()` (`std_output`), and the floor
//! `raw libc clone+pipe floor` (`libc_clone_output`: a pipe, the same bare clone child with
//! one `dup2` onto fd 1, `read_to_end`, `waitpid`).
//!
//! Each sample is one spawn *plus* the wait for the child's exit, timed with [`Instant`], so
//! it includes the program's own start-up and exit (for `/bin/true`: `execve` itself, the
//! dynamic loader, libc initialisation, `exit_group`) and the scheduler's hand-off between
//! parent and child. That part is the same for every row — it is the physical limit, what
//! the floor row costs — and the differences between rows are what each way of spawning adds.
//! The forkexec rows also do what the crate does for every child: see that no fd but 0-2
//! reaches the program and reset every signal disposition (the `fork_exec` rows also get a
//! pidfd for the child); the raw rows do none of this, std the first.
//!
//! `--tiny` spawns a tiny static binary instead (x86_64 only): a 132-byte ELF executable
//! built by this program — one `PT_LOAD` segment whose code is `exit_group(0)`, no dynamic
//! loader, no C library — written to a private directory under the temporary directory
//! (`$TMPDIR`, which must allow executing files) and removed at the end. Its exec costs
//! almost nothing, so what each way of spawning adds shows up most.
//!
//! Every row is warmed up (50 spawns, which also checks that all rows see the same exit
//! status and output size), then measured in 10 rounds of N/10 spawns each, the order of the
//! rows rotating from round to round, so that machine noise (frequency changes, other
//! processes) falls on all rows alike.
//!
//! # Reading the table
//! - `median`: the typical cost of one spawn+wait in microseconds; `p10` / `p90`: the 10th
//!   and 90th percentiles, i.e. the spread (a wide p90 means noise or contention).
//! - `spawns/s`: spawns completed per second of wall time for the row (with `--threads T`,
//!   all T threads together): the throughput, where the median is the latency.
//! - `vs std`: median divided by the median of `std Command::status()` (`std
//!   Command::output()` for output rows); below 1 is faster.
//! - `vs floor`: median divided by the median of the floor row; 1.00 means nothing left to
//!   gain, 1.05 means the row adds 5 % to the bare `clone` + `execve` + `waitpid`.
//! - `Fork` and `raw libc fork+execve` copy the parent's page tables: their cost grows with
//!   the parent's memory. `--rss-mib 1024` makes the parent allocate and touch 1 GiB first
//!   (in 4 KiB pages: transparent huge pages are switched off for it): the fork rows slow
//!   down, the `vfork`-style rows (`Vfork`, `PosixSpawn`, `Cmd`, std, the raw `posix_spawn`
//!   and the floor, which all share the parent's memory until `execve`) stay flat.
//! - `--env N` sets N variables on the command for the `Cmd` and std rows (the child's
//!   environment is the parent's plus those): `Cmd` builds its envp once and reuses it, std
//!   merges and rebuilds it on every spawn.
//! - `--threads T` runs T threads, each spawning its share of N (each with its own `Cmd`
//!   and floor stack); `--threads 1,2` measures every row both ways in the same run (rows
//!   `.. ×1`, `.. ×2`, ratios taken between rows of the same thread count) and adds a
//!   `scaling` column: spawns/s divided by the same row's spawns/s at the first count given.
//!   With C CPUs, C× is the ceiling for C threads; what keeps a row below it is work that
//!   serialises (locks in the C library or the kernel) or that competes for the CPUs.
//!
//! # Usage
//! ```text
//! cargo run --release --example spawn_bench -- [-n N] [--rss-mib MIB] [--env N]
//!     [--threads T,..] [--output] [--program PATH | --tiny] [--only KEY,KEY..] [--json]
//!     [--no-warmup] [-- ARGS..]
//! ```
//! Examples:
//! ```text
//! spawn_bench                                    # every way of spawning /bin/true, 2000× each
//! spawn_bench --rss-mib 4096 -n 200              # with a 4 GiB parent
//! spawn_bench --env 200                          # 200 variables set on the command
//! spawn_bench --threads 1,2 --only vfork,cmd,std,libc_clone   # one vs two spawning threads
//! spawn_bench --output                           # Cmd::output() vs std output() of `true`
//! spawn_bench --tiny                             # a tiny static binary: exec costs ~nothing
//! spawn_bench --output -n 100 --program head -- -c 67108864 /dev/zero  # 64 MiB through a pipe
//! ```
//! `--json` prints one JSON object per row on stdout (the header goes to stderr).
//!
//! Under `cargo run`, the directories cargo prepends to `LD_LIBRARY_PATH` are dropped from
//! the environment first (the header says so): every dynamically linked child would search
//! them for its libraries, which made a `/bin/true` spawn ~29 % slower on the README's
//! machine. Entries set by the user are kept.
//!
//! `--no-warmup` skips the warm-up and the per-spawn clock reads (the table then shows the
//! mean only): it is meant for counting the parent's instructions per spawn with callgrind,
//! as the difference between two runs, which cancels every one-time cost:
//! ```text
//! valgrind --tool=callgrind --trace-children=no --callgrind-out-file=/tmp/cg.%p \
//!     target/release/examples/spawn_bench --only cmd -n 100 --no-warmup
//! # again with -n 400; (total(400) - total(100)) / 300 = instructions per spawn
//! ```
//! (Under valgrind `clone(CLONE_VM)` does not share memory: the crate detects it once and
//! `Auto` falls back, the header says to what; the `vfork` row is left out.)

mod cli;
mod floor;
mod machine;
mod measure;
mod report;
mod rows;
mod tiny;
mod workload;

use std::error::Error;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::Instant;

use forkexec::raw::{ExecPlan, Strategy};

use cli::{Options, USAGE, parse_args};
use floor::RawArgs;
use machine::{ballast, drop_cargo_library_path, kernel_release, libc_version, vm_rss_mib};
use measure::{Acc, Stats, run_row, stats};
use report::RunInfo;
use rows::{OUTPUT_ROWS, Row, STATUS_ROWS};
use tiny::TinyProgram;
use workload::{Ctx, Worker, spawn_wait};

type BoxError = Box<dyn Error + Send + Sync>;

const WARMUP: usize = 50;
const ROUNDS: usize = 10;

fn main() -> ExitCode {
    let dropped = drop_cargo_library_path();
    let opts = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            return if msg == USAGE {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match run(&opts, dropped) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spawn_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
fn run(opts: &Options, ld_dropped: usize) -> Result<(), BoxError> {
    // Before the ballast and before any thread: the file is written and closed while no
    // child can inherit it.
    let tiny = if opts.tiny {
        Some(TinyProgram::create()?)
    } else {
        None
    };
    let ballast = std::hint::black_box(ballast(opts.rss_mib));

    // argv[0] and what to exec.
    let program_arg = match (&tiny, &opts.program) {
        (Some(t), _) => t.path.clone().into_os_string(),
        (None, Some(p)) => p.clone(),
        (None, None) => OsString::from("/bin/true"),
    };
    // Every row execs the same file: resolve a bare name once, as Cmd and std would.
    let program = if program_arg.as_bytes().contains(&b'/') {
        program_arg.clone()
    } else {
        forkexec::look_path(&program_arg)?.into_os_string()
    };
    let argv =
        std::iter::once(program_arg.as_os_str()).chain(opts.args.iter().map(OsString::as_os_str));
    let plan = ExecPlan::new(&program, argv)?;
    let auto = plan.resolve(Strategy::Auto);
    let env: Vec<(OsString, OsString)> = (0..opts.env)
        .map(|i| {
            (
                OsString::from(format!("FORKEXEC_BENCH_VAR_{i}")),
                OsString::from(format!("value of variable number {i}")),
            )
        })
        .collect();
    let ctx = Ctx {
        plan,
        raw: RawArgs::new(&program, &opts.args, &env)?,
        program,
        args: opts.args.clone(),
        env,
    };

    let rows = match &opts.rows {
        Some(r) => r.clone(),
        None if opts.output => OUTPUT_ROWS.to_vec(),
        None => {
            let mut r = STATUS_ROWS.to_vec();
            if auto != Strategy::Vfork {
                // clone(CLONE_VM) does not share memory here: the Vfork strategy refuses.
                r.retain(|&row| row != Row::Forkexec(Strategy::Vfork));
            }
            r
        }
    };
    let max_threads = opts.threads.iter().copied().max().unwrap_or(1);
    let mut workers: Vec<Worker> = (0..max_threads).map(|_| Worker::new(&ctx)).collect();
    // What is measured: every row with every thread count, a row's thread counts adjacent.
    let entries: Vec<(Row, usize)> = rows
        .iter()
        .flat_map(|&r| opts.threads.iter().map(move |&t| (r, t)))
        .collect();
    let shown = {
        let mut p = match &tiny {
            Some(t) => format!("tiny static ELF (exit_group(0), {} bytes)", t.len),
            None => program_arg.to_string_lossy().into_owned(),
        };
        for a in &opts.args {
            let a = a.to_string_lossy();
            p.push(' ');
            if a.is_empty() || a.contains(char::is_whitespace) {
                p.push_str(&format!("'{a}'"));
            } else {
                p.push_str(&a);
            }
        }
        p
    };
    let kernel = kernel_release();
    let libc_v = libc_version();
    let rss_now = vm_rss_mib().map_or_else(|| "?".to_owned(), |m| m.to_string());
    let header = format!(
        "spawn_bench: program {}, N = {} per row, {} thread(s), {} env var(s) set on Cmd/std, rss {} MiB allocated (VmRSS {rss_now} MiB), {} cpu(s), kernel {kernel}, {libc_v}; Auto resolves to {auto:?}{}{}",
        if tiny.is_some() {
            shown.clone()
        } else {
            format!("`{shown}`")
        },
        opts.n,
        opts.threads
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        opts.env,
        opts.rss_mib,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if opts.warmup {
            ""
        } else {
            "; no warm-up, untimed spawns (mean only)"
        },
        if ld_dropped > 0 {
            format!(
                "; dropped the {ld_dropped} LD_LIBRARY_PATH entries cargo added (children would search them)"
            )
        } else {
            String::new()
        }
    );
    if opts.json {
        eprintln!("{header}");
    } else {
        println!("{header}");
    }

    let info = RunInfo {
        opts,
        shown: &shown,
        kernel: &kernel,
        libc: &libc_v,
        auto,
    };

    // Warm-up: page cache, dynamic loader, the crate's one-time probes, each Cmd's
    // preparation; and a check that every row runs the same program to the same end.
    if opts.warmup {
        let mut first = Vec::with_capacity(rows.len());
        for &row in &rows {
            let mut seen = (0, 0);
            for w in &mut workers {
                for _ in 0..WARMUP.div_ceil(max_threads) {
                    seen =
                        spawn_wait(&ctx, w, row).map_err(|e| format!("{}: {e}", row.name(auto)))?;
                }
            }
            first.push(seen);
        }
        // Cmd::output() reports a failing child as an error, so its status is always 0;
        // only the output rows capture bytes.
        fn differ(mut it: impl Iterator<Item = usize>) -> bool {
            it.next().is_some_and(|a| it.any(|b| a != b))
        }
        let seen = || rows.iter().zip(&first);
        let status_differs = differ(
            seen()
                .filter(|(r, _)| **r != Row::CmdOutput)
                .map(|(_, s)| s.0 as usize),
        );
        let bytes_differ = differ(seen().filter(|(r, _)| r.is_output()).map(|(_, s)| s.1));
        if status_differs || bytes_differ {
            eprintln!("warning: the rows disagree on the child's wait status or output size:");
            for (row, s) in rows.iter().zip(&first) {
                eprintln!("  {:<46} status {:#x}, {} bytes", row.name(auto), s.0, s.1);
            }
        }
    }

    // Measure: ROUNDS rounds, each running every row for its share of N in a rotating order.
    let rounds = ROUNDS.min(opts.n);
    let mut accs: Vec<Acc> = entries
        .iter()
        .map(|_| Acc {
            ns: Vec::with_capacity(if opts.warmup { opts.n } else { 0 }),
            ..Acc::default()
        })
        .collect();
    let start = Instant::now();
    for round in 0..rounds {
        let per_row = opts.n / rounds + usize::from(round < opts.n % rounds);
        for k in 0..entries.len() {
            let i = (round + k) % entries.len();
            let (row, t) = entries[i];
            run_row(
                &ctx,
                &mut workers[..t],
                row,
                per_row,
                opts.warmup,
                &mut accs[i],
            )
            .map_err(|e| format!("{}: {e}", info.entry_name(row, t)))?;
        }
        // Progress, only for runs expected to last more than a few seconds.
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed * rounds as f64 / (round + 1) as f64 > 5.0 {
            eprintln!("round {}/{rounds} done ({elapsed:.1} s)", round + 1);
        }
    }
    drop(ballast);

    let results: Vec<Stats> = entries
        .iter()
        .zip(accs)
        .map(|(&(row, t), acc)| stats(row, acc, t))
        .collect();
    report::print(&info, &results)?;
    Ok(())
}
