//! The hand-over environment, parsed as untrusted text by pure functions (no system call).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;

use crate::{Error, Result};

/// The first inherited fd number (systemd's `SD_LISTEN_FDS_START`).
///
/// # Examples
/// ```
/// assert_eq!(forkexec::upgrade::LISTEN_FDS_START, 3);
/// ```
#[doc(alias = "SD_LISTEN_FDS_START")]
pub const LISTEN_FDS_START: RawFd = 3;

/// The most fds a hand-over may name: a larger `LISTEN_FDS` is refused as malformed, so
/// that a hostile count cannot make the parser allocate without bound.
///
/// # Examples
/// ```
/// assert_eq!(forkexec::upgrade::MAX_LISTEN_FDS, 4096);
/// ```
pub const MAX_LISTEN_FDS: usize = 4096;

/// The longest fd name accepted (systemd's `FDNAME_MAX`).
///
/// # Examples
/// ```
/// assert_eq!(forkexec::upgrade::MAX_FD_NAME_LEN, 255);
/// ```
#[doc(alias = "FDNAME_MAX")]
pub const MAX_FD_NAME_LEN: usize = 255;

/// `LISTEN_PID`: the pid the hand-over is meant for (systemd).
///
/// # Examples
/// ```
/// assert_eq!(forkexec::upgrade::ENV_LISTEN_PID, "LISTEN_PID");
/// ```
pub const ENV_LISTEN_PID: &str = "LISTEN_PID";
/// `LISTEN_FDS`: how many fds are handed over, from fd 3 on (systemd).
///
/// # Examples
/// ```
/// assert_eq!(forkexec::upgrade::ENV_LISTEN_FDS, "LISTEN_FDS");
/// ```
pub const ENV_LISTEN_FDS: &str = "LISTEN_FDS";
/// `LISTEN_FDNAMES`: their names, `:`-separated (systemd).
///
/// # Examples
/// ```
/// assert_eq!(forkexec::upgrade::ENV_LISTEN_FDNAMES, "LISTEN_FDNAMES");
/// ```
pub const ENV_LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";
/// The fd number of the readiness pipe's write end (forkexec's own addition).
///
/// # Examples
/// ```
/// assert_eq!(forkexec::upgrade::ENV_READY_FD, "FORKEXEC_UPGRADE_READY_FD");
/// ```
pub const ENV_READY_FD: &str = "FORKEXEC_UPGRADE_READY_FD";
/// The generation number of the new process: 1 for a fresh start (forkexec's own addition).
///
/// # Examples
/// ```
/// assert_eq!(forkexec::upgrade::ENV_GENERATION, "FORKEXEC_UPGRADE_GENERATION");
/// ```
pub const ENV_GENERATION: &str = "FORKEXEC_UPGRADE_GENERATION";

/// Every variable of the hand-over.
pub(crate) const HANDOVER_VARS: [&str; 5] = [
    ENV_LISTEN_PID,
    ENV_LISTEN_FDS,
    ENV_LISTEN_FDNAMES,
    ENV_READY_FD,
    ENV_GENERATION,
];

/// At most this much of an untrusted value is quoted in an error message.
const QUOTE_MAX: usize = 40;

/// `KEY="value"` for an error message, the value cut short and escaped.
fn quote(key: &str, v: &OsStr) -> String {
    let b = v.as_bytes();
    let cut = &b[..b.len().min(QUOTE_MAX)];
    let mut s = format!("{key}=\"{}\"", cut.escape_ascii());
    if b.len() > QUOTE_MAX {
        s.push_str(&format!("... ({} bytes)", b.len()));
    }
    s
}

/// A non-negative decimal number of ASCII digits only (no sign, no space), at most `max`.
fn decimal(key: &str, v: &OsStr, max: u64) -> Result<u64> {
    let b = v.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Err(Error::invalid(format!(
            "hand-over environment: {} is not a decimal number",
            quote(key, v)
        )));
    }
    let mut n: u64 = 0;
    for &d in b {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .filter(|&n| n <= max)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "hand-over environment: {} is out of range (at most {max})",
                    quote(key, v)
                ))
            })?;
    }
    Ok(n)
}

/// Whether `name` is a valid fd name: 1 to 255 printable ASCII characters other than `:`
/// (systemd's rule for `FileDescriptorName=`).
///
/// # Examples
/// ```
/// use forkexec::upgrade::is_valid_fd_name;
/// assert!(is_valid_fd_name("http"));
/// assert!(!is_valid_fd_name("a:b"));
/// assert!(!is_valid_fd_name(""));
/// assert!(!is_valid_fd_name("tab\there"));
/// ```
///
/// # References
/// `systemd.socket(5)` (`FileDescriptorName=`), `sd_listen_fds_with_names(3)`.
#[doc(alias = "FileDescriptorName")]
pub fn is_valid_fd_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FD_NAME_LEN
        && name
            .bytes()
            .all(|c| (b' '..=b'~').contains(&c) && c != b':')
}

