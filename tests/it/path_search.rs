//! A bare program name on an all-absolute `PATH` is searched by the child, as `execvp`
//! does (issue 14: no lookup system call in the parent); the outcome and the errors are
//! Go's `LookPath` rules, on every strategy (`PosixSpawn` looks up in the parent).

use std::path::{Path, PathBuf};

use crate::common::{self, TempDir};

use forkexec::{Cmd, ErrorKind, Stage};

fn path_of(dirs: &[&Path]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn the_first_executable_candidate_runs_as_go_would_pick_it() {
    let _w = common::start(
        "the_first_executable_candidate_runs_as_go_would_pick_it",
        60,
    );
    let t = TempDir::new("pick");
    // a: not executable; b: a directory of that name; c: the one; d: a later one.
    t.file("a/prog", "#!/bin/sh\necho a\n", 0o644);
    t.subdir("b/prog");
    t.file("c/prog", "#!/bin/sh\necho c\n", 0o755);
    t.file("d/prog", "#!/bin/sh\necho d\n", 0o755);
    let dirs = ["a", "b", "missing", "c", "d"].map(|d| t.join(d));
    let path = path_of(&dirs.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    for s in common::STRATEGIES {
        let mut cmd = Cmd::new("prog");
        cmd.env("PATH", &path).strategy(s);
        assert_eq!(cmd.output().unwrap(), b"c\n", "{s:?}");
        assert_eq!(cmd.resolved_path().unwrap(), t.join("c/prog"), "{s:?}");
        // Started again: the same choice.
        assert_eq!(cmd.output().unwrap(), b"c\n", "{s:?}");
    }
}

#[test]
fn not_found_is_gos_error_on_every_strategy() {
    let _w = common::start("not_found_is_gos_error_on_every_strategy", 60);
    let t = TempDir::new("notfound");
    t.file("a/other", "#!/bin/sh\n", 0o755);
    t.file("b/nope-forkexec", "#!/bin/sh\n", 0o644); // there, but not executable
    let path = path_of(&[&t.join("a"), &t.join("b")]);
    let before = common::children();
    for s in common::STRATEGIES {
        let err = Cmd::new("nope-forkexec")
            .env("PATH", &path)
            .strategy(s)
            .run()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{s:?}: {err}");
        assert_eq!(err.path(), Some(Path::new("nope-forkexec")), "{s:?}");
        assert!(
            err.to_string()
                .contains(r#"exec: "nope-forkexec": executable file not found in $PATH"#),
            "{s:?}: {err}"
        );
        assert!(
            matches!(Cmd::new("nope-forkexec").env("PATH", &path).strategy(s).resolved_path(),
            Err(e) if e.kind() == ErrorKind::NotFound)
        );
    }
    assert_eq!(common::children(), before, "every failed child was reaped");
}

#[test]
fn a_candidate_that_fails_to_exec_is_named() {
    let _w = common::start("a_candidate_that_fails_to_exec_is_named", 60);
    let t = TempDir::new("noexec");
    // Executable, but not a program the kernel can load (no #! line, not ELF).
    let bad = t.file("a/garbage", "\x01\x02 not a program\n", 0o755);
    t.file("b/garbage", "#!/bin/sh\necho later\n", 0o755);
    let path = path_of(&[&t.join("a"), &t.join("b")]);
    for s in common::STRATEGIES {
        let err = Cmd::new("garbage")
            .env("PATH", &path)
            .strategy(s)
            .run()
            .unwrap_err();
        // Go's LookPath picks a/garbage, whose exec fails: no fallback to b.
        assert_eq!(err.stage(), Some(Stage::Exec), "{s:?}: {err}");
        assert_eq!(err.errno(), Some(libc::ENOEXEC), "{s:?}: {err}");
        assert_eq!(err.path(), Some(bad.as_path()), "{s:?}: {err}");
    }
}

#[test]
fn a_relative_path_element_still_gives_err_dot() {
    let _w = common::start("a_relative_path_element_still_gives_err_dot", 60);
    let t = TempDir::new("dot");
    t.file("rel/prog-dot", "#!/bin/sh\necho rel\n", 0o755);
    t.file("abs/prog-dot", "#!/bin/sh\necho abs\n", 0o755);
    // Relative to the parent's cwd (the crate root, not the temp dir).
    let rel = common::relative_from_cwd(&t.join("rel"));
    let path = format!("{}:{}", rel.display(), t.join("abs").display());
    for s in common::STRATEGIES {
        let err = Cmd::new("prog-dot")
            .env("PATH", &path)
            .strategy(s)
            .run()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dot, "{s:?}: {err}");
        let out = Cmd::new("prog-dot")
            .env("PATH", &path)
            .strategy(s)
            .allow_dot(true)
            .output();
        assert_eq!(out.unwrap(), b"rel\n", "{s:?}");
    }
}

#[test]
fn a_candidate_go_would_choose_stops_the_search_even_if_its_interpreter_is_missing() {
    let _w = common::start("a_candidate_go_would_choose_stops_the_search", 60);
    let t = TempDir::new("interp");
    // Executable and regular, so Go's LookPath picks it; its exec fails with ENOENT (the
    // interpreter), which must not make the child try the next one.
    let a = t.file("a/prog-interp", "#!/nonexistent/interp\n", 0o755);
    t.file("b/prog-interp", "#!/bin/sh\necho ran-b\n", 0o755);
    let path = path_of(&[&t.join("a"), &t.join("b")]);
    for s in common::STRATEGIES {
        let mut cmd = Cmd::new("prog-interp");
        cmd.env("PATH", &path).strategy(s);
        let err = cmd.run().unwrap_err();
        assert_eq!(
            (err.kind(), err.errno(), err.path()),
            (ErrorKind::NotFound, Some(libc::ENOENT), Some(a.as_path())),
            "{s:?}: {err}"
        );
        assert_eq!(cmd.resolved_path().unwrap(), a, "{s:?}");
    }
}

#[test]
fn a_child_pid_key_of_the_longest_length_works() {
    let _w = common::start("a_child_pid_key_of_the_longest_length_works", 60);
    let key = "K".repeat(64);
    for s in common::STRATEGIES
        .into_iter()
        .filter(|s| *s != forkexec::raw::Strategy::PosixSpawn)
    {
        let out = Cmd::new("sh")
            .args(["-c", &format!("test \"${key}\" = $$ && echo ok")])
            .env_child_pid(&key)
            .strategy(s)
            .output()
            .unwrap();
        assert_eq!(out, b"ok\n", "{s:?}");
    }
    let long = "K".repeat(65);
    let err = Cmd::new("true").env_child_pid(&long).status().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_program_not_found_runs_no_pre_exec_code() {
    let _w = common::start("a_program_not_found_runs_no_pre_exec_code", 60);
    use std::os::fd::AsRawFd;
    let (r, w) = forkexec::raw::pipe_with(forkexec::raw::PipeFlags::NONBLOCK).unwrap();
    let wfd = w.as_raw_fd();
    let mut cmd = Cmd::new("no-such-program-forkexec-pre-exec");
    // SAFETY: the hook makes one write(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::write(wfd, b"x".as_ptr().cast(), 1);
            Ok(())
        })
    };
    let err = cmd.env("PATH", "/usr/bin:/bin").run().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let mut b = [0u8; 1];
    assert!(
        rustix::io::read(&r, &mut b).is_err(),
        "the pre_exec hook ran for a missing program"
    );
    drop(w);
}

