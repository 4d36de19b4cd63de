//! `--agent`: line ping-pong with long-lived workers (`cat`), through the crate's agent
//! (one epoll thread for all workers, each reply sent from `on_line` with
//! `Handle::input`) against a std program with one thread per worker (blocking write of a
//! line, blocking read of the echo) and a bare epoll loop (the floor of any one-thread
//! event loop).
//!
//! Each of 10 rounds starts W fresh `cat` workers per way (not timed), then times the
//! round trips spread over the workers, the order of the three ways rotating from round
//! to round; the table shows the median round. Parent CPU is `getrusage(RUSAGE_SELF)`
//! around the timed part (the agent's loop thread and the std threads included; `cat`
//! not).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use forkexec::Cmd;
use forkexec::agent::Master;

use crate::BoxError;
use crate::measure::self_cpu;

const ROUNDS: usize = 10;
/// How long a round may take before the run is declared stuck.
const ROUND_LIMIT: Duration = Duration::from_secs(120);

/// The rounds of one way: (wall, cpu) each.
#[derive(Default)]
struct Rounds(Vec<(Duration, Duration)>);

impl Rounds {
    /// The median round's wall time and the median round's CPU time, in µs per round
    /// trip.
    fn medians_us(&self, trips: usize) -> (f64, f64) {
        let per_trip = |mut v: Vec<Duration>| {
            v.sort_unstable();
            v.get(v.len() / 2)
                .map_or(0.0, |d| d.as_secs_f64() * 1e6 / trips.max(1) as f64)
        };
        (
            per_trip(self.0.iter().map(|r| r.0).collect()),
            per_trip(self.0.iter().map(|r| r.1).collect()),
        )
    }
}

/// The round trips each of `workers` makes out of `total`.
fn shares(total: usize, workers: usize) -> Vec<usize> {
    (0..workers)
        .map(|i| total / workers + usize::from(i < total % workers))
        .collect()
}

/// One round through the agent with `loops` loop threads: `shares[i]` round trips with
/// worker `i`; (wall, cpu).
fn agent_round(shares: &[usize], loops: usize) -> Result<(Duration, Duration), BoxError> {
    let master = Master::with_loops(loops)?;
    let (done_tx, done_rx) = mpsc::channel::<Result<(), String>>();
    for (i, &share) in shares.iter().enumerate() {
        let h = master.handle();
        let done = done_tx.clone();
        let mut seen = 0;
        master.start(
            &format!("w{i}"),
            Cmd::new("cat"),
            move |id, line| {
                seen += 1;
                if line != b"ping" {
                    let _ = done.send(Err(format!("{id}: unexpected line {line:?}")));
                } else if seen < share {
                    if let Err(e) = h.input(id, "ping") {
                        let _ = done.send(Err(format!("{id}: {e}")));
                    }
                } else if seen == share {
                    let _ = done.send(Ok(()));
                }
            },
            |_, _| {},
        )?;
    }
    // The workers are started (their `cat` may still be starting: the first line waits
    // in the pipe for it, as it would for the std threads' children).
    let active: Vec<usize> = (0..shares.len()).filter(|&i| shares[i] > 0).collect();
    let cpu = self_cpu();
    let start = Instant::now();
    for &i in &active {
        master.input(&format!("w{i}"), "ping")?;
    }
    for _ in &active {
        done_rx
            .recv_timeout(ROUND_LIMIT)
            .map_err(|_| "agent: a worker stopped answering")??;
    }
    let wall = start.elapsed();
    let cpu = self_cpu().saturating_sub(cpu);
    master.stop_all()?;
    Ok((wall, cpu))
}

