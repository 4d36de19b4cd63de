//! How much does it cost to start a program and wait for it?
//!
//! `spawn_bench` spawns a program (`/bin/true` by default) N times with each
//! [`Strategy`] of this crate, with `std::process::Command`, and with two baselines written
//! directly against the C library, then prints one row per way of spawning:
//!
//! | row | what one sample is |
//! |---|---|
//! | `forkexec Auto (..)` | `fork_exec(&plan, &[], Strategy::Auto)` + `waitpid`; the parenthesis says what `Auto` resolved to on this machine |
//! | `forkexec Vfork` / `PosixSpawn` / `Fork` | the same with that explicit strategy |
//! | `std Command::status()` | `Command::new(program).args(..).status()` (built and run each time, as usually written) |
//! | `raw libc posix_spawn` | `libc::posix_spawn` + `libc::waitpid`, argv prebuilt, envp = `environ` |
//! | `raw libc fork+execve` | `libc::fork`; the child `execve`s (or `_exit(127)`s); the parent `waitpid`s |
//!
//! Each sample is one spawn *plus* the wait for the child's exit, timed with [`Instant`], so
//! it includes the program's own start-up and exit (for `/bin/true`: the dynamic loader,
//! libc initialisation, `exit_group`) and the scheduler's hand-off between parent and child.
//! That part is the same for every row; the differences between rows are what each way of
//! spawning costs. The forkexec rows also do what the crate does for every child: see that
//! no fd but 0-2 reaches the program, and get a pidfd for the child; the raw rows do
//! neither, std does the first.
//!
//! Every row is warmed up (50 spawns, which also checks that all rows see the same exit
//! status), then measured in 10 rounds of N/10 spawns each, the order of the rows rotating
//! from round to round, so that machine noise (frequency changes, other processes) falls on
//! all rows alike.
//!
//! # Reading the table
//! - `median`: the typical cost of one spawn+wait in microseconds; `p10` / `p90`: the 10th
//!   and 90th percentiles, i.e. the spread (a wide p90 means noise or contention).
//! - `vs std`: median divided by the median of `std Command::status()`; below 1 is faster.
//! - `Fork` and `raw libc fork+execve` copy the parent's page tables: their cost grows with
//!   the parent's memory. `--rss-mib 1024` makes the parent allocate and touch 1 GiB first:
//!   the fork rows slow down, the `vfork`-style rows (`Vfork`, `PosixSpawn`, std and the raw
//!   `posix_spawn`, which all share the parent's memory until `execve`) stay flat.
//!
//! # Usage
//! ```text
//! cargo run --release --example spawn_bench -- [-n N] [--rss-mib MIB] [--program PATH]
//!     [--only KEY,KEY..] [--json] [-- ARGS..]
//! ```
//! Row keys for `--only`: `auto`, `vfork`, `posix_spawn`, `fork`, `std`, `libc_posix_spawn`,
//! `libc_fork`. `--json` prints one JSON object per row on stdout (the header goes to
//! stderr).

use std::error::Error;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io::Write;
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};
use std::time::Instant;

use forkexec::raw::{ExecPlan, Strategy, WaitOptions, fork_exec, waitpid};

type BoxError = Box<dyn Error>;

const WARMUP: usize = 50;
const ROUNDS: usize = 10;
const PAGE: usize = 4096;

const USAGE: &str = "\
usage: spawn_bench [-n N] [--rss-mib MIB] [--program PATH] [--only KEY,KEY..] [--json] [-- ARGS..]
  -n N             spawns per row (default 2000)
  --rss-mib MIB    allocate and touch MIB MiB in the parent first (default 0)
  --program PATH   the program to spawn (default /bin/true); ARGS after -- are passed to it
  --only KEYS      rows to run, comma-separated: auto, vfork, posix_spawn, fork, std,
                   libc_posix_spawn, libc_fork
  --json           one JSON object per row on stdout instead of the table";

/// One way of spawning and waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Forkexec(Strategy),
    Std,
    LibcPosixSpawn,
    LibcFork,
}

const ALL_ROWS: [Row; 7] = [
    Row::Forkexec(Strategy::Auto),
    Row::Forkexec(Strategy::Vfork),
    Row::Forkexec(Strategy::PosixSpawn),
    Row::Forkexec(Strategy::Fork),
    Row::Std,
    Row::LibcPosixSpawn,
    Row::LibcFork,
];

