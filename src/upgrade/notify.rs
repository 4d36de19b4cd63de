//! systemd's `sd_notify` and the PID file.

use std::collections::hash_map::RandomState;
use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, ErrorKind, Result};

/// Sends `state` (for example `"READY=1"`, `"STATUS=serving"`, `"MAINPID=1234"`, several
/// separated by newlines) to the service manager's `NOTIFY_SOCKET`, as systemd's
/// `sd_notify`: one datagram on a Unix socket, whose name starting with `@` is abstract.
/// Returns `Ok(false)`, sending nothing, when `NOTIFY_SOCKET` is not set.
///
/// [`Upgrader`](super::Upgrader) sends `READY=1` and `MAINPID=` itself; this is for the
/// other states (`STATUS=`, `WATCHDOG=1`, `STOPPING=1`, ...).
///
/// # Errors
/// [`ErrorKind::Unsupported`] for a `NOTIFY_SOCKET` that is neither a path nor an `@`
/// name (such as `vsock:`); [`ErrorKind::Io`] when the datagram cannot be sent.
///
/// # Examples
/// ```
/// // Outside a systemd service nothing is sent.
/// if std::env::var_os("NOTIFY_SOCKET").is_none() {
///     assert!(!forkexec::upgrade::sd_notify("STATUS=warming up")?);
/// }
/// # Ok::<(), forkexec::Error>(())
/// ```
///
/// # References
/// `sd_notify(3)` (the protocol and its states), `unix(7)` (datagram sockets, abstract
/// names), `systemd.service(5)` (`Type=notify`, `NotifyAccess=`).
#[doc(alias = "SdNotify")]
pub fn sd_notify(state: &str) -> Result<bool> {
    let Some(sock) = std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty()) else {
        return Ok(false);
    };
    let b = sock.as_bytes();
    let addr = if let Some(name) = b.strip_prefix(b"@") {
        SocketAddr::from_abstract_name(name)
    } else if b.starts_with(b"/") {
        SocketAddr::from_pathname(&sock)
    } else {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("sd_notify: unsupported NOTIFY_SOCKET {sock:?}"),
        ));
    }
    .map_err(|e| Error::from_io(e).with_path(&sock))?;
    let d = UnixDatagram::unbound().map_err(Error::from_io)?;
    d.send_to_addr(state.as_bytes(), &addr)
        .map_err(|e| Error::from_io(e).with_path(&sock))?;
    Ok(true)
}

/// How many temporary names [`write_pid_file`] tries before it gives up: each is
/// unpredictable, so a collision means someone is planting files, not bad luck.
const TEMP_ATTEMPTS: u32 = 16;

/// At most this much of the PID file's name is repeated in its temporary name, so that the
/// temporary name stays within `NAME_MAX` (255 bytes).
const TEMP_NAME_KEEP: usize = 64;

