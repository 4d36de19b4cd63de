//! A master with two shell workers: send `ls` to one, print its lines, start another,
//! stop both.
//!
//! Run with `cargo run --example agent`.
//!
//! `cargo run --release --example agent -- pingpong [WORKERS] [ROUND_TRIPS] [RUNS]` measures
//! issue 14's agent ping-pong instead: WORKERS `cat` workers (8), ROUND_TRIPS lines in all
//! (40,000), each reply sent from `on_line` with `Handle::input`, against a std program
//! with one thread per worker doing a blocking write and read per round trip; the best
//! of RUNS runs (5) of each, interleaved, wall time and the parent's CPU time (and the
//! workers'). A fifth argument, `agent` or `std`, runs one side only (for profiling).

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use forkexec::agent::{Master, Stderr, WorkerOptions};
use forkexec::{Cmd, ErrorKind};

fn main() -> Result<(), forkexec::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("pingpong") {
        let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
        let side = args.get(4).map_or("both", String::as_str);
        pingpong(num(1, 8), num(2, 40_000), num(3, 5), side);
        return Ok(());
    }
    let master = Master::new()?;
    let (tx, rx) = mpsc::channel::<String>();

    // Worker 1: an interactive shell reading commands from its stdin.
    let lines = tx.clone();
    let opts = WorkerOptions::new().stderr(Stderr::lines(|id, line| {
        eprintln!("[{id} stderr] {}", String::from_utf8_lossy(&line));
    }));
    master.start_with(
        "sh1",
        Cmd::new("sh"),
        opts,
        move |id, line| {
            println!("[{id}] {}", String::from_utf8_lossy(&line));
            if line == b"--done--" {
                let _ = lines.send(id.to_string());
            }
        },
        |id, end| match end.result {
            Ok(st) => println!("[{id}] finished: {st}"),
            Err(e) => println!("[{id}] failed: {e}"),
        },
    )?;
    master.input("sh1", "ls / | head -5")?;
    master.input("sh1", "echo --done--")?;
    wait_for(&rx, "sh1");

    // Worker 2: a second shell, started while the first still runs.
    let lines = tx.clone();
    master.start(
        "sh2",
        Cmd::new("sh"),
        move |id, line| {
            println!("[{id}] {}", String::from_utf8_lossy(&line));
            if line == b"--done--" {
                let _ = lines.send(id.to_string());
            }
        },
        |id, end| {
            println!(
                "[{id}] finished: {}",
                end.result.map_or_else(|e| e.to_string(), |s| s.to_string())
            )
        },
    )?;
    master.input("sh2", "echo hello from $$; uname -s; echo --done--")?;
    wait_for(&rx, "sh2");

    println!("workers: {:?}", master.list());
    for id in master.list() {
        println!("{id}: {:?}", master.state(&id));
    }

    // Stop both: TERM, then KILL after the grace period; both reaped.
    master.stop("sh1")?;
    master.remove("sh2")?;
    assert_eq!(
        master.input("sh1", "ls").unwrap_err().kind(),
        ErrorKind::ProcessDone
    );
    println!("after stop: {:?}", master.list());
    Ok(())
}

fn wait_for(rx: &mpsc::Receiver<String>, id: &str) {
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(got) => assert_eq!(got, id),
        Err(_) => panic!("{id} did not answer"),
    }
}

/// The process's CPU time (user + system, this process only).
fn cpu() -> Duration {
    usage(libc::RUSAGE_SELF)
}

/// The CPU time of this process's reaped children.
fn children_cpu() -> Duration {
    usage(libc::RUSAGE_CHILDREN)
}

fn usage(who: libc::c_int) -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let ru = unsafe {
        libc::getrusage(who, ru.as_mut_ptr());
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Runs `f` (which returns the wall and CPU time of its measured part) `runs` times; the
/// best wall time, the best CPU time, and the least CPU time of the workers (the whole
/// run, from their start to their reaping).
fn best(
    runs: usize,
    mut f: impl FnMut() -> (Duration, Duration),
) -> (Duration, Duration, Duration) {
    let (mut wall, mut cpu_best, mut kids) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        let k0 = children_cpu();
        let (w, c) = f();
        wall = wall.min(w);
        cpu_best = cpu_best.min(c);
        kids = kids.min(children_cpu() - k0);
    }
    (wall, cpu_best, kids)
}

