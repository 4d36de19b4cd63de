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

use std::error::Error;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::raw::{c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use forkexec::Cmd;
use forkexec::raw::{ExecPlan, Strategy, WaitOptions, fork_exec, waitpid};

type BoxError = Box<dyn Error + Send + Sync>;

const WARMUP: usize = 50;
const ROUNDS: usize = 10;
const PAGE: usize = 4096;
/// The floor child's stack (it only calls `execve` and `_exit`).
const FLOOR_STACK: usize = 64 * 1024;

const USAGE: &str = "\
usage: spawn_bench [-n N] [--rss-mib MIB] [--env N] [--threads T,..] [--output]
                   [--program PATH | --tiny] [--only KEY,KEY..] [--json] [--no-warmup]
                   [-- ARGS..]
  -n N             spawns per row (default 2000)
  --rss-mib MIB    allocate and touch MIB MiB in the parent first (default 0)
  --env N          set N variables on the command for the Cmd and std rows (default 0)
  --threads T,..   T threads spawning at once, each N/T times (default 1); several counts:
                   each row with each, a scaling column compares them
  --output         capture stdout: Cmd::output() vs std output() vs the floor
  --program PATH   the program to spawn (default /bin/true; looked up on PATH when it has
                   no '/'); ARGS after -- are passed to it
  --tiny           spawn a tiny static binary instead (x86_64 only): a 132-byte ELF doing
                   exit_group(0), written to a private directory under $TMPDIR (or /tmp)
                   and removed at the end; not with --program
  --only KEYS      rows to run, comma-separated: auto, vfork, posix_spawn, fork, cmd, cmd_reset_all, std,
                   libc_posix_spawn, libc_fork, libc_clone; cmd_output, std_output,
                   libc_clone_output
  --json           one JSON object per row on stdout instead of the table
  --no-warmup      no warm-up and no per-spawn clock read (for callgrind; mean only)";

/// One way of spawning and waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Forkexec(Strategy),
    Cmd,
    CmdResetAll,
    Std,
    LibcPosixSpawn,
    LibcFork,
    LibcClone,
    CmdOutput,
    StdOutput,
    LibcCloneOutput,
}

const STATUS_ROWS: [Row; 10] = [
    Row::Forkexec(Strategy::Auto),
    Row::Forkexec(Strategy::Vfork),
    Row::Forkexec(Strategy::PosixSpawn),
    Row::Forkexec(Strategy::Fork),
    Row::Cmd,
    Row::CmdResetAll,
    Row::Std,
    Row::LibcPosixSpawn,
    Row::LibcFork,
    Row::LibcClone,
];

const OUTPUT_ROWS: [Row; 3] = [Row::CmdOutput, Row::StdOutput, Row::LibcCloneOutput];

impl Row {
    fn all() -> impl Iterator<Item = Row> {
        STATUS_ROWS.into_iter().chain(OUTPUT_ROWS)
    }

