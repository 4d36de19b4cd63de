//! The command line: options, their parsing and the usage text.

use std::ffi::OsString;

use crate::rows::Row;

pub const USAGE: &str = "\
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

pub struct Options {
    pub n: usize,
    pub rss_mib: usize,
    pub env: usize,
    /// Thread counts to measure, each row with each.
    pub threads: Vec<usize>,
    pub output: bool,
    /// `--program`; `/bin/true` when not given.
    pub program: Option<OsString>,
    /// `--tiny`: spawn [`TinyProgram`] instead.
    pub tiny: bool,
    pub args: Vec<OsString>,
    pub rows: Option<Vec<Row>>,
    pub json: bool,
    pub warmup: bool,
}

pub fn parse_args() -> Result<Options, String> {
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