pub(crate) fn check_fd_name(name: &str) -> Result<()> {
    if is_valid_fd_name(name) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid fd name {:?}: 1 to {MAX_FD_NAME_LEN} printable ASCII characters, no ':'",
            name.chars().take(QUOTE_MAX).collect::<String>()
        )))
    }
}

/// Whether `LISTEN_PID` names this process: `Ok(false)` when it is absent or names
/// another process (the hand-over is then not for us and is ignored, as systemd's
/// `sd_listen_fds` does).
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when it is not a positive
/// decimal pid.
pub(crate) fn listen_pid_matches(listen_pid: Option<&OsStr>, my_pid: i32) -> Result<bool> {
    let Some(v) = listen_pid else {
        return Ok(false);
    };
    let pid = decimal(ENV_LISTEN_PID, v, i32::MAX as u64)?;
    if pid == 0 {
        return Err(Error::invalid(format!(
            "hand-over environment: {} is not a process id",
            quote(ENV_LISTEN_PID, v)
        )));
    }
    Ok(pid == my_pid as u64)
}

// Hidden from the docs (`#[doc(hidden)]` on the re-export in mod.rs): public only so
// that the fuzz target, a separate crate, can reach it.
/// Parses systemd's socket-activation variables (`LISTEN_PID`, `LISTEN_FDS`,
/// `LISTEN_FDNAMES`) into the named fds they hand to the process `my_pid`: fd 3 is the
/// first. A pure function: it reads no environment and checks no fd.
///
/// The rules, as systemd's `sd_listen_fds_with_names`, with stricter checks of the text:
/// - `LISTEN_PID` absent, or naming another pid: nothing is handed over (`Ok` of an empty
///   list), whatever the other variables say;
/// - `LISTEN_FDS` absent or `0`: nothing is handed over;
/// - numbers are ASCII digits only (no sign, no space); `LISTEN_PID` is at most
///   `i32::MAX` and not 0, `LISTEN_FDS` at most [`MAX_LISTEN_FDS`];
/// - `LISTEN_FDNAMES`, when present, holds exactly `LISTEN_FDS` names separated by `:`,
///   each valid ([`is_valid_fd_name`]) and all distinct; when absent the fds are named
///   `LISTEN_FD_3`, `LISTEN_FD_4`, ... (as go-systemd does).
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput), naming the variable and
/// quoting (a bounded prefix of) its value, for a malformed number, an out-of-range count,
/// a name count that differs from `LISTEN_FDS`, an invalid name, or a duplicate name.
///
/// # Examples
/// ```
/// use std::ffi::OsStr;
/// use forkexec::upgrade::parse_listen_env;
/// let s = |v: &'static str| Some(OsStr::new(v));
/// let fds = parse_listen_env(s("42"), s("2"), s("http:admin"), 42)?;
/// assert_eq!(fds, [("http".to_string(), 3), ("admin".to_string(), 4)]);
/// // Meant for another process: ignored.
/// assert!(parse_listen_env(s("41"), s("2"), s("http:admin"), 42)?.is_empty());
/// // Malformed: a clear error.
/// let err = parse_listen_env(s("42"), s("2"), s("http:http"), 42).unwrap_err();
/// assert!(err.to_string().contains("duplicate"));
/// assert!(parse_listen_env(s("42"), s("1e9"), None, 42).is_err());
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `sd_listen_fds(3)`, `sd_listen_fds_with_names(3)`.
#[doc(alias = "sd_listen_fds_with_names")]
pub fn parse_listen_env(
    listen_pid: Option<&OsStr>,
    listen_fds: Option<&OsStr>,
    listen_fdnames: Option<&OsStr>,
    my_pid: i32,
) -> Result<Vec<(String, RawFd)>> {
    if !listen_pid_matches(listen_pid, my_pid)? {
        return Ok(Vec::new());
    }
    let Some(v) = listen_fds else {
        return Ok(Vec::new());
    };
    let n = decimal(ENV_LISTEN_FDS, v, MAX_LISTEN_FDS as u64)? as usize;
    if n == 0 {
        return Ok(Vec::new());
    }
    let fd = |i: usize| LISTEN_FDS_START + i as RawFd;
    let Some(names) = listen_fdnames else {
        return Ok((0..n)
            .map(|i| (format!("LISTEN_FD_{}", fd(i)), fd(i)))
            .collect());
    };
    let b = names.as_bytes();
    let parts: Vec<&[u8]> = if b.is_empty() {
        Vec::new()
    } else {
        b.split(|&c| c == b':').collect()
    };
    if parts.len() != n {
        return Err(Error::invalid(format!(
            "hand-over environment: {} holds {} names but LISTEN_FDS is {n}",
            quote(ENV_LISTEN_FDNAMES, names),
            parts.len()
        )));
    }
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    for (i, p) in parts.into_iter().enumerate() {
        let name = std::str::from_utf8(p)
            .ok()
            .filter(|s| is_valid_fd_name(s))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "hand-over environment: name {} of {} is invalid \
                     (1 to {MAX_FD_NAME_LEN} printable ASCII characters)",
                    i + 1,
                    quote(ENV_LISTEN_FDNAMES, OsStr::from_bytes(p))
                ))
            })?;
        if !seen.insert(name) {
            return Err(Error::invalid(format!(
                "hand-over environment: duplicate fd name {name:?} in LISTEN_FDNAMES \
                 (give each socket its own name, e.g. systemd's FileDescriptorName=)"
            )));
        }
        out.push((name.to_owned(), fd(i)));
    }
    Ok(out)
}

