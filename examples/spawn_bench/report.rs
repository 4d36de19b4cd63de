//! Printing the results: the table and the JSON lines.

use std::io::Write;

use forkexec::raw::Strategy;

use crate::cli::Options;
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

/// Prints the table (or the JSON lines) of `results`.
pub fn print(info: &RunInfo, results: &[Stats]) -> std::io::Result<()> {
    let many = info.many();
    // Ratios compare entries with the same thread count; `scaling` compares a row's
    // throughput with its own at the first thread count given.
    let find = |r: Row, t: usize| results.iter().find(|s| s.row == r && s.threads == t);
    let ratio = |s: &Stats, r: Row| find(r, s.threads).map(|m| s.typical_us() / m.typical_us());
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
                "{{\"key\":{},\"name\":{},\"mode\":{},\"program\":{},\"n\":{},\"threads\":{},\"env\":{},\"rss_mib\":{},\"kernel\":{},\"libc\":{},\"auto\":{},\"median_us\":{},\"p10_us\":{},\"p90_us\":{},\"mean_us\":{},\"spawns_per_s\":{},\"bytes_per_run\":{},\"mib_per_s\":{},\"ratio_to_std\":{},\"ratio_to_floor\":{},\"scaling\":{}}}",
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
                json_num(scaling(s), 3),
            )?;
        }
    } else {
        let median_title = if info.opts.warmup {
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
        for s in results {
            let (p10, p90) = match s.quantiles {
                Some((_, a, b)) => (format!("{a:.1}"), format!("{b:.1}")),
                None => ("-".to_owned(), "-".to_owned()),
            };
            write!(
                out,
                "{:<46} {:>10.1} {:>8} {:>8} {:>9.0} {:>7} {:>8}",
                info.entry_name(s.row, s.threads),
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
