//! Bad input across the public API: a table of malformed requests, each answered with the
//! exact `ErrorKind`, never a panic, and — for the requests that can be refused before any
//! fork — without creating a child at all.
//!
//! "No child" is checked two ways: `common::children()` is empty after the call, and no
//! `SIGCHLD` arrived during it (a child that was created and reaped inside the call would
//! leave no trace in /proc, but its exit still signals this process).

use crate::common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::STRATEGIES;
use forkexec::raw::{self, CStringArray, ExecPlan, Strategy, WaitOptions};
use forkexec::{
    Cmd, Error, ErrorKind, ProcAttr, Signal, Stage, SysProcAttr, find_process, look_path,
    look_path_in, start_process,
};

static CHLD: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_chld(_: libc::c_int) {
    CHLD.fetch_add(1, Ordering::SeqCst);
}

/// Counts SIGCHLD while it lives (SA_RESTART, so no other call of the test notices the
/// handler), and puts the old disposition back when dropped: the handler is process-wide,
/// and the other tests of this binary (which run before and after, never during: the
/// tests are serialised) must not run under it.
struct CountSigchld(libc::sigaction);

impl CountSigchld {
    fn install() -> CountSigchld {
        // SAFETY: a zeroed sigaction is valid; the handler only bumps an atomic; both
        // pointers are valid.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_chld as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(libc::SIGCHLD, &sa, &mut old), 0);
            CountSigchld(old)
        }
    }
}

impl Drop for CountSigchld {
    fn drop(&mut self) {
        // SAFETY: the value came from sigaction. No panic here: this runs while unwinding too.
        unsafe { libc::sigaction(libc::SIGCHLD, &self.0, std::ptr::null_mut()) };
    }
}

/// Whether a case can be refused before any fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// Must fail (or succeed) without creating a child.
    PreFork,
    /// Creates a child (which fails or runs); it must be reaped.
    PostFork,
}

type Body = Box<dyn Fn() -> Result<(), Error>>;

struct Case {
    name: String,
    when: When,
    /// `None`: the call must succeed.
    want: Option<ErrorKind>,
    body: Body,
}

fn case(
    cases: &mut Vec<Case>,
    name: impl Into<String>,
    when: When,
    want: Option<ErrorKind>,
    body: impl Fn() -> Result<(), Error> + 'static,
) {
    cases.push(Case {
        name: name.into(),
        when,
        want,
        body: Box::new(body),
    });
}

/// Runs every case; returns the failures (as text) instead of stopping at the first.
fn run_table(cases: Vec<Case>) -> Vec<String> {
    let _counting = CountSigchld::install();
    let mut failures = Vec::new();
    for c in &cases {
        let chld_before = CHLD.load(Ordering::SeqCst);
        let r = catch_unwind(AssertUnwindSafe(|| (c.body)()));
        let got = match r {
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: PANIC: {msg}", c.name));
                continue;
            }
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
        };
        match (&got, c.want) {
            (None, None) => {}
            (Some(e), Some(k)) if e.kind() == k => {}
            (Some(e), want) => failures.push(format!("{}: want {want:?}, got {e:?}", c.name)),
            (None, Some(k)) => failures.push(format!("{}: want {k:?}, got Ok", c.name)),
        }
        let kids = common::children();
        if !kids.is_empty() {
            failures.push(format!("{}: children left: {kids:?}", c.name));
        }
        if c.when == When::PreFork {
            // A child's exit signal is generated before its reaper can return; give its
            // delivery a moment.
            std::thread::sleep(Duration::from_millis(1));
            let n = CHLD.load(Ordering::SeqCst) - chld_before;
            if n != 0 {
                failures.push(format!(
                    "{}: refused before fork, but {n} child(ren) were created",
                    c.name
                ));
            }
        }
    }
    println!("{} cases run, {} failures", cases.len(), failures.len());
    failures
}

/// `s` with a NUL byte at the start, in the middle and at the end.
fn with_nuls(s: &str) -> [(&'static str, OsString); 3] {
    let b = s.as_bytes();
    let mid = b.len() / 2;
    let mk = |v: Vec<u8>| OsString::from_vec(v);
    [
        ("start", mk([&[0u8][..], b].concat())),
        ("middle", mk([&b[..mid], &[0u8][..], &b[mid..]].concat())),
        ("end", mk([b, &[0u8][..]].concat())),
    ]
}

fn strat(s: Strategy) -> ProcAttr<'static> {
    ProcAttr {
        strategy: s,
        ..ProcAttr::default()
    }
}

