//! `--peers`: the same workloads through Go's `os/exec` and CPython's `subprocess`.
//!
//! Each peer is a small program (`peers/peer.go`, `peers/peer.py`, compiled into this
//! binary) that loops the spawns itself and writes its own timings and CPU time
//! (`getrusage(RUSAGE_SELF)`) to a result file, so that the start-up of the Go runtime or
//! the interpreter is not counted. Both are written to a private temporary directory,
//! the Go one built there with `go build`; the directory is removed at the end. A peer
//! whose toolchain is missing is skipped with a message.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::BoxError;
use crate::rows::Row;
use crate::tmp::PrivateDir;

const GO_SOURCE: &str = include_str!("peers/peer.go");
const PYTHON_SOURCE: &str = include_str!("peers/peer.py");

/// Where `go` is looked for when it is not on `PATH` (Debian's golang-1.NN-go packages
/// install there without a link in /usr/bin unless golang-go is installed too).
const GO_DIRS: [&str; 2] = ["/usr/lib", "/usr/local"];

/// One prepared peer: the command that runs it.
pub struct Peer {
    program: PathBuf,
    pre_args: Vec<OsString>,
}

/// The peers that could be prepared, in their private directory.
pub struct Peers {
    dir: PrivateDir,
    pub go: Option<Peer>,
    pub python: Option<Peer>,
    /// One line per peer: how it was prepared, or why it is skipped.
    pub notes: Vec<String>,
}

/// What one run of a peer measured.
pub struct PeerRun {
    /// The raw wait status of its last child.
    pub status: i32,
    /// Bytes captured over the timed spawns.
    pub bytes: usize,
    pub wall: Duration,
    /// The peer's own CPU time (user + system) over the timed spawns.
    pub cpu: Duration,
    /// Each timed spawn + wait, in nanoseconds.
    pub samples: Vec<u64>,
    /// The language version the peer reports, e.g. `go1.19.8` or `3.11.7`.
    pub version: String,
}

/// `go` on `PATH`, else the newest `<dir>/go*/bin/go` of [`GO_DIRS`].
fn find_go() -> Option<PathBuf> {
    if let Ok(p) = forkexec::look_path("go") {
        return Some(p);
    }
    let mut found: Vec<PathBuf> = GO_DIRS
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().as_encoded_bytes().starts_with(b"go"))
        .map(|e| e.path().join("bin/go"))
        .filter(|p| p.is_file())
        .collect();
    // go-1.9 < go-1.19 < go-1.21: compare the version numbers, not the strings.
    let version = |p: &PathBuf| -> Vec<u32> {
        let dir = p.parent().and_then(Path::parent).and_then(Path::file_name);
        let name = dir.map(OsStr::to_string_lossy).unwrap_or_default();
        name.split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    found.sort_by_key(version);
    found.pop()
}

impl Peers {
    /// Writes the peers' sources and builds the Go one, for the peers `rows` use. Runs
    /// before any spawning thread exists.
    pub fn prepare(rows: &[Row]) -> Result<Peers, BoxError> {
        let dir = PrivateDir::create("peers").map_err(|e| format!("--peers: {e}"))?;
        let mut peers = Peers {
            dir,
            go: None,
            python: None,
            notes: Vec::new(),
        };
        if rows.iter().any(|r| matches!(r, Row::Go | Row::GoOutput)) {
            match peers.build_go() {
                Ok((peer, note)) => {
                    peers.go = Some(peer);
                    peers.notes.push(note);
                }
                Err(e) => peers.notes.push(format!("Go peer skipped: {e}")),
            }
        }
        if rows
            .iter()
            .any(|r| matches!(r, Row::Python | Row::PythonOutput))
        {
            match peers.write_python() {
                Ok(peer) => peers.python = Some(peer),
                Err(e) => peers.notes.push(format!("CPython peer skipped: {e}")),
            }
        }
        Ok(peers)
    }