    fn key(self) -> &'static str {
        match self {
            Row::Forkexec(Strategy::Auto) => "auto",
            Row::Forkexec(Strategy::Vfork) => "vfork",
            Row::Forkexec(Strategy::PosixSpawn) => "posix_spawn",
            Row::Forkexec(Strategy::Fork) => "fork",
            Row::Cmd => "cmd",
            Row::CmdResetAll => "cmd_reset_all",
            Row::Std => "std",
            Row::LibcPosixSpawn => "libc_posix_spawn",
            Row::LibcFork => "libc_fork",
            Row::LibcClone => "libc_clone",
            Row::CmdOutput => "cmd_output",
            Row::StdOutput => "std_output",
            Row::LibcCloneOutput => "libc_clone_output",
        }
    }

    fn name(self, auto: Strategy) -> String {
        match self {
            Row::Forkexec(Strategy::Auto) => format!("forkexec Auto ({auto:?})"),
            Row::Forkexec(s) => format!("forkexec {s:?}"),
            Row::Cmd => "forkexec Cmd::status() (Auto)".to_owned(),
            Row::CmdResetAll => "forkexec Cmd, ignored_signals(Reset)".to_owned(),
            Row::Std => "std Command::status()".to_owned(),
            Row::LibcPosixSpawn => "raw libc posix_spawn".to_owned(),
            Row::LibcFork => "raw libc fork+execve".to_owned(),
            Row::LibcClone => "raw libc clone(CLONE_VM|CLONE_VFORK) floor".to_owned(),
            Row::CmdOutput => "forkexec Cmd::output() (Auto)".to_owned(),
            Row::StdOutput => "std Command::output()".to_owned(),
            Row::LibcCloneOutput => "raw libc clone+pipe floor".to_owned(),
        }
    }

    fn is_output(self) -> bool {
        matches!(self, Row::CmdOutput | Row::StdOutput | Row::LibcCloneOutput)
    }

    /// The row the `vs std` column divides by.
    fn std_ref(self) -> Row {
        if self.is_output() {
            Row::StdOutput
        } else {
            Row::Std
        }
    }

    /// The row the `vs floor` column divides by.
    fn floor_ref(self) -> Row {
        if self.is_output() {
            Row::LibcCloneOutput
        } else {
            Row::LibcClone
        }
    }
}

struct Options {
    n: usize,
    rss_mib: usize,
    env: usize,
    /// Thread counts to measure, each row with each.
    threads: Vec<usize>,
    output: bool,
    /// `--program`; `/bin/true` when not given.
    program: Option<OsString>,
    /// `--tiny`: spawn [`TinyProgram`] instead.
    tiny: bool,
    args: Vec<OsString>,
    rows: Option<Vec<Row>>,
    json: bool,
    warmup: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        n: 2000,
        rss_mib: 0,
        env: 0,
        threads: vec![1],
        output: false,
        program: None,
        tiny: false,
        args: Vec::new(),
        rows: None,
        json: false,
        warmup: true,
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
            "--env" => o.env = number(value("--env")?, "--env")?,
            "--threads" => {
                let v = value("--threads")?;
                let v = v.to_str().ok_or("--threads: not UTF-8")?.to_owned();
                o.threads = Vec::new();
                for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    let t = number(OsString::from(t), "--threads")?;
                    if !o.threads.contains(&t) {
                        o.threads.push(t);
                    }
                }
            }
            "--output" => o.output = true,
            "--program" => o.program = Some(value("--program")?),
            "--tiny" => o.tiny = true,
            "--only" => {
                let v = value("--only")?;
                let v = v.to_str().ok_or("--only: not UTF-8")?;
                let mut rows = Vec::new();
                for k in v.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                    let k = k.replace('-', "_");
                    let row = Row::all()
                        .find(|r| r.key() == k)
                        .ok_or_else(|| format!("--only: unknown row {k:?}\n{USAGE}"))?;
                    if !rows.contains(&row) {
                        rows.push(row);
                    }
                }
                if rows.is_empty() {
                    return Err("--only: no row selected".to_owned());
                }
                o.rows = Some(rows);
            }
            "--json" => o.json = true,
            "--no-warmup" => o.warmup = false,
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
    if o.threads.is_empty() || o.threads.contains(&0) {
        return Err("--threads: each count must be at least 1".to_owned());
    }
    if o.tiny && o.program.is_some() {
        return Err("--tiny and --program are mutually exclusive".to_owned());
    }
    if o.tiny && !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err(format!(
            "--tiny: the tiny static binary is x86_64 Linux machine code; this is {} {}",
            std::env::consts::OS,
            std::env::consts::ARCH
        ));
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
    /// With `--env N`: the parent's environment plus the N variables, so the raw rows pass
    /// the same environment as the `Cmd` and std rows.
    _env: Vec<CString>,
    _envp: Vec<*const c_char>,
    envp: *const *const c_char,
}

// SAFETY: the pointers point into `path`/`_args` (owned, never modified after `new`) and
// into the C library's `environ`, which nothing modifies while the benchmark runs; the
// threads only read them.
unsafe impl Sync for RawArgs {}

