//! Go's `os/exec` test suite (`exec_test.go`), the parts that apply on Linux, ported to
//! [`forkexec::Cmd`] with `/bin/sh`, `cat`, `echo`, `env`, ... as helper programs. Every
//! spawn behaviour runs on every strategy.

use crate::common;

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{STRATEGIES, TempDir, relative_from_cwd, sh};
use forkexec::raw::Strategy;
use forkexec::{Cmd, ErrorKind, Signal, Stage, Stdio};

// ---------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).expect("utf-8 output")
}

/// A `Write` into a shared buffer.
#[derive(Clone, Default)]
struct SharedVec(Arc<Mutex<Vec<u8>>>);

impl SharedVec {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Write for SharedVec {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The fd numbers listed one a line by `ls /proc/$$/fd`.
fn fd_list(out: &str) -> BTreeSet<i32> {
    out.lines()
        .map(|l| l.trim().parse::<i32>().expect("fd number"))
        .collect()
}

/// A NUL-separated environment (`env -0`) as a set of entries.
fn env_set(out: &[u8]) -> BTreeSet<OsString> {
    out.split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| OsStr::from_bytes(e).to_owned())
        .collect()
}

/// `/dev/zero` read through `head -c`: the size of the large-output tests.
const HUNDRED_MIB: usize = 100 << 20;

// ---------------------------------------------------------------------------------------
// echo, cat, pipes (TestEcho, TestCatStdin, TestPipes, TestStdinClose, ...)
// ---------------------------------------------------------------------------------------

#[test]
fn echo() {
    let _g = common::start("echo", 60);
    for s in STRATEGIES {
        let out = Cmd::new("echo")
            .args(["foo", "bar", "baz"])
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(text(out), "foo bar baz\n", "{s:?}");
    }
}

#[test]
fn cat_through_stdin_and_stdout_pipes() {
    let _g = common::start("cat_through_stdin_and_stdout_pipes", 60);
    let input = "Input string\nLine 2";
    for s in STRATEGIES {
        let mut child = Cmd::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .strategy(s)
            .start()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert!(child.stderr.is_none(), "{s:?}: stderr was not piped");
        let mut stdin = child.stdin.take().expect("stdin pipe");
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("stdout pipe")
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, input, "{s:?}");
        let st = child.wait().unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert!(st.success(), "{s:?}: {st}");
        assert_eq!(st.pid(), child.pid(), "{s:?}");
    }
}

#[test]
fn cat_large_transfer_with_writer_thread() {
    let _g = common::start("cat_large_transfer_with_writer_thread", 60);
    let data: Arc<Vec<u8>> = Arc::new((0..4 << 20).map(|i| (i % 251) as u8).collect());
    for s in STRATEGIES {
        let mut child = Cmd::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .strategy(s)
            .start()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        let mut stdin = child.stdin.take().expect("stdin pipe");
        let d = data.clone();
        let writer = std::thread::spawn(move || {
            stdin.write_all(&d).expect("write to cat");
        });
        let mut out = Vec::new();
        child
            .stdout
            .take()
            .expect("stdout pipe")
            .read_to_end(&mut out)
            .unwrap();
        writer.join().expect("writer thread");
        assert_eq!(out.len(), data.len(), "{s:?}");
        assert!(out == *data, "{s:?}: data differs");
        assert!(child.wait().unwrap().success(), "{s:?}");
    }
}

#[test]
fn pipes_interleaved_stdin_stdout_stderr() {
    // TestPipes: lines written to stdin come back on stdout or stderr, one at a time.
    let _g = common::start("pipes_interleaved_stdin_stdout_stderr", 60);
    let script = r#"while IFS= read -r l; do
        case "$l" in O:*) echo "$l";; E:*) echo "$l" >&2;; *) exit 1;; esac
    done"#;
    for s in STRATEGIES {
        let mut child = sh(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .strategy(s)
            .start()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        let mut stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let line = |r: &mut dyn BufRead| {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            l
        };
        stdin.write_all(b"O:I am output\n").unwrap();
        assert_eq!(line(&mut out), "O:I am output\n", "{s:?}");
        stdin.write_all(b"E:I am error\n").unwrap();
        assert_eq!(line(&mut err), "E:I am error\n", "{s:?}");
        stdin.write_all(b"O:I am output2\n").unwrap();
        assert_eq!(line(&mut out), "O:I am output2\n", "{s:?}");
        drop(stdin);
        let st = child.wait().unwrap();
        assert!(st.success(), "{s:?}: {st}");
        assert_eq!(line(&mut out), "", "{s:?}: stdout not at EOF");
    }
}

#[test]
fn wait_closes_stdin_pipe() {
    // Child::wait drops a stdin pipe still held, so a child reading to EOF finishes.
    let _g = common::start("wait_closes_stdin_pipe", 60);
    for s in STRATEGIES {
        let mut child = Cmd::new("cat")
            .stdin(Stdio::piped())
            .strategy(s)
            .start()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"some test string")
            .unwrap();
        let st = child.wait().unwrap();
        assert!(st.success(), "{s:?}: {st}");
    }
}

#[test]
fn stdin_write_racing_a_child_that_does_not_read() {
    // TestEchoFileRace: writing to the stdin of a child that exits without reading.
    let _g = common::start("stdin_write_racing_a_child_that_does_not_read", 60);
    for s in STRATEGIES {
        let mut child = Cmd::new("echo")
            .stdin(Stdio::piped())
            .strategy(s)
            .start()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            // EPIPE is fine: the child may be gone already.
            let _ = stdin.write_all(b"echo\n");
        });
        assert!(child.wait().unwrap().success(), "{s:?}");
        writer.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Stdio: the null default, readers and writers
// ---------------------------------------------------------------------------------------

#[test]
fn stdio_default_is_null() {
    let _g = common::start("stdio_default_is_null", 60);
    for s in STRATEGIES {
        // cat reads the null device: EOF at once.
        let t = Instant::now();
        let out = Cmd::new("cat").strategy(s).output().unwrap();
        assert!(out.is_empty(), "{s:?}: {out:?}");
        assert!(t.elapsed() < Duration::from_secs(10), "{s:?}: cat hung");

        let out = sh("ls -l /proc/$$/fd/0").strategy(s).output().unwrap();
        assert!(
            text(out.clone()).trim_end().ends_with("-> /dev/null"),
            "{s:?}: {}",
            text(out)
        );

        // stderr too (output() would capture it: use start with stdout piped only).
        let mut child = sh("ls -l /proc/$$/fd/0 /proc/$$/fd/2")
            .stdout(Stdio::piped())
            .strategy(s)
            .start()
            .unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(child.wait().unwrap().success(), "{s:?}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{s:?}: {out}");
        for l in lines {
            assert!(l.ends_with("-> /dev/null"), "{s:?}: {l}");
        }
    }
}

#[test]
fn stdio_inherit_and_fd() {
    let _g = common::start("stdio_inherit_and_fd", 60);
    let dir = TempDir::new("stdio_fd");
    for s in STRATEGIES {
        // A file as stdout.
        let path = dir.path().join(format!("out-{s:?}"));
        let f = std::fs::File::create(&path).unwrap();
        sh("echo to a file")
            .stdout(f)
            .strategy(s)
            .run()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "to a file\n",
            "{s:?}"
        );

        // A file as stdin.
        let f = std::fs::File::open(&path).unwrap();
        let out = Cmd::new("cat").stdin(f).strategy(s).output().unwrap();
        assert_eq!(text(out), "to a file\n", "{s:?}");

        // Inherit: the child's fd 0 is the test process's fd 0.
        let mine = std::fs::read_link("/proc/self/fd/0").ok();
        let out = sh("readlink /proc/$$/fd/0 || echo closed")
            .stdin(Stdio::inherit())
            .strategy(s)
            .output()
            .unwrap();
        if let Some(mine) = mine {
            let mine = mine.to_string_lossy().into_owned();
            // Pipes and sockets name their inode: the same object gives the same text.
            assert_eq!(text(out).trim_end(), mine, "{s:?}");
        }
    }
}

#[test]
fn stdio_from_reader_feeds_stdin() {
    // TestCatStdin: Stdin = io.Reader.
    let _g = common::start("stdio_from_reader_feeds_stdin", 60);
    let input = "Input string\nLine 2";
    for s in STRATEGIES {
        let out = Cmd::new("cat")
            .stdin(Stdio::from_reader(std::io::Cursor::new(
                input.as_bytes().to_vec(),
            )))
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(text(out), input, "{s:?}");
    }
}

#[test]
fn stdio_from_writer_receives_output() {
    let _g = common::start("stdio_from_writer_receives_output", 60);
    for s in STRATEGIES {
        let (out, err) = (SharedVec::default(), SharedVec::default());
        sh("echo out; echo err >&2; echo out2")
            .stdout(Stdio::from_writer(out.clone()))
            .stderr(Stdio::from_writer(err.clone()))
            .strategy(s)
            .run()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(text(out.take()), "out\nout2\n", "{s:?}");
        assert_eq!(text(err.take()), "err\n", "{s:?}");

        // start() + wait() with a reader and a writer.
        let out = SharedVec::default();
        let mut child = Cmd::new("cat")
            .stdin(Stdio::from_reader(&b"through a thread"[..]))
            .stdout(Stdio::from_writer(out.clone()))
            .strategy(s)
            .start()
            .unwrap();
        assert!(child.stdin.is_none() && child.stdout.is_none(), "{s:?}");
        assert!(child.wait().unwrap().success(), "{s:?}");
        assert_eq!(text(out.take()), "through a thread", "{s:?}");
    }
}

/// Go's `delayedInfiniteReader`: every read sleeps, then fills the buffer.
struct DelayedInfiniteReader;

impl Read for DelayedInfiniteReader {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_millis(100));
        b.fill(b'x');
        Ok(b.len())
    }
}

#[test]
fn stdin_pipe_error_ignored_on_success() {
    // TestIgnorePipeErrorOnSuccess: a child that does not read its stdin succeeds.
    let _g = common::start("stdin_pipe_error_ignored_on_success", 60);
    for s in STRATEGIES {
        let readers: [(&str, Stdio); 2] = [
            (
                "10MiB",
                Stdio::from_reader(std::io::Cursor::new(vec![b'x'; 10 << 20])),
            ),
            ("infinite", Stdio::from_reader(DelayedInfiniteReader)),
        ];
        for (what, stdin) in readers {
            let out = SharedVec::default();
            let t = Instant::now();
            Cmd::new("echo")
                .arg("foo")
                .stdin(stdin)
                .stdout(Stdio::from_writer(out.clone()))
                .strategy(s)
                .run()
                .unwrap_or_else(|e| panic!("{s:?} {what}: {e:?}"));
            assert_eq!(text(out.take()), "foo\n", "{s:?} {what}");
            assert!(t.elapsed() < Duration::from_secs(10), "{s:?} {what}: slow");
        }
    }
}

/// A writer that always fails (Go's `badWriter`).
struct BadWriter;

