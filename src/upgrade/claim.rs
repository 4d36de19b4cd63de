//! Claiming sockets and fds by name: the inherited one when it fits (checked), else a new
//! one; either way registered for the next hand-over.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use super::env::check_fd_name;
use super::sock::{self, Want};
use super::{Upgrader, io_error};
use crate::{Error, Result};
// For the intra-doc links of `# Errors` sections only.
#[cfg(doc)]
use crate::ErrorKind;

/// Whether an inherited fd is adopted for a request.
enum Verdict {
    /// Yes.
    Adopt,
    /// It is of the right kind but bound elsewhere (a changed configuration): create a new
    /// one, and leave the old one to be closed by `ready()`.
    Elsewhere,
}

impl Upgrader {
    /// Claims the inherited fd `name` if `check` accepts it, else creates one; registers
    /// a duplicate of the result for the next hand-over.
    fn claim<T>(
        &self,
        name: &str,
        what: &str,
        check: impl FnOnce(BorrowedFd<'_>) -> std::result::Result<Verdict, String>,
        create: impl FnOnce() -> io::Result<T>,
    ) -> Result<T>
    where
        T: From<OwnedFd> + AsFd,
    {
        check_fd_name(name)?;
        let taken = |name: &str| {
            Error::invalid(format!(
                "upgrade: the fd name {name:?} is registered already"
            ))
        };
        {
            let mut st = self.lock();
            if st.registry.iter().any(|(n, _)| n == name) {
                return Err(taken(name));
            }
            if let Some(i) = st.inherited.iter().position(|(n, _)| n == name) {
                match check(st.inherited[i].1.as_fd()) {
                    Ok(Verdict::Adopt) => {
                        let keep = sock::dup(st.inherited[i].1.as_fd()).map_err(|e| {
                            io_error(e, format!("upgrade: duplicating inherited {name:?}"))
                        })?;
                        let (n, fd) = st.inherited.remove(i);
                        st.registry.push((n, keep));
                        return Ok(T::from(fd));
                    }
                    Ok(Verdict::Elsewhere) => {}
                    Err(why) => {
                        let (_, fd) = st.inherited.remove(i);
                        let raw = fd.as_raw_fd();
                        drop(fd);
                        return Err(Error::invalid(format!(
                            "upgrade: inherited fd {raw} named {name:?} {why}; it was closed, \
                             and a new call creates a fresh {what}"
                        )));
                    }
                }
            }
        }
        let made = create().map_err(|e| io_error(e, format!("upgrade: creating {name:?}")))?;
        let keep = sock::dup(made.as_fd())
            .map_err(|e| io_error(e, format!("upgrade: duplicating {name:?}")))?;
        let mut st = self.lock();
        if st.registry.iter().any(|(n, _)| n == name) {
            return Err(taken(name));
        }
        st.registry.push((name.to_owned(), keep));
        Ok(made)
    }

    /// A listening TCP socket named `name` on `addr`: the inherited one of that name when
    /// it is a listening TCP socket bound to `addr` (a requested port 0 matches any port),
    /// else a new one (close-on-exec, `SO_REUSEADDR`, the builder's backlog). An inherited
    /// socket bound elsewhere (the address changed in the configuration) is left unclaimed
    /// and closed by [`ready`](Upgrader::ready).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid or already registered name, an address
    /// that resolves to nothing, or an inherited fd of that name that is not a listening
    /// TCP socket (that fd is closed: calling again creates a new socket);
    /// [`ErrorKind::Io`] (`EADDRINUSE`, ...) or [`ErrorKind::PermissionDenied`] when the
    /// socket cannot be created.
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let l = up.listen_tcp("http", "127.0.0.1:0")?;
    /// let addr = l.local_addr()?;
    /// let _c = std::net::TcpStream::connect(addr)?;
    /// assert!(l.accept().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// `socket(2)`, `bind(2)`, `listen(2)`, `tcp(7)`; `socket(7)` (`SO_ACCEPTCONN`, `SO_DOMAIN`,
    /// `SO_REUSEADDR`); `getsockname(2)`.
    #[doc(alias = "Listen")]
    #[doc(alias = "ListenersWithNames")]
    pub fn listen_tcp(&self, name: &str, addr: impl ToSocketAddrs) -> Result<TcpListener> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| io_error(e, format!("upgrade: resolving the address of {name:?}")))?
            .collect();
        if addrs.is_empty() {
            return Err(Error::invalid(format!(
                "upgrade: the address of {name:?} resolves to nothing"
            )));
        }
        let backlog = self.backlog;
        self.claim(
            name,
            "TCP socket",
            |fd| {
                sock::check_listener(fd, Want::Tcp)?;
                match sock::tcp_local_addr(fd) {
                    Some(local) if sock::tcp_addr_matches(local, &addrs) => Ok(Verdict::Adopt),
                    _ => Ok(Verdict::Elsewhere),
                }
            },
            || {
                let mut last = None;
                for a in &addrs {
                    match sock::create_tcp(*a, backlog) {
                        Ok(l) => return Ok(l),
                        Err(e) => last = Some(io::Error::new(e.kind(), format!("{a}: {e}"))),
                    }
                }
                Err(last.expect("at least one address"))
            },
        )
    }

    /// A listening Unix stream socket named `name` at `path` (`@name` for an abstract
    /// socket): the inherited one of that name when it is a listening Unix stream socket
    /// bound to that same path, else a new one (close-on-exec; a socket file left behind by
    /// a dead process is replaced, a live one is `EADDRINUSE`).
    ///
    /// The socket file is not removed when the listener is dropped — the next generation
    /// serves on it.
    ///
    /// # Errors
    /// As [`listen_tcp`](Upgrader::listen_tcp), for a Unix socket.
    ///
    /// # Examples
    /// ```
    /// let dir = std::env::temp_dir().join(format!("listen-unix-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let l = up.listen_unix("control", dir.join("control.sock"))?;
    /// let _c = std::os::unix::net::UnixStream::connect(dir.join("control.sock"))?;
    /// assert!(l.accept().is_ok());
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// `unix(7)` (path and abstract names), `socket(2)`, `bind(2)`, `listen(2)`;
    /// `socket(7)` (`SO_ACCEPTCONN`, `SO_DOMAIN`); `getsockname(2)`.
    #[doc(alias = "Listen")]
    pub fn listen_unix(&self, name: &str, path: impl AsRef<Path>) -> Result<UnixListener> {
        let path = path.as_ref();
        let backlog = self.backlog;
        self.claim(
            name,
            "Unix socket",
            |fd| {
                sock::check_listener(fd, Want::Unix)?;
                if sock::unix_addr_matches(fd, path) {
                    Ok(Verdict::Adopt)
                } else {
                    Ok(Verdict::Elsewhere)
                }
            },
            || {
                sock::create_unix(path, backlog)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
            },
        )
    }

    /// Any listening socket named `name`: the inherited one of that name when it is a
    /// listening socket (of any family), else the result of `create`. For sockets made
    /// with options of your own (`SO_REUSEPORT`, `IPV6_V6ONLY`, ...) or of other types.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid or already registered name, or an
    /// inherited fd of that name that is not a listening socket (closed: calling again
    /// creates one); the error of `create`.
    ///
    /// # Examples
    /// ```
    /// use std::net::TcpListener;
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let l: TcpListener = up.listener("api", || TcpListener::bind("127.0.0.1:0"))?;
    /// assert!(l.local_addr()?.port() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// `socket(7)` (`SO_ACCEPTCONN`).
    pub fn listener<T>(&self, name: &str, create: impl FnOnce() -> io::Result<T>) -> Result<T>
    where
        T: From<OwnedFd> + AsFd,
    {
        self.claim(
            name,
            "listener",
            |fd| sock::check_listener(fd, Want::Listener).map(|()| Verdict::Adopt),
            create,
        )
    }

    /// Any fd named `name` that must survive upgrades — a UDP socket, a `memfd` with state,
    /// a pipe: the inherited one of that name as it is (no check), else the result of
    /// `create`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid or already registered name; the error of
    /// `create`.
    ///
    /// # Examples
    /// ```
    /// use std::net::UdpSocket;
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let dns: UdpSocket = up.fd("dns", || UdpSocket::bind("127.0.0.1:0"))?;
    /// assert!(dns.local_addr().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// `fcntl(2)` (`F_DUPFD_CLOEXEC`: the duplicate kept for the hand-over).
    #[doc(alias = "File")]
    #[doc(alias = "Files")]
    pub fn fd<T>(&self, name: &str, create: impl FnOnce() -> io::Result<T>) -> Result<T>
    where
        T: From<OwnedFd> + AsFd,
    {
        self.claim(name, "fd", |_| Ok(Verdict::Adopt), create)
    }

    /// Registers an fd you already hold for the next hand-over under `name` (a
    /// close-on-exec duplicate is kept; yours is untouched).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid or already registered name;
    /// [`ErrorKind::Io`] when the fd cannot be duplicated.
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// up.add_fd("legacy", &l)?;
    /// assert!(up.add_fd("legacy", &l).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// `fcntl(2)` (`F_DUPFD_CLOEXEC`).
    #[doc(alias = "AddFile")]
    #[doc(alias = "AddListener")]
    pub fn add_fd(&self, name: &str, fd: impl AsFd) -> Result<()> {
        check_fd_name(name)?;
        let keep = sock::dup(fd.as_fd())
            .map_err(|e| io_error(e, format!("upgrade: duplicating {name:?}")))?;
        let mut st = self.lock();
        if st.registry.iter().any(|(n, _)| n == name) {
            return Err(Error::invalid(format!(
                "upgrade: the fd name {name:?} is registered already"
            )));
        }
        st.registry.push((name.to_owned(), keep));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::os::fd::OwnedFd;

    use super::super::Upgrader;

    #[test]
    fn claim_rules() {
        let up = Upgrader::builder().inherit(false).build().unwrap();
        let l = up.listen_tcp("a", "127.0.0.1:0").unwrap();
        assert!(up.listen_tcp("a", "127.0.0.1:0").is_err());
        assert!(up.add_fd("a", &l).is_err());
        assert!(up.add_fd("bad:name", &l).is_err());
        assert!(up.listen_tcp("", "127.0.0.1:0").is_err());
        assert_eq!(up.registered(), ["a"]);
        assert!(up.upgrade().is_err());
    }

    #[test]
    fn inherited_checks() {
        let up = Upgrader::builder().inherit(false).build().unwrap();
        // Simulate a hand-over: a pipe named like a listener, a UDP socket, a TCP listener
        // bound elsewhere, and a good one.
        let (r, _w) = crate::raw::pipe().unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = TcpListener::bind("127.0.0.1:0").unwrap();
        let good_addr = good.local_addr().unwrap();
        {
            let mut st = up.lock();
            st.inherited.push(("pipe".into(), r));
            st.inherited.push(("udp".into(), OwnedFd::from(udp)));
            st.inherited.push(("moved".into(), OwnedFd::from(other)));
            st.inherited.push(("http".into(), OwnedFd::from(good)));
        }
        let e = up.listen_tcp("pipe", "127.0.0.1:0").unwrap_err();
        assert!(e.to_string().contains("is not a socket"), "{e}");
        // Closed, so a second call creates afresh.
        assert!(up.listen_tcp("pipe", "127.0.0.1:0").is_ok());
        let e = up.listen_tcp("udp", "127.0.0.1:0").unwrap_err();
        assert!(e.to_string().contains("not a TCP socket"), "{e}");
        // Bound elsewhere: a new one, the inherited one left for ready() to close.
        let m = up.listen_tcp("moved", "127.0.0.2:0").unwrap();
        assert_eq!(m.local_addr().unwrap().ip().to_string(), "127.0.0.2");
        assert_eq!(up.inherited(), ["moved", "http"]);
        let h = up.listen_tcp("http", good_addr).unwrap();
        assert_eq!(h.local_addr().unwrap(), good_addr);
        assert_eq!(up.inherited(), ["moved"]);
        up.ready().unwrap();
        assert!(up.inherited().is_empty());
        assert_eq!(up.registered(), ["pipe", "moved", "http"]);
    }
}