impl RawArgs {
    fn new(
        program: &OsStr,
        args: &[OsString],
        extra_env: &[(OsString, OsString)],
    ) -> Result<RawArgs, BoxError> {
        let path = CString::new(program.as_bytes())?;
        let all = std::iter::once(program).chain(args.iter().map(OsString::as_os_str));
        let args = all
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut env = Vec::new();
        if !extra_env.is_empty() {
            for (k, v) in std::env::vars_os().chain(extra_env.iter().cloned()) {
                let mut e = k.as_bytes().to_vec();
                e.push(b'=');
                e.extend_from_slice(v.as_bytes());
                env.push(CString::new(e)?);
            }
        }
        let mut envp: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        let envp_ptr = if env.is_empty() {
            // SAFETY: reading the pointer value of `environ`; nothing modifies the
            // environment while this program measures.
            unsafe { environ }
        } else {
            envp.as_ptr()
        };
        Ok(RawArgs {
            path,
            _args: args,
            argv,
            _env: env,
            _envp: envp,
            envp: envp_ptr,
        })
    }
}

fn last_os_error(what: &str) -> BoxError {
    format!("{what}: {}", std::io::Error::last_os_error()).into()
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

/// What the floor child needs: pointers prepared by the parent, and the fd to put on 1.
struct FloorArgs {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    /// Duplicated onto fd 1 before `execve` when `>= 0`.
    stdout_fd: c_int,
}

/// The floor child: runs on its own stack in the parent's memory (`CLONE_VM`) while the
/// parent thread is suspended (`CLONE_VFORK`); only async-signal-safe calls.
extern "C" fn floor_child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `FloorArgs`, alive until the parent resumes, which is
    // after this child has exec'd or exited.
    let a = unsafe { &*arg.cast::<FloorArgs>() };
    // SAFETY: dup2, execve and _exit are async-signal-safe; the pointers are valid C
    // strings / NULL-terminated arrays prepared before the clone.
    unsafe {
        if a.stdout_fd >= 0 && libc::dup2(a.stdout_fd, 1) < 0 {
            libc::_exit(127);
        }
        libc::execve(a.path, a.argv, a.envp);
        libc::_exit(127)
    }
}

/// The floor: `clone(CLONE_VM|CLONE_VFORK|SIGCHLD)` running [`floor_child`] on `stack`.
fn libc_clone(stack: &mut [u8], raw: &RawArgs, stdout_fd: c_int) -> Result<libc::pid_t, BoxError> {
    let args = FloorArgs {
        path: raw.path.as_ptr(),
        argv: raw.argv.as_ptr(),
        envp: raw.envp,
        stdout_fd,
    };
    // The stack grows down: hand clone its (16-byte aligned) top.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    // SAFETY: `stack` is this thread's, unused by anything else, and `args` lives in this
    // frame; with CLONE_VFORK this thread is suspended until the child has called execve
    // or _exit, so both outlive the child's use of them. The child only runs
    // `floor_child`, which is async-signal-safe.
    let pid = unsafe {
        libc::clone(
            floor_child,
            top as *mut c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&args as *const FloorArgs).cast_mut().cast(),
        )
    };
    if pid < 0 {
        return Err(last_os_error("clone"));
    }
    Ok(pid)
}

/// Everything a spawn needs that the threads share, built once.
struct Ctx {
    plan: ExecPlan,
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    raw: RawArgs,
}

/// What each spawning thread owns: its own `Cmd`s (a `Cmd` starts through `&mut self`) and
/// its own stack for the floor child.
struct Worker {
    cmd: Cmd,
    cmd_reset_all: Cmd,
    cmd_output: Cmd,
    stack: Vec<u8>,
}

impl Worker {
    fn new(ctx: &Ctx) -> Worker {
        let make = || {
            let mut c = Cmd::new(&ctx.program);
            c.args(&ctx.args).envs(ctx.env.iter().map(|(k, v)| (k, v)));
            c
        };
        let mut keep = make();
        keep.ignored_signals(forkexec::IgnoredSignals::Reset);
        Worker {
            cmd: make(),
            cmd_reset_all: keep,
            cmd_output: make(),
            stack: vec![0; FLOOR_STACK],
        }
    }
}