impl Write for BadWriter {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::UnexpectedEof.into())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn copy_error_closes_pipe() {
    // TestClosePipeOnCopyError: `yes` into a failing writer must not get stuck.
    let _g = common::start("copy_error_closes_pipe", 60);
    for s in STRATEGIES {
        let t = Instant::now();
        let err = Cmd::new("yes")
            .stdout(Stdio::from_writer(BadWriter))
            .strategy(s)
            .run()
            .expect_err("yes completed successfully");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{s:?}: yes got stuck"
        );
        assert_eq!(err.kind(), ErrorKind::Io, "{s:?}: {err:?}");
    }
}

/// A writer that takes its time (a slow consumer).
#[derive(Clone, Default)]
struct SlowWriter(SharedVec);

impl Write for SlowWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_millis(5));
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn writer_gets_all_output_without_wait_delay() {
    // Go's Wait waits for the stdout/stderr copies to complete (no WaitDelay: without
    // limit). A slow writer makes the child exit with its last chunk still in the pipe.
    let _g = common::start("writer_gets_all_output_without_wait_delay", 60);
    const LEN: usize = 1 << 20;
    let mut failures = Vec::new();
    for s in STRATEGIES {
        let sink = SlowWriter::default();
        Cmd::new("head")
            .args(["-c", &LEN.to_string(), "/dev/zero"])
            .stdout(Stdio::from_writer(sink.clone()))
            .strategy(s)
            .run()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        let got = sink.0.take().len();
        if got != LEN {
            failures.push(format!("{s:?}: writer got {got} of {LEN} bytes"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------
// environment (TestDedupEnvEcho, Environ, TestImplicitPWD, TestExplicitPWD)
// ---------------------------------------------------------------------------------------

#[test]
fn env_dedup_last_wins() {
    let _g = common::start("env_dedup_last_wins", 60);
    for s in STRATEGIES {
        let mut cmd = Cmd::new("/usr/bin/env");
        cmd.env_clear().env("A", "1").env("A", "2").strategy(s);
        assert_eq!(cmd.environ().unwrap(), [OsString::from("A=2")], "{s:?}");
        let out = cmd.output().unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(text(out), "A=2\n", "{s:?}");

        // Inherited environment plus two settings of a key: one entry, the last.
        let out = Cmd::new("/usr/bin/env")
            .env("FORKEXEC_DEDUP", "bad")
            .env("FORKEXEC_DEDUP", "good")
            .strategy(s)
            .output()
            .unwrap();
        let hits: Vec<&str> = std::str::from_utf8(&out)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("FORKEXEC_DEDUP="))
            .collect();
        assert_eq!(hits, ["FORKEXEC_DEDUP=good"], "{s:?}");
    }
}

#[test]
fn environ_matches_child_env() {
    let _g = common::start("environ_matches_child_env", 60);
    type Setup = fn(&mut Cmd);
    let cases: [(&str, Setup); 5] = [
        ("inherited", |_| {}),
        ("changed", |c| {
            c.env("FORKEXEC_X", "1").env("FORKEXEC_Y", "a=b");
        }),
        ("cleared", |c| {
            c.env_clear().env("X", "1").env("Y", "2");
        }),
        ("cleared-empty", |c| {
            c.env_clear();
        }),
        ("with-dir", |c| {
            c.dir("/");
        }),
    ];
    for s in STRATEGIES {
        for (what, setup) in cases {
            let mut cmd = Cmd::new("/usr/bin/env");
            cmd.arg("-0").strategy(s);
            setup(&mut cmd);
            let want: BTreeSet<OsString> = cmd.environ().unwrap().into_iter().collect();
            let out = cmd
                .output()
                .unwrap_or_else(|e| panic!("{s:?} {what}: {e:?}"));
            assert_eq!(env_set(&out), want, "{s:?} {what}");
        }
    }
}

#[test]
fn env_remove_removes_inherited_var() {
    let _g = common::start("env_remove_removes_inherited_var", 60);
    assert!(
        std::env::var_os("PATH").is_some(),
        "the test needs PATH set"
    );
    for s in STRATEGIES {
        let mut cmd = Cmd::new("/usr/bin/env");
        cmd.arg("-0").env_remove("PATH").strategy(s);
        let environ = cmd.environ().unwrap();
        assert!(
            !environ.iter().any(|e| e.as_bytes().starts_with(b"PATH=")),
            "{s:?}: environ() still has PATH"
        );
        let got = env_set(&cmd.output().unwrap());
        assert!(
            !got.iter().any(|e| e.as_bytes().starts_with(b"PATH=")),
            "{s:?}: child still has PATH"
        );
        assert!(
            !got.is_empty(),
            "{s:?}: the rest of the environment is gone"
        );
        // Removing then setting again brings it back.
        let out = Cmd::new("/usr/bin/printenv")
            .arg("PATH")
            .env_remove("PATH")
            .env("PATH", "/again")
            .strategy(s)
            .output()
            .unwrap();
        assert_eq!(text(out), "/again\n", "{s:?}");
    }
}

#[test]
fn env_nul_and_bad_keys_refused() {
    // TestEnvNULCharacter and friends: refused by environ() and by start().
    let _g = common::start("env_nul_and_bad_keys_refused", 60);
    type Setup = fn(&mut Cmd);
    let cases: [(&str, Setup); 4] = [
        ("nul-value", |c| {
            c.env("A", "x\0y");
        }),
        ("eq-key", |c| {
            c.env("A=B", "1");
        }),
        ("empty-key", |c| {
            c.env("", "1");
        }),
        ("nul-key", |c| {
            c.env("A\0B", "1");
        }),
    ];
    for (what, setup) in cases {
        let mut cmd = Cmd::new("/usr/bin/env");
        setup(&mut cmd);
        let e = cmd.environ().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e:?}");
    }
}

#[test]
fn dir_sets_pwd_with_inherited_env() {
    let _g = common::start("dir_sets_pwd_with_inherited_env", 60);
    let tmp = TempDir::new("pwd");
    let d = tmp.path().to_str().unwrap().to_owned();
    for s in STRATEGIES {
        // printenv shows the variable as passed (a shell may rewrite its own PWD).
        let out = Cmd::new("printenv")
            .arg("PWD")
            .dir(tmp.path())
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(text(out), format!("{d}\n"), "{s:?}");
        let out = sh("echo \"$PWD\"; pwd -P")
            .dir(tmp.path())
            .strategy(s)
            .output()
            .unwrap();
        assert_eq!(text(out), format!("{d}\n{d}\n"), "{s:?}");
    }
}

#[test]
fn env_clear_with_dir_sets_no_pwd() {
    let _g = common::start("env_clear_with_dir_sets_no_pwd", 60);
    for s in STRATEGIES {
        let mut cmd = Cmd::new("/usr/bin/env");
        cmd.env_clear().dir("/tmp").strategy(s);
        assert!(cmd.environ().unwrap().is_empty(), "{s:?}");
        let out = cmd.output().unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(text(out), "", "{s:?}");
        // The directory is still applied.
        let out = Cmd::new("/bin/pwd")
            .env_clear()
            .dir("/tmp")
            .strategy(s)
            .output()
            .unwrap();
        assert_eq!(text(out), "/tmp\n", "{s:?}");
    }
}

#[test]
fn explicit_pwd_wins_over_dir() {
    // TestExplicitPWD: a PWD set on the command is passed as it is.
    let _g = common::start("explicit_pwd_wins_over_dir", 60);
    for s in STRATEGIES {
        let mut cmd = Cmd::new("printenv");
        cmd.arg("PWD").dir("/tmp").env("PWD", "/custom").strategy(s);
        let pwds: Vec<OsString> = cmd
            .environ()
            .unwrap()
            .into_iter()
            .filter(|e| e.as_bytes().starts_with(b"PWD="))
            .collect();
        assert_eq!(pwds, [OsString::from("PWD=/custom")], "{s:?}");
        assert_eq!(text(cmd.output().unwrap()), "/custom\n", "{s:?}");
    }
}

#[test]
fn implicit_pwd_is_clean_absolute_dir() {
    // TestImplicitPWD: with an inherited environment, PWD is Go's filepath.Abs(dir): absolute
    // *and cleaned* ("." and ".." resolved lexically), as POSIX requires of PWD.
    let _g = common::start("implicit_pwd_is_clean_absolute_dir", 60);
    let cwd = std::env::current_dir().unwrap();
    let parent = cwd.parent().unwrap().to_path_buf();
    let cases: [(&str, PathBuf, &Path); 4] = [
        ("dot", PathBuf::from("."), &cwd),
        ("dotdot", PathBuf::from(".."), &parent),
        ("abs", cwd.clone(), &cwd),
        ("abs-dotdot", cwd.join(".."), &parent),
    ];
    let mut failures = Vec::new();
    for (what, dir, want) in &cases {
        let mut cmd = Cmd::new("printenv");
        cmd.arg("PWD").dir(dir);
        let pwds: Vec<OsString> = cmd
            .environ()
            .unwrap()
            .into_iter()
            .filter(|e| e.as_bytes().starts_with(b"PWD="))
            .collect();
        let want_entry = {
            let mut e = OsString::from("PWD=");
            e.push(want.as_os_str());
            e
        };
        if pwds != [want_entry.clone()] {
            failures.push(format!(
                "{what}: environ() PWD {pwds:?}, want {want_entry:?}"
            ));
        }
        let out = text(cmd.output().unwrap());
        if out.trim_end() != want.to_str().unwrap() {
            failures.push(format!("{what}: child PWD {out:?}, want {want:?}"));
        }
    }
    // Regression (fixed): src/cmd.rs Cmd::child_env (line 560) sets PWD to `cwd.join(dir)` (or `dir`
    // as given when absolute) without cleaning it, so `.dir(".")` gives PWD=<cwd>/. and
    // `.dir(cwd + "/..")` gives PWD=<cwd>/.. where Go (filepath.Abs) gives the clean path.
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------
// dir and relative program paths (TestCommandRelativeName)
// ---------------------------------------------------------------------------------------

#[test]
fn relative_program_path_resolved_in_dir() {
    let _g = common::start("relative_program_path_resolved_in_dir", 60);
    let tmp = TempDir::new("relprog");
    tmp.script("script", "echo ran in $(pwd -P)");
    for s in STRATEGIES {
        let out = Cmd::new("./script")
            .dir(tmp.path())
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(
            text(out),
            format!("ran in {}\n", tmp.path().display()),
            "{s:?}"
        );
    }
    // Without the dir, "./script" does not exist here.
    let err = Cmd::new("./script").start().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    assert!(common::children().is_empty());
}

// ---------------------------------------------------------------------------------------
// ExtraFiles (TestExtraFiles, TestExtraFilesFDShuffle) and fd hygiene
// ---------------------------------------------------------------------------------------

#[test]
fn extra_files_become_fd_3_and_4() {
    let _g = common::start("extra_files_become_fd_3_and_4", 60);
    for s in STRATEGIES {
        let (r3, w3) = forkexec::raw::pipe().unwrap();
        let (r4, w4) = forkexec::raw::pipe().unwrap();
        let mut cmd = sh("echo three >&3; echo four >&4");
        cmd.extra_file(w3).extra_file(w4).strategy(s);
        cmd.run().unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        drop(cmd); // closes the write ends it holds
        let mut a = String::new();
        std::fs::File::from(r3).read_to_string(&mut a).unwrap();
        let mut b = String::new();
        std::fs::File::from(r4).read_to_string(&mut b).unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("three\n", "four\n"), "{s:?}");
    }
}

#[test]
fn extra_file_read_as_fd_3() {
    // TestExtraFiles: a file passed as fd 3 is read by the child.
    let _g = common::start("extra_file_read_as_fd_3", 60);
    let tmp = TempDir::new("read3");
    let p = tmp.file("data", "Hello, fd 3!", 0o644);
    for s in STRATEGIES {
        let out = sh("cat <&3")
            .extra_file(std::fs::File::open(&p).unwrap())
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(text(out), "Hello, fd 3!", "{s:?}");
    }
}

#[test]
fn child_sees_only_stdio_and_extra_files() {
    let _g = common::start("child_sees_only_stdio_and_extra_files", 60);
    // An fd of the parent without close-on-exec, above any the test harness uses.
    // SAFETY: F_DUPFD (not F_DUPFD_CLOEXEC) of fd 2, which is open; the new fd is owned below.
    let raw = unsafe { libc::fcntl(2, libc::F_DUPFD, 50) };
    assert!(raw >= 50, "F_DUPFD failed");
    // SAFETY: `raw` was just created and nothing else owns it.
    let leaky = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: F_GETFD on an open fd.
    assert_eq!(
        unsafe { libc::fcntl(raw, libc::F_GETFD) } & libc::FD_CLOEXEC,
        0
    );
    for s in STRATEGIES {
        let (_r3, w3) = forkexec::raw::pipe().unwrap();
        let (_r4, w4) = forkexec::raw::pipe().unwrap();
        let out = sh("ls /proc/$$/fd")
            .extra_file(w3)
            .extra_file(w4)
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(
            fd_list(&text(out)),
            BTreeSet::from([0, 1, 2, 3, 4]),
            "{s:?}"
        );

        // Without extra files: 0-2 only.
        let out = sh("ls /proc/$$/fd").strategy(s).output().unwrap();
        assert_eq!(fd_list(&text(out)), BTreeSet::from([0, 1, 2]), "{s:?}");

        // keep_other_fds: the fd without close-on-exec is visible.
        let out = sh("ls /proc/$$/fd")
            .keep_other_fds(true)
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?} keep_other_fds: {e:?}"));
        let fds = fd_list(&text(out));
        assert!(fds.contains(&raw), "{s:?}: fd {raw} not in {fds:?}");
        assert!(
            fds.is_superset(&BTreeSet::from([0, 1, 2])),
            "{s:?}: {fds:?}"
        );
    }
    drop(leaky);
}

#[test]
fn many_extra_files_shuffled() {
    // TestExtraFilesFDShuffle, with more fds than the inline fd tables hold: the write ends
    // are passed in reverse order of their numbers, so the child's targets overlap the
    // parent's numbers.
    let _g = common::start("many_extra_files_shuffled", 60);
    const N: usize = 20;
    for s in STRATEGIES {
        let mut reads = Vec::new();
        let mut writes = Vec::new();
        for _ in 0..N {
            let (r, w) = forkexec::raw::pipe().unwrap();
            reads.push(r);
            writes.push(w);
        }
        reads.reverse();
        let mut cmd = sh(&format!(
            // dash redirects single-digit fds only: write through /proc instead.
            "i=3; while [ $i -lt {} ]; do echo $i > /proc/$$/fd/$i; i=$((i+1)); done; ls /proc/$$/fd",
            N + 3
        ));
        for w in writes.into_iter().rev() {
            cmd.extra_file(w);
        }
        let out = cmd
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        drop(cmd);
        let want: BTreeSet<i32> = (0..(N as i32 + 3)).collect();
        assert_eq!(fd_list(&text(out)), want, "{s:?}");
        for (i, r) in reads.into_iter().enumerate() {
            let mut got = String::new();
            std::fs::File::from(r).read_to_string(&mut got).unwrap();
            assert_eq!(got, format!("{}\n", i + 3), "{s:?}: extra file {i}");
        }
    }
}

#[test]
fn failed_starts_leak_no_fds() {
    // TestPipeLookPathLeak: failing starts with every stdio piped leave no fd behind
    // (the guard compares the fd sets), both for a PATH miss and a failing execve.
    let _g = common::start("failed_starts_leak_no_fds", 60);
    for s in STRATEGIES {
        for prog in [
            "something-that-does-not-exist-executable",
            "/no-exist-executable",
        ] {
            for _ in 0..6 {
                let err = Cmd::new(prog)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .strategy(s)
                    .run()
                    .expect_err("unexpected success");
                assert_eq!(err.kind(), ErrorKind::NotFound, "{s:?} {prog}: {err:?}");
            }
        }
        let err = Cmd::new("/no-exist-executable")
            .strategy(s)
            .run()
            .unwrap_err();
        assert_eq!(err.stage(), Some(Stage::Exec), "{s:?}: {err:?}");
        assert_eq!(err.path(), Some(Path::new("/no-exist-executable")), "{s:?}");
        assert_eq!(
            err.to_string(),
            "fork/exec /no-exist-executable: no such file or directory",
            "{s:?}"
        );
        assert!(common::children().is_empty(), "{s:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Output, CombinedOutput, exit statuses (TestOutputStderrCapture, TestExitStatus, ...)
// ---------------------------------------------------------------------------------------

#[test]
fn output_error_carries_stderr() {
    let _g = common::start("output_error_carries_stderr", 60);
    for s in STRATEGIES {
        let err = sh("echo out; echo err >&2; exit 3")
            .strategy(s)
            .output()
            .expect_err("exit 3 succeeded");
        assert_eq!(err.kind(), ErrorKind::ExitStatus, "{s:?}: {err:?}");
        assert_eq!(err.stderr(), b"err\n", "{s:?}");
        assert_eq!(err.state().expect("state").exit_code(), 3, "{s:?}");
        assert_eq!(err.to_string(), "exit status 3", "{s:?}");

        // With stderr set by the caller, it is not captured.
        let sink = SharedVec::default();
        let err = sh("echo err >&2; exit 3")
            .stderr(Stdio::from_writer(sink.clone()))
            .strategy(s)
            .output()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExitStatus, "{s:?}");
        assert!(err.stderr().is_empty(), "{s:?}");
        assert_eq!(sink.take(), b"err\n", "{s:?}");

        // On success only stdout is returned.
        let out = sh("echo out; echo err >&2").strategy(s).output().unwrap();
        assert_eq!(text(out), "out\n", "{s:?}");
    }
}

#[test]
fn combined_output_keeps_write_order() {
    let _g = common::start("combined_output_keeps_write_order", 60);
    for s in STRATEGIES {
        let out = sh("echo 1; echo 2 >&2; echo 3; echo 4 >&2")
            .strategy(s)
            .combined_output()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(text(out), "1\n2\n3\n4\n", "{s:?}");

        // TestCatGoodAndBadFile: a failing cat is an ExitStatus error.
        let err = Cmd::new("cat")
            .arg("/bogus/file.foo")
            .strategy(s)
            .combined_output()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExitStatus, "{s:?}: {err:?}");
        assert_eq!(err.state().unwrap().exit_code(), 1, "{s:?}");
    }
}

#[test]
fn hundred_mib_on_stdout_and_stderr_at_once() {
    let _g = common::start("hundred_mib_on_stdout_and_stderr_at_once", 120);
    let script =
        format!("head -c {HUNDRED_MIB} /dev/zero & head -c {HUNDRED_MIB} /dev/zero >&2; wait");
    for s in [Strategy::PosixSpawn, Strategy::Auto] {
        let t = Instant::now();
        let out = sh(&script)
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(out.len(), HUNDRED_MIB, "{s:?}: stdout");
        assert!(out.iter().all(|&b| b == 0), "{s:?}");
        drop(out);
        // The same with a failing exit, to see the stderr captured alongside.
        let err = sh(&format!("{script}; exit 3"))
            .strategy(s)
            .output()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExitStatus, "{s:?}");
        // The error keeps Go's bound of it: the first and last 32 KiB, and how much was
        // left out (the whole stream was read, so the count is exact).
        let marker = format!("\n... omitting {} bytes ...\n", HUNDRED_MIB - 65536);
        assert_eq!(err.stderr().len(), 65536 + marker.len(), "{s:?}: stderr");
        assert_eq!(
            &err.stderr()[32768..32768 + marker.len()],
            marker.as_bytes()
        );
        eprintln!("{s:?}: 2 x 200 MiB in {:?}", t.elapsed());
    }
}

#[test]
fn run_and_status_report_exit_codes() {
    // TestExitStatus, TestExitCode, TestNoExistExecutable.
    let _g = common::start("run_and_status_report_exit_codes", 60);
    for s in STRATEGIES {
        let err = sh("exit 42").strategy(s).run().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExitStatus, "{s:?}");
        assert_eq!(err.to_string(), "exit status 42", "{s:?}");
        assert_eq!(err.state().unwrap().exit_code(), 42, "{s:?}");
        assert!(err.state().unwrap().exited(), "{s:?}");

        for code in [0, 1, 42, 255] {
            let st = sh(&format!("exit {code}"))
                .strategy(s)
                .status()
                .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
            assert_eq!(st.exit_code(), code, "{s:?}");
            assert_eq!(st.success(), code == 0, "{s:?}");
            assert_eq!(st.to_string(), format!("exit status {code}"), "{s:?}");
        }
        Cmd::new("true").strategy(s).run().unwrap();
        let err = Cmd::new("false").strategy(s).run().unwrap_err();
        assert_eq!(err.state().unwrap().exit_code(), 1, "{s:?}");

        let err = Cmd::new("/no-exist-executable")
            .strategy(s)
            .run()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{s:?}");
        assert!(err.state().is_none(), "{s:?}");
    }
}

#[test]
fn killed_by_signal() {
    let _g = common::start("killed_by_signal", 60);
    for s in STRATEGIES {
        let err = sh("kill -KILL $$").strategy(s).run().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExitStatus, "{s:?}");
        let st = err.state().unwrap();
        assert_eq!(st.signal(), Some(Signal::KILL), "{s:?}");
        assert_eq!(st.exit_code(), -1, "{s:?}");
        assert!(!st.exited() && !st.success(), "{s:?}");
        assert_eq!(err.to_string(), "signal: killed", "{s:?}");
        assert_eq!(st.to_string(), "signal: killed", "{s:?}");
        // status() is Ok whatever the end.
        let st = sh("kill -TERM $$").strategy(s).status().unwrap();
        assert_eq!(st.signal(), Some(Signal::TERM), "{s:?}");
        assert_eq!(st.to_string(), "signal: terminated", "{s:?}");
    }
}

