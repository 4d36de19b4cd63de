//! Printing the results: the header, the table or the JSON lines, the footer.

use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

use forkexec::raw::Strategy;

use crate::cli::Options;
use crate::machine::vm_rss_mib;
use crate::measure::Stats;
use crate::rows::Row;

/// What the report says about the run besides the rows.
pub struct RunInfo<'a> {
    pub opts: &'a Options,
    /// The program and its arguments, as shown.
    pub shown: &'a str,
    pub kernel: &'a str,
    pub libc: &'a str,
    /// What `Strategy::Auto` resolved to.
    pub auto: Strategy,
}

impl RunInfo<'_> {
    /// Several thread counts (or one above 1): rows are named with theirs.
    pub fn many(&self) -> bool {
        self.opts.threads.len() > 1
    }

    /// The row's name, with its thread count when there are several.
    pub fn entry_name(&self, row: Row, t: usize) -> String {
        if self.many() || t > 1 {
            format!("{} ×{t}", row.name(self.auto))
        } else {
            row.name(self.auto)
        }
    }
}

/// The program and its arguments as the header shows them.
pub fn shown(program: &str, tiny_len: Option<usize>, args: &[OsString]) -> String {
    let mut p = match tiny_len {
        Some(len) => format!("tiny static ELF (exit_group(0), {len} bytes)"),
        None => format!("`{program}"),
    };
    for a in args {
        let a = a.to_string_lossy();
        p.push(' ');
        if a.is_empty() || a.contains(char::is_whitespace) {
            p.push_str(&format!("'{a}'"));
        } else {
            p.push_str(&a);
        }
    }
    if tiny_len.is_none() {
        p.push('`');
    }
    p
}

