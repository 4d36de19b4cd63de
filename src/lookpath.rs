//! `look_path`: Go's `exec.LookPath` rules for finding a program on `PATH`.
//!
//! The rules, as in Go's `os/exec` (`lp_unix.go`, Go 1.19 and later):
//!
//! - A name containing `/` is tried as it is (relative names included, and never an
//!   [`ErrorKind::Dot`] error); `PATH` is not consulted.
//! - Otherwise `PATH` is split on `:`; an empty element means `.` (shell semantics); an
//!   unset or empty `PATH` has no elements. Each candidate is `filepath.Join(dir, name)`,
//!   which also *cleans* the result lexically: `Join(".", "prog")` is `"prog"` (not
//!   `"./prog"`), `Join("/usr//bin/", "prog")` is `"/usr/bin/prog"`, `Join("a/../b",
//!   "prog")` is `"b/prog"`. This module produces exactly the same strings.
//! - A candidate is accepted when it exists (following symlinks), is not a directory, and
//!   the kernel grants execute permission for the *effective* ids
//!   (`faccessat(AT_FDCWD, path, X_OK, AT_EACCESS)`). The first accepted candidate wins.
//! - A winner that is not absolute (found through `""`, `"."` or any other relative
//!   `PATH` element) is reported as an [`ErrorKind::Dot`] error that still carries the
//!   path, like Go's `ErrDot`.
//!
//! Two deliberate refinements over Go: the file must be a *regular* file with at least
//! one execute bit in its mode (Go only rejects directories; `execve` refuses anything
//! else with `EACCES` anyway, and the mode check keeps root, for whom `X_OK` only needs
//! some execute bit, from ever accepting a `0644` file even where the access check is
//! unavailable); and an empty name or one containing a NUL byte is an
//! [`ErrorKind::InvalidInput`] error before any system call (Go reports an empty name as
//! not found). The names `.` and `..` are never found, as in Go since CVE-2025-47906.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::errno_text;
use crate::sys;
use crate::{Error, ErrorKind, Result};

/// Finds the program `name` the way Go's `exec.LookPath` does, searching this process's
/// `PATH` environment variable.
///
/// A `name` containing `/` is checked and returned as it is. Otherwise each `PATH`
/// directory is tried in order (an empty element means the current directory) and the
/// first executable regular file wins. See [`look_path_in`] for the details, which this
/// function shares.
///
/// # Errors
/// - [`ErrorKind::InvalidInput`]: `name` is empty or contains a NUL byte.
/// - [`ErrorKind::NotFound`]: no `PATH` directory holds an executable `name`
///   (`exec: "prog": executable file not found in $PATH`), or a `name` with a `/` does
///   not exist.
/// - [`ErrorKind::PermissionDenied`]: a `name` with a `/` is a directory, not a regular
///   file, or not executable.
/// - [`ErrorKind::Dot`]: the program was found through a relative `PATH` element;
///   [`Error::path`] holds the relative path found, for a caller that accepts it.
///
/// # Examples
/// ```
/// use forkexec::{look_path, ErrorKind};
/// use std::path::Path;
///
/// // A name with a slash is checked, not searched for.
/// assert_eq!(look_path("/bin/sh")?, Path::new("/bin/sh"));
///
/// let err = look_path("no-such-program-for-the-doctest").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert_eq!(
///     err.to_string(),
///     r#"exec: "no-such-program-for-the-doctest": executable file not found in $PATH"#
/// );
///
/// if let Ok(sh) = look_path("sh") {
///     assert!(sh.is_absolute());
/// }
/// # Ok::<(), forkexec::Error>(())
/// ```
#[doc(alias = "LookPath")]
pub fn look_path(name: impl AsRef<OsStr>) -> Result<PathBuf> {
    let path = std::env::var_os("PATH");
    look_path_in(name.as_ref(), path.as_deref())
}

