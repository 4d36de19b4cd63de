//! How much does it cost to start a program and wait for it?
//!
//! `spawn_bench` spawns a program (`/bin/true` by default) N times in each of several ways,
//! each way a row: each `Strategy` of this crate through `raw::fork_exec`, `Cmd`,
//! `std::process::Command`, baselines written directly against the C library (the bare
//! `clone(CLONE_VM|CLONE_VFORK)` + `execve` + `waitpid` among them, **the floor**), and with
//! `--peers` Go's `os/exec` and CPython's `subprocess`; and prints a table with, per row,
//! the median and spread of one spawn + wait, the parent's CPU time per spawn, and ratios to
//! std and to the floor measured in the same run.
//!
//! What each row, column and option means is in `help.txt` next to this file, which
//! `spawn_bench --help` prints:
//! ```text
//! cargo run --release --example spawn_bench -- --help
//! ```
//!
//! The files: `cli` (options), `rows` (the rows and their ratios' references), `workload`
//! (one spawn + wait of each row), `floor` (the raw libc baselines), `peers` (the Go and
//! CPython peers, sources in `peers/`), `measure` (rounds, threads, statistics), `report`
//! (table, JSON, header), `agent` (`--agent`: the worker agent's line ping-pong),
//! `machine` (kernel, libc, load, environment), `tiny` (the tiny
//! static binary), `tmp` (private temporary directories).

#[cfg(feature = "agent")]
mod agent;
mod cli;
mod floor;
mod machine;
mod measure;
mod peers;
mod report;
mod rows;
#[cfg(test)]
mod tests;
mod tiny;
mod tmp;
mod workload;

use std::error::Error;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use forkexec::raw::{ExecPlan, Strategy};

use cli::{HELP, Options, USAGE, parse_args};
use floor::RawArgs;
use machine::{ballast, drop_cargo_library_path, kernel_release, libc_version, load_average};
use measure::{Acc, Stats, run_row, stats};
use peers::Peers;
use report::RunInfo;
use rows::{OUTPUT_ROWS, Row, STATUS_ROWS};
use tiny::TinyProgram;
use workload::{Ctx, Worker, spawn_wait};

type BoxError = Box<dyn Error + Send + Sync>;

const WARMUP: usize = 50;
/// Rounds per run: each runs every row for N/ROUNDS spawns, so that a change of the
/// machine's load (other processes) falls on all rows alike.
const ROUNDS: usize = 40;