/// Prints a line of the header or footer: on stdout with the table, on stderr with JSON.
fn say(info: &RunInfo, line: &str) {
    if info.opts.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// The header: the run, the machine, and `notes`.
pub fn header(info: &RunInfo, notes: &[String], load: &str) {
    let o = info.opts;
    let threads: Vec<String> = o.threads.iter().map(usize::to_string).collect();
    let rss_now = vm_rss_mib().map_or_else(|| "?".to_owned(), |m| m.to_string());
    let mut line = format!(
        "spawn_bench: program {}, N = {} per row, {} thread(s), {} env var(s) set on Cmd/std, rss {} MiB allocated (VmRSS {rss_now} MiB), {} cpu(s), load average {load}, kernel {}, {}; Auto resolves to {:?}",
        info.shown,
        o.n,
        threads.join(","),
        o.env,
        o.rss_mib,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        info.kernel,
        info.libc,
        info.auto,
    );
    if !o.warmup {
        line.push_str("; no warm-up, untimed spawns (mean only)");
    }
    for n in notes {
        line.push_str("; ");
        line.push_str(n);
    }
    say(info, &line);
}

/// The footer: the peers' versions, the run's length and the load at its end.
pub fn footer(info: &RunInfo, results: &[Stats], elapsed: Duration, load: &str) {
    let mut line = format!(
        "measured in {:.1} s; load average at the end {load}",
        elapsed.as_secs_f64()
    );
    let version = |rows: [Row; 2]| {
        results
            .iter()
            .filter(|s| rows.contains(&s.row))
            .find_map(|s| s.version.clone())
    };
    if let Some(v) = version([Row::Go, Row::GoOutput]) {
        line.push_str(&format!("; Go peer {v}"));
    }
    if let Some(v) = version([Row::Python, Row::PythonOutput]) {
        line.push_str(&format!("; CPython peer {v}"));
    }
    say(info, &line);
}

/// Prints the table (or the JSON lines) of `results`.
pub fn print(info: &RunInfo, results: &[Stats]) -> std::io::Result<()> {
    let many = info.many();
    // Ratios compare entries with the same thread count; `scaling` compares a row's
    // throughput with its own at the first thread count given.
    let find = |r: Row, t: usize| results.iter().find(|s| s.row == r && s.threads == t);
    let ratio = |s: &Stats, r: Row| find(r, s.threads).map(|m| s.typical_us() / m.typical_us());
    let cpu_ratio = |s: &Stats| {
        find(s.row.std_ref(), s.threads)
            .filter(|m| m.cpu_us > 0.0)
            .map(|m| s.cpu_us / m.cpu_us)
    };
    let scaling = |s: &Stats| {
        find(s.row, info.opts.threads[0])
            .filter(|_| many)
            .map(|b| s.spawns_per_s / b.spawns_per_s)
    };
    let any_bytes = results.iter().any(|s| s.bytes_per_run > 0.0);

    let mut out = std::io::stdout().lock();
    if info.opts.json {
        for s in results {
            let (median, p10, p90) = match s.quantiles {
                Some((m, a, b)) => (Some(m), Some(a), Some(b)),
                None => (None, None, None),
            };
            writeln!(
                out,
                "{{\"key\":{},\"name\":{},\"mode\":{},\"program\":{},\"n\":{},\"threads\":{},\"env\":{},\"rss_mib\":{},\"kernel\":{},\"libc\":{},\"auto\":{},\"median_us\":{},\"p10_us\":{},\"p90_us\":{},\"mean_us\":{},\"spawns_per_s\":{},\"bytes_per_run\":{},\"mib_per_s\":{},\"ratio_to_std\":{},\"ratio_to_floor\":{},\"cpu_us\":{},\"cpu_ratio_to_std\":{},\"scaling\":{},\"peer_version\":{}}}",
                json_str(s.row.key()),
                json_str(&info.entry_name(s.row, s.threads)),
                json_str(if s.row.is_output() {
                    "output"
                } else {
                    "status"
                }),
                json_str(info.shown),
                s.spawns,
                s.threads,
                info.opts.env,
                info.opts.rss_mib,
                json_str(info.kernel),
                json_str(info.libc),
                json_str(&format!("{:?}", info.auto)),
                json_num(median, 2),
                json_num(p10, 2),
                json_num(p90, 2),
                json_num(Some(s.mean_us), 2),
                json_num(Some(s.spawns_per_s), 1),
                json_num(Some(s.bytes_per_run), 0),
                json_num(Some(s.mib_per_s()), 1),
                json_num(ratio(s, s.row.std_ref()), 3),
                json_num(ratio(s, s.row.floor_ref()), 3),
                json_num(Some(s.cpu_us), 2),
                json_num(cpu_ratio(s), 3),
                json_num(scaling(s), 3),
                s.version
                    .as_deref()
                    .map_or_else(|| "null".to_owned(), json_str),
            )?;
        }
        return Ok(());
    }
    let median_title = if info.opts.warmup {
        "median µs"
    } else {
        "mean µs"
    };
    write!(
        out,
        "{:<46} {:>10} {:>8} {:>8} {:>9} {:>7} {:>8} {:>7} {:>7}",
        "row",
        median_title,
        "p10 µs",
        "p90 µs",
        "spawns/s",
        "vs std",
        "vs floor",
        "cpu µs",
        "cpu/std"
    )?;
    if any_bytes {
        write!(out, " {:>9}", "MiB/s")?;
    }
    if many {
        write!(out, " {:>7}", "scaling")?;
    }
    writeln!(out, "  key")?;
    let fmt_ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
    for s in results {
        let (p10, p90) = match s.quantiles {
            Some((_, a, b)) => (format!("{a:.1}"), format!("{b:.1}")),
            None => ("-".to_owned(), "-".to_owned()),
        };
        write!(
            out,
            "{:<46} {:>10.1} {:>8} {:>8} {:>9.0} {:>7} {:>8} {:>7.1} {:>7}",
            info.entry_name(s.row, s.threads),
            s.typical_us(),
            p10,
            p90,
            s.spawns_per_s,
            fmt_ratio(ratio(s, s.row.std_ref())),
            fmt_ratio(ratio(s, s.row.floor_ref())),
            s.cpu_us,
            fmt_ratio(cpu_ratio(s)),
        )?;
        if any_bytes {
            write!(out, " {:>9.0}", s.mib_per_s())?;
        }
        if many {
            write!(out, " {:>7}", fmt_ratio(scaling(s)))?;
        }
        writeln!(out, "  {}", s.row.key())?;
    }
    Ok(())
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
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
pub fn json_num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "null".to_owned(),
    }
}