/// Times `f`: wall and process CPU.
fn timed(f: impl FnOnce()) -> (Duration, Duration) {
    let (t0, c0) = (Instant::now(), cpu());
    f();
    (t0.elapsed(), cpu() - c0)
}

/// The agent side: every reply is sent from `on_line`.
fn agent_round(workers: usize, per: usize) -> (Duration, Duration) {
    let master = Master::new().expect("master");
    let (done_tx, done_rx) = mpsc::channel();
    for w in 0..workers {
        let (h, done) = (master.handle(), done_tx.clone());
        let mut n = 0;
        master
            .start(
                &format!("w{w}"),
                Cmd::new("cat"),
                move |id, _line| {
                    n += 1;
                    if n < per {
                        h.input(id, "ping").expect("input");
                    } else {
                        done.send(()).expect("done");
                    }
                },
                |_, _| {},
            )
            .expect("start");
    }
    // Every worker started: only the round trips are timed.
    let took = timed(|| {
        for w in 0..workers {
            master.input(&format!("w{w}"), "ping").expect("input");
        }
        for _ in 0..workers {
            done_rx.recv().expect("replies");
        }
    });
    master.stop_all().expect("stop");
    took
}

/// The std side: one thread per worker, a blocking write and read per round trip.
fn std_round(workers: usize, per: usize) -> (Duration, Duration) {
    let mut kids: Vec<std::process::Child> = (0..workers)
        .map(|_| {
            std::process::Command::new("cat")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let ios: Vec<_> = kids
        .iter_mut()
        .map(|k| {
            (
                k.stdin.take().expect("stdin"),
                BufReader::new(k.stdout.take().expect("stdout")),
            )
        })
        .collect();
    let took = timed(|| {
        let threads: Vec<_> = ios
            .into_iter()
            .map(|(mut stdin, mut stdout)| {
                std::thread::spawn(move || {
                    let mut line = String::new();
                    for _ in 0..per {
                        stdin.write_all(b"ping\n").expect("write");
                        line.clear();
                        stdout.read_line(&mut line).expect("read");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
    });
    for mut k in kids {
        let _ = k.kill();
        let _ = k.wait();
    }
    took
}

fn a_max() -> (Duration, Duration, Duration) {
    (Duration::MAX, Duration::MAX, Duration::MAX)
}

fn min3(
    a: (Duration, Duration, Duration),
    b: (Duration, Duration, Duration),
) -> (Duration, Duration, Duration) {
    (a.0.min(b.0), a.1.min(b.1), a.2.min(b.2))
}

fn pingpong(workers: usize, trips: usize, runs: usize, side: &str) {
    let per = trips.div_ceil(workers).max(1);
    let trips = per * workers;
    let (mut a, mut s) = (a_max(), a_max());
    // Interleaved, so that both sides see the same machine.
    for _ in 0..runs {
        if side != "std" {
            a = min3(a, best(1, || agent_round(workers, per)));
        }
        if side != "agent" {
            s = min3(s, best(1, || std_round(workers, per)));
        }
    }
    let ((aw, ac, ak), (sw, sc, sk)) = (a, s);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("ping-pong: {workers} workers, {trips} round trips, best of {runs}");
    let row = |name: &str, (w, c, k): (Duration, Duration, Duration)| {
        if w != Duration::MAX {
            println!(
                "  {name:<31} {:8.1} ms wall, {:8.1} ms CPU (workers {:.1} ms), \
                 {:7.0} round trips/s",
                ms(w),
                ms(c),
                ms(k),
                trips as f64 / w.as_secs_f64()
            );
        }
    };
    row("agent (replies from on_line):", (aw, ac, ak));
    row("std, a thread per worker:", (sw, sc, sk));
    if side == "both" {
        println!(
            "  agent / std: {:.2}x wall, {:.2}x CPU (below 1: the agent is faster)",
            aw.as_secs_f64() / sw.as_secs_f64(),
            ac.as_secs_f64() / sc.as_secs_f64()
        );
    }
}
