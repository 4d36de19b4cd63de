//! The command line: options, their parsing and the usage text.

use std::ffi::OsString;

use crate::rows::Row;

/// The synopsis, printed with a usage error.
pub const USAGE: &str = "\
usage: spawn_bench [-n N] [--output] [--program PATH | --tiny] [--peers] [--rss-mib MIB]
                   [--env N] [--threads T,..] [--only KEY,..] [--json] [--no-warmup]
                   [-- ARGS..]
       spawn_bench --agent [-n ROUND_TRIPS] [--workers W]
spawn_bench --help: what each row and column means, every option, and how long a run takes";

/// `--help`: what is measured and how to read it (also the documentation of the example).
pub const HELP: &str = include_str!("help.txt");

pub struct Options {
    pub n: usize,
    pub rss_mib: usize,
    pub env: usize,
    /// Thread counts to measure, each row with each.
    pub threads: Vec<usize>,
    pub output: bool,
    /// `--program`; `/bin/true` when not given.
    pub program: Option<OsString>,
    /// `--tiny`: spawn the tiny static program instead.
    pub tiny: bool,
    pub args: Vec<OsString>,
    pub rows: Option<Vec<Row>>,
    pub json: bool,
    pub warmup: bool,
    /// `--peers`: add the Go and CPython rows.
    pub peers: bool,
    /// `--agent`: the line ping-pong instead of spawning.
    pub agent: bool,
    /// `--workers`: the ping-pong's workers.
    pub workers: usize,
}

/// The options; `None` when `--help` was asked for; a message for a usage error.
pub fn parse_args() -> Result<Option<Options>, String> {
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
        peers: false,
        agent: false,
        workers: 8,
    };
    let mut n_given = false;
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
            "-n" | "--n" => {
                o.n = number(value("-n")?, "-n")?;
                n_given = true;
            }
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
                    let row = Row::all().find(|r| r.key() == k).ok_or_else(|| {
                        format!("--only: unknown row {k:?} (keys: spawn_bench --help)")
                    })?;
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
            "--peers" => o.peers = true,
            "--agent" => o.agent = true,
            "--workers" => o.workers = number(value("--workers")?, "--workers")?,
            "-h" | "--help" => return Ok(None),
            "--" => {
                o.args.extend(it.by_ref());
                break;
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if o.agent {
        if !n_given {
            o.n = 40_000;
        }
        if o.workers == 0 {
            return Err("--workers must be at least 1".to_owned());
        }
        if !cfg!(feature = "agent") {
            return Err("--agent: built without the `agent` feature".to_owned());
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
    if o.peers && o.threads != [1] {
        return Err("--peers: the peers spawn from one thread; not with --threads".to_owned());
    }
    Ok(Some(o))
}