/// One round with a thread per worker (std `Command`, blocking pipes); (wall, cpu).
fn threads_round(shares: &[usize]) -> Result<(Duration, Duration), BoxError> {
    let mut children = Vec::new();
    for _ in shares {
        let child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        children.push(child);
    }
    let barrier = std::sync::Barrier::new(shares.len() + 1);
    let result = std::thread::scope(|s| -> Result<(Duration, Duration), BoxError> {
        let handles: Vec<_> = children
            .iter_mut()
            .zip(shares)
            .map(|(child, &share)| {
                let mut stdin = child.stdin.take();
                let stdout = child.stdout.take();
                let barrier = &barrier;
                s.spawn(move || -> Result<(), String> {
                    let (Some(stdin), Some(stdout)) = (stdin.as_mut(), stdout) else {
                        return Err("no pipe".into());
                    };
                    let mut reader = BufReader::new(stdout);
                    let mut line = Vec::new();
                    barrier.wait();
                    for _ in 0..share {
                        stdin.write_all(b"ping\n").map_err(|e| e.to_string())?;
                        line.clear();
                        reader
                            .read_until(b'\n', &mut line)
                            .map_err(|e| e.to_string())?;
                        if line != b"ping\n" {
                            return Err(format!("unexpected line {line:?}"));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let cpu = self_cpu();
        let start = Instant::now();
        barrier.wait();
        for h in handles {
            h.join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
                .map_err(|e| format!("thread per worker: {e}"))?;
        }
        Ok((start.elapsed(), self_cpu().saturating_sub(cpu)))
    });
    // stdin was dropped with each thread: every `cat` sees EOF and exits.
    for mut c in children {
        c.wait()?;
    }
    result
}

/// One round through a bare epoll loop (one thread, no agent: the least an event loop
/// pays): the parent's ends of the `cat`s' stdout non-blocking in one epoll set, each echo
/// answered at once with a blocking write; (wall, cpu).
fn epoll_round(shares: &[usize]) -> Result<(Duration, Duration), BoxError> {
    use rustix::event::epoll;
    use std::os::fd::AsFd;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let mut children = Vec::new();
    let mut pipes = Vec::new();
    for (i, _) in shares.iter().enumerate() {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("no pipe".into());
        };
        rustix::io::ioctl_fionbio(&stdout, true)?;
        let data = epoll::EventData::new_u64(i as u64);
        epoll::add(&ep, stdout.as_fd(), data, epoll::EventFlags::IN)?;
        children.push(child);
        pipes.push((stdin, stdout));
    }
    let mut left: Vec<usize> = shares.to_vec();
    let mut active = left.iter().filter(|&&n| n > 0).count();
    let mut buf = vec![0u8; 64 * 1024];
    let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
    let cpu = self_cpu();
    let start = Instant::now();
    for (i, (stdin, _)) in pipes.iter_mut().enumerate() {
        if left[i] > 0 {
            stdin.write_all(b"ping\n")?;
        }
    }
    while active > 0 {
        events.clear();
        let timeout = rustix::event::Timespec::try_from(ROUND_LIMIT)?;
        epoll::wait(
            &ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&timeout),
        )?;
        if events.is_empty() {
            return Err("epoll loop: a worker stopped answering".into());
        }
        for ev in &events {
            let i = ev.data.u64() as usize;
            let (stdin, stdout) = &mut pipes[i];
            let n = match rustix::io::read(&*stdout, &mut buf) {
                Ok(n) => n,
                Err(rustix::io::Errno::AGAIN) => continue,
                Err(e) => return Err(e.into()),
            };
            // Each echo is one whole line here ("ping\n" is written and read at once).
            for _ in 0..memchr::memchr_iter(b'\n', &buf[..n]).count() {
                left[i] -= 1;
                if left[i] > 0 {
                    stdin.write_all(b"ping\n")?;
                } else {
                    active -= 1;
                }
            }
        }
    }
    let result = (start.elapsed(), self_cpu().saturating_sub(cpu));
    drop(pipes);
    for mut c in children {
        c.wait()?;
    }
    Ok(result)
}

/// Runs the ping-pong (ROUNDS rounds of `round_trips` each way) and prints its table.
pub fn run(round_trips: usize, workers: usize, header: &str) -> Result<(), BoxError> {
    println!("{header}");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut agent, mut agent_cpus, mut threads, mut bare) = (
        Rounds::default(),
        Rounds::default(),
        Rounds::default(),
        Rounds::default(),
    );
    // Warm-up: a small round of each (page cache, the crate's probes).
    let warm = shares(workers * 10, workers);
    agent_round(&warm, 1)?;
    agent_round(&warm, cpus)?;
    threads_round(&warm)?;
    epoll_round(&warm)?;
    let share = shares(round_trips, workers);
    let t0 = Instant::now();
    for round in 0..ROUNDS {
        // Rotate which way goes first.
        for k in 0..4 {
            match (round + k) % 4 {
                0 => agent.0.push(agent_round(&share, 1)?),
                1 => agent_cpus.0.push(agent_round(&share, cpus)?),
                2 => threads.0.push(threads_round(&share)?),
                _ => bare.0.push(epoll_round(&share)?),
            }
        }
    }
    let elapsed = t0.elapsed();
    let (thr_wall, thr_cpu) = threads.medians_us(round_trips);
    println!(
        "{:<46} {:>10} {:>12} {:>8} {:>12} {:>8}",
        "row (medians of the rounds)", "µs/trip", "trips/s", "vs thr", "cpu µs/trip", "cpu/thr"
    );
    let with_cpus = format!("forkexec agent, Master::with_loops({cpus})");
    for (name, r) in [
        ("forkexec agent: on_line -> Handle::input", &agent),
        (with_cpus.as_str(), &agent_cpus),
        ("std: a thread per worker, blocking pipes", &threads),
        ("floor: a bare epoll loop, one thread", &bare),
    ] {
        let (wall, cpu) = r.medians_us(round_trips);
        println!(
            "{:<46} {:>10.2} {:>12.0} {:>7.2}x {:>12.2} {:>7.2}x",
            name,
            wall,
            1e6 / wall,
            wall / thr_wall,
            cpu,
            cpu / thr_cpu.max(1e-9),
        );
    }
    println!(
        "measured in {:.1} s; load average at the end {}",
        elapsed.as_secs_f64(),
        crate::machine::load_average()
    );
    Ok(())
}