// ---------------------------------------------------------------------------------------
// timeouts and WaitDelay (TestContext, TestWaitInterrupt, TestWaitDelay)
// ---------------------------------------------------------------------------------------

#[test]
fn timeout_kills_child() {
    let _g = common::start("timeout_kills_child", 60);
    for s in STRATEGIES {
        let t = Instant::now();
        let err = Cmd::new("sleep")
            .arg("30")
            .timeout(Duration::from_millis(100))
            .strategy(s)
            .status()
            .unwrap_err();
        let took = t.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}: {err:?}");
        assert_eq!(err.state().unwrap().signal(), Some(Signal::KILL), "{s:?}");
        assert!(took >= Duration::from_millis(100), "{s:?}: {took:?}");
        assert!(
            took < Duration::from_secs(10),
            "{s:?}: hang guard: {took:?}"
        );

        // The same through output() (the poll loop cancels).
        let t = Instant::now();
        let err = sh("echo started; exec sleep 30")
            .timeout(Duration::from_millis(100))
            .strategy(s)
            .output()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}: {err:?}");
        assert_eq!(err.state().unwrap().signal(), Some(Signal::KILL), "{s:?}");
        assert!(t.elapsed() < Duration::from_secs(10), "{s:?}: hang guard");

        // A child that finishes in time is not affected.
        let out = Cmd::new("echo")
            .arg("quick")
            .timeout(Duration::from_secs(30))
            .strategy(s)
            .output()
            .unwrap();
        assert_eq!(text(out), "quick\n", "{s:?}");
    }
}