fn ok<T>(r: Result<T, Error>) -> Result<(), Error> {
    r.map(drop)
}

/// The strategies a row of the pre-fork table runs on, each its own case.
#[derive(Clone, Copy)]
enum On {
    /// The call takes no strategy (it builds a value, or acts on a process): once.
    NoStrategy,
    /// Every strategy.
    Every,
    /// These only.
    Only(&'static [Strategy]),
}

/// The bad inputs of a row, each its own case.
#[derive(Clone, Copy)]
enum Inputs {
    /// One case; the call holds its bad input itself.
    Fixed,
    /// `base` with a NUL byte at the start, in the middle and at the end.
    Nuls(&'static str),
    /// Each of these strings.
    Strs(&'static [&'static str]),
    /// Each of these numbers.
    Ints(&'static [i32]),
}

/// One bad input, as a row's call gets it.
#[derive(Clone)]
enum Bad {
    Fixed,
    Str(OsString),
    Int(i32),
}

impl Bad {
    fn s(&self) -> &OsStr {
        match self {
            Bad::Str(s) => s,
            _ => panic!("a string row without strings"),
        }
    }

    fn n(&self) -> i32 {
        match self {
            Bad::Int(n) => *n,
            _ => panic!("a number row without numbers"),
        }
    }
}

/// A row of the pre-fork table: a call given a bad input, the kind it must fail with, and
/// the strategies it must do so on, each time without creating a child.
struct Row {
    /// What is called with what; a case's name adds the input and the strategy.
    name: &'static str,
    inputs: Inputs,
    /// Makes the call with the bad input, on the strategy (`Auto` for `On::NoStrategy`).
    call: fn(&Bad, Strategy) -> Result<(), Error>,
    want: ErrorKind,
    on: On,
}

impl Row {
    /// The row's cases: one per input and strategy.
    fn cases(&self) -> Vec<Case> {
        let inputs: Vec<(String, Bad)> = match self.inputs {
            Inputs::Fixed => vec![(String::new(), Bad::Fixed)],
            Inputs::Nuls(base) => with_nuls(base)
                .into_iter()
                .map(|(pos, b)| (format!(", NUL at {pos}"), Bad::Str(b)))
                .collect(),
            Inputs::Strs(v) => v
                .iter()
                .map(|s| (format!(" {s:?}"), Bad::Str(s.into())))
                .collect(),
            Inputs::Ints(v) => v.iter().map(|n| (format!(" {n}"), Bad::Int(*n))).collect(),
        };
        let strategies: Vec<Option<Strategy>> = match self.on {
            On::NoStrategy => vec![None],
            On::Every => STRATEGIES.map(Some).to_vec(),
            On::Only(v) => v.iter().copied().map(Some).collect(),
        };
        let mut out = Vec::new();
        for (label, bad) in &inputs {
            for s in &strategies {
                let name = match s {
                    Some(s) => format!("{}{label}, on {s:?}", self.name),
                    None => format!("{}{label}", self.name),
                };
                let (call, bad, s) = (self.call, bad.clone(), s.unwrap_or(Strategy::Auto));
                out.push(Case {
                    name,
                    when: When::PreFork,
                    want: Some(self.want),
                    body: Box::new(move || call(&bad, s)),
                });
            }
        }
        out
    }
}

/// `/bin/true` on strategy `s`.
fn true_on(s: Strategy) -> Cmd {
    let mut c = Cmd::new("/bin/true");
    c.strategy(s);
    c
}

/// `start_process("/bin/true")` with `attr` on strategy `s`.
fn start_true(s: Strategy, attr: ProcAttr<'_>) -> Result<(), Error> {
    ok(start_process(
        "/bin/true",
        ["true"],
        &ProcAttr {
            strategy: s,
            ..attr
        },
    ))
}

const KEYS_WITH_EQUALS: &[&str] = &["A=B", "=A", "A=", "="];
const BAD_KEYS: &[&str] = &["A=B", "=A", "A=", "=", ""];

/// The inputs refused before any fork.
const PREFORK: &[Row] = {
    use ErrorKind::*;
    use Inputs::*;
    use On::*;
    &[
        // NUL bytes, in every string the API takes.
        Row {
            name: "Cmd program (PATH search)",
            inputs: Nuls("prog"),
            call: |b, s| ok(Cmd::new(b.s()).strategy(s).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "Cmd program path",
            inputs: Nuls("/bin/true"),
            call: |b, s| ok(Cmd::new(b.s()).strategy(s).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "ExecPlan::new program",
            inputs: Nuls("/bin/true"),
            call: |b, _| ok(ExecPlan::new(b.s(), ["x"])),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "start_process program",
            inputs: Nuls("/bin/true"),
            call: |b, s| ok(start_process(b.s(), ["x"], &strat(s))),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "Cmd arg",
            inputs: Nuls("argument"),
            call: |b, s| ok(true_on(s).arg(b.s()).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "Cmd arg0",
            inputs: Nuls("argument"),
            call: |b, s| ok(true_on(s).arg0(b.s()).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "ExecPlan argv",
            inputs: Nuls("argument"),
            call: |b, _| ok(ExecPlan::new("/bin/true", [OsStr::new("true"), b.s()])),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "start_process argv",
            inputs: Nuls("argument"),
            call: |b, s| {
                ok(start_process(
                    "/bin/true",
                    [OsStr::new("true"), b.s()],
                    &strat(s),
                ))
            },
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "CStringArray",
            inputs: Nuls("argument"),
            call: |b, _| ok(CStringArray::new([b.s()])),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "Cmd env key",
            inputs: Nuls("KEY"),
            call: |b, s| ok(true_on(s).env(b.s(), "v").status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "Cmd env_remove key",
            inputs: Nuls("KEY"),
            call: |b, s| ok(true_on(s).env_remove(b.s()).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "CStringArray::from_env key",
            inputs: Nuls("KEY"),
            call: |b, _| ok(CStringArray::from_env([(b.s(), OsStr::new("v"))])),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "Cmd env value",
            inputs: Nuls("value"),
            call: |b, s| ok(true_on(s).env("K", b.s()).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "Cmd env value after env_clear",
            inputs: Nuls("value"),
            call: |b, s| ok(true_on(s).env_clear().env("K", b.s()).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "ProcAttr env entry K=",
            inputs: Nuls("value"),
            call: |b, s| {
                let mut entry = OsString::from("K=");
                entry.push(b.s());
                let env = Some(vec![entry]);
                start_true(
                    s,
                    ProcAttr {
                        env,
                        ..ProcAttr::default()
                    },
                )
            },
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "Cmd dir",
            inputs: Nuls("/tmp"),
            call: |b, s| ok(true_on(s).dir(b.s()).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "ExecPlan::dir",
            inputs: Nuls("/tmp"),
            call: |b, _| ok(ExecPlan::new("/bin/true", ["true"])?.dir(b.s())),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "ProcAttr dir",
            inputs: Nuls("/tmp"),
            call: |b, s| {
                let dir = Some(PathBuf::from(b.s()));
                start_true(
                    s,
                    ProcAttr {
                        dir,
                        ..ProcAttr::default()
                    },
                )
            },
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "Cmd chroot",
            inputs: Nuls("/tmp"),
            call: |b, s| ok(true_on(s).chroot(b.s()).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "SysProcAttr chroot",
            inputs: Nuls("/tmp"),
            call: |b, s| {
                let chroot = Some(PathBuf::from(b.s()));
                let sys = SysProcAttr {
                    chroot,
                    ..Default::default()
                };
                start_true(
                    s,
                    ProcAttr {
                        sys,
                        ..ProcAttr::default()
                    },
                )
            },
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "look_path",
            inputs: Nuls("true"),
            call: |b, _| ok(look_path(b.s())),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "look_path_in",
            inputs: Nuls("true"),
            call: |b, _| ok(look_path_in(b.s(), Some(OsStr::new("/bin")))),
            want: InvalidInput,
            on: NoStrategy,
        },
        // Keys with '=', empty keys.
        Row {
            name: "Cmd env key",
            inputs: Strs(BAD_KEYS),
            call: |b, s| ok(true_on(s).env(b.s(), "v").status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "Cmd env_remove key",
            inputs: Strs(BAD_KEYS),
            call: |b, s| ok(true_on(s).env_remove(b.s()).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "merge_env key",
            inputs: Strs(KEYS_WITH_EQUALS),
            call: |b, _| ok(raw::merge_env(Vec::<OsString>::new(), [(b.s(), Some("v"))])),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "CStringArray::from_env key",
            inputs: Strs(BAD_KEYS),
            call: |b, _| ok(CStringArray::from_env([(b.s(), "v")])),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "Cmd environ() with a bad key",
            inputs: Fixed,
            call: |_, _| ok(Cmd::new("/bin/true").env("A=B", "v").environ()),
            want: InvalidInput,
            on: NoStrategy,
        },
        // ProcAttr env entries without a '=' after the first byte.
        Row {
            name: "ProcAttr env entry",
            inputs: Strs(&["NOEQUALS", "", "=x"]),
            call: |b, s| {
                let env = Some(vec![b.s().to_owned()]);
                start_true(
                    s,
                    ProcAttr {
                        env,
                        ..ProcAttr::default()
                    },
                )
            },
            want: InvalidInput,
            on: Every,
        },
        // Empty program, directory, chroot; names that are not programs.
        Row {
            name: "Cmd empty program",
            inputs: Fixed,
            call: |_, s| ok(Cmd::new("").strategy(s).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "Cmd empty program resolved_path",
            inputs: Fixed,
            call: |_, _| ok(Cmd::new("").resolved_path().map(|p| p.to_owned())),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "ExecPlan::new empty program",
            inputs: Fixed,
            call: |_, _| ok(ExecPlan::new("", ["x"])),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "start_process empty program",
            inputs: Fixed,
            call: |_, s| ok(start_process("", ["x"], &strat(s))),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "look_path empty",
            inputs: Fixed,
            call: |_, _| ok(look_path("")),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "Cmd empty dir",
            inputs: Fixed,
            call: |_, s| ok(true_on(s).dir("").status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "ExecPlan::dir empty",
            inputs: Fixed,
            call: |_, _| ok(ExecPlan::new("/bin/true", ["true"])?.dir("")),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "Cmd empty chroot",
            inputs: Fixed,
            call: |_, s| ok(true_on(s).chroot("").status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "Cmd program",
            inputs: Strs(&[".", ".."]),
            call: |b, s| ok(Cmd::new(b.s()).strategy(s).status()),
            want: NotFound,
            on: Every,
        },
        Row {
            name: "look_path",
            inputs: Strs(&[".", ".."]),
            call: |b, _| ok(look_path(b.s())),
            want: NotFound,
            on: NoStrategy,
        },
        // A bare name on an all-absolute PATH is searched by the child on the other
        // strategies, as std and execvp do (issue 14): those cases are post-fork below.
        Row {
            name: "Cmd program not on PATH",
            inputs: Fixed,
            call: |_, s| {
                ok(Cmd::new("no-such-program-forkexec-bad-input")
                    .strategy(s)
                    .status())
            },
            want: NotFound,
            on: Only(&[Strategy::PosixSpawn]),
        },
        Row {
            name: "Cmd program with an empty PATH",
            inputs: Fixed,
            call: |_, s| ok(Cmd::new("true").env("PATH", "").strategy(s).status()),
            want: NotFound,
            on: Every,
        },
        Row {
            name: "Cmd program not on the child's PATH",
            inputs: Fixed,
            call: |_, s| {
                ok(Cmd::new("true")
                    .env("PATH", "/no/such/dir")
                    .strategy(s)
                    .status())
            },
            want: NotFound,
            on: Only(&[Strategy::PosixSpawn]),
        },
        Row {
            name: "Cmd dir that does not exist",
            inputs: Fixed,
            call: |_, s| ok(true_on(s).dir("/no/such/dir").status()),
            want: NotFound,
            on: Every,
        },
        Row {
            name: "Cmd cgroup that does not exist",
            inputs: Fixed,
            call: |_, s| ok(true_on(s).cgroup("/no/such/cgroup").status()),
            want: NotFound,
            on: Every,
        },
        // Invalid fds.
        Row {
            name: "owned_fd",
            inputs: Ints(&[-1, i32::MIN, 999_999]),
            // SAFETY: the number is not open (or negative): owned_fd must refuse it, and
            // then owns nothing.
            call: |b, _| ok(unsafe { raw::owned_fd(b.n()) }),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "owned_fd(just closed)",
            inputs: Fixed,
            call: |_, _| {
                use std::os::fd::IntoRawFd;
                let (r, w) = raw::pipe()?;
                let n = r.into_raw_fd();
                // SAFETY: `n` was just released by its owner; closing it makes it a dead
                // number.
                unsafe { libc::close(n) };
                drop(w);
                // SAFETY: `n` is closed (no other thread of this serialised test opens fds).
                ok(unsafe { raw::owned_fd(n) })
            },
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "SysProcAttr ctty -1",
            inputs: Fixed,
            call: |_, s| {
                let sys = SysProcAttr {
                    setsid: true,
                    ctty: Some(-1),
                    ..Default::default()
                };
                start_true(
                    s,
                    ProcAttr {
                        sys,
                        ..ProcAttr::default()
                    },
                )
            },
            want: InvalidInput,
            on: Every,
        },
        // Process handles and signals.
        Row {
            name: "find_process",
            inputs: Ints(&[0, -1, i32::MIN]),
            call: |b, _| ok(find_process(b.n())),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "pidfd_open",
            inputs: Ints(&[0, -1, i32::MIN]),
            call: |b, _| ok(raw::pidfd_open(b.n())),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "find_process(i32::MAX) (no such process)",
            inputs: Fixed,
            call: |_, _| ok(find_process(i32::MAX)),
            want: ProcessDone,
            on: NoStrategy,
        },
        // 0 is the liveness probe (Go's Signal(0)), accepted since issue 16.
        Row {
            name: "Signal::new",
            inputs: Ints(&[65, -1, i32::MAX, i32::MIN]),
            call: |b, _| ok(Signal::new(b.n())),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "Signal::try_from",
            inputs: Ints(&[65, -1, i32::MAX, i32::MIN]),
            call: |b, _| ok(Signal::try_from(b.n())),
            want: InvalidInput,
            on: NoStrategy,
        },
        Row {
            name: "waitpid(i32::MIN)",
            inputs: Fixed,
            call: |_, _| ok(raw::waitpid(i32::MIN, WaitOptions::NOHANG)),
            want: Io,
            on: NoStrategy,
        },
        Row {
            name: "waitpid(not a child)",
            inputs: Fixed,
            call: |_, _| ok(raw::waitpid(1, WaitOptions::NOHANG)),
            want: Io,
            on: NoStrategy,
        },
        Row {
            name: "waitpid with NOWAIT (waitid-only option)",
            inputs: Fixed,
            call: |_, _| ok(raw::waitpid(-1, WaitOptions::NOWAIT)),
            want: InvalidInput,
            on: NoStrategy,
        },
        // Process groups.
        Row {
            name: "Cmd process_group",
            inputs: Ints(&[-1, i32::MIN]),
            call: |b, s| ok(true_on(s).process_group(b.n()).status()),
            want: InvalidInput,
            on: Every,
        },
        Row {
            name: "SysProcAttr process_group",
            inputs: Ints(&[-1, i32::MIN]),
            call: |b, s| {
                let sys = SysProcAttr {
                    process_group: Some(b.n()),
                    ..Default::default()
                };
                start_true(
                    s,
                    ProcAttr {
                        sys,
                        ..ProcAttr::default()
                    },
                )
            },
            want: InvalidInput,
            on: Every,
        },
        // What posix_spawn cannot express: refused up front.
        Row {
            name: "Cmd chroot /",
            inputs: Fixed,
            call: |_, s| ok(true_on(s).chroot("/").status()),
            want: Unsupported,
            on: Only(&[Strategy::PosixSpawn]),
        },
        Row {
            name: "Cmd pdeathsig",
            inputs: Fixed,
            call: |_, s| ok(true_on(s).pdeathsig(Signal::KILL).status()),
            want: Unsupported,
            on: Only(&[Strategy::PosixSpawn]),
        },
        Row {
            name: "Cmd credential",
            inputs: Fixed,
            call: |_, s| ok(true_on(s).credential(0, 0, []).status()),
            want: Unsupported,
            on: Only(&[Strategy::PosixSpawn]),
        },
        Row {
            name: "Cmd unshare",
            inputs: Fixed,
            call: |_, s| ok(true_on(s).unshare(forkexec::Namespaces::UTS).status()),
            want: Unsupported,
            on: Only(&[Strategy::PosixSpawn]),
        },
        Row {
            name: "Cmd clone_namespaces",
            inputs: Fixed,
            call: |_, s| {
                ok(true_on(s)
                    .clone_namespaces(forkexec::Namespaces::UTS)
                    .status())
            },
            want: Unsupported,
            on: Only(&[Strategy::PosixSpawn]),
        },
    ]
};

/// The inputs rejected before any fork (the table above), each with the exact kind it must
/// get, on each strategy of its row.
#[test]
fn bad_input_table_prefork() {
    let _g = common::start("bad_input_table_prefork", 120);
    let cases: Vec<Case> = PREFORK.iter().flat_map(Row::cases).collect();
    let failures = run_table(cases);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Inputs that need a child to be refused (or that must simply work), on every strategy.
#[test]
fn bad_input_table_postfork() {
    let _g = common::start("bad_input_table_postfork", 120);
    use ErrorKind::*;
    use When::{PostFork, PreFork};
    let mut t = Vec::new();
    let big = OsString::from_vec(vec![b'a'; 64 * 1024]);
    // A program not found by the child's own PATH search: Go's error, the child reaped.
    for s in STRATEGIES
        .into_iter()
        .filter(|s| *s != Strategy::PosixSpawn)
    {
        for (what, path) in [
            ("not on PATH", None),
            ("not on the child's PATH", Some("/no/such/dir")),
        ] {
            case(
                &mut t,
                format!("{s:?}: Cmd program {what}"),
                PostFork,
                Some(NotFound),
                move || {
                    let mut c = Cmd::new(if path.is_some() {
                        "true"
                    } else {
                        "no-such-program-forkexec-bad-input"
                    });
                    if let Some(p) = path {
                        c.env("PATH", p);
                    }
                    let e = c.strategy(s).status().unwrap_err();
                    assert!(
                        e.to_string().contains("executable file not found in $PATH"),
                        "{e}"
                    );
                    Err(e)
                },
            );
        }
    }
    for s in STRATEGIES {
        let b = big.clone();
        case(
            &mut t,
            format!("{s:?}: 3 MiB argv (E2BIG)"),
            PostFork,
            Some(Exec),
            move || {
                let e = Cmd::new("/bin/true")
                    .args(std::iter::repeat_n(&b, 48))
                    .strategy(s)
                    .status()
                    .unwrap_err();
                assert_eq!(
                    (e.stage(), e.errno()),
                    (Some(Stage::Exec), Some(libc::E2BIG)),
                    "{e:?}"
                );
                Err(e)
            },
        );
        case(
            &mut t,
            format!("{s:?}: one 200 KiB arg (E2BIG)"),
            PostFork,
            Some(Exec),
            move || {
                ok(Cmd::new("/bin/true")
                    .arg(OsString::from_vec(vec![b'x'; 200 * 1024]))
                    .strategy(s)
                    .status())
            },
        );

        // Timeouts.
        case(
            &mut t,
            format!("{s:?}: timeout zero cancels at once"),
            PostFork,
            Some(Timeout),
            move || {
                let t0 = Instant::now();
                let r = Cmd::new("/bin/sleep")
                    .arg("30")
                    .timeout(Duration::ZERO)
                    .strategy(s)
                    .status();
                assert!(
                    t0.elapsed() < Duration::from_secs(5),
                    "zero timeout took {:?}",
                    t0.elapsed()
                );
                ok(r)
            },
        );
        case(
            &mut t,
            format!("{s:?}: timeout zero, output()"),
            PostFork,
            Some(Timeout),
            move || {
                ok(Cmd::new("/bin/sleep")
                    .arg("30")
                    .timeout(Duration::ZERO)
                    .strategy(s)
                    .output())
            },
        );
        case(
            &mut t,
            format!("{s:?}: timeout Duration::MAX is no timeout"),
            PostFork,
            None,
            move || {
                let st = Cmd::new("/bin/sh")
                    .args(["-c", "exit 0"])
                    .timeout(Duration::MAX)
                    .strategy(s)
                    .status()?;
                assert!(st.success());
                Ok(())
            },
        );
        case(
            &mut t,
            format!("{s:?}: timeout MAX + wait_delay MAX, output()"),
            PostFork,
            None,
            move || {
                let out = Cmd::new("/bin/echo")
                    .arg("hi")
                    .timeout(Duration::MAX)
                    .wait_delay(Duration::MAX)
                    .strategy(s)
                    .output()?;
                assert_eq!(out, b"hi\n");
                Ok(())
            },
        );
        case(
            &mut t,
            format!("{s:?}: wait_delay zero, status()"),
            PostFork,
            None,
            move || {
                assert!(
                    Cmd::new("/bin/true")
                        .wait_delay(Duration::ZERO)
                        .strategy(s)
                        .status()?
                        .success()
                );
                Ok(())
            },
        );
        case(
            &mut t,
            format!("{s:?}: Process::wait_timeout(ZERO) and (MAX)"),
            PostFork,
            None,
            move || {
                let p = start_process("/bin/sleep", ["sleep", "30"], &strat(s))?;
                assert!(
                    p.wait_timeout(Duration::ZERO)?.is_none(),
                    "running child reported done"
                );
                p.kill()?;
                let st = p
                    .wait_timeout(Duration::MAX)?
                    .expect("MAX waits until it exits");
                assert_eq!(st.signal(), Some(Signal::KILL));
                Ok(())
            },
        );
        case(
            &mut t,
            format!("{s:?}: wait twice"),
            PostFork,
            Some(ProcessDone),
            move || {
                let p = start_process("/bin/true", ["true"], &strat(s))?;
                p.wait()?;
                ok(p.wait())
            },
        );
        case(
            &mut t,
            format!("{s:?}: signal after wait"),
            PostFork,
            Some(ProcessDone),
            move || {
                let p = start_process("/bin/true", ["true"], &strat(s))?;
                p.wait()?;
                p.signal(Signal::TERM)
            },
        );
        case(
            &mut t,
            format!("{s:?}: try_wait after wait"),
            PostFork,
            Some(ProcessDone),
            move || {
                let p = start_process("/bin/true", ["true"], &strat(s))?;
                p.wait()?;
                ok(p.try_wait())
            },
        );
        case(
            &mut t,
            format!("{s:?}: Child::kill after exit"),
            PostFork,
            Some(ProcessDone),
            move || {
                let mut c = Cmd::new("/bin/true").strategy(s).start()?;
                c.wait()?;
                c.kill()
            },
        );
        // A huge supplementary group list: setgroups refuses it (EINVAL) in the child.
        let want = if s == Strategy::PosixSpawn {
            Unsupported
        } else {
            Exec
        };
        let when = if s == Strategy::PosixSpawn {
            PreFork
        } else {
            PostFork
        };
        case(
            &mut t,
            format!("{s:?}: 100 000 supplementary groups"),
            when,
            Some(want),
            move || {
                let groups: Vec<u32> = (0..100_000).collect();
                ok(Cmd::new("/bin/true")
                    .credential(0, 0, groups)
                    .strategy(s)
                    .status())
            },
        );
        // Regression (issue 11, critical): any clone flag that is not a namespace used to
        // reach clone/clone3 and corrupt this process (CLONE_FILES: the child's fd plan ran
        // on our fd table; CLONE_SIGHAND: our handlers were reset; CLONE_FS: dir() moved
        // us; CLONE_THREAD: exec replaced us; a low-byte value: our exit signal; SETTLS and
        // the tid pointers: stack garbage). Now no such value can be expressed: the raw
        // value is refused with InvalidInput before anything is cloned, for clone and
        // unshare alike, on every strategy.
        for (name, bits) in [
            ("CLONE_FILES", libc::CLONE_FILES),
            ("CLONE_SIGHAND", libc::CLONE_SIGHAND),
            ("CLONE_FS", libc::CLONE_FS),
            (
                "CLONE_THREAD|CLONE_SIGHAND",
                libc::CLONE_THREAD | libc::CLONE_SIGHAND,
            ),
            ("CLONE_SETTLS", libc::CLONE_SETTLS),
            ("CLONE_CHILD_SETTID", libc::CLONE_CHILD_SETTID),
            ("CLONE_CHILD_CLEARTID", libc::CLONE_CHILD_CLEARTID),
            ("CLONE_VM", libc::CLONE_VM),
            ("CLONE_PARENT", libc::CLONE_PARENT),
            ("exit signal SIGXFSZ", libc::SIGXFSZ),
            ("-1", -1),
        ] {
            case(
                &mut t,
                format!("{s:?}: clone_namespaces({name})"),
                PreFork,
                Some(InvalidInput),
                move || {
                    let ns = forkexec::Namespaces::from_bits(bits)?;
                    ok(Cmd::new("/bin/true")
                        .clone_namespaces(ns)
                        .strategy(s)
                        .status())
                },
            );
            case(
                &mut t,
                format!("{s:?}: unshare({name})"),
                PreFork,
                Some(InvalidInput),
                move || {
                    let sys = forkexec::SysProcAttr {
                        unshare: forkexec::Namespaces::from_bits(bits)?,
                        ..Default::default()
                    };
                    ok(Cmd::new("/bin/true").sys(sys).strategy(s).status())
                },
            );
        }
    }
    // wait_delay zero with output(): the child's pipes are at EOF when it exits (nothing
    // else holds them), so nothing is "still held open" and the output is complete.
    // (Regression: Child::drain used to declare the delay expired in the very iteration
    // that saw the pidfd turn readable, before reading the pipes to EOF, so a quick child's
    // complete output came back as ErrorKind::WaitDelay on every strategy.)
    for s in STRATEGIES {
        case(
            &mut t,
            format!("{s:?}: wait_delay zero, output()"),
            PostFork,
            None,
            move || {
                for _ in 0..20 {
                    let out = Cmd::new("/bin/echo")
                        .arg("hi")
                        .wait_delay(Duration::ZERO)
                        .strategy(s)
                        .output()?;
                    assert_eq!(out, b"hi\n");
                }
                Ok(())
            },
        );
    }
    let failures = run_table(t);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `ExecPlan::process_group(-1)`: the raw plan must refuse a negative group (as `Cmd` and
/// `SysProcAttr` do) instead of dropping the request.
#[test]
fn raw_plan_negative_process_group_is_refused() {
    let _g = common::start("raw_plan_negative_process_group_is_refused", 60);
    for s in STRATEGIES {
        let plan = ExecPlan::new("/bin/sh", ["sh", "-c", "exit 0"])
            .unwrap()
            .process_group(-1);
        let r = raw::fork_exec(&plan, &[], s);
        let r = match r {
            Ok(child) => {
                raw::waitpid(child.pid, WaitOptions::empty()).unwrap();
                Ok(())
            }
            Err(e) => Err(e),
        };
        // (Regression: the raw engine used to pass `pgid.unwrap_or(-1)` on, where -1 means
        // "no setpgid", so the request was silently dropped.)
        let e = r.expect_err("process_group(-1) was silently ignored");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{s:?}: {e:?}");
    }
}

/// A bad `clone_flags` value (one the kernel refuses with EINVAL) is the caller's error:
/// it must be reported as such, and must not change how later, valid spawns are made.
/// Checked in a fresh copy of this binary (the helper below), since a failure would
/// change how the rest of this binary's children are made.
#[test]
fn bad_clone_flags_do_not_disable_pidfds() {
    let _g = common::start("bad_clone_flags_do_not_disable_pidfds", 60);
    if std::env::var_os(HELPER_ENV).is_some() {
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let (r, w) = raw::pipe().unwrap();
    let w2: std::os::fd::OwnedFd = w.try_clone().unwrap();
    let mut child = Cmd::new(&exe)
        .args([
            "--exact",
            &common::test_path("helper_bad_clone_flags"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdout(forkexec::Stdio::from(w))
        .stderr(forkexec::Stdio::from(w2))
        .timeout(Duration::from_secs(60))
        .start()
        .expect("start the helper");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
    let st = child.wait().expect("wait for the helper");
    // Regression (fixed): failed before the fix on the error kind (see helper_bad_clone_flags).
    assert!(
        st.success() && out.contains("HELPER-OK"),
        "helper failed ({st}):\n{out}"
    );
}

const HELPER_ENV: &str = "FORKEXEC_BAD_INPUT_HELPER";

#[test]
fn helper_bad_clone_flags() {
    let _g = common::start("helper_bad_clone_flags", 60);
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let plan = ExecPlan::new("/bin/true", ["true"]).unwrap();
    let before = raw::fork_exec(&plan, &[], Strategy::Vfork).unwrap();
    let had_pidfd = before.pidfd.is_some();
    raw::waitpid(before.pid, WaitOptions::empty()).unwrap();
    // CLONE_NEWNS together with CLONE_FS was EINVAL from the kernel; now CLONE_FS cannot
    // even be expressed: the raw value is refused before anything is cloned.
    let err = forkexec::Namespaces::from_bits(libc::CLONE_NEWNS | libc::CLONE_FS).unwrap_err();
    println!("bad clone flags: {err:?}");
    assert_eq!((err.stage(), err.errno()), (None, None), "{err:?}");
    let after = raw::fork_exec(&plan, &[], Strategy::Vfork).unwrap();
    let has_pidfd = after.pidfd.is_some();
    raw::waitpid(after.pid, WaitOptions::empty()).unwrap();
    // (Regression: vfork() used to take any EINVAL from clone(CLONE_PIDFD|flags) as "no
    // CLONE_PIDFD here" and turn pidfds off for every later spawn of the process.)
    assert_eq!(
        had_pidfd, has_pidfd,
        "a refused clone_flags value turned CLONE_PIDFD off for the whole process"
    );
    // Regression (fixed): the kind. A malformed request the kernel refused before creating anything is
    // InvalidInput (EINVAL without a stage is InvalidInput everywhere else); src/spawn.rs
    // spawn_error builds it with Error::from_errno(Stage::Fork, ..), and src/error.rs
    // kind_of_errno makes every staged errno but ENOENT/EACCES/EPERM ErrorKind::Exec.
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    println!("HELPER-OK");
}