impl Row {
    fn key(self) -> &'static str {
        match self {
            Row::Forkexec(Strategy::Auto) => "auto",
            Row::Forkexec(Strategy::Vfork) => "vfork",
            Row::Forkexec(Strategy::PosixSpawn) => "posix_spawn",
            Row::Forkexec(Strategy::Fork) => "fork",
            Row::Std => "std",
            Row::LibcPosixSpawn => "libc_posix_spawn",
            Row::LibcFork => "libc_fork",
        }
    }

    fn name(self, auto: Strategy) -> String {
        match self {
            Row::Forkexec(Strategy::Auto) => format!("forkexec Auto ({auto:?})"),
            Row::Forkexec(s) => format!("forkexec {s:?}"),
            Row::Std => "std Command::status()".to_owned(),
            Row::LibcPosixSpawn => "raw libc posix_spawn".to_owned(),
            Row::LibcFork => "raw libc fork+execve".to_owned(),
        }
    }
}

struct Options {
    n: usize,
    rss_mib: usize,
    program: OsString,
    args: Vec<OsString>,
    rows: Vec<Row>,
    json: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        n: 2000,
        rss_mib: 0,
        program: OsString::from("/bin/true"),
        args: Vec::new(),
        rows: ALL_ROWS.to_vec(),
        json: false,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("unexpected argument {a:?}"))?;
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(OsString::from(v))),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<OsString, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().ok_or_else(|| format!("{what} needs a value")),
            }
        };
        let number = |v: OsString, what: &str| -> Result<usize, String> {
            v.to_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("{what}: not a number: {v:?}"))
        };
        match flag.as_str() {
            "-n" | "--n" => o.n = number(value("-n")?, "-n")?,
            "--rss-mib" => o.rss_mib = number(value("--rss-mib")?, "--rss-mib")?,
            "--program" => o.program = value("--program")?,
            "--only" => {
                let v = value("--only")?;
                let v = v.to_str().ok_or("--only: not UTF-8")?;
                o.rows = Vec::new();
                for k in v.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                    let k = k.replace('-', "_");
                    let row = ALL_ROWS
                        .into_iter()
                        .find(|r| r.key() == k)
                        .ok_or_else(|| format!("--only: unknown row {k:?}\n{USAGE}"))?;
                    if !o.rows.contains(&row) {
                        o.rows.push(row);
                    }
                }
                if o.rows.is_empty() {
                    return Err("--only: no row selected".to_owned());
                }
            }
            "--json" => o.json = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            "--" => {
                o.args.extend(it.by_ref());
                break;
            }
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    if o.n == 0 {
        return Err("-n must be at least 1".to_owned());
    }
    Ok(o)
}

unsafe extern "C" {
    /// The C library's environment, as `execve` wants it.
    static environ: *const *const c_char;
}

/// What the raw libc baselines need, built once outside the timed loop.
struct RawArgs {
    path: CString,
    _args: Vec<CString>,
    argv: Vec<*const c_char>,
}

impl RawArgs {
    fn new(program: &OsStr, args: &[OsString]) -> Result<RawArgs, BoxError> {
        let path = CString::new(program.as_bytes())?;
        let all = std::iter::once(program).chain(args.iter().map(OsString::as_os_str));
        let args = all
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        Ok(RawArgs {
            path,
            _args: args,
            argv,
        })
    }
}

/// `waitpid(pid, &status, 0)`, retrying on `EINTR`; the raw wait status.
fn libc_wait(pid: libc::pid_t) -> Result<i32, BoxError> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(format!("waitpid({pid}): {e}").into());
        }
    }
}

/// Everything a spawn needs, built once.
struct Ctx {
    plan: ExecPlan,
    program: OsString,
    args: Vec<OsString>,
    raw: RawArgs,
    envp: *const *const c_char,
}