#[test]
fn timeout_with_cancel_signal() {
    let _g = common::start("timeout_with_cancel_signal", 60);
    for s in STRATEGIES {
        let t = Instant::now();
        let err = Cmd::new("sleep")
            .arg("30")
            .timeout(Duration::from_millis(100))
            .cancel_signal(Signal::TERM)
            .strategy(s)
            .status()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}: {err:?}");
        assert_eq!(err.state().unwrap().signal(), Some(Signal::TERM), "{s:?}");
        assert!(t.elapsed() < Duration::from_secs(10), "{s:?}: hang guard");

        // A child ignoring the cancel signal is killed once the wait delay passes.
        let t = Instant::now();
        let err = sh("trap '' TERM; exec sleep 30")
            .timeout(Duration::from_millis(300))
            .cancel_signal(Signal::TERM)
            .wait_delay(Duration::from_millis(200))
            .strategy(s)
            .status()
            .unwrap_err();
        let took = t.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}: {err:?}");
        assert_eq!(err.state().unwrap().signal(), Some(Signal::KILL), "{s:?}");
        assert!(took >= Duration::from_millis(500), "{s:?}: {took:?}");
        assert!(
            took < Duration::from_secs(10),
            "{s:?}: hang guard: {took:?}"
        );
    }
}

#[test]
fn wait_delay_with_grandchild_holding_output() {
    let _g = common::start("wait_delay_with_grandchild_holding_output", 60);
    for s in STRATEGIES {
        // The grandchild `sleep 2` keeps stdout and stderr open after sh exits; it is not
        // our child and ends on its own.
        let t = Instant::now();
        let err = sh("sleep 2 & echo done")
            .wait_delay(Duration::from_millis(200))
            .strategy(s)
            .output()
            .unwrap_err();
        let took = t.elapsed();
        assert_eq!(err.kind(), ErrorKind::WaitDelay, "{s:?}: {err:?}");
        assert!(err.state().unwrap().success(), "{s:?}");
        assert!(
            took < Duration::from_millis(1800),
            "{s:?}: waited for the grandchild: {took:?}"
        );

        // With a writer stdout, through start() + wait().
        let sink = SharedVec::default();
        let t = Instant::now();
        let mut child = sh("sleep 2 & echo done")
            .stdout(Stdio::from_writer(sink.clone()))
            .wait_delay(Duration::from_millis(200))
            .strategy(s)
            .start()
            .unwrap();
        let err = child.wait().unwrap_err();
        let took = t.elapsed();
        assert_eq!(err.kind(), ErrorKind::WaitDelay, "{s:?}: {err:?}");
        assert!(err.state().unwrap().success(), "{s:?}");
        assert!(
            took < Duration::from_millis(1800),
            "{s:?}: waited for the grandchild: {took:?}"
        );
        assert_eq!(text(sink.take()), "done\n", "{s:?}");

        // A failing child reports its exit status in preference to the wait delay.
        let err = sh("sleep 2 & exit 3")
            .wait_delay(Duration::from_millis(200))
            .strategy(s)
            .output()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExitStatus, "{s:?}: {err:?}");
        assert_eq!(err.state().unwrap().exit_code(), 3, "{s:?}");

        // Without a grandchild, the wait delay changes nothing.
        let out = sh("echo plain")
            .wait_delay(Duration::from_millis(200))
            .strategy(s)
            .output()
            .unwrap();
        assert_eq!(text(out), "plain\n", "{s:?}");
    }
}

// ---------------------------------------------------------------------------------------
// reuse, argv, LookPath
// ---------------------------------------------------------------------------------------

#[test]
fn repeated_start_gives_same_output() {
    let _g = common::start("repeated_start_gives_same_output", 60);
    for s in STRATEGIES {
        let mut cmd = sh("echo \"$GREETING\" \"$#\"");
        cmd.arg("zero").arg("one").env("GREETING", "hi").strategy(s);
        for i in 0..3 {
            let out = cmd.output().unwrap_or_else(|e| panic!("{s:?} #{i}: {e:?}"));
            assert_eq!(text(out), "hi 1\n", "{s:?} #{i}");
        }
        let mut pids = BTreeSet::new();
        for _ in 0..3 {
            let mut child = cmd.start().unwrap();
            pids.insert(child.pid());
            assert!(child.wait().unwrap().success(), "{s:?}");
        }
        assert_eq!(pids.len(), 3, "{s:?}");
        // A builder change after starts is applied to the next start.
        cmd.env("GREETING", "changed");
        assert_eq!(text(cmd.output().unwrap()), "changed 1\n", "{s:?}");
    }
}

#[test]
fn arg0_and_args() {
    let _g = common::start("arg0_and_args", 60);
    for s in STRATEGIES {
        let mut cmd = Cmd::new("sh");
        cmd.arg0("my-sh")
            .args(["-c", "cat /proc/$$/cmdline", "x"])
            .strategy(s);
        assert_eq!(
            cmd.get_argv(),
            ["my-sh", "-c", "cat /proc/$$/cmdline", "x"].map(OsStr::new)
        );
        assert_eq!(
            cmd.get_args().collect::<Vec<_>>(),
            ["-c", "cat /proc/$$/cmdline", "x"].map(OsStr::new)
        );
        assert_eq!(cmd.get_program(), "sh");
        let out = cmd.output().unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(out, b"my-sh\0-c\0cat /proc/$$/cmdline\0x\0", "{s:?}");
    }
}

#[test]
fn lookpath_resolves_through_path() {
    let _g = common::start("lookpath_resolves_through_path", 60);
    let p = Cmd::new("sh").resolved_path().unwrap().to_path_buf();
    assert!(p.is_absolute(), "{p:?}");
    assert!(p.ends_with("sh"), "{p:?}");
    assert_eq!(p, forkexec::look_path("sh").unwrap());
    for s in STRATEGIES {
        let out = sh("echo via path").strategy(s).output().unwrap();
        assert_eq!(text(out), "via path\n", "{s:?}");
    }
}

#[test]
fn lookpath_not_found_message() {
    let _g = common::start("lookpath_not_found_message", 60);
    for s in STRATEGIES {
        let mut cmd = Cmd::new("nonexistent-prog-xyz");
        cmd.stdout(Stdio::piped()).strategy(s);
        let err = cmd.start().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{s:?}");
        assert_eq!(
            err.to_string(),
            r#"exec: "nonexistent-prog-xyz": executable file not found in $PATH"#,
            "{s:?}"
        );
        assert_eq!(cmd.resolved_path().unwrap_err().kind(), ErrorKind::NotFound);
        // output() refuses a command whose stdout is set (Go: "exec: Stdout already set").
        assert_eq!(cmd.output().unwrap_err().kind(), ErrorKind::InvalidInput);
        let err = Cmd::new("nonexistent-prog-xyz")
            .strategy(s)
            .output()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(common::children().is_empty(), "{s:?}");
    }
}

#[test]
fn lookpath_uses_path_set_on_command() {
    let _g = common::start("lookpath_uses_path_set_on_command", 60);
    let tmp = TempDir::new("cmdpath");
    let prog = tmp.script("myprog", "echo myprog ran");
    // Not on the parent's PATH.
    let err = Cmd::new("myprog").start().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    for s in STRATEGIES {
        let mut cmd = Cmd::new("myprog");
        cmd.env("PATH", tmp.path()).strategy(s);
        assert_eq!(cmd.resolved_path().unwrap(), prog, "{s:?}");
        assert_eq!(text(cmd.output().unwrap()), "myprog ran\n", "{s:?}");
        // The parent's PATH is ignored once the command sets one.
        let mut cmd = Cmd::new("sh");
        cmd.env("PATH", tmp.path()).strategy(s);
        assert_eq!(
            cmd.start().unwrap_err().kind(),
            ErrorKind::NotFound,
            "{s:?}"
        );
    }
}

#[test]
fn lookpath_relative_path_entry_is_dot() {
    let _g = common::start("lookpath_relative_path_entry_is_dot", 60);
    let tmp = TempDir::new("dot");
    tmp.script("myprog", "echo dot ran");
    let rel = relative_from_cwd(tmp.path());
    assert!(rel.is_relative());
    for s in STRATEGIES {
        let mut cmd = Cmd::new("myprog");
        cmd.env("PATH", &rel).strategy(s);
        let err = cmd.start().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dot, "{s:?}: {err:?}");
        assert_eq!(err.path(), Some(rel.join("myprog").as_path()), "{s:?}");
        assert_eq!(
            err.to_string(),
            r#"exec: "myprog": cannot run executable found relative to current directory"#
        );
        assert!(common::children().is_empty(), "{s:?}");
        cmd.allow_dot(true);
        assert_eq!(cmd.resolved_path().unwrap(), rel.join("myprog"), "{s:?}");
        let out = cmd.output().unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(text(out), "dot ran\n", "{s:?}");
    }
}

// ---------------------------------------------------------------------------------------
// bad input, missing directory, non-executable program
// ---------------------------------------------------------------------------------------

#[test]
fn bad_input_refused_before_fork() {
    let _g = common::start("bad_input_refused_before_fork", 60);
    type Make = fn() -> Cmd;
    let cases: [(&str, Make); 9] = [
        ("nul in program", || Cmd::new("a\0b")),
        ("nul in program path", || Cmd::new("/bin/a\0b")),
        ("nul in arg", || {
            let mut c = Cmd::new("/bin/echo");
            c.arg("x\0y");
            c
        }),
        ("nul in arg0", || {
            let mut c = Cmd::new("/bin/echo");
            c.arg0("e\0cho");
            c
        }),
        ("= in env key", || {
            let mut c = Cmd::new("/bin/echo");
            c.env("A=B", "1");
            c
        }),
        ("empty env key", || {
            let mut c = Cmd::new("/bin/echo");
            c.env("", "1");
            c
        }),
        ("nul in env value", || {
            let mut c = Cmd::new("/bin/echo");
            c.env("A", "x\0y");
            c
        }),
        ("empty program", || Cmd::new("")),
        ("nul in dir", || {
            let mut c = Cmd::new("/bin/echo");
            c.dir("/tm\0p");
            c
        }),
    ];
    for s in STRATEGIES {
        for (what, make) in cases {
            for call in ["start", "output", "run"] {
                let mut cmd = make();
                cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).strategy(s);
                let err = match call {
                    "start" => cmd.start().map(|_| ()).unwrap_err(),
                    "output" => cmd.output().map(|_| ()).unwrap_err(),
                    _ => cmd.run().unwrap_err(),
                };
                assert_eq!(
                    err.kind(),
                    ErrorKind::InvalidInput,
                    "{s:?} {what} {call}: {err:?}"
                );
                assert!(common::children().is_empty(), "{s:?} {what}: a child");
            }
        }
    }
}

