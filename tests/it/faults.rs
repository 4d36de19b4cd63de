//! Exec faults: every way `execve` (or the `chdir` before it) can fail comes back as a typed
//! error naming the step, the errno and the path, on every strategy and through every
//! public entry point (the raw engine, `Cmd`, `start_process`), with the failed child
//! reaped (no zombie: the guard checks) and no fd left behind.

use crate::common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use common::{STRATEGIES, TempDir};
use forkexec::raw::{self, ExecPlan};
use forkexec::{Cmd, Error, ErrorKind, ProcAttr, Stage, start_process};

/// What a fault must come back as.
#[derive(Debug, Clone, Copy)]
struct Want {
    kind: ErrorKind,
    stage: Stage,
    errno: i32,
}

fn check(err: &Error, want: Want, path: &Path, ctx: &str) {
    assert_eq!(err.kind(), want.kind, "{ctx}: kind of {err:?}");
    assert_eq!(err.stage(), Some(want.stage), "{ctx}: stage of {err:?}");
    assert_eq!(err.errno(), Some(want.errno), "{ctx}: errno of {err:?}");
    assert_eq!(err.path(), Some(path), "{ctx}: path of {err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&*path.to_string_lossy()),
        "{ctx}: message {msg:?} does not name {path:?}"
    );
    assert!(
        common::children().is_empty(),
        "{ctx}: the failed child was not reaped"
    );
}

/// Runs `program argv` on every strategy through the raw engine, `Cmd` and
/// `start_process`, expecting `want` naming `path`.
fn expect_exec_fault(program: &Path, argv: &[OsString], want: Want, label: &str) {
    for s in STRATEGIES {
        let plan = ExecPlan::new(program, argv).unwrap();
        let err = raw::fork_exec(&plan, &[], s).expect_err(label);
        check(&err, want, program, &format!("{label} raw {s:?}"));

        let err = Cmd::new(program)
            .args(&argv[1..])
            .strategy(s)
            .status()
            .expect_err(label);
        check(&err, want, program, &format!("{label} Cmd {s:?}"));

        let attr = ProcAttr {
            strategy: s,
            ..ProcAttr::default()
        };
        let err = start_process(program, argv, &attr).expect_err(label);
        check(&err, want, program, &format!("{label} start_process {s:?}"));
    }
}

fn argv(prog: &str) -> Vec<OsString> {
    vec![OsString::from(prog)]
}

#[test]
fn missing_file_is_not_found() {
    let _g = common::start("missing_file_is_not_found", 60);
    let d = TempDir::new("missing");
    let p = d.join("no-such-program");
    let want = Want {
        kind: ErrorKind::NotFound,
        stage: Stage::Exec,
        errno: libc::ENOENT,
    };
    expect_exec_fault(&p, &argv("x"), want, "missing file");
    // A missing directory on the way is the same.
    expect_exec_fault(&d.join("no/such/dir/prog"), &argv("x"), want, "missing dir");
}

#[test]
fn directory_is_permission_denied() {
    let _g = common::start("directory_is_permission_denied", 60);
    let d = TempDir::new("dir");
    let want = Want {
        kind: ErrorKind::PermissionDenied,
        stage: Stage::Exec,
        errno: libc::EACCES,
    };
    expect_exec_fault(d.path(), &argv("x"), want, "a directory");
}

#[test]
fn no_execute_bit_is_permission_denied() {
    let _g = common::start("no_execute_bit_is_permission_denied", 60);
    let d = TempDir::new("noexec");
    // Even root needs at least one execute bit on a regular file.
    let p = d.file("script", b"#!/bin/sh\nexit 0\n", 0o644);
    let want = Want {
        kind: ErrorKind::PermissionDenied,
        stage: Stage::Exec,
        errno: libc::EACCES,
    };
    expect_exec_fault(&p, &argv("script"), want, "no execute bit");
}

#[test]
fn script_with_missing_interpreter_is_not_found() {
    let _g = common::start("script_with_missing_interpreter_is_not_found", 60);
    let d = TempDir::new("interp");
    let p = d.file("script", b"#!/no/such/interp\nexit 0\n", 0o755);
    // The kernel reports the missing interpreter as ENOENT of the script itself.
    let want = Want {
        kind: ErrorKind::NotFound,
        stage: Stage::Exec,
        errno: libc::ENOENT,
    };
    expect_exec_fault(&p, &argv("script"), want, "missing interpreter");
}