/// [`look_path`] with an explicit `PATH` value: `None` means `PATH` is unset, which, like
/// an empty `PATH`, finds nothing. A command uses this with the `PATH` its child will see.
///
/// The candidates tried are exactly [`path_candidates`]`(name, path)`, in that order. A
/// candidate is accepted when it is a regular file (symlinks followed) with an execute bit
/// that `faccessat(X_OK, AT_EACCESS)` confirms for the effective ids; candidates that fail
/// for any reason are skipped. The returned path is the candidate string itself (for a
/// `name` with a `/`, `name` unchanged).
///
/// A program found in the current directory is reported, like Go, as `"prog"` rather than
/// `"./prog"`: pass it to `execve` (which does not search `PATH`), never to `execvp`.
///
/// # Errors
/// - [`ErrorKind::InvalidInput`]: `name` is empty or contains a NUL byte; no system call
///   is made.
/// - [`ErrorKind::NotFound`]: no candidate is an executable file, `name` is `.` or `..`,
///   or a `name` with a `/` does not exist (`exec: "./x": stat ./x: no such file or
///   directory`). [`Error::path`] is `name`.
/// - [`ErrorKind::PermissionDenied`]: a `name` with a `/` is a directory (`exec: "./d": is
///   a directory`), not a regular file, or not executable (`exec: "./x": permission
///   denied`). [`Error::path`] is `name`.
/// - [`ErrorKind::Io`]: a `name` with a `/` could not be checked for another reason (a
///   symlink loop, a name too long, ...).
/// - [`ErrorKind::Dot`]: the winning candidate is relative, i.e. it came from an empty,
///   `.` or other relative `PATH` element. The message is `exec: "prog": cannot run
///   executable found relative to current directory` and [`Error::path`] is the relative
///   path found (for example `prog` or `sub/bin/prog`).
///
/// # Examples
/// ```
/// use forkexec::{look_path_in, ErrorKind};
/// use std::ffi::OsStr;
/// use std::path::Path;
///
/// let found = look_path_in(OsStr::new("sh"), Some(OsStr::new("/no/such/dir:/bin")))?;
/// assert_eq!(found, Path::new("/bin/sh"));
///
/// // PATH unset or empty: nothing is found.
/// for path in [None, Some(OsStr::new(""))] {
///     let err = look_path_in(OsStr::new("sh"), path).unwrap_err();
///     assert_eq!(err.kind(), ErrorKind::NotFound);
///     assert_eq!(err.path(), Some(Path::new("sh")));
/// }
///
/// let err = look_path_in(OsStr::new(""), None).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// # Ok::<(), forkexec::Error>(())
/// ```
pub fn look_path_in(name: &OsStr, path: Option<&OsStr>) -> Result<PathBuf> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "exec: \"\": empty program name",
        ));
    }
    if bytes.contains(&0) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("exec: {}: program name contains a NUL byte", quote(bytes)),
        )
        .with_path(name));
    }
    if bytes.contains(&b'/') {
        let file = Path::new(name);
        return match check_executable(file) {
            Ok(()) => Ok(file.to_path_buf()),
            Err(refusal) => Err(refusal.into_error(bytes).with_path(name)),
        };
    }
    for candidate in path_candidates(name, path) {
        if check_executable(&candidate).is_ok() {
            if candidate.is_absolute() {
                return Ok(candidate);
            }
            return Err(Error::new(
                ErrorKind::Dot,
                format!(
                    "exec: {}: cannot run executable found relative to current directory",
                    quote(bytes)
                ),
            )
            .with_path(candidate));
        }
    }
    Err(not_found(bytes).with_path(name))
}

/// The paths [`look_path_in`] would check for `name` with the `PATH` value `path`, in the
/// order it would check them. Pure: no system call, no environment access.
///
/// - `name` empty, containing a NUL byte, or `.`/`..`: no candidates.
/// - `name` containing `/`: just `name`, unchanged.
/// - Otherwise one candidate per `:`-separated element of `path` (an empty element means
///   `.`; `None` and `Some("")` have no elements; duplicates are kept), each being Go's
///   `filepath.Join(dir, name)`: `dir/name`, lexically cleaned (repeated and trailing
///   slashes collapsed, `.` elements dropped, `..` elements resolved against the preceding
///   element). The current directory therefore yields `name` itself, not `./name`.
///
/// # Errors
/// None: this function cannot fail; unusable names simply have no candidates.
///
/// # Examples
/// ```
/// use forkexec::path_candidates;
/// use std::ffi::OsStr;
/// use std::path::PathBuf;
///
/// let c = path_candidates(OsStr::new("prog"), Some(OsStr::new("a::/usr//bin/:./b/../c")));
/// assert_eq!(c, ["a/prog", "prog", "/usr/bin/prog", "c/prog"].map(PathBuf::from));
///
/// assert_eq!(path_candidates(OsStr::new("./prog"), Some(OsStr::new("/bin"))), [PathBuf::from("./prog")]);
/// assert!(path_candidates(OsStr::new("prog"), None).is_empty());
/// assert!(path_candidates(OsStr::new("prog"), Some(OsStr::new(""))).is_empty());
/// ```
pub fn path_candidates(name: &OsStr, path: Option<&OsStr>) -> Vec<PathBuf> {
    let bytes = name.as_bytes();
    if matches!(bytes, b"" | b"." | b"..") || bytes.contains(&0) {
        return Vec::new();
    }
    if bytes.contains(&b'/') {
        return vec![PathBuf::from(name)];
    }
    let path = match path {
        Some(p) if !p.is_empty() => p.as_bytes(),
        _ => return Vec::new(),
    };
    path.split(|&b| b == b':')
        .map(|dir| {
            let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
            let mut joined = Vec::with_capacity(dir.len() + 1 + bytes.len());
            joined.extend_from_slice(dir);
            joined.push(b'/');
            joined.extend_from_slice(bytes);
            PathBuf::from(OsStr::from_bytes(&clean(&joined)))
        })
        .collect()
}

