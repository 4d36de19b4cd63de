//! `look_path_in` / `path_candidates`: Go's `exec.LookPath` cases, with explicit `PATH`
//! values (no environment variable is touched) and fixtures in unique directories.

use crate::common;
use common::TempDir;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use forkexec::{ErrorKind, look_path_in, path_candidates};

/// What every fixture program holds.
const PROG: &str = "#!/bin/sh\nexit 0\n";

/// A file created in the current directory (for the `""` and `"."` `PATH` elements),
/// removed on drop.
struct CwdFile(PathBuf);

impl CwdFile {
    fn executable(tag: &str) -> CwdFile {
        let p = PathBuf::from(format!(".lookpath-dot-{}-{tag}", std::process::id()));
        fs::write(&p, PROG).expect("write cwd fixture");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
        CwdFile(p)
    }

    fn name(&self) -> &OsStr {
        self.0.as_os_str()
    }
}

impl Drop for CwdFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn join_path(dirs: &[&Path]) -> std::ffi::OsString {
    let mut out = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        out.extend_from_slice(d.as_os_str().as_bytes());
    }
    std::ffi::OsString::from(OsStr::from_bytes(&out))
}

#[test]
fn absolute_path_found() {
    let _g = common::start("absolute_path_found", 30);
    let fx = TempDir::new("abs");
    let prog = fx.file("prog", PROG, 0o755);
    assert!(prog.is_absolute());
    // A name with a slash ignores PATH entirely, whatever its value.
    for path in [None, Some(os("")), Some(os("/nonexistent"))] {
        assert_eq!(look_path_in(prog.as_os_str(), path).unwrap(), prog);
        assert_eq!(
            path_candidates(prog.as_os_str(), path),
            std::slice::from_ref(&prog)
        );
    }
    // The same file found through an absolute PATH element.
    let found = look_path_in(os("prog"), Some(fx.path().as_os_str())).unwrap();
    assert_eq!(found, prog);
}

