//! A master with two shell workers: send `ls` to one, print its lines, start another,
//! stop both.
//!
//! Run with `cargo run --example agent`.

use std::sync::mpsc;
use std::time::Duration;

use forkexec::agent::{Master, Stderr, WorkerOptions};
use forkexec::{Cmd, ErrorKind};

fn main() -> Result<(), forkexec::Error> {
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