#[test]
fn missing_dir_is_chdir_not_found() {
    let _g = common::start("missing_dir_is_chdir_not_found", 60);
    for s in STRATEGIES {
        let err = Cmd::new("/bin/true")
            .dir("/no/such/dir")
            .strategy(s)
            .run()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{s:?}: {err:?}");
        assert_eq!(err.stage(), Some(Stage::Chdir), "{s:?}");
        assert_eq!(err.path(), Some(Path::new("/no/such/dir")), "{s:?}");
        assert_eq!(
            err.to_string(),
            "chdir /no/such/dir: no such file or directory"
        );

        // A file as the directory.
        let err = Cmd::new("/bin/true")
            .dir("/etc/passwd")
            .strategy(s)
            .run()
            .unwrap_err();
        assert_eq!(err.stage(), Some(Stage::Chdir), "{s:?}: {err:?}");
        assert_eq!(err.errno(), Some(libc::ENOTDIR), "{s:?}");
        assert!(common::children().is_empty(), "{s:?}");
    }
}

#[test]
fn non_executable_program_is_permission_denied() {
    let _g = common::start("non_executable_program_is_permission_denied", 60);
    let tmp = TempDir::new("noexec");
    let p = tmp.file("plain", "#!/bin/sh\necho should not run\n", 0o644);
    for s in STRATEGIES {
        for prog in [p.as_path(), tmp.path()] {
            let err = Cmd::new(prog)
                .stdout(Stdio::piped())
                .strategy(s)
                .start()
                .unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::PermissionDenied,
                "{s:?} {prog:?}: {err:?}"
            );
            assert_eq!(err.path(), Some(prog), "{s:?}");
            assert!(common::children().is_empty(), "{s:?}: child not reaped");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Child: kill, double wait
// ---------------------------------------------------------------------------------------

#[test]
fn child_kill_then_wait_twice() {
    let _g = common::start("child_kill_then_wait_twice", 60);
    for s in STRATEGIES {
        let mut child = Cmd::new("sleep")
            .arg("30")
            .strategy(s)
            .start()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert!(child.process().try_wait().unwrap().is_none(), "{s:?}");
        child.kill().unwrap();
        let st = child.wait().unwrap();
        assert_eq!(st.to_string(), "signal: killed", "{s:?}");
        assert_eq!(st.pid(), child.pid(), "{s:?}");
        let err = child.wait().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProcessDone, "{s:?}: {err:?}");
        assert_eq!(
            child.kill().unwrap_err().kind(),
            ErrorKind::ProcessDone,
            "{s:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// SysProcAttr through Cmd
// ---------------------------------------------------------------------------------------

/// Runs `script` and returns its lines.
fn lines_of(cmd: &mut Cmd, s: Strategy) -> Vec<String> {
    let out = cmd
        .strategy(s)
        .output()
        .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
    text(out).lines().map(str::to_owned).collect()
}

#[test]
fn setsid_and_process_group() {
    let _g = common::start("setsid_and_process_group", 60);
    // /proc/PID/stat: field 5 is the process group, field 6 the session ("(sh)" has no space).
    let script = r#"echo $$; cut -d" " -f5,6 /proc/$$/stat"#;
    // SAFETY: plain queries of this process.
    let (my_pgid, my_sid) = unsafe { (libc::getpgrp(), libc::getsid(0)) };
    for s in STRATEGIES {
        let l = lines_of(sh(script).setsid(), s);
        assert_eq!(
            l[1],
            format!("{0} {0}", l[0]),
            "{s:?}: setsid: pgid and sid == pid"
        );

        let l = lines_of(sh(script).process_group(0), s);
        assert_eq!(
            l[1],
            format!("{} {my_sid}", l[0]),
            "{s:?}: process_group(0)"
        );

        let l = lines_of(&mut sh(script), s);
        assert_eq!(l[1], format!("{my_pgid} {my_sid}"), "{s:?}: default");
    }
}

#[test]
fn linux_attrs_unsupported_by_posix_spawn() {
    let _g = common::start("linux_attrs_unsupported_by_posix_spawn", 60);
    type Setup = fn(&mut Cmd);
    let cases: [(&str, Setup); 3] = [
        ("pdeathsig", |c| {
            c.pdeathsig(Signal::TERM);
        }),
        ("chroot", |c| {
            c.chroot("/");
        }),
        ("credential", |c| {
            // SAFETY: plain queries of this process.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            c.credential(uid, gid, []);
        }),
    ];
    for (what, setup) in cases {
        for s in STRATEGIES {
            let mut cmd = Cmd::new("echo");
            cmd.arg("ok");
            setup(&mut cmd);
            if s == Strategy::PosixSpawn {
                let err = cmd.strategy(s).start().unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Unsupported, "{what}: {err:?}");
                assert!(common::children().is_empty(), "{what}: a child");
            } else {
                assert_eq!(lines_of(&mut cmd, s), ["ok"], "{s:?} {what}");
            }
        }
    }
}

#[test]
fn credential_switches_user() {
    let _g = common::start("credential_switches_user", 60);
    // SAFETY: plain query of this process.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping credential_switches_user: not running as root");
        return;
    }
    for s in STRATEGIES {
        let mut cmd = sh("id -u; id -g; id -G");
        cmd.credential(65534, 65534, []);
        if s == Strategy::PosixSpawn {
            let err = cmd.strategy(s).start().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{err:?}");
            continue;
        }
        assert_eq!(lines_of(&mut cmd, s), ["65534", "65534", "65534"], "{s:?}");
    }
}

#[test]
fn chroot_root_and_pdeathsig_run() {
    let _g = common::start("chroot_root_and_pdeathsig_run", 60);
    for s in STRATEGIES {
        if s == Strategy::PosixSpawn {
            continue; // refused: see linux_attrs_unsupported_by_posix_spawn
        }
        let l = lines_of(sh("pwd -P; echo in chroot").chroot("/").dir("/tmp"), s);
        assert_eq!(l, ["/tmp", "in chroot"], "{s:?}");
        let l = lines_of(sh("echo with pdeathsig").pdeathsig(Signal::TERM), s);
        assert_eq!(l, ["with pdeathsig"], "{s:?}");
    }
}

#[test]
fn chroot_then_dir_inside_new_root() {
    // The directory is entered after the chroot (Go: Chroot, then Dir), so it names a path
    // inside the new root. A static program (glibc's ldconfig is static-pie) runs there.
    let _g = common::start("chroot_then_dir_inside_new_root", 60);
    let root = TempDir::new("chroot");
    std::fs::create_dir(root.path().join("inner")).unwrap();
    if std::fs::copy("/sbin/ldconfig", root.path().join("prog")).is_err() {
        eprintln!("skipping chroot_then_dir_inside_new_root: no /sbin/ldconfig to copy");
        return;
    }
    let mut failures = Vec::new();
    for s in STRATEGIES {
        if s == Strategy::PosixSpawn {
            continue; // chroot is refused there: see linux_attrs_unsupported_by_posix_spawn
        }
        // Control: the static program runs in the new root.
        let out = Cmd::new("/prog")
            .arg("--version")
            .chroot(root.path())
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: control: {e:?}"));
        assert!(text(out).starts_with("ldconfig"), "{s:?}");
        // "/inner" exists only inside the new root.
        match Cmd::new("/prog")
            .arg("--version")
            .chroot(root.path())
            .dir("/inner")
            .strategy(s)
            .output()
        {
            Ok(out) => assert!(text(out).starts_with("ldconfig"), "{s:?}"),
            Err(e) => failures.push(format!("{s:?}: {e:?}")),
        }
    }
    // Regression (fixed): src/cmd.rs Cmd::build (lines 622-630) stats the directory in the parent, outside
    // the chroot, and fails with NotFound at Stage::Chdir before any fork, although the child
    // applies chroot before chdir (as documented on Cmd::chroot) and "/inner" exists there.
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Runs `f` on a thread; if it has not finished after `secs`, SIGKILLs this process's
/// children (to unblock it) and returns `None` — the call hung.
fn with_hang_guard<T: Send + 'static>(
    secs: u64,
    f: impl FnOnce() -> T + Send + 'static,
) -> (Option<T>, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Instant::now();
    let h = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    let finished = rx.recv_timeout(Duration::from_secs(secs)).is_ok();
    let took = t.elapsed();
    if !finished {
        for pid in common::children() {
            // SAFETY: signalling our own child (it is not reaped until the hung call ends).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let r = h.join().expect("guarded call panicked");
    (finished.then_some(r), took)
}

#[test]
fn output_with_piped_stdin_does_not_hang() {
    // output() and combined_output() give the caller no access to a piped stdin, so the
    // child must see EOF on it (std's Command::output closes it before reading).
    let _g = common::start("output_with_piped_stdin_does_not_hang", 60);
    let mut failures = Vec::new();
    for s in STRATEGIES {
        for call in ["output", "combined_output"] {
            let (r, took) = with_hang_guard(1, move || {
                let mut cmd = Cmd::new("cat");
                cmd.stdin(Stdio::piped()).strategy(s);
                if call == "output" {
                    cmd.output()
                } else {
                    cmd.combined_output()
                }
            });
            match r {
                Some(Ok(out)) => assert!(out.is_empty(), "{s:?} {call}"),
                Some(Err(e)) => failures.push(format!("{s:?} {call}: {e:?}")),
                None => failures.push(format!("{s:?} {call}: hung ({took:?}); child killed")),
            }
        }
    }
    // Regression (fixed): src/cmd.rs Cmd::output (line 804) and Cmd::combined_output (line 835) keep the
    // Child's stdin pipe (child.stdin) open while draining and waiting, so a child reading
    // stdin (cat) never sees EOF: both calls hang forever. Child::wait drops it first (line
    // 956); output/combined_output should too.
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn wait_delay_bounds_a_blocked_stdin_reader() {
    // Go: after WaitDelay, Wait closes the pipes and returns ErrWaitDelay even when an I/O
    // goroutine is stuck in the caller's Reader (the goroutine is left behind).
    let _g = common::start("wait_delay_bounds_a_blocked_stdin_reader", 60);
    let mut failures = Vec::new();
    for s in STRATEGIES {
        // A reader that blocks until the test drops the write end.
        let (r, w) = forkexec::raw::pipe().unwrap();
        let mut child = Cmd::new("true")
            .stdin(Stdio::from_reader(std::fs::File::from(r)))
            .wait_delay(Duration::from_millis(200))
            .strategy(s)
            .start()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        let (tx, rx) = std::sync::mpsc::channel();
        let t = Instant::now();
        let h = std::thread::spawn(move || {
            let res = child.wait();
            let _ = tx.send(());
            res
        });
        let finished = rx.recv_timeout(Duration::from_secs(2)).is_ok();
        let took = t.elapsed();
        drop(w); // unblocks the reader whatever happened
        let res = h.join().unwrap();
        if !finished {
            failures.push(format!(
                "{s:?}: wait hung ({took:?}) until the reader returned"
            ));
            continue;
        }
        match res {
            Err(e) if e.kind() == ErrorKind::WaitDelay => {}
            other => failures.push(format!("{s:?}: {other:?}")),
        }
    }
    // Regression (fixed): src/cmd.rs Copiers::finish (line 1140): after the wait delay expires it drops
    // the cancel pipe (line 1156), then joins every copy thread (line 1159); a thread blocked
    // in the caller's Read never sees the cancel, so Child::wait blocks until the reader
    // returns (forever for a reader that never does) instead of returning WaitDelay.
    assert!(failures.is_empty(), "{failures:#?}");
    // The copy threads left behind end now that their readers returned; their pipe ends
    // close with them. Wait for that before the guard counts fds.
    let copying = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .any(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "forkexec-copy")
            })
    };
    let t = Instant::now();
    while copying() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn pipeline_through_child_stdout() {
    // Go: c2.Stdin, _ = c1.StdoutPipe(): one child's stdout pipe as another's stdin.
    let _g = common::start("pipeline_through_child_stdout", 60);
    for s in STRATEGIES {
        let mut first = Cmd::new("echo")
            .arg("hello pipeline")
            .stdout(Stdio::piped())
            .strategy(s)
            .start()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        let out = Cmd::new("tr")
            .args(["a-z", "A-Z"])
            .stdin(first.stdout.take().unwrap())
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert!(first.wait().unwrap().success(), "{s:?}");
        assert_eq!(text(out), "HELLO PIPELINE\n", "{s:?}");
    }
}

#[test]
fn env_clear_drops_earlier_changes() {
    let _g = common::start("env_clear_drops_earlier_changes", 60);
    for s in STRATEGIES {
        let mut cmd = Cmd::new("/usr/bin/env");
        cmd.env("BEFORE", "1")
            .env_clear()
            .env("AFTER", "2")
            .strategy(s);
        assert_eq!(cmd.environ().unwrap(), [OsString::from("AFTER=2")], "{s:?}");
        assert_eq!(text(cmd.output().unwrap()), "AFTER=2\n", "{s:?}");
    }
}

#[test]
fn timeout_with_wait_delay_and_grandchild() {
    // TestWaitInterrupt (WaitDelay): a cancelled child whose grandchild holds the output
    // pipes returns after the wait delay, with the Timeout error.
    let _g = common::start("timeout_with_wait_delay_and_grandchild", 60);
    for s in STRATEGIES {
        let t = Instant::now();
        let err = sh("sleep 3 & exec sleep 30")
            .timeout(Duration::from_millis(100))
            .wait_delay(Duration::from_millis(200))
            .strategy(s)
            .output()
            .unwrap_err();
        let took = t.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}: {err:?}");
        assert_eq!(err.state().unwrap().signal(), Some(Signal::KILL), "{s:?}");
        assert!(
            took < Duration::from_millis(2500),
            "{s:?}: waited for the grandchild: {took:?}"
        );
    }
}

#[test]
fn timeout_applies_while_nobody_waits() {
    let _g = common::start("timeout_applies_while_nobody_waits", 60);
    // Go's CommandContext kills the child at the deadline even while the caller is busy
    // reading its output instead of waiting: the read must end, then wait reports it.
    for s in STRATEGIES {
        let t0 = Instant::now();
        let mut child = sh("echo started; exec sleep 30")
            .stdout(Stdio::piped())
            .timeout(Duration::from_millis(200))
            .strategy(s)
            .start()
            .unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "started\n", "{s:?}");
        let err = child.wait().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}: {err}");
        assert_eq!(err.state().unwrap().signal(), Some(Signal::KILL), "{s:?}");
        assert!(t0.elapsed() < Duration::from_secs(10), "{s:?}: hang guard");
    }
}

