//! Listening sockets: checking an inherited fd before adopting it, and creating new ones.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use rustix::net::{
    AddressFamily, SocketAddrUnix, SocketFlags, SocketType, bind, listen, socket_with, sockopt,
};

/// What an inherited fd must be to be adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Any listening socket.
    Listener,
    /// A listening TCP socket (IPv4 or IPv6).
    Tcp,
    /// A listening Unix stream socket.
    Unix,
}

/// Checks that `fd` is a listening socket of the wanted family; the error says what it is
/// instead.
pub(crate) fn check_listener(fd: BorrowedFd<'_>, want: Want) -> std::result::Result<(), String> {
    let ty = match sockopt::socket_type(fd) {
        Ok(t) => t,
        Err(rustix::io::Errno::NOTSOCK) => return Err("is not a socket".into()),
        Err(e) => return Err(format!("cannot be inspected: {e}")),
    };
    let domain = sockopt::socket_domain(fd).map_err(|e| format!("cannot be inspected: {e}"))?;
    let family_ok = match want {
        Want::Listener => true,
        Want::Tcp => {
            (domain == AddressFamily::INET || domain == AddressFamily::INET6)
                && ty == SocketType::STREAM
        }
        Want::Unix => domain == AddressFamily::UNIX && ty == SocketType::STREAM,
    };
    if !family_ok {
        let wanted = match want {
            Want::Tcp => "a TCP socket",
            _ => "a Unix stream socket",
        };
        return Err(format!(
            "is not {wanted} (family {}, type {})",
            family_name(domain),
            type_name(ty)
        ));
    }
    match sockopt::socket_acceptconn(fd) {
        Ok(true) => Ok(()),
        Ok(false) => Err("is a socket but not listening".into()),
        Err(e) => Err(format!("cannot be inspected: {e}")),
    }
}

fn family_name(f: AddressFamily) -> String {
    match f {
        AddressFamily::INET => "AF_INET".into(),
        AddressFamily::INET6 => "AF_INET6".into(),
        AddressFamily::UNIX => "AF_UNIX".into(),
        f => format!("{}", f.as_raw()),
    }
}

fn type_name(t: SocketType) -> String {
    match t {
        SocketType::STREAM => "SOCK_STREAM".into(),
        SocketType::DGRAM => "SOCK_DGRAM".into(),
        SocketType::SEQPACKET => "SOCK_SEQPACKET".into(),
        t => format!("{}", t.as_raw()),
    }
}

/// The local address of a TCP socket.
pub(crate) fn tcp_local_addr(fd: BorrowedFd<'_>) -> Option<SocketAddr> {
    rustix::net::getsockname(fd)
        .ok()
        .and_then(|a| SocketAddr::try_from(a).ok())
}

/// Whether an inherited TCP listener bound to `local` serves the request for `wanted`:
/// the same IP and the same port (a requested port 0 accepts any).
pub(crate) fn tcp_addr_matches(local: SocketAddr, wanted: &[SocketAddr]) -> bool {
    wanted
        .iter()
        .any(|w| w.ip() == local.ip() && (w.port() == 0 || w.port() == local.port()))
}

/// Whether an inherited Unix listener is bound to `path` (`@name`: abstract).
pub(crate) fn unix_addr_matches(fd: BorrowedFd<'_>, path: &Path) -> bool {
    let Some(addr) = rustix::net::getsockname(fd)
        .ok()
        .and_then(|a| SocketAddrUnix::try_from(a).ok())
    else {
        return false;
    };
    match abstract_name(path) {
        Some(name) => addr.abstract_name() == Some(name),
        None => addr.path_bytes() == Some(path.as_os_str().as_bytes()),
    }
}

fn abstract_name(path: &Path) -> Option<&[u8]> {
    path.as_os_str().as_bytes().strip_prefix(b"@")
}

/// A new listening TCP socket: close-on-exec, `SO_REUSEADDR`, bound to `addr`.
pub(crate) fn create_tcp(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    bind(&fd, &addr)?;
    listen(&fd, backlog)?;
    Ok(TcpListener::from(fd))
}

/// A new listening Unix stream socket at `path` (`@name`: an abstract name),
/// close-on-exec. A socket file left behind by a dead process (nobody accepts on it) is
/// replaced; a live one is an `EADDRINUSE` error.
pub(crate) fn create_unix(path: &Path, backlog: i32) -> io::Result<UnixListener> {
    let addr = match abstract_name(path) {
        Some(name) => SocketAddrUnix::new_abstract_name(name)?,
        None => SocketAddrUnix::new(path)?,
    };
    let fd = socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    match bind(&fd, &addr) {
        Ok(()) => {}
        Err(rustix::io::Errno::ADDRINUSE) if abstract_name(path).is_none() && is_stale(path) => {
            std::fs::remove_file(path)?;
            bind(&fd, &addr)?;
        }
        Err(e) => return Err(e.into()),
    }
    listen(&fd, backlog)?;
    Ok(UnixListener::from(fd))
}

/// Whether `path` is a socket file nobody listens on any more.
fn is_stale(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    is_socket
        && matches!(UnixStream::connect(path),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused)
}

/// A close-on-exec duplicate of `fd`.
pub(crate) fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// Marks `fd` close-on-exec (an inherited fd is not, and must not reach other children).
pub(crate) fn set_cloexec(fd: impl AsFd) -> io::Result<()> {
    let flags = rustix::io::fcntl_getfd(&fd)?;
    rustix::io::fcntl_setfd(&fd, flags | rustix::io::FdFlags::CLOEXEC)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        let l = create_tcp("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        assert_eq!(check_listener(l.as_fd(), Want::Tcp), Ok(()));
        assert_eq!(check_listener(l.as_fd(), Want::Listener), Ok(()));
        assert!(
            check_listener(l.as_fd(), Want::Unix)
                .unwrap_err()
                .contains("AF_INET")
        );
        let (r, _w) = crate::raw::pipe().unwrap();
        assert_eq!(
            check_listener(r.as_fd(), Want::Listener).unwrap_err(),
            "is not a socket"
        );
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(check_listener(u.as_fd(), Want::Tcp).is_err());
        assert!(
            check_listener(u.as_fd(), Want::Listener)
                .unwrap_err()
                .contains("not listening")
        );
        let local = tcp_local_addr(l.as_fd()).unwrap();
        assert_eq!(local, l.local_addr().unwrap());
        assert!(tcp_addr_matches(local, &["127.0.0.1:0".parse().unwrap()]));
        assert!(tcp_addr_matches(local, &[local]));
        assert!(!tcp_addr_matches(local, &["0.0.0.0:0".parse().unwrap()]));
    }

    #[test]
    fn unix_stale_socket_is_replaced() {
        let dir = std::env::temp_dir().join(format!("forkexec-sock-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let p = dir.join("s");
        let l = create_unix(&p, 16).unwrap();
        assert!(unix_addr_matches(l.as_fd(), &p));
        // Live: refused.
        assert_eq!(
            create_unix(&p, 16).unwrap_err().raw_os_error(),
            Some(libc::EADDRINUSE)
        );
        drop(l);
        // Dead (the file is left behind): replaced.
        let l = create_unix(&p, 16).unwrap();
        assert!(unix_addr_matches(l.as_fd(), &p));
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