/// One spawn of `row` and the wait for it; the child's raw wait status.
fn spawn_wait(ctx: &Ctx, row: Row) -> Result<i32, BoxError> {
    match row {
        Row::Forkexec(s) => {
            let child = fork_exec(&ctx.plan, &[], s)?;
            let (_, status) = waitpid(child.pid, WaitOptions::empty())?
                .ok_or("waitpid returned no status without WNOHANG")?;
            Ok(status.to_raw())
        }
        Row::Std => Ok(Command::new(&ctx.program)
            .args(&ctx.args)
            .status()?
            .into_raw()),
        Row::LibcPosixSpawn => {
            let mut pid: libc::pid_t = 0;
            // SAFETY: path, argv and envp are NUL-terminated strings in NULL-terminated
            // arrays that outlive the call; NULL file actions and attributes mean defaults.
            let r = unsafe {
                libc::posix_spawn(
                    &mut pid,
                    ctx.raw.path.as_ptr(),
                    std::ptr::null(),
                    std::ptr::null(),
                    ctx.raw.argv.as_ptr().cast(),
                    ctx.envp.cast(),
                )
            };
            if r != 0 {
                return Err(
                    format!("posix_spawn: {}", std::io::Error::from_raw_os_error(r)).into(),
                );
            }
            libc_wait(pid)
        }
        Row::LibcFork => {
            let (path, argv, envp) = (ctx.raw.path.as_ptr(), ctx.raw.argv.as_ptr(), ctx.envp);
            // SAFETY: this program is single-threaded while it measures; in the child only
            // execve and _exit run (both async-signal-safe), on pointers prepared before the
            // fork, so no lock, allocation or Rust state is touched there.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: see above; `_exit` never returns, so the child never gets back here.
                unsafe {
                    libc::execve(path, argv, envp);
                    libc::_exit(127)
                }
            }
            if pid < 0 {
                return Err(format!("fork: {}", std::io::Error::last_os_error()).into());
            }
            libc_wait(pid)
        }
    }
}

/// The `q` quantile (0..=1) of sorted samples, linearly interpolated.
fn quantile(sorted: &[u64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let frac = pos - lo as f64;
    sorted[lo] as f64 * (1.0 - frac) + sorted[hi] as f64 * frac
}

struct Stats {
    row: Row,
    samples: usize,
    median_us: f64,
    p10_us: f64,
    p90_us: f64,
    mean_us: f64,
}

fn stats(row: Row, mut ns: Vec<u64>) -> Stats {
    ns.sort_unstable();
    let us = |v: f64| v / 1000.0;
    Stats {
        row,
        samples: ns.len(),
        median_us: us(quantile(&ns, 0.5)),
        p10_us: us(quantile(&ns, 0.1)),
        p90_us: us(quantile(&ns, 0.9)),
        mean_us: us(ns.iter().sum::<u64>() as f64 / ns.len() as f64),
    }
}

/// `uname -r`.
fn kernel_release() -> String {
    // SAFETY: `utsname` is plain old data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable `utsname`.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".to_owned();
    }
    // SAFETY: on success `release` holds a NUL-terminated string inside the array.
    let release = unsafe { CStr::from_ptr(u.release.as_ptr()) };
    release.to_string_lossy().into_owned()
}

/// The C library and its version.
#[cfg(target_env = "gnu")]
fn libc_version() -> String {
    // SAFETY: gnu_get_libc_version returns a pointer to a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) };
    format!("glibc {}", v.to_string_lossy())
}

#[cfg(not(target_env = "gnu"))]
fn libc_version() -> String {
    if cfg!(target_env = "musl") {
        "musl".to_owned()
    } else {
        "unknown libc".to_owned()
    }
}