// Hidden from the docs (`#[doc(hidden)]` on the re-export in mod.rs): public only so
// that the fuzz target, a separate crate, can reach it.
/// Parses `FORKEXEC_UPGRADE_READY_FD`, the readiness pipe an upgrading parent passes after
/// the listening fds. A pure function.
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when it is not a decimal fd
/// number of at least 3 and at most `i32::MAX`, or when it is one of the fds in `listen`.
///
/// # Examples
/// ```
/// use std::ffi::OsStr;
/// use forkexec::upgrade::parse_ready_fd;
/// let listen = [("http".to_string(), 3)];
/// assert_eq!(parse_ready_fd(Some(OsStr::new("4")), &listen)?, Some(4));
/// assert_eq!(parse_ready_fd(None, &listen)?, None);
/// assert!(parse_ready_fd(Some(OsStr::new("3")), &listen).is_err());
/// assert!(parse_ready_fd(Some(OsStr::new("1")), &[]).is_err());
/// # Ok::<(), forkexec::Error>(())
/// ```
pub fn parse_ready_fd(value: Option<&OsStr>, listen: &[(String, RawFd)]) -> Result<Option<RawFd>> {
    let Some(v) = value else {
        return Ok(None);
    };
    let fd = decimal(ENV_READY_FD, v, i32::MAX as u64)? as RawFd;
    if fd < LISTEN_FDS_START {
        return Err(Error::invalid(format!(
            "hand-over environment: {} is below {LISTEN_FDS_START}",
            quote(ENV_READY_FD, v)
        )));
    }
    if let Some((name, _)) = listen.iter().find(|(_, f)| *f == fd) {
        return Err(Error::invalid(format!(
            "hand-over environment: {} is also the listening fd {name:?}",
            quote(ENV_READY_FD, v)
        )));
    }
    Ok(Some(fd))
}

/// Parses `FORKEXEC_UPGRADE_GENERATION` (absent: 1).
pub(crate) fn parse_generation(value: Option<&OsStr>) -> Result<u64> {
    match value {
        None => Ok(1),
        Some(v) => match decimal(ENV_GENERATION, v, u64::MAX)? {
            0 => Err(Error::invalid(format!(
                "hand-over environment: {} is not a generation (they start at 1)",
                quote(ENV_GENERATION, v)
            ))),
            g => Ok(g),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<&OsStr> {
        Some(OsStr::new(v))
    }

    #[test]
    fn systemd_rules() {
        assert!(parse_listen_env(None, s("3"), None, 7).unwrap().is_empty());
        assert!(
            parse_listen_env(s("7"), None, s("a"), 7)
                .unwrap()
                .is_empty()
        );
        assert!(
            parse_listen_env(s("7"), s("0"), s("a"), 7)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            parse_listen_env(s("7"), s("2"), None, 7).unwrap(),
            [
                ("LISTEN_FD_3".to_string(), 3),
                ("LISTEN_FD_4".to_string(), 4)
            ]
        );
        assert_eq!(
            parse_listen_env(s("0007"), s("01"), s("x"), 7).unwrap(),
            [("x".to_string(), 3)]
        );
    }

    #[test]
    fn malformed() {
        let bad = [
            (s("x"), s("1"), None),
            (s("0"), s("1"), None),
            (s("-7"), s("1"), None),
            (s("+7"), s("1"), None),
            (s(" 7"), s("1"), None),
            (s("99999999999999999999999"), s("1"), None),
            (s("7"), s(""), None),
            (s("7"), s("1 "), None),
            (s("7"), s("4097"), None),
            (s("7"), s("18446744073709551616"), None),
            (s("7"), s("1"), s("")),
            (s("7"), s("2"), s("a")),
            (s("7"), s("1"), s("a:b")),
            (s("7"), s("2"), s("a:")),
            (s("7"), s("2"), s("a:a")),
            (s("7"), s("1"), s("tab\t")),
        ];
        for (p, f, n) in bad {
            let e = parse_listen_env(p, f, n, 7).unwrap_err();
            assert_eq!(
                e.kind(),
                crate::ErrorKind::InvalidInput,
                "{p:?} {f:?} {n:?}"
            );
        }
        let long = "x".repeat(10_000);
        let e = parse_listen_env(s("7"), s(&long), None, 7).unwrap_err();
        assert!(e.to_string().len() < 200, "{e}");
    }

    #[test]
    fn generation() {
        assert_eq!(parse_generation(None).unwrap(), 1);
        assert_eq!(parse_generation(s("5")).unwrap(), 5);
        assert!(parse_generation(s("0")).is_err());
        assert!(parse_generation(s("-1")).is_err());
    }
}