/// A directory under `base` whose path is exactly `len` bytes long, made of components
/// shorter than the kernel's 255-byte limit.
fn dir_of_length(base: &Path, len: usize) -> PathBuf {
    let mut p = base.as_os_str().len();
    assert!(p + 2 < len);
    let mut d = base.to_path_buf();
    while p < len {
        let n = (len - p - 1).min(200);
        d.push("d".repeat(n));
        p += n + 1;
    }
    assert_eq!(d.as_os_str().len(), len);
    d
}

#[test]
fn candidates_at_the_execve_length_limit() {
    let _w = common::start("candidates_at_the_execve_length_limit", 60);
    let t = TempDir::new("long");
    let name = "prog-long";
    // `dir/name` of 4095 bytes: the longest `execve` takes (with its NUL, PATH_MAX).
    let fits = dir_of_length(&t.join("a"), 4095 - 1 - name.len());
    std::fs::create_dir_all(&fits).unwrap();
    std::fs::write(fits.join(name), "#!/bin/sh\necho fits\n").unwrap();
    std::fs::set_permissions(
        fits.join(name),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // One byte more: no such file can exist; the search passes over it.
    let too_long = dir_of_length(&t.join("b"), 4096 - 1 - name.len());
    for (path, what) in [
        // Searched by the child (the candidate fills its buffer exactly).
        (fits.display().to_string(), "alone"),
        // Longer in all than a candidate can be: looked up by the parent.
        (
            format!("{}:{}", too_long.display(), fits.display()),
            "after one too long",
        ),
    ] {
        for s in common::STRATEGIES {
            let mut cmd = Cmd::new(name);
            cmd.env("PATH", &path).strategy(s);
            assert_eq!(cmd.output().unwrap(), b"fits\n", "{what}, {s:?}");
            assert_eq!(
                cmd.resolved_path().unwrap(),
                fits.join(name),
                "{what}, {s:?}"
            );
        }
    }
}

/// `..` in a `PATH` element is resolved by text, as Go's `filepath.Join` does (not through
/// a symbolic link, as `execve` would); a trailing slash is kept harmlessly.
#[test]
fn dot_dot_in_path_is_resolved_as_go_does() {
    let _w = common::start("dot_dot_in_path_is_resolved_as_go_does", 60);
    let t = TempDir::new("dotdot");
    t.file("lib/prog-dd", "#!/bin/sh\necho lexical\n", 0o755);
    t.file("real/lib/prog-dd", "#!/bin/sh\necho physical\n", 0o755);
    t.subdir("real/bin");
    std::os::unix::fs::symlink(t.join("real/bin"), t.join("link")).unwrap();
    for path in [
        format!("{}/link/../lib", t.path().display()),
        format!("{}/./lib/", t.path().display()),
        format!("{}/lib/", t.path().display()),
    ] {
        for s in common::STRATEGIES {
            let mut cmd = Cmd::new("prog-dd");
            cmd.env("PATH", &path).strategy(s);
            assert_eq!(cmd.output().unwrap(), b"lexical\n", "{path}, {s:?}");
            assert_eq!(
                cmd.resolved_path().unwrap(),
                t.join("lib/prog-dd"),
                "{path}, {s:?}"
            );
        }
    }
}