/// This process's resident set size in MiB, from `/proc/self/status`.
fn vm_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() -> ExitCode {
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
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spawn_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: &Options) -> Result<(), BoxError> {
    // The memory the fork rows have to copy the page tables of: one write per 4 KiB page so
    // every page is really mapped, kept alive until the end.
    let mut ballast = vec![0u8; opts.rss_mib << 20];
    ballast.iter_mut().step_by(PAGE).for_each(|b| *b = 1);
    let ballast = std::hint::black_box(ballast);

    let argv =
        std::iter::once(opts.program.as_os_str()).chain(opts.args.iter().map(OsString::as_os_str));
    let plan = ExecPlan::new(&opts.program, argv)?;
    let auto = plan.resolve(Strategy::Auto);
    let ctx = Ctx {
        plan,
        program: opts.program.clone(),
        args: opts.args.clone(),
        raw: RawArgs::new(&opts.program, &opts.args)?,
        // SAFETY: reading the pointer value of `environ`; nothing modifies the environment
        // while this program measures.
        envp: unsafe { environ },
    };

    let program = {
        let mut p = opts.program.to_string_lossy().into_owned();
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
        "spawn_bench: program `{program}`, N = {} per row, rss {} MiB allocated (VmRSS {rss_now} MiB), kernel {kernel}, {libc_v}; Auto resolves to {auto:?}",
        opts.n, opts.rss_mib
    );
    if opts.json {
        eprintln!("{header}");
    } else {
        println!("{header}");
    }

    // Warm-up: page cache, dynamic loader, the crate's one-time probes; and a check that
    // every row runs the same program to the same end.
    let mut first_status = Vec::with_capacity(opts.rows.len());
    for &row in &opts.rows {
        let mut status = 0;
        for _ in 0..WARMUP {
            status = spawn_wait(&ctx, row).map_err(|e| format!("{}: {e}", row.name(auto)))?;
        }
        first_status.push(status);
    }
    if first_status.iter().any(|&s| s != first_status[0]) {
        eprintln!("warning: the rows disagree on the child's wait status:");
        for (row, s) in opts.rows.iter().zip(&first_status) {
            eprintln!("  {:<28} {s:#x}", row.name(auto));
        }
    }

    // Measure: ROUNDS rounds, each running every row for its share of N in a rotating order.
    let rounds = ROUNDS.min(opts.n);
    let mut samples: Vec<Vec<u64>> = opts
        .rows
        .iter()
        .map(|_| Vec::with_capacity(opts.n))
        .collect();
    let start = Instant::now();
    for round in 0..rounds {
        let per_row = opts.n / rounds + usize::from(round < opts.n % rounds);
        for k in 0..opts.rows.len() {
            let i = (round + k) % opts.rows.len();
            let row = opts.rows[i];
            for _ in 0..per_row {
                let t = Instant::now();
                spawn_wait(&ctx, row).map_err(|e| format!("{}: {e}", row.name(auto)))?;
                let ns = t.elapsed().as_nanos();
                samples[i].push(u64::try_from(ns).unwrap_or(u64::MAX));
            }
        }
        // Progress, only for runs expected to last more than a few seconds.
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed * rounds as f64 / (round + 1) as f64 > 5.0 {
            eprintln!("round {}/{rounds} done ({elapsed:.1} s)", round + 1);
        }
    }
    drop(ballast);

    let results: Vec<Stats> = opts
        .rows
        .iter()
        .zip(samples)
        .map(|(&row, ns)| stats(row, ns))
        .collect();
    let std_median = results
        .iter()
        .find(|s| s.row == Row::Std)
        .map(|s| s.median_us);

    let mut out = std::io::stdout().lock();
    if opts.json {
        for s in &results {
            let ratio =
                std_median.map_or_else(|| "null".to_owned(), |m| format!("{:.3}", s.median_us / m));
            writeln!(
                out,
                "{{\"key\":{},\"name\":{},\"program\":{},\"n\":{},\"rss_mib\":{},\"kernel\":{},\"libc\":{},\"median_us\":{:.2},\"p10_us\":{:.2},\"p90_us\":{:.2},\"mean_us\":{:.2},\"ratio_to_std\":{ratio}}}",
                json_str(s.row.key()),
                json_str(&s.row.name(auto)),
                json_str(&program),
                s.samples,
                opts.rss_mib,
                json_str(&kernel),
                json_str(&libc_v),
                s.median_us,
                s.p10_us,
                s.p90_us,
                s.mean_us,
            )?;
        }
    } else {
        writeln!(
            out,
            "{:<28} {:>10} {:>9} {:>9} {:>7}  key",
            "row", "median µs", "p10 µs", "p90 µs", "vs std"
        )?;
        for s in &results {
            let ratio =
                std_median.map_or_else(|| "-".to_owned(), |m| format!("{:.2}x", s.median_us / m));
            writeln!(
                out,
                "{:<28} {:>10.1} {:>9.1} {:>9.1} {:>7}  {}",
                s.row.name(auto),
                s.median_us,
                s.p10_us,
                s.p90_us,
                ratio,
                s.row.key()
            )?;
        }
    }
    Ok(())
}