fn std_command(ctx: &Ctx) -> Command {
    let mut c = Command::new(&ctx.program);
    c.args(&ctx.args).envs(ctx.env.iter().map(|(k, v)| (k, v)));
    c
}

/// One spawn of `row` and the wait for it: the child's raw wait status and how many bytes
/// of output were captured.
fn spawn_wait(ctx: &Ctx, w: &mut Worker, row: Row) -> Result<(i32, usize), BoxError> {
    match row {
        Row::Forkexec(s) => {
            let child = fork_exec(&ctx.plan, &[], s)?;
            let (_, status) = waitpid(child.pid, WaitOptions::empty())?
                .ok_or("waitpid returned no status without WNOHANG")?;
            Ok((status.to_raw(), 0))
        }
        Row::Cmd => Ok((w.cmd.status()?.wait_status().to_raw(), 0)),
        Row::CmdResetAll => Ok((w.cmd_reset_all.status()?.wait_status().to_raw(), 0)),
        Row::Std => Ok((std_command(ctx).status()?.into_raw(), 0)),
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
                    ctx.raw.envp.cast(),
                )
            };
            if r != 0 {
                return Err(
                    format!("posix_spawn: {}", std::io::Error::from_raw_os_error(r)).into(),
                );
            }
            Ok((libc_wait(pid)?, 0))
        }
        Row::LibcFork => {
            let (path, argv, envp) = (ctx.raw.path.as_ptr(), ctx.raw.argv.as_ptr(), ctx.raw.envp);
            // SAFETY: in the child only execve and _exit run (both async-signal-safe, so
            // this holds with other threads too), on pointers prepared before the fork, so
            // no lock, allocation or Rust state is touched there.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: see above; `_exit` never returns, so the child never gets back here.
                unsafe {
                    libc::execve(path, argv, envp);
                    libc::_exit(127)
                }
            }
            if pid < 0 {
                return Err(last_os_error("fork"));
            }
            Ok((libc_wait(pid)?, 0))
        }
        Row::LibcClone => {
            let pid = libc_clone(&mut w.stack, &ctx.raw, -1)?;
            Ok((libc_wait(pid)?, 0))
        }
        Row::CmdOutput => {
            let out = w.cmd_output.output()?;
            Ok((0, out.len()))
        }
        Row::StdOutput => {
            let out = std_command(ctx).output()?;
            Ok((out.status.into_raw(), out.stdout.len()))
        }
        Row::LibcCloneOutput => {
            let mut fds = [0 as c_int; 2];
            // SAFETY: `fds` is a valid out-array of two ints.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
                return Err(last_os_error("pipe2"));
            }
            // SAFETY: pipe2 just returned these two fds; nothing else owns them.
            let (mut r, wr) = unsafe {
                (
                    std::fs::File::from_raw_fd(fds[0]),
                    std::fs::File::from_raw_fd(fds[1]),
                )
            };
            let pid = libc_clone(&mut w.stack, &ctx.raw, fds[1]);
            drop(wr);
            let pid = pid?;
            let mut out = Vec::new();
            let read = r.read_to_end(&mut out);
            let status = libc_wait(pid)?;
            read?;
            Ok((status, out.len()))
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

/// What one row measured over all rounds.
#[derive(Default)]
struct Acc {
    /// Nanoseconds per spawn+wait (empty with `--no-warmup`).
    ns: Vec<u64>,
    /// Wall time of the row's rounds, all threads together.
    wall: Duration,
    spawns: usize,
    bytes: usize,
}

struct Stats {
    row: Row,
    threads: usize,
    spawns: usize,
    /// `(median, p10, p90)` in µs, when samples were timed one by one.
    quantiles: Option<(f64, f64, f64)>,
    mean_us: f64,
    spawns_per_s: f64,
    bytes_per_run: f64,
}