fn main() -> ExitCode {
    let dropped = drop_cargo_library_path();
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("spawn_bench: {msg}\n{USAGE}");
            return ExitCode::from(2);
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

/// Where the program comes from and what it is called.
struct Program {
    /// argv[0], as given (or the tiny program's path).
    arg: OsString,
    /// The file every row execs: `arg`, looked up on `PATH` when it has no '/'.
    path: OsString,
    /// The bare name the `cmd_name` / `std_name` rows start, when looking it up on `PATH`
    /// finds the same file.
    name: Option<OsString>,
}

impl Program {
    fn new(arg: OsString) -> Result<Program, BoxError> {
        // Every row execs the same file: resolve a bare name once, as Cmd and std would.
        let path = if arg.as_bytes().contains(&b'/') {
            arg.clone()
        } else {
            forkexec::look_path(&arg)?.into_os_string()
        };
        let name = Path::new(&path)
            .file_name()
            .map(OsString::from)
            .filter(|n| {
                let found = forkexec::look_path(n)
                    .ok()
                    .and_then(|p| p.canonicalize().ok());
                found.is_some() && found == Path::new(&path).canonicalize().ok()
            });
        Ok(Program { arg, path, name })
    }
}

/// The rows to measure: `--only`'s, else the mode's rows that can run here.
fn select_rows(opts: &Options, auto: Strategy, program: &Program) -> Result<Vec<Row>, BoxError> {
    if let Some(rows) = &opts.rows {
        if program.name.is_none() && rows.iter().any(|r| r.by_name()) {
            return Err(format!(
                "cmd_name, std_name: looking {:?} up on PATH does not find the program",
                Path::new(&program.path).file_name().unwrap_or_default()
            )
            .into());
        }
        return Ok(rows.clone());
    }
    let all: &[Row] = if opts.output {
        &OUTPUT_ROWS
    } else {
        &STATUS_ROWS
    };
    Ok(all
        .iter()
        .copied()
        // clone(CLONE_VM) does not share memory here: the Vfork strategy refuses.
        .filter(|&r| r != Row::Forkexec(Strategy::Vfork) || auto == Strategy::Vfork)
        .filter(|&r| !r.by_name() || program.name.is_some())
        .filter(|&r| !r.is_peer() || opts.peers)
        .collect())
}

fn run(opts: &Options, ld_dropped: usize) -> Result<(), BoxError> {
    let load_before = load_average();
    #[cfg(feature = "agent")]
    if opts.agent {
        let header = format!(
            "spawn_bench --agent: {} round trips of a line over {} `cat` workers, {} cpu(s), load average {load_before}, kernel {}, {}",
            opts.n,
            opts.workers,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel_release(),
            libc_version()
        );
        return agent::run(opts.n, opts.workers, &header);
    }
    // Before the ballast and before any thread: the file is written and closed while no
    // child can inherit it.
    let tiny = if opts.tiny {
        Some(TinyProgram::create()?)
    } else {
        None
    };
    let program = Program::new(match (&tiny, &opts.program) {
        (Some(t), _) => t.path.clone().into_os_string(),
        (None, Some(p)) => p.clone(),
        (None, None) => OsString::from("/bin/true"),
    })?;
    let argv =
        std::iter::once(program.arg.as_os_str()).chain(opts.args.iter().map(OsString::as_os_str));
    let plan = ExecPlan::new(&program.path, argv)?;
    let auto = plan.resolve(Strategy::Auto);
    let mut rows = select_rows(opts, auto, &program)?;

    // The peers: sources written and the Go one built before the ballast and any thread.
    let peers = if rows.iter().any(|r| r.is_peer()) {
        if opts.threads != [1] {
            return Err("the peer rows spawn from one thread: not with --threads".into());
        }
        let peers = Peers::prepare(&rows)?;
        rows.retain(|&r| !r.is_peer() || peers.for_row(r).is_some());
        Some(peers)
    } else {
        None
    };
    if rows.is_empty() {
        return Err("no row left to measure".into());
    }
    let ballast = std::hint::black_box(ballast(opts.rss_mib));

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
        raw: RawArgs::new(&program.path, &opts.args, &env)?,
        program: program.path.clone(),
        args: opts.args.clone(),
        env,
        name: program.name.clone(),
        peers,
    };
    let max_threads = opts.threads.iter().copied().max().unwrap_or(1);
    let mut workers: Vec<Worker> = (0..max_threads).map(|_| Worker::new(&ctx)).collect();
    // What is measured: every row with every thread count, a row's thread counts adjacent.
    let entries: Vec<(Row, usize)> = rows
        .iter()
        .flat_map(|&r| opts.threads.iter().map(move |&t| (r, t)))
        .collect();

    let shown = report::shown(
        &program.arg.to_string_lossy(),
        tiny.as_ref().map(|t| t.len),
        &opts.args,
    );
    let (kernel, libc) = (kernel_release(), libc_version());
    let info = RunInfo {
        opts,
        shown: &shown,
        kernel: &kernel,
        libc: &libc,
        auto,
    };
    let mut notes = Vec::new();
    if ld_dropped > 0 {
        notes.push(format!(
            "dropped the {ld_dropped} LD_LIBRARY_PATH entries cargo added (children would search them)"
        ));
    }
    if let Some(name) = &program.name {
        if rows.iter().any(|r| r.by_name()) {
            notes.push(format!(
                "the name rows start {:?} through a PATH lookup",
                name
            ));
        }
    } else if !opts.output && opts.rows.is_none() {
        notes.push("no name rows: the program is not found on PATH by its file name".into());
    }
    if let Some(p) = &ctx.peers {
        notes.extend(p.notes.iter().cloned());
    }
    report::header(&info, &notes, &load_before);

    // Warm-up: page cache, dynamic loader, the crate's one-time probes, each Cmd's
    // preparation; and a check that every row runs the same program to the same end.
    if opts.warmup {
        warm_up(&ctx, &mut workers, &rows, auto)?;
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
        // Progress every tenth of the rounds, only for runs expected to last more than a
        // few seconds.
        let elapsed = start.elapsed().as_secs_f64();
        let tenth = rounds.div_ceil(10);
        if elapsed * rounds as f64 / (round + 1) as f64 > 5.0 && (round + 1) % tenth == 0 {
            eprintln!("round {}/{rounds} done ({elapsed:.1} s)", round + 1);
        }
    }
    let elapsed = start.elapsed();
    drop(ballast);

    let results: Vec<Stats> = entries
        .iter()
        .zip(accs)
        .map(|(&(row, t), acc)| stats(row, acc, t))
        .collect();
    report::print(&info, &results)?;
    report::footer(&info, &results, elapsed, &load_average());
    Ok(())
}

/// Runs every row a few times (the peers in one run of theirs) and warns when the rows do
/// not agree on the child's wait status or output size.
fn warm_up(
    ctx: &Ctx,
    workers: &mut [Worker],
    rows: &[Row],
    auto: Strategy,
) -> Result<(), BoxError> {
    let mut first = Vec::with_capacity(rows.len());
    for &row in rows {
        let fail = |e: BoxError| format!("{}: {e}", row.name(auto));
        let mut seen = (0, 0);
        if let Some(peers) = ctx.peers.as_ref().filter(|_| row.is_peer()) {
            let r = peers
                .run(row, 0, WARMUP, &ctx.program, &ctx.args, &ctx.env)
                .map_err(fail)?;
            seen = (r.status, r.bytes);
        } else {
            let per_worker = WARMUP.div_ceil(workers.len());
            for w in workers.iter_mut() {
                for _ in 0..per_worker {
                    seen = spawn_wait(ctx, w, row).map_err(fail)?;
                }
            }
        }
        first.push(seen);
    }
    // Cmd::output() reports a failing child as an error, so its status is always 0; only
    // the output rows capture bytes; a peer's warm-up reports its last child's status only.
    fn differ(mut it: impl Iterator<Item = usize>) -> bool {
        it.next().is_some_and(|a| it.any(|b| a != b))
    }
    let seen = || rows.iter().zip(&first);
    let status_differs = differ(
        seen()
            .filter(|(r, _)| **r != Row::CmdOutput)
            .map(|(_, s)| s.0 as usize),
    );
    let bytes_differ = differ(
        seen()
            .filter(|(r, _)| r.is_output() && !r.is_peer())
            .map(|(_, s)| s.1),
    );
    if status_differs || bytes_differ {
        eprintln!("warning: the rows disagree on the child's wait status or output size:");
        for (row, s) in rows.iter().zip(&first) {
            eprintln!("  {:<46} status {:#x}, {} bytes", row.name(auto), s.0, s.1);
        }
    }
    Ok(())
}