// ---------------------------------------------------------------------------------------
// the status() fast path: the fd plan kept between starts, no pidfd
// ---------------------------------------------------------------------------------------

/// A pipe's read end and a `Stdio` on its write end.
fn pipe_stdio() -> (std::fs::File, Stdio) {
    let (r, w) = forkexec::raw::pipe().unwrap();
    (std::fs::File::from(r), Stdio::from(w))
}

fn read_all(mut f: std::fs::File) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn status_follows_stdio_and_extra_files_changed_between_starts() {
    let _g = common::start(
        "status_follows_stdio_and_extra_files_changed_between_starts",
        60,
    );
    for s in STRATEGIES {
        let mut cmd = Cmd::new("sh");
        cmd.args([
            "-c",
            "echo out; if [ -e /proc/self/fd/3 ]; then echo three >&3; fi",
        ])
        .strategy(s);
        let (r1, w1) = pipe_stdio();
        cmd.stdout(w1);
        assert!(cmd.status().unwrap().success(), "{s:?}");
        assert!(cmd.status().unwrap().success(), "{s:?}");
        // A new stdout: the kept fd plan must not send the output to the old pipe.
        let (r2, w2) = pipe_stdio();
        cmd.stdout(w2);
        assert!(cmd.status().unwrap().success(), "{s:?}");
        // An extra file added after starts: the child sees it as fd 3.
        let (r3, w3) = forkexec::raw::pipe().unwrap();
        cmd.extra_file(w3);
        assert!(cmd.status().unwrap().success(), "{s:?}");
        // A clone shares the fds; changing its stdout leaves the original alone.
        let mut copy = cmd.clone();
        let (r4, w4) = pipe_stdio();
        copy.stdout(w4);
        assert!(copy.status().unwrap().success(), "{s:?}");
        assert!(cmd.status().unwrap().success(), "{s:?}");
        drop((cmd, copy));
        assert_eq!(read_all(r1), "out\nout\n", "{s:?}: first stdout");
        assert_eq!(read_all(r2), "out\nout\nout\n", "{s:?}: second stdout");
        assert_eq!(
            read_all(std::fs::File::from(r3)),
            "three\nthree\nthree\n",
            "{s:?}: extra file"
        );
        assert_eq!(read_all(r4), "out\n", "{s:?}: the clone's stdout");
    }
}

#[test]
fn started_children_have_a_pidfd_on_every_strategy() {
    let _g = common::start("started_children_have_a_pidfd_on_every_strategy", 60);
    for s in STRATEGIES {
        let mut child = Cmd::new("true").strategy(s).start().unwrap();
        assert!(
            child.process().pidfd().is_some(),
            "{s:?}: no pidfd on kernel 6.x"
        );
        assert!(child.wait().unwrap().success(), "{s:?}");
        // After a status() (which needs none), a start still gets one.
        let mut cmd = Cmd::new("true");
        cmd.strategy(s);
        assert!(cmd.status().unwrap().success(), "{s:?}");
        let mut child = cmd.start().unwrap();
        assert!(child.process().pidfd().is_some(), "{s:?}");
        assert!(child.wait().unwrap().success(), "{s:?}");
    }
}

// ---------------------------------------------------------------------------------------
// bounds, the null device, PWD (issue 11)
// ---------------------------------------------------------------------------------------

/// Regression (issue 11): `output()`'s error kept the whole stderr of a failing child. It
/// now keeps Go's bound: the first and last 32 KiB with a marker of what was left out.
#[test]
fn error_stderr_is_bounded_like_go() {
    let _g = common::start("error_stderr_is_bounded_like_go", 60);
    let body = 5_000_000;
    let script = format!(
        "{{ printf START; head -c {body} /dev/zero | tr '\\0' x; printf END; }} >&2; exit 1"
    );
    for s in STRATEGIES {
        let err = sh(&script).strategy(s).output().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExitStatus, "{s:?}");
        let e = err.stderr();
        let total = body + 8;
        let marker = format!("\n... omitting {} bytes ...\n", total - 65536);
        assert_eq!(e.len(), 65536 + marker.len(), "{s:?}");
        assert!(
            e.starts_with(b"STARTxxx") && e.ends_with(b"xxxEND"),
            "{s:?}"
        );
        assert_eq!(&e[32768..32768 + marker.len()], marker.as_bytes(), "{s:?}");
        // Short output is kept whole.
        let err = sh("echo short >&2; exit 1")
            .strategy(s)
            .output()
            .unwrap_err();
        assert_eq!(err.stderr(), b"short\n");
    }
}

/// `output_limit` caps what `output()` and `combined_output()` collect: a child that writes
/// more is killed and the call says so; one that stays under it is unaffected.
#[test]
fn output_limit_caps_collection() {
    let _g = common::start("output_limit_caps_collection", 60);
    for s in STRATEGIES {
        let err = Cmd::new("yes")
            .output_limit(100_000)
            .strategy(s)
            .output()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutputLimit, "{s:?}: {err}");
        assert_eq!(err.state().and_then(|st| st.signal()), Some(Signal::KILL));
        let err = sh("yes >&2")
            .output_limit(100_000)
            .strategy(s)
            .combined_output()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutputLimit, "{s:?}: {err}");
        let out = sh("head -c 100000 /dev/zero")
            .output_limit(100_000)
            .strategy(s)
            .output()
            .unwrap();
        assert_eq!(out.len(), 100_000);
    }
}

/// Regression (issue 11): the null device the crate opens once per process landed on fd 0
/// when the application had closed it; once the application restored its stdin, "null"
/// children got the real stdin. Runs in its own process (it closes fd 0).
#[test]
fn null_device_never_lands_on_stdio() {
    if common::is_helper("null_device_never_lands_on_stdio") {
        // Before any other use of the crate in this process: close fd 0, spawn (the null
        // device is opened now), restore fd 0.
        // SAFETY: plain fd calls on fds this test owns.
        let saved = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 10) };
        assert!(saved >= 10);
        // SAFETY: as above.
        unsafe { libc::close(0) };
        Cmd::new("true").status().unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::dup2(saved, 0) }, 0);
        // SAFETY: as above.
        unsafe { libc::close(saved) };
        for s in STRATEGIES {
            let out = Cmd::new("readlink")
                .arg("/proc/self/fd/0")
                .strategy(s)
                .output()
                .unwrap();
            assert_eq!(
                out, b"/dev/null\n",
                "{s:?}: a null child got the real stdin"
            );
        }
        println!("HELPER-OK");
        return;
    }
    let _g = common::start("null_device_never_lands_on_stdio", 60);
    let (r, w) = forkexec::raw::pipe().unwrap();
    common::run_helper("null_device_never_lands_on_stdio", &[], |c| {
        c.stdin(Stdio::from(r));
    });
    drop(w);
}

/// Regression (issue 11): `PWD` for a relative `dir` was built from the physical cwd; as
/// Go, it is built from the logical one (`$PWD` when it names the same directory).
#[test]
fn pwd_follows_the_logical_cwd() {
    let name = "pwd_follows_the_logical_cwd";
    if common::is_helper(name) {
        let pwd = std::env::var("PWD").unwrap();
        assert!(pwd.ends_with("/link"), "{pwd}");
        for s in STRATEGIES {
            let out = sh("echo $PWD").dir("sub").strategy(s).output().unwrap();
            assert_eq!(out, format!("{pwd}/sub\n").into_bytes(), "{s:?}");
        }
        println!("HELPER-OK");
        return;
    }
    let _g = common::start(name, 60);
    let tmp = TempDir::new("pwd-logical");
    let real = tmp.path().join("real");
    std::fs::create_dir_all(real.join("sub")).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    common::run_helper(name, &[], |c| {
        c.dir(&link);
    });
}