impl Stats {
    /// The figure the ratios divide: the median, or the mean when there is none.
    fn typical_us(&self) -> f64 {
        self.quantiles.map_or(self.mean_us, |q| q.0)
    }

    fn mib_per_s(&self) -> f64 {
        self.bytes_per_run * self.spawns_per_s / (1024.0 * 1024.0)
    }
}

fn stats(row: Row, mut acc: Acc, threads: usize) -> Stats {
    let wall_s = acc.wall.as_secs_f64();
    let spawns_per_s = if wall_s > 0.0 {
        acc.spawns as f64 / wall_s
    } else {
        0.0
    };
    let us = |v: f64| v / 1000.0;
    let (quantiles, mean_us) = if acc.ns.is_empty() {
        // Untimed: the mean latency of one thread's spawn from the wall time.
        (
            None,
            wall_s * 1e6 * threads as f64 / acc.spawns.max(1) as f64,
        )
    } else {
        acc.ns.sort_unstable();
        let ns = &acc.ns;
        (
            Some((
                us(quantile(ns, 0.5)),
                us(quantile(ns, 0.1)),
                us(quantile(ns, 0.9)),
            )),
            us(ns.iter().sum::<u64>() as f64 / ns.len() as f64),
        )
    };
    Stats {
        row,
        threads,
        spawns: acc.spawns,
        quantiles,
        mean_us,
        spawns_per_s,
        bytes_per_run: acc.bytes as f64 / acc.spawns.max(1) as f64,
    }
}

/// Runs `count` spawns of `row` on one thread; per-spawn times go to `ns` when `timed`.
fn run_one(
    ctx: &Ctx,
    w: &mut Worker,
    row: Row,
    count: usize,
    timed: bool,
    ns: &mut Vec<u64>,
) -> Result<usize, BoxError> {
    let mut bytes = 0;
    for _ in 0..count {
        if timed {
            let t = Instant::now();
            bytes += spawn_wait(ctx, w, row)?.1;
            let d = t.elapsed().as_nanos();
            ns.push(u64::try_from(d).unwrap_or(u64::MAX));
        } else {
            bytes += spawn_wait(ctx, w, row)?.1;
        }
    }
    Ok(bytes)
}

