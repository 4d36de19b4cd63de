//! Shared test support: a watchdog so a hang fails instead of stalling CI, a lock that
//! serialises the tests of one binary (so fd and child snapshots are exact), and checks
//! that no fd leaked and no child (zombie or not) remains; `sh` commands and plans, a temp
//! dir removed on drop, and re-runs of a test in a fresh process (`run_helper`).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use forkexec::raw::{ChildFd, ExecPlan, Strategy, WaitOptions, WaitStatus};

/// Every explicit strategy (`Auto` resolves to one of them).
pub const STRATEGIES: [Strategy; 4] = [
    Strategy::Vfork,
    Strategy::PosixSpawn,
    Strategy::Fork,
    Strategy::Auto,
];

static SERIAL: Mutex<()> = Mutex::new(());

/// A running test's guard: holds the serial lock, arms a watchdog, and on drop checks that
/// the fds and children of the process are what they were at the start.
pub struct Guard {
    fds: BTreeSet<i32>,
    name: &'static str,
    disarm: Option<std::sync::mpsc::Sender<()>>,
    _lock: MutexGuard<'static, ()>,
}

/// Starts a test: serialises it, arms a watchdog of `secs` seconds that aborts the whole
/// test binary (with a message) if the test hangs, and snapshots fds and children.
pub fn start(name: &'static str, secs: u64) -> Guard {
    let lock = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // The crate opens /dev/null once per process, on first use, and keeps it: open it
    // before the first snapshot so it does not count as a leak of whichever test came first.
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        forkexec::Cmd::new("/bin/true")
            .status()
            .expect("warm-up spawn");
        // Likewise the timeout thread's wake pipe, made at the first timeout.
        forkexec::Cmd::new("/bin/true")
            .timeout(Duration::from_secs(60))
            .status()
            .expect("warm-up spawn with a timeout");
    });
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            rx.recv_timeout(Duration::from_secs(secs))
        {
            eprintln!("watchdog: test {name} hung for {secs}s; aborting");
            std::process::abort();
        }
    });
    assert_eq!(
        children(),
        BTreeSet::new(),
        "{name}: children left by an earlier test"
    );
    Guard {
        fds: open_fds(),
        name,
        disarm: Some(tx),
        _lock: lock,
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(tx) = self.disarm.take() {
            let _ = tx.send(());
        }
        if std::thread::panicking() {
            return;
        }
        // The watchdog thread may still be winding down its channel; fds are what count.
        let now = open_fds();
        assert_eq!(now, self.fds, "{}: fd leak (before vs after)", self.name);
        let kids = children();
        assert!(
            kids.is_empty(),
            "{}: children remain (zombies?): {kids:?}",
            self.name
        );
    }
}

/// The fds open in this process.
pub fn open_fds() -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    let dir = std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd");
    for e in dir {
        let e = e.expect("dir entry");
        if let Ok(n) = e.file_name().to_string_lossy().parse::<i32>() {
            out.insert(n);
        }
    }
    // The directory fd itself was open while listing: drop whatever is no longer open.
    out.retain(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1);
    out
}

/// The pids of this process's children, running or zombie (from every thread's
/// `/proc/self/task/*/children`).
pub fn children() -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for t in std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
    {
        let p = t.path().join("children");
        if let Ok(s) = std::fs::read_to_string(p) {
            out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
        }
    }
    out
}