// ---------------------------------------------------------------------------------------
// nothing a child wrote is lost (issue 13)
// ---------------------------------------------------------------------------------------

/// Regression (issue 13): `combined_output()` and `output()` of a failing child returned
/// only "exit status 1"; both streams now survive in the error, on every strategy.
#[test]
fn failing_child_keeps_its_output() {
    let _g = common::start("failing_child_keeps_its_output", 60);
    let script = "echo building; echo 'error: x' >&2; exit 1";
    for s in STRATEGIES {
        let err = sh(script).strategy(s).combined_output().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExitStatus, "{s:?}");
        assert_eq!(err.stdout(), b"building\nerror: x\n", "{s:?}");
        let err = sh(script).strategy(s).output().unwrap_err();
        assert_eq!(
            (err.stdout(), err.stderr()),
            (&b"building\n"[..], &b"error: x\n"[..])
        );
        let out = sh(script).strategy(s).capture().unwrap();
        assert_eq!(out.stdout, b"building\n");
        assert_eq!(out.stderr, b"error: x\n");
        assert_eq!(out.state.exit_code(), 1);
        let child = sh(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .strategy(s)
            .start()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            (out.stdout, out.stderr),
            (b"building\n".to_vec(), b"error: x\n".to_vec())
        );
    }
}

/// Regression (issue 13): a timeout dropped both streams; the error now carries them.
#[test]
fn timeout_keeps_the_output() {
    let _g = common::start("timeout_keeps_the_output", 60);
    for s in STRATEGIES {
        let err = sh("echo started; echo warn >&2; exec sleep 30")
            .timeout(Duration::from_millis(300))
            .strategy(s)
            .output()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}");
        assert_eq!(
            (err.stdout(), err.stderr()),
            (&b"started\n"[..], &b"warn\n"[..])
        );
        let err = sh("echo started; exec sleep 30")
            .timeout(Duration::from_millis(300))
            .strategy(s)
            .capture()
            .unwrap_err();
        assert_eq!(
            (err.kind(), err.stdout()),
            (ErrorKind::Timeout, &b"started\n"[..])
        );
        // An expired wait delay (a background process holds the pipe) keeps it too.
        let err = sh("echo hi; echo warn >&2; sleep 5 &")
            .wait_delay(Duration::from_millis(200))
            .strategy(s)
            .output()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WaitDelay, "{s:?}");
        assert_eq!((err.stdout(), err.stderr()), (&b"hi\n"[..], &b"warn\n"[..]));
    }
}

/// Regression (issue 13): `output()` with stdout set captured anyway and the caller's
/// stdout silently got nothing; Go refuses ("exec: Stdout already set").
#[test]
fn output_refuses_a_stdout_already_set() {
    let _g = common::start("output_refuses_a_stdout_already_set", 60);
    let err = Cmd::new("true")
        .stdout(Stdio::inherit())
        .output()
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.to_string().as_str()),
        (ErrorKind::InvalidInput, "exec: Stdout already set")
    );
    let err = Cmd::new("true")
        .stderr(Stdio::inherit())
        .combined_output()
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.to_string().as_str()),
        (ErrorKind::InvalidInput, "exec: Stderr already set")
    );
    assert!(common::children().is_empty());
}

/// Regression (issue 13): `timeout(Duration::ZERO)` started the child and killed it; a
/// deadline already past starts nothing (Go).
#[test]
fn zero_timeout_starts_nothing() {
    let _g = common::start("zero_timeout_starts_nothing", 60);
    let tmp = TempDir::new("zero-timeout");
    let marker = tmp.path().join("ran");
    for s in STRATEGIES {
        let err = Cmd::new("touch")
            .arg(&marker)
            .timeout(Duration::ZERO)
            .strategy(s)
            .status()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}");
        assert!(err.state().is_none());
        assert!(!marker.exists(), "{s:?}: the child ran");
    }
}

/// Regression (issue 13): one writer for stdout and stderr (Go's idiom) hung once a stream
/// passed 64 KiB (the copier held the writer's lock across its reads) and lost the order of
/// writes (two pipes). Now one pipe and one copier: >= 1 MiB per stream, in write order.
#[test]
fn one_writer_for_both_streams_keeps_order_and_never_hangs() {
    let _g = common::start(
        "one_writer_for_both_streams_keeps_order_and_never_hangs",
        120,
    );
    // 1 MiB of "o" lines on stdout, then 1 MiB of "e" lines on stderr, then alternating.
    let script = "head -c 1048576 /dev/zero | tr '\\0' o; head -c 1048576 /dev/zero | tr '\\0' e >&2; \
                  i=0; while [ $i -lt 200 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done";
    let mut want = vec![b'o'; 1 << 20];
    want.extend(std::iter::repeat_n(b'e', 1 << 20));
    for i in 0..200 {
        want.extend(format!("out{i}\nerr{i}\n").bytes());
    }
    for s in STRATEGIES {
        let buf = forkexec::Buffer::new();
        let both = Stdio::from(buf.clone());
        let st = sh(script)
            .stdout(both.clone())
            .stderr(both)
            .strategy(s)
            .status()
            .unwrap();
        assert!(st.success(), "{s:?}");
        let got = buf.take();
        assert_eq!(got.len(), want.len(), "{s:?}");
        assert!(got == want, "{s:?}: order of writes lost");
    }
    // Two children copying into one writer at once (two copiers, one lock): no deadlock.
    let buf = forkexec::Buffer::new();
    let shared = Stdio::from(buf.clone());
    let big = "head -c 2097152 /dev/zero";
    let mut a = sh(big).stdout(shared.clone()).start().unwrap();
    let mut b = sh(big).stdout(shared).start().unwrap();
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    assert_eq!(buf.contents().len(), 4 << 20);
}

/// Regression (issue 13): reaping through `child.process().wait_timeout()` made the next
/// `child.wait()` return ProcessDone without waiting for the stdio copies (output lost in
/// 5 of 20 runs). `wait` now finishes the copies and returns the state the reap saw;
/// `Child::try_wait`/`wait_timeout` do the same.
#[test]
fn child_wait_after_an_early_reap_keeps_output() {
    let _g = common::start("child_wait_after_an_early_reap_keeps_output", 120);
    for s in STRATEGIES {
        for round in 0..20 {
            let buf = forkexec::Buffer::new();
            let mut child = sh("head -c 300000 /dev/zero; exit 4")
                .stdout(Stdio::from(buf.clone()))
                .strategy(s)
                .start()
                .unwrap();
            let early = match round % 3 {
                0 => child
                    .process()
                    .wait_timeout(Duration::from_secs(30))
                    .unwrap(),
                1 => loop {
                    if let Some(st) = child.try_wait().unwrap() {
                        break Some(st);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                },
                _ => child.wait_timeout(Duration::from_secs(30)).unwrap(),
            };
            assert_eq!(early.unwrap().exit_code(), 4, "{s:?}");
            if round % 3 != 2 {
                assert_eq!(child.wait().unwrap().exit_code(), 4, "{s:?}");
            }
            assert_eq!(
                buf.contents().len(),
                300_000,
                "{s:?} round {round}: output lost"
            );
            assert_eq!(child.wait().unwrap_err().kind(), ErrorKind::ProcessDone);
        }
    }
    // signal() and a wait_timeout that expires, then goes on.
    let mut child = Cmd::new("sleep").arg("30").start().unwrap();
    assert!(
        child
            .wait_timeout(Duration::from_millis(10))
            .unwrap()
            .is_none()
    );
    child.signal(Signal::TERM).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::TERM));
}