/// Writes `pid` to `path` atomically: a new temporary file in the same directory, flushed
/// to disk, then renamed over `path`, so a reader sees the old or the new pid, never a
/// part.
///
/// The temporary file is created with `O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC` and mode
/// `0644` (less the umask) under an unpredictable name, so nothing planted in the
/// directory (a symlink to a file of the victim's) is ever opened or written; `rename`
/// replaces a symlink at `path` itself rather than following it. On any failure the
/// temporary file is removed.
pub(crate) fn write_pid_file(path: &Path, pid: u32) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "PID file path has no name"))?;
    let (tmp, mut f) = create_temp(path, || temp_name(name, pid))?;
    let mut write = || -> io::Result<()> {
        writeln!(f, "{pid}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        // Ours: created by this call (O_EXCL). Unlinking never follows a symlink.
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Creates a new file next to `path` under the first free name `next_name` gives, at most
/// [`TEMP_ATTEMPTS`] tries; never opens an existing file, nor follows a symlink.
fn create_temp(
    path: &Path,
    mut next_name: impl FnMut() -> OsString,
) -> io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let tmp = path.with_file_name(next_name());
        // std adds O_CLOEXEC; create_new is O_CREAT | O_EXCL, which already refuses a
        // symlink at the name (EEXIST), and O_NOFOLLOW says so twice.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// `.<name>.<pid>.<counter>.<random>.tmp`: the random part is SipHash under std's
/// `RandomState` keys (seeded from the kernel's `getrandom`), so another user cannot
/// guess the name and plant something there first.
fn temp_name(name: &OsStr, pid: u32) -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = RandomState::new().build_hasher();
    h.write_u32(pid);
    h.write_u64(n);
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    let b = name.as_bytes();
    let mut s = OsString::from(".");
    s.push(OsStr::from_bytes(&b[..b.len().min(TEMP_NAME_KEEP)]));
    s.push(format!(".{pid}.{n}.{:016x}.tmp", h.finish()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// A scratch directory, removed when the test ends, pass or fail.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Scratch {
            let d =
                std::env::temp_dir().join(format!("forkexec-pid-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir(&d).unwrap();
            Scratch(d)
        }

        fn names(&self) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// This process's umask, read without changing it.
    fn umask() -> u32 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let v = s
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .expect("Umask in /proc/self/status");
        u32::from_str_radix(v.trim(), 8).unwrap()
    }

    #[test]
    fn pid_file_is_replaced() {
        let d = Scratch::new("replaced");
        let p = d.0.join("app.pid");
        write_pid_file(&p, 12).unwrap();
        write_pid_file(&p, 345).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "345\n");
        assert_eq!(d.names(), ["app.pid"]);
    }

    #[test]
    fn pid_file_never_follows_a_symlink() {
        let d = Scratch::new("symlink");
        let (victim, victim2) = (d.0.join("victim"), d.0.join("victim2"));
        std::fs::write(&victim, "precious\n").unwrap();
        std::fs::write(&victim2, "also precious\n").unwrap();
        // Planted at the temporary name this function once used, and at the PID file.
        let planted = d.0.join(".app.pid.4242.tmp");
        symlink(&victim, &planted).unwrap();
        let p = d.0.join("app.pid");
        symlink(&victim2, &p).unwrap();

        write_pid_file(&p, 4242).unwrap();

        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(
            std::fs::read_to_string(&victim2).unwrap(),
            "also precious\n"
        );
        assert!(std::fs::symlink_metadata(&p).unwrap().file_type().is_file());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "4242\n");
        assert_eq!(std::fs::read_link(&planted).unwrap(), victim);
        assert_eq!(
            d.names(),
            [".app.pid.4242.tmp", "app.pid", "victim", "victim2"]
        );
    }

    #[test]
    fn pid_file_mode_and_no_temp_left() {
        let d = Scratch::new("mode");
        let p = d.0.join("app.pid");
        let want = 0o644 & !umask();
        write_pid_file(&p, 1).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&p), want, "{:o}", mode(&p));
        // Replacing a file of another mode gives the new one the same mode.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_pid_file(&p, 2).unwrap();
        assert_eq!(mode(&p), want, "{:o}", mode(&p));
        assert_eq!(d.names(), ["app.pid"]);
    }

    #[test]
    fn pid_file_failure_leaves_no_temp() {
        let d = Scratch::new("failure");
        // The rename fails: a non-empty directory is in the way.
        let p = d.0.join("app.pid");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("x"), "").unwrap();
        assert!(write_pid_file(&p, 7).is_err());
        assert_eq!(d.names(), ["app.pid"]);
        assert!(write_pid_file(&d.0.join("no/such/app.pid"), 7).is_err());
        assert_eq!(d.names(), ["app.pid"]);
        let e = write_pid_file(Path::new("/"), 7).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn temp_names_differ_and_taken_ones_are_skipped() {
        let a = temp_name(OsStr::new("app.pid"), 9);
        let b = temp_name(OsStr::new("app.pid"), 9);
        assert_ne!(a, b);
        assert!(a.as_bytes().starts_with(b".app.pid.9."), "{a:?}");
        let long = "n".repeat(255);
        assert!(temp_name(OsStr::new(&long), u32::MAX).len() <= 255);

        let d = Scratch::new("taken");
        let victim = d.0.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        std::fs::write(d.0.join(".t1"), "mine\n").unwrap();
        symlink(&victim, d.0.join(".t2")).unwrap();
        let p = d.0.join("app.pid");
        let mut names = [".t1", ".t2", ".t3"].into_iter();
        let (tmp, f) = create_temp(&p, || names.next().unwrap().into()).unwrap();
        drop(f);
        assert_eq!(tmp, d.0.join(".t3"));
        assert_eq!(std::fs::read_to_string(d.0.join(".t1")).unwrap(), "mine\n");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        // Every name taken: a bounded number of tries, then AlreadyExists.
        let mut tries = 0;
        let e = create_temp(&p, || {
            tries += 1;
            ".t2".into()
        })
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(tries, TEMP_ATTEMPTS);
        assert_eq!(d.names(), [".t1", ".t2", ".t3", "victim"]);
    }
}