#[test]
fn name_with_slash_is_tried_directly() {
    let _g = common::start("name_with_slash_is_tried_directly", 30);
    let fx = TempDir::relative("slash");
    let prog = fx.file("bin/prog", PROG, 0o755);
    assert!(prog.is_relative());
    // Relative is fine for a name with a slash: returned as given, never ErrDot.
    let got = look_path_in(prog.as_os_str(), None).unwrap();
    assert_eq!(got, prog);
    // Returned unchanged, not cleaned.
    let dotted = PathBuf::from(format!("./{}/./bin//prog", fx.path().display()));
    assert_eq!(
        look_path_in(dotted.as_os_str(), Some(os("/bin"))).unwrap(),
        dotted
    );

    // A missing file: NotFound, with Go's message and the name as the path.
    let missing = fx.join("bin/missing");
    let err = look_path_in(missing.as_os_str(), Some(os("/bin"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.path(), Some(missing.as_path()));
    let m = missing.display();
    assert_eq!(
        err.to_string(),
        format!("exec: \"{m}\": stat {m}: no such file or directory")
    );
    // Going through a regular file as if it were a directory: also not found.
    let through = prog.join("x");
    let err = look_path_in(through.as_os_str(), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn directory_is_not_accepted() {
    let _g = common::start("directory_is_not_accepted", 30);
    let fx = TempDir::new("dir");
    let d = fx.subdir("first/prog");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = look_path_in(d.as_os_str(), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(err.path(), Some(d.as_path()));
    assert_eq!(
        err.to_string(),
        format!("exec: \"{}\": is a directory", d.display())
    );

    // In PATH, the directory is skipped and the next element's program wins.
    let prog = fx.file("second/prog", PROG, 0o755);
    let path = join_path(&[&fx.join("first"), &fx.join("second")]);
    assert_eq!(look_path_in(os("prog"), Some(&path)).unwrap(), prog);
    // With only the directory, nothing is found.
    let err = look_path_in(os("prog"), Some(fx.join("first").as_os_str())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn file_without_exec_bit_is_refused() {
    let _g = common::start("file_without_exec_bit_is_refused", 30);
    let fx = TempDir::new("noexec");
    // Tests may run as root, for whom X_OK needs just one execute bit: 0644 must still fail.
    for mode in [0o644, 0o600, 0o000] {
        let plain = fx.file("first/prog", PROG, mode);
        let err = look_path_in(plain.as_os_str(), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "mode {mode:o}");
        assert_eq!(err.path(), Some(plain.as_path()));
        assert_eq!(
            err.to_string(),
            format!("exec: \"{}\": permission denied", plain.display())
        );
        let err = look_path_in(os("prog"), Some(fx.join("first").as_os_str())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "mode {mode:o}");
    }
    // Any one execute bit is enough (for root, and for the owner when it is the owner's).
    let owner_only = fx.file("first/prog", PROG, 0o744);
    assert_eq!(
        look_path_in(owner_only.as_os_str(), None).unwrap(),
        owner_only
    );

    // In PATH, the non-executable file is skipped for the next element's program.
    fx.file("first/prog", PROG, 0o644);
    let prog = fx.file("second/prog", PROG, 0o755);
    let path = join_path(&[&fx.join("first"), &fx.join("second")]);
    assert_eq!(look_path_in(os("prog"), Some(&path)).unwrap(), prog);
}

#[test]
fn non_regular_file_is_refused() {
    let _g = common::start("non_regular_file_is_refused", 30);
    // A FIFO with execute bits would pass Go's check; execve refuses it with EACCES.
    let fx = TempDir::new("fifo");
    let fifo = fx.join("prog");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o755) }, 0, "mkfifo");
    fs::set_permissions(&fifo, fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = look_path_in(fifo.as_os_str(), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        err.to_string(),
        format!("exec: \"{}\": permission denied", fifo.display())
    );
    let err = look_path_in(os("prog"), Some(fx.path().as_os_str())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn symlink_to_executable_is_followed() {
    let _g = common::start("symlink_to_executable_is_followed", 30);
    let fx = TempDir::new("symlink");
    let target = fx.file("real/prog", PROG, 0o755);
    let link_dir = fx.subdir("links");
    std::os::unix::fs::symlink(&target, link_dir.join("prog")).expect("symlink");
    // The candidate path is returned, not the symlink's target.
    assert_eq!(
        look_path_in(os("prog"), Some(link_dir.as_os_str())).unwrap(),
        link_dir.join("prog")
    );
    std::os::unix::fs::symlink(fx.join("nowhere"), link_dir.join("dangling")).expect("symlink");
    let err = look_path_in(os("dangling"), Some(link_dir.as_os_str())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn first_match_in_path_order_wins() {
    let _g = common::start("first_match_in_path_order_wins", 30);
    let fx = TempDir::new("order");
    let a = fx.file("a/prog", PROG, 0o755);
    let b = fx.file("b/prog", PROG, 0o755);
    let (da, db) = (fx.join("a"), fx.join("b"));
    let missing = fx.join("missing");
    assert_eq!(
        look_path_in(os("prog"), Some(&join_path(&[&da, &db]))).unwrap(),
        a
    );
    assert_eq!(
        look_path_in(os("prog"), Some(&join_path(&[&db, &da]))).unwrap(),
        b
    );
    assert_eq!(
        look_path_in(os("prog"), Some(&join_path(&[&missing, &db, &da]))).unwrap(),
        b
    );
    // The result is always the first candidate that is an executable file.
    let path = join_path(&[&missing, &db, &da]);
    let first = path_candidates(os("prog"), Some(&path))
        .into_iter()
        .find(|c| c.exists())
        .unwrap();
    assert_eq!(first, b);
    // An absolute element before a relative one wins without ErrDot.
    let mixed = join_path(&[&da, Path::new("."), Path::new("")]);
    assert_eq!(look_path_in(os("prog"), Some(&mixed)).unwrap(), a);
}

#[test]
fn empty_and_dot_elements_give_err_dot() {
    let _g = common::start("empty_and_dot_elements_give_err_dot", 30);
    let f = CwdFile::executable("dot");
    let name = f.name().to_str().unwrap().to_owned();
    let want_msg =
        format!("exec: \"{name}\": cannot run executable found relative to current directory");
    // Go's filepath.Join(".", name) is just `name`: that is the path reported.
    for path in [
        ":",
        ".",
        "./",
        "/nonexistent::/also-nonexistent",
        "/nonexistent:",
        "/nonexistent:.",
    ] {
        let err = look_path_in(f.name(), Some(os(path))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dot, "PATH={path:?}");
        assert_eq!(err.path(), Some(Path::new(&name)), "PATH={path:?}");
        assert_eq!(err.to_string(), want_msg, "PATH={path:?}");
    }
    // Go's TestLookPathUnixEmptyPath: an empty PATH has no elements, not one empty one.
    for path in [None, Some(os(""))] {
        let err = look_path_in(f.name(), path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "PATH={path:?}");
    }
    // The relative path still works for a caller that opts in.
    let err = look_path_in(f.name(), Some(os("."))).unwrap_err();
    assert!(fs::metadata(err.path().unwrap()).unwrap().is_file());
    // ErrDot is final: a later absolute element holding the program is not consulted.
    let fx = TempDir::new("dot-later");
    fx.file(&name, PROG, 0o755);
    let path = join_path(&[Path::new("."), fx.path()]);
    assert_eq!(
        look_path_in(f.name(), Some(&path)).unwrap_err().kind(),
        ErrorKind::Dot
    );
    // But an absolute element first wins.
    let path = join_path(&[fx.path(), Path::new(".")]);
    assert_eq!(look_path_in(f.name(), Some(&path)).unwrap(), fx.join(&name));
}

#[test]
fn relative_non_dot_element_gives_err_dot() {
    let _g = common::start("relative_non_dot_element_gives_err_dot", 30);
    let fx = TempDir::relative("rel");
    let prog = fx.file("sub/bin/prog", PROG, 0o755);
    let dir = fx.join("sub/bin");
    let err = look_path_in(os("prog"), Some(dir.as_os_str())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Dot);
    assert_eq!(err.path(), Some(prog.as_path()));
    assert_eq!(
        err.to_string(),
        "exec: \"prog\": cannot run executable found relative to current directory"
    );
    // The element is cleaned like Go's filepath.Join: "./x/bin/" gives "x/bin/prog".
    let dotted = PathBuf::from(format!("./{}/sub/./bin/", fx.path().display()));
    let err = look_path_in(os("prog"), Some(dotted.as_os_str())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Dot);
    assert_eq!(err.path(), Some(prog.as_path()));
}

#[test]
fn not_found_has_go_message() {
    let _g = common::start("not_found_has_go_message", 30);
    let fx = TempDir::new("notfound");
    fx.file("other", PROG, 0o755);
    let dir = fx.path().as_os_str();
    for path in [
        None,
        Some(os("")),
        Some(dir),
        Some(os("/nonexistent:/also/not")),
    ] {
        let err = look_path_in(os("prog"), path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "PATH={path:?}");
        assert_eq!(err.path(), Some(Path::new("prog")));
        assert_eq!(
            err.to_string(),
            "exec: \"prog\": executable file not found in $PATH"
        );
        let io: std::io::Error = err.into();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }
    // Names are quoted the way Go's strconv.Quote does.
    let err = look_path_in(os("a\"b\nc"), Some(dir)).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"exec: "a\"b\nc": executable file not found in $PATH"#
    );
    let err = look_path_in(OsStr::from_bytes(b"x\xff"), Some(dir)).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"exec: "x\xff": executable file not found in $PATH"#
    );
}

#[test]
fn invalid_names() {
    let _g = common::start("invalid_names", 30);
    let fx = TempDir::new("invalid");
    // Even with an executable file that the joined path would name, nothing is tried.
    fx.file("prog", PROG, 0o755);
    let dir = fx.path().as_os_str();
    let err = look_path_in(os(""), Some(dir)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.to_string(), "exec: \"\": empty program name");
    for name in [&b"a\0b"[..], b"prog\0", b"/bin/\0sh", b"\0"] {
        let name = OsStr::from_bytes(name);
        let err = look_path_in(name, Some(dir)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name:?}");
        assert_eq!(err.path(), Some(Path::new(name)));
        assert!(path_candidates(name, Some(dir)).is_empty());
    }
    let err = look_path_in(os("a\0b"), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"exec: "a\x00b": program name contains a NUL byte"#
    );
    // "." and ".." are never programs (Go, CVE-2025-47906): not found, PATH not consulted.
    for name in [".", ".."] {
        let err = look_path_in(os(name), Some(dir)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{name:?}");
        assert_eq!(
            err.to_string(),
            format!("exec: \"{name}\": executable file not found in $PATH")
        );
        assert!(path_candidates(os(name), Some(dir)).is_empty());
    }
    assert!(path_candidates(os(""), Some(dir)).is_empty());
}

#[test]
fn candidates_order_and_join() {
    let _g = common::start("candidates_order_and_join", 30);
    let c = |name: &str, path: Option<&str>| -> Vec<String> {
        path_candidates(os(name), path.map(os))
            .into_iter()
            .map(|p| p.to_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        c("prog", Some("a::b:")),
        ["a/prog", "prog", "b/prog", "prog"]
    );
    assert_eq!(c("prog", Some(":")), ["prog", "prog"]);
    assert_eq!(c("prog", Some(".")), ["prog"]);
    assert_eq!(c("prog", Some("./")), ["prog"]);
    assert_eq!(c("prog", Some("/")), ["/prog"]);
    assert_eq!(c("prog", Some("//")), ["/prog"]);
    assert_eq!(c("prog", Some("/usr//bin/")), ["/usr/bin/prog"]);
    assert_eq!(c("prog", Some("/usr/bin/../lib")), ["/usr/lib/prog"]);
    assert_eq!(c("prog", Some("/..")), ["/prog"]);
    assert_eq!(c("prog", Some("..")), ["../prog"]);
    assert_eq!(c("prog", Some("../..")), ["../../prog"]);
    assert_eq!(c("prog", Some("a/../b")), ["b/prog"]);
    assert_eq!(c("prog", Some("a/..")), ["prog"]);
    assert_eq!(c("prog", Some("./sub/bin")), ["sub/bin/prog"]);
    assert_eq!(
        c("prog", Some("/bin:/usr/bin:/bin")),
        ["/bin/prog", "/usr/bin/prog", "/bin/prog"]
    );
    assert_eq!(c("...", Some("/bin")), ["/bin/..."]);
    assert_eq!(c(".prog", Some("/bin")), ["/bin/.prog"]);
    // No elements.
    assert!(c("prog", None).is_empty());
    assert!(c("prog", Some("")).is_empty());
    // Names with a slash: only themselves, unchanged.
    assert_eq!(c("x/y", Some("a:b")), ["x/y"]);
    assert_eq!(c("./prog", None), ["./prog"]);
    assert_eq!(c("/bin//sh/", Some("a")), ["/bin//sh/"]);
    // Non-UTF-8 bytes pass through.
    let got = path_candidates(
        OsStr::from_bytes(b"p\xff"),
        Some(OsStr::from_bytes(b"/d\xfe")),
    );
    assert_eq!(got, [PathBuf::from(OsStr::from_bytes(b"/d\xfe/p\xff"))]);
}