#[test]
fn wrong_binary_format_is_enoexec() {
    let _g = common::start("wrong_binary_format_is_enoexec", 60);
    let d = TempDir::new("format");
    // Bytes that are neither an ELF header nor `#!`: no binfmt handler claims them.
    let mut junk = Vec::with_capacity(4096);
    let mut x: u32 = 0x1234_5678;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        junk.push((x >> 24) as u8);
    }
    junk[0] = 0x00;
    junk[1] = 0x01;
    let p = d.file("junk", &junk, 0o755);
    let want = Want {
        kind: ErrorKind::Exec,
        stage: Stage::Exec,
        errno: libc::ENOEXEC,
    };
    expect_exec_fault(&p, &argv("junk"), want, "wrong format");
}

#[test]
fn vanished_cwd_is_not_found_at_chdir() {
    let _g = common::start("vanished_cwd_is_not_found_at_chdir", 60);
    for s in STRATEGIES {
        let d = TempDir::new(&format!("cwd-{s:?}"));
        let dir = d.join("wd");
        std::fs::create_dir(&dir).unwrap();
        let mut cmd = Cmd::new("/bin/true");
        cmd.dir(&dir).strategy(s);
        assert!(cmd.status().unwrap().success(), "{s:?}: first start");
        std::fs::remove_dir(&dir).unwrap();
        // The second start reuses the prepared plan: the chdir in the child fails.
        let err = cmd.status().expect_err("second start in a vanished dir");
        let want = Want {
            kind: ErrorKind::NotFound,
            stage: Stage::Chdir,
            errno: libc::ENOENT,
        };
        check(&err, want, &dir, &format!("vanished cwd Cmd {s:?}"));

        // The raw engine and start_process the same way.
        let plan = ExecPlan::new("/bin/true", ["true"])
            .unwrap()
            .dir(&dir)
            .unwrap();
        let err = raw::fork_exec(&plan, &[], s).expect_err("raw");
        check(&err, want, &dir, &format!("vanished cwd raw {s:?}"));
        let attr = ProcAttr {
            dir: Some(dir.clone()),
            strategy: s,
            ..ProcAttr::default()
        };
        let err = start_process("/bin/true", ["true"], &attr).expect_err("start_process");
        check(
            &err,
            want,
            &dir,
            &format!("vanished cwd start_process {s:?}"),
        );
    }
}

#[test]
fn argv_too_large_is_e2big() {
    let _g = common::start("argv_too_large_is_e2big", 60);
    // 48 arguments of 64 KiB: 3 MiB in all, above the kernel's limit (a quarter of the
    // 8 MiB default stack), each below MAX_ARG_STRLEN so the total is what fails.
    let big = OsString::from_vec(vec![b'a'; 64 * 1024]);
    let mut args = vec![OsString::from("true")];
    args.extend(std::iter::repeat_n(big.clone(), 48));
    let want = Want {
        kind: ErrorKind::Exec,
        stage: Stage::Exec,
        errno: libc::E2BIG,
    };
    expect_exec_fault(Path::new("/bin/true"), &args, want, "3 MiB argv");

    // One argument over MAX_ARG_STRLEN (128 KiB) fails the same way.
    let huge = OsString::from_vec(vec![b'b'; 200 * 1024]);
    expect_exec_fault(
        Path::new("/bin/true"),
        &[OsString::from("true"), huge],
        want,
        "one 200 KiB arg",
    );

    // And an environment that is too large.
    for s in STRATEGIES {
        let mut cmd = Cmd::new("/bin/true");
        cmd.strategy(s);
        for i in 0..48 {
            cmd.env(format!("BIG{i}"), &big);
        }
        let err = cmd.status().expect_err("3 MiB env");
        check(
            &err,
            want,
            Path::new("/bin/true"),
            &format!("3 MiB env {s:?}"),
        );
    }
}

/// After each kind of fault, the same strategy still spawns fine (no state poisoned:
/// probes, cached plans, the report channel).
#[test]
fn spawning_works_after_faults() {
    let _g = common::start("spawning_works_after_faults", 60);
    for s in STRATEGIES {
        for bad in ["/no/such", "/", "/etc/passwd"] {
            assert!(
                Cmd::new(bad).strategy(s).status().is_err(),
                "{s:?}: {bad} ran"
            );
            assert!(
                Cmd::new("/bin/true")
                    .strategy(s)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let plan = ExecPlan::new("/bin/sh", ["sh", "-c", "exit 7"]).unwrap();
        let child = raw::fork_exec(&plan, &[], s).unwrap();
        let st = raw::waitpid(child.pid, raw::WaitOptions::empty())
            .unwrap()
            .unwrap()
            .1;
        assert_eq!(st, raw::WaitStatus::Exited(7), "{s:?}");
    }
}