/// Whether `pid` is gone or a zombie (killed; reaped or not by whoever adopted it).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Whole-tree cancellation (issue 13): with `cancel_process_group`, a timeout reaches what
/// the child started, so `sh -c 'sleep 100 & sleep 100'` leaves nothing behind; without
/// it, only the child itself is cancelled (Go's default).
#[test]
fn timeout_cancels_the_whole_group_when_asked() {
    let _g = common::start("timeout_cancels_the_whole_group_when_asked", 120);
    let script = "sleep 100 & echo $!; sleep 100";
    for s in STRATEGIES {
        for group in [true, false] {
            let err = sh(script)
                .timeout(Duration::from_millis(300))
                // Without the group cancel the background sleep keeps the pipe open.
                .wait_delay(Duration::from_millis(300))
                .cancel_process_group(group)
                .strategy(s)
                .output()
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}");
            let bg: i32 = text(err.stdout().to_vec()).trim().parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            if group {
                while !dead(bg) {
                    assert!(
                        Instant::now() < deadline,
                        "{s:?}: background sleep survived"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            } else {
                assert!(
                    !dead(bg),
                    "{s:?}: the group was signalled without being asked"
                );
                // SAFETY: kill of the test's own grandchild, still running (checked above).
                unsafe { libc::kill(bg, libc::SIGKILL) };
            }
        }
    }
    // It needs the child to lead its group.
    let err = Cmd::new("true")
        .process_group(1)
        .cancel_process_group(true)
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// The number of threads of this process.
fn threads() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse::<usize>()
        .unwrap()
}

/// Issue 13: 1,000 running children with timeouts cost one timer thread, not one each.
/// Runs in its own process with a raised fd limit (each child holds a pidfd, the timer a
/// duplicate).
#[test]
fn thousand_timeouts_one_thread() {
    let name = "thousand_timeouts_one_thread";
    if common::is_helper(name) {
        let before = threads();
        let mut children = Vec::new();
        for _ in 0..1000 {
            children.push(
                Cmd::new("sleep")
                    .arg("60")
                    .timeout(Duration::from_secs(120))
                    .start()
                    .unwrap(),
            );
        }
        let during = threads();
        assert!(
            during <= before + 4,
            "{before} threads before, {during} with 1000 timeouts"
        );
        for c in &children {
            c.kill().unwrap();
        }
        for mut c in children {
            assert_eq!(c.wait().unwrap().signal(), Some(Signal::KILL));
        }
        println!("HELPER-OK ({before} -> {during} threads)");
        return;
    }
    let _g = common::start(name, 120);
    common::run_helper(
        name,
        &["sh", "-c", "ulimit -n 8192 && exec \"$@\"", "sh"],
        |_| {},
    );
}

/// Issue 13: a job runner waits on many children from one thread: every byte of every
/// child arrives, in order per stream, before that child's `Exited`, and no thread is
/// started for it; on every strategy.
#[test]
fn waitset_runs_many_jobs_from_one_thread() {
    let _g = common::start("waitset_runs_many_jobs_from_one_thread", 120);
    let before = threads();
    let mut set = forkexec::WaitSet::new().unwrap();
    let mut want = std::collections::HashMap::new();
    for (i, s) in STRATEGIES.iter().cycle().take(40).enumerate() {
        // Up to 200 KiB on stdout (more than a pipe holds), a line on stderr, exit i % 7.
        let script = format!(
            "head -c {} /dev/zero | tr '\\0' {}; echo err{i} >&2; exit {}",
            5000 * i,
            (b'a' + (i % 26) as u8) as char,
            i % 7
        );
        let child = sh(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .strategy(*s)
            .start()
            .unwrap();
        let token = set.add(child).unwrap();
        want.insert(token, i);
    }
    assert_eq!(set.len(), 40);
    let mut outs: std::collections::HashMap<usize, (Vec<u8>, Vec<u8>)> = Default::default();
    let mut exited = std::collections::HashSet::new();
    while let Some(ev) = set.next(Some(Duration::from_secs(60))).unwrap() {
        assert!(threads() <= before + 1, "a thread per child?");
        match ev {
            forkexec::WaitEvent::Output {
                token,
                stream,
                data,
            } => {
                assert!(!exited.contains(&token), "output after Exited");
                let o = outs.entry(token).or_default();
                match stream {
                    forkexec::Stream::Stdout => o.0.extend(data),
                    forkexec::Stream::Stderr => o.1.extend(data),
                }
            }
            forkexec::WaitEvent::Exited { token, result } => {
                let i = want[&token];
                assert_eq!(result.unwrap().exit_code(), (i % 7) as i32);
                let (out, err) = outs.remove(&token).unwrap_or_default();
                assert_eq!(out.len(), 5000 * i, "job {i}: stdout lost");
                assert!(out.iter().all(|&b| b == b'a' + (i % 26) as u8));
                assert_eq!(err, format!("err{i}\n").into_bytes());
                assert!(exited.insert(token));
            }
        }
    }
    assert_eq!(exited.len(), 40);
    assert!(set.is_empty());
}

/// Go's `Cmd.Cancel` as a function (issue 13): called at the timeout instead of the cancel
/// signal, on every strategy; its error is reported; a child it leaves running gets
/// SIGKILL after the wait delay; it may itself run a command with a timeout (it runs
/// without the timer's lock).
#[test]
fn cancel_function_like_go() {
    let _g = common::start("cancel_function_like_go", 120);
    for s in STRATEGIES {
        // SIGINT must kill the child even when this test runs with it ignored (a
        // background job of a non-interactive shell), which the child would inherit.
        let err = Cmd::new("sleep")
            .arg("30")
            .ignored_signals(forkexec::IgnoredSignals::Reset)
            .timeout(Duration::from_millis(50))
            .cancel_with(|t| {
                Cmd::new("true")
                    .timeout(Duration::from_secs(10))
                    .run()
                    .map_err(std::io::Error::from)?;
                t.signal(Signal::INT)
            })
            .strategy(s)
            .run()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}");
        assert_eq!(err.state().unwrap().signal(), Some(Signal::INT), "{s:?}");

        let err = Cmd::new("sleep")
            .arg("30")
            .timeout(Duration::from_millis(50))
            .wait_delay(Duration::from_millis(100))
            .cancel_with(|_| Err(std::io::Error::other("refused")))
            .strategy(s)
            .run()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{s:?}");
        assert_eq!(err.state().unwrap().signal(), Some(Signal::KILL), "{s:?}");
        assert!(err.to_string().contains("refused"), "{s:?}: {err}");
    }
}

// ---------------------------------------------------------------------------------------
// fitting the Rust ecosystem (issue 16)
// ---------------------------------------------------------------------------------------

/// A std `Command` converts into a `Cmd` (program, args, env changes, cwd, std's inherited
/// stdio); std's child pipes feed a forkexec child; the names std users look for exist.
#[test]
fn std_interop() {
    let _g = common::start("std_interop", 60);
    let mut std_cmd = std::process::Command::new("sh");
    std_cmd
        .args(["-c", "echo \"$A:$B:$(pwd)\""])
        .env("A", "1")
        .env_remove("B")
        .current_dir("/");
    let mut cmd = Cmd::from(&std_cmd);
    assert_eq!(cmd.get_program(), "sh");
    assert_eq!(cmd.get_args().count(), 2);
    assert_eq!(cmd.to_string(), "sh -c echo \"$A:$B:$(pwd)\"");
    for s in STRATEGIES {
        let out = cmd.stdout(Stdio::null()).strategy(s).capture().unwrap();
        assert_eq!(out.stdout, b"1::/\n", "{s:?}");
        let std_out: std::process::Output = out.into();
        assert!(std_out.status.success());
    }
    // std child | forkexec child
    let mut producer = std::process::Command::new("printf")
        .arg("a\\nb\\n")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = Cmd::new("wc")
        .arg("-l")
        .stdin(Stdio::from(producer.stdout.take().unwrap()))
        .output()
        .unwrap();
    assert_eq!(text(out).trim(), "2");
    assert!(producer.wait().unwrap().success());
    // Errors say which program failed, in the alternate form; kinds print; signal 0 probes.
    let err = Cmd::new("sh").args(["-c", "exit 3"]).run().unwrap_err();
    assert_eq!(err.to_string(), "exit status 3");
    assert_eq!(format!("{err:#}"), "sh: exit status 3");
    assert_eq!(err.kind().to_string(), "exit status");
    let mut child = Cmd::new("sleep").arg("30").start().unwrap();
    child.signal(Signal::ZERO).unwrap();
    child.kill().unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st, st.clone());
    assert_eq!(
        child.signal(Signal::ZERO).unwrap_err().kind(),
        ErrorKind::ProcessDone
    );
}

/// `Cmd::exec` replaces the calling process (issue 16): same pid, the command's env,
/// directory and stdio settings; on every strategy-independent path (it spawns nothing).
#[test]
fn exec_replaces_this_process() {
    let name = "exec_replaces_this_process";
    if common::is_helper(name) {
        println!("pid={}", std::process::id());
        let err = Cmd::new("sh")
            .args(["-c", "echo \"replaced $$ $X $(pwd)\"; exit 7"])
            .env("X", "x1")
            .dir("/")
            .stdout(Stdio::inherit())
            .exec();
        panic!("exec returned: {err}");
    }
    let _g = common::start(name, 60);
    let exe = std::env::current_exe().unwrap();
    let out = Cmd::new(exe)
        .args([
            "--exact",
            &common::test_path(name),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(common::HELPER_ENV, name)
        .capture()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.state.exit_code(), 7, "{text}");
    let pid: String = text
        .split("pid=")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"))
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(text.contains(&format!("replaced {pid} x1 /\n")), "{text}");
}

/// `pre_exec` (issue 16, std's CommandExt::pre_exec): runs in the child before exec on
/// Fork and Auto (which uses Fork for it), in order; its error is the start's error;
/// Vfork and PosixSpawn refuse it.
#[test]
fn pre_exec_like_std() {
    let _g = common::start("pre_exec_like_std", 60);
    for s in [Strategy::Fork, Strategy::Auto] {
        let mut cmd = sh("echo $(cut -d' ' -f19 /proc/$$/stat) $(umask)");
        // SAFETY: setpriority and umask are async-signal-safe; nothing allocates.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setpriority(libc::PRIO_PROCESS, 0, 3) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
            .pre_exec(|| {
                libc::umask(0o077);
                Ok(())
            });
        }
        assert_eq!(cmd.strategy(s).output().unwrap(), b"3 0077\n", "{s:?}");
        // SAFETY: from_raw_os_error allocates nothing.
        let err = unsafe {
            Cmd::new("true")
                .pre_exec(|| Err(std::io::Error::from_raw_os_error(libc::EACCES)))
                .strategy(s)
                .run()
                .unwrap_err()
        };
        assert_eq!(
            (err.stage(), err.errno()),
            (Some(Stage::PreExec), Some(libc::EACCES)),
            "{s:?}"
        );
        assert!(common::children().is_empty());
    }
    for s in [Strategy::Vfork, Strategy::PosixSpawn] {
        // SAFETY: never runs (refused).
        let err = unsafe { Cmd::new("true").pre_exec(|| Ok(())).strategy(s).run() };
        assert_eq!(err.unwrap_err().kind(), ErrorKind::Unsupported, "{s:?}");
    }
}

/// Review regressions (issue 13 follow-up): a full 4 KiB first read is not followed by a
/// blocking read (the child filling stderr meanwhile deadlocked output()); a panicking
/// cancel function is its error and later timeouts still work; a wait delay beyond time
/// never kills; a panicking pre_exec fails the start and stays in the child.
#[test]
fn review_regressions_capture_timer_pre_exec() {
    let _g = common::start("review_regressions_capture_timer_pre_exec", 120);
    for s in STRATEGIES {
        let script = "head -c 4096 /dev/zero; head -c 300000 /dev/zero >&2; exit 3";
        let out = sh(script).strategy(s).capture().unwrap();
        assert_eq!(
            (out.stdout.len(), out.stderr.len()),
            (4096, 300_000),
            "{s:?}"
        );
    }
    let err = Cmd::new("sleep")
        .arg("30")
        .timeout(Duration::from_millis(50))
        .wait_delay(Duration::from_millis(100))
        .cancel_with(|_| panic!("cancel function panics"))
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    assert_eq!(err.state().unwrap().signal(), Some(Signal::KILL));
    let err = Cmd::new("sleep")
        .arg("30")
        .timeout(Duration::from_millis(50))
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "the timer thread survived");
    // TERM is ignored by the child: with a wait delay beyond time, nothing kills it.
    let st = sh("trap '' TERM; sleep 1; exit 5")
        .timeout(Duration::from_millis(50))
        .cancel_signal(Signal::TERM)
        .wait_delay(Duration::MAX)
        .run()
        .unwrap_err();
    assert_eq!(st.state().unwrap().exit_code(), 5, "{st}");
    // SAFETY: the closure only panics (in the forked child).
    let err = unsafe {
        Cmd::new("true")
            .pre_exec(|| panic!("pre_exec panics"))
            .run()
            .unwrap_err()
    };
    assert_eq!(err.stage(), Some(Stage::PreExec));
}

/// Review regression (issue 13 follow-up): a WaitSet token is reused only after its
/// Exited was returned, so every Exited belongs to the child its token was given to.
#[test]
fn waitset_tokens_are_reused_only_after_exited() {
    let _g = common::start("waitset_tokens_are_reused_only_after_exited", 120);
    let mut set = forkexec::WaitSet::new().unwrap();
    let mut code_of = std::collections::HashMap::new();
    let mut next_code = 0;
    let mut add = |set: &mut forkexec::WaitSet,
                   code_of: &mut std::collections::HashMap<usize, i32>| {
        next_code += 1;
        let c = next_code % 100;
        let child = sh(&format!("echo {c}; exit {c}"))
            .stdout(Stdio::piped())
            .start()
            .unwrap();
        let t = set.add(child).unwrap();
        assert!(
            code_of.insert(t, c).is_none(),
            "token {t} reused before its Exited"
        );
    };
    for _ in 0..10 {
        add(&mut set, &mut code_of);
    }
    let mut exits = 0;
    while let Some(ev) = set.next(Some(Duration::from_secs(60))).unwrap() {
        match ev {
            forkexec::WaitEvent::Output { .. } if exits < 150 => add(&mut set, &mut code_of),
            forkexec::WaitEvent::Output { .. } => {}
            forkexec::WaitEvent::Exited { token, result } => {
                let want = code_of.remove(&token).expect("an Exited for a live token");
                assert_eq!(result.unwrap().exit_code(), want);
                exits += 1;
            }
        }
    }
    assert!(code_of.is_empty() && exits >= 150);
}