    fn build_go(&self) -> Result<(Peer, String), BoxError> {
        let go = find_go().ok_or(
            "`go` is neither on PATH nor in /usr/lib/go*/bin or /usr/local/go*/bin \
             (Debian: apt-get install golang-go)",
        )?;
        let source = self.dir.write("peer.go", GO_SOURCE.as_bytes(), 0o600)?;
        let binary = self.dir.path().join("peer-go");
        let t = Instant::now();
        // The build's caches: Go's usual one (under $HOME); GOFLAGS and a go.work of the
        // caller's would change the build, so they are cleared.
        let out = Command::new(&go)
            .arg("build")
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .current_dir(self.dir.path())
            .env("GO111MODULE", "on")
            .env("GOWORK", "off")
            .env_remove("GOFLAGS")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", go.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`{} build` failed ({}): {}",
                go.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        let note = format!(
            "Go peer built with {} in {:.1} s",
            go.display(),
            t.elapsed().as_secs_f64()
        );
        let peer = Peer {
            program: binary,
            pre_args: Vec::new(),
        };
        Ok((peer, note))
    }

    fn write_python(&self) -> Result<Peer, BoxError> {
        let python = forkexec::look_path("python3")
            .map_err(|_| "`python3` is not on PATH (Debian: apt-get install python3)")?;
        let script = self.dir.write("peer.py", PYTHON_SOURCE.as_bytes(), 0o600)?;
        // `python3` may be a launcher script (pyenv's shims are shell scripts running a
        // program or two): start the interpreter itself each round instead.
        let real = Command::new(&python)
            .args(["-I", "-c", "import sys; print(sys.executable)"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| p.is_absolute() && p.is_file());
        Ok(Peer {
            program: real.unwrap_or(python),
            // -I: isolated from the user's site-packages and PYTHON* variables.
            pre_args: vec!["-I".into(), script.into_os_string()],
        })
    }

    /// The peer that runs `row`, if it could be prepared.
    pub fn for_row(&self, row: Row) -> Option<&Peer> {
        match row {
            Row::Go | Row::GoOutput => self.go.as_ref(),
            Row::Python | Row::PythonOutput => self.python.as_ref(),
            _ => None,
        }
    }

    /// Runs `row`'s peer: `warmup` untimed spawns of `program args`, then `count` timed
    /// ones, with `env` added to the peer's environment (its children inherit it).
    pub fn run(
        &self,
        row: Row,
        count: usize,
        warmup: usize,
        program: &OsStr,
        args: &[OsString],
        env: &[(OsString, OsString)],
    ) -> Result<PeerRun, BoxError> {
        let peer = self.for_row(row).ok_or("this peer was not prepared")?;
        let result = self.dir.path().join("result");
        let _ = std::fs::remove_file(&result);
        let status = Command::new(&peer.program)
            .args(&peer.pre_args)
            .arg(&result)
            .arg(if row.is_output() { "output" } else { "status" })
            .arg(count.to_string())
            .arg(warmup.to_string())
            .arg(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("running {}: {e}", peer.program.display()))?;
        if !status.success() {
            return Err(format!("the peer {} failed: {status}", peer.program.display()).into());
        }
        let text = std::fs::read_to_string(&result)
            .map_err(|e| format!("reading {}: {e}", result.display()))?;
        let _ = std::fs::remove_file(&result);
        parse_result(&text, count)
    }
}

/// Parses a peer's result line (see `peers/peer.go`).
pub fn parse_result(text: &str, count: usize) -> Result<PeerRun, BoxError> {
    let bad = || format!("unexpected peer result: {:.200}", text.trim());
    let mut words = text.split_ascii_whitespace();
    if words.next() != Some("forkexec-peer") {
        return Err(bad().into());
    }
    let mut field = |name: &str| -> Result<&str, BoxError> {
        match (words.next(), words.next()) {
            (Some(n), Some(v)) if n == name => Ok(v),
            _ => Err(bad().into()),
        }
    };
    let version = field("version")?.to_owned();
    let status: i32 = field("status")?.parse().map_err(|_| bad())?;
    let bytes: usize = field("bytes")?.parse().map_err(|_| bad())?;
    let wall: u64 = field("wall_ns")?.parse().map_err(|_| bad())?;
    let cpu: u64 = field("cpu_ns")?.parse().map_err(|_| bad())?;
    if words.next() != Some("samples") {
        return Err(bad().into());
    }
    let samples = words
        .map(str::parse)
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|_| bad())?;
    if samples.len() != count {
        return Err(bad().into());
    }
    Ok(PeerRun {
        status,
        bytes,
        wall: Duration::from_nanos(wall),
        cpu: Duration::from_nanos(cpu),
        samples,
        version,
    })
}