/// Child fds 0-2 from `base`, overridden by `extra[i]` where it is not `Inherit` (i < 3),
/// then `extra[3..]` appended.
pub fn with_extra<'a>(base: [ChildFd<'a>; 3], extra: &[ChildFd<'a>]) -> Vec<ChildFd<'a>> {
    let mut fds = base.to_vec();
    for (i, f) in extra.iter().enumerate() {
        match fds.get_mut(i) {
            Some(slot) if !matches!(f, ChildFd::Inherit) => *slot = *f,
            Some(_) => {}
            None => fds.push(*f),
        }
    }
    fds
}

/// Runs `plan` by `strategy` with `fds` extra (index = child fd, 0 and 2 default), stdout
/// captured through a pipe; returns (stdout, status).
pub fn run_capture(
    plan: &ExecPlan,
    strategy: Strategy,
    extra: &[ChildFd<'_>],
) -> (String, WaitStatus) {
    let (r, w) = forkexec::raw::pipe().expect("pipe");
    let fds = with_extra(
        [ChildFd::Inherit, ChildFd::Fd(w.as_fd()), ChildFd::Inherit],
        extra,
    );
    let child = forkexec::raw::fork_exec(plan, &fds, strategy)
        .unwrap_or_else(|e| panic!("{strategy:?}: spawn failed: {e}"));
    drop(fds);
    drop(w);
    let mut out = String::new();
    std::fs::File::from(r)
        .read_to_string(&mut out)
        .expect("read stdout");
    let (_, status) = forkexec::raw::waitpid(child.pid, WaitOptions::empty())
        .expect("waitpid")
        .expect("status");
    (out, status)
}

/// `sh -c script` as a command (`sh` found on `PATH`, argv[0] = "sh").
pub fn sh(script: &str) -> forkexec::Cmd {
    let mut c = forkexec::Cmd::new("sh");
    c.arg("-c").arg(script);
    c
}

/// `sh -c script` as a raw plan (`/bin/sh`, argv[0] = "sh").
pub fn sh_plan(script: &str) -> ExecPlan {
    ExecPlan::new("/bin/sh", ["sh", "-c", script]).expect("plan")
}

/// A fresh directory for one test, removed with everything in it when dropped, whether the
/// test passes or fails. Its name holds the process id, a per-process counter and the
/// caller's tag (the test's name, say), so no two tests, runs or copies of a binary share
/// one.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A directory under the system temp dir, as a canonical absolute path.
    pub fn new(tag: &str) -> TempDir {
        let mut d = TempDir::create(&std::env::temp_dir(), tag);
        d.path = d.path.canonicalize().expect("canonical temp dir");
        d
    }

    /// A directory under `target/` of the current directory (the package root under
    /// `cargo test`), as a relative path: for tests of relative paths that must not
    /// `chdir` (the current directory is the process's, shared by every test).
    pub fn relative(tag: &str) -> TempDir {
        TempDir::create(Path::new("target"), tag)
    }

    fn create(base: &Path, tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("forkexec-test-{}-{n}-{tag}", std::process::id()));
        // A leftover of an earlier process with this pid would make the test see old files.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` inside the directory (nothing created).
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// `rel` as a file holding `content` with permissions `mode` (parents created).
    pub fn file(&self, rel: impl AsRef<Path>, content: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, content).expect("write file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    /// An executable `#!/bin/sh` script `rel` running `body`.
    pub fn script(&self, rel: impl AsRef<Path>, body: &str) -> PathBuf {
        self.file(rel, format!("#!/bin/sh\n{body}\n"), 0o755)
    }

    /// `rel` as a directory (parents created).
    pub fn subdir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let p = self.path.join(rel);
        std::fs::create_dir_all(&p).expect("create subdir");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `abs` as a path relative to the current directory (`../../tmp/x`), so that it can be a
/// relative `PATH` element without a `chdir` and without writing into the package.
pub fn relative_from_cwd(abs: &Path) -> PathBuf {
    let cwd = std::env::current_dir()
        .and_then(|d| d.canonicalize())
        .expect("cwd");
    let mut p = PathBuf::new();
    for _ in cwd.components().skip(1) {
        p.push("..");
    }
    p.join(abs.strip_prefix("/").expect("absolute path"))
}

pub const HELPER_ENV: &str = "FORKEXEC_TEST_HELPER";

/// Whether this process is the helper copy started by [`run_helper`] for `name`.
pub fn is_helper(name: &str) -> bool {
    std::env::var_os(HELPER_ENV).is_some_and(|v| v == name)
}

/// The name this binary's test `name` has for libtest's `--exact`: `name` in a binary of
/// its own, `module::name` in one whose tests live in modules (tests/it). Asks the binary
/// itself (`--list`), so a helper re-run by name is found wherever its test moves.
pub fn test_path(name: &str) -> String {
    let exe = std::env::current_exe().expect("current_exe");
    let out = std::process::Command::new(exe)
        .args(["--list", name])
        .output()
        .expect("list this binary's tests");
    let list = String::from_utf8_lossy(&out.stdout);
    let suffix = format!("::{name}");
    let found: Vec<&str> = list
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter(|t| *t == name || t.ends_with(&suffix))
        .collect();
    match found[..] {
        [one] => one.to_owned(),
        _ => panic!("test {name}: want one test of that name in this binary, found {found:?}"),
    }
}

/// Runs the test `name` of this binary in a fresh process, through `wrap` (a command and
/// its arguments put before the test binary, e.g. `unshare --mount`), with `cmd` adjusted
/// by `tweak`; returns what it printed, having asserted it printed `HELPER-OK`.
pub fn run_helper(name: &str, wrap: &[&str], tweak: impl FnOnce(&mut forkexec::Cmd)) -> String {
    let exe = std::env::current_exe().expect("current_exe");
    let mut args: Vec<std::ffi::OsString> = wrap.iter().map(Into::into).collect();
    args.push(exe.into());
    for a in [
        "--exact",
        &test_path(name),
        "--nocapture",
        "--test-threads=1",
    ] {
        args.push(a.into());
    }
    let mut cmd = forkexec::Cmd::new(&args[0]);
    cmd.args(&args[1..])
        .env(HELPER_ENV, name)
        .timeout(Duration::from_secs(60));
    tweak(&mut cmd);
    let (out, err) = match cmd.combined_output() {
        Ok(out) => (out, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(
        err.is_none() && out.contains("HELPER-OK"),
        "helper {name} failed: {err:?}\n{out}"
    );
    out
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