/// Whether the child may search `path` for `name` itself, as `execvp` does, trying
/// `dir/name` for each element `dir` as it is written (no cleaning): only where each of
/// these names the file [`path_candidates`] names, so that the child runs the program Go's
/// lookup would choose. That holds when `name` is a plain file name, every element is
/// absolute (no `ErrDot` to report), none has a `.` or `..` component (Go resolves those by
/// text, `execve` through the directories, symbolic links included: only repeated and
/// trailing slashes remain, which both ignore), no byte is NUL, and no candidate is too
/// long for `execve`. Public for the fuzz targets only.
///
/// # Examples
/// ```
/// use std::ffi::OsStr;
/// use forkexec::searched_by_child;
/// assert!(searched_by_child(OsStr::new("ls"), OsStr::new("/usr/bin//:/bin/")));
/// assert!(!searched_by_child(OsStr::new("ls"), OsStr::new("/opt/app/../bin")));
/// assert!(!searched_by_child(OsStr::new("ls"), OsStr::new("bin:/usr/bin")));
/// ```
#[doc(hidden)]
pub fn searched_by_child(name: &OsStr, path: &OsStr) -> bool {
    let (name, path) = (name.as_bytes(), path.as_bytes());
    !matches!(name, b"" | b"." | b"..")
        && !name.iter().any(|&b| b == b'/' || b == 0)
        && memchr::memchr(0, path).is_none()
        // Every element absolute: the first, and each after a `:`.
        && path.first() == Some(&b'/')
        && memchr::memchr_iter(b':', path).all(|i| path.get(i + 1) == Some(&b'/'))
        && !has_dot_component(path)
        // Shorter than any element's candidate would be.
        && path.len() + 1 + name.len() < sys::child::PATH_MAX
}

/// Whether a `:`-separated list of paths has a `.` or `..` component in one of them.
fn has_dot_component(path: &[u8]) -> bool {
    let ends = |b: Option<&u8>| matches!(b, None | Some(b'/' | b':'));
    memchr::memchr_iter(b'.', path).any(|i| {
        matches!(i.checked_sub(1).map(|j| path[j]), Some(b'/' | b':') | None)
            && (ends(path.get(i + 1)) || (path.get(i + 1) == Some(&b'.') && ends(path.get(i + 2))))
    })
}

/// Why a candidate is not an executable program.
enum Refusal {
    /// `stat` itself failed.
    Stat(i32),
    /// `stat` succeeded but the file is not usable (`EISDIR`, `EACCES`, or the access
    /// check's own error).
    Check(i32),
}

impl Refusal {
    /// The Go-style error for a `name` (containing `/`) that was refused.
    fn into_error(self, name: &[u8]) -> Error {
        let (errno, text) = match self {
            Refusal::Stat(e) => {
                let text = format!("stat {}: {}", String::from_utf8_lossy(name), errno_text(e));
                (e, text)
            }
            Refusal::Check(e) => (e, errno_text(e)),
        };
        let kind = match errno {
            libc::ENOENT | libc::ENOTDIR => ErrorKind::NotFound,
            libc::EACCES | libc::EPERM | libc::EISDIR => ErrorKind::PermissionDenied,
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("exec: {}: {text}", quote(name)))
    }
}

/// Go's `findExecutable`, restricted to regular files: `Ok` when `file` is a regular file
/// (symlinks followed) with an execute bit that the kernel grants to the effective ids.
fn check_executable(file: &Path) -> std::result::Result<(), Refusal> {
    let st = sys::stat(file).map_err(Refusal::Stat)?;
    let mode = st.st_mode;
    match mode & libc::S_IFMT {
        libc::S_IFREG => {}
        libc::S_IFDIR => return Err(Refusal::Check(libc::EISDIR)),
        _ => return Err(Refusal::Check(libc::EACCES)),
    }
    let has_exec_bit = mode & 0o111 != 0;
    match sys::executable(file) {
        // ENOSYS: no faccessat2 and set-id process; EPERM: a seccomp filter refusing the
        // call. Like Go, fall back to the mode bits alone.
        Ok(()) | Err(libc::ENOSYS) | Err(libc::EPERM) if has_exec_bit => Ok(()),
        Ok(()) | Err(libc::ENOSYS) | Err(libc::EPERM) => Err(Refusal::Check(libc::EACCES)),
        Err(e) => Err(Refusal::Check(e)),
    }
}

/// Go's `ErrNotFound` wrapped in an `exec.Error` for `name`.
fn not_found(name: &[u8]) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("exec: {}: executable file not found in $PATH", quote(name)),
    )
}

