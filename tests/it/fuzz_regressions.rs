//! Replays fuzz inputs through the fuzz targets' properties in a plain `cargo test`: every
//! file under `fuzz/regressions/<target>/` (inputs that once crashed a target) and the
//! checked-in corpus under `fuzz/corpus/<target>/`, through the very property functions the
//! fuzz targets run (`fuzz/props.rs`).

use crate::common;
#[path = "../../fuzz/props.rs"]
mod props;

use std::path::{Path, PathBuf};

use props::{env_build, fd_plan, path_candidates, wait_status};

/// libFuzzer's input for an `i32` target, as `arbitrary` 1.x builds it: the first four
/// bytes, little-endian, zero-padded.
fn word_of(bytes: &[u8]) -> i32 {
    let mut b = [0u8; 4];
    let n = bytes.len().min(4);
    b[..n].copy_from_slice(&bytes[..n]);
    i32::from_le_bytes(b)
}

/// Every input file of `target`: `fuzz/regressions/<target>/*` then `fuzz/corpus/<target>/*`
/// (a missing directory is just empty). Returns (regressions, corpus) counts too.
fn inputs(target: &str) -> (Vec<(PathBuf, Vec<u8>)>, usize, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    let mut counts = [0usize; 2];
    for (i, dir) in ["regressions", "corpus"].iter().enumerate() {
        let Ok(rd) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if f.is_file() {
                out.push((f.clone(), std::fs::read(&f).unwrap()));
                counts[i] += 1;
            }
        }
    }
    (out, counts[0], counts[1])
}

/// Replays every input of `target` through `prop`, naming the file of a failure.
fn replay(target: &str, prop: impl Fn(&[u8])) {
    let (files, regressions, corpus) = inputs(target);
    for (path, data) in &files {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prop(data)));
        assert!(r.is_ok(), "{target}: input {} fails", path.display());
    }
    println!("{target}: {regressions} regression input(s), {corpus} corpus input(s) replayed");
}

#[test]
fn replay_fd_plan() {
    let _g = common::start("replay_fd_plan", 60);
    replay("fd_plan", fd_plan);
    // The audit's input: child fd 0 from fd i32::MAX, child fd 1 from fd 0 (the planner's
    // temporary used to overflow).
    fd_plan(&[0xf9, 0x00]);
    // Every input of up to 4 child fds over an alphabet with small fds, the top of the fd
    // range, impossible fd numbers, Close and Inherit.
    let alphabet: Vec<u8> = [0, 1, 2, 3, 23]
        .into_iter()
        .chain([0xf0, 0xf1, 0xf7])
        .chain(0xf8..=0xff)
        .collect();
    let mut input = Vec::new();
    for len in 0..=4u32 {
        for code in 0..alphabet.len().pow(len) {
            input.clear();
            input.extend((0..len).map(|k| alphabet[code / alphabet.len().pow(k) % alphabet.len()]));
            fd_plan(&input);
        }
    }
}

#[test]
fn replay_env_build() {
    let _g = common::start("replay_env_build", 60);
    replay("env_build", env_build);
}

#[test]
fn replay_path_candidates() {
    let _g = common::start("replay_path_candidates", 60);
    replay("path_candidates", path_candidates);
}

#[test]
fn replay_wait_status() {
    let _g = common::start("replay_wait_status", 60);
    replay("wait_status", |b| wait_status(word_of(b)));
    // The status word is small enough to sweep: every low 16 bits, with and without the
    // high bits set.
    for lo in 0..=0xffffu32 {
        for hi in [0u32, 0x0001_0000, 0x7fff_0000, 0x8000_0000, 0xffff_0000] {
            wait_status((hi | lo) as i32);
        }
    }
}
