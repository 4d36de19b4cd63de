//! systemd's `sd_notify` and the PID file.

use std::io::{self, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

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

/// Writes `pid` to `path` atomically: a temporary file in the same directory, flushed to
/// disk, then renamed over `path`, so a reader sees the old or the new pid, never a part.
pub(crate) fn write_pid_file(path: &Path, pid: u32) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "PID file path has no name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{pid}.tmp"));
    let tmp = path.with_file_name(tmp_name);
    let write = || -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{pid}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_is_replaced() {
        let dir = std::env::temp_dir().join(format!("forkexec-pid-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let p = dir.join("app.pid");
        write_pid_file(&p, 12).unwrap();
        write_pid_file(&p, 345).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "345\n");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