/// Runs `count` spawns of `row` split over the workers (one thread each), adding to `acc`.
fn run_row(
    ctx: &Ctx,
    workers: &mut [Worker],
    row: Row,
    count: usize,
    timed: bool,
    acc: &mut Acc,
) -> Result<(), BoxError> {
    let start = Instant::now();
    let bytes = if workers.len() == 1 {
        run_one(ctx, &mut workers[0], row, count, timed, &mut acc.ns)?
    } else {
        let t = workers.len();
        let results = std::thread::scope(|s| {
            let handles: Vec<_> = workers
                .iter_mut()
                .enumerate()
                .map(|(i, w)| {
                    let share = count / t + usize::from(i < count % t);
                    s.spawn(move || {
                        let mut ns = Vec::with_capacity(if timed { share } else { 0 });
                        run_one(ctx, w, row, share, timed, &mut ns).map(|b| (b, ns))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Vec<_>>()
        });
        let mut bytes = 0;
        for r in results {
            let (b, ns) = r?;
            bytes += b;
            acc.ns.extend(ns);
        }
        bytes
    };
    acc.wall += start.elapsed();
    acc.spawns += count;
    acc.bytes += bytes;
    Ok(())
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

/// A JSON number with `decimals` decimals, or `null`.
fn json_num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "null".to_owned(),
    }
}

/// `cargo run` and `cargo bench` prepend their own directories (the target directory's, the
/// toolchain's) to `LD_LIBRARY_PATH`; every dynamically linked child would then look for
/// its libraries there first — on the machine of the README that adds ~140 µs (+29 %) to a
/// spawn of `/bin/true`. Drops those entries (keeping any the user set); the number
/// dropped. Must run before any thread exists.
fn drop_cargo_library_path() -> usize {
    use std::path::Path;
    let (Some(_), Some(old)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("LD_LIBRARY_PATH"),
    ) else {
        return 0;
    };
    // <target>/<profile>/examples/<this binary>: cargo's entries are under <profile>.
    let exe = std::env::current_exe().ok();
    let profile = exe.as_deref().and_then(Path::parent).and_then(Path::parent);
    let cargos = |p: &Path| {
        profile.is_some_and(|d| p.starts_with(d))
            || p.components().any(|c| c.as_os_str() == "rustlib")
            || p.join("rustlib").is_dir()
    };
    let all: Vec<_> = std::env::split_paths(&old).collect();
    let kept: Vec<_> = all.iter().filter(|p| !cargos(p)).collect();
    let dropped = all.len() - kept.len();
    if dropped > 0 {
        // SAFETY: called first thing in `main`, while this is the only thread.
        unsafe {
            match std::env::join_paths(kept) {
                Ok(v) if !v.is_empty() => std::env::set_var("LD_LIBRARY_PATH", v),
                _ => std::env::remove_var("LD_LIBRARY_PATH"),
            }
        }
    }
    dropped
}

/// Where the tiny program is loaded: the traditional base of x86_64 executables, well above
/// `vm.mmap_min_addr`.
const TINY_VADDR: u64 = 0x40_0000;

/// A minimal static x86_64 Linux executable: the 64-byte ELF header, one 56-byte program
/// header (a single `PT_LOAD` mapping the whole file, read + execute), and 12 bytes of code
/// doing `exit_group(0)`. No sections, no interpreter, no C library: `execve` maps one page
/// and jumps to the code, which exits at once.
fn tiny_elf() -> Vec<u8> {
    const EHDR_SIZE: u16 = 64;
    const PHDR_SIZE: u16 = 56;
    // The code, at the end of the file:
    const CODE: [u8; 12] = [
        0xbf, 0x00, 0x00, 0x00, 0x00, // mov edi, 0     exit status
        0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231   __NR_exit_group
        0x0f, 0x05, //                   syscall
    ];
    let code_offset = u64::from(EHDR_SIZE + PHDR_SIZE);
    let file_len = code_offset + CODE.len() as u64;

    let mut f = Vec::with_capacity(file_len as usize);
    let u16le = |f: &mut Vec<u8>, v: u16| f.extend_from_slice(&v.to_le_bytes());
    let u32le = |f: &mut Vec<u8>, v: u32| f.extend_from_slice(&v.to_le_bytes());
    let u64le = |f: &mut Vec<u8>, v: u64| f.extend_from_slice(&v.to_le_bytes());

    // ELF header (Elf64_Ehdr).
    // e_ident[0..4]: the magic number.
    f.extend_from_slice(b"\x7fELF");
    f.push(2); // e_ident[EI_CLASS] = ELFCLASS64
    f.push(1); // e_ident[EI_DATA] = ELFDATA2LSB (little-endian)
    f.push(1); // e_ident[EI_VERSION] = EV_CURRENT
    f.push(0); // e_ident[EI_OSABI] = ELFOSABI_SYSV
    f.push(0); // e_ident[EI_ABIVERSION]
    f.extend_from_slice(&[0; 7]); // e_ident[EI_PAD..16]: padding
    u16le(&mut f, 2); // e_type = ET_EXEC (fixed addresses, not position-independent)
    u16le(&mut f, 62); // e_machine = EM_X86_64
    u32le(&mut f, 1); // e_version = EV_CURRENT
    u64le(&mut f, TINY_VADDR + code_offset); // e_entry: the code's virtual address
    u64le(&mut f, u64::from(EHDR_SIZE)); // e_phoff: program headers right after this one
    u64le(&mut f, 0); // e_shoff: no section headers
    u32le(&mut f, 0); // e_flags: none defined for x86_64
    u16le(&mut f, EHDR_SIZE); // e_ehsize
    u16le(&mut f, PHDR_SIZE); // e_phentsize
    u16le(&mut f, 1); // e_phnum
    u16le(&mut f, 0); // e_shentsize: no section headers
    u16le(&mut f, 0); // e_shnum
    u16le(&mut f, 0); // e_shstrndx = SHN_UNDEF
    assert_eq!(f.len(), usize::from(EHDR_SIZE));

    // The one program header (Elf64_Phdr).
    u32le(&mut f, 1); // p_type = PT_LOAD
    u32le(&mut f, 4 | 1); // p_flags = PF_R | PF_X
    u64le(&mut f, 0); // p_offset: map from the start of the file (headers included)
    u64le(&mut f, TINY_VADDR); // p_vaddr
    u64le(&mut f, TINY_VADDR); // p_paddr (unused; same as p_vaddr by convention)
    u64le(&mut f, file_len); // p_filesz: the whole file
    u64le(&mut f, file_len); // p_memsz: no .bss
    u64le(&mut f, 0x1000); // p_align: the page size (p_offset ≡ p_vaddr modulo it)
    assert_eq!(f.len() as u64, code_offset);

    f.extend_from_slice(&CODE);
    assert_eq!(f.len() as u64, file_len);
    f
}

/// `--tiny`: [`tiny_elf`] written to a private directory, both removed when dropped (on
/// every return from `run`, errors included).
struct TinyProgram {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
    len: usize,
}

impl TinyProgram {
    fn create() -> Result<TinyProgram, BoxError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let elf = tiny_elf();
        let tmp = std::env::temp_dir();
        // A new directory only this user can enter: nobody can swap the file between its
        // writing and its executions. A leftover of an earlier run with the same pid is
        // skipped, not reused.
        let mut dir = None;
        for k in 0..100 {
            let d = tmp.join(format!("spawn_bench-tiny.{}.{k}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&d) {
                Ok(()) => {
                    dir = Some(d);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("--tiny: creating {}: {e}", d.display()).into()),
            }
        }
        let dir =
            dir.ok_or_else(|| format!("--tiny: no free directory name in {}", tmp.display()))?;
        // From here on, dropping `tiny` cleans up whatever exists.
        let tiny = TinyProgram {
            path: dir.join("tiny"),
            dir,
            len: elf.len(),
        };
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o755)
                .open(&tiny.path)?;
            file.write_all(&elf)?;
            // 0755 whatever the umask; the file is closed at the end of this closure, before
            // any exec (a file open for writing cannot be executed: ETXTBSY).
            file.set_permissions(std::fs::Permissions::from_mode(0o755))
        };
        write().map_err(|e| format!("--tiny: writing {}: {e}", tiny.path.display()))?;
        // Run it once, so that a temporary directory on a `noexec` mount fails here with a
        // hint rather than as a spawn error in the first row.
        match Command::new(&tiny.path).status() {
            Ok(s) if s.success() => Ok(tiny),
            Ok(s) => Err(format!("--tiny: {} exited with {s}", tiny.path.display()).into()),
            Err(e) => Err(format!(
                "--tiny: cannot execute {}: {e} (is {} mounted noexec? set TMPDIR to another directory)",
                tiny.path.display(),
                tmp.display()
            )
            .into()),
        }
    }
}

impl Drop for TinyProgram {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

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

/// The memory the fork rows have to copy the page tables of: `mib` MiB in 4 KiB pages (no
/// transparent huge pages, which would make the copy 512 times cheaper than for a typical
/// heap), one write per page so every page is really mapped.
fn ballast(mib: usize) -> Vec<u8> {
    let mut v = vec![0u8; mib << 20];
    if !v.is_empty() {
        let start = v.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(PAGE);
        let len = (start + v.len()).saturating_sub(aligned) & !(PAGE - 1);
        // SAFETY: the range lies inside `v`'s allocation; MADV_NOHUGEPAGE only changes how
        // the kernel backs it. A failure leaves the default, which is fine.
        unsafe { libc::madvise(aligned as *mut c_void, len, libc::MADV_NOHUGEPAGE) };
    }
    v.iter_mut().step_by(PAGE).for_each(|b| *b = 1);
    v
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
    let many = opts.threads.len() > 1;
    let entry_name = |row: Row, t: usize| {
        if many || t > 1 {
            format!("{} ×{t}", row.name(auto))
        } else {
            row.name(auto)
        }
    };

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
            .map_err(|e| format!("{}: {e}", entry_name(row, t)))?;
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
    // Ratios compare entries with the same thread count; `scaling` compares a row's
    // throughput with its own at the first thread count given.
    let find = |r: Row, t: usize| results.iter().find(|s| s.row == r && s.threads == t);
    let ratio = |s: &Stats, r: Row| find(r, s.threads).map(|m| s.typical_us() / m.typical_us());
    let scaling = |s: &Stats| {
        find(s.row, opts.threads[0])
            .filter(|_| many)
            .map(|b| s.spawns_per_s / b.spawns_per_s)
    };
    let any_bytes = results.iter().any(|s| s.bytes_per_run > 0.0);

    let mut out = std::io::stdout().lock();
    if opts.json {
        for s in &results {
            let (median, p10, p90) = match s.quantiles {
                Some((m, a, b)) => (Some(m), Some(a), Some(b)),
                None => (None, None, None),
            };
            writeln!(
                out,
                "{{\"key\":{},\"name\":{},\"mode\":{},\"program\":{},\"n\":{},\"threads\":{},\"env\":{},\"rss_mib\":{},\"kernel\":{},\"libc\":{},\"auto\":{},\"median_us\":{},\"p10_us\":{},\"p90_us\":{},\"mean_us\":{},\"spawns_per_s\":{},\"bytes_per_run\":{},\"mib_per_s\":{},\"ratio_to_std\":{},\"ratio_to_floor\":{},\"scaling\":{}}}",
                json_str(s.row.key()),
                json_str(&entry_name(s.row, s.threads)),
                json_str(if s.row.is_output() {
                    "output"
                } else {
                    "status"
                }),
                json_str(&shown),
                s.spawns,
                s.threads,
                opts.env,
                opts.rss_mib,
                json_str(&kernel),
                json_str(&libc_v),
                json_str(&format!("{auto:?}")),
                json_num(median, 2),
                json_num(p10, 2),
                json_num(p90, 2),
                json_num(Some(s.mean_us), 2),
                json_num(Some(s.spawns_per_s), 1),
                json_num(Some(s.bytes_per_run), 0),
                json_num(Some(s.mib_per_s()), 1),
                json_num(ratio(s, s.row.std_ref()), 3),
                json_num(ratio(s, s.row.floor_ref()), 3),
                json_num(scaling(s), 3),
            )?;
        }
    } else {
        let median_title = if opts.warmup {
            "median µs"
        } else {
            "mean µs"
        };
        write!(
            out,
            "{:<46} {:>10} {:>8} {:>8} {:>9} {:>7} {:>8}",
            "row", median_title, "p10 µs", "p90 µs", "spawns/s", "vs std", "vs floor"
        )?;
        if any_bytes {
            write!(out, " {:>9}", "MiB/s")?;
        }
        if many {
            write!(out, " {:>7}", "scaling")?;
        }
        writeln!(out, "  key")?;
        let fmt_ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
        for s in &results {
            let (p10, p90) = match s.quantiles {
                Some((_, a, b)) => (format!("{a:.1}"), format!("{b:.1}")),
                None => ("-".to_owned(), "-".to_owned()),
            };
            write!(
                out,
                "{:<46} {:>10.1} {:>8} {:>8} {:>9.0} {:>7} {:>8}",
                entry_name(s.row, s.threads),
                s.typical_us(),
                p10,
                p90,
                s.spawns_per_s,
                fmt_ratio(ratio(s, s.row.std_ref())),
                fmt_ratio(ratio(s, s.row.floor_ref())),
            )?;
            if any_bytes {
                write!(out, " {:>9.0}", s.mib_per_s())?;
            }
            if many {
                write!(out, " {:>7}", fmt_ratio(scaling(s)))?;
            }
            writeln!(out, "  {}", s.row.key())?;
        }
    }
    Ok(())
}
