//! Measurement: running a row's spawns (on one or several threads), and the statistics.

use std::time::{Duration, Instant};

use crate::BoxError;
use crate::rows::Row;
use crate::workload::{Ctx, Worker, spawn_wait};

/// The `q` quantile (0..=1) of sorted samples, linearly interpolated.
pub fn quantile(sorted: &[u64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let frac = pos - lo as f64;
    sorted[lo] as f64 * (1.0 - frac) + sorted[hi] as f64 * frac
}

/// What one row measured over all rounds.
#[derive(Default)]
pub struct Acc {
    /// Nanoseconds per spawn+wait (empty with `--no-warmup`).
    pub ns: Vec<u64>,
    /// Wall time of the row's rounds, all threads together.
    pub wall: Duration,
    pub spawns: usize,
    pub bytes: usize,
    /// CPU time of the spawning process over the row's rounds (user + system, every
    /// thread: `getrusage(RUSAGE_SELF)`; for a peer row, the peer's own).
    pub cpu: Duration,
    /// For a peer row: the version the peer reported.
    pub version: Option<String>,
}

/// Spawns untimed between the start of a peer process and its timed spawns, each round.
const PEER_WARMUP: usize = 10;

pub struct Stats {
    pub row: Row,
    pub threads: usize,
    pub spawns: usize,
    /// `(median, p10, p90)` in µs, when samples were timed one by one.
    pub quantiles: Option<(f64, f64, f64)>,
    pub mean_us: f64,
    pub spawns_per_s: f64,
    pub bytes_per_run: f64,
    /// The spawning process's CPU time per spawn, in µs.
    pub cpu_us: f64,
    pub version: Option<String>,
}

impl Stats {
    /// The figure the ratios divide: the median, or the mean when there is none.
    pub fn typical_us(&self) -> f64 {
        self.quantiles.map_or(self.mean_us, |q| q.0)
    }

    pub fn mib_per_s(&self) -> f64 {
        self.bytes_per_run * self.spawns_per_s / (1024.0 * 1024.0)
    }
}

pub fn stats(row: Row, mut acc: Acc, threads: usize) -> Stats {
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
        cpu_us: acc.cpu.as_secs_f64() * 1e6 / acc.spawns.max(1) as f64,
        version: acc.version,
    }
}

/// Runs `count` spawns of `row` on one thread; per-spawn times go to `ns` when `timed`.
pub fn run_one(
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

/// This process's CPU time so far, user + system, all threads (`getrusage(RUSAGE_SELF)`).
pub fn self_cpu() -> Duration {
    // SAFETY: `rusage` is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable `rusage`; RUSAGE_SELF cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Runs `count` spawns of `row` split over the workers (one thread each), or in its peer
/// process, adding to `acc`.
pub fn run_row(
    ctx: &Ctx,
    workers: &mut [Worker],
    row: Row,
    count: usize,
    timed: bool,
    acc: &mut Acc,
) -> Result<(), BoxError> {
    if row.is_peer() {
        let peers = ctx.peers.as_ref().ok_or("--peers: no peer prepared")?;
        let r = peers.run(row, count, PEER_WARMUP, &ctx.program, &ctx.args, &ctx.env)?;
        if timed {
            acc.ns.extend(r.samples);
        }
        acc.wall += r.wall;
        acc.cpu += r.cpu;
        acc.spawns += count;
        acc.bytes += r.bytes;
        acc.version = Some(r.version);
        return Ok(());
    }
    let cpu = self_cpu();
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
    acc.cpu += self_cpu().saturating_sub(cpu);
    acc.spawns += count;
    acc.bytes += bytes;
    Ok(())
}