/// Go's `path.Clean` on bytes: the shortest lexically equivalent path. Collapses repeated
/// slashes, drops `.` elements and trailing slashes, resolves `..` against the preceding
/// element (a `..` at the start of a rooted path is dropped, of a relative one kept), and
/// returns `.` for an empty result.
fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path.first() == Some(&b'/');
    let n = path.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let mut r = 0;
    // `out[..dotdot]` can not be backtracked over by a `..` element.
    let mut dotdot = 0;
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    let at = |i: usize| path.get(i).copied();
    let ends_element = |i: usize| matches!(at(i), None | Some(b'/'));
    while r < n {
        if at(r) == Some(b'/') || (at(r) == Some(b'.') && ends_element(r + 1)) {
            // A slash, or a `.` element: skip it.
            r += 1;
        } else if at(r) == Some(b'.') && at(r + 1) == Some(b'.') && ends_element(r + 2) {
            r += 2;
            if out.len() > dotdot {
                // Drop the last element (and the slash before it, unless it is the root).
                let mut w = out.len() - 1;
                while w > dotdot && out.get(w) != Some(&b'/') {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if out.len() != usize::from(rooted) {
                out.push(b'/');
            }
            while let Some(b) = at(r).filter(|&b| b != b'/') {
                out.push(b);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// Go's `strconv.Quote` for a name that may not be UTF-8: double quotes, with `"` and `\`
/// escaped, the usual C escapes, `\xNN` for other ASCII controls and invalid bytes, and
/// `\uNNNN` for other control characters.
fn quote(name: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0b' => out.push_str("\\v"),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dot_components() {
        for p in [
            "/a/./b",
            "/a/../b",
            "/a/.",
            "/a/..",
            "/x:/a/.:/y",
            "/x:/a/..",
            "/.",
            "/..",
        ] {
            assert!(has_dot_component(p.as_bytes()), "{p}");
        }
        for p in [
            "/usr/bin",
            "/home/u/.cargo/bin",
            "/a/.b",
            "/a/b.",
            "/a/..b",
            "/a/...",
            "/a/b..:/c",
            "/x/.../y",
            "/a//b/",
        ] {
            assert!(!has_dot_component(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn what_the_child_may_search() {
        let ok = |n: &str, p: &str| searched_by_child(OsStr::new(n), OsStr::new(p));
        assert!(ok("ls", "/usr/local/bin:/usr/bin//:/bin/"));
        assert!(ok("ls", "/home/u/.cargo/bin"));
        for (n, p) in [
            ("ls", ""),
            ("ls", "bin"),
            ("ls", "/bin:"),
            ("ls", "/bin::/usr/bin"),
            ("ls", "/bin:usr/bin"),
            ("ls", "/opt/x/../bin"),
            ("ls", "/opt/./bin"),
            ("ls", "/bin\0"),
            ("", "/bin"),
            ("..", "/bin"),
            ("a/b", "/bin"),
        ] {
            assert!(!ok(n, p), "{n:?} {p:?}");
        }
        let long = format!("/{}", "x".repeat(4100));
        assert!(ok("abc", &long[..4096 - 1 - 3 - 1]));
        assert!(!ok("abc", &long[..4096 - 1 - 3]));
    }

    use super::*;

    fn cleaned(p: &str) -> String {
        String::from_utf8(clean(p.as_bytes())).unwrap()
    }

    #[test]
    fn clean_matches_go() {
        // Cases from Go's path/filepath tests.
        let cases = [
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("", "."),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("./", "."),
            ("../", ".."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("a/../b:/../../c", "../c"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
            ("./prog", "prog"),
            ("..prog/.x", "..prog/.x"),
        ];
        for (input, want) in cases {
            assert_eq!(cleaned(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn path_unset_is_not_found() {
        let err = look_path_in(OsStr::new("sh"), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(
            err.to_string(),
            r#"exec: "sh": executable file not found in $PATH"#
        );
        assert_eq!(err.path(), Some(Path::new("sh")));
    }

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote(b"prog"), r#""prog""#);
        assert_eq!(quote(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote(b"a\nb\tc\0d\x7f"), r#""a\nb\tc\x00d\x7f""#);
        assert_eq!(quote(b"\xffok\xc3"), r#""\xffok\xc3""#);
        assert_eq!(quote("é\u{85}".as_bytes()), "\"é\\u0085\"");
    }

    #[test]
    fn arbitrary_bytes_do_not_panic() {
        let samples: [&[u8]; 8] = [
            b"",
            b"/",
            b"//",
            b"..",
            b"../..//.",
            b"\xff/\xfe",
            b"a\0b",
            b":::",
        ];
        for name in samples {
            for path in samples {
                let _ = path_candidates(OsStr::from_bytes(name), Some(OsStr::from_bytes(path)));
                let _ = clean(name);
                let _ = quote(name);
            }
        }
    }
}
